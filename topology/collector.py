"""Python's cyclic garbage collector during a command.

Loading 20,000 objects and planning them allocates a few million containers (maps, lists,
tuples, the objects themselves), nearly all of which live to the end of the command. The
collector scans each of them at least twice on the way to its oldest generation (once young,
once in the middle one) and finds nothing: a whole ``plan`` of 20,000 objects leaves a few
hundred objects in cycles. :func:`paused` stops it while the files are loaded and while a plan is
made, then freezes what is left (:func:`gc.freeze`: never scanned again) and starts it again, so
the long parts of a command (an apply's requests, its retries and threads) run with it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

THRESHOLDS = (10_000, 100, 100_000)
"""The collector's thresholds while a command runs (Python's defaults: 700, 10, 10, which re-scan
the objects of a large plan for a fifth of its CPU). Garbage with cycles still goes, in the younger
generations, where it dies."""


@contextmanager
def paused() -> Iterator[None]:
    """The block runs with the collector stopped; what it leaves is then frozen, and the collector
    started again. Inside a paused block (or with the collector already stopped), nothing changes.
    :func:`thawed` undoes the freezes at the end of a command."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def thawed() -> None:
    """Hand what :func:`paused` froze back to the collector (the tests run many commands in one
    process: what one froze must not outlive it)."""
    gc.unfreeze()
