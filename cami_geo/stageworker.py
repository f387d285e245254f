"""The stage worker: one process that imports the pipeline's libraries once and forks a
child for each Snakemake job, so that a job does not pay for them again.

Importing pandas, geopandas, pyproj, matplotlib, folium and WeasyPrint takes about a second;
a run over 17 species and 20 Range States has a hundred jobs, each a fresh Python process.
With the worker, a job's process (this file run by a Python without site-packages, see
:func:`job_command`) only sends its stage name, files and parameters, with its standard
input, output and error, over a Unix socket; the worker forks (a copy of a process that
has imported everything, made in milliseconds), the child runs the stage exactly as the
job's own process would (same :func:`run_stage`, the job's working directory, environment
and output streams), and the exit status goes back to the job. Snakemake still schedules, counts cores and checks every job; only the process
that does the work is made differently.

Lifetime: the Snakefile starts the worker when a local run starts (``onstart``) and stops it
when the run ends; the worker also ends by itself when the Snakemake process that started
it is gone. A job whose client cannot reach the worker runs the stage in a Python process
of its own (``python -m cami_geo.stageworker --run FILE``), as without the worker;
``stage_worker: false`` in the configuration turns it off, and runs on a cluster executor
never use it (their jobs run on other machines). When the job's process ends before its
child (Snakemake cancelled the job), the worker ends the child.

The figures of a job (wall time, CPU time, peak resident memory of the process that ran
the stage, from ``wait4``) are appended to the job's log as ``job figures: ...``, with or
without the worker (the rules have no ``benchmark:`` files: for ``run:`` jobs Snakemake
measures its own process).

This module imports only the standard library: the client side runs in every job.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import socket
import struct
import sys
import time
from pathlib import Path
from typing import Any

ENV = "CAMI_GEO_STAGE_WORKER"
"""Environment variable holding the worker's socket path (set for the jobs of a local run)."""

PRELOAD = ("numpy", "pandas", "pandas.io.formats.csvs", "pyarrow", "pyarrow.compute", "pyarrow.parquet", "pyarrow.csv",
           "pyarrow.dataset", "pyarrow.pandas_compat", "shapely", "pyproj", "pyogrio", "geopandas", "geopandas.io.arrow",
           "geopandas.io._geoarrow", "yaml", "jinja2", "openpyxl", "PIL.Image", "email.policy", "encodings.utf_8_sig",
           "encodings.cp1251", "encodings.cp1252", "concurrent.futures.process", "multiprocessing.popen_fork",
           "rasterio", "rasterio.mask", "rasterio.shutil", "rasterio.features", "rasterio.transform",
           "scipy.spatial", "scipy.sparse", "scipy.sparse.csgraph",
           "matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg", "matplotlib.backends.backend_svg",
           "branca", "folium", "docx", "weasyprint")
"""Modules imported by the worker before it forks (besides the stage modules of
:data:`cami_geo.workflow.STAGES`); a missing one is skipped. Those up to and including
:data:`FIRST_READY_AFTER` are what the first stages of a run need."""

FIRST_STAGES = ("intake", "combine")
FIRST_READY_AFTER = "rasterio.transform"
"""The worker starts serving jobs once the modules of :data:`PRELOAD` up to this one and the
stage modules of :data:`FIRST_STAGES` are loaded (about a second), and loads the rest
between jobs (about two more seconds of matplotlib, folium, WeasyPrint and SciPy that the
first jobs, the intakes, do not use). A job forked before a module is loaded imports it
itself if it needs it."""

FIGURES_PREFIX = "job figures:"
_HEADER = struct.Struct("!Q")


# -- job side (client) ---------------------------------------------------------------------

def _as_dict(named: Any) -> dict[str, Any]:
    """Snakemake's Namedlist -> plain dict (lists stay lists, single files become str)."""
    if isinstance(named, dict):
        return dict(named)
    return {k: (list(v) if isinstance(v, list) else v) for k, v in named.items()}


