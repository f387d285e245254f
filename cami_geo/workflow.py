"""Glue between the Snakefile and the package: configuration, the plan of jobs (which
submissions, species and Range States exist), and running one stage with its log.

The Snakefile holds no logic: it asks :func:`plan` what to build, and every rule runs
:func:`run_stage` (through :func:`cami_geo.stageworker.job_command`).
"""

from __future__ import annotations

import importlib
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import config as _config
from .errors import CamiGeoError, ConfigError
from .registry import Registry, load_registry

log = logging.getLogger("cami_geo")


def load_config(repo_dir: str | Path, workdir: str | Path, overrides: dict[str, Any]) -> dict[str, Any]:
    return _config.load(Path(repo_dir), Path(workdir), overrides)


def registry_from_config(config: dict[str, Any]) -> Registry:
    try:
        return load_registry(config.get("registry"))
    except KeyError as exc:
        raise ConfigError(f"registry in the configuration: {exc.args[0]}") from None


def _alternation(values: list[str]) -> str:
    return "|".join(re.escape(v) for v in values) if values else "(?!x)x"


@dataclass
class Plan:
    """What the workflow builds, derived from the config, the registry and data/raw."""

    workdir: Path
    repo_dir: Path
    raw: Path
    processed: str
    boundaries: str
    submissions: list[str]
    species: list[str]
    countries: list[str]
    previous_status: list[str] = field(default_factory=list)

    @property
    def submission_pattern(self) -> str:
        return _alternation(self.submissions)

    @property
    def species_pattern(self) -> str:
        return _alternation(self.species)

    @property
    def country_pattern(self) -> str:
        return _alternation(self.countries)

    def submission_dir(self, submission: str) -> str:
        return str(self.raw / "submissions" / submission)

    def submission_files(self, submission: str) -> list[str]:
        folder = self.raw / "submissions" / submission
        return sorted(str(p) for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))

    def targets(self) -> list[str]:
        P = self.processed
        out = [f"{P}/status_by_country.csv", f"{P}/status_by_species.csv", f"{P}/threats_summary.csv",
               f"{P}/action_needs.csv", f"{P}/rejected.csv", "maps/overview.html", "maps/overview.png"]
        out += [f"{P}/submissions/{s}/validation.html" for s in self.submissions]
        for sp in self.species:
            out += [f"{P}/restricted/layers/{sp}{suffix}"
                    for suffix in (".gpkg", "_aoo.tif", "_threat_density.tif")]
            out += [f"maps/species/{sp}.{ext}" for ext in ("html", "png", "svg")]
            out += [f"reports/species/{sp}.{ext}" for ext in ("html", "docx", "pdf")]
            out += [f"reports/forms/{sp}_status_form.docx", f"reports/articles/{sp}.html"]
        for iso3 in self.countries:
            out += [f"maps/country/{iso3}.{ext}" for ext in ("html", "png", "svg")]
            out += [f"reports/country/{iso3}.{ext}" for ext in ("html", "docx", "pdf")]
        return out


