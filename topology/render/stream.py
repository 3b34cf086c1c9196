"""JSON documents written piece by piece, byte for byte as ``json.dumps`` writes them whole.

A plan of fifty thousand changes is tens of megabytes of JSON, and its document built whole
(every change as a dict, then the text) takes several times that in memory. A document handed
to :func:`pieces` holds :class:`Items` where it would hold its long arrays, and each item is
made, encoded and dropped in turn.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

INDENT = "  "
"""The indentation of every JSON document the tool prints (``json.dumps(..., indent=2)``)."""


class Items:
    """A JSON array whose items are made one at a time, as :func:`pieces` writes them (once)."""

    def __init__(self, items: Iterable[Any]) -> None:
        self._items = items

    def __iter__(self) -> Iterator[Any]:
        return iter(self._items)


class Later:
    """A value made only when :func:`pieces` or :func:`compact_pieces` reaches it (what comes
    before it has been written, and its items made, by then)."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make


def pieces(value: Any, level: int = 0) -> Iterator[str]:
    """The text of ``json.dumps(value, indent=2, ensure_ascii=False)``, in pieces, at nesting
    ``level``; an :class:`Items` in ``value`` is written as the list of its items would be."""
    if isinstance(value, Later):
        yield from pieces(value.make(), level)
    elif isinstance(value, Items):
        inner = "\n" + INDENT * (level + 1)
        first = True
        for item in value:
            yield ("[" if first else ",") + inner
            first = False
            yield from pieces(item, level + 1)
        yield "[]" if first else "\n" + INDENT * level + "]"
    else:
        out: list[str] = []
        try:
            _indented(value, "\n" + INDENT * level, out)
        except _Lazy:  # a map or list with lazy parts: written a member at a time
            pass
        else:
            yield "".join(out)
            return
        inner = "\n" + INDENT * (level + 1)
        if isinstance(value, dict):
            for number, (key, item) in enumerate(value.items()):
                yield ("{" if number == 0 else ",") + inner + json.dumps(key, ensure_ascii=False) + ": "
                yield from pieces(item, level + 1)
            yield "\n" + INDENT * level + "}"
        else:
            for number, item in enumerate(value):
                yield ("[" if number == 0 else ",") + inner
                yield from pieces(item, level + 1)
            yield "\n" + INDENT * level + "]"


class _Lazy(Exception):
    """Met an :class:`Items` or a :class:`Later` (:func:`_indented` writes plain values only)."""


_encode_text = json.encoder.encode_basestring  # type: ignore[attr-defined]  # C, as json.dumps(ensure_ascii=False)
_SCALARS = {True: "true", False: "false", None: "null"}


def _indented(value: Any, newline: str, out: list[str]) -> None:
    """Append what ``json.dumps(value, indent=2, ensure_ascii=False)`` writes, its lines starting
    with ``newline`` (a line feed and the indentation around it). ``json.dumps`` with an indent runs
    its encoder in Python, a generator step per token: a plan of 20,000 creations took a second
    to write so; this writes the same text a few times sooner."""
    kind = type(value)
    if kind is str:
        out.append(_encode_text(value))
    elif kind is dict:
        if not value:
            out.append("{}")
            return
        inner = newline + INDENT
        first = True
        start = len(out)
        for key, item in value.items():
            if type(key) is not str:  # a number or a boolean as a key: as json writes it, all of the map
                del out[start:]
                out.append(json.dumps(value, indent=2, ensure_ascii=False).replace("\n", newline))
                return
            out.append(("{" if first else ",") + inner + _encode_text(key) + ": ")
            first = False
            _indented(item, inner, out)
        out.append(newline + "}")
    elif kind is list or kind is tuple:
        if not value:
            out.append("[]")
            return
        inner = newline + INDENT
        first = True
        for item in value:
            out.append(("[" if first else ",") + inner)
            first = False
            _indented(item, inner, out)
        out.append(newline + "]")
    elif kind is int:
        out.append(int.__repr__(value))
    elif value is None or kind is bool:
        out.append(_SCALARS[value])
    elif isinstance(value, (Items, Later)):
        raise _Lazy()
    else:  # floats (nan and infinities as json writes them) and anything json knows better
        out.append(json.dumps(value, ensure_ascii=False))


def compact_pieces(value: Any) -> Iterator[str]:
    """The text of ``json.dumps(value, sort_keys=True, separators=(",", ":"))`` (what a saved plan's
    checksum is made of), in pieces; an :class:`Items` in ``value`` is written as its list would be."""
    if isinstance(value, Later):
        yield from compact_pieces(value.make())
    elif isinstance(value, Items):
        yield "["
        for number, item in enumerate(value):
            if number:
                yield ","
            yield from compact_pieces(item)
        yield "]"
    else:
        try:
            yield json.dumps(value, sort_keys=True, separators=(",", ":"), default=_lazy)
            return
        except _Lazy:  # a map or list with lazy parts: written a member at a time
            pass
        if isinstance(value, dict):
            for number, key in enumerate(sorted(value)):
                yield ("{" if number == 0 else ",") + json.dumps(key) + ":"
                yield from compact_pieces(value[key])
            yield "}"
        else:
            for number, item in enumerate(value):
                yield "[" if number == 0 else ","
                yield from compact_pieces(item)
            yield "]"


def _lazy(value: Any) -> Any:
    """``json.dumps``'s ``default``: a lazy part stops it (the writer then goes a member at a time)."""
    if isinstance(value, (Items, Later)):
        raise _Lazy()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
