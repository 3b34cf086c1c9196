"""High-availability drift: what the broker says of each queue's policy, mirrors and
members, against what the files' policies should give it (pure; no I/O).

The policy a queue should have is resolved the way RabbitMQ does (``rabbit_policy:match``):
among the vhost's policies whose ``apply-to`` covers queues of the queue's type, that
are applicable to the queue's type (a policy holding one key the type does not support
does not apply at all, so a lower one may win), and whose pattern matches the queue's
name, the highest priority wins. Between equal priorities RabbitMQ's choice is not
defined, so any of them is accepted (and the tie reported as a note).

The management API reports the policy in effect, mirrors and members from the queues'
statistics, which lag a few seconds behind changes (see :data:`STATISTICS_WAIT`).
"""

from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from topology.state import PolicyState, matching_ignore
from topology.rules.versions import OLDEST_SUPPORTED

try:  # the parser behind re, to look at a pattern's structure (Python 3.11 on)
    from re import _constants as _sre, _parser as _sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_constants as _sre  # type: ignore[no-redef]
    import sre_parse as _sre_parse  # type: ignore[no-redef]

# Python's re warns about PCRE's POSIX classes ([[:alpha:]]); such patterns are the user's
warnings.filterwarnings("ignore", message="Possible nested set", category=FutureWarning)

STATISTICS_WAIT = 7.0
"""Seconds to wait for the statistics to confirm a finding (they are emitted every 5 s)."""

QUEUE_COLUMNS = (
    "name,type,arguments,exclusive,state,node,policy,operator_policy,effective_policy_definition,"
    "slave_nodes,synchronised_slave_nodes,members,online"
)

UNSUPPORTED_POLICY_KEYS: dict[str, frozenset[str]] = {
    # rabbit_classic_queue / rabbit_quorum_queue / rabbit_stream_queue capabilities(), RabbitMQ 3.10.8
    "classic": frozenset({
        "max-age", "stream-max-segment-size-bytes", "queue-leader-locator", "initial-cluster-size",
        "delivery-limit", "dead-letter-strategy",
    }),
    "quorum": frozenset({
        "max-priority", "queue-mode", "single-active-consumer", "ha-mode", "ha-params", "ha-sync-mode",
        "ha-promote-on-shutdown", "ha-promote-on-failure", "queue-master-locator",
        "max-age", "stream-max-segment-size-bytes", "initial-cluster-size",
    }),
    "stream": frozenset({
        "expires", "message-ttl", "dead-letter-exchange", "dead-letter-routing-key", "max-length",
        "max-in-memory-length", "max-in-memory-bytes", "max-priority", "overflow", "queue-mode",
        "single-active-consumer", "delivery-limit", "ha-mode", "ha-params", "ha-sync-mode",
        "ha-promote-on-shutdown", "ha-promote-on-failure", "queue-master-locator", "dead-letter-strategy",
    }),
}
"""Policy keys each queue type does not support in RabbitMQ 3.10.8; a policy holding one does
not apply to a queue of that type. Later versions change them: :data:`UNSUPPORTED_CHANGES`."""

UNSUPPORTED_CHANGES: tuple[tuple[tuple[int, ...], str, frozenset[str], frozenset[str]], ...] = (
    # (from version, queue type, keys no longer supported, keys supported again): capabilities() of
    # rabbit_classic_queue, rabbit_quorum_queue and rabbit_stream_queue at each tag
    ((3, 12, 7), "classic", frozenset({"max-in-memory-length", "max-in-memory-bytes", "target-group-size"}), frozenset()),
    ((3, 12, 7), "stream", frozenset({"target-group-size"}), frozenset()),
    ((4, 0, 0), "classic", frozenset(), frozenset({"queue-leader-locator"})),
    ((4, 2, 0), "quorum", frozenset(), frozenset({"single-active-consumer"})),
    ((4, 2, 0), "stream", frozenset(), frozenset({"single-active-consumer"})),
    ((4, 3, 0), "stream", frozenset({"selector-fields"}), frozenset()),
)


