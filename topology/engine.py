"""The steps wired together: load → validate → read live → diff → plan, and apply → verify.

The command line calls these; they print nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from topology.apply import Applier, Report
from topology.broker.amqp import QueueInspector
from topology.broker.client import ManagementClient
from topology.broker.live import BrokerInfo, broker_info, read_live
from topology.diff import REPLACE, Change, Diff, diff
from topology.errors import ApplyError
from topology.loader import load
from topology.model.topology import Topology
from topology.plan import Plan, build
from topology.state import State, desired_state
from topology.validate import check_broker_version, check_exchange_types, validate


def load_valid(paths: Iterable[str]) -> Topology:
    """Load and validate the files; raise :class:`~topology.errors.ConfigError` with every problem."""
    topology = load(paths)
    validate(topology)
    return topology


def make_plan(topology: Topology, client: ManagementClient, broker: BrokerInfo | None = None) -> Plan:
    """Read the managed vhosts from the broker and plan the changes that make them match the files."""
    broker = broker or broker_info(client)
    check_broker_version(topology, broker.version_tuple, broker.version)
    check_exchange_types(topology, broker.exchange_types)
    desired = desired_state(topology)
    vhosts = sorted(desired.vhosts)
    live = read_live(client, vhosts)
    found = diff(
        desired,
        live,
        stores_default_queue_type=broker.stores_default_queue_type,
        updates_default_queue_type=broker.updates_default_queue_type,
    )
    queue_messages, hidden_bindings = _replacement_facts(found, live, client)
    return build(
        found, live, vhosts=vhosts, broker=broker, queue_messages=queue_messages, hidden_bindings=hidden_bindings
    )


def _replacement_facts(
    found: Diff, live: State, client: ManagementClient
) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], int]]:
    """What replacements put at stake, read only when there are replacements: the
    messages of each queue (one request per vhost) and, per exchange, the bindings the
    definitions export hides (those to exclusive queues; one request per exchange)."""
    queue_messages: dict[tuple[str, str], int] = {}
    hidden_bindings: dict[tuple[str, str], int] = {}
    counted: set[str] = set()
    for change in found.changes:
        if change.action != REPLACE:
            continue
        if change.kind == "queue" and change.vhost not in counted:
            counted.add(change.vhost)
            for entry in client.queue_stats(change.vhost):
                if isinstance(entry.get("messages"), int):
                    queue_messages[(change.vhost, entry["name"])] = entry["messages"]
        elif change.kind == "exchange":
            hidden = [
                b for b in client.exchange_bindings(change.vhost, change.name)
                if b.get("destination_type") == "queue" and ("queue", change.vhost, b.get("destination")) not in live.objects
            ]
            hidden_bindings[(change.vhost, change.name)] = len(hidden)
    return queue_messages, hidden_bindings


def apply_plan(
    topology: Topology,
    plan: Plan,
    client: ManagementClient,
    *,
    inspector: QueueInspector | None = None,
    allow_replace: bool = False,
    report: Report | None = None,
) -> tuple[list[Change], Plan]:
    """Apply ``plan``, then re-read the broker; return the changes applied and the plan left
    (empty on success). Raises :class:`ApplyError` when changes remain after applying.

    Queues to be replaced are checked for messages and consumers through the statistics;
    ``inspector`` adds exact AMQP counts to those checks."""
    plan.check_allowed(allow_replace=allow_replace)
    if plan.empty:
        return [], plan
    applied = Applier(client, inspector).apply(plan, report)
    remaining = make_plan(topology, client, plan.broker)
    if not remaining.empty:
        listed = "; ".join(f"{c.action} {c.kind} {c.vhost}/{c.name}" for c in remaining.changes[:5])
        raise ApplyError(f"applied {len(applied)} change(s) but the broker still differs: {listed}")
    return applied, remaining
