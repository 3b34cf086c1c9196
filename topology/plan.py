"""The plan: an ordered, frozen, serialisable list of changes, and the gates on it.

Building a plan changes nothing. It can be rendered, saved as JSON and executed by
:mod:`topology.apply`. Dangerous changes are refused here, before the first write:
:meth:`Plan.check_allowed` decides whether replacements may go ahead.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from topology import __version__
from topology.broker.live import BrokerInfo
from topology.diff import ACTIONS, DELETE, REPLACE, Change, Diff
from topology.errors import PlanRefused
from topology.state import KIND_ORDER, BindingState, ExchangeState, QueueState, Resource, State

PLAN_FORMAT_VERSION = 1
"""Version of the JSON plan format; bumped on any incompatible change."""


@dataclass(frozen=True)
class Plan:
    """What apply will do, in the order it will do it."""

    changes: tuple[Change, ...]
    unmanaged: tuple[Resource, ...] = ()
    notes: tuple[str, ...] = ()
    vhosts: tuple[str, ...] = ()
    broker: BrokerInfo | None = None

    @property
    def empty(self) -> bool:
        return not self.changes

    def summary(self) -> dict[str, int]:
        counts = {action: 0 for action in ACTIONS}
        for change in self.changes:
            counts[change.action] += 1
        return counts

    @property
    def replacements(self) -> list[Change]:
        return [c for c in self.changes if c.action == REPLACE]

    def check_allowed(self, *, allow_replace: bool) -> None:
        """Refuse, before anything is written, what the options do not allow."""
        replacements = self.replacements
        if not replacements:
            return
        hazards = [f"{c.kind} {c.vhost}/{c.name}: {h}" for c in replacements for h in c.hazards]
        if hazards:
            raise PlanRefused(f"refusing replacements that would break what cannot be repaired: {'; '.join(hazards)}")
        if not allow_replace:
            what = "; ".join(f"{c.kind} {c.vhost}/{c.name} ({_loss(c)})" for c in replacements)
            raise PlanRefused(
                f"{len(replacements)} object(s) must be deleted and re-created: {what}. "
                "Re-run with --allow-replace to accept this."
            )
        loaded = [c for c in replacements if c.messages]
        if loaded:
            what = "; ".join(f"queue {c.vhost}/{c.name} holds {c.messages} message(s)" for c in loaded)
            raise PlanRefused(f"refusing to replace queues that hold messages, they would be lost: {what}. Drain them first.")

    def to_dict(self) -> dict[str, Any]:
        """The documented JSON form of the plan (see the README, "JSON plan")."""
        summary = self.summary()
        summary["unmanaged"] = len(self.unmanaged)
        return {
            "format_version": PLAN_FORMAT_VERSION,
            "tool_version": __version__,
            "broker": self.broker.to_dict() if self.broker else None,
            "vhosts": list(self.vhosts),
            "changes": [change_to_dict(c) for c in self.changes],
            "unmanaged": [{"kind": r.kind, **r.identity()} for r in self.unmanaged],
            "notes": list(self.notes),
            "summary": summary,
        }


def change_to_dict(change: Change) -> dict[str, Any]:
    data: dict[str, Any] = {
        "action": change.action,
        "kind": change.kind,
        "vhost": change.vhost,
        "name": change.name,
        "identity": change.resource.identity(),
        "diff": {name: {"before": f.before, "after": f.after} for name, f in change.fields.items()},
        "reason": change.reason,
        "before": change.before.props() if change.before else None,
        "after": change.after.props() if change.after else None,
    }
    if change.action == REPLACE:
        data["rebind"] = [b.identity() for b in change.rebind]
        data["messages"] = change.messages
        data["hazards"] = list(change.hazards)
    return data


def _loss(change: Change) -> str:
    parts = []
    if isinstance(change.resource, QueueState):
        parts.append("its messages" if change.messages is None else f"{change.messages} message(s)")
    if change.rebind:
        parts.append(f"{len(change.rebind)} binding(s), re-created")
    parts.append(change.reason)
    return ", ".join(parts)


def _order(change: Change) -> tuple[Any, ...]:
    index = KIND_ORDER.index(change.kind)
    if change.action == DELETE:
        return (1, -index, change.vhost, change.name)
    return (0, index, change.vhost, change.name)


def build(
    found: Diff,
    live: State,
    *,
    vhosts: list[str],
    broker: BrokerInfo | None = None,
    queue_messages: dict[tuple[str, str], int] | None = None,
    hidden_bindings: dict[tuple[str, str], int] | None = None,
) -> Plan:
    """Order the changes (kinds in dependency order, creations before deletions) and
    attach to each replacement the bindings to re-create, the messages at stake and
    its hazards.

    ``hidden_bindings`` counts, per (vhost, exchange) to be replaced, the bindings the
    definitions export does not show (to exclusive queues of connected clients).
    """
    queue_messages = queue_messages or {}
    hidden_bindings = hidden_bindings or {}
    deleted = {c.key for c in found.changes if c.action == DELETE}
    live_bindings = [r for r in live.objects.values() if isinstance(r, BindingState)]
    changes = []
    for change in found.changes:
        if change.action == REPLACE:
            dropped = [b for b in live_bindings if _touches(b, change.resource)]
            rebind = tuple(sorted((b for b in dropped if b.key not in deleted), key=lambda b: b.key))
            messages = queue_messages.get((change.vhost, change.name)) if change.kind == "queue" else None
            hazards = _hazards(change, dropped, live_bindings, live, hidden_bindings)
            change = replace(change, rebind=rebind, messages=messages, hazards=hazards)
        changes.append(change)
    changes.sort(key=_order)
    return Plan(
        changes=tuple(changes),
        unmanaged=tuple(found.unmanaged),
        notes=tuple(dict.fromkeys(found.notes)),
        vhosts=tuple(sorted(vhosts)),
        broker=broker,
    )


def _hazards(
    change: Change,
    dropped: list[BindingState],
    live_bindings: list[BindingState],
    live: State,
    hidden_bindings: dict[tuple[str, str], int],
) -> tuple[str, ...]:
    hazards = []
    hidden = hidden_bindings.get((change.vhost, change.name), 0) if change.kind == "exchange" else 0
    if hidden:
        hazards.append(
            f"{hidden} binding(s) to exclusive queues of connected clients would be dropped and cannot be re-created"
        )
    dropped_keys = {b.key for b in dropped}
    for source in sorted({b.source for b in dropped if b.source != change.name or change.kind != "exchange"}):
        exchange = live.objects.get(("exchange", change.vhost, source))
        if not isinstance(exchange, ExchangeState) or not exchange.auto_delete:
            continue
        if all(b.key in dropped_keys for b in live_bindings if b.vhost == change.vhost and b.source == source):
            hazards.append(f"the broker would delete auto-delete exchange {source!r} when its last binding goes")
    return tuple(hazards)


def _touches(binding: BindingState, resource: Resource) -> bool:
    """Does the broker drop ``binding`` when ``resource`` is deleted?"""
    if binding.vhost != resource.vhost:
        return False
    if isinstance(resource, QueueState):
        return binding.destination_type == "queue" and binding.destination == resource.queue
    if isinstance(resource, ExchangeState):
        return binding.source == resource.exchange or (
            binding.destination_type == "exchange" and binding.destination == resource.exchange
        )
    return False