def _plain(value: Any) -> Any:
    """Builtin types only (Snakemake's file names are ``str`` subclasses): the client that
    reads the job runs without site-packages, so it cannot import their classes."""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def job_command(rule: str, input: Any, output: Any, params: Any, log: Any, threads: int,  # noqa: A002
                conda_env: str | None = None) -> str:
    """The shell command that runs a rule's stage (called from the rule's ``run:`` block,
    which passes it to Snakemake's ``shell()`` so that Snakemake can cancel and benchmark it).

    The job (stage name, files, parameters, log) goes to a temporary file that the command
    reads and removes; the command is this file run as a script by a Python without
    site-packages (``-I -S``: a few milliseconds), which hands the job to the stage worker
    or, without one, runs it in a full Python process of its own."""
    import shlex
    import tempfile

    log_files = [str(p) for p in log]
    job_params = _plain(_as_dict(params))
    job_params.setdefault("threads", threads)
    job = {"name": str(rule), "inputs": _plain(_as_dict(input)), "outputs": _plain(_as_dict(output)),
           "params": job_params, "log_path": log_files[0] if log_files else None}
    fd, path = tempfile.mkstemp(prefix="cami-geo-job-", suffix=".pickle")
    with os.fdopen(fd, "wb") as fh:
        pickle.dump(job, fh)
    python = os.path.join(conda_env, "bin", "python") if conda_env else sys.executable
    return f"{shlex.quote(python)} -I -S {shlex.quote(os.path.abspath(__file__))} --job {shlex.quote(path)}"


def _exit_code(status: int) -> int:
    """A ``wait`` status as a shell reports it: the exit code, or 128 + N when killed by signal N."""
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


def _append_to_log(log_path: str | None, line: str) -> None:
    if not log_path:
        return
    try:
        with open(log_path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
    except OSError:
        pass


def _figures(ru) -> dict:
    """CPU (user + system, and the system part alone) and peak RSS from a ``wait4`` rusage."""
    return {"cpu_s": ru.ru_utime + ru.ru_stime, "sys_s": ru.ru_stime, "max_rss_mb": ru.ru_maxrss / 1024}


def _write_figures(log_path: str | None, wall_s: float, figures: dict, code: int) -> None:
    _append_to_log(log_path, f"{FIGURES_PREFIX} wall_s={wall_s:.3f} cpu_s={figures['cpu_s']:.3f} "
                             f"sys_s={figures['sys_s']:.3f} max_rss_mb={figures['max_rss_mb']:.1f} exit={code}")


def client_main(job_path: str) -> int:
    """``stageworker.py --job FILE``: run the job in the worker when one is reachable, else in
    a full Python process (this one has no site-packages); returns the exit status."""
    with open(job_path, "rb") as fh:
        job = pickle.load(fh)
    code = delegate(job)
    if code is not None:
        os.unlink(job_path)
        return code
    start = time.perf_counter()
    pid = os.spawnv(os.P_NOWAIT, sys.executable, [sys.executable, "-m", "cami_geo.stageworker", "--run", job_path])
    _, status, ru = os.wait4(pid, 0)
    code = _exit_code(status)
    _write_figures(job.get("log_path"), time.perf_counter() - start, _figures(ru), code)
    return code


def run_main(job_path: str) -> None:
    """``python -m cami_geo.stageworker --run FILE``: run the job's stage in this process."""
    with open(job_path, "rb") as fh:
        job = pickle.load(fh)
    os.unlink(job_path)
    from cami_geo.workflow import run_stage_or_exit

    run_stage_or_exit(job)


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    return bytes(buf)


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def delegate(job: dict[str, Any], *, path: str | None = None) -> int | None:
    """Run ``job`` in the worker at ``path`` (default: from :data:`ENV`) and return its exit
    status, or None when no worker is reachable (the caller runs the job itself)."""
    path = path or os.environ.get(ENV)
    if not path:
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
    except OSError:
        conn.close()
        return None
    request = pickle.dumps({"job": job, "cwd": os.getcwd(), "env": dict(os.environ), "argv": list(sys.argv)})
    sys.stdout.flush()
    sys.stderr.flush()
    streams = [fd if _is_open(fd) else os.open(os.devnull, os.O_RDWR) for fd in (0, 1, 2)]
    try:
        socket.send_fds(conn, [_HEADER.pack(len(request))], streams)
        conn.sendall(request)
    except OSError:
        conn.close()   # the worker took no job: run it here
        return None
    try:
        reply = pickle.loads(_recv_exact(conn, _HEADER.unpack(_recv_exact(conn, _HEADER.size))[0]))
    except (OSError, ConnectionError, pickle.UnpicklingError, EOFError):
        conn.close()   # the job may have run in part: fail it rather than run it twice at once
        print(f"cami-geo: {job['name']}: the stage worker ended before the job did; run the workflow again",
              file=sys.stderr)
        return 1
    conn.close()
    if reply.get("wall_s") is not None:
        _write_figures(job.get("log_path"), reply["wall_s"], reply, reply["code"])
    return int(reply["code"])


# -- worker side (server) ------------------------------------------------------------------

def _preload_steps():
    """The preload, one module per step (a generator): yields ``"serve"`` once the first
    stages can be served (:data:`FIRST_READY_AFTER`), then after each further module, so that
    the worker can fork for a job between two imports (never during one)."""
    import importlib

    from .workflow import STAGES

    def load(name: str) -> Any:
        try:
            return importlib.import_module(name)
        except Exception:  # noqa: BLE001 - an optional library: the child imports it if it needs it
            return None

    def stage_module(name: str) -> None:
        warm_up = getattr(importlib.import_module(name), "warm_up_worker", None)
        if callable(warm_up):  # a stage module's first-use costs, paid here once for every job
            try:
                warm_up()
            except Exception:  # noqa: BLE001 - the jobs then pay them, as without the worker
                pass

    first = PRELOAD[:PRELOAD.index(FIRST_READY_AFTER) + 1]
    for name in first:
        load(name)
    first_stages = list(dict.fromkeys(STAGES[s].split(":")[0] for s in FIRST_STAGES))
    for name in first_stages:
        stage_module(name)
    yield "serve"
    for name in PRELOAD[len(first):]:
        load(name)
        yield name
    try:
        import matplotlib

        matplotlib.use("Agg")
        from PIL import Image

        Image.init()   # the image format plugins, loaded on a first save otherwise
    except Exception:  # noqa: BLE001
        pass
    for name in dict.fromkeys(spec.split(":")[0] for spec in STAGES.values()):
        if name not in first_stages:
            stage_module(name)
            yield name


def _child(listener: socket.socket, conns: list[socket.socket], pidfds: list[int], fds: list[int],
           request: dict[str, Any]) -> None:
    """In the forked child: take the job's streams, directory and environment, run the stage, exit."""
    code = 1
    try:
        listener.close()
        for c in conns:
            c.close()
        for fd in pidfds:
            os.close(fd)
        os.setpgid(0, 0)   # the worker ends the child's whole group when the job is cancelled
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = list(request["argv"])
        from .workflow import run_stage_or_exit

        loaded = set(sys.modules)
        try:
            run_stage_or_exit(request["job"])
        finally:
            _note_imports(request["job"].get("log_path"), loaded)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if exc.code is not None and not isinstance(exc.code, int):
            print(exc.code, file=sys.stderr)
    except BaseException:  # noqa: BLE001 - as an uncaught exception would in the job's own process
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)


