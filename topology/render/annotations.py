"""A :class:`~topology.render.diagnostics.Report` as GitHub Actions workflow commands (pure):
``::error file=F,line=L,title=RULE::message``, one line each, which the runner turns into
annotations on the run and on the pull request's changed lines.

GitHub's escaping: in the message ``%``, CR and LF become ``%25``, ``%0D`` and ``%0A``; in a
property value ``:`` and ``,`` also become ``%3A`` and ``%2C``. ``error``, ``warning`` and
``notice`` follow the diagnostic's level. File paths are relative to the directory the command ran
in (the workspace's root in a workflow). No column is given: the files' locations are lines.
"""

from __future__ import annotations

from topology.render.diagnostics import ERROR, WARNING, Diagnostic, Report, repository_path

COMMANDS = {ERROR: "error", WARNING: "warning"}
"""The workflow command of each level; a note is a ``notice``."""


def escape_message(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_message(text).replace(":", "%3A").replace(",", "%2C")


def render_annotations(report: Report, base: str) -> str:
    """A workflow command per diagnostic, then one per error that stopped the command; file paths
    relative to ``base``, the directory the command ran in."""
    lines = [_annotation(d, base) for d in report.diagnostics]
    lines += [f"::error title={escape_property(f'topology {report.command}')}::{escape_message(failure)}"
              for failure in report.failures]
    return "\n".join(lines)


def _annotation(diagnostic: Diagnostic, base: str) -> str:
    properties = []
    if diagnostic.file:
        properties.append(f"file={escape_property(repository_path(diagnostic.file, base)[0])}")
        properties.append(f"line={max(diagnostic.line, 1)}")
    properties.append(f"title={escape_property(diagnostic.rule)}")
    command = COMMANDS.get(diagnostic.level, "notice")
    return f"::{command} {','.join(properties)}::{escape_message(diagnostic.text)}"
