"""Normalisation, diff, plan and rendering: pure code, no broker.

Data-driven where it can be: a desired topology and a live definitions export go in,
the expected changes come out.
"""

from __future__ import annotations

import json

import pytest

from topology.kinds import VhostState
from topology.broker.live import BrokerInfo, definitions_state, vhost_definitions
from topology.diff import diff
from topology.errors import PlanRefused
from topology.loader import load
from topology.plan import QueueFacts, build
from topology.render.json import render_plan as render_json
from topology.render.text import render_plan as render_text
from topology.state import desired_state, State

BROKER = BrokerInfo(url="http://127.0.0.1:15672", version="3.13.7", cluster_name="test")


def desired(write, text: str) -> State:
    return desired_state(load([write(text)]))


def live(definitions: dict, vhost: dict | None = None) -> State:
    state = State()
    entry = {"name": "v", "description": "", "tags": [], "default_queue_type": "undefined", **(vhost or {})}
    state.vhosts["v"] = VhostState.from_definition(entry)
    definitions_state(state.vhosts["v"], definitions, state)
    return state


def plan_of(want: State, have: State, **messages):
    found = diff(want, have)
    counts = messages.get("counts") or {}
    queues = {key: QueueFacts(messages=n) for key, n in counts.items()}
    return build(found, have, vhosts=sorted(want.vhosts), broker=BROKER, queues=queues)


SHOP = """
vhosts:
  v:
    exchanges:
      orders: {type: topic}
      dlx: {type: fanout, alternate_exchange: dlx2}
      dlx2: {type: fanout}
    queues:
      created: {type: quorum, message_ttl: 30s, dead_letter_exchange: dlx, delivery_limit: 5}
      plain: {}
      prio: {max_priority: 10, arguments: {x-custom: 1.0}}
    bindings:
      - {source: orders, destination: created, routing_key: "order.#"}
      - {source: orders, destination: plain, arguments: {b: 1, a: 2}}
    policies:
      ttl: {pattern: "^plain$", definition: {message-ttl: 1m, max-length-bytes: 1KiB}}
"""

SHOP_LIVE = {
    "exchanges": [
        {"name": "orders", "type": "topic", "durable": True, "auto_delete": False, "internal": False, "arguments": {}},
        {"name": "dlx", "type": "fanout", "durable": True, "auto_delete": False, "internal": False,
         "arguments": {"alternate-exchange": "dlx2"}},
        {"name": "dlx2", "type": "fanout", "durable": True, "auto_delete": False, "internal": False},
    ],
    "queues": [
        {"name": "created", "durable": True, "auto_delete": False,
         "arguments": {"x-queue-type": "quorum", "x-message-ttl": 30000, "x-dead-letter-exchange": "dlx",
                       "x-delivery-limit": 5}},
        {"name": "plain", "durable": True, "auto_delete": False, "arguments": {}},  # no x-queue-type: classic
        {"name": "prio", "durable": True, "auto_delete": False,
         "arguments": {"x-max-priority": 10, "x-custom": 1, "x-queue-type": "classic"}},
    ],
    "bindings": [
        {"source": "orders", "destination": "created", "destination_type": "queue", "routing_key": "order.#", "arguments": {}},
        {"source": "orders", "destination": "plain", "destination_type": "queue", "routing_key": "",
         "arguments": {"a": 2, "b": 1}},
        {"source": "", "destination": "plain", "destination_type": "queue", "routing_key": "plain", "arguments": {}},
    ],
    "policies": [
        {"name": "ttl", "pattern": "^plain$", "apply-to": "all", "priority": 0,
         "definition": {"max-length-bytes": 1024, "message-ttl": 60000.0}},
    ],
}


def test_a_matching_broker_plans_to_nothing(write):
    plan = plan_of(desired(write, SHOP), live(SHOP_LIVE))
    assert plan.empty, [c.name for c in plan.changes]
    assert plan.unmanaged == ()


def _modified(**edits):
    data = json.loads(json.dumps(SHOP_LIVE))
    for kind, name, path, value in edits["edits"]:
        entry = next(e for e in data[kind] if e.get("name", e.get("routing_key")) == name)
        target = entry
        for part in path[:-1]:
            target = target.setdefault(part, {})
        if value is None:
            target.pop(path[-1], None)
        else:
            target[path[-1]] = value
    return data


