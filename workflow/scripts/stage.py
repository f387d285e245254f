"""Run the cami_geo stage named after the calling rule (see cami_geo.workflow.STAGES).

Snakemake runs this file in its own Python process with a ``snakemake`` object holding the
rule's input, output, params and log; the logic lives in the cami_geo package. During a
local run the stage runs in a child of the stage worker (cami_geo.stageworker), which has
the libraries imported already; without one it runs in this process.
"""

from cami_geo.stageworker import run_job

run_job(snakemake)  # noqa: F821 - injected by Snakemake
