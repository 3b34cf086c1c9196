"""The pure parts of safe apply: protection rules, the migration record, saved plans,
staleness, the permission gates, message property stashing and policy matching."""

from __future__ import annotations

import json

import pika
import pytest

from topology.broker.amqp import STASH_HEADER, stash, unstash
from topology.kinds import VhostState
from topology.broker.live import BrokerInfo, definitions_state
from topology.diff import diff
from topology.errors import PlanRefused, TopologyError
from topology.loader import load
from topology.migrate import winning_policies
from topology.plan import QueueFacts, build, load_saved_plan, saved_plan, stale_changes
from topology.kinds import BindingState, QueueState
from topology.migration_record import migration_queue_name, MigrationRecord
from topology.state import desired_state, State

BROKER = BrokerInfo(url="http://127.0.0.1:15672", version="3.10.8", cluster_name="rabbit@test")

FILES = """
vhosts:
  v:
    ignore: ["app.*"]
    exchanges:
      orders: {type: topic}
    queues:
      work: {message_ttl: 1h}
    bindings:
      - {source: orders, destination: work, routing_key: "a.#"}
"""


def live(definitions: dict) -> State:
    state = State()
    state.vhosts["v"] = VhostState.from_definition({"name": "v", "description": "", "tags": [], "default_queue_type": "undefined"})
    definitions_state(state.vhosts["v"], definitions, state)
    return state


def queue(name: str, **arguments) -> dict:
    return {"name": name, "durable": True, "auto_delete": False, "arguments": arguments}


def binding(source: str, destination: str, routing_key: str = "", destination_type: str = "queue") -> dict:
    return {"source": source, "destination": destination, "destination_type": destination_type,
            "routing_key": routing_key, "arguments": {}}


BASE = {
    "exchanges": [{"name": "orders", "type": "topic", "durable": True, "auto_delete": False, "internal": False,
                   "arguments": {}}],
    "queues": [queue("work", **{"x-message-ttl": 3600000})],
    "bindings": [binding("orders", "work", "a.#")],
}


def with_(**extra) -> dict:
    data = json.loads(json.dumps(BASE))
    for kind, entries in extra.items():
        data.setdefault(kind, []).extend(entries)
    return data


def planned(write, definitions: dict, prune: bool = True, files: str = FILES, **facts):
    want = desired_state(load([write(files)]))
    have = live(definitions)
    return build(diff(want, have, prune=prune), have, vhosts=["v"], broker=BROKER, queues=facts.get("queues"),
                 prune=prune)


# -- pruning and its protections ---------------------------------------------------------


@pytest.mark.parametrize("name, arguments, why", [
    ("amq.gen-Xy12", {}, "server-named"),
    ("amq.reserved", {}, "a reserved amq.* name"),
    ("federation: orders -> rabbit@b", {}, "used by federation"),
    ("fed.internal", {"x-internal-purpose": "federation"}, "internal to a plugin (federation)"),
])
def test_protected_queues_are_never_pruned(write, name, arguments, why):
    plan = planned(write, with_(queues=[queue(name, **arguments)]))
    assert plan.empty
    assert [(r.name, plan.protected[r.key]) for r in plan.unmanaged] == [(name, why)]


def test_ignored_objects_are_neither_pruned_nor_listed(write):
    plan = planned(write, with_(
        queues=[queue("app.inbox")],
        exchanges=[{"name": "app.events", "type": "fanout", "durable": True, "auto_delete": False, "internal": False,
                    "arguments": {}}],
        bindings=[binding("app.events", "work", "x"), binding("orders", "app.inbox", "y")],
        policies=[{"name": "app.limits", "pattern": "^app", "apply-to": "queues", "priority": 0,
                   "definition": {"max-length": 5}}],
    ))
    assert plan.empty and not plan.unmanaged


