"""A fast reader for the plain block YAML that topology files are written in.

Reading YAML through libyaml's events costs a Python call per node: at 20,000 objects that is
most of what ``validate`` spends. Most topology files use a small part of YAML: block mappings and
lists, plain and quoted one-row scalars, comments and one-row flow collections. This
module reads that part a row at a time and gives the same data and key lines as the full reader
(:class:`topology.loader._Builder`); on anything else (anchors, tags, block scalars, multi-line
scalars, tabs, duplicate or non-text keys, merge keys, escapes, a syntax error...) it gives up and
returns :data:`FALLBACK`, and the full reader reads the file, with its exact messages. Scalars are
resolved by PyYAML's own resolver and constructors, so ``yes``, ``0o17``, ``1:30`` or a date
mean what they mean there. ``tests/unit/test_block_yaml.py`` holds the two readers to the same
output, on the project's own files and on generated ones.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from itertools import chain
from typing import Any

import yaml
from topology.variables import Substituted

FALLBACK = object()
"""What :func:`read` returns when the full reader must read the file."""

Path_ = tuple[Any, ...]


class _Fallback(Exception):
    pass


_UNUSUAL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]")
"""Characters the fast reader leaves to the full one: tabs, carriage returns, YAML's other line
breaks (NEL, LS, PS), controls, byte order marks and what is no character."""

_ASCII_UNUSUAL = bytes([*range(0x00, 0x0A), *range(0x0B, 0x20), 0x7F])
"""The characters of :data:`_UNUSUAL` that are ASCII."""

LONG_ROW = 1000
"""A row of 1,000 characters or more may hold a key longer than libyaml takes (1,024 characters
from its start to its colon), which the full reader refuses with its own message."""


def _usual(piece: str) -> bool:
    """Whether ``piece`` (whole rows) holds nothing the full reader must read: no character of
    :data:`_UNUSUAL` and no row of :data:`LONG_ROW` characters or more. ASCII text (most files) is
    checked by C loops over its bytes and rows, a few times quicker than a regular expression."""
    if piece.isascii():
        raw = piece.encode("ascii")
        if len(raw.translate(None, _ASCII_UNUSUAL)) != len(raw):
            return False
    elif _UNUSUAL.search(piece) is not None:
        return False
    return len(piece) < LONG_ROW or not _has_long_row(piece)


def _has_long_row(piece: str) -> bool:
    """Whether a row of ``piece`` has :data:`LONG_ROW` characters or more. Such a row holds a whole
    block of ``LONG_ROW // 2`` characters that starts at a multiple of that size: where no such
    block lacks a line break (most texts; one C search per block), no row is that long, and the
    rows are not split apart to be measured."""
    step = LONG_ROW // 2
    find = piece.find
    for start in range(0, len(piece), step):
        if find("\n", start, start + step) < 0:
            return max(map(len, piece.split("\n"))) >= LONG_ROW
    return False


_MARKER = re.compile(r"^(?:---|\.\.\.)(?= |$)", re.MULTILINE)
"""A document's start or end."""
_CONTENT = re.compile(r"^ *[^ #\n]", re.MULTILINE)
"""A row that holds something other than a comment."""

_ROW = re.compile(
    r"( *+)"  # indentation
    r"(-(?: ++|$))?"  # a list's dash
    r"(?:(?:([^\s'\"\-?:,\[\]{}#&*!|>%@`][^\s:#]*+(?: ++[^\s:#]++)*+)"  # a plain key (words without : or #)
    r"|('(?:[^'\n]|'')*'|\"[^\"\n]*\"))"  # or a quoted one
    r" *+:(?: ++|$))?"
    r"((?:.*[^ \n])?) *\n?",  # the rest: a value, a comment, or nothing
    re.MULTILINE,
)
"""One row: indentation, dash, key and what follows (each part may be missing). The runs of spaces
and of a key's characters are possessive (``*+``, ``++``): what follows each can never be more of
it, so giving some back could never make a row match, and the engine keeps no place to go back to
(a tenth of the regular expression's work)."""
_INT = re.compile(r"[1-9][0-9]{0,17}|0")
"""A decimal integer (up to 18 digits), read as one without asking YAML's resolver."""
_FLOW_TOKEN = re.compile(
    r" *(?:([\[\]{},]|:(?= ))"  # punctuation (a colon before a space)
    r"|('(?:[^'\n]|'')*'|\"[^\"\n]*\")"  # a quoted scalar
    r"|([^\s,\[\]{}:#'\"&*!|>%@`?][^,\[\]{}:#\n]*))"  # a plain one (no colon or # inside)
)
"""A token of a flow collection on one row."""
_VALUE_FIRST = frozenset("'\"[{-?:,]}#&*!|>%@`")
"""First characters of a value that need a closer look (quotes, flow, indicators, a comment)."""

