"""Bindings: from an exchange to a queue or to another exchange."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from topology.kinds.base import Resource, frozen_json
from topology.model.values import canonical


@dataclass(frozen=True)
class BindingState(Resource):
    """A binding; everything about it is its identity (nothing is compared, nothing changes in place)."""

    kind: ClassVar[str] = "binding"
    section: ClassVar[str] = "bindings"
    updates: ClassVar[bool] = False
    source: str = ""
    destination: str = ""
    destination_type: str = "queue"
    routing_key: str = ""
    arguments: dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def key(self) -> tuple[Any, ...]:
        return (
            "binding",
            self.vhost,
            self.source,
            self.destination_type,
            self.destination,
            self.routing_key,
            frozen_json(self.arguments),
        )

    @property
    def pair(self) -> tuple[str, str, str, str]:
        """(vhost, source, destination type, destination): the bindings between two objects."""
        return (self.vhost, self.source, self.destination_type, self.destination)

    @property
    def name(self) -> str:
        text = f"{self.source} -> {self.destination_type} {self.destination} [{self.routing_key}]"
        if self.arguments:
            text += " " + frozen_json(self.arguments)
        return text

    def props(self) -> dict[str, Any]:
        return {}

    def identity(self) -> dict[str, Any]:
        return {
            "vhost": self.vhost,
            "name": self.name,
            "source": self.source,
            "destination": self.destination,
            "destination_type": self.destination_type,
            "routing_key": self.routing_key,
            "arguments": self.arguments,
        }

    @classmethod
    def declared(cls, topology: Any) -> Iterator[tuple[BindingState, Any]]:
        made = cls.made
        for vhost in topology.vhosts.values():
            for declared in vhost.bindings:
                spec = declared.spec
                yield made({"vhost": vhost.name, "source": spec.source, "destination": spec.destination,
                            "destination_type": spec.destination_type, "routing_key": spec.routing_key,
                            "arguments": canonical(spec.arguments) if spec.arguments else {}}), declared.origin

    @classmethod
    def from_definition(cls, entry: dict[str, Any], vhost: str | None = None) -> BindingState | None:
        """A binding of a definitions export or ``GET /api/bindings/...``; ``None`` for one from the
        default exchange (the broker's implicit binding of every queue)."""
        if entry.get("source", "") == "":
            return None
        return cls.made({
            "vhost": entry["vhost"] if vhost is None else vhost,
            "source": entry["source"],
            "destination": entry["destination"],
            "destination_type": entry.get("destination_type", "queue"),
            "routing_key": entry.get("routing_key", ""),
            "arguments": canonical(arguments) if (arguments := entry.get("arguments")) else {},
        })

    def to_definition(self) -> dict[str, Any]:
        return {"source": self.source, "vhost": self.vhost, "destination": self.destination,
                "destination_type": self.destination_type, "routing_key": self.routing_key,
                "arguments": self.arguments}

    def body(self) -> dict[str, Any]:
        """The body of ``POST /api/bindings/{vhost}/e/{source}/{q|e}/{destination}``."""
        return {k: v for k, v in self.entry().items() if k in ("routing_key", "arguments")}

    @classmethod
    def from_plan(cls, identity: dict[str, Any], props: dict[str, Any]) -> BindingState:
        return cls(vhost=identity["vhost"], source=identity["source"], destination=identity["destination"],
                   destination_type=identity["destination_type"], routing_key=identity["routing_key"],
                   arguments=identity["arguments"])

    def declare(self, client: Any) -> None:
        client.create_binding(self.vhost, self.source, self.destination_type, self.destination, self.body())
