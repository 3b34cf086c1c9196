"""One module per kind of object, and the registry of kinds in dependency order.

Every kind's class (see :class:`topology.kinds.base.Resource`) holds the kind's canonical value
(identity, compared properties, whether a change replaces it), how it is built from the files,
read from the broker's definitions and rebuilt from a saved plan, and its one broker body.
:mod:`topology.state`, :mod:`topology.broker.live`, :mod:`topology.apply`,
:mod:`topology.render.definitions` and :mod:`topology.plan` loop over :data:`KINDS` instead of
branching per kind. Adding a kind is one module here and one line in :data:`KINDS`.

Kind modules never import :mod:`topology.state` (which imports them).
"""

from __future__ import annotations

from typing import Any

from topology.kinds.base import PASSWORD_CHANGED, PASSWORD_SET, Resource
from topology.model.values import canonical
from topology.kinds.binding import BindingState
from topology.kinds.exchange import ExchangeState
from topology.kinds.global_parameter import GlobalParameterState
from topology.kinds.parameter import (
    PARAMETER_COMPONENTS,
    PARAMETER_KINDS,
    FederationUpstreamSetState,
    FederationUpstreamState,
    ParameterState,
    ShovelState,
)
from topology.kinds.policy import OperatorPolicyState, PolicyState
from topology.kinds.queue import QueueState
from topology.kinds.user import PermissionState, TopicPermissionState, UserState
from topology.kinds.vhost import VhostState

KINDS: tuple[type[Resource], ...] = (
    VhostState, GlobalParameterState, UserState, ExchangeState, QueueState, BindingState, FederationUpstreamState,
    FederationUpstreamSetState, PolicyState, OperatorPolicyState, PermissionState, TopicPermissionState, ShovelState)
"""Every kind, in dependency order: creations go in this order, deletions in reverse. Upstreams
come before the policies that federate through them; shovels last, once the queues they use
(which a shovel would otherwise declare itself, as classic queues) and the permissions they
connect with exist."""

KIND_ORDER: tuple[str, ...] = tuple(cls.kind for cls in KINDS)
BY_KIND: dict[str, type[Resource]] = {cls.kind: cls for cls in KINDS}

VHOST_KINDS: tuple[type[Resource], ...] = (ExchangeState, QueueState, BindingState, ShovelState,
                                          FederationUpstreamState, FederationUpstreamSetState, PolicyState)
"""The kinds one vhost's definitions export holds (operator policies, permissions and limits are
read apart)."""


def from_plan(kind: str, identity: dict[str, Any], props: dict[str, Any]) -> Resource:
    """The object of ``kind`` that ``identity()`` and ``props()`` describe (read back from a plan file)."""
    try:
        cls = BY_KIND[kind]
    except KeyError:
        raise ValueError(f"unknown kind {kind!r}") from None
    return cls.from_plan(identity, props)


__all__ = [
    "BY_KIND", "KINDS", "KIND_ORDER", "PARAMETER_COMPONENTS", "PARAMETER_KINDS", "PASSWORD_CHANGED", "PASSWORD_SET",
    "VHOST_KINDS", "BindingState", "ExchangeState", "FederationUpstreamSetState", "FederationUpstreamState",
    "GlobalParameterState", "OperatorPolicyState", "ParameterState", "PermissionState", "PolicyState", "QueueState",
    "Resource", "ShovelState", "TopicPermissionState", "UserState", "VhostState", "canonical", "from_plan",
]
