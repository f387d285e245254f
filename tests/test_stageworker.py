"""The stage worker (cami_geo/stageworker.py): a job delegated to it runs the real stage in a
forked child with the job's directory, environment and streams, gives the same outputs and
exit status as the job run in its own process, is ended when the job is cancelled, and the
worker ends when the run that started it is gone."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cami_geo import stageworker
from cami_geo.workflow import run_stage_or_exit

SUBMISSION = "saiga_kaz_2026"


def _intake_job(repo: Path, out: Path, submission_dir: Path) -> dict:
    from cami_geo.workflow import load_config

    files = sorted(str(p) for p in submission_dir.iterdir())
    outputs = {k: str(out / name) for k, name in (
        ("occurrences", "occurrences.parquet"), ("threats", "threats.parquet"), ("range", "range.parquet"),
        ("population", "population.csv"), ("problems", "problems.csv"), ("rasters", "rasters.csv"),
        ("summary", "validation.json"), ("report", "validation.html"))}
    settings = load_config(repo, repo, {})
    return {"name": "intake", "inputs": {"files": files, "boundaries": str(repo / "data/raw/boundaries/countries.gpkg")},
            "outputs": outputs, "params": {"version": "test", "submission_dir": str(submission_dir), "settings": settings,
                                           "threads": 1},
            "log_path": str(out / "intake.log")}


def _children(pid: int) -> list[int]:
    kids = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        kids += [int(k) for k in (task / "children").read_text().split()]
    return kids


@pytest.fixture()
def worker():
    proc, path = stageworker.start()
    deadline = time.monotonic() + 60
    while not Path(path + ".ready").exists() and time.monotonic() < deadline:   # libraries loaded
        time.sleep(0.05)
    try:
        yield proc, path
    finally:
        stageworker.stop(proc, path)
    assert proc.poll() is not None and not Path(path).exists()


def test_no_worker_means_the_job_runs_itself(tmp_path, monkeypatch):
    monkeypatch.delenv(stageworker.ENV, raising=False)
    assert stageworker.delegate({"name": "intake"}) is None
    assert stageworker.delegate({"name": "intake"}, path=str(tmp_path / "no-socket")) is None


def test_delegated_intake_equals_intake_in_its_own_process(repo, tmp_path, worker):
    sub = repo / "data/raw/submissions" / SUBMISSION
    own, forked = tmp_path / "own", tmp_path / "forked"
    own.mkdir()
    forked.mkdir()
    run_stage_or_exit(_intake_job(repo, own, sub))
    assert stageworker.delegate(_intake_job(repo, forked, sub), path=worker[1]) == 0
    for name in ("population.csv", "problems.csv", "rasters.csv", "validation.json"):   # rasters.csv names its folder
        assert (own / name).read_text().replace(str(own), "OUT") == (forked / name).read_text().replace(str(forked), "OUT"), name
    import pandas as pd

    for name in ("occurrences.parquet", "threats.parquet", "range.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(own / name), pd.read_parquet(forked / name))
    log = (forked / "intake.log").read_text(encoding="utf-8")
    assert "stage intake" in log
    figures = [ln for ln in log.splitlines() if ln.startswith(stageworker.FIGURES_PREFIX)]
    assert len(figures) == 1 and "exit=0" in figures[0] and "max_rss_mb=" in figures[0]


def test_failing_stage_gives_one_sentence_and_exit_1(repo, tmp_path, worker, capfd):
    job = _intake_job(repo, tmp_path, repo / "data/raw/submissions" / SUBMISSION)
    job["inputs"]["boundaries"] = str(tmp_path / "missing.gpkg")
    job["params"]["settings"] = dict(job["params"]["settings"], boundaries={"path": str(tmp_path / "missing.gpkg")})
    assert stageworker.delegate(job, path=worker[1]) == 1
    err = capfd.readouterr().err   # the child wrote to this process's stderr (its fd was sent)
    assert "cami-geo: intake:" in err and "missing.gpkg" in err
    assert "Traceback" not in err


def test_the_child_sees_the_jobs_directory_and_environment(repo, tmp_path, worker, monkeypatch):
    """A job's relative paths resolve in the job's working directory, not the worker's."""
    sub = tmp_path / "data/raw/submissions" / SUBMISSION
    shutil.copytree(repo / "data/raw/submissions" / SUBMISSION, sub)
    monkeypatch.chdir(tmp_path)
    job = _intake_job(repo, Path("out"), Path("data/raw/submissions") / SUBMISSION)
    job["inputs"]["files"] = [os.path.relpath(p, tmp_path) for p in job["inputs"]["files"]]
    (tmp_path / "out").mkdir()
    assert stageworker.delegate(job, path=worker[1]) == 0
    assert (tmp_path / "out" / "validation.json").exists()


