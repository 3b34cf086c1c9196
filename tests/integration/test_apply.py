"""validate → plan → apply against the real broker, each test in its own vhost."""

from __future__ import annotations

import json
import time
from urllib.parse import quote

import pytest

from tests.conftest import BROKER_AUTH, connect, management_client, message_count, publish
from tests.faults import FaultProxy, Rule
from topology.rules.versions import has_classic_mirroring

pytestmark = pytest.mark.broker

EVERY_FIELD = """
vhosts:
  {vhost}:
    description: every field
    tags: [team-a, critical]
    exchanges:
      orders:      {{type: topic}}
      orders.dlx:  {{type: fanout, durable: true, auto_delete: false}}
      audit:       {{type: headers, alternate_exchange: unrouted}}
      unrouted:    {{type: fanout}}
      hidden:      {{type: direct, internal: true, auto_delete: true, durable: false}}
      custom:      {{type: direct, arguments: {{x-custom: 1}}}}
    queues:
      q.quorum:
        type: quorum
        message_ttl: 30s
        expires: 1d
        max_length: 10000
        max_length_bytes: 10MiB
        overflow: reject-publish
        dead_letter_exchange: orders.dlx
        dead_letter_routing_key: dead.q
        dead_letter_strategy: at-most-once
        single_active_consumer: true
        delivery_limit: 5
        initial_group_size: 1
        leader_locator: balanced
      q.classic:
        type: classic
        max_priority: 10
        queue_mode: lazy
        overflow: reject-publish-dlx
        dead_letter_exchange: ""
        arguments: {{x-custom-arg: abc}}
      q.stream:
        type: stream
        max_age: 7D
        max_length_bytes: 1GB
        initial_group_size: 1
      q.transient: {{type: classic, durable: false, auto_delete: true}}
      q.default: {{}}
    bindings:
      - {{source: orders, destination: q.quorum, routing_key: "order.created.#"}}
      - {{source: orders.dlx, destination: q.classic}}
      - {{source: audit, destination: q.default, arguments: {{x-match: all, format: pdf}}}}
      - {{source: orders, destination: audit, destination_type: exchange, routing_key: "#"}}
      - {{source: amq.topic, destination: q.default, routing_key: "a.*"}}
    policies:
      classic:
        pattern: ^q\\.classic$
        apply_to: queues
        priority: 1
        definition: {classic_policy}
      limits:
        pattern: ^q\\.default$
        definition: {{message-ttl: 1m, max-length-bytes: 1KiB}}
"""

CLASSIC_POLICY = {
    True: {"ha-mode": "exactly", "ha-params": 2, "ha-sync-mode": "automatic"},
    False: {"queue-leader-locator": "balanced"},
}
"""The definition of EVERY_FIELD's classic queue policy, by whether the broker still mirrors classic
queues (RabbitMQ 4.0 removed mirroring, and took queue-leader-locator for classic queues)."""


def every_field(vhost: str, version: tuple[int, ...]) -> str:
    """EVERY_FIELD for the test broker's version."""
    return EVERY_FIELD.format(vhost=vhost, classic_policy=json.dumps(CLASSIC_POLICY[has_classic_mirroring(version)]))


