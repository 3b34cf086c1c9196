"""Value types of the file format: durations and sizes.

Both accept a plain integer (milliseconds, bytes) or a string with a unit, and are
normalised to an integer, so that ``30s`` in a file and ``30000`` on the broker compare
equal.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator

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


def parse_duration(value: Any) -> int:
    """Milliseconds from an int, or from a string such as ``500ms``, ``30s``, ``5m``, ``1h``, ``1d``."""
    number = _plain_int(value, "a duration")
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


Duration = Annotated[int, BeforeValidator(parse_duration)]
"""A duration in milliseconds (``30s`` in a file becomes 30000)."""

Size = Annotated[int, BeforeValidator(parse_size)]
"""A size in bytes (``10MiB`` in a file becomes 10485760)."""
