"""The progress display: on stderr only, quiet for short work, a bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import io

import pytest

from topology import progress as progress_module
from topology.progress import Progress, mode


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_nothing_is_shown_for_short_work():
    stream, clock = io.StringIO(), Clock()
    shown = Progress("apply", 10, stream=stream, show="lines", clock=clock)
    shown.advance(10)
    clock.now += progress_module.SHOW_AFTER / 2
    shown.advance(0)
    shown.close()
    assert stream.getvalue() == ""


def test_plain_lines_come_every_interval_with_count_rate_and_elapsed_time():
    stream, clock = io.StringIO(), Clock()
    shown = Progress("apply", 1000, stream=stream, show="lines", clock=clock)
    clock.now += progress_module.LINE_EVERY
    shown.advance(250)
    clock.now += 1
    shown.advance(10)  # not yet: one line per interval
    clock.now += progress_module.LINE_EVERY
    shown.advance(240)
    shown.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3  # two periodic lines and the final one
    assert lines[0] == "apply: 250/1,000 (25%), 25/s, 10 s elapsed"
    assert lines[1].startswith("apply: 500/1,000 (50%), 24/s, 21 s elapsed")
    assert "\r" not in stream.getvalue() and "\033" not in stream.getvalue()


def test_a_terminal_gets_one_line_redrawn_in_place_with_a_bar_and_cleared_at_the_end():
    stream, clock = Terminal(), Clock()
    shown = Progress("apply", 100, stream=stream, show="bar", clock=clock)
    clock.now += progress_module.SHOW_AFTER
    shown.stage("importing")
    shown.advance(50)  # drawn at most every REDRAW_EVERY seconds
    assert "50/100" not in stream.getvalue()
    clock.now += progress_module.REDRAW_EVERY
    shown.advance(0)
    text = stream.getvalue()
    assert text.startswith("\r\033[K") and "\n" not in text and text.count("\r\033[K") == 2
    assert "[" + "#" * (progress_module.BAR_WIDTH // 2) + "-" * (progress_module.BAR_WIDTH // 2) + "]" in text
    assert "50/100 (50%)" in text and "importing" in text
    with shown.paused():
        assert stream.getvalue().endswith("\r\033[K")  # cleared while a log line is printed
    shown.close()
    assert stream.getvalue().endswith("\r\033[K")


def test_without_a_total_the_count_and_stage_are_shown():
    stream, clock = io.StringIO(), Clock()
    shown = Progress("plan", stream=stream, show="lines", clock=clock)
    shown.stage("reading the broker")
    clock.now += progress_module.LINE_EVERY
    shown.stage("comparing")
    shown.close()
    assert stream.getvalue().splitlines()[0] == "plan: comparing, 10 s elapsed"


@pytest.mark.parametrize(("setting", "terminal", "expected"), [
    ("", True, "bar"), ("", False, "lines"), ("off", True, "off"), ("0", False, "off"), ("lines", True, "lines"),
])
def test_the_mode_follows_the_environment_and_the_stream(monkeypatch, setting, terminal, expected):
    monkeypatch.setenv("TOPOLOGY_PROGRESS", setting)
    monkeypatch.setenv("TERM", "xterm")
    assert mode(Terminal() if terminal else io.StringIO()) == expected


def test_off_writes_nothing_even_for_long_work():
    stream, clock = Terminal(), Clock()
    shown = Progress("apply", 10, stream=stream, show="off", clock=clock)
    clock.now += 3600
    shown.advance(5)
    shown.close()
    assert stream.getvalue() == ""


def test_a_closed_stream_turns_progress_off_instead_of_failing():
    stream, clock = io.StringIO(), Clock()
    shown = Progress("apply", 10, stream=stream, show="lines", clock=clock)
    stream.close()
    clock.now += progress_module.LINE_EVERY
    shown.advance(1)
    shown.close()
    assert shown.mode == "off"


def test_a_thousand_logged_changes_cost_a_few_redraws_not_a_thousand():
    """Each apply log line clears the bar; it comes back at the next interval, not at once."""
    stream, clock = Terminal(), Clock()
    shown = Progress("apply", 1000, stream=stream, show="bar", clock=clock)
    clock.now += progress_module.SHOW_AFTER
    for index in range(1000):
        with shown.paused():
            stream.write(f"+ queue v/q{index}: created\n")
        shown.advance()
        clock.now += 0.001  # a second in all: about five intervals
    shown.close()
    text = stream.getvalue()
    redraws = text.count("apply: ")
    assert 1 <= redraws <= 1 + int(1.0 / progress_module.REDRAW_EVERY) + 1
    logged = sum(len(f"+ queue v/q{index}: created\n") for index in range(1000))
    assert len(text) - logged < 2000  # the bar's own bytes
