"""Every `$ topology ...` command shown in a console block of the README or the docs that reads
the shipped examples (and needs no broker) runs from the project's root and prints the lines the
page shows (blank lines and '...' aside). The README's tour, which needs a broker, runs in
tests/integration/test_readme_tour.py."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NEEDS_A_BROKER = {"plan", "apply", "drift", "export"}


def console_commands(text: str) -> list[tuple[list[str], list[str]]]:
    """Each ``$ ...`` line of the console blocks of ``text``: its words, and the lines shown after it."""
    found: list[tuple[list[str], list[str]]] = []
    for block in re.findall(r"```console\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            if line.startswith("$ "):
                found.append((shlex.split(line[2:], comments=True), []))
            elif found:
                found[-1][1].append(line)
    return found


def shown_commands() -> list[tuple[str, list[str], list[str]]]:
    """(page, the command's words, the lines the page shows it printing)."""
    found = [(str(page.relative_to(ROOT)), words, lines)
             for page in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
             for words, lines in console_commands(page.read_text(encoding="utf-8"))]
    return [(page, words, lines) for page, words, lines in found
            if words[0] == "topology" and words[1] not in NEEDS_A_BROKER
            and any(w.startswith("examples/") for w in words)]


COMMANDS = shown_commands()


def test_the_docs_show_commands_on_the_examples():
    assert len(COMMANDS) >= 3


@pytest.mark.parametrize("page, words, lines", COMMANDS, ids=[" ".join(w) for _, w, _ in COMMANDS])
def test_a_command_the_docs_show_prints_what_they_show(page, words, lines, run, monkeypatch):
    monkeypatch.chdir(ROOT)
    result = run(*words[1:])
    printed = result.out.splitlines()
    for line in lines:
        if line.strip() and line.strip() != "...":
            assert line in printed, f"{page}: {' '.join(words)}: {line!r} not printed\n{result.out}{result.err}"


def every_command_line() -> list[tuple[str, list[str]]]:
    """Every `topology ...` command in a sh or console block of the README and the docs (shell
    redirections, pipes and what follows `&&` cut off)."""
    found = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for block in re.findall(r"```(?:sh|console)\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.S):
            for line in block.replace("\\\n", " ").splitlines():
                line = line.removeprefix("$ ").strip()
                line = re.split(r"\s(?:\||>|&&|;)\s?", line)[0]
                words = shlex.split(line, comments=True)
                while words and re.match(r"^[A-Z_]+=", words[0]):  # VARIABLE=value topology ...
                    words = words[1:]
                synopsis = any(w.startswith("[") or "|" in w for w in words)  # usage lines: PATHS... [--x]
                if len(words) >= 2 and words[0] == "topology" and not words[1].startswith("-") and not synopsis:
                    found.append((str(page.relative_to(ROOT)), words))
    return found


LINES = every_command_line()


def test_the_docs_show_many_commands():
    assert len(LINES) >= 25


@pytest.mark.parametrize("page, words", LINES, ids=[f"{p}: {' '.join(w)}" for p, w in LINES])
def test_every_command_the_docs_show_exists_with_its_options(page, words):
    """Each parses as the command line would read it: the command exists and takes those options."""
    import click

    from topology.cli import cli

    assert words[1] in cli.commands, f"{page}: no command {words[1]!r}"
    with click.Context(cli, info_name="topology", **cli.context_settings) as parent:
        cli.commands[words[1]].make_context(words[1], words[2:], parent=parent)