def test_every_field_is_applied_exactly_and_then_plans_to_nothing(run, write, api, vhost, broker_version):
    path = write(every_field(vhost, broker_version))
    assert run("validate", path).code == 0
    result = run("apply", path, "--auto-approve")
    assert result.code == 0, result.err
    assert "Apply complete" in result.out

    info = api.get("vhosts", vhost)
    assert info["description"] == "every field"
    assert sorted(info["tags"]) == ["critical", "team-a"]

    defs = api.definitions(vhost)
    queues = {q["name"]: q for q in defs["queues"]}
    assert queues["q.quorum"]["arguments"] == {
        "x-queue-type": "quorum",
        "x-message-ttl": 30000,
        "x-expires": 86_400_000,
        "x-max-length": 10000,
        "x-max-length-bytes": 10 * 1024 * 1024,
        "x-overflow": "reject-publish",
        "x-dead-letter-exchange": "orders.dlx",
        "x-dead-letter-routing-key": "dead.q",
        "x-dead-letter-strategy": "at-most-once",
        "x-single-active-consumer": True,
        "x-delivery-limit": 5,
        "x-quorum-initial-group-size": 1,
        "x-queue-leader-locator": "balanced",
    }
    assert queues["q.classic"]["arguments"] == {
        "x-queue-type": "classic",
        "x-max-priority": 10,
        "x-queue-mode": "lazy",
        "x-overflow": "reject-publish-dlx",
        "x-dead-letter-exchange": "",
        "x-custom-arg": "abc",
    }
    assert queues["q.stream"]["arguments"] == {
        "x-queue-type": "stream",
        "x-max-age": "7D",
        "x-max-length-bytes": 1_000_000_000,
        "x-initial-cluster-size": 1,
    }
    assert (queues["q.transient"]["durable"], queues["q.transient"]["auto_delete"]) == (False, True)
    assert queues["q.default"]["arguments"] == {"x-queue-type": "classic"}

    exchanges = {e["name"]: e for e in defs["exchanges"]}
    assert exchanges["audit"]["arguments"] == {"alternate-exchange": "unrouted"}
    assert (exchanges["hidden"]["internal"], exchanges["hidden"]["durable"], exchanges["hidden"]["auto_delete"]) == (
        True, False, True,
    )
    assert exchanges["custom"]["arguments"] == {"x-custom": 1}

    bindings = {(b["source"], b["destination"], b["destination_type"], b["routing_key"]): b["arguments"] for b in defs["bindings"]}
    assert bindings[("audit", "q.default", "queue", "")] == {"x-match": "all", "format": "pdf"}
    assert ("orders", "audit", "exchange", "#") in bindings
    assert ("amq.topic", "q.default", "queue", "a.*") in bindings

    policies = {p["name"]: p for p in defs["policies"]}
    assert policies["classic"]["definition"] == CLASSIC_POLICY[has_classic_mirroring(broker_version)]
    assert (policies["classic"]["apply-to"], policies["classic"]["priority"]) == ("queues", 1)
    assert policies["limits"]["definition"] == {"message-ttl": 60000, "max-length-bytes": 1024}
    assert policies["limits"]["apply-to"] == "all"

    again = run("plan", path, "--detailed-exitcode")
    assert again.code == 0, again.out
    assert "No changes" in again.out
    second = run("apply", path, "--auto-approve")
    assert second.code == 0 and "No changes" in second.out


def test_changes_behind_the_back_are_planned_exactly_and_repaired(run, write, api, vhost, broker_version):
    path = write(every_field(vhost, broker_version))
    assert run("apply", path, "--auto-approve").code == 0

    # behind the tool's back: edit a policy, delete a binding, add a queue argument
    api.put("policies", vhost, "limits", body={"pattern": "^q\\.default$", "apply-to": "all", "priority": 0,
                                               "definition": {"message-ttl": 5000, "max-length-bytes": 1024}})
    key = next(b["properties_key"] for b in api.get("bindings", vhost, "e", "orders.dlx", "q", "q.classic"))
    assert api.delete("bindings", vhost, "e", "orders.dlx", "q", "q.classic", key) == 204
    assert api.delete("queues", vhost, "q.default") == 204
    api.put("queues", vhost, "q.default", body={"durable": True, "arguments": {"x-queue-type": "classic", "x-max-length": 7}})
    # the re-declared queue lost its bindings too: audit -> q.default and amq.topic -> q.default

    result = run("plan", path, "--format", "json", "--detailed-exitcode")
    assert result.code == 2
    plan = json.loads(result.out)
    got = sorted((c["action"], c["kind"], c["name"]) for c in plan["changes"])
    assert got == sorted([
        ("update", "policy", "limits"),
        ("create", "binding", "orders.dlx -> queue q.classic []"),
        ("create", "binding", 'audit -> queue q.default [] {"format":"pdf","x-match":"all"}'),
        ("create", "binding", "amq.topic -> queue q.default [a.*]"),
        ("replace", "queue", "q.default"),
    ])
    by_kind = {c["kind"]: c for c in plan["changes"] if c["action"] != "create"}
    assert by_kind["policy"]["diff"] == {"definition.message-ttl": {"before": 5000, "after": 60000}}
    assert by_kind["queue"]["diff"] == {"arguments.x-max-length": {"before": 7, "after": None}}
    assert plan["summary"] == {"create": 3, "update": 1, "replace": 1, "resume": 0, "delete": 0, "unmanaged": 0}

    refused = run("apply", path, "--auto-approve")
    assert refused.code == 1
    assert "--allow-replace" in refused.err and "q.default" in refused.err
    assert api.queue(vhost, "q.default")["arguments"]["x-max-length"] == 7  # nothing was changed

    repaired = run("apply", path, "--auto-approve", "--allow-replace")
    assert repaired.code == 0, repaired.err
    assert run("plan", path, "--detailed-exitcode").code == 0
    assert api.get("policies", vhost, "limits")["definition"]["message-ttl"] == 60000


