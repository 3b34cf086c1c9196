"""The drift report: each managed object in sync or not, the orphans, and high-availability findings (pure).

Drift is what a plan (without ``--prune``) would change: an object the files declare
that is missing or differs on the broker, or a binding between a source and a
destination the files bind that no file declares. Orphans (objects in the managed
vhosts that no file declares) are listed apart and count as drift only when asked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from topology import __version__
from topology.broker.live import BrokerInfo
from topology.diff import CREATE, DELETE, REPLACE, RESUME, UPDATE, Change
from topology.ha import Finding, QueueHealth
from topology.plan import Plan
from topology.kinds import KIND_ORDER
from topology.state import State

REPORT_FORMAT_VERSION = 1

IN_SYNC, MISSING, CHANGED, UNDECLARED, MIGRATING = "in_sync", "missing", "changed", "undeclared", "migrating"
STATUS_OF_ACTION = {CREATE: MISSING, UPDATE: CHANGED, REPLACE: CHANGED, RESUME: MIGRATING, DELETE: UNDECLARED}


@dataclass(frozen=True)
class ObjectStatus:
    """One managed object (or an undeclared binding between a pair the files bind) and how it stands."""

    kind: str
    vhost: str
    name: str
    identity: dict[str, Any]
    status: str
    declared_at: str = ""
    """file:line of the declaration (empty for an undeclared binding)."""
    change: Change | None = None

    @property
    def drifted(self) -> bool:
        return self.status != IN_SYNC

    def describe(self) -> str:
        """What differs, in one line (empty when in sync)."""
        change = self.change
        if change is None:
            return ""
        if self.status == MISSING:
            return "missing on the broker"
        if self.status == UNDECLARED:
            return "on the broker between objects the files bind, but declared in no file"
        if self.status == MIGRATING:
            return "an interrupted message migration is waiting to be finished (run apply)"
        fields = "; ".join(f"{name}: {_short(f.before)} on the broker, {_short(f.after)} in the files"
                           for name, f in change.fields.items())
        replace = " (apply must replace it)" if change.action == REPLACE else ""
        return (fields or "differs") + replace

    def to_dict(self) -> dict[str, Any]:
        change = self.change
        return {
            "kind": self.kind,
            "vhost": self.vhost,
            "name": self.name,
            "identity": self.identity,
            "status": self.status,
            "declared_at": self.declared_at or None,
            "diff": {n: {"live": f.before, "declared": f.after} for n, f in change.fields.items()} if change else {},
            "message": self.describe(),
        }


def _short(value: Any) -> str:
    from topology.render.text import value as shown

    return shown(value)


@dataclass(frozen=True)
class DriftReport:
    """Everything ``topology drift`` found, in every format's order."""

    broker: BrokerInfo | None
    objects: tuple[ObjectStatus, ...]
    orphans: tuple[Any, ...] = ()
    protected: dict[tuple[Any, ...], str] = field(default_factory=dict, hash=False)
    health: QueueHealth = field(default_factory=QueueHealth, hash=False)
    notes: tuple[str, ...] = ()
    fail_on_orphans: bool = False
    target: str | None = None

    @property
    def drifted_objects(self) -> list[ObjectStatus]:
        return [o for o in self.objects if o.drifted]

    @property
    def ha_findings(self) -> list[Finding]:
        return self.health.findings

    @property
    def drifted(self) -> bool:
        """Whether drift was found (orphans count only with ``fail_on_orphans``)."""
        return bool(self.drifted_objects or self.ha_findings or (self.fail_on_orphans and self.orphans))

    def summary(self) -> dict[str, int]:
        counts = {IN_SYNC: 0, MISSING: 0, CHANGED: 0, UNDECLARED: 0, MIGRATING: 0}
        for item in self.objects:
            counts[item.status] += 1
        return {"objects": len(self.objects), **counts, "orphans": len(self.orphans), "ha_findings": len(self.ha_findings)}

    def to_dict(self, items: Callable[[Iterator[dict[str, Any]]], Any] = list) -> dict[str, Any]:
        """The documented JSON form (docs/reference/drift-report.md). ``items`` holds the objects
        and the orphans: a list, or what makes them one at a time as the document is written
        (:class:`topology.render.stream.Items`)."""
        return {
            "format_version": REPORT_FORMAT_VERSION,
            "tool_version": __version__,
            "target": self.target,
            "broker": self.broker.to_dict() if self.broker else None,
            "drifted": self.drifted,
            "fail_on_orphans": self.fail_on_orphans,
            "summary": self.summary(),
            "objects": items(o.to_dict() for o in self.objects),
            "orphans": items(
                {"kind": r.kind, **r.identity(), "protected": self.protected.get(r.key)} for r in self.orphans
            ),
            "high_availability": {
                "findings": [f.to_dict() for f in self.ha_findings],
                "queues_checked": len(self.health.checked),
                "statistics_missing": [f"{v}/{q}" for v, q in self.health.unknown],
                "statistics_stale": [f"{v}/{q}" for v, q in self.health.stale],
                "notes": list(self.health.notes),
            },
            "notes": list(self.notes),
        }


def build_report(plan: Plan, desired: State, health: QueueHealth, *, fail_on_orphans: bool = False) -> DriftReport:
    """The report from a plan made without ``--prune``, the desired state it was made from, and the queue checks."""
    changes = {c.key: c for c in plan.changes}
    items: list[ObjectStatus] = []
    for key, resource in desired.objects.items():
        change = changes.pop(key, None)
        origin = desired.origins.get(key)
        items.append(ObjectStatus(
            kind=resource.kind, vhost=resource.vhost, name=resource.name, identity=resource.identity(),
            status=STATUS_OF_ACTION[change.action] if change else IN_SYNC,
            declared_at=str(origin) if origin else "", change=change,
        ))
    for vhost in desired.vhosts.values():
        change = changes.pop(vhost.key, None)
        origin = desired.origins.get(vhost.key)
        items.append(ObjectStatus(
            kind="vhost", vhost=vhost.vhost, name=vhost.vhost, identity=vhost.identity(),
            status=STATUS_OF_ACTION[change.action] if change else IN_SYNC,
            declared_at=str(origin) if origin else "", change=change,
        ))
    for change in changes.values():  # undeclared bindings between owned pairs, resumed migrations
        items.append(ObjectStatus(
            kind=change.kind, vhost=change.vhost, name=change.name, identity=change.resource.identity(),
            status=STATUS_OF_ACTION[change.action], change=change,
        ))
    items.sort(key=lambda o: (o.vhost, KIND_ORDER.index(o.kind) if o.kind in KIND_ORDER else 99, o.name))
    return DriftReport(
        broker=plan.broker, objects=tuple(items), orphans=plan.unmanaged, protected=dict(plan.protected),
        health=health, notes=plan.notes, fail_on_orphans=fail_on_orphans,
    )
