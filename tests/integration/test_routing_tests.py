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
