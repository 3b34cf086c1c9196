"""The broker's definitions → the same canonical objects as the files (pure).

:func:`read_live` makes a constant number of requests: the overview, the vhost list,
and one definitions export per managed vhost, never one request per object.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from topology.broker.client import BrokerFailed, ManagementClient
from topology.rules.versions import OLDEST_SUPPORTED, parse_version
from topology.state import (
    GlobalParameterState,
    MIGRATION_ARGUMENT,
    OperatorPolicyState,
    MIGRATION_PREFIX,
    PASSWORD_SET,
    PermissionState,
    TopicPermissionState,
    UserState,
    BindingState,
    MigrationRecord,
    PARAMETER_COMPONENTS,
    parameter_state,
    ExchangeState,
    PolicyState,
    QueueState,
    State,
    VhostState,
    canonical,
    canonical_policy_definition,
)

QUEUE_TYPES = ("classic", "quorum", "stream")


@dataclass(frozen=True)
class BrokerInfo:
    """What the plan needs to know of the broker it was made against."""

    url: str
    version: str
    cluster_name: str
    exchange_types: tuple[str, ...] = ()
    """Exchange types enabled on the broker (plugins add some)."""

    @property
    def version_tuple(self) -> tuple[int, ...]:
        """The version as three numbers, ``(4, 0, 5)``; ``()`` when the broker did not say."""
        return parse_version(self.version)

    @property
    def stores_default_queue_type(self) -> bool:
        """RabbitMQ takes a vhost's default queue type when creating it from 3.10.8 on."""
        return self.version_tuple >= OLDEST_SUPPORTED

    @property
    def updates_default_queue_type(self) -> bool:
        """RabbitMQ changes an existing vhost's default queue type from 3.11 on (update_vhost_metadata)."""
        return self.version_tuple >= (3, 11)

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "version": self.version, "cluster_name": self.cluster_name}


def broker_info(client: ManagementClient) -> BrokerInfo:
    overview = client.overview()
    return BrokerInfo(
        url=client.url,
        version=str(overview.get("rabbitmq_version") or ""),
        cluster_name=str(overview.get("cluster_name") or ""),
        exchange_types=tuple(sorted(t["name"] for t in overview.get("exchange_types") or () if isinstance(t, dict))),
    )


def tag_list(tags: Any) -> list[str]:
    """Tags as the broker gives them (a list, or one comma-separated text) as a list."""
    if isinstance(tags, str):
        return [t for t in tags.split(",") if t]
    return list(tags or [])


def vhost_state(entry: dict[str, Any]) -> VhostState:
    """A vhost from ``GET /api/vhosts``."""
    metadata = entry.get("metadata") or {}
    tags = tag_list(entry.get("tags", metadata.get("tags")))
    default_queue_type = entry.get("default_queue_type")
    if default_queue_type not in QUEUE_TYPES:
        default_queue_type = None  # "undefined" on brokers that do not keep it
    return VhostState(
        vhost=entry["name"],
        description=entry.get("description", metadata.get("description")) or "",
        tags=tuple(sorted(tags or ())),
        default_queue_type=default_queue_type,
        tracing=bool(entry.get("tracing", False)),
    )


def definitions_state(vhost: VhostState, definitions: dict[str, Any], state: State) -> None:
    """Add the objects of one vhost's definitions export to ``state``."""
    name = vhost.vhost
    for entry in definitions.get("exchanges", ()):
        if entry["name"] == "" or entry["name"].startswith("amq."):
            continue
        state.add(
            ExchangeState(
                vhost=name,
                exchange=entry["name"],
                type=entry.get("type", "direct"),
                durable=bool(entry.get("durable", True)),
                auto_delete=bool(entry.get("auto_delete", False)),
                internal=bool(entry.get("internal", False)),
                arguments=canonical(entry.get("arguments") or {}),
            )
        )
    for entry in definitions.get("queues", ()):
        arguments = entry.get("arguments") or {}
        if entry["name"].startswith(MIGRATION_PREFIX) and MIGRATION_ARGUMENT in arguments:
            record = MigrationRecord.from_argument(name, arguments[MIGRATION_ARGUMENT])
            if record is not None and record.temporary == entry["name"]:
                state.migrations[(name, record.queue)] = record
                continue
        state.add(queue_state(name, entry, vhost.default_queue_type))
    temporary = {record.temporary for (v, _), record in state.migrations.items() if v == name}
    for entry in definitions.get("bindings", ()):
        if entry.get("source", "") == "":
            continue  # the default exchange's implicit bindings
        if entry.get("destination_type", "queue") == "queue" and entry.get("destination") in temporary:
            continue  # part of an interrupted migration, which knows its bindings
        state.add(binding_state(name, entry))
    for entry in definitions.get("parameters", ()):
        value = entry.get("value")
        kind = PARAMETER_COMPONENTS.get(str(entry.get("component")))
        if kind is not None and isinstance(entry.get("name"), str):
            state.add(parameter_state(kind, name, entry["name"], value))
        if entry.get("component") == "shovel" and isinstance(value, dict):
            for key in ("src-queue", "dest-queue", "src-exchange", "dest-exchange"):
                if isinstance(value.get(key), str) and value[key]:
                    state.internal[(name, value[key])] = f"used by shovel {entry.get('name')!r}"
    for entry in definitions.get("policies", ()):
        if entry["name"] in temporary:
            continue  # the seal of a quorum queue whose interrupted migration removes it
        state.add(policy_state(name, entry))


