"""Policy and operator-policy keys: the kind of value each takes, and the versions that know them.

Everything that reads a policy's definition (validation, normalisation for the diff, lint,
route, explain, migrations) takes its keys from here."""

from __future__ import annotations

from topology.rules.versions import OLDEST_SUPPORTED

POLICY_KEYS: dict[str, str] = {
    # classic mirroring (removed in RabbitMQ 4.0)
    "ha-mode": "all|exactly|nodes",
    "ha-params": "special",
    "ha-sync-mode": "manual|automatic",
    "ha-sync-batch-size": "positive",
    "ha-promote-on-shutdown": "when-synced|always",
    "ha-promote-on-failure": "when-synced|always",
    "queue-master-locator": "min-masters|client-local|random",
    # queues
    "message-ttl": "duration",
    "expires": "duration",
    "max-length": "int",
    "max-length-bytes": "size",
    "overflow": "drop-head|reject-publish|reject-publish-dlx",
    "dead-letter-exchange": "str",
    "dead-letter-routing-key": "str",
    "dead-letter-strategy": "at-most-once|at-least-once",
    "delivery-limit": "limit",
    "queue-mode": "default|lazy",
    "queue-version": "1|2",
    "queue-leader-locator": "client-local|balanced",
    "max-in-memory-length": "int",
    "max-in-memory-bytes": "int",
    "consumer-timeout": "int",
    "target-group-size": "positive",
    "delayed-retry-type": "all|failed|returned|disabled",
    "delayed-retry-min": "positive",
    "delayed-retry-max": "positive",
    # streams
    "max-age": "max-age",
    "stream-max-segment-size-bytes": "positive",
    "initial-cluster-size": "positive",
    # exchanges
    "alternate-exchange": "str",
    # plugins
    "federation-upstream": "str",
    "federation-upstream-set": "str",
}
"""Policy keys and what their values must be (``special``: checked with its partner key)."""

OPERATOR_POLICY_KEYS = frozenset({
    # operator_policy_validator registrations in rabbitmq-server: every version from 3.10.8 on
    "expires", "message-ttl", "max-length", "max-length-bytes", "max-in-memory-length", "max-in-memory-bytes",
    "delivery-limit",
    # later ones, each checked against the broker's version by OPERATOR_POLICY_KEY_VERSIONS
    "queue-version", "overflow", "target-group-size", "ha-mode", "ha-params", "ha-sync-mode", "queue-master-locator",
    "delayed-retry-type", "delayed-retry-min", "delayed-retry-max",
})
"""Keys RabbitMQ accepts in operator policies, in some version."""

OPERATOR_POLICY_KEY_VERSIONS: dict[str, tuple[tuple[tuple[int, ...] | None, tuple[int, ...] | None], ...]] = {
    "ha-mode": (((3, 11, 10), None),),
    "ha-params": (((3, 11, 10), None),),
    "ha-sync-mode": (((3, 11, 15), None),),
    "queue-version": (((3, 11, 24), (3, 12)), ((3, 12, 7), None)),
    "overflow": (((3, 12, 7), None),),
    "queue-master-locator": (((4, 0), None),),
}
"""The versions whose broker registers each later operator policy key (``operator_policy_validator``
in deps/rabbit/src, read at every tag from v3.10.0 to v4.3.5). queue-version came to 3.11.24 after
3.12.0 was out, and to the 3.12 series only in 3.12.7. Upper bounds are the rules of their own:
classic mirroring (4.0) and queue-master-locator (4.3); target-group-size and delayed-retry-* are
policy key rules (they cover operator policies too)."""

DURATION_KEYS = frozenset(key for key, kind in POLICY_KEYS.items() if kind == "duration")
"""Keys whose value is milliseconds, which the files may write with a unit (``30s``)."""

SIZE_KEYS = frozenset(key for key, kind in POLICY_KEYS.items() if kind == "size")
"""Keys whose value is bytes, which the files may write with a unit (``10MiB``)."""

DROPPING_KEYS = ("message-ttl", "expires", "max-length", "max-length-bytes")
"""Keys with which a policy can make a queue drop messages (or itself): a migration refuses to
park messages in a temporary queue that such a policy would match."""


