"""Shovels and federation upstreams against the real broker: a shovel really moves messages
between two vhosts, a federation upstream really federates an exchange, both change in
place, their URIs' passwords never show, and --prune deletes them."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.conftest import AMQP_ADDRESS, amqp_uri, connect, message_count, publish, wait_until

pytestmark = pytest.mark.broker


@pytest.fixture
def shovel_user(api):
    """A user the shovel connects as, with a random password and access to every vhost named later."""
    user, password = f"topology-test-{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    api.put("users", user, body={"password": password, "tags": ""})
    yield user, password
    api.delete("users", user)


SHOVEL = """
vhosts:
  {source}:
    queues:
      outbox: {{}}
    shovels:
      mover:
        source_uri: "${{SRC_URI}}"
        source_queue: outbox
        destination_uri: "amqp://{user}:${{SHOVEL_PASSWORD}}@{amqp}/{destination}"
        destination_queue: inbox
        ack_mode: on-confirm
        prefetch_count: {prefetch}
  {destination}:
    queues:
      inbox: {{type: quorum}}
"""


def test_a_shovel_moves_messages_changes_in_place_and_never_shows_its_password(
        run, write, vhost, other_vhost, shovel_user, api, monkeypatch, tmp_path):
    user, password = shovel_user
    for where in (vhost, other_vhost):
        api.put("vhosts", where)
        api.put("permissions", where, user, body={"configure": ".*", "write": ".*", "read": ".*"})
    monkeypatch.setenv("SRC_URI", amqp_uri(vhost, user, password))
    monkeypatch.setenv("SHOVEL_PASSWORD", password)
    path = write(SHOVEL.format(source=vhost, destination=other_vhost, user=user, prefetch=10, amqp=AMQP_ADDRESS))

    plan = run("plan", path)
    assert plan.code == 0, plan.err
    assert f"+ shovel mover  (ack-mode=on-confirm, dest-queue=inbox, dest-uri=\"amqp://{user}:***@" in plan.out
    applied = run("apply", path, "--auto-approve")
    assert applied.code == 0, applied.err
    stored = api.get("parameters", "shovel", vhost, "mover")["value"]
    assert stored["src-uri"] == amqp_uri(vhost, user, password)
    assert stored["dest-uri"] == amqp_uri(other_vhost, user, password)
    assert stored["src-prefetch-count"] == 10 and stored["ack-mode"] == "on-confirm"
    # the queue the shovel publishes to was declared first, as a quorum queue (a shovel declares a missing one as classic)
    assert api.queue(other_vhost, "inbox")["arguments"]["x-queue-type"] == "quorum"

    publish(vhost, "outbox", [b"one", b"two", b"three"])
    wait_until(lambda: message_count(other_vhost, "inbox") == 3, "the shovel moving 3 messages", timeout=20)
    assert message_count(vhost, "outbox") == 0
    assert "No changes." in run("plan", path).out

    # a new password: exactly one change, which shows neither password
    new_password = f"pw-{uuid.uuid4().hex}"
    api.put("users", user, body={"password": new_password, "tags": ""})
    monkeypatch.setenv("SRC_URI", amqp_uri(vhost, user, new_password))
    monkeypatch.setenv("SHOVEL_PASSWORD", new_password)
    outputs = [run("plan", path), run("plan", path, "--format", "json"), run("drift", path),
               run("drift", path, "--format", "json"), run("plan", path, "--out", str(tmp_path / "plan.json"))]
    changed = json.loads(outputs[1].out)["changes"]
    assert [(c["action"], c["kind"], c["name"]) for c in changed] == [("update", "shovel", "mover")]
    assert changed[0]["diff"] == {"credentials": {"before": "set", "after": "changed"}}
    assert "credentials: set -> changed" in outputs[0].out
    saved = (tmp_path / "plan.json").read_text()
    for text in [o.out + o.err for o in outputs] + [saved]:
        assert password not in text and new_password not in text
    assert "${SRC_URI}" in saved and "${SHOVEL_PASSWORD}" in saved

    applied = run("apply", "--plan", str(tmp_path / "plan.json"), "--auto-approve")
    assert applied.code == 0, applied.err
    assert password not in applied.out + applied.err and new_password not in applied.out + applied.err
    stored = api.get("parameters", "shovel", vhost, "mover")["value"]
    assert new_password in stored["src-uri"] and new_password in stored["dest-uri"]
    assert "No changes." in run("plan", path).out
    publish(vhost, "outbox", [b"four"])  # the restarted shovel connects with the new password
    wait_until(lambda: message_count(other_vhost, "inbox") == 4, "the shovel moving a message after the change",
               timeout=20)

    # another setting: changed in place, the shovel keeps its name and work
    faster = write(SHOVEL.format(source=vhost, destination=other_vhost, user=user, prefetch=50, amqp=AMQP_ADDRESS), name="faster.yaml")
    plan = run("plan", faster)
    assert "~ shovel mover" in plan.out and "value.src-prefetch-count: 10 -> 50" in plan.out
    assert run("apply", faster, "--auto-approve").code == 0
    assert api.get("parameters", "shovel", vhost, "mover")["value"]["src-prefetch-count"] == 50

    # dropped from the files: listed, and deleted with --prune only
    dropped = write(f"""
        vhosts:
          {vhost}:
            queues:
              outbox: {{}}
            shovels: {{}}    # the files still own the vhost's shovels: there are none
          {other_vhost}:
            queues:
              inbox: {{type: quorum}}
        """, name="dropped.yaml")
    plan = run("plan", dropped)
    assert "? shovel " + vhost + "/mover" in plan.out and "No changes." in plan.out
    pruned = run("apply", dropped, "--prune", "--auto-approve")
    assert pruned.code == 0, pruned.err
    assert api.delete("parameters", "shovel", vhost, "mover") == 404
    assert message_count(other_vhost, "inbox") == 4


def test_a_password_written_in_the_file_is_refused(run, write, vhost):
    path = write(f"""
        vhosts:
          {vhost}:
            shovels:
              leak:
                source_uri: "amqp://someone:hunter2-literal@127.0.0.1/{vhost}"
                source_queue: a
                destination_uri: "amqp://"
                destination_queue: b
        """)
    for command in ("validate", "plan"):
        result = run(command, path)
        assert result.code == 1
        assert "a password written in the file: take the URI from the environment" in result.err
        assert "source_uri" in result.err and "hunter2-literal" not in result.out + result.err


FEDERATION = """
vhosts:
  {upstream}:
    exchanges:
      events: {{type: topic}}
  {downstream}:
    exchanges:
      events: {{type: topic}}
    queues:
      audit: {{}}
    bindings:
      - {{source: events, destination: audit, routing_key: "#"}}
    federation_upstreams:
      origin: {{uri: "${{UPSTREAM_URI}}", max_hops: {hops}, message_ttl: 10m}}
    federation_upstream_sets:
      everywhere:
        - {{upstream: origin}}
    policies:
      federate:
        pattern: "^events$"
        apply_to: exchanges
        definition: {{federation-upstream-set: everywhere}}
