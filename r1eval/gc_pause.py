"""Pausing Python's cyclic garbage collector around bulk work that makes no reference cycles."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """Reading a log, planning and scoring a run make hundreds of thousands of objects and no
    reference cycles: the cyclic collector would scan them again and again (a third of the
    time of reading a big log, a fifth of the time of reopening a finished run). Also a
    decorator."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
