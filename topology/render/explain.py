"""``topology explain``: a queue's policies and effective settings, as text or JSON."""

from __future__ import annotations

import json
from typing import Any

from topology.policies import Resolution
from topology.kinds import QueueState
from topology.rules.versions import version_text


def explain_dict(queue: QueueState, found: Resolution, version: tuple[int, ...]) -> dict[str, Any]:
    return {
        "vhost": queue.vhost, "queue": queue.queue, "type": queue.type, "durable": queue.durable,
        "auto_delete": queue.auto_delete, "rules_of": version_text(version), "arguments": queue.arguments,
        "policies": [{"name": c.policy.policy, "operator": c.operator, "priority": c.policy.priority,
                      "apply_to": c.policy.apply_to, "pattern": c.policy.pattern, "definition": c.policy.definition,
                      "applies": c.applies, **({"why_not": c.why_not} if c.why_not else {}), "wins": c.wins,
                      **({"tie": True} if c.tie else {})} for c in found.candidates],
        "unreadable_patterns": found.unreadable,
        "settings": {k: {"value": s.value, "source": s.source, **({"detail": s.detail} if s.detail else {})}
                     for k, s in found.settings.items()},
    }


def explain_text(queue: QueueState, found: Resolution, version: tuple[int, ...]) -> str:
    flags = ", ".join(f for f, on in (("durable", queue.durable), ("auto-delete", queue.auto_delete)) if on)
    lines = [f"queue {queue.queue!r} in vhost {queue.vhost!r}: {queue.type}{', ' + flags if flags else ''} "
             f"(rules of RabbitMQ {version_text(version)})", "", "declared arguments:"]
    lines += [f"  {k}: {json.dumps(v, ensure_ascii=False)}" for k, v in sorted(queue.arguments.items())] or ["  none"]
    for operator, title in ((False, "policies"), (True, "operator policies")):
        lines += ["", f"{title} whose pattern matches the name:"]
        rows = [c for c in found.candidates if c.operator == operator]
        if not rows:
            lines.append("  none")
        for c in rows:
            if c.wins:
                verdict = "WINS (tied: RabbitMQ applies either of the tied ones)" if c.tie else "WINS"
            elif c.applies:
                verdict = "applies, but a higher priority wins"
            else:
                verdict = f"does not apply: {c.why_not}"
            lines.append(f"  {c.policy.policy}: priority {c.policy.priority}, apply-to {c.policy.apply_to}, "
                         f"pattern {c.policy.pattern!r}: {verdict}")
    if found.unreadable:
        lines += ["", "patterns Python cannot evaluate (RabbitMQ's PCRE may match them; the result may differ): "
                  + ", ".join(found.unreadable)]
    lines += ["", "effective settings:"]
    for key, setting in found.settings.items():
        detail = f" ({setting.detail})" if setting.detail else ""
        lines.append(f"  {key}: {json.dumps(setting.value, ensure_ascii=False)}  from {setting.source}{detail}")
    if not found.settings:
        lines.append("  none (the broker's defaults)")
    return "\n".join(lines)
