"""Which policies RabbitMQ applies to a queue, and the effective value of each setting (pure).

The broker's rules (RabbitMQ 3.10 to 4.x):

- A policy is *considered* for a queue when its ``apply-to`` covers the queue's type, its
  definition holds no key the queue type does not take (``is_policy_applicable``: a
  ``queue-mode`` policy does not apply to a quorum queue at all), and its pattern matches the
  queue's name. Of those, the highest priority wins; on a tie RabbitMQ applies either (the
  order is not defined). Operator policies are chosen the same way, separately.
- The winning policy and operator policy merge: a key only one of them has is taken from it;
  for a key both have, the smaller value wins for ``message-ttl``, ``max-length``,
  ``max-length-bytes``, ``expires``, ``delivery-limit`` and ``max-in-memory-*``, and the
  operator policy's value otherwise (``rabbit_policies:merge_policy_value``).
- The queue's own ``x-`` argument and the merged policy value then resolve per queue type
  (:data:`topology.rules.policies.RESOLUTION`, from ``rabbit_amqqueue_process``, ``rabbit_quorum_queue`` and
  ``rabbit_stream_queue``): the smaller of the two, the argument, or the policy.
- From RabbitMQ 4.0 a quorum queue's delivery limit is 20 when neither sets one, and a negative
  one means no limit: of an argument and a policy value, the larger wins when either is negative
  (``rabbit_quorum_queue:resolve_delivery_limit``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from topology.matching import contest, covers, pattern_match, refused_keys
from topology.rules.policies import ARGUMENT, MIN, POLICY, RESOLUTION, SMALLEST
from topology.rules.queues import QUORUM_DEFAULT_DELIVERY_LIMIT, QUORUM_DEFAULT_DELIVERY_LIMIT_SINCE
from topology.kinds import PolicyState
from topology.rules.versions import OLDEST_SUPPORTED, version_text

DEFAULT_SOURCE = "the broker's default"
"""The source of a setting the broker gives when neither argument nor policy does."""


@dataclass(frozen=True)
class Candidate:
    """A policy whose pattern matches the queue's name, and whether it applies."""

    policy: PolicyState
    operator: bool
    applies: bool
    why_not: str = ""
    wins: bool = False
    tie: bool = False


@dataclass(frozen=True)
class Setting:
    """The effective value of one setting and where it comes from."""

    key: str
    value: Any
    source: str
    """``argument``, ``policy <name>``, ``operator policy <name>`` or ``the broker's default``."""
    detail: str = ""
    """How two values were resolved, when they were."""


@dataclass
class Resolution:
    """The policies of one queue and its effective settings."""

    candidates: list[Candidate] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    """Policies whose pattern Python cannot evaluate (PCRE may match it): the result may differ."""
    settings: dict[str, Setting] = field(default_factory=dict)
    merged: dict[str, Any] = field(default_factory=dict)
    """The winning policy and operator policy merged: what the broker shows as the queue's
    ``effective_policy_definition`` (before the queue's own arguments count)."""

    def winner(self, operator: bool = False) -> PolicyState | None:
        return next((c.policy for c in self.candidates if c.wins and c.operator == operator), None)



def _merge(key: str, mine: tuple[Any, str, str], theirs: tuple[Any, str], version: tuple[int, ...]) -> tuple[Any, str, str]:
    """A key both the winning policy (``mine``: value, source, detail) and the winning operator
    policy (``theirs``) set: ``merge_policy_value`` of rabbit_policies, rabbit_mirror_queue_misc
    and rabbit_quorum_queue."""
    (value, source, _), (op_value, op_source) = mine, theirs
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (value, op_value))

    def keep(chosen_mine: bool, why: str) -> tuple[Any, str, str]:
        return (value, source, why) if chosen_mine else (op_value, op_source, why)

    if key in SMALLEST and numbers:
        return keep(value <= op_value, f"the smaller of {value} ({source}) and {op_value} ({op_source})")
    if key == "target-group-size" and numbers:
        return keep(value >= op_value, f"the larger of {value} ({source}) and {op_value} ({op_source})")
    if key == "ha-mode":
        for strongest in ("all", "exactly"):
            if strongest in (value, op_value):
                return keep(value == strongest, f"ha-mode {strongest} wins over the other's")
    if key == "ha-params":
        if isinstance(value, int) and isinstance(op_value, int):
            return keep(value > op_value, "the larger ha-params wins")
        if isinstance(value, int) != isinstance(op_value, int):
            return keep(isinstance(value, int), "ha-mode exactly's count wins over a node list")
        if isinstance(value, list) and isinstance(op_value, list):
            return keep(len(value) > len(op_value), "the longer node list wins")
    return (op_value, op_source, f"the operator policy wins over {value!r} of {source}")


