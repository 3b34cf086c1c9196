"""Migration transforms applied to exported files before they are written (pure).

``quorum``: classic mirrored queues become quorum queues. A queue is mirrored when the
policy RabbitMQ would apply to it (highest priority among those whose pattern matches and
that apply to classic queues) has ``ha-mode``. For each such queue:

- its type becomes ``quorum``;
- arguments quorum queues refuse are removed (``x-max-priority``, ``x-queue-mode``,
  ``x-queue-version``, and any other that only classic or stream queues take), or rewritten
  where quorum queues have an equivalent: ``x-queue-master-locator`` becomes
  ``x-queue-leader-locator`` (``client-local`` stays, the others become ``balanced``), and
  ``overflow: reject-publish-dlx``, which a quorum queue silently reads as ``drop-head``,
  becomes ``reject-publish``;
- a queue that cannot be a quorum queue (not durable, auto-delete) stays classic and is
  listed: it loses its mirrors.

Then every ``ha-*`` key is removed from the vhost's policies, and a policy left empty is
removed. Every change is listed, one line each, for the reviewer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from topology.migrate import winning_policies
from topology.model.arguments import FIELD_TO_ARGUMENT, QUEUE_ARGUMENTS, QUORUM, argument_for

_LOCATORS = {"client-local": "client-local", "min-masters": "balanced", "random": "balanced"}


@dataclass
class Transformed:
    changes: list[str] = field(default_factory=list)
    """What the transform changed, one line each."""


def to_quorum(files: dict[str, dict[str, Any]]) -> Transformed:
    """Apply the ``quorum`` transform to exported files (changed in place)."""
    result = Transformed()
    for path in sorted(files):
        for vhost, data in (files[path].get("vhosts") or {}).items():
            _vhost(vhost, data, result)
    return result


def _vhost(vhost: str, data: dict[str, Any], result: Transformed) -> None:
    policies = data.get("policies") or {}
    default_type = data.get("default_queue_type") or "classic"
    queues = data.get("queues") or {}
    for name, queue in list(queues.items()):
        if queue.get("type", default_type) != "classic":
            continue
        winner = _winning_policy(name, policies)
        if winner is None or "ha-mode" not in (policies[winner].get("definition") or {}):
            continue
        where = f"vhost {vhost!r} queue {name!r}"
        if queue.get("durable", True) is False or queue.get("auto_delete", False):
            why = "not durable" if queue.get("durable", True) is False else "auto-delete"
            result.changes.append(f"{where}: left classic ({why}: a quorum queue cannot be); it loses its mirrors "
                                  f"(policy {winner!r})")
            continue
        queue.pop("type", None)
        result.changes.append(f"{where}: classic (mirrored by policy {winner!r}) -> quorum")
        _arguments(queue, where, result)
        queues[name] = queue if default_type == QUORUM else {"type": QUORUM, **queue}
    for name in list(policies):
        definition = policies[name].get("definition") or {}
        dropped = sorted(key for key in definition if key.startswith("ha-"))
        if not dropped:
            continue
        for key in dropped:
            del definition[key]
        where = f"vhost {vhost!r} policy {name!r}"
        if definition:
            result.changes.append(f"{where}: removed {', '.join(dropped)} (classic mirroring)")
        else:
            del policies[name]
            result.changes.append(f"{where}: removed (it only held {', '.join(dropped)})")
    if "policies" in data and not policies:
        del data["policies"]


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
            locator = _LOCATORS.get(str(value), "balanced")
            queue.setdefault("leader_locator", locator)
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


def _winning_policy(queue: str, policies: dict[str, Any]) -> str | None:
    """The policy RabbitMQ applies to a classic queue named ``queue`` (the first by name on a tie)."""
    winners = winning_policies(queue, [{"name": name, "pattern": p.get("pattern", ""), "apply-to": p.get("apply_to", "all"),
                                        "priority": p.get("priority", 0)} for name, p in sorted(policies.items())])
    return winners[0]["name"] if winners else None