CASES = [
    pytest.param(
        [("queues", "created", ("arguments", "x-message-ttl"), 1000)],
        [("replace", "queue", "created", {"arguments.x-message-ttl": (1000, 30000)})],
        id="queue-argument-changed",
    ),
    pytest.param(
        [("queues", "plain", ("arguments", "x-queue-type"), "quorum")],
        [("replace", "queue", "plain", {"type": ("quorum", "classic")})],
        id="queue-type-changed",
    ),
    pytest.param(
        [("queues", "prio", ("arguments", "x-extra"), True)],
        [("replace", "queue", "prio", {"arguments.x-extra": (True, None)})],
        id="queue-argument-added-behind-the-back",
    ),
    pytest.param(
        [("queues", "plain", ("durable",), False)],
        [("replace", "queue", "plain", {"durable": (False, True)})],
        id="queue-durability",
    ),
    pytest.param(
        [("exchanges", "dlx", ("arguments", "alternate-exchange"), None)],
        [("replace", "exchange", "dlx", {"arguments.alternate-exchange": (None, "dlx2")})],
        id="exchange-argument-removed",
    ),
    pytest.param(
        [("policies", "ttl", ("definition", "message-ttl"), 5)],
        [("update", "policy", "ttl", {"definition.message-ttl": (5, 60000)})],
        id="policy-edited",
    ),
    pytest.param(
        [("policies", "ttl", ("priority",), 3)],
        [("update", "policy", "ttl", {"priority": (3, 0)})],
        id="policy-priority",
    ),
]


@pytest.mark.parametrize("edits, expected", CASES)
def test_changes_behind_the_back_give_exactly_these_changes(write, edits, expected):
    plan = plan_of(desired(write, SHOP), live(_modified(edits=edits)))
    got = [
        (c.action, c.kind, c.name, {k: (f.before, f.after) for k, f in c.fields.items()}) for c in plan.changes
    ]
    assert got == expected


def test_missing_objects_are_created_in_dependency_order(write):
    plan = plan_of(desired(write, SHOP), live({}))
    kinds = [c.kind for c in plan.changes]
    assert kinds == sorted(kinds, key=["vhost", "exchange", "queue", "binding", "policy"].index)
    assert plan.summary() == {"create": 9, "update": 0, "replace": 0, "resume": 0, "delete": 0}


def test_a_missing_vhost_is_created_first(write):
    want = desired(write, SHOP)
    plan = plan_of(want, State())
    assert (plan.changes[0].action, plan.changes[0].kind) == ("create", "vhost")
    assert len(plan.changes) == 10


def test_unmanaged_objects_are_listed_not_deleted(write):
    data = json.loads(json.dumps(SHOP_LIVE))
    data["queues"].append({"name": "stranger", "durable": True, "auto_delete": False, "arguments": {}})
    data["bindings"].append(
        {"source": "dlx2", "destination": "plain", "destination_type": "queue", "routing_key": "", "arguments": {}}
    )
    plan = plan_of(desired(write, SHOP), live(data))
    assert plan.empty
    assert sorted(r.name for r in plan.unmanaged) == ["dlx2 -> queue plain []", "stranger"]


def test_bindings_between_an_owned_pair_are_replaced_not_left_behind(write):
    data = json.loads(json.dumps(SHOP_LIVE))
    data["bindings"][0]["routing_key"] = "old.#"
    plan = plan_of(desired(write, SHOP), live(data))
    assert [(c.action, c.name) for c in plan.changes] == [
        ("create", "orders -> queue created [order.#]"),
        ("delete", "orders -> queue created [old.#]"),
    ]


def test_binding_arguments_are_part_of_the_identity(write):
    data = json.loads(json.dumps(SHOP_LIVE))
    data["bindings"][1]["arguments"] = {"a": 2, "b": 2}
    plan = plan_of(desired(write, SHOP), live(data))
    assert sorted(c.action for c in plan.changes) == ["create", "delete"]


def test_a_replacement_carries_the_bindings_to_recreate(write):
    data = _modified(edits=[("queues", "plain", ("arguments", "x-queue-type"), "quorum")])
    data["bindings"].append(
        {"source": "amq.direct", "destination": "plain", "destination_type": "queue", "routing_key": "x", "arguments": {}}
    )
    plan = plan_of(desired(write, SHOP), live(data))
    (replace,) = plan.replacements
    assert sorted(b.source for b in replace.rebind) == ["amq.direct", "orders"]


