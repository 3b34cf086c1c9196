"""The record of a message migration, kept on the broker itself (pure).

A queue replaced with its messages (:mod:`topology.migrate`) first moves them to a temporary
queue whose argument holds this record, so that a run interrupted at any point can be finished
by the next one (:func:`topology.broker.live.read_live` finds the records).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from typing import Any

from topology.kinds.base import frozen_json
from topology.model.values import canonical
from topology.kinds.binding import BindingState
from topology.kinds.queue import QueueState

MIGRATION_PREFIX = "topology.migrate."
MIGRATION_ARGUMENT = "topology-migration"
"""Argument of a temporary migration queue holding its :class:`MigrationRecord` as JSON."""


def migration_queue_name(queue: str) -> str:
    """The temporary queue that holds ``queue``'s messages while it is replaced."""
    name = MIGRATION_PREFIX + queue
    if len(name.encode("utf-8")) <= 255:
        return name
    return MIGRATION_PREFIX + hashlib.sha256(queue.encode("utf-8")).hexdigest()[:40]


@dataclass(frozen=True)
class MigrationRecord:
    """What a message migration needs to finish after a crash, kept on the broker itself
    as an argument of its temporary queue: the queue, the queue to declare, and every
    binding the queue had when the migration started."""

    vhost: str
    queue: str
    target: QueueState
    bindings: tuple[BindingState, ...] = ()
    token: str = ""
    """A random value of this migration, in its seal messages and stash headers (so that no
    publisher's header is taken for them); empty in records written before it existed."""

    @property
    def temporary(self) -> str:
        return migration_queue_name(self.queue)

    def to_argument(self) -> str:
        return frozen_json({
            "version": 1,
            "queue": self.queue,
            "target": self.target.props(),
            "bindings": [
                {"source": b.source, "routing_key": b.routing_key, "arguments": b.arguments} for b in self.bindings
            ],
            **({"token": self.token} if self.token else {}),
        })

    @classmethod
    def from_argument(cls, vhost: str, text: Any) -> MigrationRecord | None:
        """The record kept in a temporary queue's argument; ``None`` when it is not one of ours."""
        try:
            data = json.loads(text)
            queue, target = data["queue"], data["target"]
            record = cls(
                vhost=vhost,
                queue=queue,
                target=QueueState(
                    vhost=vhost, queue=queue, type=target["type"], durable=bool(target["durable"]),
                    auto_delete=bool(target["auto_delete"]), arguments=canonical(dict(target["arguments"])),
                ),
                bindings=tuple(
                    BindingState(vhost=vhost, source=b["source"], destination=queue, routing_key=b["routing_key"],
                                 arguments=canonical(dict(b["arguments"])))
                    for b in data["bindings"]
                ),
                token=str(data.get("token", "")),
            )
        except (TypeError, ValueError, KeyError, AttributeError):
            return None
        return record if data.get("version") == 1 and isinstance(queue, str) else None

    def with_bindings(self, extra: list[BindingState]) -> MigrationRecord:
        known = {b.key for b in self.bindings}
        added = tuple(b for b in extra if b.key not in known)
        return replace(self, bindings=self.bindings + added) if added else self