def unsupported_keys(queue_type: str, version: tuple[int, ...] = OLDEST_SUPPORTED) -> frozenset[str]:
    """The policy keys a queue type does not support on a broker of ``version``."""
    keys = set(UNSUPPORTED_POLICY_KEYS.get(queue_type, frozenset()))
    for since, kind, added, removed in UNSUPPORTED_CHANGES:
        if kind == queue_type and version >= since:
            keys = (keys | added) - removed
    return frozenset(keys)

APPLY_TO_TYPES: dict[str, frozenset[str]] = {
    "all": frozenset({"classic", "quorum", "stream"}),
    "queues": frozenset({"classic", "quorum", "stream"}),
    "classic_queues": frozenset({"classic"}),
    "quorum_queues": frozenset({"quorum"}),
    "streams": frozenset({"stream"}),
    "exchanges": frozenset(),
}
"""Queue types each ``apply-to`` value covers (the last three exist from RabbitMQ 3.12 on)."""

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


def matches(pattern: str, name: str) -> bool:
    """Whether a policy pattern matches a name (Python ``re`` standing in for PCRE; a
    pattern it cannot evaluate, see :func:`pattern_match`, counts as not matching)."""
    return pattern_match(pattern, name) is True


def pattern_match(pattern: str, name: str) -> bool | None:
    """Whether a policy pattern matches a name; ``None`` when this tool cannot say: Python cannot
    compile the pattern, or it nests unbounded repeats (``^(a+)+$``), whose matching time doubles
    with each character of a name that almost matches (RabbitMQ's PCRE gives up past its match
    limit; Python's ``re`` would not return)."""
    compiled = _compiled(pattern)
    return None if compiled is None else compiled.search(name) is not None


@functools.lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        compiled = re.compile(pattern)
    except (re.error, OverflowError, RecursionError):
        return None
    return None if explosive(pattern) else compiled


def explosive(pattern: str) -> bool:
    """Whether ``pattern`` repeats without bound something that itself repeats without bound
    (``(a+)+``, ``(a*)*``, ``(.*x)+``): such a pattern can take exponential time to match."""
    try:
        parsed = _sre_parse.parse(pattern)
    except Exception:  # noqa: BLE001 - not compilable: compile() reports it
        return False

    def walk(items: Any, inside_unbounded: bool) -> bool:
        for op, av in items:
            if op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT, getattr(_sre, "POSSESSIVE_REPEAT", None)):
                low, high, body = av
                unbounded = high == _sre.MAXREPEAT or high > 1000
                if unbounded and inside_unbounded:
                    return True
                if walk(body, inside_unbounded or unbounded):
                    return True
            elif op == _sre.SUBPATTERN:
                if walk(av[-1], inside_unbounded):
                    return True
            elif op == _sre.BRANCH:
                if any(walk(branch, inside_unbounded) for branch in av[1]):
                    return True
            elif op in (_sre.ASSERT, _sre.ASSERT_NOT):
                if walk(av[1], inside_unbounded):
                    return True
        return False

    return walk(parsed, False)


def applies(policy: PolicyState, queue: str, queue_type: str, version: tuple[int, ...] = OLDEST_SUPPORTED) -> bool:
    """Whether RabbitMQ ``version`` would consider ``policy`` for a queue of this name and type."""
    if queue_type not in APPLY_TO_TYPES.get(policy.apply_to, frozenset()):
        return False
    if unsupported_keys(queue_type, version) & set(policy.definition):
        return False
    return matches(policy.pattern, queue)


def winners(queue: str, queue_type: str, policies: Iterable[PolicyState],
            version: tuple[int, ...] = OLDEST_SUPPORTED) -> list[PolicyState]:
    """The policies that may be in effect for the queue: those of the highest priority
    among the applicable ones (several on a tie; none when nothing applies)."""
    candidates = [p for p in policies if applies(p, queue, queue_type, version)]
    if not candidates:
        return []
    top = max(p.priority for p in candidates)
    return sorted((p for p in candidates if p.priority == top), key=lambda p: p.policy)


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
        live_winners = [p.policy for p in winners(name, queue_type, live, version)] if live is not None else None
        if live_winners is not None and (entry.get("policy") or None) not in (live_winners or [None]):
            health.stale.append((vhost, name))
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
    expected = winners(name, queue_type, policies, version)
    actual = entry.get("policy") or None
    names = [p.policy for p in expected]
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