def test_queues_and_exchanges_named_by_a_shovel_are_protected(write):
    shovel = {"component": "shovel", "name": "to-dc2", "vhost": "v",
              "value": {"src-queue": "outbox", "dest-exchange": "remote.in", "src-uri": "amqp://"}}
    plan = planned(write, with_(queues=[queue("outbox")], parameters=[shovel]))
    assert plan.empty and plan.protected[("queue", "v", "outbox")] == "used by shovel 'to-dc2'"
    assert {r.kind for r in plan.unmanaged} == {"queue"}  # the files name no shovels: the vhost's are not theirs
    # a file that names the vhost's shovels (even none) owns them: --prune deletes the undeclared one, only it
    owned = FILES + "    shovels: {}\n"
    plan = planned(write, with_(queues=[queue("outbox")], parameters=[shovel]), files=owned)
    assert [(c.action, c.kind, c.name) for c in plan.changes] == [("delete", "shovel", "to-dc2")]
    kept = planned(write, with_(queues=[queue("outbox")], parameters=[shovel]), prune=False, files=owned)
    assert kept.empty and {r.kind for r in kept.unmanaged} == {"queue", "shovel"}
    # a protected shovel (RabbitMQ 4.2+, internal) is never pruned, and a shovel matching ignore: is not even listed
    internal = {**shovel, "name": "owned-by-plugin", "value": {**shovel["value"], "internal": True}}
    ignored = {**shovel, "name": "app.mover"}
    plan = planned(write, with_(queues=[queue("outbox")], parameters=[shovel, internal, ignored]), files=owned)
    assert [(c.action, c.name) for c in plan.changes] == [("delete", "to-dc2")]
    assert plan.protected[("shovel", "v", "owned-by-plugin")] == "internal to a plugin (a protected shovel)"
    assert "app.mover" not in {r.name for r in plan.unmanaged}


def test_prune_deletes_the_rest_in_reverse_dependency_order(write):
    plan = planned(write, with_(
        queues=[queue("stray")],
        bindings=[binding("amq.direct", "stray", "k")],
        policies=[{"name": "p", "pattern": "^x$", "apply-to": "all", "priority": 0, "definition": {"max-length": 1}}],
    ), queues={("v", "stray"): QueueFacts(messages=4, consumers=0)})
    assert [(c.action, c.kind, c.name) for c in plan.changes] == [
        ("delete", "policy", "p"), ("delete", "binding", "amq.direct -> queue stray [k]"), ("delete", "queue", "stray"),
    ]
    assert plan.changes[2].messages == 4
    with pytest.raises(PlanRefused, match="holds 4 message.*--allow-data-loss"):
        plan.check_allowed()
    plan.check_allowed(allow_data_loss=True)
    assert not planned(write, with_(queues=[queue("stray")]), prune=False).changes


def test_a_queue_with_consumers_is_a_hazard_even_with_allow_data_loss(write):
    plan = planned(write, with_(queues=[queue("stray")]), queues={("v", "stray"): QueueFacts(messages=0, consumers=2)})
    with pytest.raises(PlanRefused, match="2 consumer"):
        plan.check_allowed(allow_data_loss=True)


# -- replacements and migrations ---------------------------------------------------------


def test_migrate_messages_allows_queue_replacements_that_hold_messages(write):
    changed = with_()
    changed["queues"] = [queue("work")]  # the TTL differs: a replacement
    plan = planned(write, changed, prune=False, queues={("v", "work"): QueueFacts(messages=7)})
    with pytest.raises(PlanRefused, match="holds 7 message.*--migrate-messages"):
        plan.check_allowed(allow_replace=True)
    plan.check_allowed(migrate_messages=True)


def test_an_interrupted_migration_becomes_a_resume_of_its_queue(write):
    target = QueueState(vhost="v", queue="work", arguments={"x-message-ttl": 3600000})
    record = MigrationRecord("v", "work", target, (BindingState(vhost="v", source="orders", destination="work",
                                                                 routing_key="a.#"),))
    temporary = migration_queue_name("work")
    data = with_(queues=[queue(temporary, **{"x-queue-type": "classic", "topology-migration": record.to_argument()})],
                 bindings=[binding("orders", temporary, "a.#")])
    data["queues"] = [q for q in data["queues"] if q["name"] != "work"]  # the crash came after deleting it
    data["bindings"] = [b for b in data["bindings"] if b["destination"] != "work"]
    plan = planned(write, data, queues={("v", temporary): QueueFacts(messages=12)})
    assert [(c.action, c.kind, c.name) for c in plan.changes] == [
        ("resume", "queue", "work"), ("create", "binding", "orders -> queue work [a.#]"),
    ]
    assert plan.changes[0].messages == 12 and not plan.unmanaged  # the temporary queue is not pruned
    plan.check_allowed()  # finishing needs no flag