@pytest.mark.parametrize("queue_type", ["classic", "quorum"])
def test_a_queue_holding_messages_is_never_replaced(run, write, api, vhost, queue_type):
    path = write(f"""
        vhosts:
          {vhost}:
            queues:
              work: {{type: {queue_type}, message_ttl: 1h}}
        """)
    assert run("apply", path, "--auto-approve").code == 0
    publish(vhost, "work", [b"one", b"two", b"three"])
    changed = write(f"""
        vhosts:
          {vhost}:
            queues:
              work: {{type: {queue_type}, message_ttl: 2h}}
        """)
    result = run("apply", changed, "--auto-approve", "--allow-replace")
    assert result.code == 1
    assert "work" in result.err and "message" in result.err
    assert message_count(vhost, "work") == 3
    assert api.queue(vhost, "work")["arguments"]["x-message-ttl"] == 3_600_000


def test_replacing_an_empty_queue_keeps_all_its_bindings(run, write, api, vhost):
    path = write(f"""
        vhosts:
          {vhost}:
            exchanges:
              events: {{type: topic}}
            queues:
              inbox: {{type: classic}}
            bindings:
              - {{source: events, destination: inbox, routing_key: "a.#"}}
        """)
    assert run("apply", path, "--auto-approve").code == 0
    # a binding no file declares, added by someone else
    api.post("bindings", vhost, "e", "amq.direct", "q", "inbox", body={"routing_key": "manual"})
    changed = write(f"""
        vhosts:
          {vhost}:
            exchanges:
              events: {{type: topic}}
            queues:
              inbox: {{type: quorum}}
            bindings:
              - {{source: events, destination: inbox, routing_key: "a.#"}}
        """)
    plan = json.loads(run("plan", changed, "--format", "json").out)
    (replace,) = [c for c in plan["changes"] if c["action"] == "replace"]
    assert replace["diff"] == {"type": {"before": "classic", "after": "quorum"}}
    assert {b["routing_key"] for b in replace["rebind"]} == {"a.#", "manual"}

    result = run("apply", changed, "--auto-approve", "--allow-replace")
    assert result.code == 0, result.err
    assert api.queue(vhost, "inbox")["arguments"]["x-queue-type"] == "quorum"
    keys = {(b["source"], b["routing_key"]) for b in api.get("queues", vhost, "inbox", "bindings") if b["source"]}
    assert keys == {("events", "a.#"), ("amq.direct", "manual")}
    assert run("plan", changed, "--detailed-exitcode").code == 0


