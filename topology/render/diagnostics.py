"""What ``lint`` and ``validate`` found, as located diagnostics for CI outputs (pure).

A :class:`Report` holds the rules a command checks (:class:`RuleDoc`), what it found
(:class:`Diagnostic`, each with its file and line) and the errors that stopped it without a place in
the files. :mod:`topology.render.sarif` writes it as SARIF, :mod:`topology.render.annotations` as
GitHub Actions workflow commands.

Lint's rules are :data:`topology.lint.RULES`. What ``validate`` reports has these rule ids, which
stay the same from release to release (CI systems track a finding by its rule):
:data:`INVALID`, :data:`SUSPECT` and :data:`BROKER_VERSION`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from topology.errors import Problem
from topology.lint import RULES, Finding

ERROR, WARNING, NOTE = "error", "warning", "note"
"""The levels, in SARIF's words (lint's ``info`` is a note)."""

_LEVELS = {"error": ERROR, "warning": WARNING, "info": NOTE}


@dataclass(frozen=True)
class RuleDoc:
    """A rule as a CI system shows it: id, name, level, a one-line summary and the help (Markdown)."""

    id: str
    name: str
    level: str
    short: str
    help: str

    @property
    def help_text(self) -> str:
        """The help without Markdown: code spans as plain text."""
        return self.help.replace("`", "")


INVALID = RuleDoc(
    "topology/invalid", "invalid-topology", ERROR,
    "The topology files are not valid: they cannot be read, break the format, or declare what RabbitMQ refuses.",
    "A YAML error, a value of the wrong type, an unknown key, a name RabbitMQ refuses, a reference that "
    "cannot hold: nothing can be planned or applied until it is fixed (docs: reference/file-format.md).")
SUSPECT = RuleDoc(
    "topology/suspect", "accepted-but-suspect", WARNING,
    "RabbitMQ accepts this but it is most likely a mistake.",
    "A dead-letter or alternate exchange that no file declares, a binding from an exchange that exists only "
    "under some conditions, a policy pattern that backtracks: `validate` passes and `plan` goes on, but "
    "messages may be dropped.")
BROKER_VERSION = RuleDoc(
    "topology/broker-version", "refused-by-broker-version", ERROR,
    "The files use what the given RabbitMQ version refuses.",
    "Found with `validate --broker-version` (or the target's `broker_version`): a queue argument, policy key "
    "or feature that this version does not accept, or no longer does; `plan` would refuse it against such a "
    "broker.")

VALIDATE_RULES = (INVALID, SUSPECT, BROKER_VERSION)
"""The rules of what ``validate`` reports (and of a file ``lint`` cannot load)."""


def lint_rules() -> tuple[RuleDoc, ...]:
    """Lint's rules (:data:`topology.lint.RULES`), then :data:`INVALID` for files that cannot be loaded."""
    return tuple(RuleDoc(rule.id, rule.name, _LEVELS[rule.severity], _first_sentence(rule.why),
                         _unlinked(rule.why.format(docs=""))) for rule in RULES.values()) + (INVALID,)


def _unlinked(markdown: str) -> str:
    """Links to the docs' pages as ``text (docs: page)``: a CI system shows the help away from the docs."""
    return re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r"\1 (docs: \2)", markdown)


def _first_sentence(markdown: str) -> str:
    plain = _unlinked(markdown).replace("`", "")
    match = re.match(r"(.+?[.!?])(\s|$)", plain)
    return match.group(1) if match else plain


@dataclass(frozen=True)
class Diagnostic:
    """One finding at a place in the files (``file`` empty, ``line`` 0 when it has none)."""

    rule: str
    level: str
    message: str
    file: str = ""
    line: int = 0
    where: str = ""
    """The object or setting, e.g. ``vhost 'shop' queue 'orders'``."""
    target: str = ""
    """The project target it was found for, with ``--all-targets``."""

    @property
    def text(self) -> str:
        """The message as the text output words it, after the target and the place."""
        target = f"target {self.target}: " if self.target else ""
        return f"{target}{self.where}: {self.message}" if self.where else f"{target}{self.message}"


@dataclass(frozen=True)
class Report:
    """What one command found, with the exit code it ends with."""

    command: str
    rules: tuple[RuleDoc, ...]
    diagnostics: tuple[Diagnostic, ...] = ()
    failures: tuple[str, ...] = field(default=())
    """Errors that stopped the command and have no place in the files (a project file problem)."""
    exit_code: int = 0

    @property
    def completed(self) -> bool:
        """Whether the files could be read and checked: no failure, no file that could not be loaded."""
        return not self.failures and not any(d.rule == INVALID.id for d in self.diagnostics)


def from_problems(problems: Iterable[Problem], rule: RuleDoc, target: str = "") -> list[Diagnostic]:
    """Located problems (those of :class:`~topology.errors.ConfigError`) as diagnostics of ``rule``."""
    return [Diagnostic(rule.id, rule.level, p.message, p.file, p.line, p.location, target) for p in problems]


def from_findings(findings: Iterable[Finding]) -> list[Diagnostic]:
    """Lint's findings as diagnostics."""
    return [Diagnostic(f.rule, _LEVELS[f.severity], f.message, f.origin.file, f.origin.line, f.subject)
            for f in findings]


def repository_path(file: str, base: str) -> tuple[str, bool]:
    """``file`` as CI systems place it: relative to ``base`` (the directory the command ran in, the
    repository's root in CI) with ``/`` between parts, and True; or, outside ``base``, its absolute
    path and False."""
    import os

    absolute = os.path.abspath(os.path.join(base, file))
    relative = os.path.relpath(absolute, os.path.abspath(base))
    if relative == os.pardir or relative.startswith(os.pardir + os.sep):
        return absolute, False
    return relative.replace(os.sep, "/"), True
