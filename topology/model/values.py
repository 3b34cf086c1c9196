"""Value types of the file format: durations and sizes; and the canonical form of raw values.

Durations and sizes accept a plain integer (milliseconds, bytes) or a string with a unit, and
are normalised to an integer, so that ``30s`` in a file and ``30000`` on the broker compare
equal. Raw arguments and definitions are compared in their canonical form (:func:`canonical`).
"""

from __future__ import annotations

import re
from typing import Any, get_args

_DURATION_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION_RE = re.compile(r"^\s*([0-9]+)\s*(ms|s|m|h|d)\s*$")

_SIZE_UNITS = {
    "b": 1,
    "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4,
}
_SIZE_RE = re.compile(r"^\s*([0-9]+)\s*([a-zA-Z]+)\s*$")
_DIGITS_RE = re.compile(r"^\s*[0-9]+\s*$")


def _plain_int(value: Any, what: str) -> int | None:
    if isinstance(value, bool):
        raise ValueError(f"expected {what}, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


_MAX_DIGITS = 30
"""Digits a duration or size may have (far beyond any the broker takes; Python refuses to read
numbers of thousands of digits)."""


def _shown(value: str) -> str:
    return repr(value if len(value) <= 40 else value[:37] + "...")


def _too_long(value: Any, what: str) -> None:
    if isinstance(value, str) and sum(character.isdigit() for character in value) > _MAX_DIGITS:
        raise ValueError(f"invalid {what} {_shown(value.strip())}: the number is far too large")


def parse_duration(value: Any) -> int:
    """Milliseconds from an int, or from a string such as ``500ms``, ``30s``, ``5m``, ``1h``, ``1d``."""
    number = _plain_int(value, "a duration")
    _too_long(value, "duration")
    if number is None and isinstance(value, str):
        if _DIGITS_RE.match(value):
            number = int(value)
        else:
            match = _DURATION_RE.match(value)
            if match:
                number = int(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if number is None:
        raise ValueError(
            f"invalid duration {value!r}: use milliseconds (30000) or a number with ms, s, m, h or d (30s)"
        )
    if number < 0:
        raise ValueError(f"a duration cannot be negative: {value!r}")
    return number


def parse_size(value: Any) -> int:
    """Bytes from an int, or from a string such as ``512KiB``, ``10MB`` (SI) or ``10MiB`` (binary)."""
    number = _plain_int(value, "a size")
    _too_long(value, "size")
    if number is None and isinstance(value, str):
        if _DIGITS_RE.match(value):
            number = int(value)
        else:
            match = _SIZE_RE.match(value)
            if match and match.group(2).lower() in _SIZE_UNITS:
                number = int(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]
    if number is None:
        raise ValueError(
            f"invalid size {value!r}: use bytes (1048576) or a number with B, KB, MB, GB, TB, KiB, MiB, GiB or TiB"
        )
    if number < 0:
        raise ValueError(f"a size cannot be negative: {value!r}")
    return number


_AS_IS = frozenset({str, int, bool, type(None)})
"""Types whose values are their own canonical form (the most common values)."""


def canonical(value: Any) -> Any:
    """Canonical form of an argument or definition value: integral floats become ints, maps are sorted."""
    if type(value) in _AS_IS:
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        if not value:
            return {}
        as_is = _AS_IS
        sorted_ = {}
        for k in sorted(value, key=str):
            item = value[k]
            sorted_[str(k)] = item if type(item) in as_is else canonical(item)
        return sorted_
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    return value


def readable_duration(milliseconds: int) -> int | str:
    """The shortest exact way to write ``milliseconds`` in a file: ``86400000`` → ``1d``,
    ``90000`` → ``90s``, ``1500`` → ``1500ms``; ``0`` stays ``0``. :func:`parse_duration`
    reads the result back to the same number."""
    if milliseconds == 0:
        return 0
    unit, size = max(((u, s) for u, s in _DURATION_UNITS.items() if milliseconds % s == 0), key=lambda item: item[1])
    return f"{milliseconds // size}{unit}"


_SIZE_NAMES = {"b": "B", "kb": "KB", "mb": "MB", "gb": "GB", "tb": "TB", "kib": "KiB", "mib": "MiB", "gib": "GiB",
               "tib": "TiB"}


def readable_size(size: int) -> int | str:
    """The shortest exact way to write ``size`` bytes in a file: ``1073741824`` → ``1GiB``,
    ``5000000`` → ``5MB``; plain bytes when no unit of a kilobyte or more divides it (``1500``).
    Between an SI and a binary unit, the smaller number wins (binary on a tie). :func:`parse_size`
    reads the result back to the same number."""
    fits = [(size // factor, unit) for unit, factor in _SIZE_UNITS.items()
            if factor > 1 and size > 0 and size % factor == 0]
    if not fits:
        return size
    number, unit = min(fits, key=lambda item: (item[0], not item[1].endswith("ib")))
    return f"{number}{_SIZE_NAMES[unit]}"


def with_unit(annotation: Any, value: Any) -> Any:
    """``value`` written with its unit (:func:`readable_duration`, :func:`readable_size`) when a
    field of type ``annotation`` reads durations or sizes and ``value`` is a whole number ≥ 0;
    otherwise ``value`` as it is (also a number too long for a unit to be read back)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or len(str(value)) > _MAX_DIGITS:
        return value
    pending = [annotation]
    while pending:
        current = pending.pop()
        for metadata in getattr(current, "__metadata__", ()):
            reader = getattr(metadata, "func", None)  # a pydantic BeforeValidator's (topology.model.format)
            if reader is parse_duration:
                return readable_duration(value)
            if reader is parse_size:
                return readable_size(value)
        pending.extend(get_args(current))
    return value