def test_replacing_an_exchange_keeps_bindings_as_source_and_destination(run, write, api, vhost):
    template = """
        vhosts:
          {vhost}:
            exchanges:
              front: {{type: fanout}}
              middle: {{type: {kind}}}
            queues:
              sink: {{}}
            bindings:
              - {{source: front, destination: middle, destination_type: exchange}}
              - {{source: middle, destination: sink, routing_key: k}}
        """
    assert run("apply", write(template.format(vhost=vhost, kind="direct")), "--auto-approve").code == 0
    changed = write(template.format(vhost=vhost, kind="topic"), "changed.yaml")
    assert run("apply", changed, "--auto-approve").code == 1  # needs --allow-replace
    result = run("apply", changed, "--auto-approve", "--allow-replace")
    assert result.code == 0, result.err
    exchanges = {e["name"]: e["type"] for e in api.definitions(vhost)["exchanges"]}
    assert exchanges["middle"] == "topic"
    bindings = {(b["source"], b["destination"]) for b in api.definitions(vhost)["bindings"]}
    assert {("front", "middle"), ("middle", "sink")} <= bindings


def test_an_edited_routing_key_is_a_delete_plus_a_create(run, write, api, vhost):
    template = """
        vhosts:
          {vhost}:
            exchanges: {{events: {{type: topic}}}}
            queues: {{inbox: {{}}}}
            bindings:
              - {{source: events, destination: inbox, routing_key: "{key}"}}
        """
    assert run("apply", write(template.format(vhost=vhost, key="old.#")), "--auto-approve").code == 0
    changed = write(template.format(vhost=vhost, key="new.#"), "changed.yaml")
    plan = json.loads(run("plan", changed, "--format", "json").out)
    assert sorted((c["action"], c["identity"]["routing_key"]) for c in plan["changes"]) == [
        ("create", "new.#"), ("delete", "old.#"),
    ]
    assert run("apply", changed, "--auto-approve").code == 0
    keys = [b["routing_key"] for b in api.definitions(vhost)["bindings"]]
    assert keys == ["new.#"]


def test_objects_no_file_declares_are_listed_and_left_alone(run, write, api, vhost):
    path = write(f"""
        vhosts:
          {vhost}:
            queues: {{declared: {{}}}}
        """)
    assert run("apply", path, "--auto-approve").code == 0
    api.put("queues", vhost, "stranger", body={"durable": True})
    api.put("exchanges", vhost, "foreign", body={"type": "fanout"})
    api.post("bindings", vhost, "e", "foreign", "q", "declared", body={"routing_key": ""})
    result = run("plan", path, "--format", "json", "--detailed-exitcode")
    assert result.code == 0
    plan = json.loads(result.out)
    assert plan["changes"] == []
    assert sorted((u["kind"], u["name"]) for u in plan["unmanaged"]) == [
        ("binding", "foreign -> queue declared []"), ("exchange", "foreign"), ("queue", "stranger"),
    ]
    assert run("apply", path, "--auto-approve").code == 0
    names = {q["name"] for q in api.definitions(vhost)["queues"]}
    assert names == {"declared", "stranger"}


def test_hostile_names_round_trip(run, write, api, vhost):
    weird_vhost = vhost + "/a%2F #?é"
    try:
        path = write(f"""
            vhosts:
              "{weird_vhost}":
                exchanges:
                  "ex/with%2Fslash #?": {{type: topic}}
                queues:
                  "q/é%20 #?.x": {{}}
                  "  spaced  ": {{}}
                bindings:
                  - {{source: "ex/with%2Fslash #?", destination: "q/é%20 #?.x", routing_key: "ü/#"}}
                policies:
                  "pol/%": {{pattern: "^q/", definition: {{max-length: 5}}}}
            """)
        result = run("apply", path, "--auto-approve")
        assert result.code == 0, result.err
        defs = api.definitions(weird_vhost)
        assert {q["name"] for q in defs["queues"]} == {"q/é%20 #?.x", "  spaced  "}
        assert defs["bindings"][0]["routing_key"] == "ü/#"
        assert run("plan", path, "--detailed-exitcode").code == 0
    finally:
        api.delete("vhosts", weird_vhost)