"""


def test_a_federation_upstream_federates_an_exchange_and_changes_in_place(run, write, vhost, other_vhost, api, monkeypatch):
    monkeypatch.setenv("UPSTREAM_URI", f"amqp:///{vhost}")
    path = write(FEDERATION.format(upstream=vhost, downstream=other_vhost, hops=1))
    applied = run("apply", path, "--auto-approve")
    assert applied.code == 0, applied.err
    assert api.get("parameters", "federation-upstream", other_vhost, "origin")["value"] == {
        "uri": f"amqp:///{vhost}", "max-hops": 1, "message-ttl": 600000}
    assert api.get("parameters", "federation-upstream-set", other_vhost, "everywhere")["value"] == [{"upstream": "origin"}]
    assert "No changes." in run("plan", path).out

    wait_until(lambda: any(link.get("status") == "running" for link in api.get("federation-links", other_vhost)),
               "the federation link starting", timeout=20, interval=0.25)
    connection = connect(vhost)
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish("events", "orders.created", b"federated")
    finally:
        connection.close()
    wait_until(lambda: message_count(other_vhost, "audit") == 1, "the message crossing the federation link",
               timeout=20, interval=0.25)

    # the upstream's own queue and exchange on the upstream side are never pruned
    upstream_plan = run("plan", write(f"vhosts:\n  {vhost}:\n    exchanges:\n      events: {{type: topic}}\n",
                                      name="upstream-only.yaml"), "--prune", "--format", "json")
    planned = json.loads(upstream_plan.out)
    assert planned["changes"] == []
    assert all(o["protected"] for o in planned["unmanaged"]) and planned["unmanaged"]

    changed = write(FEDERATION.format(upstream=vhost, downstream=other_vhost, hops=2), name="changed.yaml")
    plan = run("plan", changed)
    assert "~ federation_upstream origin" in plan.out and "value.max-hops: 1 -> 2" in plan.out
    assert run("apply", changed, "--auto-approve").code == 0
    assert api.get("parameters", "federation-upstream", other_vhost, "origin")["value"]["max-hops"] == 2

    # an upstream set with a raw key, compared like the rest
    api.put("parameters", "federation-upstream-set", other_vhost, "everywhere",
            body={"value": [{"upstream": "origin", "prefetch-count": 5}]})
    plan = json.loads(run("plan", changed, "--format", "json").out)
    assert [(c["action"], c["kind"]) for c in plan["changes"]] == [("update", "federation_upstream_set")]
    assert run("apply", changed, "--auto-approve").code == 0
    assert api.get("parameters", "federation-upstream-set", other_vhost, "everywhere")["value"] == [{"upstream": "origin"}]


def test_undeclared_upstreams_are_pruned_only_where_the_files_own_them(run, write, vhost, api):
    api.put("vhosts", vhost)
    api.put("parameters", "federation-upstream", vhost, "by-hand", body={"value": {"uri": "amqp://"}})
    api.put("parameters", "federation-upstream", vhost, "kept-by-hand", body={"value": {"uri": "amqp://"}})
    silent = write(f"vhosts:\n  {vhost}:\n    queues:\n      q: {{}}\n", name="silent.yaml")
    assert "by-hand" not in run("plan", silent).out  # the files name no upstreams: the vhost's are not theirs
    assert run("apply", silent, "--prune", "--auto-approve").code == 0
    assert len(api.get("parameters", "federation-upstream", vhost)) == 2
    path = write(f"""
        vhosts:
          {vhost}:
            ignore: ["kept-*"]
            queues:
              q: {{}}
            federation_upstreams: {{}}
        """)
    plan = run("plan", path)
    assert f"? federation_upstream {vhost}/by-hand" in plan.out and "kept-by-hand" not in plan.out
    assert run("apply", path, "--prune", "--auto-approve").code == 0
    names = {p["name"] for p in api.get("parameters", "federation-upstream", vhost)}
    assert names == {"kept-by-hand"}
