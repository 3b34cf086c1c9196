"""The routing simulator, offline: each rule of RabbitMQ's routing on small cases (the
integration tests check it against the broker itself on generated topologies)."""

from __future__ import annotations

import textwrap

import pytest

from topology.engine import load_valid
from topology.route import Message, RouteError, amqp_equal, headers_match, route, topic_matches
from topology.state import desired_state


@pytest.mark.parametrize("binding, key, expected", [
    ("a.b", "a.b", True), ("a.b", "a.c", False), ("a.*", "a.b", True), ("a.*", "a", False),
    ("a.*", "a.b.c", False), ("a.#", "a", True), ("a.#", "a.b.c", True), ("#", "", True), ("#", "a.b", True),
    ("*", "", False), ("*", "a", True), ("", "", True), ("", "a", False), ("a.*", "a.", True),
    ("*.*", ".", True), ("#.a", "a", True), ("#.a", "b.a", True), ("#.a", "b.a.c", False),
    ("a.#.b", "a.b", True), ("a.#.b", "a.x.y.b", True), ("#.#", "", True), ("*.#", "", False),
    ("#.*", "a", True), ("a..b", "a..b", True), ("a.*.b", "a..b", True), ("a.#", "a.", True),
    ("a", "a.", False), ("*.b.#", "x.b", True), ("#.b.#", "b", True), ("#.b.#", "a.c", False),
])
def test_topic_keys_match_as_rabbitmq_splits_and_matches_them(binding, key, expected):
    assert topic_matches(binding, key) is expected


@pytest.mark.parametrize("arguments, headers, expected", [
    ({"x-match": "all", "a": 1, "b": "x"}, {"a": 1, "b": "x", "c": 3}, True),
    ({"x-match": "all", "a": 1, "b": "x"}, {"a": 1}, False),
    ({"x-match": "any", "a": 1, "b": "x"}, {"a": 2, "b": "x"}, True),
    ({"x-match": "any", "a": 1}, {"a": 2}, False),
    ({"a": 1}, {"a": 1}, True),  # no x-match: all
    ({"x-match": "all"}, {}, True),  # nothing to match: all matches, any does not
    ({"x-match": "any"}, {"a": 1}, False),
    ({"x-match": "all", "a": 10}, {"a": 10.0}, True),  # Erlang ==: numbers by value
    ({"x-match": "all", "a": 10}, {"a": "10"}, False),
    ({"x-match": "all", "a": True}, {"a": 1}, False),
    ({"x-match": "all", "a": None}, {"a": "anything"}, True),  # void: presence only
    ({"x-match": "all", "a": None}, {}, False),
    ({"x-match": "all", "x-k": 1}, {}, True),  # x- arguments do not count...
    ({"x-match": "all-with-x", "x-k": 1}, {}, False),  # ...unless -with-x
    ({"x-match": "any-with-x", "x-k": 1}, {"x-k": 1}, True),
    ({"x-match": "any", "x-k": 1}, {"x-k": 1}, False),
])
def test_header_bindings_match_as_the_broker_compares_them(arguments, headers, expected):
    assert headers_match(arguments, headers) is expected


def test_values_compare_by_value_before_3_13_and_exactly_from_it():
    assert amqp_equal(1, 1.0) and not amqp_equal(1, 1.0, exact=True) and amqp_equal(1, 1, exact=True)
    assert headers_match({"a": 10}, {"a": 10.0}) is True
    assert headers_match({"a": 10}, {"a": 10.0}, exact=True) is False


def test_an_array_or_table_binding_value_is_uncertain():
    # the broker compares element type tags, which depend on the publishing client
    assert headers_match({"tags": [1, 2]}, {"tags": [1, 2]}) is None
    assert headers_match({"x-match": "any", "tags": [1], "k": "v"}, {"tags": [1], "k": "v"}) is True
    assert headers_match({"tags": [1]}, {"tags": "1"}) is False


