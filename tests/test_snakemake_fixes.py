"""cami_geo.snakemake_fixes: Snakemake's scheduler keeps one re-check timer, so the number of
scheduling rounds follows the number of job ends and seconds instead of their product, and a
rate-limited run still finishes. Real Snakemake runs of a small workflow."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

SNAKEFILE = """
import os
if os.environ.get("CAMI_GEO_FIX"):
    from cami_geo.snakemake_fixes import one_recheck_timer
    assert one_recheck_timer()
rule all:
    input: expand("out/{i}.txt", i=range(N))
rule one:
    output: "out/{i}.txt"
    shell: "sleep S; echo {wildcards.i} > {output}"
onsuccess:
    if os.environ.get("CAMI_GEO_FIX"):
        from cami_geo.snakemake_fixes import cancel_recheck_timers
        cancel_recheck_timers()
"""


def _run(tmp_path: Path, n: int, sleep: float, fix: bool, *extra: str) -> tuple[int, float]:
    (tmp_path / "Snakefile").write_text(SNAKEFILE.replace("N", str(n)).replace("S", str(sleep)))
    env = {"PATH": "/usr/bin:/bin", "CAMI_GEO_FIX": "1" if fix else ""}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", "--verbose", *extra],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    wall = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(list((tmp_path / "out").glob("*.txt"))) == n
    return (proc.stdout + proc.stderr).count("Ready jobs"), wall


def test_rounds_follow_job_ends_and_seconds(tmp_path):
    n = 16
    rounds, wall = _run(tmp_path, n, 0.4, fix=True)
    # one round per job end, one per second of a pending timer, a few at start and end;
    # without the fix the timers pile up (about n * wall / 2 rounds, ~60 here)
    assert rounds <= n + wall + 4, (rounds, wall)


def test_patch_is_applied_once_and_keeps_the_rate_limit(tmp_path):
    from cami_geo.snakemake_fixes import one_recheck_timer

    assert one_recheck_timer() and one_recheck_timer()
    # two jobs per 2 s: the scheduler has to wait for its timer between batches, and must
    # not stall when the pending timer fires
    rounds, wall = _run(tmp_path, 6, 0.05, True, "--max-jobs-per-timespan", "2/2s")
    assert wall < 30
    assert rounds >= 3


def test_run_ends_with_its_last_job(tmp_path):
    """A pending re-check timer is cancelled when the run succeeds: with a 20 s timespan the
    process would otherwise wait for it before exiting."""
    _, wall = _run(tmp_path, 2, 0.05, True, "--max-jobs-per-timespan", "100/20s")
    assert wall < 15, wall


CHECKSUM_SNAKEFILE = """
import hashlib, os
if os.environ.get("CAMI_GEO_FIX"):
    from cami_geo.snakemake_fixes import checksum_once
    assert checksum_once()
HASHED = []
_digest = hashlib.file_digest
def _counting(f, algorithm):
    HASHED.append(getattr(f, "name", ""))
    return _digest(f, algorithm)
hashlib.file_digest = _counting
rule all:
    input: expand("out/{i}.{e}", i=range(3), e=("a", "b", "c"))
rule one:
    input: "in.txt"
    output: "out/{i}.a", "out/{i}.b", "out/{i}.c"
    shell: "touch {output}"
onsuccess:
    print("HASHED", sum(1 for n in HASHED if n.endswith("in.txt")))
"""


def _checksum_run(tmp_path: Path, fix: bool, *extra: str) -> str:
    (tmp_path / "Snakefile").write_text(CHECKSUM_SNAKEFILE)
    env = {"PATH": "/usr/bin:/bin", "CAMI_GEO_FIX": "1" if fix else ""}
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", *extra], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout + proc.stderr


def test_each_input_is_hashed_once_not_once_per_output_of_each_job(tmp_path):
    """Three jobs of three outputs read one input: Snakemake hashes it 9 times when the jobs
    end, once with checksum_once; rewriting the input with the same content still re-runs
    nothing (the recorded checksums are the same), other content re-runs the jobs."""
    (tmp_path / "in.txt").write_text("x" * 1000)
    assert "HASHED 9" in _checksum_run(tmp_path, fix=False)
    for f in (tmp_path / "out").iterdir():
        f.unlink()
    assert "HASHED 1" in _checksum_run(tmp_path, fix=True)
    time.sleep(0.05)
    (tmp_path / "in.txt").write_text("x" * 1000)  # rewritten, same content
    assert "Nothing to be done" in _checksum_run(tmp_path, True, "-n")
    (tmp_path / "in.txt").write_text("y" * 1000)
    assert re.search(r"^one\s+3$", _checksum_run(tmp_path, True, "-n"), re.M)
