"""The versioned JSON plan (documented in docs/reference/plan-json.md), written a change at a time
(:mod:`topology.render.stream`)."""

from __future__ import annotations

from collections.abc import Iterator

from topology.plan import Plan
from topology.render.stream import Items, pieces


def plan_pieces(plan: Plan) -> Iterator[str]:
    """The JSON plan's text in pieces, a change at a time (what :func:`render_plan` returns whole)."""
    return pieces(plan.to_dict(items=Items))


def render_plan(plan: Plan) -> str:
    return "".join(plan_pieces(plan))
