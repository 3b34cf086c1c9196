"""The steps wired together: load → validate → read live → diff → plan, and apply → verify.

The command line calls these; they print nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from topology import loader
from topology.broker.client import ManagementClient
from topology.collector import paused
from topology.broker.live import BrokerInfo, broker_info, internal_exchanges, read_live
from topology.diff import AT_STAKE, DELETE, Change, Diff, diff
from topology.errors import ApplyError, BrokerError, StalePlan
from topology.model.topology import Topology
from topology.kinds.parameter import resolve_credentials
from topology.passwords import resolve_passwords
from topology.plan import Fingerprints, Plan, QueueFacts, build, fingerprints, stale_changes, unfinished
from topology.kinds import QueueState
from topology.state import desired_state, State
from topology.validate import check_broker_version, check_exchange_types
from topology.rules.versions import OLDEST_SUPPORTED

if TYPE_CHECKING:  # imported where they are used: a plan needs neither applying nor drift's checks
    from topology.apply import ApplyOptions, ChecksAhead, Report
    from topology.drift import DriftReport
    from topology.ha import QueueHealth


load_valid = loader.load_valid
"""Load and validate the files (see :func:`topology.loader.load_valid`)."""


Stage = Callable[[str], None]
"""Told what a long step is doing now (for a progress display)."""


def make_plan(topology: Topology, client: ManagementClient, broker: BrokerInfo | None = None, *, prune: bool = False,
              stage: Stage | None = None, checks_ahead: ChecksAhead | None = None) -> Plan:
    """Read the managed vhosts from the broker and plan the changes that make them match the files.
    ``checks_ahead``: an apply that asks no one begins its checks before the first write as soon as
    the changes are known (:class:`topology.apply.ChecksAhead`)."""
    return _plan(topology, client, broker, prune=prune, stage=stage, checks_ahead=checks_ahead)[0]


def _deprecated_feature_reader(client: ManagementClient) -> Callable[[str], bool | None]:
    """Whether the broker permits a deprecated feature (``None``: it does not say), read once and
    only when asked (only files that use such a feature cost the request)."""
    states: list[dict[str, str] | None] = []

    def permits(feature: str) -> bool | None:
        if not states:
            states.append(client.deprecated_features())
        state = (states[0] or {}).get(feature)
        return None if state is None else state == "permitted"

    return permits


@paused()
def _plan(topology: Topology, client: ManagementClient, broker: BrokerInfo | None = None, *,
          prune: bool = False, stage: Stage | None = None,
          checks_ahead: ChecksAhead | None = None) -> tuple[Plan, State, State]:
    """The plan, and the desired and live states it was made from (built with the collector paused:
    they live to the end of the command, see :mod:`topology.collector`)."""
    stage = stage or (lambda what: None)
    stage("reading the broker")
    broker = broker or broker_info(client)
    check_broker_version(topology, broker.version_tuple, broker.version, permits=_deprecated_feature_reader(client))
    check_exchange_types(topology, broker.exchange_types)
    desired = desired_state(topology)
    vhosts = sorted(desired.vhosts)
    all_users = bool(topology.manage_all_users and topology.manage_all_users.spec)
    live = read_live(client, vhosts, access=bool(topology.users) or all_users,
                     limits=any(v.limits is not None for v in topology.vhosts.values()),
                     parameters=topology.global_parameters_named,
                     operator_policies=[v.name for v in topology.vhosts.values()
                                        if "operator_policies" in v.declared_sections],
                     internal_exchanges=internal_exchanges(desired.objects.values()))
    client.drop_read_ahead()  # what was read ahead is for this plan only
    stage("comparing")
    resolve_passwords(desired, live)
    resolve_credentials(desired, live)
    found = diff(
        desired,
        live,
        stores_default_queue_type=broker.stores_default_queue_type,
        updates_default_queue_type=broker.updates_default_queue_type,
        prune=prune,
        connected_user=client.user,
    )
    if checks_ahead is not None:
        checks_ahead.begin(found.changes)
    queues, hidden_bindings, connections, fingerprinted = _facts_and_fingerprints(found, live, client)
    the_plan = build(found, live, vhosts=vhosts, broker=broker, queues=queues, hidden_bindings=hidden_bindings,
                     user_connections=connections, prune=prune, fingerprinted=fingerprinted)
    return the_plan, desired, live


def _facts_and_fingerprints(found: Diff, live: State, client: ManagementClient) -> tuple[
        dict[tuple[str, str], QueueFacts], dict[tuple[str, str], int], dict[str, int], Fingerprints | None]:
    """:func:`_facts`, and the changes' fingerprints made meanwhile: where a change replaces,
    resumes or deletes something, a thread of its own fingerprints the changes (about 1 s for
    48,000 deletions) while this one reads the facts (a vhost of 24,000 queues answers with their
    statistics in about 4 s; read here, on the thread and the connection that read the vhost).
    Without such a change, the facts read nothing and the fingerprints are left to
    :func:`~topology.plan.build`."""
    if not any(change.action in AT_STAKE for change in found.changes):
        return (*_facts(found, live, client), None)
    made: list[Fingerprints | BaseException] = []

    def fingerprinting() -> None:
        try:
            made.append(fingerprints(found, live))
        except BaseException as error:  # raised in this thread, below
            made.append(error)

    thread = threading.Thread(target=fingerprinting, name="topology-fingerprints", daemon=True)
    thread.start()
    facts = _facts(found, live, client)
    thread.join()
    if isinstance(made[0], BaseException):
        raise made[0]
    return (*facts, made[0])


def check_drift(topology: Topology, client: ManagementClient, *, fail_on_orphans: bool = False,
                statistics_wait: float | None = None) -> DriftReport:
    """Compare the broker with the files: objects, orphans, and the high-availability
    state of every queue in the managed vhosts. Changes nothing.

    The queues' policy, mirrors and members come from statistics that lag a few seconds.
    Queues without statistics yet, or whose statistics name another policy than the
    broker's own policies give them, are read again for up to ``statistics_wait`` seconds
    (:data:`topology.rules.queues.STATISTICS_WAIT` when not given)."""
    from topology.drift import build_report
    from topology.rules.queues import STATISTICS_WAIT

    the_plan, desired, live = _plan(topology, client)
    health = _queue_health(client, the_plan.broker, desired, live)
    deadline = time.monotonic() + (STATISTICS_WAIT if statistics_wait is None else statistics_wait)
    while (health.stale or health.unknown) and time.monotonic() < deadline:
        time.sleep(1.0)
        health = _queue_health(client, the_plan.broker, desired, live)
    return build_report(the_plan, desired, health, fail_on_orphans=fail_on_orphans)


def _queue_health(client: ManagementClient, broker: BrokerInfo | None, desired: State, live: State) -> QueueHealth:
    """The high-availability checks of every queue the files declare (those on the broker)."""
    from topology.ha import QUEUE_COLUMNS, QueueHealth, check_queues

    health = QueueHealth()
    vhosts = [v for v in sorted(desired.vhosts) if v in live.vhosts]
    if not vhosts:
        return health
    every_node, running = client.nodes()
    version = broker.version_tuple if broker is not None else OLDEST_SUPPORTED
    for vhost in vhosts:
        policies = [r for r in desired.objects.values() if r.kind == "policy" and r.vhost == vhost]
        queues = [r.name for r in desired.objects.values() if isinstance(r, QueueState) and r.vhost == vhost]
        found = check_queues(
            vhost, client.queues_health(vhost, QUEUE_COLUMNS), policies, running, queues,
            declared_policies=[p.policy for p in policies],
            live_policies=[r for r in live.objects.values() if r.kind == "policy" and r.vhost == vhost],
            cluster_size=len(every_node), version=version, ignore=desired.ignore.get(vhost, ()),
        )
        health.findings.extend(found.findings)
        health.checked.extend(found.checked)
        health.notes.extend(found.notes)
        health.unknown.extend(found.unknown)
        health.stale.extend(found.stale)
    return health


def _facts(found: Diff, live: State, client: ManagementClient) -> tuple[
        dict[tuple[str, str], QueueFacts], dict[tuple[str, str], int], dict[str, int]]:
    """What replacements, resumptions and deletions put at stake, read only when there
    are some: the statistics of the queues (one request per vhost), per exchange, the
    bindings the definitions export hides (those to exclusive queues; one request per
    exchange, where the vhost has queues the export leaves out), and the connections open as each user to delete (one request each)."""
    queues: dict[tuple[str, str], QueueFacts] = {}
    hidden_bindings: dict[tuple[str, str], int] = {}
    connections = {c.name: client.user_connections(c.name) for c in found.changes if c.action == DELETE and c.kind == "user"}
    statistics: dict[str, dict[str, dict[str, Any]]] = {}

    def statistics_of(vhost: str) -> dict[str, dict[str, Any]]:
        if vhost not in statistics:  # one read per vhost, for its queues and its exchanges
            statistics[vhost] = client.queue_statistics(vhost)  # kept by the client for apply's first check
        return statistics[vhost]

    counted: set[str] = set()
    unexported: dict[str, bool] = {}
    """Per vhost, whether it holds queues its definitions export leaves out (exclusive ones): only
    then can an exchange have bindings the export hides (one read per vhost, not one per exchange)."""
    for change in found.changes:
        if change.action not in AT_STAKE:
            continue
        if change.kind == "queue" and change.vhost not in counted:
            counted.add(change.vhost)
            for entry in statistics_of(change.vhost).values():
                messages, consumers = entry.get("messages"), entry.get("consumers")
                queues[(change.vhost, entry["name"])] = QueueFacts(
                    messages if isinstance(messages, int) else None, consumers if isinstance(consumers, int) else None
                )
        elif change.kind == "exchange":
            if change.vhost not in unexported:
                unexported[change.vhost] = any(
                    ("queue", change.vhost, name) not in live.objects and (change.vhost, name) not in live.migrations
                    for name in statistics_of(change.vhost))
            if not unexported[change.vhost]:
                hidden_bindings[(change.vhost, change.name)] = 0
                continue
            hidden = [
                b for b in client.exchange_bindings(change.vhost, change.name)
                if b.get("destination_type") == "queue" and ("queue", change.vhost, b.get("destination")) not in live.objects
                and (change.vhost, b.get("destination")) not in live.migrations
            ]
            hidden_bindings[(change.vhost, change.name)] = len(hidden)
    return queues, hidden_bindings, connections


def check_saved_plan(plan: Plan, client: ManagementClient) -> BrokerInfo:
    """Refuse a saved plan made against another broker, or against a state that changed since."""
    broker = broker_info(client)
    planned = plan.broker
    if planned is None or (planned.cluster_name, planned.version) != (broker.cluster_name, broker.version):
        then = f"cluster {planned.cluster_name!r}, RabbitMQ {planned.version}" if planned else "an unknown broker"
        raise StalePlan(
            f"the plan was made against {then}, but {broker.url} is cluster {broker.cluster_name!r}, "
            f"RabbitMQ {broker.version}: make the plan again against this broker",
            [],
        )
    live = read_live(client, list(plan.vhosts), **_reads_for(plan))
    changed = stale_changes(plan, live)
    if changed:
        raise StalePlan(
            f"the plan is stale: {len(changed)} object(s) it touches changed on the broker since it was made; "
            "make the plan again",
            changed,
        )
    return broker


def _reads_for(plan: Plan) -> dict[str, Any]:
    """What beyond the vhosts' definitions a saved plan's changes need read from the broker."""
    kinds = {change.kind for change in plan.changes}
    return {
        "access": bool(kinds & {"user", "permission", "topic_permission"}),
        "limits": any(c.kind == "vhost" and "limits" in c.resource.props() for c in plan.changes),
        "parameters": "global_parameter" in kinds,
        "operator_policies": sorted({c.vhost for c in plan.changes if c.kind == "operator_policy"}),
        "internal_exchanges": internal_exchanges(r for c in plan.changes for r in (c.before, c.after) if r),
    }


def apply_plan(
    plan: Plan,
    client: ManagementClient,
    *,
    topology: Topology | None = None,
    options: ApplyOptions | None = None,
    report: Report | None = None,
    stage: Stage | None = None,
) -> list[Change]:
    """Apply ``plan``, then re-read the broker and check that it shows every change.

    With ``topology``, the check is a new plan from the files (it must be empty);
    without (a saved plan), it is that each change's end state is on the broker.
    Raises :class:`ApplyError` when something is left to do, and before any write when
    ``options.lock`` does not hold every lock the plan needs (see :mod:`topology.locks`)."""
    from topology.apply import Applier, ApplyOptions
    from topology.locks import describe_keys, keys_for_plan

    options = options or ApplyOptions()
    plan.check_allowed(
        allow_replace=options.allow_replace,
        migrate_messages=options.migrate_messages,
        allow_data_loss=options.allow_data_loss,
    )
    if plan.empty:
        return []
    if options.lock is not None:
        missing = keys_for_plan(plan) - options.lock.held
        if missing:  # a caller's mistake: writing there could overlap another apply
            raise ApplyError(f"not applied: the plan changes {describe_keys(missing)}, whose apply lock this run "
                             "does not hold")
    stage = stage or (lambda what: None)
    applier = Applier(client, options, stage)
    applied = applier.apply(plan, report)
    stage("checking the broker shows every change")
    left = _left(plan, client, topology)
    if applier.pending:
        # the last run went through a definitions import, which skips some objects without a word
        # (one made meanwhile with other settings, a binding the broker refused...): what the
        # broker shows is applied, the rest is created one request at a time
        differs = {change.key for change in left}
        skipped = any(change.key in differs for change in applier.pending)
        if skipped:
            stage("creating what the import skipped, one at a time")
        applier.settle(applier.pending, differs, plan, report)
        if skipped:
            left = _left(plan, client, topology)
    if left:
        titles = [change.title for change in left]
        raise ApplyError(f"applied {len(applied)} change(s) but the broker still differs: {'; '.join(titles[:5])}")
    if options.lock is not None:
        try:  # lost at any moment, another apply may have run beside this one: never report success
            options.lock.check()
        except BrokerError as lost:
            raise ApplyError(f"{lost} after applying {len(applied)} change(s); run plan to see where the broker stands") from None
    return applied


def _left(plan: Plan, client: ManagementClient, topology: Topology | None) -> list[Change]:
    """What is still to do after applying ``plan``: with ``topology``, a new plan from the files;
    without (a saved plan), the changes whose end state the broker does not show."""
    if topology is not None:
        return list(make_plan(topology, client, plan.broker, prune=plan.prune).changes)
    return unfinished(plan, read_live(client, list(plan.vhosts), **_reads_for(plan)))
