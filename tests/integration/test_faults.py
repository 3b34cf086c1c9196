"""Faults between the tool and the management API (a proxy in front of the real broker drops
connections, answers 503, holds requests past the timeout): reads are tried again, writes only
where another try is safe, and what cannot be done ends in one line naming the object, with a
broker the next run finishes."""

from __future__ import annotations

import json

import pytest

from tests.faults import FaultProxy, Rule

pytestmark = pytest.mark.broker

SHOP = """
vhosts:
  {vhost}:
    exchanges:
      orders: {{type: topic}}
    queues:
      q1: {{max_length: 10}}
      q2: {{max_length: 20}}
    bindings:
      - {{source: orders, destination: q1, routing_key: "a.#"}}
    policies:
      cap: {{pattern: "^q", definition: {{message-ttl: 60000}}}}
"""


def one_error(err: str) -> str:
    """The one error line of a failed apply (the lines before it list what was not applied)."""
    lines = err.strip().splitlines()
    assert "Traceback" not in err and lines[-1].startswith("error: ")
    assert all(line.startswith("not applied: ") for line in lines[:-1])
    return lines[-1]


def test_reads_are_tried_again_after_dropped_connections_and_503(run, write, vhost):
    path = write(SHOP.format(vhost=vhost))
    with FaultProxy() as proxy:
        proxy.add(Rule("drop", method="GET", path="/api/definitions/", times=1))
        proxy.add(Rule("503", method="GET", path="/api/overview", times=1))
        result = run("plan", path, "--url", proxy.url, "--format", "json")
    assert result.code == 0, result.err
    assert len(json.loads(result.out)["changes"]) == 6
    assert [what for _, p, what in proxy.seen if "/api/overview" in p] == ["503", "pass"]


def test_a_write_answered_503_once_is_tried_again_and_the_apply_completes(run, write, vhost, api):
    path = write(SHOP.format(vhost=vhost))
    with FaultProxy() as proxy:
        proxy.add(Rule("503", method="PUT", path="/api/queues/", times=1))
        proxy.add(Rule("drop", method="POST", path="/api/bindings/", times=1))
        result = run("apply", path, "--url", proxy.url, "--auto-approve")
    assert result.code == 0, result.err
    assert api.queue(vhost, "q1")["arguments"]["x-max-length"] == 10
    assert run("plan", path, "--detailed-exitcode").code == 0


def test_a_write_that_keeps_failing_ends_in_one_line_naming_it_and_the_next_run_finishes(run, write, vhost, api):
    path = write(SHOP.format(vhost=vhost))
    with FaultProxy() as proxy:
        proxy.add(Rule("503", method="PUT", path="/q2", times=-1))
        failed = run("apply", path, "--url", proxy.url, "--auto-approve")
    assert failed.code == 1
    error = one_error(failed.err)
    assert "create queue" in error and "/q2 failed" in error and "HTTP 503" in error and "tried 3 times" in error
    assert [what for method, p, what in proxy.seen if method == "PUT" and p.endswith("/q2")] == ["503"] * 3
    assert api.queue(vhost, "q1")["arguments"]["x-max-length"] == 10  # what came before is there
    finished = run("apply", path, "--auto-approve")
    assert finished.code == 0, finished.err
    assert run("plan", path, "--detailed-exitcode").code == 0


def test_a_write_that_times_out_is_not_sent_again_and_the_next_run_finishes(run, write, vhost, api):
    """The broker may still be making a change whose answer timed out: it is not sent again."""
    path = write(SHOP.format(vhost=vhost))
    with FaultProxy() as proxy:
        proxy.add(Rule("delay", method="PUT", path="/q2", times=1, seconds=3.0))
        failed = run("apply", path, "--url", proxy.url, "--auto-approve", "--timeout", "1")
    assert failed.code == 1
    error = one_error(failed.err)
    assert "/q2 failed" in error and "did not answer" in error
    assert [what for method, p, what in proxy.seen if method == "PUT" and p.endswith("/q2")] == ["delay"]
    finished = run("apply", path, "--auto-approve")
    assert finished.code == 0, finished.err
    assert run("plan", path, "--detailed-exitcode").code == 0


def test_a_read_that_times_out_is_tried_again(run, write, vhost):
    path = write(SHOP.format(vhost=vhost))
    with FaultProxy() as proxy:
        proxy.add(Rule("delay", method="GET", path="/api/vhosts", times=1, seconds=2.5))
        result = run("plan", path, "--url", proxy.url, "--timeout", "1", "--format", "json")
    assert result.code == 0, result.err
    assert [what for method, p, what in proxy.seen if p.startswith("/api/vhosts")][:2] == ["delay", "pass"]