MAX_DEPTH = 100

OBJECT_DEPTH = 4
"""The parts of an object's path under ``vhosts`` (``vhosts``, its name, a section, a name or index)."""

_VHOSTS = ("vhosts",)


class Reader:
    """One file's rows, read into data with a stack of the open mappings and lists."""

    def __init__(self, loader: Any, lines: dict[Path_, int],
                 substitute: Callable[[str, int, Path_, bool], Any] | None,
                 on_key: Callable[[Path_, str], None] | None, shallow: bool = False):
        self.loader = loader
        self.lines = lines
        self.shallow = shallow
        """Record the lines under ``vhosts`` only down to the objects (:data:`OBJECT_DEPTH`)."""
        self.substitute = substitute
        self.on_key = on_key
        self.plain: dict[str, Any] = {}
        self.depth = 0
        """The depth of the block collections around the row read (flow collections count on from it)."""
        self.first = frozenset(k for k in loader.yaml_implicit_resolvers if k)

    def document(self, text: str) -> Any:
        lines = self.lines
        plain = self.plain
        first_chars = self.first
        value_first = _VALUE_FIRST
        decimal = _INT.fullmatch
        substitute = self.substitute
        on_key = self.on_key
        every_line = not self.shallow
        # the open collections, innermost last: [column, container, path, is_list]
        stack: list[list[Any]] = []
        root: Any = None
        pending: tuple[Any, Any, Path_, int] | None = None
        """(container, key or index, path, column) of a key or dash with nothing after it yet."""
        number = 0
        started = False
        text_keys: set[str] = set()
        """Plain keys already seen to be text."""
        # the innermost open collection, kept apart from the stack for the common row (a key of the
        # mapping being read, at its column)
        top_column, top_container, top_path, top_is_list = -1, None, (), False
        top_indent: str | None = None
        """The indentation of the rows of the innermost collection (``top_column`` spaces)."""
        top_keeps = True
        """Whether the lines of its keys are recorded (:meth:`kept`, once per collection)."""
        top_names_vhosts = False
        """Whether its keys are vhost names, told to :attr:`on_key`."""
        for indent_text, dash, key, quoted_key, rest in _rows(text):
            number += 1
            if not key or dash or pending is not None or top_is_list or indent_text != top_indent:
                if not (dash or key or quoted_key):
                    if not rest or rest[0] == "#":
                        continue  # a blank or comment line
                    if not started and not indent_text and (rest == "---" or rest.startswith("--- #")):
                        started = True
                        continue  # the document's start
                    raise _Fallback()  # a value on a row of its own: a multi-line scalar, a document marker...
                started = True
                column = len(indent_text)
                if pending is not None:
                    container, slot, path, open_column = pending
                    pending = None
                    if column > open_column or (column == open_column and dash and not isinstance(container, list)):
                        child: Any = [] if dash else {}
                        container[slot] = child
                        if isinstance(container, list) and self.kept(path):
                            lines[path] = number  # a list item that is a collection starts at its first row
                        stack.append([column, child, path, bool(dash)])
                        if len(stack) > MAX_DEPTH:
                            raise _Fallback()
                    elif isinstance(container, list):
                        raise _Fallback()  # an empty list item: where libyaml places it is left to libyaml
                    else:
                        container[slot] = self.resolved("")
                while stack and (stack[-1][0] > column or (stack[-1][0] == column and stack[-1][3] and not dash)):
                    stack.pop()
                if not stack:
                    if root is not None or dash:
                        raise _Fallback()  # a second root, or a list at the top: the full reader says what
                    root = {}
                    stack.append([column, root, (), False])
                top_column, top_container, top_path, top_is_list = stack[-1]
                if top_column != column:
                    raise _Fallback()  # indented where nothing opened: more of a value, or a mistake
                top_indent = indent_text
                top_keeps = every_line or len(top_path) < OBJECT_DEPTH or top_path[0] != "vhosts"
                top_names_vhosts = on_key is not None and top_path == _VHOSTS
                if dash:
                    if not top_is_list:
                        raise _Fallback()
                    items = top_container
                    item_path = top_path + (len(items),)
                    if not key and not quoted_key:
                        if not rest or rest[0] == "#":
                            items.append(None)
                            pending = (items, len(items) - 1, item_path, column)
                            continue
                        if rest[0] == "-" and (len(rest) == 1 or rest[1] == " "):
                            raise _Fallback()  # "- - a": a list in a list on one row
                        if self.kept(item_path):
                            lines[item_path] = number
                        self.depth = len(stack)
                        items.append(self.value(rest, number, item_path))
                        continue
                    if self.kept(item_path):
                        lines[item_path] = number
                    column += len(dash)
                    top_column, top_container, top_path, top_is_list = column, {}, item_path, False
                    top_indent = " " * column
                    top_keeps = every_line or len(item_path) < OBJECT_DEPTH or item_path[0] != "vhosts"
                    top_names_vhosts = False  # a list item's keys: never the vhosts
                    items.append(top_container)
                    stack.append([column, top_container, item_path, False])
                    if len(stack) > MAX_DEPTH:
                        raise _Fallback()
                elif top_is_list:
                    raise _Fallback()
            else:
                column = top_column
            mapping = top_container
            frame_path = top_path
            if key:
                if key not in text_keys:
                    if key[0] in first_chars and (key == "<<" or not isinstance(self.resolved(key), str)):
                        raise _Fallback()  # a merge key, or a key YAML reads as a number, boolean, date...
                    text_keys.add(key)
                if substitute is not None and "${" in key:
                    key = self.substituted_key(key, number, frame_path)
            else:
                key = self.unquoted(quoted_key)
                if substitute is not None and "${" in key:
                    key = self.substituted_key(key, number, frame_path)
            if key in mapping:  # no key is too long: every row is shorter than LONG_ROW (_usual)
                raise _Fallback()  # a duplicate key (the full reader names both lines)
            if top_keeps:
                lines[frame_path + (key,)] = number
            if top_names_vhosts:
                on_key(frame_path, key)  # type: ignore[misc]  # set only with on_key
            if not rest or (first := rest[0]) == "#":
                mapping[key] = None
                pending = (mapping, key, frame_path + (key,), column)
                continue
            if first in value_first or " #" in rest or ": " in rest or rest[-1] == ":" or (
                    substitute is not None and "${" in rest):
                self.depth = len(stack)
                mapping[key] = self.value(rest, number, frame_path + (key,))
                continue
            if first not in first_chars:
                mapping[key] = rest  # text: no implicit type starts with its first character
            else:
                value = plain.get(rest, _MISSING)
                if value is not _MISSING:
                    mapping[key] = value
                elif decimal(rest):
                    mapping[key] = int(rest)  # as resolved() reads it, without the call (most often a new one)
                else:
                    mapping[key] = self.resolved(rest)
        if pending is not None:
            container, slot, path, _ = pending
            if isinstance(container, list):
                raise _Fallback()
            container[slot] = self.resolved("")
        if root is None:
            raise _Fallback()
        return root

    def kept(self, path: Path_) -> bool:
        """Whether the line of ``path`` is recorded (see :attr:`shallow`)."""
        return not self.shallow or len(path) <= OBJECT_DEPTH or path[0] != "vhosts"

    # -- keys and scalars ------------------------------------------------------------------------

    def substituted_key(self, text: str, number: int, path: Path_) -> str:
        assert self.substitute is not None
        value = self.substitute(text, number, path, True)
        if isinstance(value, Substituted):
            value = str(value)  # keys are names: always text
        if not isinstance(value, str) or len(value) >= LONG_ROW:
            raise _Fallback()  # a long key is left to the full reader, as the rows are (:func:`_usual`)
        return value

    @staticmethod
    def quoted_end(content: str) -> int | None:
        """The index just past the closing quote of the quoted scalar ``content`` starts with."""
        quote = content[0]
        position = 1
        while True:
            position = content.find(quote, position)
            if position < 0:
                return None
            if quote == "'" and content[position + 1:position + 2] == "'":
                position += 2
                continue
            return position + 1

    @staticmethod
    def unquoted(text: str) -> str:
        body = text[1:-1]
        if text[0] == "'":
            return body.replace("''", "'")
        if "\\" in body:
            raise _Fallback()  # escapes: the full reader reads them
        return body

    def value(self, text: str, number: int, path: Path_) -> Any:
        """The value a row's rest stands for (a quoted or plain scalar, ``[]``, ``{}`` or a flow
        list of words), its comment left out."""
        if text and text[0] in "'\"":
            close = self.quoted_end(text)
            if close is None:
                raise _Fallback()
            tail = text[close:]
            if tail and not (tail[0] == " " and tail.lstrip(" ").startswith("#")):
                raise _Fallback()
            value = self.unquoted(text[:close])
            if self.substitute is not None and "${" in value:
                return self.substitute(value, number, path, False)
            return value
        comment = text.find(" #")
        if comment >= 0:
            text = text[:comment].rstrip(" ")
        elif text.startswith("#"):
            text = ""
        if text:
            first = text[0]
            if first in "[{":
                return self.flow(text, number, path)
            if first in "-?:" and (len(text) == 1 or text[1] == " "):
                raise _Fallback()
            if first in ",]}#&*!|>'\"%@`" or ": " in text or text.endswith(":"):
                raise _Fallback()
        if self.substitute is not None and "${" in text:
            return self.substitute(text, number, path, False)
        return self.resolved(text)

    def flow(self, text: str, number: int, path: Path_) -> Any:
        """A flow collection written on one row (``{type: topic, durable: true}``, ``[a, b]``)."""
        tokens: list[tuple[str, str]] = []
        position = 0
        while position < len(text):
            match = _FLOW_TOKEN.match(text, position)
            if match is None:
                break
            punctuation, quoted, plain = match.groups()
            if punctuation:
                tokens.append((punctuation, punctuation))
            elif quoted:
                tokens.append(("'", quoted))
            else:
                plain = plain.rstrip(" ")
                if plain == "-" or plain.startswith("- "):
                    raise _Fallback()
                tokens.append(("w", plain))
            position = match.end()
        if text[position:].strip(" "):
            raise _Fallback()  # something else (a comment is taken off before)
        self.tokens = tokens
        self.at = 0
        result = self.flow_node(number, path, self.depth)
        if self.at != len(tokens):
            raise _Fallback()
        return result

    def flow_node(self, number: int, path: Path_, depth: int) -> Any:
        tokens = self.tokens
        if self.at >= len(tokens):
            raise _Fallback()
        kind, text = tokens[self.at]
        self.at += 1
        if kind == "'":
            value = self.unquoted(text)
            return self.substitute(value, number, path, False) if self.substitute is not None and "${" in value else value
        if kind == "w":
            return self.substitute(text, number, path, False) if self.substitute is not None and "${" in text \
                else self.resolved(text)
        if depth >= MAX_DEPTH:
            raise _Fallback()  # nested deeply: the full reader says how deep it may go
        if kind == "[":
            items: list[Any] = []
            while True:
                if self.at < len(tokens) and tokens[self.at][0] == "]":
                    self.at += 1
                    return items
                item_path = path + (len(items),)
                if self.kept(item_path):
                    self.lines[item_path] = number
                items.append(self.flow_node(number, item_path, depth + 1))
                self.separator("]")
        if kind == "{":
            mapping: dict[str, Any] = {}
            while True:
                if self.at < len(tokens) and tokens[self.at][0] == "}":
                    self.at += 1
                    return mapping
                if self.at + 1 >= len(tokens) or tokens[self.at][0] not in "'w" or tokens[self.at + 1][0] != ":":
                    raise _Fallback()  # a key without a value, or not a plain one
                key_kind, key = tokens[self.at]
                self.at += 2
                if key_kind == "'":
                    key = self.unquoted(key)
                elif key == "<<" or not isinstance(self.resolved(key), str):
                    raise _Fallback()
                if self.substitute is not None and "${" in key:
                    key = self.substituted_key(key, number, path)
                if key in mapping or len(key) > 1000:
                    raise _Fallback()
                key_path = path + (key,)
                if self.kept(key_path):
                    self.lines[key_path] = number
                if self.on_key is not None and path == _VHOSTS:
                    self.on_key(path, key)
                mapping[key] = self.flow_node(number, key_path, depth + 1)
                self.separator("}")
        raise _Fallback()

    def separator(self, closing: str) -> None:
        """After an entry: a comma, or the closing bracket (left for the caller)."""
        tokens = self.tokens
        if self.at < len(tokens) and tokens[self.at][0] == ",":
            self.at += 1
            if self.at < len(tokens) and tokens[self.at][0] == ",":
                raise _Fallback()
            return
        if self.at >= len(tokens) or tokens[self.at][0] != closing:
            raise _Fallback()

    def resolved(self, text: str) -> Any:
        """A plain scalar's value, as PyYAML's resolver and constructors make it."""
        cached = self.plain.get(text, _MISSING)
        if cached is not _MISSING:
            return cached
        if text and text[0] not in self.first:
            value: Any = text
        elif _INT.fullmatch(text):
            value = int(text)
        else:
            loader = self.loader
            tag = loader.resolve(yaml.ScalarNode, text, (True, False))
            if tag == "tag:yaml.org,2002:str":
                value = text
            else:
                constructor = loader.yaml_constructors.get(tag)
                if constructor is None:
                    raise _Fallback()
                try:
                    value = constructor(loader, yaml.ScalarNode(tag, text))
                except Exception:  # noqa: BLE001 - the full reader says what is wrong with it
                    raise _Fallback() from None
                if isinstance(value, (list, dict, set)):
                    raise _Fallback()
        if len(self.plain) < 100_000:
            self.plain[text] = value
        return value


