"""Migration transforms applied to exported files before they are written (pure).

``quorum``: classic mirrored queues become quorum queues. A queue is mirrored when the
policies RabbitMQ would apply to it have ``ha-mode``: the winning policy (highest priority
among those that apply to a classic queue of that name; both when tied) merged with the
winning operator policy (3.11.10 to 3.13 accept ``ha-*`` keys there too). For each such queue:

- its type becomes ``quorum``;
- arguments quorum queues refuse are removed (``x-max-priority``, ``x-queue-mode``,
  ``x-queue-version``, and any other that only classic or stream queues take), or rewritten
  where quorum queues have an equivalent: ``x-queue-master-locator`` becomes
  ``x-queue-leader-locator`` (``client-local`` stays, the others become ``balanced``), and
  ``overflow: reject-publish-dlx``, which a quorum queue silently reads as ``drop-head``,
  becomes ``reject-publish``;
- a queue that cannot be a quorum queue (not durable, auto-delete) stays classic and is
  listed: it loses its mirrors;
- a queue whose policies this tool cannot evaluate (a pattern Python's ``re`` refuses) is
  left as it is, and listed.

Then every ``ha-*`` key is removed from the vhost's policies and operator policies, and one
left empty is removed. Last, the policies are resolved again for each converted queue, now a
quorum queue: a policy that no longer applies (it holds a key quorum queues do not take), a
policy that applies instead, and each effective setting that changes are listed, as is a
policy ``overflow: reject-publish-dlx`` (read as ``drop-head``). Every change is listed, one
line each, for the reviewer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from topology.errors import TopologyError
from topology.matching import contest, covers, pattern_match, refused_keys
from topology.rules.queues import FIELD_TO_ARGUMENT, QUEUE_ARGUMENTS, QUORUM, argument_for
from topology.policies import resolve
from topology.kinds import PolicyState
from topology.rules.versions import OLDEST_SUPPORTED

_LOCATORS = {"client-local": "client-local", "min-masters": "balanced", "random": "balanced"}


@dataclass
class Transformed:
    changes: list[str] = field(default_factory=list)
    """What the transform changed, one line each."""


def to_quorum(files: dict[str, dict[str, Any]], version: tuple[int, ...] = OLDEST_SUPPORTED) -> Transformed:
    """Apply the ``quorum`` transform to exported files (changed in place). ``version``: of
    the broker the files came from, whose rules say which policy applies to which queue."""
    result = Transformed()
    for path in sorted(files):
        for vhost, data in (files[path].get("vhosts") or {}).items():
            _vhost(vhost, data, version or OLDEST_SUPPORTED, result)
    return result


@dataclass(frozen=True)
class _Effective:
    """The policy and operator policy in effect for a queue, and the merged definition."""

    policies: tuple[str, ...]
    operator_policies: tuple[str, ...]
    definition: dict[str, Any]

    @classmethod
    def of(cls, queue: str, queue_type: str, policies: list[PolicyState], operator: list[PolicyState],
           version: tuple[int, ...]) -> "_Effective":
        found = resolve(queue, queue_type, {}, policies, operator, version)
        winners = [c for c in found.candidates if c.wins]
        return cls(tuple(c.policy.policy for c in winners if not c.operator),
                   tuple(c.policy.policy for c in winners if c.operator),
                   {key: setting.value for key, setting in found.settings.items()})


def _states(vhost: str, policies: dict[str, Any], kind: str) -> list[PolicyState]:
    states = []
    for name, policy in sorted(policies.items()):
        priority = policy.get("priority", 0)
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise TopologyError(f"vhost {vhost!r} {kind} {name!r}: priority {priority!r} is not an integer, so the "
                                "quorum transform cannot tell which policy wins")
        states.append(PolicyState(vhost=vhost, policy=name, pattern=str(policy.get("pattern", "")),
                                  apply_to=str(policy.get("apply_to", "all")), priority=priority,
                                  definition=dict(policy.get("definition") or {})))
    return states


def _unreadable(queue: str, queue_type: str, policies: list[PolicyState], version: tuple[int, ...]) -> list[str]:
    """Policies that could decide for this queue but whose pattern is undecided (:mod:`topology.matching`)."""
    return [policy.policy for policy in contest(policies, queue, queue_type, version).undecided]


def _has_ha(names: tuple[str, ...], policies: list[PolicyState]) -> list[str]:
    return [p.policy for p in policies if p.policy in names and "ha-mode" in p.definition]


def _vhost(vhost: str, data: dict[str, Any], version: tuple[int, ...], result: Transformed) -> None:
    policies = data.get("policies") or {}
    operator = data.get("operator_policies") or {}
    user_states, op_states = _states(vhost, policies, "policy"), _states(vhost, operator, "operator policy")
    default_type = data.get("default_queue_type") or "classic"
    queues = data.get("queues") or {}
    converted: dict[str, _Effective] = {}
    for name, queue in list(queues.items()):
        if queue.get("type", default_type) != "classic":
            continue
        where = f"vhost {vhost!r} queue {name!r}"
        unreadable = _unreadable(name, "classic", user_states, version) + _unreadable(name, "classic", op_states, version)
        before = _Effective.of(name, "classic", user_states, op_states, version)
        mirrored = _has_ha(before.policies, user_states) + _has_ha(before.operator_policies, op_states)
        if unreadable and (mirrored or any("ha-mode" in p.definition for p in user_states + op_states
                                           if p.policy in unreadable)):
            result.changes.append(f"{where}: left as it is: cannot tell whether it is mirrored (the pattern of "
                                  f"{', '.join(repr(n) for n in unreadable)} is not one Python can evaluate); "
                                  "check it by hand")
            continue
        if not mirrored:
            continue
        by = "policy " + ", ".join(repr(n) for n in mirrored)
        if len(before.policies) > 1 or len(before.operator_policies) > 1:
            tied = before.policies if len(before.policies) > 1 else before.operator_policies
            by += (f"; {', '.join(repr(n) for n in tied)} tie at the same priority, and RabbitMQ applies either: "
                   "the queue may or may not be mirrored now")
        if queue.get("durable", True) is False or queue.get("auto_delete", False):
            why = "not durable" if queue.get("durable", True) is False else "auto-delete"
            result.changes.append(f"{where}: left classic ({why}: a quorum queue cannot be); it loses its mirrors "
                                  f"({by})")
            continue
        queue.pop("type", None)
        result.changes.append(f"{where}: classic (mirrored by {by}) -> quorum")
        _arguments(queue, where, result)
        queues[name] = queue if default_type == QUORUM else {"type": QUORUM, **queue}
        converted[name] = before
    for section, kind in (("policies", "policy"), ("operator_policies", "operator policy")):
        held = data.get(section) or {}
        for name in list(held):
            definition = held[name].get("definition") or {}
            dropped = sorted(key for key in definition if key.startswith("ha-"))
            if not dropped:
                continue
            for key in dropped:
                del definition[key]
            where = f"vhost {vhost!r} {kind} {name!r}"
            if definition:
                result.changes.append(f"{where}: removed {', '.join(dropped)} (classic mirroring)")
            else:
                del held[name]
                result.changes.append(f"{where}: removed (it only held {', '.join(dropped)})")
        if section in data and not held:
            del data[section]
    user_states, op_states = _states(vhost, policies, "policy"), _states(vhost, operator, "operator policy")
    for name, before in converted.items():
        _policy_changes(f"vhost {vhost!r} queue {name!r}", name, before, user_states, op_states, version, result)


def _policy_changes(where: str, queue: str, before: _Effective, policies: list[PolicyState],
                    operator: list[PolicyState], version: tuple[int, ...], result: Transformed) -> None:
    """List what changes for a converted queue in the policies RabbitMQ applies to it."""
    after = _Effective.of(queue, QUORUM, policies, operator, version)
    for states, kind in ((policies, "policy"), (operator, "operator policy")):
        for policy in states:
            keys = sorted(refused_keys(policy, QUORUM, version))
            if keys and covers(policy.apply_to, QUORUM) and pattern_match(policy.pattern, queue):
                result.changes.append(f"{where}: {kind} {policy.policy!r} no longer applies to it: it holds "
                                      f"{', '.join(keys)}, which quorum queues do not take (review the policy)")
    for kind, old, new in (("policy", before.policies, after.policies),
                           ("operator policy", before.operator_policies, after.operator_policies)):
        if old != new and new:
            was = f" instead of {', '.join(repr(n) for n in old)}" if old else ""
            result.changes.append(f"{where}: {kind} {', '.join(repr(n) for n in new)} applies now{was}")
    old_definition = {k: v for k, v in before.definition.items() if not k.startswith("ha-")}
    for key in sorted(set(old_definition) | set(after.definition)):
        old_value, new_value = old_definition.get(key), after.definition.get(key)
        if old_value != new_value:
            shown = [("unset" if v is None else str(v)) for v in (old_value, new_value)]
            result.changes.append(f"{where}: policy setting {key}: {shown[0]} -> {shown[1]}")
    if after.definition.get("overflow") == "reject-publish-dlx":
        result.changes.append(f"{where}: its policy sets overflow reject-publish-dlx, which a quorum queue reads as "
                              "drop-head (the oldest message is dropped, not the new one refused): review the policy")


def _arguments(queue: dict[str, Any], where: str, result: Transformed) -> None:
    """Remove or rewrite what a quorum queue does not take, friendly fields and raw arguments alike."""
    raw = queue.get("arguments") or {}
    present = [(argument_for(key, QUORUM), key, False) for key in list(queue)
               if key in FIELD_TO_ARGUMENT or key == "initial_group_size"]
    present += [(key, key, True) for key in list(raw)]
    for argument, key, is_raw in present:
        holder = raw if is_raw else queue
        value = holder[key]
        if argument == "x-overflow" and value == "reject-publish-dlx":
            holder[key] = "reject-publish"
            result.changes.append(f"{where}: overflow reject-publish-dlx -> reject-publish (quorum queues do not "
                                  "dead-letter rejected publishes; they would read reject-publish-dlx as drop-head)")
            continue
        if argument == "x-queue-master-locator":
            del holder[key]
            kept = queue.get("leader_locator", raw.get("x-queue-leader-locator"))
            if kept is not None:
                result.changes.append(f"{where}: removed x-queue-master-locator {value} (leader_locator {kept} "
                                      "already set)")
                continue
            locator = _LOCATORS.get(str(value), "balanced")
            queue["leader_locator"] = locator
            result.changes.append(f"{where}: x-queue-master-locator {value} -> leader_locator {locator}")
            continue
        spec = QUEUE_ARGUMENTS.get(argument)
        if spec is None or QUORUM in spec.queue_types:
            continue
        del holder[key]
        why = {"x-max-priority": "quorum queues have no priorities before RabbitMQ 4.0, and two levels from 4.0",
               "x-queue-mode": "quorum queues keep messages on disk",
               "x-queue-version": "classic queues only"}.get(argument, f"{'/'.join(sorted(spec.queue_types))} only")
        shown = key if not is_raw else argument
        result.changes.append(f"{where}: removed {shown} {value!r} ({why})")
    if "arguments" in queue and not raw:
        del queue["arguments"]