def test_cancelled_job_ends_its_child(repo, tmp_path, worker):
    """Snakemake cancels a job by ending its process: the worker ends the child too. The job
    reads its boundary layer from a named pipe that nobody writes, so it runs until it is ended."""
    proc, path = worker
    fifo = tmp_path / "boundaries.gpkg"
    os.mkfifo(fifo)
    job = _intake_job(repo, tmp_path, repo / "data/raw/submissions" / SUBMISSION)
    job["inputs"]["boundaries"] = str(fifo)
    job["params"]["settings"] = dict(job["params"]["settings"], boundaries={"path": str(fifo), "layer": "countries"})
    script = tmp_path / "client.py"
    script.write_text("import sys\nfrom cami_geo import stageworker\n"
                      f"sys.exit(stageworker.delegate({job!r}, path={path!r}))\n", encoding="utf-8")
    before = set(_children(proc.pid))
    client = subprocess.Popen([sys.executable, str(script)])
    deadline = time.monotonic() + 30
    while not (set(_children(proc.pid)) - before) and time.monotonic() < deadline:
        time.sleep(0.05)
    new = set(_children(proc.pid)) - before
    assert new, "the worker forked no child for the job"
    time.sleep(1.0)
    assert set(_children(proc.pid)) & new, "the job ended by itself: it should be waiting on the pipe"
    client.send_signal(signal.SIGKILL)
    client.wait()
    deadline = time.monotonic() + 10
    while set(_children(proc.pid)) & new and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not set(_children(proc.pid)) & new, "the child of the cancelled job still runs"


def test_worker_ends_when_its_run_is_gone(tmp_path):
    starter = subprocess.Popen(
        [sys.executable, "-c", "import time; from cami_geo import stageworker; p, s = stageworker.start(); "
                               "print(p.pid, s, flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    pid, path = starter.stdout.readline().split()
    starter.kill()
    starter.wait()
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
        try:   # reap it if it is a zombie of ours (it is not: it was the starter's child)
            os.waitpid(int(pid), os.WNOHANG)
        except ChildProcessError:
            pass
    status = Path(f"/proc/{pid}/status")
    assert not status.exists() or "zombie" in status.read_text(), "the worker outlived the run that started it"
    assert not Path(path).exists()
    shutil.rmtree(Path(path).parent, ignore_errors=True)


def _run_command(job: dict, env_worker: str | None) -> tuple[subprocess.CompletedProcess, Path]:
    """A rule's run: block: stageworker.job_command, then the command in a shell."""
    params = dict(job["params"])
    threads = params.pop("threads")
    cmd = stageworker.job_command(job["name"], job["inputs"], job["outputs"], params, [job["log_path"]], threads)
    job_file = Path(cmd.rsplit(" ", 1)[1])
    assert job_file.exists()
    env = {k: v for k, v in os.environ.items() if k != stageworker.ENV}
    if env_worker:
        env[stageworker.ENV] = env_worker
    return subprocess.run(cmd, shell=True, env=env, capture_output=True, text=True, timeout=300), job_file


@pytest.mark.parametrize("with_worker", [False, True])
def test_job_command_runs_the_stage_and_writes_its_figures(repo, tmp_path, request, with_worker):
    path = request.getfixturevalue("worker")[1] if with_worker else None
    job = _intake_job(repo, tmp_path, repo / "data/raw/submissions" / SUBMISSION)
    proc, job_file = _run_command(job, path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "validation.json").exists()
    assert not job_file.exists(), "the job's temporary file is left behind"
    figures = [ln for ln in (tmp_path / "intake.log").read_text(encoding="utf-8").splitlines()
               if ln.startswith(stageworker.FIGURES_PREFIX)]
    assert len(figures) == 1 and "exit=0" in figures[0]
    cpu = float(figures[0].split("cpu_s=")[1].split()[0])
    assert cpu > 0.05   # the stage's process, not the client's few milliseconds


def test_job_command_failure_without_worker_is_one_sentence(repo, tmp_path):
    job = _intake_job(repo, tmp_path, repo / "data/raw/submissions" / SUBMISSION)
    job["inputs"]["boundaries"] = str(tmp_path / "missing.gpkg")
    job["params"]["settings"] = dict(job["params"]["settings"], boundaries={"path": str(tmp_path / "missing.gpkg")})
    proc, _ = _run_command(job, None)
    assert proc.returncode == 1
    assert "cami-geo: intake:" in proc.stderr and "missing.gpkg" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_stop_while_the_worker_is_still_loading():
    """SIGTERM during the preload (an import) ends the worker at once and cleanly."""
    for delay in (0.3, 1.5):   # during the first stages' imports, then between jobs' imports
        proc, path = stageworker.start()
        time.sleep(delay)
        start = time.perf_counter()
        stageworker.stop(proc, path)
        elapsed = time.perf_counter() - start
        assert proc.returncode is not None and proc.returncode >= 0, proc.returncode   # not killed
        assert elapsed < 2.5, elapsed
        assert not Path(path).exists()
