"""Run the cami_geo stage named after the calling rule (see cami_geo.workflow.STAGES).

Snakemake runs this file in its own Python process with a ``snakemake`` object holding the
rule's input, output, params and log; the logic lives in the cami_geo package.
"""

from cami_geo.workflow import run_from_snakemake

run_from_snakemake(snakemake)  # noqa: F821 - injected by Snakemake
