"""The help: bare `topology`, `topology help [COMMAND]`, and the examples at the end of every
command's --help, each of which parses, and runs where it needs no broker."""

from __future__ import annotations

import shlex
from pathlib import Path

import click
import pytest

from topology.cli import EXAMPLES, cli

ROOT = Path(__file__).resolve().parents[2]
OFFLINE = {"validate", "route", "explain", "lint", "graph", "test", "help"}


def test_bare_topology_prints_the_help_and_succeeds(run):
    result = run()
    assert result.code == 0 and result.err == ""
    assert result.out.startswith("Usage: topology") and "validate" in result.out and "topology help COMMAND" in result.out


def test_help_shows_the_same_text_as_dash_dash_help(run):
    assert run("help").out == run("--help").out
    for command in cli.commands:
        assert run("help", command).out == run(command, "--help").out, command


def test_help_of_an_unknown_command_is_one_line_with_a_suggestion(run):
    result = run("help", "plna")
    assert result.code == 1 and result.out == ""
    assert result.err.strip().splitlines() == [
        "error: no such command 'plna'; did you mean 'plan'? (see 'topology help')"]


def test_every_command_has_examples_at_the_end_of_its_help(run):
    assert set(EXAMPLES) == set(cli.commands)
    for command, lines in EXAMPLES.items():
        shown = run(command, "--help").out
        assert shown.rstrip().endswith(lines[-1]) and all(line in shown for line in lines), command


EVERY_EXAMPLE = [(command, line) for command, lines in EXAMPLES.items() for line in lines]


@pytest.mark.parametrize("command, line", EVERY_EXAMPLE, ids=[line for _, line in EVERY_EXAMPLE])
def test_every_example_parses_and_those_without_a_broker_run(command, line, run, monkeypatch):
    words = shlex.split(line, comments=True)
    assert words[:2] == ["topology", command]
    with click.Context(cli, info_name="topology", **cli.context_settings) as parent:  # options and arguments as click reads them
        cli.commands[command].make_context(command, words[2:], parent=parent)
    # the others need a broker or a file of the reader's: parsed only
    runnable = command in OFFLINE and not {"--values", "--out", "--live"} & set(words)
    if runnable:
        monkeypatch.chdir(ROOT)  # the examples name the project's own example files
        assert all(Path(w).exists() for w in words[2:] if w.startswith("examples/"))
        result = run(*words[1:])
        assert result.code == 0, (line, result.err)
        assert result.out.strip()