def plan(config: dict[str, Any], repo_dir: str | Path, workdir: str | Path | None = None) -> Plan:
    """Work out the submissions, species and Range States the run covers."""
    workdir = Path(workdir or Path.cwd())
    repo_dir = Path(repo_dir)
    registry = registry_from_config(config)
    raw = Path("data/raw")
    sub_root = workdir / raw / "submissions"
    submissions = sorted(p.name for p in sub_root.iterdir()
                         if p.is_dir() and (p / "submission.yaml").exists()) if sub_root.is_dir() else []
    bad = [s for s in submissions if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", s)]
    if bad:
        raise ConfigError(f"Submission folder name {bad[0]!r} may hold only letters, digits, '_', '.' and '-'.")
    wanted = config.get("species") or []
    if wanted:
        species = []
        for name in wanted:
            slug = registry.resolve_species(name)
            if slug is None:
                hint = registry.suggest_species(name)
                raise ConfigError(f"species: {name!r} is not a registered species"
                                  + (f" (did you mean {', '.join(hint)}?)" if hint else "."))
            species.append(slug)
    else:
        species = sorted(registry.species)
    species = sorted(dict.fromkeys(species))
    countries = sorted({iso for sp in species for iso in registry.species[sp].range_states
                        if iso in registry.states})
    boundaries = Path(config["boundaries"]["path"])
    if not (workdir / boundaries).exists() and (repo_dir / boundaries).exists():
        boundaries = repo_dir / boundaries  # a WORKDIR without its own boundaries uses the shipped ones
    previous = config.get("previous_status")
    prev = [previous] if previous and (workdir / previous).exists() else []
    return Plan(workdir=workdir, repo_dir=repo_dir, raw=raw, processed="data/processed",
                boundaries=str(boundaries), submissions=submissions, species=species,
                countries=countries, previous_status=prev)


STAGES = {
    "intake": "cami_geo.intake:run_intake_stage",
    "combine": "cami_geo.combine:run_combine_stage",
    "public": "cami_geo.combine:run_public_stage",
    "status_species": "cami_geo.status.pipeline:run_status_stage",
    "status_tables": "cami_geo.status.pipeline:run_status_tables_stage",
    "map_species": "cami_geo.render.maps:run_map_species_stage",
    "map_country": "cami_geo.render.maps:run_map_country_stage",
    "map_overview": "cami_geo.render.maps:run_map_overview_stage",
    "report_species": "cami_geo.render.reports:run_report_species_stage",
    "report_country": "cami_geo.render.reports:run_report_country_stage",
}

STAGE_SETTINGS: dict[str, tuple[str, ...]] = {
    "intake": ("cycle", "boundaries", "checks", "registry"),
    "combine": ("registry",),
    "public": ("boundaries", "registry"),
    "status_species": ("cycle", "boundaries", "checks", "status", "registry"),
    "status_tables": ("cycle", "action_rules", "registry"),
    "map_species": ("cycle", "boundaries", "maps", "registry"),
    "map_country": ("cycle", "boundaries", "maps", "registry"),
    "map_overview": ("cycle", "boundaries", "maps", "registry", "species"),
    "report_species": ("cycle", "previous_cycle", "maps", "registry"),
    "report_country": ("cycle", "previous_cycle", "maps", "registry"),
}
"""The configuration sections each rule's stage reads: its ``settings`` param
(:func:`stage_settings`). Editing a section re-runs only the rules that read it (Snakemake
re-runs a job whose params changed); what a rule's files depend on (data, the list of
species, ``previous_status``) reaches it through its inputs and the plan instead."""


def stage_settings(config: dict[str, Any], rule: str) -> _config.StageSettings:
    """The ``settings`` param of ``rule``: the sections of ``config`` named in
    :data:`STAGE_SETTINGS`; reading any other section raises
    :class:`cami_geo.config.UndeclaredSetting`."""
    return _config.StageSettings(rule, STAGE_SETTINGS[rule], config)


def path_list(value: Any) -> list[str]:
    """A stage input or output as a list of paths: None -> [], one path -> [path]."""
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        return [str(value)]
    return [str(v) for v in value]


def larger_first(template: str):
    """A rule's ``priority``: the size in MB of the file ``template`` names for a job (its
    wildcards filled in), 0 while it does not exist. Snakemake starts ready jobs of higher
    priority first, so the longest jobs (the largest partitions) start early and a run on
    few cores does not end with one long job running alone."""

    def priority(wildcards) -> float:
        try:
            return round(os.path.getsize(template.format(**dict(wildcards.items()))) / 1e6, 3)
        except OSError:
            return 0.0

    return priority


SLICE_TABLES = ("by_country", "by_species", "threats", "actions", "population", "submissions")
"""Tables of one status slice (:mod:`cami_geo.status.slices`); each is ``<name>.csv`` in the
slice's folder. Here, with :func:`slice_paths`, so that the Snakefile need not import pandas."""


def slice_paths(processed: str, species: list[str], countries: list[str]) -> list[str]:
    """Every slice file of a plan, species first."""
    return ([f"{processed}/slices/species/{s}/{t}.csv" for s in species for t in SLICE_TABLES]
            + [f"{processed}/slices/country/{c}/{t}.csv" for c in countries for t in SLICE_TABLES])


def write_digest(path: str | Path, files: list[str]) -> None:
    """Write ``path`` in ``sha256sum`` format (``<hex>  <name>``, names relative to its folder;
    `sha256sum -c` checks it). A rule may depend on this small file instead of on the files
    it names (listed in the rule's ``params.read``): Snakemake hashes a job's inputs again for
    each of its outputs when the job ends, so large inputs of jobs with several outputs cost
    Snakemake's own process gigabytes of hashing (docs/architecture.md, "Incremental runs")."""
    import hashlib

    folder = Path(path).parent
    lines = []
    for f in files:
        with open(f, "rb") as fh:
            digest = hashlib.file_digest(fh, "sha256").hexdigest()
        lines.append(f"{digest}  {os.path.relpath(f, folder)}\n")
    Path(path).write_text("".join(lines), encoding="utf-8")


def run_stage(name: str, inputs: dict[str, Any], outputs: dict[str, Any], params: dict[str, Any],
              log_path: str | Path | None = None) -> None:
    """Run stage ``name``: ``f(inputs, outputs, params)`` from :data:`STAGES`, logging to ``log_path``.

    A :class:`CamiGeoError` is logged and re-raised; :func:`run_stage_or_exit` turns it
    into one sentence on stderr and exit status 1 (no traceback).

    ``params["read"]`` (a dict of paths), when a rule has it, joins ``inputs``: files a stage
    reads whose changes a smaller declared input (a digest) stands for.
    """
    if params.get("read"):
        inputs = {**params["read"], **inputs}
    handler = None
    root = logging.getLogger("cami_geo")
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(log_path, mode="w", encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.INFO)
    module_name, func_name = STAGES[name].split(":")
    try:
        func = getattr(importlib.import_module(module_name), func_name)
        log.info("stage %s (cami-geo %s)", name, params.get("version"))
        profile_dir = os.environ.get("CAMI_GEO_PROFILE")
        if profile_dir:   # developers: a cProfile file per job (docs/benchmarks.md, "Profiling a job")
            _profiled(func, inputs, outputs, params, Path(profile_dir), name)
        else:
            func(inputs, outputs, params)
    except CamiGeoError as exc:
        log.error("%s", exc)
        raise
    finally:
        if handler:
            root.removeHandler(handler)
            handler.close()


def _profiled(func, inputs: dict[str, Any], outputs: dict[str, Any], params: dict[str, Any], folder: Path,
              name: str) -> None:
    """Run ``func`` under cProfile and write ``folder/<stage>-<first output's name>.prof``."""
    import cProfile

    first = next(iter(path_list(next(iter(outputs.values()), None))), "job")
    folder.mkdir(parents=True, exist_ok=True)
    prof = cProfile.Profile()
    try:
        prof.runcall(func, inputs, outputs, params)
    finally:
        prof.dump_stats(folder / f"{name}-{Path(first).parent.name}-{Path(first).stem}.prof")


def run_stage_or_exit(job: dict[str, Any]) -> None:
    """:func:`run_stage` for a job (``name``, ``inputs``, ``outputs``, ``params``,
    ``log_path``); a :class:`CamiGeoError` becomes one sentence on stderr and exit status 1."""
    import sys

    try:
        run_stage(job["name"], job["inputs"], job["outputs"], job["params"], job.get("log_path"))
    except CamiGeoError as exc:
        print(f"cami-geo: {job['name']}: {exc}", file=sys.stderr)
        sys.exit(1)
