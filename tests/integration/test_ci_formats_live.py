"""topology test --live --format junit: the broker's answer as a JUnit report that keeps to the
junit-10.xsd schema, with the same verdicts as offline."""

from __future__ import annotations

from pathlib import Path

import pytest
import xmlschema

pytestmark = pytest.mark.broker

JUNIT = xmlschema.XMLSchema(str(Path(__file__).resolve().parents[1] / "fixtures" / "schemas" / "junit-10.xsd"))

FILES = """
vhosts:
  shop:
    exchanges:
      events: {type: topic}
    queues:
      orders: {}
      audit: {}
    bindings:
      - {source: events, destination: orders, routing_key: "order.#"}
tests:
  - {name: an order reaches the orders queue, vhost: shop, exchange: events, routing_key: order.created, queues: [orders]}
  - {name: a wrong expectation, vhost: shop, exchange: events, routing_key: order.paid, queues: [audit]}
"""


def test_live_routing_tests_as_junit(run, write):
    path = write(FILES)
    reports = {}
    for mode in ((), ("--live",)):
        result = run("test", path, *mode, "--format", "junit")
        assert result.code == 2, result.err
        JUNIT.validate(result.out)
        reports[mode] = xmlschema.XMLResource(result.out).root
    live = reports[("--live",)]
    assert live.get("name") == "topology test (on the broker)" and live.get("failures") == "1"
    [failure] = live.iter("failure")
    assert failure.get("message") == "expected audit; reached orders"
    verdicts = {mode: [(c.get("name"), c.find("failure") is None) for c in root.iter("testcase")]
                for mode, root in reports.items()}
    assert verdicts[()] == verdicts[("--live",)] == [("an order reaches the orders queue", True),
                                                    ("a wrong expectation", False)]