def test_a_migration_record_survives_its_round_trip():
    target = QueueState(vhost="v", queue="q/ü", type="quorum", arguments={"x-max-length": 10})
    record = MigrationRecord("v", "q/ü", target, (BindingState(vhost="v", source="e", destination="q/ü",
                                                               routing_key="k", arguments={"x-match": "all"}),))
    assert MigrationRecord.from_argument("v", record.to_argument()) == record
    assert MigrationRecord.from_argument("v", "not json") is None
    assert MigrationRecord.from_argument("v", json.dumps({"version": 2, "queue": "q"})) is None
    assert len(migration_queue_name("x" * 255).encode()) <= 255


def test_stash_keeps_a_transient_message_its_own_properties():
    for original in (
        pika.BasicProperties(delivery_mode=1, headers={"a": 1}),
        pika.BasicProperties(),
        pika.BasicProperties(delivery_mode=1, headers={}),
    ):
        stashed = stash(original)
        assert stashed.delivery_mode == 2 and STASH_HEADER in stashed.headers
        back = unstash(stashed)
        assert (back.delivery_mode, back.headers) == (original.delivery_mode, original.headers)
    persistent = pika.BasicProperties(delivery_mode=2, headers={"a": 1})
    assert stash(persistent) is persistent and unstash(persistent) is persistent


def test_a_publishers_own_stash_or_seal_header_is_never_taken_for_the_tools():
    """A publisher can write any header: one named like the tool's stash header comes back as it
    was, and a seal header is recognised only with the migration's own random token."""
    from topology.broker.amqp import SEAL_HEADER, is_seal, seal_value

    token = "5f3a9c"
    forged = {"delivery-mode": 2, "headers": False}
    for original in (pika.BasicProperties(delivery_mode=1, headers={STASH_HEADER: forged, "b": 2}),
                     pika.BasicProperties(delivery_mode=2, headers={STASH_HEADER: "mine"}),
                     pika.BasicProperties(delivery_mode=1, headers={STASH_HEADER: {"token": "", **forged}})):
        moved = stash(original, token)
        assert moved.delivery_mode == 2
        back = unstash(moved, token)
        assert (back.delivery_mode, back.headers) == (original.delivery_mode, original.headers)
        assert unstash(original, token) is original  # never stashed by this migration: left alone
    assert not is_seal(pika.BasicProperties(headers={SEAL_HEADER: seal_value("v", "q")}), "v", "q", token)
    assert is_seal(pika.BasicProperties(headers={SEAL_HEADER: seal_value("v", "q", token)}), "v", "q", token)
    record = MigrationRecord("v", "q", QueueState(vhost="v", queue="q", type="quorum"), token=token)
    assert MigrationRecord.from_argument("v", record.to_argument()).token == token


def test_the_winning_policy_decides_what_applies_to_the_temporary_queue():
    policies = [
        {"name": "ttl", "pattern": ".*", "apply-to": "all", "priority": 0, "definition": {"message-ttl": 1}},
        {"name": "top", "pattern": "^topology", "apply-to": "queues", "priority": 5, "definition": {"ha-mode": "all"}},
        {"name": "ex", "pattern": ".*", "apply-to": "exchanges", "priority": 9, "definition": {}},
    ]
    assert [p["name"] for p in winning_policies("topology.migrate.q", policies)] == ["top"]
    assert [p["name"] for p in winning_policies("other", policies)] == ["ttl"]
    assert [p["name"] for p in winning_policies("x", [{"name": "bad", "pattern": "(", "definition": {}}])] == ["bad"]


# -- saved plans ---------------------------------------------------------------------------


def test_a_saved_plan_reads_back_to_the_same_plan(write):
    changed = with_(queues=[queue("stray")])
    changed["queues"][0] = queue("work")
    plan = planned(write, changed, queues={("v", "work"): QueueFacts(messages=0)})
    document = json.loads(json.dumps(saved_plan(plan)))
    again = load_saved_plan(document, "plan.json")
    assert again.changes == plan.changes and again.vhosts == plan.vhosts and again.prune
    assert [c.fields for c in again.changes] == [c.fields for c in plan.changes]
    assert again.broker is not None and again.broker.cluster_name == "rabbit@test"


