"""explain against the broker: for generated queues, policies and operator policies (with
hypothesis), the policy, operator policy and merged definition explain says win are the ones
the broker reports for each queue."""

from __future__ import annotations

import json
import os
import time
import uuid

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from topology.engine import load_valid
from topology.policies import resolve
from topology.kinds import OperatorPolicyState, PolicyState, QueueState
from topology.state import desired_state
from topology.rules.versions import has_classic_mirroring

pytestmark = pytest.mark.broker

EXAMPLES = int(os.environ.get("TOPOLOGY_ORACLE_EXAMPLES", "12")) // 4 or 1
NAMES = ["a1", "ab", "b2", "ba", "c"]
PATTERNS = ["^a", "^a1$", ".*", "b", "^ab", "^c$", "1$"]
KEYS = {"message-ttl": [1000, 60000], "max-length": [10, 500], "expires": [600000, 3600000],
        "queue-mode": ["lazy"], "ha-mode": ["all"], "delivery-limit": [5, 20], "overflow": ["reject-publish"],
        "max-length-bytes": [100000]}
OPERATOR_KEYS = {"message-ttl": [2000, 90000], "max-length": [50, 200], "expires": [900000]}


@st.composite
def definitions(draw, keys):
    chosen = draw(st.lists(st.sampled_from(sorted(keys)), min_size=1, max_size=3, unique=True))
    return {key: draw(st.sampled_from(keys[key])) for key in chosen}


@st.composite
def policy_sets(draw, keys, count, apply_to):
    priorities = draw(st.permutations(range(10)))[:count]  # distinct: a tie has no defined winner
    return {f"p{i}": {"pattern": draw(st.sampled_from(PATTERNS)), "apply_to": draw(st.sampled_from(apply_to)),
                      "priority": priority, "definition": draw(definitions(keys))}
            for i, priority in enumerate(priorities)}


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          derandomize=os.environ.get("TOPOLOGY_ORACLE_RANDOM") is None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_explain_picks_the_policies_and_merged_definition_the_broker_applies(data, run, api, tmp_path, broker_version):
    queues = {name: {"type": data.draw(st.sampled_from(["classic", "classic", "quorum", "stream"]))} for name in NAMES}
    keys = {k: v for k, v in KEYS.items() if has_classic_mirroring(broker_version) or not k.startswith("ha-")}
    policies = data.draw(policy_sets(keys, data.draw(st.integers(1, 5)), ["all", "queues", "exchanges"]))
    operator = data.draw(policy_sets(OPERATOR_KEYS, data.draw(st.integers(0, 2)), ["queues"]))
    vhost = f"topology-test-{uuid.uuid4().hex[:10]}"
    topology = {"vhosts": {vhost: {"queues": queues, "policies": policies, "operator_policies": operator}}}
    path = tmp_path / f"{vhost}.yaml"
    path.write_text(yaml.safe_dump(topology), encoding="utf-8")
    try:
        applied = run("apply", str(path), "--auto-approve")
        assert applied.code == 0, applied.err
        state = desired_state(load_valid([str(path)]))
        users = [r for r in state.objects.values() if type(r) is PolicyState]
        ops = [r for r in state.objects.values() if isinstance(r, OperatorPolicyState)]
        expected = {}
        for name in NAMES:
            spec = state.objects[("queue", vhost, name)]
            assert isinstance(spec, QueueState)
            found = resolve(name, spec.type, spec.arguments, users, ops, broker_version)
            user, op = found.winner(), found.winner(operator=True)
            expected[name] = (user.policy if user else None, op.policy if op else None, found.merged)
        deadline = time.monotonic() + 30
        while True:  # the broker reports a queue's policies with its statistics (a quorum queue's every 5 s;
            # 4.0 shows a queue's state before the policies applied to it): read until they agree, or time is up
            entries = api.session.get(api.url("queues", vhost), timeout=30, params={
                "columns": "name,state,policy,operator_policy,effective_policy_definition"}).json()
            seen = {e["name"]: (e.get("policy") or None, e.get("operator_policy") or None,
                                e.get("effective_policy_definition") or {}) for e in entries}
            ready = all("state" in e for e in entries) and len(entries) == len(NAMES)
            if ready and seen == expected or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert seen == expected, json.dumps({"files": topology, "broker": seen}, indent=1, default=str)
    finally:
        api.delete("vhosts", vhost)
