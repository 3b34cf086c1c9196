"""Canonical objects: the one form in which desired and live state are compared.

Both sides go through the same code here (:func:`canonical`, the resource classes),
so defaults, number types and server-added values cannot produce a phantom change.
:func:`desired_state` builds it from the files; :mod:`topology.broker.live` from the
broker's definitions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

from topology.model import Queue, friendly_queue_fields
from topology.model.arguments import argument_for
from topology.model.topology import Origin, Topology
from topology.model.values import parse_duration, parse_size

KIND_ORDER = ("vhost", "exchange", "queue", "binding", "policy")
"""Dependency order of the kinds: creations go in this order, deletions in reverse."""


def canonical(value: Any) -> Any:
    """Canonical form of an argument or definition value: integral floats become ints, maps are sorted."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {str(k): canonical(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    return value


def _frozen_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class Resource:
    """Base of the canonical objects; ``key`` is the identity, ``props()`` what is compared."""

    kind: ClassVar[str] = ""
    replace_on_change: ClassVar[bool] = False
    """True when the broker cannot change the object in place."""

    vhost: str

    @property
    def key(self) -> tuple[Any, ...]:
        raise NotImplementedError

    @property
    def name(self) -> str:
        raise NotImplementedError

    def props(self) -> dict[str, Any]:
        raise NotImplementedError

    def identity(self) -> dict[str, Any]:
        """The fields that name the object (used in plan files)."""
        return {"vhost": self.vhost, "name": self.name}


@dataclass(frozen=True)
class VhostState(Resource):
    kind: ClassVar[str] = "vhost"
    vhost: str
    description: str | None = None
    tags: tuple[str, ...] | None = None
    default_queue_type: str | None = None

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
        }
        return {k: v for k, v in values.items() if v is not None}


@dataclass(frozen=True)
class ExchangeState(Resource):
    kind: ClassVar[str] = "exchange"
    replace_on_change: ClassVar[bool] = True
    exchange: str = ""
    type: str = "direct"
    durable: bool = True
    auto_delete: bool = False
    internal: bool = False
    arguments: dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def key(self) -> tuple[Any, ...]:
        return ("exchange", self.vhost, self.exchange)

    @property
    def name(self) -> str:
        return self.exchange

    def props(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "durable": self.durable,
            "auto_delete": self.auto_delete,
            "internal": self.internal,
            "arguments": self.arguments,
        }


@dataclass(frozen=True)
class QueueState(Resource):
    kind: ClassVar[str] = "queue"
    replace_on_change: ClassVar[bool] = True
    queue: str = ""
    type: str = "classic"
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


@dataclass(frozen=True)
class BindingState(Resource):
    kind: ClassVar[str] = "binding"
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
            _frozen_json(self.arguments),
        )

    @property
    def pair(self) -> tuple[str, str, str, str]:
        """(vhost, source, destination type, destination): the bindings between two objects."""
        return (self.vhost, self.source, self.destination_type, self.destination)

    @property
    def name(self) -> str:
        text = f"{self.source} -> {self.destination_type} {self.destination} [{self.routing_key}]"
        if self.arguments:
            text += " " + _frozen_json(self.arguments)
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


@dataclass(frozen=True)
class PolicyState(Resource):
    kind: ClassVar[str] = "policy"
    policy: str = ""
    pattern: str = ""
    apply_to: str = "all"
    priority: int = 0
    definition: dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def key(self) -> tuple[Any, ...]:
        return ("policy", self.vhost, self.policy)

    @property
    def name(self) -> str:
        return self.policy

    def props(self) -> dict[str, Any]:
        return {"pattern": self.pattern, "apply_to": self.apply_to, "priority": self.priority, "definition": self.definition}