def test_a_noop_apply_makes_no_write_request(write, api, vhost, broker_version):
    from topology.engine import apply_plan, load_valid, make_plan
    from topology.rules.versions import has_slow_export

    path = write(every_field(vhost, broker_version))
    topology = load_valid([path])
    client = management_client()
    apply_plan(make_plan(topology, client), client, topology=topology)
    client.requests_made.clear()
    plan = make_plan(topology, client)
    assert plan.empty
    applied = apply_plan(plan, client, topology=topology)
    assert applied == []
    assert set(client.requests_made) == {"GET"}
    # a constant number of reads: overview, vhost list, one definitions export (users: three more), the
    # broker's deprecated features, as q.transient uses one (transient_nonexcl_queues), and where the
    # export leaves out the internal exchange 'hidden' (4.3.6), the vhost's exchange list; where the
    # export is slow (before 4.3.3), the vhost's five lists in its place
    raw = api.session.get(api.url("definitions", vhost), timeout=30).json()
    leaves_out = "hidden" not in {e["name"] for e in raw["exchanges"]}
    lists = 4 if has_slow_export(broker_version) else 0
    assert client.requests_made["GET"] == 4 + leaves_out + lists


def test_version_rules_are_checked_against_the_broker(run, write, api, vhost):
    version = tuple(int(p) for p in api.get("overview")["rabbitmq_version"].split(".")[:2])
    path = write(f"""
        vhosts:
          {vhost}:
            policies:
              p: {{pattern: ".*", apply_to: quorum_queues, definition: {{max-length: 5}}}}
        """)
    result = run("plan", path)
    if version < (3, 12):
        assert result.code == 1
        assert "needs RabbitMQ 3.12 or later" in result.err
    else:
        assert result.code == 0


def test_broker_errors_are_one_clear_line(run, write, vhost):
    path = write(f"vhosts: {{{vhost}: {{queues: {{q: {{}}}}}}}}\n")
    down = run("plan", path, "--url", "http://127.0.0.1:1")
    assert down.code == 1
    assert down.err.count("\n") == 1 and "cannot reach the management API at http://127.0.0.1:1" in down.err
    denied = run("plan", path, "--password", "s3cret-value")
    assert denied.code == 1
    assert "refused the credentials" in denied.err and "s3cret-value" not in denied.err + denied.out
    in_url = run("plan", path, "--url", "http://guest:an0ther-secret@127.0.0.1:1")
    assert in_url.code == 1 and "an0ther-secret" not in in_url.err


def test_apply_without_a_terminal_needs_auto_approve_and_changes_nothing(run, write, api, vhost):
    path = write(f"vhosts: {{{vhost}: {{queues: {{q: {{}}}}}}}}\n")
    result = run("apply", path)
    assert result.code == 1
    assert "pass --auto-approve" in result.err
    assert vhost not in {v["name"] for v in api.get("vhosts")}


def _consume_forever(vhost: str, queue: str):
    connection = connect(vhost)
    channel = connection.channel()
    channel.basic_consume(queue, lambda *args: None)
    return connection


def test_an_unsafe_queue_stops_the_apply_before_the_first_write(run, write, api, vhost):
    template = """
        vhosts:
          {vhost}:
            exchanges: {{e: {{type: {kind}}}}}
            queues: {{q: {{message_ttl: {ttl}}}, q2: {{}}}}
            bindings:
              - {{source: e, destination: q, routing_key: k}}
        """
    assert run("apply", write(template.format(vhost=vhost, kind="direct", ttl="1m")), "--auto-approve").code == 0
    api.post("bindings", vhost, "e", "e", "q", "q2", body={"routing_key": "app"})
    consumer = _consume_forever(vhost, "q")
    try:
        changed = write(template.format(vhost=vhost, kind="topic", ttl="2m"), "changed.yaml")
        result = run("apply", changed, "--auto-approve", "--allow-replace")
        assert result.code == 1
        assert "queue" in result.err and "consumer" in result.err and "0 of" in result.err
        defs = api.definitions(vhost)
        assert {e["name"]: e["type"] for e in defs["exchanges"]}["e"] == "direct"  # untouched
        assert {(b["destination"], b["routing_key"]) for b in defs["bindings"]} == {("q", "k"), ("q2", "app")}
    finally:
        consumer.close()


