"""topology test: routing tests run by the simulator and, with --live, on the broker in
throw-away vhosts that are deleted afterwards."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.broker

FILES = """
vhosts:
  shop:
    exchanges:
      events: {type: topic, alternate_exchange: unrouted}
      unrouted: {type: fanout}
      inner: {type: direct, internal: true}
      by-header: {type: headers}
    queues:
      orders: {message_ttl: 0}
      audit: {type: quorum}
      lost: {max_length: 0}
      pdfs: {}
      log: {type: stream}
    bindings:
      - {source: events, destination: orders, routing_key: "order.#"}
      - {source: events, destination: inner, destination_type: exchange, routing_key: "order.*"}
      - {source: inner, destination: audit, routing_key: order.created}
      - {source: inner, destination: log, routing_key: order.created}
      - {source: unrouted, destination: lost}
      - {source: by-header, destination: pdfs, arguments: {x-match: any, kind: pdf, size: 10}}
tests:
  - {vhost: shop, exchange: events, routing_key: order.created, queues: [orders, audit, log]}
  - {name: unrouted goes to lost, vhost: shop, exchange: events, routing_key: x, queues: [lost]}
  - {vhost: shop, exchange: by-header, headers: {size: 10}, queues: [pdfs]}
  - {vhost: shop, exchange: by-header, headers: {size: "10"}, queues: []}
  - {vhost: shop, exchange: inner, refused: true, queues: []}
  - {name: a wrong expectation, vhost: shop, exchange: events, routing_key: order.x, queues: [audit]}
  - {vhost: shop, exchange: "", routing_key: pdfs, headers: {CC: [lost]}, queues: [pdfs, lost]}
"""


def test_the_same_tests_pass_and_fail_offline_and_on_the_broker(run, write, api):
    """A queue with a TTL of 0 or a length of 0, a quorum queue and a stream all count as
    reached on the broker (consumers wait on every queue); the one wrong expectation fails in
    both modes; the throw-away vhost is gone afterwards."""
    path = write(FILES)
    before = {v["name"] for v in api.get("vhosts")}
    results = {}
    for mode in ((), ("--live",)):
        result = run("test", path, *mode, "--format", "json")
        assert result.code == 2, result.err
        results[mode] = json.loads(result.out)
    offline, live = results[()], results[("--live",)]
    assert (offline["mode"], live["mode"]) == ("offline", "live")
    assert [t["passed"] for t in offline["tests"]] == [True, True, True, True, True, False, True]
    assert live["tests"] == offline["tests"]
    failed = offline["tests"][5]
    assert failed["name"] == "a wrong expectation" and failed["expected"] == ["audit"] and failed["reached"] == ["orders"]
    assert {v["name"] for v in api.get("vhosts")} == before
    text = run("test", path, "--live")
    assert text.code == 2 and "6 passed, 1 failed (on the broker)" in text.out
    assert "FAIL " in text.out and "a wrong expectation" in text.out


def test_live_tests_need_no_secret_and_name_their_vhosts_with_the_given_prefix(run, write, api, monkeypatch):
    """The throw-away vhosts hold no user or shovel: a user's unset password variable is not needed.
    Brokers with naming rules set how the vhosts' names start."""
    monkeypatch.delenv("SVC_PASSWORD", raising=False)
    path = write("""
        vhosts:
          shop:
            exchanges:
              events: {type: topic}
            queues:
              orders: {}
            bindings:
              - {source: events, destination: orders, routing_key: "order.#"}
        users:
          svc:
            password: ${SVC_PASSWORD}
            permissions:
              shop: {configure: "", write: ".*", read: ".*"}
        tests:
          - {vhost: shop, exchange: events, routing_key: order.created, queues: [orders]}
        """)
    result = run("test", path, "--live", "--vhost-prefix", "team-a.routing-", "--format", "json")
    assert result.code == 0, result.err
    document = json.loads(result.out)
    assert document["passed"] == 1 and len(document["throwaway_vhosts"]) == 1
    made = document["throwaway_vhosts"][0]
    assert made.startswith("team-a.routing-") and len(made) == len("team-a.routing-") + 12
    assert made not in {v["name"] for v in api.get("vhosts")}
    assert run("test", path, "--vhost-prefix", "x-").code == 1  # offline makes no vhost
    refused = run("test", path, "--live", "--vhost-prefix", "")
    assert refused.code == 1 and "--vhost-prefix" in refused.err
