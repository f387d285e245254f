"""Per-user cache folders for results that are slow to compute and the same for many jobs
(the maps' boundaries and basemap, the documents' population charts).

A cache is never an output: it lives outside the working folder (``cami-geo-<uid>/<name>``
in the system's temporary directory unless an environment variable names another folder),
every job works without it, and a file in it is named by a hash of everything it is computed
from, so a stale file is never read.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def cache_dir(name: str, env: str) -> Path | None:
    """The cache folder ``name`` (or the folder the environment variable ``env`` names), made
    if need be; None when ``env`` is set empty (cache off), or when the folder is not safe to
    use: not this user's, or writable by others (cache files may be unpickled)."""
    where = os.environ.get(env)
    if where == "":
        return None
    path = Path(where) if where else Path(tempfile.gettempdir()) / f"cami-geo-{os.getuid()}" / name
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        for d in ((path,) if where else (path, path.parent)):
            st = d.stat()
            if st.st_uid != os.getuid() or st.st_mode & 0o022:
                return None
    except OSError:
        return None
    return path


def store(target: Path, data: bytes) -> None:
    """Write ``data`` to the cache file ``target`` whole or not at all (a temporary file of this
    process, renamed), so that a job never reads a half-written file; on failure the temporary
    file is removed and the error raised (a cache that cannot be written is no cache)."""
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        tmp.replace(target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
