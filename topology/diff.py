"""Desired vs live state → changes (pure, keyed by identity, in sorted order).

Desired − live are creations; the intersection is compared field by field; live −
desired is left alone and reported as unmanaged, with two exceptions:

- the bindings between a source and a destination that the files bind. The files own
  those pairs, so a binding between them that no file declares (typically the old
  routing key of an edited binding) is deleted: changing a binding is a delete plus a
  create;
- with ``prune``, every object that is not protected (:func:`protection`) is deleted.

An interrupted message migration found on the broker becomes a ``resume`` change of
its queue, which replaces any creation or replacement of that queue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from topology.model.topology import value_at
from topology.rules.names import is_built_in_exchange, is_federation_link, is_reserved, why_reserved_queue
from topology.kinds import (
    BindingState,
    GlobalParameterState,
    KIND_ORDER,
    ParameterState,
    PermissionState,
    PolicyState,
    Resource,
    TopicPermissionState,
    UserState,
    VhostState,
)
from topology.model.topology import matching_ignore
from topology.state import State

CREATE, UPDATE, REPLACE, RESUME, DELETE = "create", "update", "replace", "resume", "delete"
ACTIONS = (CREATE, UPDATE, REPLACE, RESUME, DELETE)
AT_STAKE = (REPLACE, RESUME, DELETE)
"""The actions that put what the live object holds at stake (its messages, its bindings): it is
deleted, or its messages are moved out of it."""
IGNORED = "ignored"
"""Start of the protection reason of objects matched by an ``ignore:`` pattern (not even listed)."""


@dataclass(frozen=True)
class FieldChange:
    """One field's value before and after (``None`` when absent)."""

    before: Any
    after: Any


@dataclass(frozen=True)
class Change:
    """One typed change to one object."""

    action: str
    before: Resource | None
    after: Resource | None
    fields: dict[str, FieldChange] = field(default_factory=dict, hash=False)
    reason: str = ""
    """Why the change is needed (and why a replacement cannot be done in place)."""
    rebind: tuple[BindingState, ...] = ()
    """For a replacement: bindings the broker drops with the object, to be re-created."""
    messages: int | None = None
    """For a queue replaced or deleted: messages it held when planned; for a resumed
    migration: messages waiting in the temporary queue (None when unknown)."""
    hazards: tuple[str, ...] = ()
    """For a replacement or deletion: what it would break that cannot be repaired; such a plan is refused."""
    fingerprint: str = ""
    """Digest of the live state the change was planned against (see :func:`topology.plan.fingerprint`)."""

    @property
    def resource(self) -> Resource:
        resource = self.after or self.before
        assert resource is not None
        return resource

    @property
    def kind(self) -> str:
        return self.resource.kind

    @property
    def vhost(self) -> str:
        return self.resource.vhost

    @property
    def name(self) -> str:
        return self.resource.name

    @property
    def key(self) -> tuple[Any, ...]:
        return self.resource.key

    @property
    def where(self) -> str:
        """How output names the object (see :attr:`Resource.where`)."""
        return self.resource.where

    @property
    def title(self) -> str:
        """``action kind where``, as error and progress lines name a change."""
        return f"{self.action} {self.kind} {self.where}"


@dataclass
class Diff:
    """The changes, the unmanaged objects and notes for the reader."""

    changes: list[Change] = field(default_factory=list)
    unmanaged: list[Resource] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    protected: dict[tuple[Any, ...], str] = field(default_factory=dict)
    """Why an unmanaged object is never pruned, by key."""


def describe(before: dict[str, Any], after: dict[str, Any]) -> dict[str, FieldChange]:
    """Field-level differences, with nested maps flattened (``arguments.x-message-ttl``)."""
    from deepdiff import DeepDiff  # only loaded when something differs

    result: dict[str, FieldChange] = {}
    delta = DeepDiff(before, after, verbose_level=2)
    for report in ("values_changed", "type_changes", "dictionary_item_added", "dictionary_item_removed",
                   "iterable_item_added", "iterable_item_removed"):
        for item in delta.tree.get(report, ()):
            path = item.path(output_format="list")
            if report.startswith("iterable_"):
                path = path[:-1]  # report the whole list
                name = ".".join(str(p) for p in path)
                result[name] = FieldChange(value_at(before, path), value_at(after, path))
                continue
            name = ".".join(str(p) for p in path)
            result[name] = FieldChange(
                None if report == "dictionary_item_added" else item.t1,
                None if report == "dictionary_item_removed" else item.t2,
            )
    return dict(sorted(result.items()))


