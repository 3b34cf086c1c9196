"""The queue x-arguments the format knows: friendly field names and per-type rules.

One table serves both the mapping of friendly fields to x-arguments and the
queue-type validation of friendly fields and raw ``arguments`` alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CLASSIC, QUORUM, STREAM = "classic", "quorum", "stream"
QUEUE_TYPES = (CLASSIC, QUORUM, STREAM)
"""The queue types, in the order the docs and the schema list them."""
ALL_TYPES = frozenset(QUEUE_TYPES)


def is_queue_type(value: object) -> bool:
    """Whether ``value`` (anything a file or a broker gave) names a queue type."""
    return isinstance(value, str) and value in ALL_TYPES


@dataclass(frozen=True)
class QueueArgument:
    """An x-argument: the friendly field for it (if any) and the queue types that accept it."""

    name: str
    field: str | None
    queue_types: frozenset[str]
    kind: str
    """Value kind checked on raw arguments: ``int`` (non-negative), ``positive``, ``limit`` (any integer; a
    negative one means no limit), ``bool``, ``str`` or a ``|``-list of choices."""
    types_since: tuple[tuple[str, tuple[int, ...]], ...] = ()
    """Queue types (of :attr:`queue_types`) that accept the argument only from a RabbitMQ version on."""
    maximum: int | None = None
    """The largest value the broker accepts (it refuses the declaration above)."""
    values_since: tuple[tuple[str, tuple[int, ...], str], ...] = ()
    """Values accepted, or meaning what they say, only from a version on: (value kind, version, what
    it is); the kind ``negative`` is any integer below zero."""


MAX_EXPIRY_MS = 315_360_000_000
"""The largest x-message-ttl and x-expires (ten years, in ms): above it RabbitMQ 3.10.8 and 4.3.6
refuse the queue ({value_too_large, ...}; found by bisection over HTTP)."""

MAX_QUEUE_NAME_BYTES = 255
"""A queue name is at most 255 bytes of UTF-8 (an AMQP short string): the broker refuses a longer one."""

QUEUE_ARGUMENTS: dict[str, QueueArgument] = {
    a.name: a
    for a in (
        QueueArgument("x-message-ttl", "message_ttl", frozenset({CLASSIC, QUORUM}), "int", maximum=MAX_EXPIRY_MS),
        QueueArgument("x-expires", "expires", frozenset({CLASSIC, QUORUM}), "positive", maximum=MAX_EXPIRY_MS),
        QueueArgument("x-max-length", "max_length", frozenset({CLASSIC, QUORUM}), "int"),
        QueueArgument("x-max-length-bytes", "max_length_bytes", ALL_TYPES, "int"),
        QueueArgument("x-overflow", "overflow", frozenset({CLASSIC, QUORUM}), "drop-head|reject-publish|reject-publish-dlx"),
        QueueArgument("x-dead-letter-exchange", "dead_letter_exchange", frozenset({CLASSIC, QUORUM}), "str"),
        QueueArgument("x-dead-letter-routing-key", "dead_letter_routing_key", frozenset({CLASSIC, QUORUM}), "str"),
        QueueArgument("x-dead-letter-strategy", "dead_letter_strategy", frozenset({QUORUM}), "at-most-once|at-least-once"),
        QueueArgument("x-max-priority", "max_priority", frozenset({CLASSIC}), "priority"),
        QueueArgument("x-single-active-consumer", "single_active_consumer", frozenset({CLASSIC, QUORUM}), "bool"),
        QueueArgument("x-delivery-limit", "delivery_limit", frozenset({QUORUM}), "limit",
                      # 4.0 gave quorum queues a default limit of 20 and made a negative one mean none
                      # (rabbit_quorum_queue in v4.0.0); 3.10.8 refuses it in a policy, and its queues drop a
                      # message the first time it is returned (seen)
                      values_since=(("negative", (4, 0), "a negative delivery limit (no limit)"),)),
        QueueArgument("x-quorum-initial-group-size", None, frozenset({QUORUM}), "positive"),
        QueueArgument("x-initial-cluster-size", None, frozenset({STREAM}), "positive"),
        QueueArgument("x-max-age", "max_age", frozenset({STREAM}), "max-age"),
        QueueArgument("x-stream-max-segment-size-bytes", None, frozenset({STREAM}), "positive"),
        QueueArgument("x-queue-mode", "queue_mode", frozenset({CLASSIC}), "default|lazy"),
        QueueArgument("x-queue-version", None, frozenset({CLASSIC}), "1|2"),
        QueueArgument("x-queue-leader-locator", "leader_locator", ALL_TYPES, "client-local|balanced",
                      # rabbit_queue_location, with the queue_master_locator deprecation: 3.10.8 refuses
                      # it on a classic queue ("invalid arg"), 4.0.5 takes it and checks the value
                      types_since=((CLASSIC, (4, 0)),)),
        QueueArgument("x-queue-master-locator", None, frozenset({CLASSIC}), "min-masters|client-local|random"),
        QueueArgument("x-max-in-memory-length", None, frozenset({QUORUM}), "int"),
        QueueArgument("x-max-in-memory-bytes", None, frozenset({QUORUM}), "int"),
    )
}

STATISTICS_INTERVAL = 5.0
"""Seconds between the queue statistics the broker emits to the management API
(``collect_statistics_interval``, 5,000 ms by default)."""

STATISTICS_WAIT = STATISTICS_INTERVAL + 2.0
"""Seconds to wait for the management API's queue statistics to catch up with a change."""