def resolve(queue: str, queue_type: str, arguments: dict[str, Any], policies: list[PolicyState],
            operator_policies: list[PolicyState], version: tuple[int, ...] = OLDEST_SUPPORTED) -> Resolution:
    """Which of ``policies`` and ``operator_policies`` apply to the queue, which win, and the
    effective value of every setting its arguments and the winners give."""
    result = Resolution()
    merged: dict[str, tuple[Any, str, str]] = {}
    for operator, group in ((False, policies), (True, operator_policies)):
        kind = "operator policy" if operator else "policy"
        outcome = contest(group, queue, queue_type, version)
        result.unreadable.extend(f"{kind} {policy.policy}" for policy in outcome.undecided)
        winners = {policy.policy for policy in outcome.winners}
        found = []
        for policy in sorted(group, key=lambda p: (-p.priority, p.policy)):
            if pattern_match(policy.pattern, queue) is not True:
                continue  # not matching, or undecided (listed above when it could decide)
            why = ""
            refused = refused_keys(policy, queue_type, version)
            if not covers(policy.apply_to, queue_type):
                why = f"apply-to {policy.apply_to} does not cover {queue_type} queues"
            elif refused:
                why = f"it holds {', '.join(sorted(refused))}, which {queue_type} queues do not take, so the broker does not apply it"
            found.append(Candidate(policy, operator, not why, why))
        tied = [c for c in found if c.policy.policy in winners]
        top = tied[0].policy.priority if tied else None
        for candidate in found:
            if candidate.policy.policy in winners:
                candidate = Candidate(candidate.policy, operator, True, wins=True, tie=len(tied) > 1)
            result.candidates.append(candidate)
        if tied:
            tie = "" if len(tied) == 1 else (f"{', '.join(c.policy.policy for c in tied)} tie at priority {top}: "
                                             "RabbitMQ may apply another of them")
            for key, value in tied[0].policy.definition.items():
                source = f"{kind} {tied[0].policy.policy}"
                if key in merged:
                    merged[key] = _merge(key, merged[key], (value, source), version)
                else:
                    merged[key] = (value, source, tie)
    result.merged = {key: value for key, (value, _, _) in sorted(merged.items())}
    rules = dict(RESOLUTION.get(queue_type, {}))
    if queue_type == "quorum" and version >= (4, 0):
        rules["expires"] = MIN  # rabbit_quorum_queue from 4.0.0
    keys = {k[2:] for k in arguments if k.startswith("x-")} | set(merged)
    for key in sorted(keys):
        argument = arguments.get(f"x-{key}")
        if key not in merged:
            result.settings[key] = Setting(key, argument, "argument")
            continue
        value, source, detail = merged[key]
        if argument is None:
            result.settings[key] = Setting(key, value, source, detail)
            continue
        rule = rules.get(key)
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (value, argument))
        earlier = f"; {detail}" if detail else ""
        negative_limit = (key == "delivery-limit" and queue_type == "quorum" and numbers and min(value, argument) < 0
                          and version >= QUORUM_DEFAULT_DELIVERY_LIMIT_SINCE)
        if negative_limit:
            if value > argument:
                result.settings[key] = Setting(key, value, source, f"the larger, as one of the two is negative: the "
                                                                   f"argument {argument}{earlier}")
            else:
                result.settings[key] = Setting(key, argument, "argument", f"the larger, as one of the two is negative: "
                                                                          f"{value} of {source}")
        elif rule == MIN and numbers:
            if value < argument:
                result.settings[key] = Setting(key, value, source, f"smaller than the argument {argument}{earlier}")
            else:
                result.settings[key] = Setting(key, argument, "argument", f"smaller than {value} of {source}")
        elif rule == POLICY:
            result.settings[key] = Setting(key, value, source,
                                           f"the policy wins over the argument {argument!r}{earlier}")
        elif rule == ARGUMENT:
            result.settings[key] = Setting(key, argument, "argument", f"the argument wins over {value!r} of {source}")
        else:
            result.settings[key] = Setting(key, argument, "argument",
                                           f"{source} also sets {value!r}: which of the two the broker uses for this "
                                           "key is not modelled here")
    if queue_type == "quorum" and "delivery-limit" not in result.settings and version >= QUORUM_DEFAULT_DELIVERY_LIMIT_SINCE:
        result.settings["delivery-limit"] = Setting(
            "delivery-limit", QUORUM_DEFAULT_DELIVERY_LIMIT, DEFAULT_SOURCE,
            f"RabbitMQ {version_text(QUORUM_DEFAULT_DELIVERY_LIMIT_SINCE)} and later give a quorum queue without one this "
            "limit; -1 sets none")
    result.settings = dict(sorted(result.settings.items()))
    return result
