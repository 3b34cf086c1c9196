"""The broker's definitions → the same canonical objects as the files (pure).

:func:`read_live` makes a constant number of requests: the overview, the vhost list,
and one definitions export per managed vhost, never one request per object.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from topology.broker.client import BrokerFailed, ManagementClient
from topology.rules.versions import OLDEST_SUPPORTED, parse_version
from topology.kinds import (
    VHOST_KINDS,
    GlobalParameterState,
    OperatorPolicyState,
    PermissionState,
    PolicyState,
    QueueState,
    TopicPermissionState,
    UserState,
    VhostState,
)
from topology.kinds.base import without_vhost
from topology.kinds.exchange import ExchangeState
from topology.rules.names import is_built_in_exchange
from topology.migration_record import MIGRATION_ARGUMENT, MIGRATION_PREFIX, MigrationRecord
from topology.state import State

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


def definitions_state(vhost: VhostState, definitions: dict[str, Any], state: State) -> None:
    """Add the objects of one vhost's definitions export to ``state``: every kind of
    :data:`topology.kinds.VHOST_KINDS`, less what an interrupted migration holds (its temporary
    queue, which carries the migration's record, with the bindings and the seal policy of that
    queue)."""
    name = vhost.vhost
    for entry in definitions.get("queues", ()):
        arguments = entry.get("arguments") or {}
        if entry["name"].startswith(MIGRATION_PREFIX) and MIGRATION_ARGUMENT in arguments:
            record = MigrationRecord.from_argument(name, arguments[MIGRATION_ARGUMENT])
            if record is not None and record.temporary == entry["name"]:
                state.migrations[(name, record.queue)] = record
    temporary = {record.temporary for (v, _), record in state.migrations.items() if v == name}
    for kind in VHOST_KINDS:
        for entry in definitions.get(kind.section, ()):
            if kind is QueueState:
                if entry["name"] in temporary:
                    continue
                resource: Any = QueueState.from_definition(entry, name, vhost.default_queue_type)
            else:
                resource = kind.from_definition(entry, name)
            if resource is None:
                continue
            if temporary and (kind.kind == "binding" and resource.destination_type == "queue"
                              and resource.destination in temporary or kind is PolicyState and resource.name in temporary):
                continue  # part of an interrupted migration, which knows its bindings and removes its seal
            state.add(resource)
    for entry in definitions.get("parameters", ()):
        value = entry.get("value")
        if entry.get("component") == "shovel" and isinstance(value, dict):
            for key in ("src-queue", "dest-queue", "src-exchange", "dest-exchange"):
                if isinstance(value.get(key), str) and value[key]:
                    state.internal[(name, value[key])] = f"used by shovel {entry.get('name')!r}"


def access_state(users: list[dict[str, Any]], permissions: list[dict[str, Any]],
                 topic_permissions: list[dict[str, Any]], state: State) -> None:
    """Add the users (with their password hashes kept apart), permissions and topic
    permissions from ``GET /api/users``, ``/api/permissions`` and ``/api/topic-permissions``."""
    for entry in users:
        state.password_hashes[entry["name"]] = (str(entry.get("password_hash") or ""), entry.get("hashing_algorithm"))
        state.add(UserState.from_definition(entry))
    for entry in permissions:
        state.add(PermissionState.from_definition(entry))
    for entry in topic_permissions:
        state.add(TopicPermissionState.from_definition(entry))


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
                state.add(OperatorPolicyState.from_definition(entry, name))
    if parameters:
        for entry in client.global_parameters():
            state.add(GlobalParameterState.from_definition(entry))
    vhost_limits = {e.get("vhost"): e.get("value") or {} for e in client.vhost_limits()} if limits else {}
    for entry in client.vhosts():
        if entry.get("name") in wanted:
            state.add(VhostState.from_definition(entry))
            if limits:
                found = vhost_limits.get(entry["name"], {})
                state.vhosts[entry["name"]] = state.vhosts[entry["name"]].with_limits(found)
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
    missing = [e if whole else without_vhost(e) for e in listed
               if e.get("internal") and isinstance(e.get("name"), str) and not is_built_in_exchange(e["name"])
               and key(e) not in shown]
    return {**definitions, "exchanges": [*definitions.get("exchanges", ()), *missing]} if missing else definitions


def internal_exchanges(resources: Iterable[Any]) -> list[tuple[str, str]]:
    """(vhost, name) of each of ``resources`` that is an internal exchange (see :func:`read_live`)."""
    return sorted({(r.vhost, r.exchange) for r in resources if isinstance(r, ExchangeState) and r.internal})


VHOST_SECTIONS = tuple(dict.fromkeys(kind.section for kind in VHOST_KINDS))
"""The lists of a vhost's definitions export that :func:`definitions_state` reads."""


def vhost_definitions(whole: dict[str, Any], vhost: str) -> dict[str, Any] | None:
    """One vhost's part of the whole broker's definitions export, in the shape of that vhost's own
    export (entries without their ``vhost``); ``None`` when the export has no such vhost."""
    if not any(isinstance(v, dict) and v.get("name") == vhost for v in whole.get("vhosts") or ()):
        return None
    return {kind: [without_vhost(entry)
                   for entry in whole.get(kind) or () if isinstance(entry, dict) and entry.get("vhost") == vhost]
            for kind in VHOST_SECTIONS}


def live_definitions(client: Any) -> dict[str, Any]:
    """The broker's definitions, with what its export leaves out: operator policies, vhost limits,
    tracing, internal exchanges (4.3.6), and (before RabbitMQ 4.0, or where it is made from the lists:
    :func:`topology.broker.lists.export_all`) the vhosts' description, tags
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
