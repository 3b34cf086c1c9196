"""What reaches a terminal: control characters in names made visible.

A name can hold any character (RabbitMQ keeps escape, NUL and the other control characters that
an AMQP client puts in a queue name). Printed raw, an escape sequence in a name could recolour,
move the cursor or retitle the operator's terminal, and a NUL makes an XML report invalid. Every
line the tool prints goes through :func:`visible` (``topology.cli.echo``); the plan's colours are
added after it.
"""

from __future__ import annotations

import os
import re
from typing import Any

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
"""C0 controls but tab and line feed, DEL, the C1 controls, and what XML 1.0 does not allow either
(lone surrogates, U+FFFE, U+FFFF: a broker name may hold them)."""


def visible(text: str) -> str:
    """``text`` with each control character written as ``\\uXXXX`` (valid inside a JSON string, and
    the same value there); tab and line feed are kept."""
    return _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


# -- colour -----------------------------------------------------------------------------------------

def colour_wanted(stream: Any) -> bool:
    """Whether what goes to ``stream`` is coloured: ``NO_COLOR`` (any non-empty value) turns colour
    off everywhere, ``FORCE_COLOR`` (non-empty, not ``0``) turns it on where it would be off (a CI log
    that shows colours); otherwise only on a terminal whose ``TERM`` is not ``dumb``."""
    if os.environ.get("NO_COLOR", ""):
        return False
    forced = os.environ.get("FORCE_COLOR", "")
    if forced and forced != "0":
        return True
    return is_terminal(stream)


def is_terminal(stream: Any) -> bool:
    """Whether ``stream`` is a terminal that can redraw and colour (its ``TERM`` is not ``dumb``)."""
    try:
        terminal = bool(stream.isatty())
    except (AttributeError, ValueError):
        terminal = False
    return terminal and os.environ.get("TERM") != "dumb"


_RED, _GREEN, _YELLOW, _CYAN, _MAGENTA = "red", "green", "yellow", "cyan", "magenta"

_LINE_RULES: tuple[tuple[re.Pattern[str], str, bool], ...] = (
    # (what starts the line, its colour, whether the whole line is coloured rather than the match)
    (re.compile(r"error:"), _RED, False),
    (re.compile(r"warning:"), _YELLOW, False),
    (re.compile(r"FAIL\b"), _RED, False),
    (re.compile(r"PASS\b"), _GREEN, False),
    (re.compile(r"Drift found:"), _RED, False),
    (re.compile(r"In sync:"), _GREEN, False),
    (re.compile(r"Apply complete:"), _GREEN, False),
    (re.compile(r"  ! "), _RED, True),
    (re.compile(r"  \? "), _YELLOW, True),
    (re.compile(r"[^ ].*?: error TOP\d+ "), _RED, False),
    (re.compile(r"[^ ].*?: warning TOP\d+ "), _YELLOW, False),
    (re.compile(r"\+ "), _GREEN, True),
    (re.compile(r"~ "), _YELLOW, True),
    (re.compile(r"-/\+ "), _MAGENTA, True),
    (re.compile(r">> "), _CYAN, True),
    (re.compile(r"- "), _RED, True),
)
"""The tool's own line shapes (errors, warnings, routing-test and drift verdicts, lint findings, the
apply log), each with its colour. Only the start of a line is matched, and every shape begins
with the tool's words, never with a name from the files or the broker."""


def paint(text: str) -> str:
    """``text`` (already made :func:`visible`) with the tool's line shapes coloured."""
    import click

    lines = []
    for line in text.split("\n"):
        for pattern, colour, whole in _LINE_RULES:
            match = pattern.match(line)
            if match:
                if whole:
                    line = click.style(line, fg=colour)
                else:
                    line = click.style(match.group(), fg=colour, bold=True) + line[match.end():]
                break
        lines.append(line)
    return "\n".join(lines)
