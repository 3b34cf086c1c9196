"""Apply at scale against the real broker: creations through definitions imports (then checked),
and runs of independent changes through a pool of keep-alive connections."""

from __future__ import annotations

import pytest

from tests.conftest import management_client
from tests.integration.test_apply import every_field

pytestmark = pytest.mark.broker


def _client():
    return management_client()


def test_creations_through_definitions_imports_match_the_files(write, vhost, broker_version):
    """Every field of every kind, created through one import: the broker then shows exactly the files."""
    from topology.apply import ApplyOptions
    from topology.engine import apply_plan, load_valid, make_plan

    topology = load_valid([write(every_field(vhost, broker_version))])
    client = _client()
    plan = make_plan(topology, client)
    creations = [c for c in plan.changes if c.kind in ("exchange", "queue", "binding", "policy")]
    assert len(creations) >= 15
    client.requests_made.clear()
    apply_plan(plan, client, topology=topology, options=ApplyOptions(bulk_min=1))
    # the vhost (and its settings) one request each; every exchange, queue, binding and policy in one import
    writes = sum(n for method, n in client.requests_made.items() if method != "GET")
    assert writes < len(plan.changes) - len(creations) + 3
    assert make_plan(topology, client).empty


def test_an_object_the_import_skips_is_created_alone_and_its_refusal_named(write, vhost, api):
    """The import silently keeps a queue made meanwhile with other settings: the check after it
    finds the difference, and the one-by-one creation then reports the broker's exact refusal."""
    from topology.apply import ApplyOptions
    from topology.engine import apply_plan, load_valid, make_plan
    from topology.errors import ApplyError

    queues = "\n".join(f"      q{i}: {{max_length: {i + 1}}}" for i in range(5))
    topology = load_valid([write(f"vhosts:\n  {vhost}:\n    queues:\n{queues}\n")])
    client = _client()
    apply_plan(make_plan(topology, client), client, topology=topology)  # the vhost
    api.delete("queues", vhost, "q0")
    api.delete("queues", vhost, "q3")
    plan = make_plan(topology, client)
    assert [c.name for c in plan.changes] == ["q0", "q3"]
    api.put("queues", vhost, "q3", body={"durable": True, "arguments": {"x-max-length": 99}})
    with pytest.raises(ApplyError) as failure:
        apply_plan(plan, client, topology=topology, options=ApplyOptions(bulk_min=1))
    assert "create queue" in str(failure.value) and "q3" in str(failure.value)
    assert "x-max-length" in str(failure.value)  # the broker's PRECONDITION_FAILED, word for word
    assert api.queue(vhost, "q0")["arguments"]["x-max-length"] == 1
    assert api.queue(vhost, "q3")["arguments"]["x-max-length"] == 99  # not touched


def test_a_refused_import_is_done_again_one_object_at_a_time(vhost, api):
    """An import the broker refuses as a whole (here: an exchange type it does not know) is redone
    one request per object: the others are made, and the error names the refused one."""
    from topology.apply import ApplyOptions
    from topology.engine import apply_plan
    from topology.diff import CREATE, Change
    from topology.errors import ApplyError
    from topology.plan import Plan
    from topology.kinds import ExchangeState, QueueState

    api.put("vhosts", vhost)
    good = [ExchangeState(vhost=vhost, exchange=f"x{i}", type="fanout") for i in range(3)]
    bad = ExchangeState(vhost=vhost, exchange="x-bad", type="x-no-such-type")
    queue = QueueState(vhost=vhost, queue="q", type="classic")
    plan = Plan(changes=tuple(Change(CREATE, None, r) for r in [*good, bad, queue]), vhosts=(vhost,))
    client = _client()
    with pytest.raises(ApplyError) as failure:
        apply_plan(plan, client, options=ApplyOptions(bulk_min=1))
    assert "x-bad" in str(failure.value) and "x-no-such-type" in str(failure.value)
    names = {e["name"] for e in api.get("exchanges", vhost)}
    assert {"x0", "x1", "x2"} <= names and "x-bad" not in names


def test_independent_changes_run_through_a_pool_of_connections(write, vhost, api):
    """Policy updates and binding deletions in a row go through several keep-alive connections at once,
    and the result is the same as one at a time."""
    from topology.engine import apply_plan, load_valid, make_plan

    def files(version: int, bindings: int) -> str:
        policies = "\n".join(f"      p{i}: {{pattern: '^q{i}$', definition: {{max-length: {version * 100 + i}}}}}"
                             for i in range(12))
        binds = "\n".join(f"      - {{source: x, destination: q, routing_key: k{i}}}" for i in range(bindings))
        return (f"vhosts:\n  {vhost}:\n    exchanges:\n      x: {{type: direct}}\n    queues:\n      q: {{}}\n"
                f"    policies:\n{policies}\n    bindings:\n{binds}\n")

    client = _client()
    first = load_valid([write(files(1, 12), "first.yaml")])
    apply_plan(make_plan(first, client), client, topology=first)
    second = load_valid([write(files(2, 2), "second.yaml")])
    plan = make_plan(second, client, prune=True)
    assert sorted({(c.kind, c.action) for c in plan.changes}) == [("binding", "delete"), ("policy", "update")]
    sessions = len(client._transport._connections)
    apply_plan(plan, client, topology=second)
    assert len(client._transport._connections) > sessions  # more than one connection was used
    assert make_plan(second, client, prune=True).empty
    assert api.get("policies", vhost, "p7")["definition"] == {"max-length": 207}
    assert sorted(b["routing_key"] for b in api.get("exchanges", vhost, "x", "bindings", "source")) == ["k0", "k1"]


