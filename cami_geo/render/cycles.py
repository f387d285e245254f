"""Stages that run without the cyclic garbage collector."""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def no_cycle_collection() -> Iterator[None]:
    """Run a stage without the cyclic garbage collector (restored afterwards).

    A map or document job makes hundreds of thousands of objects (records, cells, popups,
    artists; WeasyPrint's boxes, styles and Pango layouts) and frees them by reference
    counting; the collector, triggered by the allocations, only walks them again and again
    (about a tenth of a Range State map's CPU time, a twentieth of a PDF's). The few cycles
    a job leaves are collected afterwards, or go with the job's process."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
