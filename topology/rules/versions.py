"""RabbitMQ versions: how a version is written and read, and the versions the tool knows by name.

Every version the code compares against is a tuple of three numbers, ``(4, 0, 0)``, so that a
version written short (``4`` or ``4.0``) compares as the first release of its series, never below
it (a tuple ``(4,)`` sorts before ``(4, 0)``, which would let ``4`` pass rules that start at 4.0).
"""

from __future__ import annotations

OLDEST_SUPPORTED = (3, 10, 8)
"""The oldest broker version the tool supports, and what offline commands assume when no version
is given (by --broker-version or the project's target): the rules of the oldest broker are the most
permissive for classic mirroring and the least for everything newer."""


CLASSIC_MIRRORING_REMOVED = (4, 0)
"""RabbitMQ 4.0 removed classic queue mirroring (``ha-*`` policy keys)."""


SLOW_EXPORT_BEFORE = (4, 3, 3)
"""Before RabbitMQ 4.3.3, a vhost's definitions export keeps each binding to a queue only after
looking for that queue in the list of every exported queue, one at a time: its time grows with the
queues times the bindings (10,000 of each on 3.10.8: 0.9 s; 24,367 of each: 16 s). On those brokers
the tool reads the same objects from the broker's lists of queues, bindings, exchanges, policies and
parameters, whose time grows with the objects (:mod:`topology.broker.lists`). The management
plugin's source has that lookup in every release from 3.9.0 to 4.3.2 (3.10.8 and 4.0.5 measured
here); 4.3.3 rewrote the export as one streamed pass (4.3.6 measured here: quick)."""


def has_slow_export(version: tuple[int, ...]) -> bool:
    """Whether a broker of ``version`` exports a vhost slowly (:data:`SLOW_EXPORT_BEFORE`); a
    version the broker did not say (``()``) is taken not to."""
    return bool(version) and version < SLOW_EXPORT_BEFORE


def has_classic_mirroring(version: tuple[int, ...]) -> bool:
    """Whether a broker of ``version`` still mirrors classic queues."""
    return version < CLASSIC_MIRRORING_REMOVED


def parse_version(text: str) -> tuple[int, ...]:
    """A version as a broker reports it (``3.13.7``, ``4.1.0-rc.1``, ``4.0.5+2.g1234``) → ``(3, 13, 7)``;
    ``()`` when it does not start with a number. Missing parts are 0."""
    numbers: list[int] = []
    for part in text.strip().split("+")[0].split("-")[0].split("."):
        if not part.isdigit():
            break
        numbers.append(int(part))
    if not numbers:
        return ()
    return tuple((numbers + [0, 0])[:3])


def parse_given_version(text: str) -> tuple[int, int, int]:
    """A version a user gives (``4``, ``4.0``, ``4.x``, ``3.13.7``) → ``(4, 0, 0)``; :class:`ValueError`
    naming the accepted forms otherwise. ``x`` stands for the first release of the series."""
    parts = text.strip().lower().split(".")
    if parts[-1] == "x" and len(parts) in (2, 3):
        parts = parts[:-1]
    if not 1 <= len(parts) <= 3 or not all(p.isdigit() and len(p) <= 4 for p in parts):
        raise ValueError("a RabbitMQ version such as 4, 4.0, 4.x or 3.13.7")
    numbers = [int(p) for p in parts] + [0, 0]
    return numbers[0], numbers[1], numbers[2]


def version_text(version: tuple[int, ...]) -> str:
    """``(4, 0, 5)`` → ``4.0.5``; a series' first release is written as the series, ``(4, 0, 0)`` → ``4.0``."""
    shown = version[:2] if len(version) == 3 and version[2] == 0 else version
    return ".".join(str(v) for v in shown)