def policy_state(vhost: str, entry: dict[str, Any], kind: type[PolicyState] = PolicyState) -> PolicyState:
    """A policy (or, with ``kind``, an operator policy) from the definitions export or ``GET /api/policies``."""
    return kind(vhost=vhost, policy=str(entry["name"]), pattern=str(entry.get("pattern", "")),
                apply_to=str(entry.get("apply-to", "all")), priority=int(entry.get("priority", 0)),
                definition=canonical_policy_definition(entry.get("definition") or {}))


def queue_state(vhost: str, entry: dict[str, Any], default_queue_type: str | None) -> QueueState:
    """A queue from the definitions export or ``GET /api/queues/{vhost}/{name}``."""
    arguments = dict(entry.get("arguments") or {})
    queue_type = arguments.pop("x-queue-type", None) or entry.get("type") or default_queue_type or "classic"
    return QueueState(
        vhost=vhost,
        queue=entry["name"],
        type=str(queue_type),
        durable=bool(entry.get("durable", True)),
        auto_delete=bool(entry.get("auto_delete", False)),
        arguments=canonical(arguments),
    )


def binding_state(vhost: str, entry: dict[str, Any]) -> BindingState:
    """A binding from the definitions export or ``GET /api/bindings/...``."""
    return BindingState(
        vhost=vhost,
        source=entry["source"],
        destination=entry["destination"],
        destination_type=entry.get("destination_type", "queue"),
        routing_key=entry.get("routing_key", ""),
        arguments=canonical(entry.get("arguments") or {}),
    )


def access_state(users: list[dict[str, Any]], permissions: list[dict[str, Any]],
                 topic_permissions: list[dict[str, Any]], state: State) -> None:
    """Add the users (with their password hashes kept apart), permissions and topic
    permissions from ``GET /api/users``, ``/api/permissions`` and ``/api/topic-permissions``."""
    for entry in users:
        tags = tag_list(entry.get("tags"))
        stored = str(entry.get("password_hash") or "")
        state.password_hashes[entry["name"]] = (stored, entry.get("hashing_algorithm"))
        limits = entry.get("limits") if isinstance(entry.get("limits"), dict) else {}
        state.add(UserState(
            user=entry["name"], tags=tuple(sorted(set(tags))), password=PASSWORD_SET if stored else None,
            limits={k: int(v) for k, v in sorted(limits.items()) if isinstance(v, (int, float))},
        ))
    for entry in permissions:
        state.add(PermissionState(vhost=entry["vhost"], user=entry["user"], configure=entry.get("configure", ""),
                                  write=entry.get("write", ""), read=entry.get("read", "")))
    for entry in topic_permissions:
        state.add(TopicPermissionState(vhost=entry["vhost"], user=entry["user"], exchange=entry.get("exchange", ""),
                                       write=entry.get("write", ""), read=entry.get("read", "")))


