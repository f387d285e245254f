# cami-geo: ingest -> validate -> status -> maps -> documents.
# `snakemake --cores all` here, or `snakemake -s PATH/Snakefile -d WORKDIR --cores all`.
# Rules are thin: every step runs one function of the cami_geo package (cami_geo.workflow.STAGES)
# through cami_geo.stageworker.job_command.

from pathlib import Path

import sys

from snakemake.utils import min_version

import cami_geo
from cami_geo import workflow as cw
from cami_geo.errors import CamiGeoError
from cami_geo.model import LAYERS
from cami_geo.workflow import larger_first, slice_paths
from cami_geo.snakemake_fixes import cancel_recheck_timers, checksum_once, one_recheck_timer
from cami_geo.stageworker import job_command

min_version("9.0")
one_recheck_timer()  # Snakemake's scheduler otherwise piles up re-check timers (see the module)
checksum_once()  # and hashes each input again for every output of every job that reads it

try:
    config.update(cw.load_config(workflow.basedir, Path.cwd(), dict(config)))
    PLAN = cw.plan(config, workflow.basedir)
except CamiGeoError as exc:
    sys.exit(f"cami-geo: configuration error: {exc}")

VERSION = cami_geo.__version__
P = PLAN.processed

wildcard_constraints:
    submission=PLAN.submission_pattern,
    species=PLAN.species_pattern,
    iso3=PLAN.country_pattern,


include: "workflow/rules/intake.smk"
include: "workflow/rules/status.smk"
include: "workflow/rules/maps.smk"
include: "workflow/rules/reports.smk"


rule all:
    default_target: True
    input:
        PLAN.targets(),


# The stage worker (cami_geo/stageworker.py): during a local run, jobs run in children of
# one process that has imported the libraries already. `--config stage_worker=False` or
# `stage_worker: false` in config/config.yaml turns it off; cluster runs never use it.
STAGE_WORKER = {}


onstart:
    if config.get("stage_worker", True) and workflow.local_exec and workflow.exec_mode.name == "DEFAULT":
        from cami_geo import stageworker

        Path("logs").mkdir(exist_ok=True)
        STAGE_WORKER["proc"], STAGE_WORKER["path"] = stageworker.start("logs/stage_worker.log")


onsuccess:
    cancel_recheck_timers()
    if STAGE_WORKER:
        from cami_geo import stageworker

        stageworker.stop(STAGE_WORKER["proc"], STAGE_WORKER["path"])


onerror:
    cancel_recheck_timers()
    if STAGE_WORKER:
        from cami_geo import stageworker

        stageworker.stop(STAGE_WORKER["proc"], STAGE_WORKER["path"])
