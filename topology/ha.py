"""High-availability drift: what the broker says of each queue's policy, mirrors and
members, against what the files' policies should give it (pure; no I/O).

The policy a queue should have is resolved as RabbitMQ does, by :mod:`topology.matching`;
between equal priorities any tied policy is accepted (and the tie reported as a note), and a
queue that a policy with an undecided pattern could match is not checked (a note says so).

The management API reports the policy in effect, mirrors and members from the queues'
statistics, which lag a few seconds behind changes (see :data:`topology.rules.queues.STATISTICS_WAIT`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from topology.matching import contest
from topology.kinds import PolicyState
from topology.model.topology import matching_ignore
from topology.rules.versions import OLDEST_SUPPORTED

QUEUE_COLUMNS = (
    "name,type,arguments,exclusive,state,node,policy,operator_policy,effective_policy_definition,"
    "slave_nodes,synchronised_slave_nodes,members,online"
)

POLICY, MIRRORS, MEMBERS = "policy", "mirrors", "members"
CHECKS = (POLICY, MIRRORS, MEMBERS)


@dataclass(frozen=True)
class Finding:
    """One queue that differs from what high availability needs."""

    vhost: str
    queue: str
    check: str
    """``policy`` (another policy is in effect), ``mirrors`` (classic mirrors missing or
    not synchronised) or ``members`` (quorum or stream members missing or offline)."""
    message: str
    expected: Any = None
    actual: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {"vhost": self.vhost, "queue": self.queue, "check": self.check, "message": self.message,
                "expected": self.expected, "actual": self.actual}


@dataclass
class QueueHealth:
    """The checks of the queues of the managed vhosts: findings, the queues checked, notes."""

    findings: list[Finding] = field(default_factory=list)
    checked: list[tuple[str, str]] = field(default_factory=list)
    """(vhost, queue) of every queue checked, in order."""
    notes: list[str] = field(default_factory=list)
    unknown: list[tuple[str, str]] = field(default_factory=list)
    """Queues whose statistics have not arrived yet (nothing can be said of them)."""
    stale: list[tuple[str, str]] = field(default_factory=list)
    """Queues whose statistics name another policy than the broker's own policies give
    them: statistics older than the last policy change (their findings may vanish)."""


def check_queues(
    vhost: str,
    entries: list[dict[str, Any]],
    policies: Iterable[PolicyState],
    running_nodes: list[str],
    queues: Iterable[str],
    declared_policies: Iterable[str] = (),
    live_policies: Iterable[PolicyState] | None = None,
    *,
    cluster_size: int | None = None,
    version: tuple[int, ...] = OLDEST_SUPPORTED,
    ignore: Iterable[str] = (),
) -> QueueHealth:
    """Check the named ``queues`` (the declared ones) of one vhost (``entries``: ``GET /api/queues/{vhost}``
    with :data:`QUEUE_COLUMNS`) against the files' ``policies`` for that vhost.

    With ``live_policies`` (the broker's own), a queue whose statistics disagree with
    what those give it is marked :attr:`QueueHealth.stale`. ``cluster_size`` (all nodes,
    running or not) caps the group size a quorum queue or stream can have; ``version`` is
    the broker's; ``ignore`` the vhost's ignore patterns."""
    policies = list(policies)
    ignore = tuple(ignore)
    cluster_size = cluster_size if cluster_size is not None else max(len(running_nodes), 1)
    live = list(live_policies) if live_policies is not None else None
    declared = set(declared_policies)
    wanted = set(queues)
    health = QueueHealth()
    for entry in sorted(entries, key=lambda e: str(e.get("name"))):
        name = str(entry.get("name", ""))
        if name not in wanted or entry.get("exclusive"):
            continue
        health.checked.append((vhost, name))
        if "state" not in entry:
            health.unknown.append((vhost, name))
            continue
        queue_type = str(entry.get("type") or "classic")
        live_contest = contest(live, name, queue_type, version) if live is not None else None
        if live_contest is not None and not live_contest.undecided and \
                (entry.get("policy") or None) not in ([p.policy for p in live_contest.winners] or [None]):
            # the statistics predate the broker's own policies: what they say of the queue's policy
            # (and of the mirrors it asks for) is not a finding, only listed as not checked
            health.stale.append((vhost, name))
            if queue_type != "classic" and isinstance(entry.get("members"), list):
                health.findings.extend(_member_findings(vhost, name, queue_type, entry, cluster_size))
            continue
        health.findings.extend(
            _policy_findings(vhost, name, queue_type, entry, policies, declared, health.notes, version, ignore)
        )
        if queue_type == "classic":
            health.findings.extend(_mirror_findings(vhost, name, entry, running_nodes))
        elif isinstance(entry.get("members"), list):
            health.findings.extend(_member_findings(vhost, name, queue_type, entry, cluster_size))
    return health


def _policy_findings(
    vhost: str, name: str, queue_type: str, entry: dict[str, Any], policies: list[PolicyState], declared: set[str],
    notes: list[str], version: tuple[int, ...], ignore: tuple[str, ...],
) -> list[Finding]:
    found = contest(policies, name, queue_type, version)
    expected = found.winners
    actual = entry.get("policy") or None
    names = [p.policy for p in expected]
    if found.undecided:
        notes.append(
            f"queue {vhost}/{name}: the pattern of {', '.join(p.policy for p in found.undecided)} cannot be evaluated "
            "here (Python cannot compile it, or it nests unbounded repeats), so which policy the queue should have "
            "is not checked"
        )
        return []
    if len(names) > 1:
        notes.append(
            f"queue {vhost}/{name}: policies {', '.join(names)} tie at priority {expected[0].priority}; "
            "RabbitMQ picks one of them in no defined order (give them distinct priorities)"
        )
    if (actual is None and not names) or actual in names:
        return []
    want = " or ".join(names) if names else "no policy"
    if actual is None:
        message = f"no policy is in effect; the files' policies give it {want}"
    elif actual not in declared and matching_ignore(actual, ignore):
        message = f"policy {actual} is in effect, which the files ignore (ignore: patterns); the files' policies give it {want}"
    elif actual not in declared:
        message = f"policy {actual} is in effect, which no file declares (set outside the tool?); the files' policies give it {want}"
    else:
        message = f"policy {actual} is in effect; the files' policies give it {want} (a policy differs on the broker?)"
    return [Finding(vhost, name, POLICY, message, expected=names[0] if len(names) == 1 else (names or None), actual=actual)]


def _mirror_findings(vhost: str, name: str, entry: dict[str, Any], running_nodes: list[str]) -> list[Finding]:
    findings = []
    mirrors = [str(n) for n in entry.get("slave_nodes") or []]
    synchronised = {str(n) for n in entry.get("synchronised_slave_nodes") or []}
    behind = sorted(set(mirrors) - synchronised)
    if behind:
        findings.append(Finding(
            vhost, name, MIRRORS,
            f"{len(behind)} of {len(mirrors)} mirror(s) not synchronised: {', '.join(behind)} "
            "(they would lose messages if the leader failed now)",
            expected=sorted(mirrors), actual=sorted(synchronised),
        ))
    definition = entry.get("effective_policy_definition") or {}
    wanted = expected_mirrors(definition, str(entry.get("node") or ""), running_nodes)
    if wanted is not None and len(mirrors) < wanted:
        findings.append(Finding(
            vhost, name, MIRRORS,
            f"{len(mirrors)} mirror(s); ha-mode {definition.get('ha-mode')} on {len(running_nodes)} running node(s) "
            f"asks for {wanted}",
            expected=wanted, actual=len(mirrors),
        ))
    return findings


def expected_mirrors(definition: dict[str, Any], leader: str, running_nodes: list[str]) -> int | None:
    """How many mirrors (besides the leader) an ``ha-mode`` asks for with these nodes running."""
    mode = definition.get("ha-mode")
    params = definition.get("ha-params")
    running = len(running_nodes)
    if mode == "all":
        return max(running - 1, 0)
    if mode == "exactly" and isinstance(params, int) and not isinstance(params, bool):
        return max(min(params, running) - 1, 0)
    if mode == "nodes" and isinstance(params, list):
        wanted = {str(n) for n in params} & set(running_nodes)
        return max(len(wanted - {leader}) if leader in wanted else len(wanted) - 1, 0)
    return None


def group_size(queue_type: str, entry: dict[str, Any], cluster_size: int) -> int:
    """The members a quorum queue or stream should have: its declared initial group size
    (for streams, a policy's ``initial-cluster-size`` wins over the argument), capped as
    RabbitMQ caps it at the cluster's nodes (``rabbit_queue_location:select_replicas``),
    and never fewer than the members it has."""
    members = len(entry.get("members") or [])
    arguments = entry.get("arguments") or {}
    if queue_type == "quorum":
        declared = arguments.get("x-quorum-initial-group-size")
    else:
        declared = (entry.get("effective_policy_definition") or {}).get("initial-cluster-size",
                                                                          arguments.get("x-initial-cluster-size"))
    if not isinstance(declared, int) or isinstance(declared, bool):
        return members
    return max(members, min(declared, cluster_size))


def _member_findings(vhost: str, name: str, queue_type: str, entry: dict[str, Any], cluster_size: int) -> list[Finding]:
    members = [str(n) for n in entry.get("members") or []]
    online = {str(n) for n in entry.get("online") or []}
    size = group_size(queue_type, entry, cluster_size)
    up = len(online & set(members))
    if up >= size:
        return []
    offline = sorted(set(members) - online)
    detail = [f"offline: {', '.join(offline)}"] if offline else []
    if len(members) < size:
        detail.append(f"{len(members)} member(s) where the declared group size on {cluster_size} node(s) is {size}")
    return [Finding(
        vhost, name, MEMBERS,
        f"{up} of {size} {queue_type} member(s) online ({'; '.join(detail)})",
        expected=size, actual=up,
    )]
