"""What reaches a terminal: control characters in names made visible.

A name can hold any character (RabbitMQ keeps escape, NUL and the other control characters that
an AMQP client puts in a queue name). Printed raw, an escape sequence in a name could recolour,
move the cursor or retitle the operator's terminal, and a NUL makes an XML report invalid. Every
line the tool prints goes through :func:`visible` (``topology.cli.echo``); the plan's colours are
added after it.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""C0 controls but tab and line feed, DEL, and the C1 controls."""


def visible(text: str) -> str:
    """``text`` with each control character written as ``\\uXXXX`` (valid inside a JSON string, and
    the same value there); tab and line feed are kept."""
    return _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