QUORUM_TICK = 5.0
"""A quorum queue publishes its own counts only on its tick (``quorum_tick_interval``, 5 s by
default, ``rabbit_quorum_queue.erl``), before the statistics interval adds its own lag: its
statistics are waited for this much longer."""

QUORUM_DEFAULT_DELIVERY_LIMIT = 20
QUORUM_DEFAULT_DELIVERY_LIMIT_SINCE = (4, 0)
"""Quorum queues without a delivery limit get this one from RabbitMQ 4.0 on (none before)."""

QUORUM_PRIORITIES_SINCE = (4, 0)
"""From RabbitMQ 4.0 quorum queues serve messages that carry a priority ahead of lower ones (seen:
4.0.5 favours priority 5 and above two to one; 4.3.6 delivers strictly by priority); before, they
ignore it."""

FIELD_TO_ARGUMENT: dict[str, str] = {a.field: a.name for a in QUEUE_ARGUMENTS.values() if a.field}
"""Friendly queue field → x-argument (``initial_group_size`` depends on the type: see :func:`argument_for`)."""


MAX_AGE_PATTERN = r"^[0-9]+(Y|M|D|h|m|s)$"
"""A stream's x-max-age: a number and a unit (years, months, days, hours, minutes, seconds)."""


def field_choices(field: str) -> tuple[str, ...]:
    """The values a friendly queue field that is a choice takes (``overflow``, ``dead_letter_strategy``,
    ``queue_mode``, ``leader_locator``): those of its x-argument."""
    return tuple(QUEUE_ARGUMENTS[FIELD_TO_ARGUMENT[field]].kind.split("|"))


def queue_type_of(spec: Any, vhost_default: str | None) -> str:
    """The type a declared queue (``type`` and ``arguments``) gets: its own, ``x-queue-type`` in its
    arguments, the vhost's default, classic."""
    if spec.type:
        return spec.type
    raw = spec.arguments.get("x-queue-type")
    if isinstance(raw, str) and raw:
        return raw
    return vhost_default or CLASSIC


def argument_for(field: str, queue_type: str) -> str:
    """The x-argument a friendly queue field sets on a queue of ``queue_type``."""
    if field == "type":
        return "x-queue-type"
    if field == "initial_group_size":
        return "x-initial-cluster-size" if queue_type == STREAM else "x-quorum-initial-group-size"
    return FIELD_TO_ARGUMENT[field]


def field_for(argument: str) -> str | None:
    """The friendly field that sets ``argument``, if there is one."""
    if argument in ("x-quorum-initial-group-size", "x-initial-cluster-size"):
        return "initial_group_size"
    if argument == "x-queue-type":
        return "type"
    spec = QUEUE_ARGUMENTS.get(argument)
    return spec.field if spec else None