_MISSING = object()

FIRST_CHUNK = 4096
CHUNK = 262_144
"""Characters of text whose rows are found at once: a small first piece, so that the first vhost
is named (and read ahead) within a millisecond, then large ones."""


def _rows(text: str) -> Iterator[tuple[str, str, str, str, str]]:
    """The rows of ``text`` as :data:`_ROW` finds them, a piece of whole rows at a time, each piece
    checked for what the full reader must read (:func:`_usual`) before it is read. The rows of a
    piece are handed on by :func:`itertools.chain`, not by a generator's step each."""
    return chain.from_iterable(_pieces(text))


def _pieces(text: str) -> Iterator[list[tuple[str, str, str, str, str]]]:
    """The rows of :func:`_rows`, a list for each piece."""
    start, size, length = 0, FIRST_CHUNK, len(text)
    while start < length:
        end = text.find("\n", start + size)
        end = length if end < 0 else end + 1
        piece = text[start:end]
        if not _usual(piece):
            raise _Fallback()
        rows = _ROW.findall(piece)
        if end < length:  # as if the text ended here: an empty match after its last line is no row
            del rows[piece.count("\n"):]
        yield rows
        start, size = end, CHUNK
    if not length:
        yield [("", "", "", "", "")]  # the one (empty) match of an empty text