def diff(
    desired: State,
    live: State,
    *,
    stores_default_queue_type: bool = True,
    updates_default_queue_type: bool = True,
    prune: bool = False,
    connected_user: str | None = None,
) -> Diff:
    """Compare the desired objects with the live ones of the same vhosts.

    The two flags say whether the broker keeps a vhost's default queue type when
    creating the vhost, and whether it can change it on an existing one. With
    ``prune``, objects no file declares are deleted unless protected.

    Users the files do not declare, and their permissions, are left out entirely. The
    ``connected_user`` (the tool's own) never loses its administrator tag or its
    permissions through the tool.
    """
    result = Diff()
    for name in sorted(desired.vhosts):
        want = desired.vhosts[name]
        have = live.vhosts.get(name)
        if have is None:
            if want.default_queue_type and not stores_default_queue_type:
                result.notes.append(_dqt_note(want.vhost, "does not store a vhost's default_queue_type (3.10.8+ does)"))
            result.changes.append(Change(CREATE, None, want, _created_fields(want), "not on the broker"))
            continue
        change = _vhost_change(want, have, stores_default_queue_type and updates_default_queue_type, result.notes)
        if change is not None:
            result.changes.append(change)

    # one pass over each side (a key is a tuple, hashed again at every lookup: 20,000 objects a side
    # are common). Two objects of a kind whose attributes (their fields: they are frozen) are equal,
    # compared as maps without the two tuples the dataclass's __eq__ makes, have equal props; where
    # they differ (a field the props leave out among them, such as a user's secret), the props decide.
    desired_objects, live_objects = desired.objects, live.objects
    missing, differing = [], []
    for key, want in desired_objects.items():
        have = live_objects.get(key)
        if have is None:
            missing.append(key)
        elif (type(want) is not type(have) or want.__dict__ != have.__dict__) and want.props() != have.props():
            differing.append(key)
    # every desired key found live is one live key: the live side holds others only when it is longer
    others = len(live_objects) > len(desired_objects) - len(missing)
    undeclared = [key for key in live_objects if key not in desired_objects] if others else []
    for key in sorted(missing, key=_sort_key):
        resource = desired_objects[key]
        result.changes.append(Change(CREATE, None, resource, _created_fields(resource), "not on the broker"))
    for key in sorted(differing, key=_sort_key):  # most objects match: only the others are put in order
        want, have = desired.objects[key], live.objects[key]
        fields = describe(have.props(), want.props())
        hazards = _connected_user_hazards(want, have, connected_user)
        if hazards:
            result.changes.append(Change(UPDATE, have, want, fields, "differs from the files", hazards=hazards))
            continue
        if want.replace_on_change:
            reason = f"the broker cannot change a {want.kind}'s {_field_names(fields)} in place"
            result.changes.append(Change(REPLACE, have, want, fields, reason))
        else:
            result.changes.append(Change(UPDATE, have, want, fields, "differs from the files"))

    _resume_migrations(desired, live, result)

    owned_pairs: set[tuple[str, str, str, str]] = set()
    declared_users: set[str] = set()
    uri_users: set[str] = set()
    if undeclared:  # what the files own, asked only of the broker's other objects (most plans have none)
        owned_pairs = {r.pair for r in desired.objects.values() if isinstance(r, BindingState)}
        declared_users = {r.user for r in desired.objects.values() if isinstance(r, UserState)}
        uri_users = _uri_users(desired) if desired.all_users else set()
    for key in sorted(undeclared, key=_sort_key):
        resource = live_objects[key]
        if isinstance(resource, UserState):
            _undeclared_user(resource, desired, connected_user, uri_users, prune, result)
            continue
        if isinstance(resource, GlobalParameterState):
            if desired.all_global_parameters:
                _undeclared(resource, GLOBAL_PARAMETERS_KEPT.get(resource.name), prune, result)
            continue
        if resource.vhost not in desired.vhosts:
            continue
        if isinstance(resource, (PermissionState, TopicPermissionState)) and resource.user not in declared_users:
            continue  # access of users the files do not declare is not theirs to manage
        if isinstance(resource, ParameterState) and resource.kind not in desired.managed_kinds.get(resource.vhost, ()):
            continue  # shovels and upstreams are managed only in vhosts whose files name their section
        if isinstance(resource, BindingState) and resource.pair in owned_pairs:
            reason = (
                f"not declared, and the files declare the bindings from {resource.source!r} "
                f"to {resource.destination_type} {resource.destination!r}"
            )
            result.changes.append(Change(DELETE, resource, None, {}, reason))
            continue
        why = protection(resource, live, desired.ignore.get(resource.vhost, ()))
        if why is None and connected_user is not None and isinstance(resource, (PermissionState, TopicPermissionState)) \
                and resource.user == connected_user:
            why = "the permission of the user this tool is connected as"
        if why is not None and why.startswith(IGNORED):
            continue
        _undeclared(resource, why, prune, result)
    if prune:
        _keep_what_kept_bindings_need(result, live)
    return result


