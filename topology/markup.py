"""Text made safe for Markdown (leaf module: the renderers and the redaction both use it, so that a
secret is masked in the very form a Markdown output writes it)."""

from __future__ import annotations

import re

_MARKDOWN_SPECIAL = re.compile(r"([\\*_~\[\]<>|])")


def markdown_cell(text: object) -> str:
    """Prose safe in a Markdown table cell: every character Markdown would read as markup is escaped,
    so names and patterns show as written (``^(a|b)_x_*`` never turns into italics)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text).replace("\n", " ").replace("`", "'"))


def markdown_code(text: object, in_table: bool = True) -> str:
    """A value as a code span (a fence longer than any backticks in it; in a table cell, ``|``
    escaped, which GitHub's tables need even there)."""
    shown = str(text).replace("\n", " ")
    shown = shown.replace("|", "\\|") if in_table else shown
    fence = "`" * (1 + max((len(run) for run in re.findall(r"`+", shown)), default=0))
    pad = " " if shown.startswith("`") or shown.endswith("`") else ""
    return f"{fence}{pad}{shown}{pad}{fence}"


def markdown_forms(value: str) -> set[str]:
    """How ``value`` may appear in a Markdown output (for the redaction)."""
    return {markdown_cell(value), str(value).replace("\n", " "), str(value).replace("\n", " ").replace("|", "\\|")}
