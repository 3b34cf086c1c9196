"""The set of canonical objects that desired and live state are compared in.

Both sides are made of the same objects (:mod:`topology.kinds`), so defaults, number types
and server-added values cannot produce a phantom change. :func:`desired_state` builds a
:class:`State` from the files; :mod:`topology.broker.live` from the broker's definitions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from topology.kinds import KINDS, Resource, VhostState
from topology.kinds.parameter import PARAMETER_KINDS
from topology.migration_record import MigrationRecord
from topology.model.topology import Origin, Topology


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
        """Add an object (a vhost goes to :attr:`vhosts`)."""
        key = resource.key  # a property: made once
        if isinstance(resource, VhostState):
            self.vhosts[resource.vhost] = resource
        else:
            self.objects[key] = resource
        if origin is not None:
            self.origins[key] = origin


def desired_state(topology: Topology) -> State:
    """The canonical objects the files declare: every kind's, in the registry's order."""
    state = State()
    for kind in KINDS:
        for resource, origin in kind.declared(topology):
            state.add(resource, origin)
    for vhost in topology.vhosts.values():
        state.ignore[vhost.name] = tuple(d.spec for d in vhost.ignore)
        state.managed_kinds[vhost.name] = frozenset(
            cls.kind for cls in PARAMETER_KINDS.values() if cls.files_section in vhost.declared_sections)
    state.all_users = bool(topology.manage_all_users and topology.manage_all_users.spec)
    state.all_global_parameters = topology.global_parameters_named
    state.ignore_users = tuple(d.spec for d in topology.ignore_users)
    return state