def test_a_refusal_in_a_parallel_run_is_named_and_the_others_still_made(vhost, api):
    from topology.engine import apply_plan
    from topology.diff import CREATE, Change
    from topology.errors import ApplyError
    from topology.plan import Plan
    from topology.kinds import PolicyState

    api.put("vhosts", vhost)
    policies = [PolicyState(vhost=vhost, policy=f"p{i}", pattern=f"^q{i}$", definition={"max-length": i + 1})
                for i in range(6)]
    policies[3] = PolicyState(vhost=vhost, policy="p3", pattern="^q3$", definition={"max-length": "many"})
    plan = Plan(changes=tuple(Change(CREATE, None, p) for p in policies), vhosts=(vhost,))
    with pytest.raises(ApplyError) as failure:
        apply_plan(plan, _client())
    assert "policy" in str(failure.value) and "p3" in str(failure.value)
    made = {p["name"] for p in api.get("policies", vhost)}
    assert "p3" not in made and {"p0", "p1", "p2"} <= made


def test_progress_goes_to_stderr_only_and_never_into_json(run, write, vhost, monkeypatch):
    import json

    from topology import progress

    monkeypatch.setenv("TOPOLOGY_PROGRESS", "lines")
    monkeypatch.setattr(progress, "SHOW_AFTER", 0.0)
    monkeypatch.setattr(progress, "LINE_EVERY", 0.0)
    queues = "\n".join(f"      q{i}: {{}}" for i in range(5))
    path = write(f"vhosts:\n  {vhost}:\n    queues:\n{queues}\n")
    planned = run("plan", path, "--format", "json")
    assert planned.code == 0, planned.err
    assert len(json.loads(planned.out)["changes"]) == 6  # stdout is the JSON document alone
    assert "plan: " in planned.err and "elapsed" in planned.err
    applied = run("apply", path, "--auto-approve")
    assert applied.code == 0, applied.err
    assert "elapsed" not in applied.out
    assert "apply: 6/6 (100%)" in applied.err


def test_an_import_followed_by_other_changes_is_checked_before_they_run(write, vhost, api):
    """A queue the import skips (made meanwhile with other settings) stops the apply right after the
    import: the operator policy planned after it is not created."""
    from topology.apply import ApplyOptions
    from topology.engine import apply_plan, load_valid, make_plan
    from topology.errors import ApplyError

    queues = "\n".join(f"      q{i}: {{max_length: {i + 1}}}" for i in range(4))
    text = (f"vhosts:\n  {vhost}:\n    queues:\n{queues}\n"
            "    operator_policies:\n      cap: {pattern: '^q', definition: {max-length: 1000}}\n")
    topology = load_valid([write(text)])
    client = _client()
    api.put("vhosts", vhost)
    plan = make_plan(topology, client)
    assert [c.kind for c in plan.changes] == ["queue"] * 4 + ["operator_policy"]
    api.put("queues", vhost, "q2", body={"durable": True, "arguments": {"x-max-length": 99}})
    with pytest.raises(ApplyError) as failure:
        apply_plan(plan, client, topology=topology, options=ApplyOptions(bulk_min=1, bulk_min_before_more=1))
    assert "create queue" in str(failure.value) and "q2" in str(failure.value)
    assert "3 of 5 change(s) had been applied" in str(failure.value)
    assert api.get("operator-policies", vhost) == []
    assert api.queue(vhost, "q3")["arguments"]["x-max-length"] == 4


def test_a_long_apply_logged_to_a_file_prints_progress_lines_saying_what_it_does(write, vhost, tmp_path):
    """stderr not a terminal (a CI log): plain progress lines come every TOPOLOGY_PROGRESS_EVERY
    seconds, name the import under way rather than sitting at 0%, and end with a final count."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    count = 3000
    queues = "\n".join(f"      q{i}: {{max_length: {i + 1}}}" for i in range(count))
    path = write(f"vhosts:\n  {vhost}:\n    queues:\n{queues}\n")
    environment = {**os.environ, "TOPOLOGY_PROGRESS_EVERY": "0.2"}
    environment.pop("TOPOLOGY_PROGRESS", None)
    with open(tmp_path / "stderr.log", "w+", encoding="utf-8") as log:
        finished = subprocess.run([sys.executable, "-m", "topology", "apply", path, "--auto-approve"],
                                  cwd=Path(__file__).parents[2], env=environment, stdout=subprocess.PIPE,
                                  stderr=log, text=True, timeout=600, check=False)
        log.seek(0)
        lines = log.read().splitlines()
    assert finished.returncode == 0, lines
    progress = [line for line in lines if line.startswith("apply: ")]
    assert len(progress) >= 2, lines  # at least one line on the way, and the final count
    assert any(f"importing {count:,} object(s) into vhost '{vhost}' in one request" in line for line in progress)
    assert progress[-1].startswith(f"apply: {count + 1:,}/{count + 1:,} (100%)")
    assert all("\r" not in line and "\033" not in line for line in lines)
    assert "apply: " not in finished.stdout