@dataclass
class State:
    """A set of canonical objects, keyed by identity, plus the vhosts they live in."""

    vhosts: dict[str, VhostState] = field(default_factory=dict)
    objects: dict[tuple[Any, ...], Resource] = field(default_factory=dict)
    origins: dict[tuple[Any, ...], Origin] = field(default_factory=dict)
    """Where each desired object was declared (empty for live state)."""

    def add(self, resource: Resource, origin: Origin | None = None) -> None:
        self.objects[resource.key] = resource
        if origin is not None:
            self.origins[resource.key] = origin


POLICY_DURATION_KEYS = frozenset({"message-ttl", "expires"})
POLICY_SIZE_KEYS = frozenset({"max-length-bytes"})


def canonical_policy_definition(definition: dict[str, Any]) -> dict[str, Any]:
    """A policy definition with durations and sizes given with units turned into integers."""
    result = {}
    for key, value in definition.items():
        if isinstance(value, str) and key in POLICY_DURATION_KEYS:
            try:
                value = parse_duration(value)
            except ValueError:
                pass  # reported by validation
        elif isinstance(value, str) and key in POLICY_SIZE_KEYS:
            try:
                value = parse_size(value)
            except ValueError:
                pass
        result[key] = value
    return canonical(result)


def queue_type_of(spec: Queue, vhost_default: str | None) -> str:
    """The type a declared queue gets: its own, ``x-queue-type`` in its arguments, the vhost default, classic."""
    if spec.type:
        return spec.type
    raw = spec.arguments.get("x-queue-type")
    if isinstance(raw, str) and raw:
        return raw
    return vhost_default or "classic"


def queue_arguments(spec: Queue, queue_type: str) -> dict[str, Any]:
    """All x-arguments of a declared queue (friendly fields and raw), without ``x-queue-type``."""
    arguments = dict(spec.arguments)
    arguments.pop("x-queue-type", None)
    for field_name in friendly_queue_fields():
        value = getattr(spec, field_name)
        if value is not None and field_name != "type":
            arguments[argument_for(field_name, queue_type)] = value
    return canonical(arguments)


def desired_state(topology: Topology) -> State:
    """The canonical objects the files declare."""
    state = State()
    for vhost in topology.vhosts.values():
        state.vhosts[vhost.name] = VhostState(
            vhost=vhost.name,
            description=vhost.description,
            tags=tuple(sorted(vhost.tags)) if vhost.tags is not None else None,
            default_queue_type=vhost.default_queue_type,
        )
        state.origins[("vhost", vhost.name)] = vhost.origin
        for name, declared in vhost.exchanges.items():
            spec = declared.spec
            arguments = dict(spec.arguments)
            if spec.alternate_exchange is not None:
                arguments["alternate-exchange"] = spec.alternate_exchange
            state.add(
                ExchangeState(
                    vhost=vhost.name,
                    exchange=name,
                    type=spec.type,
                    durable=spec.durable,
                    auto_delete=spec.auto_delete,
                    internal=spec.internal,
                    arguments=canonical(arguments),
                ),
                declared.origin,
            )
        for name, declared in vhost.queues.items():
            spec = declared.spec
            queue_type = queue_type_of(spec, vhost.default_queue_type)
            state.add(
                QueueState(
                    vhost=vhost.name,
                    queue=name,
                    type=queue_type,
                    durable=spec.durable,
                    auto_delete=spec.auto_delete,
                    arguments=queue_arguments(spec, queue_type),
                ),
                declared.origin,
            )
        for declared in vhost.bindings:
            spec = declared.spec
            state.add(
                BindingState(
                    vhost=vhost.name,
                    source=spec.source,
                    destination=spec.destination,
                    destination_type=spec.destination_type,
                    routing_key=spec.routing_key,
                    arguments=canonical(spec.arguments),
                ),
                declared.origin,
            )
        for name, declared in vhost.policies.items():
            spec = declared.spec
            state.add(
                PolicyState(
                    vhost=vhost.name,
                    policy=name,
                    pattern=spec.pattern,
                    apply_to=spec.apply_to,
                    priority=spec.priority,
                    definition=canonical_policy_definition(spec.definition),
                ),
                declared.origin,
            )
    return state