def test_a_refused_new_declaration_restores_the_old_object_and_its_bindings(run, write, api, vhost):
    template = """
        vhosts:
          {vhost}:
            exchanges: {{e: {{type: direct}}}}
            queues: {{q: {{message_ttl: {ttl}}}}}
            bindings:
              - {{source: e, destination: q, routing_key: k}}
        """
    assert run("apply", write(template.format(vhost=vhost, ttl="1m")), "--auto-approve").code == 0
    api.post("bindings", vhost, "e", "amq.direct", "q", "q", body={"routing_key": "app"})
    # validation refuses whatever the broker is known to refuse: the refusal of the new
    # declaration is injected in front of the real broker
    changed = write(template.format(vhost=vhost, ttl="2m"), "changed.yaml")
    with FaultProxy() as proxy:
        proxy.add(Rule("400", "PUT", f"/api/queues/{quote(vhost, safe='')}/q", times=1))
        result = run("apply", changed, "--auto-approve", "--allow-replace", "--url", proxy.url)
    assert result.code == 1, result.err
    assert "the old one and its bindings were restored" in result.err
    assert api.queue(vhost, "q")["arguments"]["x-message-ttl"] == 60000
    keys = {(b["source"], b["routing_key"]) for b in api.get("queues", vhost, "q", "bindings") if b["source"]}
    assert keys == {("e", "k"), ("amq.direct", "app")}


def test_an_exchange_bound_to_exclusive_queues_is_not_replaced(run, write, api, vhost):
    template = "vhosts: {{{vhost}: {{exchanges: {{fan: {{type: {kind}}}}}}}}}\n"
    assert run("apply", write(template.format(vhost=vhost, kind="fanout")), "--auto-approve").code == 0
    connection = connect(vhost)
    try:
        channel = connection.channel()
        queue = channel.queue_declare("", exclusive=True).method.queue
        channel.queue_bind(queue, "fan")
        changed = write(template.format(vhost=vhost, kind="direct"), "changed.yaml")
        plan = run("plan", changed)
        assert "REFUSED: 1 binding(s) to exclusive queues" in plan.out
        result = run("apply", changed, "--auto-approve", "--allow-replace")
        assert result.code == 1 and "exclusive queues" in result.err
        assert {e["name"]: e["type"] for e in api.definitions(vhost)["exchanges"]}["fan"] == "fanout"
    finally:
        connection.close()


def test_replacing_the_last_binding_of_an_auto_delete_exchange_is_refused(run, write, api, vhost):
    template = """
        vhosts:
          {vhost}:
            exchanges: {{ad: {{type: direct, auto_delete: true}}}}
            queues: {{q: {{message_ttl: {ttl}}}}}
            bindings:
              - {{source: ad, destination: q, routing_key: k}}
        """
    assert run("apply", write(template.format(vhost=vhost, ttl="1m")), "--auto-approve").code == 0
    result = run("apply", write(template.format(vhost=vhost, ttl="2m"), "changed.yaml"), "--auto-approve", "--allow-replace")
    assert result.code == 1 and "auto-delete exchange 'ad'" in result.err
    assert api.queue(vhost, "q")["arguments"]["x-message-ttl"] == 60000


def wait_for_statistics(api, vhost: str, queue: str) -> None:
    deadline = time.monotonic() + 30
    while "messages" not in api.get("queues", vhost, queue) and time.monotonic() < deadline:
        time.sleep(0.5)