def _undeclared_user(user: UserState, desired: State, connected_user: str | None, uri_users: set[str], prune: bool,
                     result: Diff) -> None:
    """A user no file declares: the files' business only with ``manage_all_users``; never the
    connected user nor one a declared shovel or upstream connects as (``uri_users``); those
    matching ``ignore_users`` are not even listed."""
    if not desired.all_users or matching_ignore(user.user, desired.ignore_users) is not None:
        return
    why = "the user this tool is connected as" if user.user == connected_user else None
    if why is None and user.user in uri_users:
        why = "a declared shovel or federation upstream connects as it"
    _undeclared(user, why, prune, result)


GLOBAL_PARAMETERS_KEPT = {
    "internal_cluster_id": "internal to the broker",
    "cluster_name": "the broker always has a cluster name: declare it to change it",
}
"""Global parameters never pruned, with why."""


def _undeclared(resource: Resource, why: str | None, prune: bool, result: Diff) -> None:
    """An object no file declares, in a scope the files own: deleted with ``prune`` unless ``why``
    protects it; else listed as unmanaged."""
    if prune and why is None:
        result.changes.append(Change(DELETE, resource, None, {}, "no file declares it (--prune)"))
        return
    result.unmanaged.append(resource)
    if why is not None:
        result.protected[resource.key] = why


def _uri_users(desired: State) -> set[str]:
    """The user names in the URIs of the declared shovels and federation upstreams."""
    from topology.kinds.parameter import users_of

    return {name for r in desired.objects.values() if isinstance(r, ParameterState)
            for name in users_of(r.component, r.secret_value)}


def _connected_user_hazards(want: Resource, have: Resource, connected_user: str | None) -> tuple[str, ...]:
    """Why an update would cut off the user this tool is connected as (it is refused)."""
    if connected_user is None or getattr(want, "user", None) != connected_user:
        return ()
    hazards = []
    if isinstance(want, UserState) and isinstance(have, UserState):
        if "administrator" in have.tags and "administrator" not in want.tags:
            hazards.append("it is the user this tool is connected as: without the administrator tag it could not finish")
        if want.password != have.password:
            hazards.append("it is the user this tool is connected as: change its password by hand, then update the files")
    if isinstance(want, (PermissionState, TopicPermissionState)):
        hazards.append("it is a permission of the user this tool is connected as: change it by hand")
    return tuple(hazards)


def protection(resource: Resource, live: State, ignore: tuple[str, ...] = ()) -> str | None:
    """Why ``resource`` must never be pruned, or ``None``. A binding is protected when
    either end is (``amq.*`` exchanges excepted: bindings from them are the user's)."""
    if isinstance(resource, BindingState):
        ends = (("exchange", resource.source), (resource.destination_type, resource.destination))
        for kind, name in ends:
            why = _object_protection(kind, resource.vhost, name, live, ignore, as_end=True)
            if why is not None:
                return why if why.startswith(IGNORED) else f"its {kind} {name!r} is {why}"
        return None
    if isinstance(resource, PolicyState):
        pattern = matching_ignore(resource.name, ignore)
        return f"{IGNORED} (matches {pattern!r})" if pattern is not None else None
    if isinstance(resource, ParameterState) and isinstance(resource.value, dict) and resource.value.get("internal") is True:
        pattern = matching_ignore(resource.name, ignore)
        return f"{IGNORED} (matches {pattern!r})" if pattern is not None else "internal to a plugin (a protected shovel)"
    return _object_protection(resource.kind, resource.vhost, resource.name, live, ignore)


