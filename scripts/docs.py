"""The generated parts of the documentation site (docs/), made from the code.

    .venv/bin/python scripts/docs.py          rewrite them
    .venv/bin/python scripts/docs.py --check  exit 1 if one is stale (tests/unit/test_docs.py does the same)

- docs/reference/cli.md: every command's --help, as click prints it;
- docs/reference/lint.md, between its markers: the table of lint rules, from topology.lint.RULES.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
BEGIN, END = "<!-- generated: {name} (scripts/docs.py) -->", "<!-- end of generated: {name} -->"


def cli_page() -> str:
    import click

    from topology.cli import cli

    settings = {**cli.context_settings, "terminal_width": 100}  # the width the tool's own help has on a terminal

    def help_of(command: click.Command, path: list[str], parent: click.Context | None) -> str:
        with click.Context(command, info_name=path[-1], parent=parent, **({} if parent else settings)) as ctx:
            return command.get_help(ctx)

    parts = ["# Command line", "",
             "Every command's `--help`, as the tool prints it (`topology help COMMAND` shows the same).",
             "This page is generated from the code by `scripts/docs.py`; a test fails when it is stale.", "",
             "```text", help_of(cli, ["topology"], None), "```", ""]
    with click.Context(cli, info_name="topology", **settings) as top:
        for name in sorted(cli.commands):
            parts += [f"## topology {name}", "", "```text", help_of(cli.commands[name], ["topology", name], top),
                      "```", ""]
    return "\n".join(parts)


def lint_table() -> str:
    from topology.lint import RULES

    rows = ["| rule | name | severity | why it matters |", "|---|---|---|---|"]
    rows += [f"| `{r.id}` | {r.name} | {r.severity} | {r.why.format(docs='../')} |" for r in RULES.values()]
    return "\n".join(rows)


def with_block(text: str, name: str, block: str) -> str:
    """``text`` with the part between the markers of ``name`` replaced by ``block``."""
    begin, end = BEGIN.format(name=name), END.format(name=name)
    pattern = re.compile(re.escape(begin) + r"\n.*?\n" + re.escape(end), re.S)
    if not pattern.search(text):
        raise SystemExit(f"the markers of {name!r} are missing")
    return pattern.sub(lambda _: f"{begin}\n{block}\n{end}", text)


def pages() -> dict[Path, str]:
    """Each generated file and the text it should have."""
    lint = DOCS / "reference" / "lint.md"
    return {DOCS / "reference" / "cli.md": cli_page(),
            lint: with_block(lint.read_text(encoding="utf-8"), "lint rules", lint_table())}


def main(argv: list[str]) -> int:
    stale = [path for path, text in pages().items() if not path.exists() or path.read_text(encoding="utf-8") != text]
    if argv == ["--check"]:
        for path in stale:
            print(f"stale: {path.relative_to(ROOT)} (run scripts/docs.py)")
        return 1 if stale else 0
    for path, text in pages().items():
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
