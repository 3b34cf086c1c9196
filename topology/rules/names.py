"""Names the broker reserves or makes itself."""

from __future__ import annotations

RESERVED_PREFIX = "amq."
"""Exchanges and queues whose names start with it are the broker's: it refuses to declare them."""

SERVER_NAMED_PREFIX = "amq.gen-"
"""The names the broker gives a queue declared without a name."""

FEDERATION_PREFIX = "federation:"
"""Exchanges and queues the federation plugin declares for its links."""

USER_TAGS_ACTED_ON = frozenset({"administrator", "monitoring", "policymaker", "management", "impersonator"})
"""The user tags RabbitMQ gives a meaning (what the management plugin lets a user do; an
impersonator may publish with another user's user-id); any other tag is a label only."""


def is_reserved(name: str) -> bool:
    """A name only the broker may give (``amq.*``)."""
    return name.startswith(RESERVED_PREFIX)


def is_built_in_exchange(name: str) -> bool:
    """An exchange the broker makes itself in every vhost: the default one (``""``) and ``amq.*``."""
    return name == "" or is_reserved(name)


def why_reserved_queue(name: str) -> str:
    """Why a queue with a reserved name is not the files' to manage."""
    return "server-named" if name.startswith(SERVER_NAMED_PREFIX) else "a reserved amq.* name"


def is_federation_link(name: str) -> bool:
    """An exchange or queue the federation plugin made."""
    return name.startswith(FEDERATION_PREFIX)
