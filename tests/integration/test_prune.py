"""--prune against the real broker: what no file declares goes, protected objects never do."""

from __future__ import annotations

import json
import os

import pytest

from tests.conftest import connect, message_count, publish

pytestmark = pytest.mark.broker

DECLARED = """
vhosts:
  {vhost}:
    ignore: ["app.*", "celery?"]
    exchanges:
      orders: {{type: topic}}
    queues:
      orders.created: {{}}
    bindings:
      - {{source: orders, destination: orders.created, routing_key: "order.created"}}
"""


def names(api, kind: str, vhost: str) -> set[str]:
    return {o["name"] for o in api.get(kind, vhost)}


def stray_objects(api, vhost: str) -> None:
    """Objects no file declares: some to prune, some protected."""
    api.put("exchanges", vhost, "stray.exchange", body={"type": "fanout"})
    api.put("queues", vhost, "stray.queue", body={"durable": True})
    api.post("bindings", vhost, "e", "stray.exchange", "q", "stray.queue", body={"routing_key": ""})
    api.post("bindings", vhost, "e", "amq.direct", "q", "orders.created", body={"routing_key": "stray"})
    api.put("policies", vhost, "stray.policy", body={"pattern": "^nothing$", "definition": {"max-length": 1}})
    # protected: ignored by pattern, plugin-internal, federation-named
    api.put("queues", vhost, "app.sessions", body={"durable": True})
    api.put("queues", vhost, "celery1", body={"durable": True})
    api.put("exchanges", vhost, "app.events", body={"type": "topic"})
    api.post("bindings", vhost, "e", "app.events", "q", "celery1", body={"routing_key": "#"})
    api.post("bindings", vhost, "e", "orders", "q", "app.sessions", body={"routing_key": "session.#"})
    api.put("queues", vhost, "federation: orders -> rabbit@elsewhere", body={"durable": True})
    api.put("exchanges", vhost, "plugin.internal", body={"type": "fanout", "arguments": {"x-internal-purpose": "federation"}})
    api.put("policies", vhost, "app.policy", body={"pattern": "^app\\.", "definition": {"max-length": 100}})


def test_prune_deletes_what_no_file_declares_and_nothing_protected(run, write, vhost, api):
    path = write(DECLARED.format(vhost=vhost))
    assert run("apply", path, "--auto-approve").code == 0
    stray_objects(api, vhost)
    # a server-named durable queue and an exclusive queue of a connected client
    connection = connect(vhost)
    channel = connection.channel()
    server_named = channel.queue_declare("", durable=True, exclusive=False, auto_delete=False).method.queue
    exclusive = channel.queue_declare("client.exclusive", exclusive=True).method.queue
    try:
        without = run("plan", path)
        assert "? queue " + vhost + "/stray.queue" in without.out and "No changes." in without.out
        assert "app.sessions" not in without.out  # ignored objects are not even listed

        plan = run("plan", path, "--prune", "--format", "json")
        document = json.loads(plan.out)
        deletions = sorted((c["kind"], c["name"]) for c in document["changes"] if c["action"] == "delete")
        assert deletions == [
            ("binding", "amq.direct -> queue orders.created [stray]"),
            ("binding", "stray.exchange -> queue stray.queue []"),
            ("exchange", "stray.exchange"),
            ("policy", "stray.policy"),
            ("queue", "stray.queue"),
        ]
        protected = {u["name"]: u["protected"] for u in document["unmanaged"]}
        assert protected[server_named] == "server-named"
        assert protected["federation: orders -> rabbit@elsewhere"] == "used by federation"
        assert protected["plugin.internal"] == "internal to a plugin (federation)"

        result = run("apply", path, "--prune", "--auto-approve")
        assert result.code == 0, result.err
        assert "Apply complete: 5 change(s) applied" in result.out
        queues = names(api, "queues", vhost)
        assert queues == {"orders.created", "app.sessions", "celery1", server_named, exclusive,
                          "federation: orders -> rabbit@elsewhere"}
        assert {"orders", "app.events", "plugin.internal", "amq.direct", "amq.topic", ""} <= names(api, "exchanges", vhost)
        assert "stray.exchange" not in names(api, "exchanges", vhost)
        assert names(api, "policies", vhost) == {"app.policy"}
        bindings = {(b["source"], b["destination"]) for b in api.get("bindings", vhost) if b["source"]}
        assert bindings == {("orders", "orders.created"), ("app.events", "celery1"), ("orders", "app.sessions")}
        assert run("plan", path, "--prune", "--detailed-exitcode").code == 0
    finally:
        connection.close()


def test_pruning_a_queue_that_holds_messages_needs_allow_data_loss(run, write, vhost, api):
    path = write(DECLARED.format(vhost=vhost))
    assert run("apply", path, "--auto-approve").code == 0
    api.put("queues", vhost, "leftover", body={"durable": True})
    publish(vhost, "leftover", [b"a", b"b", b"c"])
    deadline = __import__("time").monotonic() + 30
    while api.get("queues", vhost, "leftover").get("messages") != 3:  # wait for the statistics
        assert __import__("time").monotonic() < deadline
        __import__("time").sleep(0.5)

    plan = run("plan", path, "--prune")
    assert "- queue leftover" in plan.out and "DESTRUCTIVE: deletes 3 message(s)" in plan.out
    refused = run("apply", path, "--prune", "--auto-approve")
    assert refused.code == 1 and "--allow-data-loss" in refused.err and "holds 3 message(s)" in refused.err
    assert message_count(vhost, "leftover") == 3

    result = run("apply", path, "--prune", "--allow-data-loss", "--auto-approve")
    assert result.code == 0, result.err
    assert "leftover" not in names(api, "queues", vhost)


