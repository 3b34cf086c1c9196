"""YAML syntax errors in the user's words: one line with the column, naming the likely mistake.

The parser's own reasons (libyaml's, or PyYAML's when it stands in) speak of tokens and
indicators; the topology files and the ``--values`` files both report through here.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

_REASONS = (
    ("mapping values are not allowed", "a ':' where no key can start (a value holding ': ' needs quotes, "
                                       "or the line is indented too far)"),
    ("did not find expected '-' indicator", "a line that does not fit the list around it (indentation?)"),
    ("could not find expected ':'", "a key without its ':' (or a value broken over lines without quotes)"),
    ("found unexpected end of stream", "the file ends inside a quoted value or a {...} / [...] (a quote or bracket "
                                       "is not closed)"),
    ("did not find expected ',' or '}'", "a {...} map that is not closed, or a value in it holding '{' or ',' "
                                         "(quote it)"),
    ("expected ',' or '}'", "a {...} map that is not closed, or a value in it holding '{' or ',' (quote it)"),
    ("did not find expected ',' or ']'", "a [...] list that is not closed, or a value in it holding '[' or ',' "
                                         "(quote it)"),
    ("expected ',' or ']'", "a [...] list that is not closed, or a value in it holding '[' or ',' (quote it)"),
    ("did not find expected alphabetic or numeric character", "an anchor (&) or alias (*) needs a name after it"),
    ("expected alphabetic or numeric character", "an anchor (&) or alias (*) needs a name after it"),
    ("found undefined tag handle", "an unknown tag (a '!' that starts a value): remove it, or put the value in "
                                   "quotes"),
    ("found unknown escape character", "an unknown backslash escape in a double-quoted value: write \\\\ for a "
                                       "backslash, or use single quotes"),
    ("did not find expected hexdecimal number", "a \\x, \\u or \\U escape in a double-quoted value needs its hex "
                                                "digits: write \\\\ for a backslash, or use single quotes"),
    ("expected escape sequence of", "a \\x, \\u or \\U escape in a double-quoted value needs its hex digits: "
                                    "write \\\\ for a backslash, or use single quotes"),
    ("did not find expected comment or line break", "unexpected text after a block indicator (| or >): the text "
                                                    "starts on the next line, indented"),
    ("expected chomping or indentation indicators", "unexpected text after a block indicator (| or >): the text "
                                                    "starts on the next line, indented"),
    ("found unknown directive name", "a line starting with % that YAML does not accept: remove it (or quote a "
                                     "value starting with %)"),
    ("found duplicate", "a %YAML or %TAG line given twice: remove one"),
    ("found incompatible YAML document", "a %YAML line for a YAML version this tool does not read: remove it"),
    ("but found another document", "a file holds one document, not several"),
    ("did not find expected <document start>", "text after the end of the document (a file holds one document: "
                                               "indentation?)"),
    ("expected '<document start>'", "text after the end of the document (a file holds one document: indentation?)"),
    ("did not find expected node content", "a value is missing here (after a '-', a ':', a tag or an anchor)"),
    ("expected the node content", "a value is missing here (after a '-', a ':', a tag or an anchor)"),
    ("block sequence entries are not allowed", "a '- ' list item where no list can start (indentation, or a value "
                                               "holding '- ' needs quotes)"),
    ("mapping keys are not allowed", "a '? ' key where no key can start (a value holding '? ' needs quotes)"),
    ("found unexpected ':'", "a ':' where no key can start (a value holding ':' needs quotes)"),
    ("found unexpected document indicator", "a line starting with --- or ... inside a quoted value"),
    ("found invalid Unicode character escape code", "a \\u or \\U escape that is not a character"),
    ("did not find expected whitespace or line break", "a tag, anchor or alias must be followed by a space"),
    ("expected ' ', but found", "a tag, anchor or alias must be followed by a space"),
    ("did not find expected '!'", "a tag that is not written right: remove it, or put the value in quotes"),
    ("did not find the expected '>'", "a tag that is not written right: remove it, or put the value in quotes"),
    ("did not find URI escaped octet", "a tag that is not written right: remove it, or put the value in quotes"),
    ("found an indentation indicator equal to 0", "a block indicator (| or >) with 0 as its indentation: use 1 to 9"),
    ("found a tab character", "a tab in the indentation: YAML indents with spaces, never tabs"),
    ("did not find expected digit", "a %YAML line that YAML does not accept: remove it"),
    ("did not find expected directive name", "a line starting with % that YAML does not accept: remove it (or quote "
                                             "a value starting with %)"),
)
"""The parser's words for common mistakes → the mistake, in the user's words."""


def syntax_problem(text: str, mark: Any, reason: str) -> str:
    """A YAML syntax error as one line: where (the column too), and the likely mistake."""
    if mark is None:
        return f"invalid YAML: {_words(reason, text, 0, 0) or 'the parser gave no reason'}"
    column = mark.column + 1
    lines = text.splitlines()
    line = lines[mark.line] if mark.line < len(lines) else ""
    here = line[mark.column:mark.column + 1]
    if here == "\t" or "'\\t'" in reason:
        return f"invalid YAML: a tab at column {column}: YAML indents with spaces, never tabs"
    words = _words(reason, text, mark.line, mark.column)
    if words is None:
        near = line[mark.column:mark.column + 20].strip()
        words = f"the text here is not YAML{f' (near {near!r})' if near else ''}"
    return f"invalid YAML at column {column}: {words}"


def _words(reason: str, text: str, line_index: int, column: int) -> str | None:
    lines = text.splitlines()
    line = lines[line_index] if line_index < len(lines) else ""
    here = line[column:column + 1]
    if "cannot start any token" in reason:
        if here in ("@", "`"):
            return f"a value cannot start with {here!r} (it is reserved in YAML): put the value in quotes"
        return "a character that cannot start a value here: put the value in quotes"
    if "undefined alias" in reason:
        name = re.match(r"\*([^\s,\[\]{}]*)", line[column:])
        return f"unknown alias *{name.group(1) if name else ''} (an alias names an anchor (&name) written before it)"
    if reason.startswith("did not find expected key") or reason.startswith("expected <block end>"):
        before = line[:column].rstrip()
        if here in ("]", "}"):
            return f"a {here!r} that closes nothing"
        if before.endswith(("'", '"')) and re.search(r":\s+['\"]", before):
            return "text after a quoted value: put the whole value inside the quotes"
        return "a line that does not fit the indentation around it"
    return next((said for parser, said in _REASONS if reason.startswith(parser)), None)


def reader_problem(text: str, error: yaml.reader.ReaderError) -> tuple[int, str]:
    """A character YAML does not allow, as (line, one line)."""
    position = error.position if isinstance(error.position, int) else 0
    line = text[:position].count("\n") + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    code = error.character if isinstance(error.character, int) else ord(str(error.character)[:1] or "?")
    kind = "a control character" if code < 0x20 or 0x7F <= code <= 0x9F else "the character"
    return line, (f"invalid YAML at column {column}: {kind} (U+{code:04X}) is not allowed; remove it, or write it "
                  f"as \"\\u{code:04x}\" inside double quotes")


def yaml_problem(text: str, error: yaml.YAMLError) -> tuple[int, str]:
    """Any error of the YAML parser as (line, one line); line 0 when it has no place."""
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        return (mark.line + 1 if mark else 0), syntax_problem(text, mark, str(error.problem or error.context or ""))
    if isinstance(error, yaml.reader.ReaderError):
        return reader_problem(text, error)
    return 0, "invalid YAML (the parser gave no reason)"
