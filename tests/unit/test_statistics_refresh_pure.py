"""When apply reads a vhost's queue statistics again while it deletes its queues (pure: the client's
read is replaced by a count of the reads asked for)."""

from __future__ import annotations

import time

from topology.apply import Applier, ApplyOptions
from topology.broker.client import ManagementClient


def applier_reading(took: float) -> tuple[Applier, list[str]]:
    client = ManagementClient("http://127.0.0.1:9", "guest", "guest")
    reads: list[str] = []

    def queue_statistics(vhost: str) -> dict:
        reads.append(vhost)
        client._statistics[vhost] = (time.monotonic(), took, {})
        return {}

    client.queue_statistics = queue_statistics  # type: ignore[method-assign]
    client._statistics["v"] = (time.monotonic(), took, {})
    return Applier(client, ApplyOptions()), reads


def test_a_read_that_ended_since_the_caller_looked_is_not_asked_for_again():
    """The deletions saw the last read too old, but the read under way ended (and was stored)
    before a new one was to start: no second read right behind it."""
    applier, reads = applier_reading(took=2.0)
    applier._statistics["v"] = (time.monotonic() - 1.0, {})  # stored by the read that just ended
    applier._refresh_statistics("v")
    assert reads == [] and "v" not in applier._refreshing


def test_a_read_older_than_its_lifetime_is_asked_for_again():
    applier, reads = applier_reading(took=2.0)
    applier._statistics["v"] = (time.monotonic() - 7.0, {})  # lifetime: max(5, 3 x 2) = 6 s
    applier._refresh_statistics("v")
    applier._refreshing["v"].join()
    assert reads == ["v"]


def test_the_checks_begun_with_the_plan_take_its_read_over_only_while_it_ended_under_the_refresh_interval():
    """An auto-approved apply's checks (ChecksAhead) take the plan's statistics read over if it was
    asked for since they began and ended less than STATISTICS_REFRESH (5 s) ago, however long it took."""
    from topology.apply import ChecksAhead

    def taken_over(asked_ago: float, took: float, began_ago: float) -> bool:
        applier, _ = applier_reading(took=took)
        now = time.monotonic()
        ahead = ChecksAhead(None)
        ahead.began, ahead.counted_at = now - began_ago, now - 1.0
        applier.client._statistics["v"] = (now - asked_ago, took, {"q": {}})
        return applier._take_over_statistics("v", ahead)

    assert taken_over(asked_ago=9.0, took=8.0, began_ago=10.0)  # a long read, ended 1 s ago
    assert not taken_over(asked_ago=9.0, took=3.0, began_ago=10.0)  # ended 6 s ago: read again
    assert not taken_over(asked_ago=9.0, took=8.0, began_ago=5.0)  # asked for before the checks began
