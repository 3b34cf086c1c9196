"""The versioned JSON plan (documented in docs/reference/plan-json.md)."""

from __future__ import annotations

import json

from topology.plan import Plan


def render_plan(plan: Plan) -> str:
    return json.dumps(plan.to_dict(), indent=2, ensure_ascii=False, sort_keys=False)