UNSUPPORTED_POLICY_KEYS: dict[str, frozenset[str]] = {
    # rabbit_classic_queue / rabbit_quorum_queue / rabbit_stream_queue capabilities(), RabbitMQ 3.10.8
    "classic": frozenset({
        "max-age", "stream-max-segment-size-bytes", "queue-leader-locator", "initial-cluster-size",
        "delivery-limit", "dead-letter-strategy",
    }),
    "quorum": frozenset({
        "max-priority", "queue-mode", "single-active-consumer", "ha-mode", "ha-params", "ha-sync-mode",
        "ha-promote-on-shutdown", "ha-promote-on-failure", "queue-master-locator",
        "max-age", "stream-max-segment-size-bytes", "initial-cluster-size",
    }),
    "stream": frozenset({
        "expires", "message-ttl", "dead-letter-exchange", "dead-letter-routing-key", "max-length",
        "max-in-memory-length", "max-in-memory-bytes", "max-priority", "overflow", "queue-mode",
        "single-active-consumer", "delivery-limit", "ha-mode", "ha-params", "ha-sync-mode",
        "ha-promote-on-shutdown", "ha-promote-on-failure", "queue-master-locator", "dead-letter-strategy",
    }),
}
"""Policy keys each queue type does not support in RabbitMQ 3.10.8; a policy holding one does
not apply to a queue of that type. Later versions change them: :data:`UNSUPPORTED_CHANGES`."""

UNSUPPORTED_CHANGES: tuple[tuple[tuple[int, ...], str, frozenset[str], frozenset[str]], ...] = (
    # (from version, queue type, keys no longer supported, keys supported again): capabilities() of
    # rabbit_classic_queue, rabbit_quorum_queue and rabbit_stream_queue at each tag
    ((3, 12, 7), "classic", frozenset({"max-in-memory-length", "max-in-memory-bytes", "target-group-size"}), frozenset()),
    ((3, 12, 7), "stream", frozenset({"target-group-size"}), frozenset()),
    ((4, 0, 0), "classic", frozenset(), frozenset({"queue-leader-locator"})),
    ((4, 2, 0), "quorum", frozenset(), frozenset({"single-active-consumer"})),
    ((4, 2, 0), "stream", frozenset(), frozenset({"single-active-consumer"})),
    ((4, 3, 0), "stream", frozenset({"selector-fields"}), frozenset()),
)


def unsupported_keys(queue_type: str, version: tuple[int, ...] = OLDEST_SUPPORTED) -> frozenset[str]:
    """The policy keys a queue type does not support on a broker of ``version``."""
    keys = set(UNSUPPORTED_POLICY_KEYS.get(queue_type, frozenset()))
    for since, kind, added, removed in UNSUPPORTED_CHANGES:
        if kind == queue_type and version >= since:
            keys = (keys | added) - removed
    return frozenset(keys)

APPLY_TO_TYPES: dict[str, frozenset[str]] = {
    "all": frozenset({"classic", "quorum", "stream"}),
    "queues": frozenset({"classic", "quorum", "stream"}),
    "exchanges": frozenset(),
    "classic_queues": frozenset({"classic"}),
    "quorum_queues": frozenset({"quorum"}),
    "streams": frozenset({"stream"}),
}
"""Queue types each ``apply-to`` value covers (the last three exist from RabbitMQ 3.12 on)."""


# -- arguments and policies together ---------------------------------------------------

SMALLEST = frozenset({"message-ttl", "max-length", "max-length-bytes", "max-in-memory-length",
                      "max-in-memory-bytes", "expires", "delivery-limit"})
"""Keys of both a policy and an operator policy where the smaller value wins
(``rabbit_policies:merge_policy_value``)."""

MIN, ARGUMENT, POLICY = "smaller", "argument", "policy"
RESOLUTION: dict[str, dict[str, str]] = {
    "classic": {"expires": MIN, "dead-letter-exchange": ARGUMENT, "dead-letter-routing-key": ARGUMENT,
                "message-ttl": MIN, "max-length": MIN, "max-length-bytes": MIN, "overflow": ARGUMENT,
                "queue-mode": ARGUMENT, "queue-version": ARGUMENT},
    "quorum": {"max-length": MIN, "overflow": POLICY, "max-length-bytes": MIN, "max-in-memory-length": MIN,
               "max-in-memory-bytes": MIN, "delivery-limit": MIN, "expires": POLICY, "message-ttl": MIN,
               "dead-letter-exchange": ARGUMENT, "dead-letter-routing-key": ARGUMENT, "dead-letter-strategy": ARGUMENT},
    "stream": {"max-length-bytes": POLICY, "max-age": POLICY, "stream-max-segment-size-bytes": POLICY,
               "initial-cluster-size": POLICY},
}
"""For a setting both a queue argument and its policies give: which wins, per queue type
(``rabbit_amqqueue_process``, ``rabbit_quorum_queue``, ``rabbit_stream_queue``; from 4.0 a quorum
queue's ``expires`` takes the smaller, which :mod:`topology.policies` applies by version)."""
