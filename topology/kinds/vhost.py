"""Virtual hosts: description, tags, default queue type, tracing and limits."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from topology.kinds.base import Resource
from topology.rules.queues import is_queue_type


def tag_list(tags: Any) -> list[str]:
    """Tags as the broker gives them (a list, or one comma-separated text) as a list."""
    if isinstance(tags, str):
        return [t for t in tags.split(",") if t]
    return list(tags or [])


@dataclass(frozen=True)
class VhostState(Resource):
    """A vhost. ``None`` in a field: the files leave that setting as it is (declared side)."""

    kind: ClassVar[str] = "vhost"
    section: ClassVar[str] = "vhosts"
    vhost: str
    description: str | None = None
    tags: tuple[str, ...] | None = None
    default_queue_type: str | None = None
    tracing: bool | None = None
    limits: dict[str, int] | None = field(default=None, hash=False)

    @property
    def key(self) -> tuple[Any, ...]:
        return ("vhost", self.vhost)

    @property
    def name(self) -> str:
        return self.vhost

    def props(self) -> dict[str, Any]:
        values = {
            "description": self.description,
            "tags": list(self.tags) if self.tags is not None else None,
            "default_queue_type": self.default_queue_type,
            "tracing": self.tracing,
            "limits": self.limits,
        }
        return {k: v for k, v in values.items() if v is not None}

    @classmethod
    def declared(cls, topology: Any) -> Iterator[tuple[VhostState, Any]]:
        for vhost in topology.vhosts.values():
            yield cls(
                vhost=vhost.name,
                description=vhost.description,
                tags=tuple(sorted(vhost.tags)) if vhost.tags is not None else None,
                default_queue_type=vhost.default_queue_type,
                tracing=vhost.tracing,
                limits=dict(sorted(vhost.limits.items())) if vhost.limits is not None else None,
            ), vhost.origin

    @classmethod
    def from_definition(cls, entry: dict[str, Any], vhost: str | None = None) -> VhostState:
        """A vhost from ``GET /api/vhosts`` or a definitions document (whose settings may sit in
        ``metadata``). Its limits are another entry (:meth:`with_limits`)."""
        metadata = entry.get("metadata") or {}
        tags = tag_list(entry.get("tags", metadata.get("tags")))
        default_queue_type = entry.get("default_queue_type", metadata.get("default_queue_type"))
        if not is_queue_type(default_queue_type):
            default_queue_type = None  # "undefined" on brokers that do not keep it
        return cls(
            vhost=entry["name"],
            description=entry.get("description", metadata.get("description")) or "",
            tags=tuple(sorted(tags or ())),
            default_queue_type=default_queue_type,
            tracing=bool(entry.get("tracing", False)),
        )

    def to_definition(self) -> dict[str, Any]:
        """Its definitions entry; the default queue type is read from ``metadata`` only
        (rabbit_definitions). The limits travel apart (:meth:`limits_definition`)."""
        entry: dict[str, Any] = {"name": self.vhost}
        metadata: dict[str, Any] = {}
        if self.description is not None:
            entry["description"] = metadata["description"] = self.description
        if self.tags is not None:
            entry["tags"] = metadata["tags"] = list(self.tags)
        if self.default_queue_type is not None:
            metadata["default_queue_type"] = self.default_queue_type
        if metadata:
            entry["metadata"] = metadata
        if self.tracing is not None:
            entry["tracing"] = self.tracing
        return entry

    def limits_definition(self) -> dict[str, Any] | None:
        """Its limits as the runtime parameter RabbitMQ keeps them in; ``None`` without limits."""
        if not self.limits:
            return None
        return {"vhost": self.vhost, "component": "vhost-limits", "name": "limits", "value": dict(self.limits)}

    def with_limits(self, value: dict[str, Any]) -> VhostState:
        """The vhost with the limits of a ``vhost-limits`` value (numbers only)."""
        return replace(self, limits={k: int(v) for k, v in sorted(value.items()) if isinstance(v, (int, float))})

    def body(self) -> dict[str, Any]:
        """The body of ``PUT /api/vhosts/{name}`` (limits are set apart)."""
        body: dict[str, Any] = {}
        if self.description is not None:
            body["description"] = self.description
        if self.tags is not None:
            body["tags"] = ",".join(self.tags)
        if self.default_queue_type is not None:
            # 3.10.8 to 3.11.11 read "defaultqueuetype"; later versions "default_queue_type"
            body["default_queue_type"] = self.default_queue_type
            body["defaultqueuetype"] = self.default_queue_type
        if self.tracing is not None:
            body["tracing"] = self.tracing
        return body

    @classmethod
    def from_plan(cls, identity: dict[str, Any], props: dict[str, Any]) -> VhostState:
        tags = props.get("tags")
        return cls(vhost=identity["vhost"], description=props.get("description"),
                   tags=tuple(tags) if tags is not None else None, default_queue_type=props.get("default_queue_type"),
                   tracing=props.get("tracing"), limits=props.get("limits"))
