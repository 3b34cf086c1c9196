"""Exchanges the broker knows without being told: types, the ``amq.*`` exchanges it declares
itself, and the match modes of header bindings."""

from __future__ import annotations

from dataclasses import dataclass

EXCHANGE_TYPES = frozenset({"direct", "fanout", "topic", "headers"})
"""Exchange types every broker has (plugins add ``x-...`` types)."""

HEADERS_MATCH = frozenset({"all", "any", "all-with-x", "any-with-x"})
"""Values of ``x-match`` on a binding from a headers exchange."""


@dataclass(frozen=True)
class BuiltInExchange:
    """An exchange the broker declares itself."""

    name: str
    type: str
    internal: bool = False
    """Clients cannot publish to it (only the broker does)."""
    vhost: str | None = None
    """The only vhost that has it (``None``: every vhost)."""
    condition: str = ""
    """When the broker declares it at all (empty: always)."""


BUILT_IN_EXCHANGES: dict[str, BuiltInExchange] = {
    e.name: e
    for e in (
        BuiltInExchange("amq.direct", "direct"),
        BuiltInExchange("amq.fanout", "fanout"),
        BuiltInExchange("amq.topic", "topic"),
        BuiltInExchange("amq.headers", "headers"),
        BuiltInExchange("amq.match", "headers"),
        BuiltInExchange("amq.rabbitmq.trace", "topic", internal=True),
        # rabbit_logger_exchange_h: declared (topic, durable, internal) in the default vhost when
        # the log exchange is enabled (log.exchange = true); absent otherwise
        BuiltInExchange("amq.rabbitmq.log", "topic", internal=True, vhost="/",
                        condition="only when the broker's log exchange is enabled (log.exchange = true)"),
    )
}
"""The ``amq.*`` exchanges, by name (the default exchange ``""`` is apart: it cannot be bound)."""


def built_in_exchanges(vhost: str) -> dict[str, BuiltInExchange]:
    """The built-in exchanges vhost ``vhost`` may have."""
    return {name: e for name, e in BUILT_IN_EXCHANGES.items() if e.vhost is None or e.vhost == vhost}