def test_replacements_are_refused_without_permission_and_with_messages(write):
    data = _modified(edits=[("queues", "plain", ("arguments", "x-queue-type"), "quorum")])
    plan = plan_of(desired(write, SHOP), live(data))
    with pytest.raises(PlanRefused, match="--allow-replace"):
        plan.check_allowed(allow_replace=False)
    plan.check_allowed(allow_replace=True)
    loaded = plan_of(desired(write, SHOP), live(data), counts={("v", "plain"): 12})
    with pytest.raises(PlanRefused, match="holds 12 message"):
        loaded.check_allowed(allow_replace=True)


def test_vhost_metadata_is_compared_only_where_declared(write):
    want = desired(write, "vhosts: {v: {description: shop, queues: {}}}")
    same = live({}, {"description": "shop", "tags": ["x"]})
    assert plan_of(want, same).empty
    other = live({}, {"description": "old", "tags": ["x"]})
    (change,) = plan_of(want, other).changes
    assert change.action == "update"
    assert change.after.tags == ("x",)  # tags not declared: kept as they are
    assert {k: (f.before, f.after) for k, f in change.fields.items()} == {"description": ("old", "shop")}


def test_default_queue_type_on_old_brokers_is_a_note_not_a_change(write):
    want = desired(write, "vhosts: {v: {default_queue_type: quorum}}")
    found = diff(want, live({}), stores_default_queue_type=True, updates_default_queue_type=False)
    assert found.changes == []
    assert any("default_queue_type" in note for note in found.notes)


def test_broker_injected_queue_type_is_not_a_change(write):
    want = desired(write, "vhosts: {v: {default_queue_type: quorum, queues: {q: {}}}}")
    have = live({"queues": [{"name": "q", "durable": True, "auto_delete": False, "arguments": {}}]},
                {"default_queue_type": "quorum"})
    assert diff(want, have).changes == []


def test_json_plan_has_the_documented_shape(write):
    data = _modified(edits=[("policies", "ttl", ("priority",), 3)])
    data["queues"].append({"name": "stranger", "durable": True, "auto_delete": False, "arguments": {}})
    document = json.loads(render_json(plan_of(desired(write, SHOP), live(data))))
    assert document["format_version"] == 1
    assert document["broker"] == {"url": BROKER.url, "version": "3.13.7", "cluster_name": "test"}
    (change,) = document["changes"]
    assert {"action", "kind", "vhost", "name", "diff", "reason", "identity", "before", "after"} <= set(change)
    assert change["diff"] == {"priority": {"before": 3, "after": 0}}
    assert document["summary"] == {"create": 0, "update": 1, "replace": 0, "resume": 0, "delete": 0, "unmanaged": 1}
    assert document["unmanaged"] == [{"kind": "queue", "vhost": "v", "name": "stranger", "protected": None}]


def test_text_plan_reads_like_a_plan(write):
    data = _modified(edits=[("policies", "ttl", ("priority",), 3),
                            ("queues", "plain", ("arguments", "x-queue-type"), "quorum")])
    data["bindings"][0]["routing_key"] = "old.#"
    text = render_text(plan_of(desired(write, SHOP), live(data)))
    assert "  ~ policy ttl" in text
    assert "        priority: 3 -> 0" in text
    assert "  -/+ queue plain" in text
    assert "        type: quorum -> classic" in text
    assert "  + binding orders -> queue created [order.#]" in text
    assert "  - binding orders -> queue created [old.#]" in text
    assert text.splitlines()[-1] == "Plan: 1 to create, 1 to update, 1 to replace, 1 to delete."


def test_empty_plan_text(write):
    text = render_text(plan_of(desired(write, SHOP), live(SHOP_LIVE)))
    assert text.splitlines()[-1] == "No changes. The broker matches the files."


def test_one_vhost_is_cut_from_the_whole_brokers_export_in_the_shape_of_its_own():
    whole = {
        "vhosts": [{"name": "é"}, {"name": "other"}],
        "queues": [{"name": "q", "vhost": "é", "durable": True, "arguments": {}},
                   {"name": "q", "vhost": "other", "durable": False, "arguments": {}}],
        "exchanges": [{"name": "x", "vhost": "é", "type": "topic"}],
        "bindings": [{"source": "x", "vhost": "é", "destination": "q", "destination_type": "queue", "routing_key": "k",
                      "arguments": {}}],
        "policies": [{"name": "p", "vhost": "other", "pattern": ".*", "definition": {}}],
        "users": [{"name": "guest"}],
    }
    cut = vhost_definitions(whole, "é")
    assert cut == {"queues": [{"name": "q", "durable": True, "arguments": {}}], "exchanges": [{"name": "x", "type": "topic"}],
                   "bindings": [{"source": "x", "destination": "q", "destination_type": "queue", "routing_key": "k",
                                 "arguments": {}}], "policies": [], "parameters": []}
    assert vhost_definitions(whole, "missing") is None
    assert vhost_definitions({}, "é") is None


