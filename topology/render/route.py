"""A simulated route as text (``topology route``)."""

from __future__ import annotations

from topology.route import Hop, Route
from topology.routing_tests import Outcome


def route_text(route: Route) -> str:
    """Each queue the message reaches with its path, then what is dropped, uncertain or refused."""
    keys = ", ".join(repr(k) for k in route.routing_keys)
    exchange = "the default exchange" if route.exchange == "" else f"exchange {route.exchange!r}"
    lines = [f"{exchange} in vhost {route.vhost!r}, routing key{'s' if len(route.routing_keys) != 1 else ''} {keys}: "
             + _count(route)]
    lines += _body(route, "  ")
    return "\n".join(lines)


def _count(route: Route) -> str:
    if route.refused:
        return "refused"
    if route.deliveries:
        return f"{len(route.deliveries)} queue(s)"
    if route.reason:
        return "no queue (the broker drops the dead letter)"
    return "no queue (the message is dropped, or returned to a publisher that set mandatory)"


def _body(route: Route, indent: str) -> list[str]:
    lines = []
    if route.refused:
        lines.append(f"{indent}refused: {route.refused}")
    for delivery in route.deliveries:
        lines.append(f"{indent}{delivery.queue}: {path_text(delivery.path, delivery.queue)}")
        dead = delivery.dead_letter
        if dead is not None:
            to = "the default exchange" if dead.exchange == "" else f"exchange {dead.exchange!r}"
            keys = ", ".join(repr(k) for k in dead.routing_keys)
            lines.append(f"{indent}  dead-lettered ({dead.reason}) to {to}, routing key{'s' if len(dead.routing_keys) != 1 else ''} "
                         f"{keys}: {_count(dead)}")
            lines += _body(dead, indent + "    ")
        elif delivery.dead_letter_above:
            lines.append(f"{indent}  dead-lettered ({delivery.dead_letter_reason}): as above, where it died in "
                         f"{delivery.queue} with the same routing keys")
    for kind in ("uncertain", "dropped", "cycles"):
        for line in getattr(route, kind):
            lines.append(f"{indent}{'cycle' if kind == 'cycles' else kind}: {line}")
    return lines


def path_text(path: list[Hop], queue: str) -> str:
    """``events --[order.#]--> inner --[order.created]--> orders``."""
    parts = []
    for hop in path:
        parts.append("(default exchange)" if hop.exchange == "" else hop.exchange)
        if hop.via == "alternate-exchange":
            parts.append("--(alternate exchange)-->")
        elif hop.via == "default":
            parts.append("-->")
        else:
            parts.append(f"--[{_binding(hop)}]-->")
    return " ".join(parts + [queue])


def _binding(hop: Hop) -> str:
    from topology.render.graph import binding_text

    return binding_text(hop.routing_key, hop.arguments)


def outcome_text(outcome: Outcome) -> str:
    """``PASS name`` or ``FAIL file:line name``, with what was expected and what happened."""
    where = f"{outcome.origin.file}:{outcome.origin.line}"
    if outcome.passed:
        return f"PASS {outcome.name}"
    lines = [f"FAIL {where} {outcome.name}"]
    if outcome.error:
        lines.append(f"  error: {outcome.error}")
    else:
        expected = "refused" if outcome.expected_refused else _queues(outcome.expected)
        got = "refused" if outcome.refused else _queues(outcome.reached or [])
        lines.append(f"  expected: {expected}")
        lines.append(f"  reached:  {got}")
        if outcome.route is not None:
            for delivery in outcome.route.deliveries:
                lines.append(f"    {delivery.queue}: {path_text(delivery.path, delivery.queue)}")
            for line in outcome.route.uncertain + outcome.route.dropped:
                lines.append(f"    {line}")
    return "\n".join(lines)


def _queues(names: list[str]) -> str:
    return ", ".join(sorted(names)) if names else "no queue"
