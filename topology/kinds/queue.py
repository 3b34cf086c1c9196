"""Queues: type, durability and x-arguments (the files' friendly fields among them)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from topology.kinds.base import Resource
from topology.model.values import canonical
from topology.model.specs import FRIENDLY_QUEUE_FIELDS, Queue
from topology.rules.queues import CLASSIC, argument_for, queue_type_of


def queue_arguments(spec: Queue, queue_type: str) -> dict[str, Any]:
    """All x-arguments of a declared queue (friendly fields and raw), without ``x-queue-type``."""
    raw = spec.arguments
    arguments = {name: value for name, value in raw.items() if name != "x-queue-type"} if raw else {}
    for field_name in spec.model_fields_set & _ARGUMENT_FIELDS:
        value = getattr(spec, field_name)
        if value is not None:  # given as null: left out
            arguments[argument_for(field_name, queue_type)] = value
    return canonical(arguments) if arguments else arguments


_ARGUMENT_FIELDS = frozenset(FRIENDLY_QUEUE_FIELDS) - {"type"}
"""The friendly fields that become x-arguments (``type`` is the queue's type, not an argument)."""


@dataclass(frozen=True)
class QueueState(Resource):
    kind: ClassVar[str] = "queue"
    section: ClassVar[str] = "queues"
    replace_on_change: ClassVar[bool] = True
    queue: str = ""
    type: str = CLASSIC
    durable: bool = True
    auto_delete: bool = False
    arguments: dict[str, Any] = field(default_factory=dict, hash=False)
    """x-arguments without ``x-queue-type`` (that is :attr:`type`)."""

    @property
    def key(self) -> tuple[Any, ...]:
        return ("queue", self.vhost, self.queue)

    @property
    def name(self) -> str:
        return self.queue

    def props(self) -> dict[str, Any]:
        return {"type": self.type, "durable": self.durable, "auto_delete": self.auto_delete, "arguments": self.arguments}

    def declare_arguments(self) -> dict[str, Any]:
        """The arguments sent to the broker: always with an explicit ``x-queue-type``."""
        return {**self.arguments, "x-queue-type": self.type}

    @classmethod
    def declared(cls, topology: Any) -> Iterator[tuple[QueueState, Any]]:
        made = cls.made
        for vhost in topology.vhosts.values():
            for name, declared in vhost.queues.items():
                spec = declared.spec
                queue_type = queue_type_of(spec, vhost.default_queue_type)
                yield made({"vhost": vhost.name, "queue": name, "type": queue_type, "durable": spec.durable,
                            "auto_delete": spec.auto_delete, "arguments": queue_arguments(spec, queue_type)}), declared.origin

    @classmethod
    def from_definition(cls, entry: dict[str, Any], vhost: str | None = None,
                        default_queue_type: str | None = None) -> QueueState:
        """A queue of a definitions export or ``GET /api/queues/{vhost}/{name}``; without an
        ``x-queue-type``, of the vhost's ``default_queue_type``."""
        arguments = dict(entry.get("arguments") or {})
        queue_type = arguments.pop("x-queue-type", None) or entry.get("type") or default_queue_type or CLASSIC
        return cls.made({
            "vhost": entry["vhost"] if vhost is None else vhost,
            "queue": entry["name"],
            "type": str(queue_type),
            "durable": bool(entry.get("durable", True)),
            "auto_delete": bool(entry.get("auto_delete", False)),
            "arguments": canonical(arguments),
        })

    def to_definition(self) -> dict[str, Any]:
        """The one broker body, whether the queue is declared alone, imported in bulk, or made
        by a migration."""
        return {"name": self.queue, "vhost": self.vhost, "durable": self.durable, "auto_delete": self.auto_delete,
                "arguments": self.declare_arguments()}

    def body(self) -> dict[str, Any]:
        """The body of ``PUT /api/queues/{vhost}/{name}``."""
        return {k: v for k, v in self.entry().items() if k != "name"}

    @classmethod
    def from_plan(cls, identity: dict[str, Any], props: dict[str, Any]) -> QueueState:
        return cls(vhost=identity["vhost"], queue=identity["name"], **props)

    def declare(self, client: Any) -> None:
        client.put_queue(self.vhost, self.queue, self.body())