def test_broker_version_parsing():
    assert BrokerInfo("u", "3.10.8", "c").version_tuple == (3, 10, 8)
    assert BrokerInfo("u", "4.0", "c").version_tuple == (4, 0, 0)
    assert BrokerInfo("u", "", "c").version_tuple == ()
    assert BrokerInfo("u", "3.13.0+rc.4", "c").version_tuple == (3, 13, 0)
    assert BrokerInfo("u", "4.1.0-beta.2", "c").version_tuple == (4, 1, 0)
    assert not BrokerInfo("u", "3.10.7", "c").stores_default_queue_type


def test_internal_exchanges_the_export_leaves_out_are_taken_from_the_exchange_list():
    from topology.broker.live import with_internal_exchanges

    listed = [{"vhost": "v", "name": n, "type": "direct", "durable": True, "auto_delete": False, "internal": i,
               "arguments": {}} for n, i in (("", False), ("amq.rabbitmq.trace", True), ("shown", False),
                                             ("inner", True), ("x", False))]
    one = with_internal_exchanges({"exchanges": [{"name": "shown", "type": "direct"}]}, listed)
    assert [e["name"] for e in one["exchanges"]] == ["shown", "inner"] and "vhost" not in one["exchanges"][1]
    whole = with_internal_exchanges({"exchanges": [{"vhost": "v", "name": "inner", "internal": True}]}, listed, whole=True)
    assert [e["name"] for e in whole["exchanges"]] == ["inner"]  # already shown (4.0.5): not twice


def test_control_characters_in_names_are_made_visible_and_only_the_plans_own_colours_stay():
    import re

    from topology.diff import CREATE, Change
    from topology.plan import Plan
    from topology.kinds import QueueState
    from topology.terminal import visible

    assert visible("a\x1b[2Jb\x00\x07\tc\nd\x7f\x85é") == "a\\u001b[2Jb\\u0000\\u0007\tc\nd\\u007f\\u0085é"
    assert json.loads(visible(json.dumps("x\x7f\x85", ensure_ascii=False))) == "x\x7f\x85"  # same JSON value
    plan = Plan(changes=(Change(CREATE, None, QueueState(vhost="v", queue="q\x1b[2J\x1b]0;t\x07", type="classic")),),
                vhosts=("v",))
    coloured = render_text(plan, colour=True)
    assert re.sub(r"\x1b\[\d+m", "", coloured) == render_text(plan)  # nothing but colours added
    assert "\x07" not in coloured and "q\\u001b[2J\\u001b]0;t\\u0007" in coloured
    assert coloured.count("\x1b[") == 2  # the head's colour and its reset


def test_a_plan_does_not_depend_on_the_order_the_broker_lists_its_objects_in(write):
    """The lists are read unsorted where the broker allows it (3.10-3.12), and the export was never
    sorted: the same objects in any order plan the same, the example of a kept binding included."""
    import random

    from topology.render.json import render_plan as render

    files = SHOP.replace("    policies:", "    ignore: ['keep*']\n    policies:")
    data = json.loads(json.dumps(SHOP_LIVE))
    data["queues"] += [{"name": name, "durable": True, "auto_delete": False, "arguments": {}}
                       for name in ("stranger", "keep-me")]
    data["exchanges"].append({"name": "gone", "type": "direct", "durable": True, "auto_delete": False,
                              "internal": False, "arguments": {}})
    data["bindings"] += [{"source": source, "destination": destination, "destination_type": "queue",
                          "routing_key": key, "arguments": {}}
                         for source, destination in (("orders", "stranger"), ("gone", "keep-me"))
                         for key in ("b", "a", "c")]
    shown = set()
    for seed in range(8):
        shuffled = {section: random.Random(seed).sample(entries, len(entries)) for section, entries in data.items()}
        found = diff(desired(write, files), live(shuffled), prune=True)
        plan = build(found, live(shuffled), vhosts=["v"], broker=BROKER, queues={}, prune=True)
        shown.add((render(plan), repr(sorted(found.protected.items()))))
    assert len(shown) == 1
    assert [why for why in found.protected.values() if "e.g." in why] == [
        "deleting it would drop 3 binding(s) that are kept, e.g. gone -> queue keep-me [a]"]