def _object_protection(kind: str, vhost: str, name: str, live: State, ignore: tuple[str, ...], as_end: bool = False) -> str | None:
    pattern = matching_ignore(name, ignore)
    if pattern is not None:
        return f"{IGNORED} (matches {pattern!r})"
    if kind == "exchange" and is_built_in_exchange(name):
        return None if as_end else "built into the broker"
    if kind == "queue" and is_reserved(name):
        return why_reserved_queue(name)
    if is_federation_link(name):
        return "used by federation"
    found = live.objects.get((kind, vhost, name))
    if found is not None and "x-internal-purpose" in getattr(found, "arguments", {}):
        return f"internal to a plugin ({found.arguments['x-internal-purpose']})"  # type: ignore[attr-defined]
    if kind in ("queue", "exchange") and (vhost, name) in live.internal:
        return live.internal[(vhost, name)]
    if kind == "queue" and (vhost, name) in live.migrations:
        return "being migrated (its messages wait in a temporary queue)"
    return None


def _keep_what_kept_bindings_need(result: Diff, live: State) -> None:
    """Do not prune an exchange or queue whose deletion would drop a binding that is kept."""
    deleted = {c.key for c in result.changes if c.action == DELETE}
    kept_bindings = [r for r in live.objects.values() if isinstance(r, BindingState) and r.key not in deleted]
    for change in list(result.changes):
        if change.action != DELETE or change.kind not in ("exchange", "queue"):
            continue
        kind, name = change.kind, change.name
        needed = [
            b for b in kept_bindings
            if b.vhost == change.vhost and (
                (kind == "exchange" and b.source == name)
                or (b.destination_type == kind and b.destination == name)
            )
        ]
        if needed:
            result.changes.remove(change)
            result.unmanaged.append(change.resource)
            example = min(needed, key=lambda binding: _sort_key(binding.key))  # whatever order the broker listed them in
            result.protected[change.key] = f"deleting it would drop {len(needed)} binding(s) that are kept, e.g. {example.name}"


def _resume_migrations(desired: State, live: State, result: Diff) -> None:
    """Each interrupted migration in a managed vhost becomes a resume of its queue."""
    for (vhost, queue), record in sorted(live.migrations.items()):
        if vhost not in desired.vhosts:
            continue
        key = ("queue", vhost, queue)
        target = desired.objects.get(key) or record.target
        result.changes[:] = [c for c in result.changes if c.key != key]
        before = live.objects.get(key)
        fields = describe(before.props(), target.props()) if before is not None else _created_fields(target)
        result.changes.append(
            Change(RESUME, before, target, fields, f"an interrupted migration left its messages in {record.temporary!r}")
        )


def _vhost_change(want: VhostState, have: VhostState, can_change_dqt: bool, notes: list[str]) -> Change | None:
    """An update of the declared vhost attributes; the default queue type only where the broker can change it."""
    wanted = want.props()
    if not can_change_dqt and wanted.get("default_queue_type") not in (None, have.default_queue_type):
        notes.append(_dqt_note(want.vhost, "cannot change an existing vhost's default_queue_type (3.11+ can)"))
    if not can_change_dqt:
        wanted.pop("default_queue_type", None)
    current = have.props()
    current_subset = {k: current.get(k) for k in wanted}
    if current_subset == wanted:
        return None
    merged = VhostState(
        vhost=have.vhost,
        description=want.description if want.description is not None else have.description,
        tags=want.tags if want.tags is not None else have.tags,
        default_queue_type=(want.default_queue_type if can_change_dqt and want.default_queue_type else have.default_queue_type),
        tracing=want.tracing if want.tracing is not None else have.tracing,
        limits=want.limits if want.limits is not None else have.limits,
    )
    return Change(UPDATE, have, merged, describe(current_subset, wanted), "metadata differs from the files")


def _dqt_note(vhost: str, what: str) -> str:
    return f"vhost {vhost!r}: this broker {what}; queues declared without a type still get it from the files"


def _created_fields(resource: Resource) -> dict[str, FieldChange]:
    return {name: FieldChange(None, value) for name, value in resource.props().items()}


def _field_names(fields: dict[str, FieldChange]) -> str:
    tops = sorted({name.split(".")[0] for name in fields})
    return " and ".join(", ".join(tops).rsplit(", ", 1)) if tops else "properties"


def _sort_key(key: tuple[Any, ...]) -> tuple[Any, ...]:
    return (KIND_ORDER.index(key[0]),) + tuple(str(part) for part in key[1:])
