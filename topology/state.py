"""Canonical objects: the one form in which desired and live state are compared.

Both sides go through the same code here (:func:`canonical`, the resource classes),
so defaults, number types and server-added values cannot produce a phantom change.
:func:`desired_state` builds it from the files; :mod:`topology.broker.live` from the
broker's definitions.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from fnmatch import fnmatchcase
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from topology.model import Queue, friendly_queue_fields
from topology.rules.queues import argument_for
from topology.model.topology import Origin, Topology
from topology.model.values import parse_duration, parse_size
from topology.rules.policies import DURATION_KEYS, SIZE_KEYS

KIND_ORDER = ("vhost", "global_parameter", "user", "exchange", "queue", "binding", "federation_upstream",
              "federation_upstream_set", "policy", "operator_policy", "permission", "topic_permission", "shovel")
"""Dependency order of the kinds: creations go in this order, deletions in reverse. Upstreams come
before the policies that federate through them; shovels last, once the queues they use (which a
shovel would otherwise declare itself, as classic queues) and the permissions they connect with exist."""


def canonical(value: Any) -> Any:
    """Canonical form of an argument or definition value: integral floats become ints, maps are sorted."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value  # the most common values, first
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        if not value:
            return {}
        return {str(k): canonical(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    return value


def _frozen_json(value: Any) -> str:
    if not value and isinstance(value, dict):
        return "{}"  # most bindings have no arguments
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

    @property
    def where(self) -> str:
        """How output names the object: ``vhost/name``, or a vhost's, user's or global parameter's own name."""
        return self.name if self.kind == "vhost" or not self.vhost else f"{self.vhost}/{self.name}"

    def end_props(self) -> dict[str, Any]:
        """What the broker shows once this object is applied (its props, unless a change marks them)."""
        return self.props()

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

    def entry(self) -> dict[str, Any]:
        """Its entry in a definitions document (without ``vhost``): the one broker body."""
        return {"name": self.exchange, **self.props()}

    def body(self) -> dict[str, Any]:
        """The body of ``PUT /api/exchanges/{vhost}/{name}``."""
        return {k: v for k, v in self.entry().items() if k != "name"}


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

    def entry(self) -> dict[str, Any]:
        """Its entry in a definitions document (without ``vhost``): the one broker body, whether
        the queue is declared alone, imported in bulk, or made by a migration."""
        return {"name": self.queue, "durable": self.durable, "auto_delete": self.auto_delete,
                "arguments": self.declare_arguments()}

    def body(self) -> dict[str, Any]:
        """The body of ``PUT /api/queues/{vhost}/{name}``."""
        return {k: v for k, v in self.entry().items() if k != "name"}


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

    def entry(self) -> dict[str, Any]:
        """Its entry in a definitions document (without ``vhost``): the one broker body."""
        return {"source": self.source, "destination": self.destination, "destination_type": self.destination_type,
                **self.body()}

    def body(self) -> dict[str, Any]:
        """The body of ``POST /api/bindings/{vhost}/e/{source}/{q|e}/{destination}``."""
        return {"routing_key": self.routing_key, "arguments": self.arguments}

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

    def entry(self) -> dict[str, Any]:
        """Its entry in a definitions document (without ``vhost``): the one broker body."""
        return {"name": self.policy, **self.body()}

    def body(self) -> dict[str, Any]:
        """The body of ``PUT /api/policies/{vhost}/{name}`` (and of an operator policy's)."""
        return {"pattern": self.pattern, "apply-to": self.apply_to, "priority": self.priority,
                "definition": self.definition}


@dataclass(frozen=True)
class OperatorPolicyState(PolicyState):
    """An operator policy: a policy whose limits users' own policies cannot raise."""

    kind: ClassVar[str] = "operator_policy"

    @property
    def key(self) -> tuple[Any, ...]:
        return ("operator_policy", self.vhost, self.policy)


@dataclass(frozen=True)
class GlobalParameterState(Resource):
    """A cluster-wide runtime parameter (:attr:`vhost` is empty)."""

    kind: ClassVar[str] = "global_parameter"
    vhost: str = ""
    parameter: str = ""
    value: Any = field(default=None, hash=False)

    @property
    def key(self) -> tuple[Any, ...]:
        return ("global_parameter", "", self.parameter)

    @property
    def name(self) -> str:
        return self.parameter

    def props(self) -> dict[str, Any]:
        return {"value": self.value}


PASSWORD_SET, PASSWORD_CHANGED = "set", "changed"
"""A user's password as the plan shows it: never the password, never its hash."""


@dataclass(frozen=True)
class ParameterState(Resource):
    """A vhost runtime parameter the tool manages: a shovel, federation upstream or upstream set.

    :attr:`value` is the broker's value with every URI's password masked: what is compared
    and shown. :attr:`credentials` is ``set`` when a URI holds a password, ``changed`` when a
    declared one differs from the broker's (see :func:`topology.engine`), ``None`` otherwise.
    The real value is :attr:`secret_value`, never compared, printed or saved."""

    kind: ClassVar[str] = ""
    component: ClassVar[str] = ""
    parameter: str = ""
    value: Any = field(default=None, hash=False)
    credentials: str | None = None
    secret_value: Any = field(default=None, compare=False, repr=False, hash=False)
    templates: dict[str, Any] | None = field(default=None, compare=False, hash=False)
    """Declared only: each URI key as written in the files, ``${...}`` included (saved plans)."""

    @property
    def key(self) -> tuple[Any, ...]:
        return (self.kind, self.vhost, self.parameter)

    @property
    def name(self) -> str:
        return self.parameter

    def props(self) -> dict[str, Any]:
        props = {"value": self.value}
        if self.credentials is not None:
            props["credentials"] = self.credentials
        return props

    def end_props(self) -> dict[str, Any]:
        props = self.props()
        if props.get("credentials") == PASSWORD_CHANGED:
            props["credentials"] = PASSWORD_SET
        return props

    def identity(self) -> dict[str, Any]:
        identity: dict[str, Any] = {"vhost": self.vhost, "name": self.parameter}
        if self.templates:
            identity["uris"] = self.templates
        return identity


@dataclass(frozen=True)
class ShovelState(ParameterState):
    kind: ClassVar[str] = "shovel"
    component: ClassVar[str] = "shovel"


@dataclass(frozen=True)
class FederationUpstreamState(ParameterState):
    kind: ClassVar[str] = "federation_upstream"
    component: ClassVar[str] = "federation-upstream"


@dataclass(frozen=True)
class FederationUpstreamSetState(ParameterState):
    kind: ClassVar[str] = "federation_upstream_set"
    component: ClassVar[str] = "federation-upstream-set"


PARAMETER_KINDS: dict[str, type[ParameterState]] = {
    cls.kind: cls for cls in (ShovelState, FederationUpstreamState, FederationUpstreamSetState)}
"""The parameter kinds, by kind (their component is :attr:`ParameterState.component`)."""
PARAMETER_COMPONENTS: dict[str, type[ParameterState]] = {cls.component: cls for cls in PARAMETER_KINDS.values()}


def parameter_state(cls: type[ParameterState], vhost: str, name: str, value: Any,
                    templates: dict[str, Any] | None = None) -> ParameterState:
    """A parameter object from its real value (declared or read from the broker)."""
    from topology import parameters

    value = parameters.canonical_value(cls.component, value)
    return cls(vhost=vhost, parameter=name, value=parameters.masked(cls.component, value),
               credentials=PASSWORD_SET if parameters.has_password(cls.component, value) else None,
               secret_value=value, templates=templates)


@dataclass(frozen=True)
class UserState(Resource):
    """A user (cluster-wide: :attr:`vhost` is empty). Its password is compared as a token:
    ``set`` (it has one, and a declared one matches), ``changed`` (a declared one does not
    match), ``None`` (none)."""

    kind: ClassVar[str] = "user"
    vhost: str = ""
    user: str = ""
    tags: tuple[str, ...] = ()
    password: str | None = None
    limits: dict[str, int] = field(default_factory=dict, hash=False)
    managed_password: bool = field(default=False, compare=False)
    """The files declare a password (or hash); otherwise it is left as it is."""
    password_variable: str | None = field(default=None, compare=False)
    """The environment variable the password comes from (saved plans read it again)."""
    secret: str | None = field(default=None, compare=False, repr=False)
    """The plain password, to hash when applying; never compared, printed or saved."""
    declared_hash: str | None = field(default=None, compare=False, repr=False)
    """A declared password hash; like the password, never printed or saved in a plan."""
    hash_variable: str | None = field(default=None, compare=False)
    """The environment variable the declared hash comes from."""
    hashing_algorithm: str | None = field(default=None, compare=False)

    @property
    def key(self) -> tuple[Any, ...]:
        return ("user", "", self.user)

    @property
    def name(self) -> str:
        return self.user

    def props(self) -> dict[str, Any]:
        return {"tags": list(self.tags), "password": self.password, "limits": self.limits}

    def end_props(self) -> dict[str, Any]:
        """A ``changed`` password reads ``set`` once it is applied."""
        props = self.props()
        if props["password"] == PASSWORD_CHANGED:
            props["password"] = PASSWORD_SET
        return props

    def identity(self) -> dict[str, Any]:
        return {"vhost": "", "name": self.user, "managed_password": self.managed_password,
                "password_variable": self.password_variable, "hashing_algorithm": self.hashing_algorithm}


@dataclass(frozen=True)
class PermissionState(Resource):
    kind: ClassVar[str] = "permission"
    user: str = ""
    configure: str = ""
    write: str = ""
    read: str = ""

    @property
    def key(self) -> tuple[Any, ...]:
        return ("permission", self.vhost, self.user)

    @property
    def name(self) -> str:
        return self.user

    def props(self) -> dict[str, Any]:
        return {"configure": self.configure, "write": self.write, "read": self.read}


@dataclass(frozen=True)
class TopicPermissionState(Resource):
    kind: ClassVar[str] = "topic_permission"
    user: str = ""
    exchange: str = ""
    write: str = ""
    read: str = ""

    @property
    def key(self) -> tuple[Any, ...]:
        return ("topic_permission", self.vhost, self.user, self.exchange)

    @property
    def name(self) -> str:
        return f"{self.user} on {self.exchange}"

    def props(self) -> dict[str, Any]:
        return {"write": self.write, "read": self.read}

    def identity(self) -> dict[str, Any]:
        return {"vhost": self.vhost, "name": self.name, "user": self.user, "exchange": self.exchange}


@dataclass
class State:
    """A set of canonical objects, keyed by identity, plus the vhosts they live in."""

    vhosts: dict[str, VhostState] = field(default_factory=dict)
    objects: dict[tuple[Any, ...], Resource] = field(default_factory=dict)
    origins: dict[tuple[Any, ...], Origin] = field(default_factory=dict)
    """Where each desired object was declared (empty for live state)."""
    migrations: dict[tuple[str, str], MigrationRecord] = field(default_factory=dict)
    """Interrupted message migrations found on the broker, by (vhost, queue) (live state only)."""
    password_hashes: dict[str, tuple[str, str | None]] = field(default_factory=dict, repr=False)
    """Per user, its stored password hash and hashing algorithm (live state only; never printed)."""
    ignore: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Per vhost, the name patterns of objects left alone (desired state only)."""
    all_global_parameters: bool = False
    """A file names ``global_parameters:``: the broker's others are listed and pruned (desired state only)."""
    all_users: bool = False
    """The files declare every user: the broker's others are listed and pruned (desired state only)."""
    ignore_users: tuple[str, ...] = ()
    """Name patterns of users left alone (desired state only)."""
    managed_kinds: dict[str, frozenset[str]] = field(default_factory=dict)
    """Per vhost, the opt-in kinds (shovels, federation upstreams and sets) whose undeclared objects
    on the broker are listed and pruned: those whose section a file names (desired state only)."""
    internal: dict[tuple[str, str], str] = field(default_factory=dict)
    """(vhost, name) of objects that plugins use (shovel queues and exchanges), with why (live state only)."""

    def add(self, resource: Resource, origin: Origin | None = None) -> None:
        self.objects[resource.key] = resource
        if origin is not None:
            self.origins[resource.key] = origin


def resource_from(kind: str, identity: dict[str, Any], props: dict[str, Any]) -> Resource:
    """The object that ``identity()`` and ``props()`` describe (read back from a plan file)."""
    vhost, name = identity["vhost"], identity["name"]
    if kind == "vhost":
        tags = props.get("tags")
        return VhostState(vhost=vhost, description=props.get("description"),
                          tags=tuple(tags) if tags is not None else None, default_queue_type=props.get("default_queue_type"),
                          tracing=props.get("tracing"), limits=props.get("limits"))
    if kind == "operator_policy":
        return OperatorPolicyState(vhost=vhost, policy=name, **props)
    if kind == "global_parameter":
        return GlobalParameterState(parameter=name, value=props.get("value"))
    if kind == "exchange":
        return ExchangeState(vhost=vhost, exchange=name, **props)
    if kind == "queue":
        return QueueState(vhost=vhost, queue=name, **props)
    if kind == "binding":
        return BindingState(vhost=vhost, source=identity["source"], destination=identity["destination"],
                            destination_type=identity["destination_type"], routing_key=identity["routing_key"],
                            arguments=identity["arguments"])
    if kind == "policy":
        return PolicyState(vhost=vhost, policy=name, **props)
    if kind == "user":
        return UserState(user=name, tags=tuple(props.get("tags", ())), password=props.get("password"),
                         limits=dict(props.get("limits", {})), managed_password=bool(identity.get("managed_password")),
                         password_variable=identity.get("password_variable"),
                         hashing_algorithm=identity.get("hashing_algorithm"))
    if kind in PARAMETER_KINDS:
        from topology.parameters import from_saved_plan

        return from_saved_plan(PARAMETER_KINDS[kind], vhost, name, identity.get("uris"), props)
    if kind == "permission":
        return PermissionState(vhost=vhost, user=name, **props)
    if kind == "topic_permission":
        return TopicPermissionState(vhost=vhost, user=identity["user"], exchange=identity["exchange"], **props)
    raise ValueError(f"unknown kind {kind!r}")


def matching_ignore(name: str, patterns: Iterable[str]) -> str | None:
    """The first ignore pattern that matches ``name`` (shell-style, case-sensitive), or ``None``."""
    return next((p for p in patterns if p.strip() and fnmatchcase(name, p)), None)


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
        return _frozen_json({
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



def canonical_policy_definition(definition: dict[str, Any]) -> dict[str, Any]:
    """A policy definition with durations and sizes given with units turned into integers."""
    result = {}
    for key, value in definition.items():
        if isinstance(value, str) and key in DURATION_KEYS:
            try:
                value = parse_duration(value)
            except ValueError:
                pass  # reported by validation
        elif isinstance(value, str) and key in SIZE_KEYS:
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
            tracing=vhost.tracing,
            limits=dict(sorted(vhost.limits.items())) if vhost.limits is not None else None,
        )
        state.origins[("vhost", vhost.name)] = vhost.origin
        state.ignore[vhost.name] = tuple(d.spec for d in vhost.ignore)
        state.managed_kinds[vhost.name] = frozenset(
            kind for section, kind in (("shovels", "shovel"), ("federation_upstreams", "federation_upstream"),
                                       ("federation_upstream_sets", "federation_upstream_set"))
            if section in vhost.declared_sections)
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
        for name, declared in vhost.operator_policies.items():
            spec = declared.spec
            state.add(
                OperatorPolicyState(vhost=vhost.name, policy=name, pattern=spec.pattern, apply_to=spec.apply_to,
                                    priority=spec.priority, definition=canonical_policy_definition(spec.definition)),
                declared.origin,
            )
        _add_parameters(state, vhost, topology)
    for name, declared in topology.users.items():
        _add_user(state, name, declared, topology)
    state.all_users = bool(topology.manage_all_users and topology.manage_all_users.spec)
    state.all_global_parameters = topology.global_parameters_named
    state.ignore_users = tuple(d.spec for d in topology.ignore_users)
    for name, declared in topology.global_parameters.items():
        state.add(GlobalParameterState(parameter=name, value=canonical(declared.spec)), declared.origin)
    return state


def _add_user(state: State, name: str, declared: Any, topology: Topology) -> None:
    """A declared user and its permissions. The password token is ``set`` here;
    :func:`topology.engine` compares it with the broker's hash before diffing."""
    spec = declared.spec
    managed = spec.password is not None or spec.password_hash is not None
    state.add(
        UserState(
            user=name, tags=tuple(sorted(set(spec.tags))), password=PASSWORD_SET if managed else None,
            limits=dict(sorted(spec.limits.items())), managed_password=managed,
            password_variable=topology.variables_of.get(("users", name, "password")),
            hash_variable=topology.variables_of.get(("users", name, "password_hash")),
            secret=spec.password, declared_hash=spec.password_hash, hashing_algorithm=spec.hashing_algorithm,
        ),
        declared.origin,
    )
    for vhost, permission in spec.permissions.items():
        state.add(PermissionState(vhost=vhost, user=name, configure=permission.configure, write=permission.write,
                                  read=permission.read),
                  Origin(declared.origin.file, topology.line_of(declared.origin, "permissions", vhost),
                         declared.origin.path + ("permissions", vhost)))
    for vhost, exchanges in spec.topic_permissions.items():
        for exchange, permission in exchanges.items():
            state.add(TopicPermissionState(vhost=vhost, user=name, exchange=exchange, write=permission.write,
                                           read=permission.read),
                      Origin(declared.origin.file, topology.line_of(declared.origin, "topic_permissions", vhost, exchange),
                             declared.origin.path + ("topic_permissions", vhost, exchange)))


def _add_parameters(state: State, vhost: Any, topology: Topology) -> None:
    """A vhost's declared shovels, federation upstreams and upstream sets."""
    from topology import parameters

    sections = (
        ("shovels", ShovelState, parameters.shovel_value, parameters.SHOVEL_KEYS),
        ("federation_upstreams", FederationUpstreamState, parameters.upstream_value, parameters.UPSTREAM_KEYS),
        ("federation_upstream_sets", FederationUpstreamSetState, parameters.upstream_set_value, {}),
    )
    for section, cls, value_of, keys in sections:
        for name, declared in getattr(vhost, section).items():
            templates: dict[str, Any] = {}
            for field_name in parameters.URI_FIELDS.get(section, ()):
                written = getattr(declared.spec, field_name)
                path = declared.origin.path + (field_name,)
                if isinstance(written, str):
                    template: Any = topology.templates.get(path, written)
                else:
                    template = [topology.templates.get(path + (i,), uri) for i, uri in enumerate(written)]
                if template != written and keys[field_name] not in declared.spec.parameters:
                    templates[keys[field_name]] = template
            state.add(parameter_state(cls, vhost.name, name, value_of(declared.spec), templates or None), declared.origin)