def read_live(client: ManagementClient, vhosts: list[str], access: bool = False, limits: bool = False,
              parameters: bool = False, operator_policies: Iterable[str] = (),
              internal_exchanges: Iterable[tuple[str, str]] = ()) -> State:
    """The live state of the named vhosts (those missing on the broker are simply absent);
    with ``access``, also every user, permission and topic permission (three requests);
    with ``limits``, the vhosts' limits; with ``parameters``, the global parameters; with
    ``operator_policies``, the operator policies of those vhosts (one request each: the
    vhosts where the files declare some); with ``internal_exchanges`` ((vhost, exchange) pairs),
    the exchange list of a vhost whose export lacks one of them (one request: the export of
    RabbitMQ 4.3.6 leaves out every internal exchange). Each is read only when the files declare
    such objects."""
    state = State()
    wanted = set(vhosts)
    if access:
        access_state(client.users(), client.permissions(), client.topic_permissions(), state)
    if operator_policies:
        for name in sorted(set(operator_policies) & wanted):
            for entry in client.policies(name, operator=True):
                state.add(policy_state(name, entry, OperatorPolicyState))
    if parameters:
        for entry in client.global_parameters():
            state.add(GlobalParameterState(parameter=entry["name"], value=canonical(entry.get("value"))))
    vhost_limits = {e.get("vhost"): e.get("value") or {} for e in client.vhost_limits()} if limits else {}
    for entry in client.vhosts():
        if entry.get("name") in wanted:
            state.vhosts[entry["name"]] = vhost_state(entry)
            if limits:
                found = vhost_limits.get(entry["name"], {})
                state.vhosts[entry["name"]] = replace(state.vhosts[entry["name"]], limits={
                    k: int(v) for k, v in sorted(found.items()) if isinstance(v, (int, float))})
    whole: dict[str, Any] | None = None
    internal: dict[str, set[str]] = {}
    for vhost, exchange in internal_exchanges:
        internal.setdefault(vhost, set()).add(exchange)
    for name in sorted(state.vhosts):
        try:
            definitions = client.definitions(name)
        except BrokerFailed:
            # RabbitMQ fails on the export of a vhost whose name is not ASCII (4.0.5: HTTP 500; 4.3.6:
            # JSON cut short); the whole broker's export holds the same objects (read once per call)
            whole = whole if whole is not None else client.all_definitions()
            definitions = vhost_definitions(whole, name)
        if definitions is not None:
            declared = internal.get(name)
            if declared and declared - {e.get("name") for e in definitions.get("exchanges", ())}:
                # an internal exchange the export may leave out
                definitions = with_internal_exchanges(definitions, client.exchanges(name))
            definitions_state(state.vhosts[name], definitions, state)
    return state


def with_internal_exchanges(definitions: dict[str, Any], listed: list[dict[str, Any]], *,
                            whole: bool = False) -> dict[str, Any]:
    """A definitions export with the internal exchanges of the exchange list ``listed`` that it
    leaves out (4.3.6 leaves out every internal exchange; 4.0.5 shows them). ``whole``: the whole
    broker's export, whose entries name their vhost; else one vhost's, whose entries do not."""
    def key(entry: dict[str, Any]) -> Any:
        return (entry.get("vhost"), entry.get("name")) if whole else entry.get("name")

    shown = {key(e) for e in definitions.get("exchanges", ())}
    missing = [e if whole else {k: v for k, v in e.items() if k != "vhost"} for e in listed
               if e.get("internal") and isinstance(e.get("name"), str) and e["name"] != ""
               and not e["name"].startswith("amq.") and key(e) not in shown]
    return {**definitions, "exchanges": [*definitions.get("exchanges", ()), *missing]} if missing else definitions


def internal_exchanges(resources: Iterable[Any]) -> list[tuple[str, str]]:
    """(vhost, name) of each of ``resources`` that is an internal exchange (see :func:`read_live`)."""
    return sorted({(r.vhost, r.exchange) for r in resources if isinstance(r, ExchangeState) and r.internal})


VHOST_KINDS = ("exchanges", "queues", "bindings", "policies", "parameters")
"""The kinds of a vhost's definitions export that :func:`definitions_state` reads."""


def vhost_definitions(whole: dict[str, Any], vhost: str) -> dict[str, Any] | None:
    """One vhost's part of the whole broker's definitions export, in the shape of that vhost's own
    export (entries without their ``vhost``); ``None`` when the export has no such vhost."""
    if not any(isinstance(v, dict) and v.get("name") == vhost for v in whole.get("vhosts") or ()):
        return None
    return {kind: [{k: v for k, v in entry.items() if k != "vhost"}
                   for entry in whole.get(kind) or () if isinstance(entry, dict) and entry.get("vhost") == vhost]
            for kind in VHOST_KINDS}


def live_definitions(client: Any) -> dict[str, Any]:
    """The broker's definitions, with what its export leaves out: operator policies, vhost limits,
    tracing, internal exchanges (4.3.6), and (before RabbitMQ 3.11) the vhosts' description, tags
    and default queue type."""
    document = client.all_definitions()
    document = with_internal_exchanges(document, client.exchanges(None), whole=True)
    vhosts = {v.get("name"): v for v in client.vhosts()}
    for entry in document.get("vhosts") or []:
        live = vhosts.get(entry.get("name"), {})
        if live.get("tracing"):
            entry["tracing"] = True
        metadata = entry.get("metadata") if isinstance(entry.get("metadata"), dict) else {}
        for key in ("description", "tags", "default_queue_type"):
            if key not in entry and key not in metadata and live.get(key) not in (None, "", [], "undefined"):
                entry[key] = live[key]
    document["operator_policies"] = client.policies(None, operator=True)
    present = {(p.get("vhost"), p.get("component")) for p in document.get("parameters") or []}
    for entry in client.vhost_limits():
        if (entry.get("vhost"), "vhost-limits") not in present and entry.get("value"):
            document.setdefault("parameters", []).append(
                {"vhost": entry["vhost"], "component": "vhost-limits", "name": "limits", "value": entry["value"]})
    return document