TOPOLOGY = """
vhosts:
  shop:
    exchanges:
      events: {type: topic, alternate_exchange: unrouted}
      unrouted: {type: fanout}
      inner: {type: direct, internal: true}
      loop-a: {type: fanout}
      loop-b: {type: fanout}
      by-header: {type: headers}
      missing-ae: {type: direct, alternate_exchange: nowhere}
      dlx: {type: direct}
    queues:
      orders: {dead_letter_exchange: dlx, dead_letter_routing_key: dead}
      audit: {}
      lost: {}
      dead: {message_ttl: 1000, dead_letter_exchange: dlx, dead_letter_routing_key: retry}
      retry: {message_ttl: 1000, dead_letter_exchange: dlx, dead_letter_routing_key: dead}
      pdfs: {}
    bindings:
      - {source: events, destination: orders, routing_key: "order.#"}
      - {source: events, destination: inner, destination_type: exchange, routing_key: "order.*"}
      - {source: inner, destination: orders, routing_key: order.created}
      - {source: inner, destination: audit, routing_key: order.created}
      - {source: unrouted, destination: lost}
      - {source: loop-a, destination: loop-b, destination_type: exchange}
      - {source: loop-b, destination: loop-a, destination_type: exchange}
      - {source: loop-b, destination: audit}
      - {source: by-header, destination: pdfs, arguments: {x-match: any, kind: pdf, size: 10}}
      - {source: dlx, destination: dead, routing_key: dead}
      - {source: dlx, destination: retry, routing_key: retry}
"""