def read(text: str, loader: Any, lines: dict[Path_, int],
         substitute: Callable[[str, int, Path_, bool], Any] | None = None,
         on_key: Callable[[Path_, str], None] | None = None, max_nodes: int = 2_000_000, shallow: bool = False) -> Any:
    """The data of ``text``, its key and item lines written into ``lines``; :data:`FALLBACK` when
    the full reader must read it (``lines`` may then hold a part: start it afresh).

    ``substitute(text, line, path, is_key)`` replaces ``${...}`` references (``None``: they stay
    as written); ``on_key(path, key)`` is called for each mapping key as it is read; ``shallow``:
    under ``vhosts``, only the lines of the objects and what holds them are recorded (a fifth of
    the reading; read the text again for the others)."""
    if 3 * text.count("\n") + text.count(",") + text.count("[") + text.count("{") > max_nodes:
        return FALLBACK  # a file that may come near the limit of nodes: the full reader counts them exactly
    # a marker starts a row: a substring search (in C) tells most texts have none, for a fifth of a scan
    # of every row's start
    maybe = text.startswith(("---", "...")) or "\n---" in text or "\n..." in text
    markers = _MARKER.findall(text, 0, 1_000_000_000) if maybe else []
    if markers:
        first = _MARKER.search(text)
        if len(markers) > 1 or markers[0] != "---" or _CONTENT.search(text, 0, first.start()) is not None:
            return FALLBACK  # several documents, an end marker, or a start after content
    try:
        return Reader(loader, lines, substitute, on_key, shallow).document(text)
    except (_Fallback, RecursionError):
        return FALLBACK
