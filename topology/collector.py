"""Python's cyclic garbage collector during a command.

Loading 20,000 objects and planning them allocates a few million containers (maps, lists,
tuples, the objects themselves), nearly all of which live to the end of the command. The
collector scans each of them at least twice on the way to its oldest generation (once young,
once in the middle one) and finds nothing: a whole ``plan`` of 20,000 objects leaves a few
hundred objects in cycles. While a command runs (:func:`command`), :func:`paused` stops it while
the files are loaded and while a plan is made, then freezes what is left (:func:`gc.freeze`:
never scanned again) and starts it again, so an apply's own work (its requests, its retries and
threads) runs with it. Outside a command (the engine called as a library, the tests) and in any
thread but the main one (targets run side by side), :func:`paused` changes nothing: a freeze
takes every object of the process, other threads' garbage among them.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

THRESHOLDS = (10_000, 100, 100_000)
"""The collector's thresholds while a command runs (Python's defaults: 700, 10, 10, which re-scan
the objects of a large plan for a fifth of its CPU). Garbage with cycles still goes, in the younger
generations, where it dies."""

_in_command = False
"""Whether a command runs (:func:`command`): only then does :func:`paused` stop the collector."""


@contextmanager
def command() -> Iterator[None]:
    """The collector as a command wants it (:data:`THRESHOLDS`, :func:`paused` in effect); as it
    was found afterwards, with nothing left frozen (the tests run many commands in one process)."""
    global _in_command
    thresholds, enabled, outer = gc.get_threshold(), gc.isenabled(), _in_command
    gc.set_threshold(*THRESHOLDS)
    _in_command = True
    try:
        yield
    finally:
        _in_command = outer
        gc.set_threshold(*thresholds)
        if not outer:
            gc.unfreeze()
        if enabled:
            gc.enable()


@contextmanager
def paused() -> Iterator[None]:
    """Within a command and on the main thread, the block runs with the collector stopped; what
    the process then holds is frozen, and the collector started again. Inside a paused block (or
    with the collector already stopped), nothing changes."""
    if not (_in_command and gc.isenabled() and threading.current_thread() is threading.main_thread()):
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()