def test_fingerprints_made_apart_give_the_plan_build_makes(write):
    """A plan fingerprints its changes while it reads their facts: the plan is the one build makes
    alone, each fingerprint the diff's change's own (replaced, deleted, created and updated ones)."""
    from topology.plan import fingerprint, fingerprints

    changed = with_(queues=[queue("stray"), queue("app.kept")], bindings=[binding("orders", "stray", "s")])
    changed["queues"][0] = queue("work")  # its TTL gone: replaced, with its binding re-made
    want = desired_state(load([write(FILES)]))
    have = live(changed)
    found = diff(want, have, prune=True)
    made = fingerprints(found, have)
    assert made.index is not None and len(made.digests) == len(found.changes)
    assert made.digests == [fingerprint(have, change) for change in found.changes]
    alone = build(found, have, vhosts=["v"], broker=BROKER, prune=True)
    apart = build(diff(want, have, prune=True), have, vhosts=["v"], broker=BROKER, prune=True, fingerprinted=made)
    assert {c.action for c in apart.changes} >= {"replace", "delete"}
    assert apart.changes == alone.changes
    assert [c.fingerprint for c in apart.changes] == [c.fingerprint for c in alone.changes]


def test_staleness_names_what_changed(write):
    changed = with_()
    changed["queues"][0] = queue("work")
    plan = planned(write, changed, prune=False)
    assert stale_changes(plan, live(changed)) == []
    now = json.loads(json.dumps(changed))
    now["queues"][0]["arguments"]["x-max-length"] = 3
    assert stale_changes(plan, live(now)) == [
        "queue v/work: changed since the plan was made (arguments.x-max-length (none) -> 3)"
    ]
    rebound = with_(bindings=[binding("amq.direct", "work", "new")])
    rebound["queues"][0] = queue("work")
    assert stale_changes(plan, live(rebound)) == [
        "queue v/work: its bindings or its migration changed since the plan was made"
    ]


def test_plan_files_that_are_not_ours_are_refused():
    with pytest.raises(TopologyError, match="not a plan file"):
        load_saved_plan([], "x.json")
    with pytest.raises(TopologyError, match="plan format 99"):
        load_saved_plan({"format_version": 99}, "x.json")
    with pytest.raises(PlanRefused, match="modified"):
        load_saved_plan({"format_version": 1, "digest": "0"}, "x.json")


@pytest.mark.parametrize("details, arguments, refusal", [
    ({"consumers": 0, "messages": 3}, {}, None),
    ({"consumers": 1, "messages": 3}, {}, "1 consumer"),  # a quorum queue's exact count may read 0
    ({"consumers": 0, "messages_unacknowledged": 2}, {}, "2 unacknowledged"),
    ({"type": "stream", "messages": 0}, {}, "stream v/q cannot be migrated"),
    ({"messages": 11}, {"x-max-length": 10}, "more than the new x-max-length 10"),
    ({"messages": 11}, {"x-max-length": 10, "x-overflow": "reject-publish"}, None),  # a refusal, never a drop
    ({"messages": 1, "message_bytes": 2048}, {"x-max-length-bytes": 1024}, "more than the new x-max-length-bytes"),
])
def test_a_migration_that_could_lose_messages_is_refused_before_it_starts(details, arguments, refusal):
    from topology.migrate import MigrationRefused, preflight

    target = QueueState(vhost="v", queue="q", arguments=arguments)
    if refusal is None:
        preflight(details, target, (0, 0))
    else:
        with pytest.raises(MigrationRefused, match=refusal):
            preflight(details, target, (0, 0))
    with pytest.raises(MigrationRefused, match="4 consumer"):
        preflight({"consumers": 0}, target, (0, 4))  # exact AMQP counts win over lagging statistics
    with pytest.raises(MigrationRefused, match="1 consumer"):
        preflight({"consumers": 1}, target, None)  # without an exact count, the statistics