def _note_imports(log_path: str | None, loaded: set[str]) -> None:
    """Name in the job's log the packages the job imported itself (candidates for :data:`PRELOAD`)."""
    added = set(sys.modules) - loaded
    # the first module of each new subtree (its parent was loaded already), the job's own package left out
    new = sorted(m for m in added if m.rpartition(".")[0] not in added and not m.startswith("cami_geo"))
    if new:
        _append_to_log(log_path, f"stage worker: modules this job imported (not preloaded): {', '.join(new)}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Stop(BaseException):
    """SIGTERM: the run is over. Not an ``Exception``: the preload's ``except Exception``
    around each import must not swallow it."""


def _on_term(*_):
    raise _Stop


def serve(path: str, parent_pid: int) -> None:
    """Listen at ``path``, fork a child per request, until process ``parent_pid`` is gone or
    SIGTERM arrives. The socket is bound before the libraries load, so the first jobs wait
    for the first stages' libraries instead of loading them too; the rest load between jobs
    (:data:`FIRST_READY_AFTER`)."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    children: dict[int, dict[str, Any]] = {}   # pidfd -> {pid, conn, start, cancelled}
    signal.signal(signal.SIGTERM, _on_term)
    try:
        steps = _preload_steps()
        for step in steps:   # until the first stages can be served
            if step == "serve":
                break
        loading = True
        while _alive(parent_pid) or children:
            watched = {c["conn"]: fd for fd, c in children.items() if not c["cancelled"]}
            ready, _, _ = select.select([listener, *children, *watched], [], [], 0 if loading else 1.0)
            if loading and not ready:   # nothing to do for a job: load one more module
                if next(steps, None) is None:
                    loading = False
                    import gc

                    gc.collect()
                    gc.freeze()   # the libraries' objects: children's collections need not walk (or copy) them
                    Path(path + ".ready").touch()   # for whoever wants to know (tests); jobs just connect
                continue
            for r in ready:
                if r is listener:
                    _accept(listener, children)
                elif isinstance(r, int):
                    _finish(r, children)
                elif watched.get(r) in children:
                    # the job's process closed its end (Snakemake cancelled it): end the child's group
                    child = children[watched[r]]
                    child["cancelled"] = True
                    try:
                        os.killpg(child["pid"], signal.SIGTERM)
                    except OSError:
                        pass
    except _Stop:
        pass
    finally:
        for child in children.values():
            try:
                os.killpg(child["pid"], signal.SIGTERM)
            except OSError:
                pass
        listener.close()
        for p in (path, path + ".ready"):
            try:
                os.unlink(p)
            except OSError:
                pass


def _accept(listener: socket.socket, children: dict) -> None:
    conn, _ = listener.accept()
    fds: list[int] = []
    try:
        conn.settimeout(30)
        head, fds, _, _ = socket.recv_fds(conn, _HEADER.size, 3)
        if len(head) < _HEADER.size:
            head += _recv_exact(conn, _HEADER.size - len(head))
        request = pickle.loads(_recv_exact(conn, _HEADER.unpack(head)[0]))
        conn.settimeout(None)
        if len(fds) != 3:
            raise ConnectionError("a job sent no streams")
    except (OSError, ConnectionError, pickle.UnpicklingError, EOFError, struct.error):
        for fd in fds:
            os.close(fd)
        conn.close()
        return
    sys.stdout.flush()
    sys.stderr.flush()
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        _child(listener, [c["conn"] for c in children.values()] + [conn], list(children), fds, request)
    for fd in fds:
        os.close(fd)
    pidfd = os.pidfd_open(pid)
    children[pidfd] = {"pid": pid, "conn": conn, "start": start, "cancelled": False}


def _finish(pidfd: int, children: dict) -> None:
    child = children.pop(pidfd)
    os.close(pidfd)
    _, status, ru = os.wait4(child["pid"], 0)
    code = _exit_code(status)
    conn = child["conn"]
    reply = pickle.dumps({"code": code, "wall_s": time.perf_counter() - child["start"], **_figures(ru)})
    try:
        conn.sendall(_HEADER.pack(len(reply)) + reply)
    except OSError:
        pass
    conn.close()


# -- starting and stopping (from the Snakefile) -----------------------------------------------

def start(log_path: str | None = None) -> tuple[Any, str]:
    """Start a worker for this process (the Snakemake run); returns (process, socket path).
    The jobs find it through :data:`ENV`, which this sets in the environment they inherit."""
    import subprocess
    import tempfile

    folder = tempfile.mkdtemp(prefix="cami-geo-worker-")   # short path: a socket path has 107 bytes at most
    path = os.path.join(folder, "socket")
    out = open(log_path, "a", encoding="utf-8") if log_path else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "cami_geo.stageworker", path, str(os.getpid())],
                            stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
    if out is not subprocess.DEVNULL:
        out.close()
    deadline = time.monotonic() + 10
    while not os.path.exists(path) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)   # until the socket exists: jobs that start earlier run on their own
    os.environ[ENV] = path
    return proc, path


def stop(proc: Any, path: str) -> None:
    """Stop the worker started by :func:`start` and remove its socket folder."""
    import shutil

    os.environ.pop(ENV, None)
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=3)
        except Exception:  # noqa: BLE001 - it holds nothing worth waiting for at the end of a run
            proc.kill()
            proc.wait()
    shutil.rmtree(os.path.dirname(path), ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1] == "--job":
        sys.exit(client_main(sys.argv[2]))
    elif sys.argv[1] == "--run":
        run_main(sys.argv[2])
    else:
        serve(sys.argv[1], int(sys.argv[2]))
