"""Colour: the tool's own line shapes coloured wherever output reaches a terminal (or FORCE_COLOR
asks), never with NO_COLOR, never in JSON, and never decided by a name from the files."""

from __future__ import annotations

import io

import click
import pytest

from topology.terminal import colour_wanted, paint

ESC = "\033["


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("environment", "stream", "wanted"), [
    ({}, Terminal(), True),
    ({}, io.StringIO(), False),
    ({"NO_COLOR": "1"}, Terminal(), False),
    ({"NO_COLOR": ""}, Terminal(), True),  # an empty NO_COLOR does not count (no-color.org)
    ({"FORCE_COLOR": "1"}, io.StringIO(), True),
    ({"FORCE_COLOR": "0"}, io.StringIO(), False),
    ({"FORCE_COLOR": "1", "NO_COLOR": "1"}, io.StringIO(), False),
    ({"TERM": "dumb"}, Terminal(), False),
])
def test_colour_follows_the_terminal_no_color_and_force_color(monkeypatch, environment, stream, wanted):
    monkeypatch.delenv("TERM", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert colour_wanted(stream) is wanted


@pytest.mark.parametrize(("line", "colour"), [
    ("error: the broker refused", "red"),
    ("warning: queue 'q' has no consumer", "yellow"),
    ("FAIL routing.yaml:3 orders reach the queue", "red"),
    ("PASS orders reach the queue", "green"),
    ("Drift found: 1 of 3 managed object(s) drifted", "red"),
    ("In sync: 0 of 3 managed object(s) drifted", "green"),
    ("  ! queue v/q: changed", "red"),
    ("  ? queue v/q: statistics not available yet; not checked", "yellow"),
    ("topology.yaml:4: error TOP003 queue v/q: a cycle", "red"),
    ("topology.yaml:4: warning TOP010 queue v/q: no consumer", "yellow"),
    ("+ queue v/q: created", "green"),
    ("- queue v/q: deleted", "red"),
    ("Apply complete: 3 change(s) applied; the broker now matches the files.", "green"),
])
def test_each_line_shape_of_the_tool_has_its_colour(line, colour):
    painted = paint(line)
    assert painted != line and click.unstyle(painted) == line
    code = {"red": 31, "green": 32, "yellow": 33}[colour]
    assert f"{ESC}{code}m" in painted


def test_other_lines_and_names_are_left_alone():
    for line in ("Valid: 1 vhost(s)", "  note: nothing", "{", '  "error": "x"', "queue 'error: x'"):
        assert paint(line) == line


def _lint_file(write) -> str:
    return write("""\
        vhosts:
          v:
            queues:
              a: {dead_letter_exchange: missing}
        """)


def test_force_color_colours_errors_and_findings_and_no_color_wins(run, write, monkeypatch):
    path = _lint_file(write)
    plain = run("lint", path)
    assert ESC not in plain.out + plain.err
    monkeypatch.setenv("FORCE_COLOR", "1")
    coloured = run("lint", path)
    assert ESC in coloured.out
    assert click.unstyle(coloured.out) == plain.out  # the same words, coloured
    failed = run("validate", write("vhosts: [", name="broken.yaml"))
    assert failed.code != 0 and failed.err.count(ESC) >= 1
    assert click.style("error:", fg="red", bold=True) in failed.err
    monkeypatch.setenv("NO_COLOR", "1")
    assert ESC not in run("lint", path).out
    assert ESC not in run("validate", write("vhosts: [", name="broken.yaml")).err


def test_json_is_never_coloured(run, write, monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")
    result = run("lint", _lint_file(write), "--format", "json")
    assert ESC not in result.out


def test_characters_xml_does_not_allow_are_made_visible():
    from xml.etree import ElementTree

    from topology.terminal import visible

    name = "q\ufffe\uffff\ud800x"
    shown = visible(name)
    assert shown == "q\\ufffe\\uffff\\ud800x"
    ElementTree.fromstring(f"<a name='{shown}'/>")  # parses: no character XML refuses