def test_a_queue_in_use_is_never_pruned(run, write, vhost, api):
    path = write(DECLARED.format(vhost=vhost))
    assert run("apply", path, "--auto-approve").code == 0
    api.put("queues", vhost, "in.use", body={"durable": True})
    connection = connect(vhost)
    try:
        connection.channel().basic_consume("in.use", lambda *args: None)
        result = run("apply", path, "--prune", "--allow-data-loss", "--auto-approve")
    finally:
        connection.close()
    assert result.code == 1 and "consumer(s)" in result.err
    assert "in.use" in names(api, "queues", vhost)


def test_an_exchange_whose_deletion_would_drop_an_ignored_binding_is_kept(run, write, vhost, api):
    path = write(DECLARED.format(vhost=vhost))
    assert run("apply", path, "--auto-approve").code == 0
    api.put("exchanges", vhost, "shared", body={"type": "fanout"})
    api.put("queues", vhost, "app.inbox", body={"durable": True})
    api.post("bindings", vhost, "e", "shared", "q", "app.inbox", body={"routing_key": ""})
    plan = json.loads(run("plan", path, "--prune", "--format", "json").out)
    assert not [c for c in plan["changes"] if c["action"] == "delete"]
    kept = {u["name"]: u["protected"] for u in plan["unmanaged"]}
    assert kept["shared"].startswith("deleting it would drop 1 binding(s) that are kept")


def test_a_declared_object_matching_an_ignore_pattern_is_invalid(run, write, vhost):
    path = write(DECLARED.format(vhost=vhost).replace("orders.created: {}", "app.orders: {}")
                 .replace("destination: orders.created", "destination: app.orders"))
    result = run("validate", path)
    assert result.code == 1
    assert "is declared but matches the ignore pattern 'app.*'" in result.err


def test_an_exchange_bound_to_a_connected_clients_exclusive_queue_is_not_pruned(run, write, vhost, api):
    path = write(DECLARED.format(vhost=vhost))
    assert run("apply", path, "--auto-approve").code == 0
    api.put("exchanges", vhost, "client.replies", body={"type": "direct"})
    connection = connect(vhost)
    try:
        channel = connection.channel()
        mine = channel.queue_declare("", exclusive=True).method.queue
        channel.queue_bind(mine, "client.replies", "reply")
        result = run("apply", path, "--prune", "--auto-approve")
    finally:
        connection.close()
    # the binding is not in what the tool reads (RabbitMQ's export leaves it out before 4.3.3, the
    # tool from 4.3.3 on): counted before the exchange's deletion, which is refused
    assert result.code == 1
    assert "REFUSED: 1 binding(s) to exclusive queues of connected clients would be dropped" in result.out
    assert "client.replies" in names(api, "exchanges", vhost)


def test_a_binding_to_a_connected_clients_exclusive_queue_is_never_pruned(run, write, vhost, api):
    # RabbitMQ's export holds such a binding from 4.3.3 on (and never the queue): 4.3.6 once planned
    # its deletion, from a declared exchange to a queue the client named itself
    path = write(DECLARED.format(vhost=vhost))
    assert run("apply", path, "--auto-approve").code == 0
    connection = connect(vhost)
    try:
        channel = connection.channel()
        channel.queue_declare("client-inbox", exclusive=True)
        channel.queue_bind("client-inbox", "orders", "orders.#")
        result = run("apply", path, "--prune", "--auto-approve")
        bound = any(b["destination"] == "client-inbox" for b in api.get("bindings", vhost))
    finally:
        connection.close()
    assert result.code == 0, result.err
    assert "No changes" in result.out and "client-inbox" not in result.out
    assert bound


def test_a_topology_file_that_cannot_be_read_stops_prune_before_anything_is_deleted(run, tmp_path, vhost, api):
    """A dangling *.yaml link or a pipe in a PATHS folder once vanished without a word: validate
    said Valid and apply --prune deleted what the missing file declared."""
    folder = tmp_path / "topology"
    folder.mkdir()
    (folder / "vhost.yaml").write_text(f"vhosts:\n  {vhost}:\n    exchanges:\n      kept: {{type: fanout}}\n",
                                       encoding="utf-8")
    declared = folder / "queues.yaml"
    declared.write_text(f"vhosts:\n  {vhost}:\n    queues:\n      precious: {{}}\n", encoding="utf-8")
    assert run("apply", str(folder), "--auto-approve").code == 0
    declared.unlink()
    declared.symlink_to(tmp_path / "moved-away.yaml")
    for command in (("validate",), ("plan", "--prune"), ("apply", "--prune", "--auto-approve")):
        result = run(*command, str(folder))
        assert result.code == 1 and f"{declared}: a link to nothing" in result.err, (command, result.err)
    declared.unlink()
    os.mkfifo(declared)
    result = run("apply", str(folder), "--prune", "--auto-approve")
    assert result.code == 1 and "not a regular file" in result.err
    assert "precious" in names(api, "queues", vhost)  # nothing was deleted
