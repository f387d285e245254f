"""Fixes for two Snakemake behaviours that cost a local run a good share of a core.

1. Re-check timers (:func:`one_recheck_timer`).

Snakemake 9's job scheduler (``snakemake.scheduling.job_scheduler.JobScheduler``) ends every
scheduling round by starting a timer that starts another round one ``--max-jobs-per-timespan``
later (default ``100/1s``: one second). Rounds also start when a job ends, and each of those
starts a timer of its own, so the timers form chains that never stop: after *n* jobs have
ended, about *n* rounds run every second. A round looks at every ready job (re-evaluating
its params and resources, the sizes of its inputs, and the job selection), so by the end of
a run of a hundred jobs Snakemake's own process spends most of a core on rounds that find
nothing new (docs/benchmarks.md: about 40 s of CPU in Snakemake's process over a run of 111
jobs, whose own CPU time was ~250 s on two cores).

:func:`one_recheck_timer` keeps at most one such timer pending per scheduler. A round still
follows every job end and a timer still follows a round (so a rate-limited run still gets
its next round within the timespan); only the duplicate chains are gone. The Snakefile
applies it when it is loaded; it changes nothing when Snakemake's scheduler no longer has
the method (a later release that fixed it differently), and it is applied once.

2. Input checksums (:func:`checksum_once`). When a job ends, Snakemake records, for each of
its outputs, the checksum of each of its inputs up to ``max-checksum-file-size``
(``PersistenceBase.finished``), and nothing keeps a checksum between those calls: a document
job with five outputs hashes the maps it embeds five times, and every job hashes the
boundary file again. At 10^6 records that was 3.2 GB hashed per run for 347 MB of distinct
files, in Snakemake's main thread (docs/benchmarks.md). :func:`checksum_once` keeps each
checksum by the file's identity, size and modification time, so a file is hashed again only
when it was rewritten.
"""

from __future__ import annotations

import importlib
import os
import threading

_MARK = "_cami_geo_patched"
_PENDING: set[threading.Timer] = set()


def _patch(module: str, cls_name: str, method: str, make) -> bool:
    """Replace ``module.cls_name.method`` by ``make(original)``, once. Returns True when the
    patch is in place (now or from an earlier call); False when Snakemake no longer has it."""
    try:
        cls = getattr(importlib.import_module(module), cls_name)
    except (ImportError, AttributeError):
        return False
    original = getattr(cls, method, None)
    if original is None:
        return False
    if getattr(original, _MARK, False):
        return True
    replacement = make(original)
    setattr(replacement, _MARK, True)
    replacement.__doc__ = original.__doc__
    setattr(cls, method, replacement)
    return True


def one_recheck_timer() -> bool:
    """Patch ``JobScheduler._schedule_reevalutation`` (sic) to keep one pending timer.
    Returns True when the patch is in place (now or from an earlier call)."""
    return _patch("snakemake.scheduling.job_scheduler", "JobScheduler", "_schedule_reevalutation",
                  lambda original: _schedule_reevalutation)


def _schedule_reevalutation(self, delay) -> None:
    # the same timer Snakemake starts, unless this scheduler's last one is still pending;
    # a timer leaves the pending set before it releases the scheduler, so the round it
    # starts can start the next one
    if getattr(self, "_cami_geo_timer", None) in _PENDING:
        return

    def fire() -> None:
        _PENDING.discard(timer)
        self._open_jobs.release()

    timer = threading.Timer(delay, fire)
    self._cami_geo_timer = timer
    _PENDING.add(timer)
    timer.start()


def cancel_recheck_timers() -> None:
    """Cancel the pending re-check timer (the Snakefile's ``onsuccess``/``onerror``: the run
    is over). Python waits for a pending timer's thread before it exits, so a run otherwise
    ends up to one timespan (a second) after its last job."""
    for timer in list(_PENDING):
        timer.cancel()
        _PENDING.discard(timer)


_CHECKSUMS: dict[tuple, str | None] = {}


def checksum_once() -> bool:
    """Patch ``snakemake.io._IOFile.checksum`` to return a local file's checksum from memory
    when the file (device, inode, size, modification and change times in ns) and the size
    threshold are those it was computed for. Storage files, a requested algorithm and forced
    checksums go to Snakemake's own method. Returns True when the patch is in place."""

    def make(original):
        async def checksum(self, threshold=None, force=False, algorithm=None):
            if force or algorithm is not None or self.is_storage:
                return await original(self, threshold, force, algorithm)
            try:
                st = os.stat(self.file)
            except OSError:
                return await original(self, threshold, force, algorithm)
            key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, threshold)
            if key not in _CHECKSUMS:
                _CHECKSUMS[key] = await original(self, threshold, force, algorithm)
            return _CHECKSUMS[key]

        return checksum

    return _patch("snakemake.io", "_IOFile", "checksum", make)
