"""Progress of long plans and applies, on stderr only (never stdout, never in JSON).

On a terminal, one line redrawn in place: a bar (when the total is known), the count, the rate
and the time elapsed. Otherwise (a CI log), a plain line every :data:`LINE_EVERY` seconds.
Nothing is shown for work shorter than :data:`SHOW_AFTER` seconds, so short runs and tests stay
quiet. ``TOPOLOGY_PROGRESS=off`` turns it off; ``TOPOLOGY_PROGRESS=lines`` forces plain lines;
``TOPOLOGY_PROGRESS_EVERY=SECONDS`` sets the interval between plain lines.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from topology.terminal import is_terminal, visible

SHOW_AFTER = 2.0
"""Seconds before anything is shown."""

LINE_EVERY = 10.0
"""Seconds between two plain lines (not a terminal)."""

REDRAW_EVERY = 0.2
"""Seconds between two redraws of the terminal line."""

BAR_WIDTH = 24


def line_every() -> float:
    """Seconds between two plain lines: ``TOPOLOGY_PROGRESS_EVERY`` when it is a positive number,
    else :data:`LINE_EVERY`."""
    try:
        seconds = float(os.environ.get("TOPOLOGY_PROGRESS_EVERY", ""))
    except ValueError:
        return LINE_EVERY
    return seconds if 0 < seconds < float("inf") else LINE_EVERY


def mode(stream: TextIO) -> str:
    """``off``, ``lines`` or ``bar``: from ``TOPOLOGY_PROGRESS`` and whether ``stream`` is a terminal."""
    wanted = os.environ.get("TOPOLOGY_PROGRESS", "").strip().lower()
    if wanted in ("off", "0", "no", "false"):
        return "off"
    if wanted == "lines":
        return "lines"
    return "bar" if is_terminal(stream) else "lines"


class Progress:
    """One long step: ``advance`` as items are done, ``stage`` to say what is going on,
    ``close`` at the end. Thread-safe; a background ticker keeps the elapsed time moving
    while nothing advances (a large import)."""

    def __init__(self, label: str, total: int | None = None, *, stream: TextIO | None = None,
                 show: str | None = None, clock: object = time.monotonic):
        self.label = label
        self.total = total
        self.stream = stream or sys.stderr
        self.mode = show or mode(self.stream)
        self.clock = clock
        self.started = clock()  # type: ignore[operator]
        self.done = 0
        self.what = ""
        self._lock = threading.Lock()
        self._drawn = False
        self._last_draw = float("-inf")
        self._last_line = self.started
        self._lines = 0
        self.every = line_every()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        if self.mode != "off":
            self._ticker = threading.Thread(target=self._tick, name="topology-progress", daemon=True)
            self._ticker.start()

    # -- what the work reports ------------------------------------------------

    def advance(self, count: int = 1) -> None:
        with self._lock:
            self.done += count
            self._show()

    def stage(self, what: str) -> None:
        with self._lock:
            self.what = what
            self._show()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Clear the terminal line while something else is printed (a line of the apply log)."""
        with self._lock:
            self._clear()
            yield

    def close(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=1)
        with self._lock:
            if self.mode == "bar" and self._drawn:
                self._clear()
            elif self.mode == "lines" and self._lines:
                self._write(self.text(final=True) + "\n")

    # -- rendering --------------------------------------------------------------

    def text(self, final: bool = False) -> str:
        elapsed = max(self.clock() - self.started, 1e-9)  # type: ignore[operator]
        parts = [f"{self.label}:"]
        if self.what and not final:
            parts.append(visible(self.what) + ",")
        if self.total:
            share = min(1.0, self.done / self.total)
            if self.mode == "bar":
                filled = int(share * BAR_WIDTH)
                parts.append("[" + "#" * filled + "-" * (BAR_WIDTH - filled) + "]")
            parts.append(f"{self.done:,}/{self.total:,} ({share:.0%}),")
        elif self.done:
            parts.append(f"{self.done:,} done,")
        if self.done:
            parts.append(f"{self.done / elapsed:,.0f}/s,")
        parts.append(f"{elapsed:.0f} s elapsed" if elapsed >= 10 else f"{elapsed:.1f} s elapsed")
        return " ".join(parts)

    def _show(self) -> None:
        now = self.clock()  # type: ignore[operator]
        if self.mode == "off" or (self.mode == "bar" and now - self.started < SHOW_AFTER):
            return
        if self.mode == "bar":
            # at most one redraw per interval, even when log lines clear the bar in between:
            # a thousand changes logged at once cost a few redraws, not a thousand
            if now - self._last_draw >= REDRAW_EVERY:
                self._write("\r\033[K" + self.text())
                self._drawn = True
                self._last_draw = now
        elif now - self._last_line >= self.every:
            self._write(self.text() + "\n")
            self._lines += 1
            self._last_line = now

    def _clear(self) -> None:
        if self.mode == "bar" and self._drawn:
            self._write("\r\033[K")
            self._drawn = False

    def _tick(self) -> None:
        while not self._stop.wait(REDRAW_EVERY if self.mode == "bar" else min(1.0, self.every)):
            with self._lock:
                self._show()

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            self.mode = "off"  # the stream went away: progress is never worth an error