@pytest.fixture
def state(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(textwrap.dedent(TOPOLOGY), encoding="utf-8")
    return desired_state(load_valid([str(path)], offline=True))


def test_a_queue_reached_twice_receives_the_message_once_by_the_first_path(state):
    result = route(state, "shop", Message("events", "order.created"))
    assert result.queues == ["orders", "audit"]
    orders, audit = result.deliveries
    assert [h.to_dict() for h in orders.path] == [{"exchange": "events", "via": "binding", "binding_key": "order.#"}]
    assert [(h.exchange, h.routing_key) for h in audit.path] == [("events", "order.*"), ("inner", "order.created")]


def test_the_alternate_exchange_takes_what_the_bindings_do_not_match(state):
    assert route(state, "shop", Message("events", "invoice.paid")).queues == ["lost"]
    # a match through an exchange that then routes nowhere still counts as a match: no alternate
    assert route(state, "shop", Message("events", "order.cancelled")).queues == ["orders"]
    missing = route(state, "shop", Message("missing-ae", "x"))
    assert missing.queues == [] and "'nowhere'" in missing.dropped[0]


def test_exchange_loops_end_and_internal_exchanges_refuse_publishes(state):
    assert route(state, "shop", Message("loop-a")).queues == ["audit"]
    refused = route(state, "shop", Message("inner", "order.created"))
    assert refused.queues == [] and "internal" in refused.refused


def test_the_default_exchange_cc_and_bcc_headers(state):
    assert route(state, "shop", Message("", "audit")).queues == ["audit"]
    assert route(state, "shop", Message("", "nope")).queues == []
    cc = route(state, "shop", Message("", "audit", {"CC": ["pdfs"], "BCC": ["lost"]}))
    assert sorted(cc.queues) == ["audit", "lost", "pdfs"]
    # BCC is gone before a headers exchange looks
    assert route(state, "shop", Message("by-header", "", {"BCC": ["x"], "kind": "pdf"})).queues == ["pdfs"]
    assert route(state, "shop", Message("by-header", "", {"size": "10"})).queues == []


def test_dead_letters_follow_the_dead_letter_exchange_and_expiry_cycles_end(state):
    result = route(state, "shop", Message("events", "order.created"), dead_letter="expired")
    orders = result.deliveries[0]
    assert orders.dead_letter.queues == ["dead"] and orders.dead_letter.routing_keys == ["dead"]
    dead = orders.dead_letter.deliveries[0]
    assert dead.dead_letter.queues == ["retry"]
    retry = dead.dead_letter.deliveries[0]
    assert retry.dead_letter.queues == [] and "already died there" in retry.dead_letter.cycles[0]
    rejected = route(state, "shop", Message("events", "order.created"), dead_letter="rejected")
    retry = rejected.deliveries[0].dead_letter.deliveries[0].dead_letter.deliveries[0]
    assert retry.dead_letter.queues == ["dead"] and "comes back each time" in retry.dead_letter.cycles[0]
    assert result.deliveries[1].dead_letter is None  # audit has no dead-letter exchange


def test_an_undeclared_vhost_or_exchange_is_an_error(state):
    with pytest.raises(RouteError, match="no exchange 'nope'"):
        route(state, "shop", Message("nope"))
    with pytest.raises(RouteError, match="vhost 'other'"):
        route(state, "other", Message("events"))
    assert route(state, "shop", Message("amq.topic", "x")).queues == []  # built in


def test_the_route_command_reads_header_values_as_json_and_prints_a_queues_list(tmp_path, capsys):
    import json

    from topology.cli import main

    path = tmp_path / "t.yaml"
    path.write_text(textwrap.dedent(TOPOLOGY), encoding="utf-8")

    def run(*arguments: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exit_:
            main(["route", str(path), "--vhost", "shop", *arguments])
        out, err = capsys.readouterr()
        return exit_.value.code, out, err

    code, out, _ = run("--exchange", "by-header", "--header", "size=10", "--format", "json")
    assert code == 0 and [q["name"] for q in json.loads(out)["queues"]] == ["pdfs"]
    code, out, _ = run("--exchange", "by-header", "--header", 'size="10"', "--format", "json")
    assert code == 0 and json.loads(out)["queues"] == []
    code, out, _ = run("--exchange", "events", "--routing-key", "order.created")
    assert code == 0 and "audit: events --[order.*]--> inner --[order.created]--> audit" in out
    code, out, err = run("--exchange", "nope")
    assert code == 1 and err.strip().endswith("\nerror: vhost 'shop' has no exchange 'nope' in the files")
    code, out, err = run("--exchange", "events", "--header", "novalue")
    assert code != 0 and "'novalue' is not KEY=VALUE" in err


def test_routing_tests_name_declared_objects(tmp_path):
    from topology.errors import ConfigError

    path = tmp_path / "t.yaml"
    path.write_text(textwrap.dedent(TOPOLOGY) + textwrap.dedent("""
    tests:
      - {vhost: nope, exchange: events, queues: []}
      - {vhost: shop, exchange: nope, queues: [orders, ghost, orders]}
      - {vhost: shop, exchange: inner, refused: true, queues: [audit]}
      - {vhost: shop, exchange: by-header, headers: {h: null, bad: [null]}, queues: []}
      - {vhost: shop, exchange: amq.topic, queues: []}
    """), encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_valid([str(path)], offline=True)
    messages = sorted(f"{p.location}: {p.message}" for p in error.value.problems)
    assert messages == sorted([
        "test #1 vhost: vhost 'nope' is not declared",
        "test #2 exchange: exchange 'nope' is not declared in vhost 'shop'",
        "test #2 queues #2: queue 'ghost' is not declared in vhost 'shop'",
        "test #2 queues: a queue is listed twice",
        "test #3 queues: a refused publish reaches no queue: leave queues empty",
        "test #4 headers.bad: null is not a value the broker accepts",
    ])


def test_topology_test_runs_offline_and_exits_2_on_a_failure(tmp_path, capsys):
    import json

    from topology.cli import main

    path = tmp_path / "t.yaml"
    path.write_text(textwrap.dedent(TOPOLOGY) + textwrap.dedent("""
    tests:
      - {name: orders, vhost: shop, exchange: events, routing_key: order.created, queues: [orders, audit]}
      - {name: wrong, vhost: shop, exchange: events, routing_key: invoice, queues: [orders]}
    """), encoding="utf-8")
    with pytest.raises(SystemExit) as exit_:
        main(["test", str(path)])
    out = capsys.readouterr().out
    assert exit_.value.code == 2
    assert out.splitlines()[0] == "PASS orders"
    assert "expected: orders" in out and "reached:  lost" in out and "1 passed, 1 failed (simulated)" in out
    with pytest.raises(SystemExit) as exit_:
        main(["test", str(path), "--format", "json"])
    document = json.loads(capsys.readouterr().out)
    assert exit_.value.code == 2 and [t["passed"] for t in document["tests"]] == [True, False]
    empty = tmp_path / "empty.yaml"
    empty.write_text(textwrap.dedent(TOPOLOGY), encoding="utf-8")
    with pytest.raises(SystemExit) as exit_:
        main(["test", str(empty)])
    assert exit_.value.code == 1 and "no routing test" in capsys.readouterr().err


PLUGINS = """
vhosts:
  v:
    exchanges:
      hash: {type: x-consistent-hash, alternate_exchange: ae}
      ae: {type: fanout}
      h: {type: headers}
    queues: {a: {}, b: {}, lost: {}}
    bindings:
      - {source: hash, destination: a, routing_key: "1"}
      - {source: hash, destination: b, routing_key: "1"}
      - {source: ae, destination: lost}
      - {source: h, destination: a, arguments: {tags: [1, 2]}}
tests:
  - {vhost: v, exchange: hash, routing_key: k, queues: [lost]}
  - {vhost: v, exchange: h, headers: {tags: [1, 2]}, queues: [a]}
"""


def test_a_plugin_exchange_counts_as_matched_and_its_result_is_uncertain_never_a_pass(tmp_path):
    from topology.routing_tests import run_offline

    path = tmp_path / "t.yaml"
    path.write_text(textwrap.dedent(PLUGINS), encoding="utf-8")
    topology = load_valid([str(path)], offline=True)
    state = desired_state(topology)
    result = route(state, "v", Message("hash", "k"))
    assert result.queues == [] and "one of: a, b" in result.uncertain[0]  # the alternate exchange is not used
    outcomes = run_offline(topology, state)
    assert [o.passed for o in outcomes] == [False, False]
    assert all(o.error and o.error.startswith("cannot be simulated") for o in outcomes)


def test_a_cc_header_that_is_not_an_array_is_refused(state):
    assert "406" in route(state, "shop", Message("", "audit", {"CC": "pdfs"})).refused
    # elements that are not text are skipped, as the broker does
    assert route(state, "shop", Message("", "audit", {"CC": [1, "pdfs"]})).queues == ["audit", "pdfs"]


def test_dead_letters_only_for_deaths_that_can_happen(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(textwrap.dedent("""
    vhosts:
      v:
        exchanges: {dlx: {type: fanout}}
        queues:
          refusing: {max_length: 1, overflow: reject-publish, dead_letter_exchange: dlx}
          dropping: {max_length: 1, dead_letter_exchange: dlx}
          quorum: {type: quorum, dead_letter_exchange: dlx}
          dead: {}
        bindings:
          - {source: dlx, destination: dead}
    """), encoding="utf-8")
    state = desired_state(load_valid([str(path)], offline=True))
    followed = {}
    for reason in ("maxlen", "delivery_limit", "rejected"):
        for queue in ("refusing", "dropping", "quorum"):
            result = route(state, "v", Message("", queue), dead_letter=reason)
            followed[(reason, queue)] = result.deliveries[0].dead_letter is not None
    assert followed == {("maxlen", "refusing"): False, ("maxlen", "dropping"): True, ("maxlen", "quorum"): True,
                        ("delivery_limit", "refusing"): False, ("delivery_limit", "dropping"): False,
                        ("delivery_limit", "quorum"): False, ("rejected", "refusing"): True,
                        ("rejected", "dropping"): True, ("rejected", "quorum"): True}
    # 3.10 quorum queues have no delivery limit unless one is set; 4.0 gives them 20, and -1 sets none
    assert route(state, "v", Message("", "quorum"), dead_letter="delivery_limit",
                 version=(4, 0, 0)).deliveries[0].dead_letter is not None


@pytest.mark.parametrize("limit, version, dies", [
    (None, (3, 10, 8), False), (None, (4, 0, 0), True), (3, (3, 10, 8), True), (-1, (4, 0, 5), False),
    (0, (4, 3, 6), True),
])
def test_a_quorum_queue_dies_of_its_delivery_limit_only_when_it_has_one(tmp_path, limit, version, dies):
    path = tmp_path / "t.yaml"
    field = "" if limit is None else f", delivery_limit: {limit}"
    path.write_text(textwrap.dedent(f"""
        vhosts:
          v:
            exchanges: {{dlx: {{type: fanout}}}}
            queues:
              work: {{type: quorum, dead_letter_exchange: dlx{field}}}
              dead: {{}}
            bindings:
              - {{source: dlx, destination: dead}}
        """), encoding="utf-8")
    state = desired_state(load_valid([str(path)], offline=True))
    result = route(state, "v", Message("", "work"), dead_letter="delivery_limit", version=version)
    assert (result.deliveries[0].dead_letter is not None) is dies


def test_a_rejected_message_loops_when_it_comes_back_as_it_was(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(textwrap.dedent("""
    vhosts:
      v:
        exchanges: {x: {type: direct}}
        queues:
          q2: {dead_letter_exchange: "", dead_letter_routing_key: q3}
          q3: {dead_letter_exchange: ""}
        bindings:
          - {source: x, destination: q3, routing_key: q2}
    """), encoding="utf-8")
    state = desired_state(load_valid([str(path)], offline=True))
    # keyed 'q2' in q3, it goes to q2; back in q3 it is keyed 'q3': followed on, and from then on it loops on q3
    result = route(state, "v", Message("x", "q2"), dead_letter="rejected")
    q3 = result.deliveries[0]
    q2 = q3.dead_letter.deliveries[0]
    assert (q3.dead_letter.routing_keys, q2.queue, q3.dead_letter.cycles) == (["q2"], "q2", [])
    again = q2.dead_letter.deliveries[0]
    assert (again.queue, q2.dead_letter.routing_keys, q2.dead_letter.cycles) == ("q3", ["q3"], [])
    assert again.dead_letter.loops == [("q3", "q3")]
    assert again.dead_letter.cycles == [
        "queue 'q3': the message comes back each time it is rejected, round q3 -> q3 (the broker does not stop "
        "this loop); no queue on the way has a message TTL (lint: TOP003)"]


@pytest.mark.parametrize("first, second, expected", [
    ("*.b", "a.*", "a.b"), ("#", "#", ""), ("a.#", "#.b", "a.b"), ("a", "b", None), ("*", "#.*.#", "unmatched"),
    ("a.*.*", "#.c", "a.a.c"), ("*", "*.*", None),
])
def test_a_key_two_topic_binding_keys_both_match(first, second, expected):
    from topology.route import topic_witness

    found = topic_witness(first, second)
    assert found == expected
    if found is not None:
        assert topic_matches(first, found) and topic_matches(second, found)


def test_a_rejected_message_in_a_state_already_followed_is_shown_once(tmp_path):
    from topology.render.route import route_text

    path = tmp_path / "t.yaml"
    path.write_text(textwrap.dedent("""
    vhosts:
      v:
        exchanges: {fan: {type: fanout}, dlx: {type: direct}, last: {type: fanout}}
        queues:
          q1: {dead_letter_exchange: dlx, dead_letter_routing_key: d}
          q2: {dead_letter_exchange: dlx, dead_letter_routing_key: d}
          dead: {dead_letter_exchange: last}
          parked: {}
        bindings:
          - {source: fan, destination: q1}
          - {source: fan, destination: q2}
          - {source: dlx, destination: dead, routing_key: d}
          - {source: last, destination: parked}
    """), encoding="utf-8")
    state = desired_state(load_valid([str(path)], offline=True))
    # from 3.13 dead letters carry no x-first-death-* header to route on: from q1 and q2 they are the same
    result = route(state, "v", Message("fan", "k"), dead_letter="rejected", version=(3, 13, 7))
    first, second = (d.dead_letter.deliveries[0] for d in result.deliveries)
    assert first.dead_letter.queues == ["parked"] and not first.dead_letter_above
    assert second.dead_letter is None and second.dead_letter_above
    assert second.to_dict() == {"name": "dead", "path": [{"exchange": "dlx", "via": "binding", "binding_key": "d"}],
                                "dead_letter_as_above": True}
    assert route_text(result).splitlines()[-2:] == [
        "      dead: dlx --[d]--> dead", "        dead-lettered (rejected): as above, where it died in dead with the "
                                        "same routing keys"]
    # before 3.13 they differ by their x-first-death-queue header: both are followed
    older = route(state, "v", Message("fan", "k"), dead_letter="rejected")
    assert [d.dead_letter.deliveries[0].dead_letter.queues for d in older.deliveries] == [["parked"], ["parked"]]
