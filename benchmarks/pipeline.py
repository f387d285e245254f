"""Benchmark the whole pipeline and each stage on synthetic trees of 10^4, 10^5, 10^6 records.

    .venv/bin/python benchmarks/pipeline.py [--records 10000 100000 1000000] [--cores 2]
        [--species all|SLUG ...] [--keep DIR] [--no-worker]

For each size: `cami-geo synth` writes a tree in a temporary folder, then `snakemake` runs
on it with `--cores`; per-stage wall time, CPU time and peak memory come from the
`job figures:` line each job appends to its log (cami_geo.stageworker: measured by wait4 on
the process that ran the stage, with or without the stage worker); end-to-end wall time
and the CPU time of the whole run (Snakemake's own process included) are measured around
the Snakemake call, and its peak memory is the largest single-job max_rss. Also measures the
incremental case: one species' submission changed (1 % of its occurrence rows removed), the
jobs that re-ran (counted from Snakemake's "Finished jobid" lines, by rule) and wall time.
Prints a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cami_geo.stageworker import FIGURES_PREFIX  # noqa: E402


CACHES: dict[str, str] = {}
"""The map and chart caches (cami_geo.cachedir) of the tree being measured: empty folders of its
own, so that a tree's first run is measured with cold caches, as a first run on a new machine
(the incremental run then finds them filled, as a user's next run does)."""


def snakemake(workdir: Path, cores: int, *extra: str) -> tuple[float, str]:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
           "--cores", str(cores), *extra]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **CACHES})
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"snakemake failed in {workdir}:\n{proc.stderr[-3000:]}")
    # everything Snakemake waited for: its own process, the jobs, the stage worker and its children
    snakemake.cpu_s = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return wall, proc.stdout + proc.stderr


def job_figures(log: Path) -> dict[str, float] | None:
    """The figures a job appended to its log (cami_geo.stageworker), if any."""
    if not log.exists():
        return None
    for line in reversed(log.read_text(encoding="utf-8", errors="replace").splitlines()):
        if line.startswith(FIGURES_PREFIX):
            return {k: float(v) for k, v in re.findall(r"(\w+)=([\d.]+)", line)}
    return None


def stage_table(workdir: Path) -> pd.DataFrame:
    """Per stage: jobs, wall time summed over its jobs, CPU time and peak RSS of the processes
    that ran them (from each job's log under logs/; the stage is the log's folder, or its name
    for combine and status_tables; maps and reports are split by species/country/overview)."""
    rows = []
    logs = workdir / "logs"
    for log in logs.rglob("*.log"):
        fig = job_figures(log)
        if fig is None:
            continue
        rel = log.relative_to(logs)
        stage = rel.parts[0] if len(rel.parts) > 1 else log.stem
        if stage in ("maps", "reports"):
            stage = f"{stage}:{log.stem.split('_')[0]}"
        rows.append({"stage": stage, "s": fig["wall_s"], "cpu_s": fig["cpu_s"], "sys_s": fig.get("sys_s", 0.0),
                     "max_rss_mb": fig["max_rss_mb"]})
    t = pd.DataFrame(rows)
    return t.groupby("stage").agg(jobs=("s", "size"), total_s=("s", "sum"), max_job_s=("s", "max"), cpu_s=("cpu_s", "sum"),
                                  sys_s=("sys_s", "sum"), peak_rss_mb=("max_rss_mb", "max")).reset_index()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--species", nargs="+", default=["all"])
    ap.add_argument("--keep", type=Path)
    ap.add_argument("--no-worker", action="store_true", help="run every job in its own process (stage_worker=False)")
    args = ap.parse_args()
    print(f"machine: {platform.node()} {platform.machine()}, {platform.python_version()}, cores={args.cores}")
    for n in args.records:
        cache_root = Path(tempfile.mkdtemp(prefix=f"cami-bench-caches-{n}-"))  # cold caches for each tree
        CACHES.update({"CAMI_GEO_MAP_CACHE": str(cache_root / "map"), "CAMI_GEO_CHART_CACHE": str(cache_root / "chart")})
        work = Path(tempfile.mkdtemp(prefix=f"cami-bench-{n}-")) if not args.keep else args.keep / str(n)
        t = time.perf_counter()
        subprocess.run([str(REPO / ".venv/bin/cami-geo"), "synth", "--records", str(n), str(work)], check=True,
                       capture_output=True)
        synth_s = time.perf_counter() - t
        if args.species != ["all"]:
            (work / "config").mkdir(exist_ok=True)
            (work / "config" / "config.yaml").write_text("species: [" + ", ".join(args.species) + "]\n")
        extra = ("--config", "stage_worker=False") if args.no_worker else ()
        wall, _ = snakemake(work, args.cores, *extra)
        table = stage_table(work)
        print(f"\n## {n:,} records (synth {synth_s:.1f} s); end to end {wall:.1f} s "
              f"(CPU of the whole run, Snakemake's own process included: {snakemake.cpu_s:.1f} s), "
              f"CPU time summed over jobs {table.cpu_s.sum():.1f} s, largest job peak RSS {table.peak_rss_mb.max():.0f} MB")
        print(table.to_markdown(index=False, floatfmt=".1f"))
        # incremental: one species' submission changes (its last 1 % of occurrence rows removed)
        sub = sorted((work / "data/raw/submissions").iterdir())[0]
        occ = sub / "occurrences.csv"
        lines = occ.read_text(encoding="utf-8").splitlines(keepends=True)
        keep = len(lines) - max(1, (len(lines) - 1) // 100)
        occ.write_text("".join(lines[:keep]), encoding="utf-8")
        wall_inc, out = snakemake(work, args.cores, *extra)
        ran = re.findall(r"^Finished jobid: \d+ \(Rule: (\w+)\)", out, re.M)
        by_rule = pd.Series(ran, dtype=object).value_counts().sort_index()
        print(f"incremental ({sub.name}: {len(lines) - keep} of {len(lines) - 1} occurrence rows removed): "
              f"{len(ran)} jobs re-ran in {wall_inc:.1f} s (full run {wall:.1f} s): "
              + ", ".join(f"{k} {v}" for k, v in by_rule.items()))
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(cache_root, ignore_errors=True)


if __name__ == "__main__":
    main()