def test_a_stream_is_not_replaced_while_it_may_hold_data(run, write, api, vhost):
    template = "vhosts: {{{vhost}: {{queues: {{st: {{type: stream, max_age: {age}}}}}}}}}\n"
    assert run("apply", write(template.format(vhost=vhost, age="7D")), "--auto-approve").code == 0
    wait_for_statistics(api, vhost, "st")  # they say 0 messages, and keep saying it for a while after this:
    publish(vhost, "st", [b"a", b"b", b"c"])
    result = run("apply", write(template.format(vhost=vhost, age="8D"), "changed.yaml"), "--auto-approve", "--allow-replace")
    assert result.code == 1
    assert "the stream still holds messages" in result.err
    assert api.queue(vhost, "st")["arguments"]["x-max-age"] == "7D"


def test_an_empty_stream_is_replaced(run, write, api, vhost):
    """Right after a publish, a stream's statistics may still say 0 messages: apply also reads
    the stream itself, so an empty one is replaced and one that holds messages is not."""
    template = "vhosts: {{{vhost}: {{queues: {{st: {{type: stream, max_age: {age}}}}}}}}}\n"
    assert run("apply", write(template.format(vhost=vhost, age="7D")), "--auto-approve").code == 0
    wait_for_statistics(api, vhost, "st")  # without statistics, a stream is never taken to be empty
    result = run("apply", write(template.format(vhost=vhost, age="8D"), "changed.yaml"), "--auto-approve", "--allow-replace")
    assert result.code == 0, result.err
    assert api.queue(vhost, "st")["arguments"]["x-max-age"] == "8D"


def test_a_plugin_exchange_type_that_is_not_enabled_is_refused_before_planning(run, write, vhost):
    path = write(f"vhosts: {{{vhost}: {{exchanges: {{d: {{type: x-not-a-plugin}}}}}}}}\n")
    result = run("plan", path)
    assert result.code == 1
    assert "exchange type 'x-not-a-plugin' is not enabled on the broker" in result.err


def test_a_queue_is_sent_with_the_same_body_alone_in_bulk_and_by_a_migration(run, write, vhost, api):
    """The three ways apply makes a queue (one request, a definitions import, a migration's new
    queue) send one body, recorded on the way to the broker."""
    from tests.faults import FaultProxy
    from tests.integration.test_migration import publish_many, sample_messages
    from topology.apply import ApplyOptions
    from topology.broker.client import ManagementClient
    from topology.engine import apply_plan, make_plan
    from topology.loader import load_valid

    queue = "{type: quorum, max_length: 500, message_ttl: 1h, dead_letter_exchange: dlx, arguments: {x-custom: 1}}"
    text = f"vhosts:\n  {vhost}:\n    queues:\n      q: {queue}\n"
    with FaultProxy() as proxy:
        assert run("apply", write(text, "alone.yaml"), "--auto-approve", "--url", proxy.url).code == 0
        api.delete("queues", vhost, "q")
        topology = load_valid([write(text, "bulk.yaml")])
        client = ManagementClient(proxy.url, *BROKER_AUTH)
        try:
            apply_plan(make_plan(topology, client), client, topology=topology, options=ApplyOptions(bulk_min=1))
        finally:
            client.close()
        api.delete("queues", vhost, "q")
        assert run("apply", write(text.replace("type: quorum", "type: classic"), "classic.yaml"), "--auto-approve").code == 0
        publish_many(vhost, sample_messages(20), exchange="", routing_key="q")
        migrated = run("apply", write(text, "migrated.yaml"), "--auto-approve", "--migrate-messages", "--url", proxy.url)
        assert migrated.code == 0, migrated.err
    puts = [body for method, path, body in proxy.bodies if method == "PUT" and path.endswith(f"/api/queues/{vhost}/q")]
    [imported] = [body for method, path, body in proxy.bodies if method == "POST" and "/api/definitions/" in path]
    [entry] = imported["queues"]
    assert entry.pop("name") == "q"
    assert len(puts) == 2 and puts[0] == puts[1] == entry, (puts, entry)
    assert entry["arguments"]["x-queue-type"] == "quorum" and entry["arguments"]["x-custom"] == 1
