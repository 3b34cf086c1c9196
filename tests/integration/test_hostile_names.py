"""Names full of URL syntax and non-ASCII text, against the real broker: created, read back,
diffed to nothing, changed, and deleted, each exactly the object named (issue: hostile input)."""

from __future__ import annotations

import json
import uuid

import pytest
import yaml

pytestmark = pytest.mark.broker

NAMES = ["a/b", "a%2Fb", "a%b", "a#b", "a?b=1&c", "sp ace", "dots..", "...", "./", "очередь", "キュー", "a\u200bb", "+%20"]
"""(``.`` and ``..`` themselves are refused by validation: the management API cannot address them.)"""


@pytest.fixture
def hostile_vhost(api):
    name = f"topology-test-{uuid.uuid4().hex[:6]}/%2F ?#é"
    yield name
    api.delete("vhosts", name)


def files(vhost: str, names: list[str], ttl: int) -> str:
    return yaml.safe_dump({"vhosts": {vhost: {
        "exchanges": {name: {"type": "topic"} for name in names},
        "queues": {name: {"message_ttl": ttl} for name in names},
        "bindings": [{"source": name, "destination": name, "routing_key": name} for name in names],
        "policies": {name: {"pattern": "^nothing$", "definition": {"max-length": ttl}} for name in names},
    }}}, allow_unicode=True)


def test_hostile_names_are_created_read_diffed_changed_and_deleted_exactly(run, write, api, hostile_vhost):
    path = write(files(hostile_vhost, NAMES, 1000))
    created = run("apply", path, "--auto-approve")
    assert created.code == 0, created.err
    defs = api.definitions(hostile_vhost)
    assert sorted(q["name"] for q in defs["queues"]) == sorted(NAMES)
    assert sorted(e["name"] for e in defs["exchanges"]) == sorted(NAMES)
    assert sorted((b["source"], b["destination"], b["routing_key"]) for b in defs["bindings"]) == sorted(
        (n, n, n) for n in NAMES)
    assert sorted(p["name"] for p in defs["policies"]) == sorted(NAMES)
    assert run("plan", path, "--detailed-exitcode").code == 0  # read back to exactly the files

    # a change to one object touches that object alone
    changed = write(files(hostile_vhost, NAMES, 1000).replace("max-length: 1000", "max-length: 1000", 1), "same.yaml")
    assert run("plan", changed, "--detailed-exitcode").code == 0
    edited = yaml.safe_load(files(hostile_vhost, NAMES, 1000))
    edited["vhosts"][hostile_vhost]["policies"]["a%2Fb"]["definition"]["max-length"] = 7
    path2 = write(yaml.safe_dump(edited, allow_unicode=True), "edited.yaml")
    plan = run("plan", path2, "--format", "json")
    import json

    changes = json.loads(plan.out)["changes"]
    assert [(c["action"], c["kind"], c["name"]) for c in changes] == [("update", "policy", "a%2Fb")]
    assert run("apply", path2, "--auto-approve").code == 0
    assert api.get("policies", hostile_vhost, "a%2Fb")["definition"] == {"max-length": 7}
    assert api.get("policies", hostile_vhost, "a/b")["definition"] == {"max-length": 1000}

    # pruning the names removed from the files deletes those and no other
    kept = ["a/b", "очередь"]
    pruned = write(files(hostile_vhost, kept, 1000), "kept.yaml")
    result = run("apply", pruned, "--auto-approve", "--prune")
    assert result.code == 0, result.err
    defs = api.definitions(hostile_vhost)
    assert sorted(q["name"] for q in defs["queues"]) == sorted(kept)
    assert sorted(e["name"] for e in defs["exchanges"]) == sorted(kept)
    assert sorted(p["name"] for p in defs["policies"]) == sorted(kept)
    assert sorted(b["routing_key"] for b in defs["bindings"]) == sorted(kept)
    assert run("plan", pruned, "--prune", "--detailed-exitcode").code == 0
    drift = run("drift", pruned, "--format", "json")
    assert drift.code == 0, drift.err


def test_a_vhost_named_in_non_ascii_text_plans_applies_and_drifts(run, write, api):
    """RabbitMQ 4.x fails on the definitions export of such a vhost (4.0.5: HTTP 500, 4.3.6: JSON cut
    short); the tool reads the whole broker's export instead, on every version."""
    vhost = f"topology-test-{uuid.uuid4().hex[:6]}-очередь-キュー"
    try:
        path = write(files(vhost, ["q", "é"], 1000))
        applied = run("apply", path, "--auto-approve")
        assert applied.code == 0, applied.err
        assert sorted(q["name"] for q in api.definitions(vhost)["queues"]) == ["q", "é"]
        assert run("plan", path, "--detailed-exitcode").code == 0
        assert run("drift", path).code == 0
        changed = write(files(vhost, ["q", "é"], 2000), "changed.yaml")
        plan = run("plan", changed, "--format", "json")
        assert plan.code == 0, plan.err
        import json

        assert sorted((c["action"], c["kind"], c["name"]) for c in json.loads(plan.out)["changes"]) == [
            ("replace", "queue", "q"), ("replace", "queue", "é"), ("update", "policy", "q"), ("update", "policy", "é")]
        assert run("drift", changed).code == 2
    finally:
        api.delete("vhosts", vhost)


def test_control_characters_in_names_never_reach_the_terminal_raw(run, write, api, vhost):
    """Any AMQP client can make a queue whose name holds an escape sequence or a NUL: plan, drift
    (JUnit too), graph and errors print it made visible, and the JUnit report stays valid XML."""
    import xml.etree.ElementTree as ElementTree

    from tests.conftest import connect

    evil = "evil\x1b]0;owned\x07\x1b[2J\x00end"
    path = write(f"vhosts:\n  {vhost}:\n    queues:\n      kept: {{}}\n")
    assert run("apply", path, "--auto-approve").code == 0
    connection = connect(vhost)
    try:
        connection.channel().queue_declare(evil, durable=True)
    finally:
        connection.close()
    evil = next(q["name"] for q in api.get("queues", vhost) if q["name"].startswith("evil"))  # as the broker keeps it
    outputs = [run("plan", path, "--prune"), run("plan", path, "--prune", "--format", "markdown"),
               run("drift", path), run("drift", path, "--format", "junit"), run("graph", path)]
    seen = run("plan", path, "--prune", "--format", "json")
    assert evil in [c["name"] for c in json.loads(seen.out)["changes"]]  # JSON keeps the exact name
    for result in outputs:
        assert not set(result.out + result.err) & {"\x1b", "\x07", "\x00"}, repr(result.out)
    assert "evil\\u001b]0;owned\\u0007" in outputs[0].out and "\\u0000end" in outputs[0].out
    ElementTree.fromstring(outputs[3].out)  # valid XML
    api.delete("queues", vhost, evil)


def test_a_name_with_a_line_break_is_refused_before_the_broker_strips_it(run, write):
    result = run("validate", write('vhosts:\n  v:\n    queues:\n      "a\\rb": {}\n      "c\\nd": {}\n'))
    assert result.code == 1 and result.err.count("holds a line break (CR or LF)") == 2
