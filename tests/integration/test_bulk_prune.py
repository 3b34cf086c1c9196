"""--prune of hundreds of queues against the real broker: the checks are read in bulk (one statistics
read per vhost, passive declares pipelined over AMQP) and again just before each deletion; bindings
of deleted queues go with them; nothing that holds a message or has a consumer is deleted."""

from __future__ import annotations

import json

import pytest

from tests.conftest import connect, message_count, publish

pytestmark = pytest.mark.broker

QUEUES = 300

DECLARED = """
vhosts:
  {vhost}:
    exchanges:
      bulk: {{type: direct}}
"""


def names(api, vhost: str) -> set[str]:
    return {q["name"] for q in api.get("queues", vhost)}


def strays(api, vhost: str, quorum: tuple[str, ...] = ("z.quorum.1", "z.quorum.2")) -> list[str]:
    """QUEUES classic queues and a few quorum queues that no file declares, each bound to ``bulk``."""
    classic = [f"q{index:04d}" for index in range(QUEUES)]
    api.post("definitions", vhost, body={
        "queues": [{"name": name, "durable": True, "auto_delete": False, "arguments": {}} for name in classic]
        + [{"name": name, "durable": True, "auto_delete": False, "arguments": {"x-queue-type": "quorum"}}
           for name in quorum],
        "bindings": [{"source": "bulk", "destination": name, "destination_type": "queue", "routing_key": name,
                      "arguments": {}} for name in classic + list(quorum)],
    })
    return classic + list(quorum)


@pytest.fixture
def requests_seen(monkeypatch):
    """Every management request the tool makes ((method, path) pairs), and the queues counted over
    AMQP: one at a time (``counts``) and in pipelined batches (``counts_many``)."""
    from topology import apply
    from topology.broker.amqp import QueueInspector
    from topology.broker.client import ManagementClient

    seen: dict[str, list] = {"http": [], "counts": [], "counts_many": []}
    send, counts, counts_many = ManagementClient._send_once, QueueInspector.counts, QueueInspector.counts_many

    def recording_send(self, method, segments, params=None, *args, **kwargs):
        # the queue list read without statistics (a vhost read from its lists, before RabbitMQ 4.3.3)
        # is not a statistics read: told apart by its path
        listed = method == "GET" and (params or {}).get("disable_stats") == "true"
        seen["http"].append((method, "/".join(segments) + ("?listed" if listed else "")))
        return send(self, method, segments, params, *args, **kwargs)

    def recording_counts(self, vhost, queue):
        seen["counts"].append(queue)
        return counts(self, vhost, queue)

    def recording_counts_many(self, vhost, queues):
        queues = list(queues)
        seen["counts_many"].append(queues)
        return counts_many(self, vhost, queues)

    monkeypatch.setattr(ManagementClient, "_send_once", recording_send)
    monkeypatch.setattr(QueueInspector, "counts", recording_counts)
    monkeypatch.setattr(QueueInspector, "counts_many", recording_counts_many)
    # the statistics are read again after STATISTICS_REFRESH seconds: not within this test's count
    monkeypatch.setattr(apply, "STATISTICS_REFRESH", 3600.0)
    return seen


def test_pruning_hundreds_of_queues_reads_their_checks_in_bulk(run, write, vhost, api, requests_seen):
    path = write(DECLARED.format(vhost=vhost))
    assert run("apply", path, "--auto-approve").code == 0
    doomed = strays(api, vhost)

    result = run("apply", path, "--prune", "--auto-approve")
    assert result.code == 0, result.err
    assert f"Apply complete: {2 * len(doomed)} change(s) applied" in result.out
    assert f"- binding {vhost}/bulk -> queue q0007 [q0007]: deleted" in result.out
    assert names(api, vhost) == set()
    assert [b for b in api.get("bindings", vhost) if b["source"]] == []

    http = requests_seen["http"]
    statistics = [path for method, path in http if method == "GET" and path == f"queues/{vhost}"]
    # one: the plan's, which apply's check before its first write takes over (younger than the
    # broker refreshes its statistics; the exact counts are read again over AMQP)
    assert len(statistics) == 1
    assert not [path for method, path in http if path.startswith(f"queues/{vhost}/") and method == "GET"]
    assert sum(1 for method, path in http if method == "DELETE" and path.startswith("queues/")) == len(doomed)
    assert not [path for method, path in http if method == "DELETE" and path.startswith("bindings/")]
    assert requests_seen["counts"] == []  # no queue counted alone
    surveyed, *rechecked = requests_seen["counts_many"]
    assert sorted(surveyed) == sorted(doomed)  # all of them, before the first write
    assert sorted(name for batch in rechecked for name in batch) == sorted(doomed)  # and again, just before
    assert max(len(batch) for batch in rechecked) < len(doomed)
    assert run("plan", path, "--prune", "--detailed-exitcode").code == 0


def interrupted_prune(run, path: str):
    """``apply --prune --auto-approve`` that a Ctrl-C stops (a KeyboardInterrupt, even where the
    suite was started with SIGINT ignored): exit 130, one line, no traceback."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        result = run("apply", path, "--prune", "--auto-approve")
    finally:
        signal.signal(signal.SIGINT, previous)
    assert result.code == 130 and result.err.strip().splitlines()[-1] == "error: interrupted", result.err
    assert "Traceback" not in result.err
    return result


def prune_while_held(run, path: str, held: list):
    """``apply --prune --auto-approve``, then close the client connections opened meanwhile (``held``)."""
    try:
        return run("apply", path, "--prune", "--auto-approve")
    finally:
        for connection in held:
            connection.close()


@pytest.fixture
def answered_yes(monkeypatch):
    """apply asks on a terminal, and is answered ``yes``."""
    import sys

    import click

    class Terminal:
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", Terminal())
    monkeypatch.setattr(click, "prompt", lambda *args, **kwargs: "yes")


@pytest.mark.parametrize("refresh, took, reads", [(3600.0, 0.0, 1), (0.0, 3600.0, 2)])
def test_the_plans_statistics_are_taken_over_only_while_as_recent_as_the_broker_refreshes_them(
        run, write, vhost, api, requests_seen, monkeypatch, answered_yes, refresh, took, reads):
    """An apply that asks before it applies: the checks before the first write take the plan's
    statistics over only while they are younger than the broker's refresh interval, however long
    the read took: the reads during the deletions are kept for three times as long as a read took,
    but what the first check reads (the exclusive queues bound since the plan, unacknowledged
    messages) must be fresh after a pause of unknown length."""
    from topology import apply
    from topology.broker.client import ManagementClient

    path = write(DECLARED.format(vhost=vhost))
    assert run("apply", path, "--auto-approve").code == 0
    doomed = strays(api, vhost)
    monkeypatch.setattr(apply, "STATISTICS_REFRESH", refresh)
    monkeypatch.setattr(ManagementClient, "statistics_took", lambda self, vhost: took)

    result = run("apply", path, "--prune")
    assert result.code == 0, result.err
    assert names(api, vhost) == set()
    statistics = [p for method, p in requests_seen["http"] if method == "GET" and p == f"queues/{vhost}"]
    if reads == 1:
        assert len(statistics) == 1  # the plan's
    else:  # the plan's and the checks' own (the deletions' then kept for three times as long as one took)
        assert len(statistics) == reads
    surveyed, *_ = requests_seen["counts_many"]
    assert sorted(surveyed) == sorted(doomed)


@pytest.mark.parametrize("flags, ahead", [((), True), (("--allow-data-loss",), False)])
def test_an_apply_that_asks_no_one_begins_its_checks_with_the_plan(run, write, vhost, api, requests_seen,
                                                                    monkeypatch, flags, ahead):
    """Auto-approved, the checks before the first write begin as soon as the plan's changes are
    known: the queues to delete are counted over AMQP from before the plan is printed, and the
    plan's statistics read is the checks' own (the refresh interval, 5 s, measured from when it
    ended). Each queue is counted again just before its deletion, as always. With
    ``--allow-data-loss``, where the checks before the first write are the only ones of a queue's
    consumers, they are read after the plan is printed, as before."""
    from topology import cli
    from topology.broker.client import ManagementClient

    path = write(DECLARED.format(vhost=vhost))
    assert run("apply", path, "--auto-approve").code == 0
    doomed = strays(api, vhost)
    # the deletions' own reads kept for long: only the checks' read counts here
    monkeypatch.setattr(ManagementClient, "statistics_took", lambda self, vhost: 3600.0 if ahead else 0.0)
    render, order = cli._render, []

    def rendering(the_plan):
        order.append(len(requests_seen["counts_many"]))
        return render(the_plan)

    monkeypatch.setattr(cli, "_render", rendering)
    result = run("apply", path, "--prune", "--auto-approve", *flags)
    assert result.code == 0, result.err
    assert names(api, vhost) == set()
    statistics = [p for method, p in requests_seen["http"] if method == "GET" and p == f"queues/{vhost}"]
    assert len(statistics) == 1  # the plan's, taken over (with --allow-data-loss too: under 5 s old)
    assert order == ([1] if ahead else [0])  # the counting had begun before the plan was printed, or not
    surveyed, *rechecked = requests_seen["counts_many"]
    assert sorted(surveyed) == sorted(doomed)
    if ahead:
        assert sorted(name for batch in rechecked for name in batch) == sorted(doomed)


def test_an_unacknowledged_message_taken_while_the_plan_is_printed_slowly_keeps_its_queue(run, write, vhost, api,
                                                                                          monkeypatch):
    """Auto-approved, printing the plan blocks for longer than the broker refreshes its statistics
    (a pager, a slow log), while a client takes a message with ``basic.get`` and does not ack it:
    only the statistics show it, so the checks read them again rather than take the plan's over,
    and nothing is deleted."""
    import time

    from topology import cli

    path = write(DECLARED.format(vhost=vhost))
    assert run("apply", path, "--auto-approve").code == 0
    doomed = strays(api, vhost)
    render, held = cli._render, []

    def slowly(the_plan):
        if not held:
            publish(vhost, "q0000", [b"taken"])
            connection = connect(vhost)
            held.append(connection)
            assert connection.channel().basic_get("q0000", auto_ack=False)[0] is not None
            time.sleep(7)  # longer than the refresh interval: the broker's statistics show it by then
        return render(the_plan)

    monkeypatch.setattr(cli, "_render", slowly)
    result = prune_while_held(run, path, held)
    assert result.code == 1
    assert f"delete queue {vhost}/q0000 failed: it holds 1 message(s) (1 unacknowledged)" in result.err
    assert "nothing was lost; 0 of" in result.err
    assert names(api, vhost) == set(doomed)
    assert message_count(vhost, "q0000") == 1  # back, its taker gone


def test_a_failure_while_the_checks_count_ahead_is_one_line_and_changes_nothing(run, write, vhost, api,
                                                                                monkeypatch):
    """The exact counts read beside the plan fail (a lost AMQP connection): the apply stops before
    its first write, with the error in one line naming the first queue to delete."""
    from topology.broker.amqp import QueueInspector
    from topology.errors import BrokerError

    path = write(DECLARED.format(vhost=vhost))
    assert run("apply", path, "--auto-approve").code == 0
    doomed = strays(api, vhost)

    def lost(self, vhost_, queues):
        raise BrokerError(f"lost the AMQP connection while inspecting the queues of vhost {vhost_}: reset")

    monkeypatch.setattr(QueueInspector, "counts_many", lost)
    result = run("apply", path, "--prune", "--auto-approve")
    assert result.code == 1
    assert "Traceback" not in result.err
    assert f"delete queue {vhost}/q0000 failed: lost the AMQP connection while inspecting the queues" in result.err
    assert names(api, vhost) == set(doomed)


def test_a_message_arriving_while_the_plan_is_printed_keeps_its_queue(run, write, vhost, api, monkeypatch):
    """Auto-approved, a message published after the checks began with the plan (while it is built
    and printed) is found by a count, the one begun with the plan or the one just before its
    queue's deletion: the queue is kept with it."""
    from topology import cli

    path = write(DECLARED.format(vhost=vhost))
    assert run("apply", path, "--auto-approve").code == 0
    strays(api, vhost)
    render = cli._render

    def publishing(the_plan):
        publish(vhost, "q0150", [b"late"])
        return render(the_plan)

    monkeypatch.setattr(cli, "_render", publishing)
    result = run("apply", path, "--prune", "--auto-approve")
    assert result.code == 1
    assert f"delete queue {vhost}/q0150 failed: it holds 1 message(s)" in result.err
    assert "nothing was lost" in result.err
    assert message_count(vhost, "q0150") == 1
    assert "q0150" in names(api, vhost)


def test_ctrl_c_while_the_checks_count_ahead_stops_before_anything_changes(run, write, vhost, api, monkeypatch):
    """Ctrl-C while the queues to delete are counted beside the plan: the counting stops, nothing
    is deleted, exit 130 without a traceback; the next run deletes them."""
    import os
    import signal

    from topology.broker.amqp import QueueInspector

    path = write(DECLARED.format(vhost=vhost))
    assert run("apply", path, "--auto-approve").code == 0
    doomed = strays(api, vhost)
    counts_many = QueueInspector.counts_many

    def interrupted(self, vhost_, queues):
        os.kill(os.getpid(), signal.SIGINT)  # from the counting thread: the main thread is interrupted
        return counts_many(self, vhost_, queues)

    monkeypatch.setattr(QueueInspector, "counts_many", interrupted)
    interrupted_prune(run, path)
    assert names(api, vhost) == set(doomed)
    monkeypatch.setattr(QueueInspector, "counts_many", counts_many)
    assert run("apply", path, "--prune", "--auto-approve").code == 0
    assert names(api, vhost) == set()


def test_an_exclusive_queue_bound_after_the_plan_stops_the_pruning_of_its_exchange(run, write, vhost, api,
                                                                                  monkeypatch):
    """A client binds an exclusive queue to an exchange the plan prunes, after the plan read the
    statistics and before apply's first check (the plan's read older than the refresh interval but
    younger than three times as long as it took; and, auto-approved, taken over as the checks' own):
    the exclusive queues are read again before the first write, the binding is found, and nothing is
    changed."""
    from topology import apply, engine
    from topology.broker.client import ManagementClient

    path = write(DECLARED.format(vhost=vhost))
    assert run("apply", path, "--auto-approve").code == 0
    doomed = strays(api, vhost)
    api.put("exchanges", vhost, "gone", body={"type": "topic", "durable": True})
    monkeypatch.setattr(apply, "STATISTICS_REFRESH", 0.0)  # the plan's read is older than this at once
    monkeypatch.setattr(ManagementClient, "statistics_took", lambda self, vhost: 3600.0)
    make_plan, held = engine.make_plan, []

    def binding_after_the_plan(*args, **kwargs):
        plan = make_plan(*args, **kwargs)
        if not held:
            connection = connect(vhost)
            channel = connection.channel()
            channel.queue_declare("client-reply", exclusive=True)
            channel.queue_bind("client-reply", "gone", "orders.#")
            held.append(connection)
        return plan

    monkeypatch.setattr(engine, "make_plan", binding_after_the_plan)
    result = prune_while_held(run, path, held)
    assert result.code == 1
    assert f"exchange {vhost}/gone failed: it is bound to 1 exclusive queue(s) of connected clients" in result.err
    assert names(api, vhost) == set(doomed)
    assert "gone" in {e["name"] for e in api.get("exchanges", vhost)}


@pytest.mark.parametrize("how", ["message", "consumer", "quorum message"])
def test_a_queue_in_use_when_apply_starts_stops_it_before_anything_is_deleted(run, write, vhost, api, tmp_path,
                                                                              requests_seen, how):
    """The plan was made when every queue was idle (a saved plan); by the time apply starts, one
    holds a message or has a consumer: the checks before the first write find it, nothing is deleted."""
    path = write(DECLARED.format(vhost=vhost))
    assert run("apply", path, "--auto-approve").code == 0
    doomed = strays(api, vhost)
    saved = str(tmp_path / "prune.plan")
    assert run("plan", path, "--prune", "--out", saved).code == 0
    target = "z.quorum.1" if how == "quorum message" else "q0150"
    connection = connect(vhost)
    try:
        if how == "consumer":
            connection.channel().basic_consume(target, lambda *args: None)
        else:
            publish(vhost, target, [b"precious"])
        result = run("apply", "--plan", saved, "--auto-approve")
    finally:
        connection.close()
    assert result.code == 1
    # the words of the exact count, or of the statistics if they caught up already
    held = "0 message(s)" if how == "consumer" else "1 message(s)"
    assert f"delete queue {vhost}/{target} failed: it holds {held}" in result.err
    assert ("has 1 consumer(s)" if how == "consumer" else "has 0 consumer(s)") in result.err
    assert "not deleted, nothing was lost; 0 of" in result.err
    if how != "consumer":
        assert message_count(vhost, target) == 1
    assert names(api, vhost) == set(doomed)
    assert len([b for b in api.get("bindings", vhost) if b["source"]]) == len(doomed)
    assert not [method for method, _ in requests_seen["http"] if method == "DELETE"]


@pytest.mark.parametrize("target", ["q0100", "z.quorum.1"])
def test_a_message_arriving_after_the_first_check_stops_the_deletions_at_its_queue(run, write, vhost, api,
                                                                                  monkeypatch, target):
    """A message published after the checks before the first write, just as the deletions start:
    the queue is checked again just before its own deletion and kept with its message; the queues
    before it in the plan's order are deleted, those after it are not, and the error says so."""
    from topology.apply import Applier

    path = write(DECLARED.format(vhost=vhost))
    assert run("apply", path, "--auto-approve").code == 0
    doomed = strays(api, vhost)
    delete_queues = Applier._delete_queues

    def publish_first(self, changes, *args):
        publish(vhost, target, [b"late"])
        return delete_queues(self, changes, *args)

    monkeypatch.setattr(Applier, "_delete_queues", publish_first)
    result = run("apply", path, "--prune", "--auto-approve")
    assert result.code == 1
    before = doomed[:doomed.index(target)]
    assert f"delete queue {vhost}/{target} failed: it holds 1 message(s)" in result.err
    assert f"nothing was lost; {2 * len(before)} of {2 * len(doomed)} change(s) had been applied" in result.err
    assert names(api, vhost) == set(doomed) - set(before)
    assert message_count(vhost, target) == 1
    kept = {b["destination"] for b in api.get("bindings", vhost) if b["source"]}
    assert kept == set(doomed) - set(before)  # a kept queue keeps its bindings
    assert json.loads(run("plan", path, "--prune", "--format", "json").out)["summary"]["delete"] == 2 * (
        len(doomed) - len(before))


def test_ctrl_c_during_the_deletions_reports_exactly_what_landed_and_the_next_run_finishes(run, write, vhost, api,
                                                                                         monkeypatch):
    """Ctrl-C while the queues are deleted through many connections at once: no deletion starts
    after it, those under way finish, and the output names every queue the broker deleted (and
    only those) before the interruption is reported (exit 130). The next run deletes the rest."""
    import os
    import re
    import signal
    import threading

    from topology.apply import Applier

    path = write(DECLARED.format(vhost=vhost))
    assert run("apply", path, "--auto-approve").code == 0
    doomed = strays(api, vhost)
    delete_queue = Applier._delete_queue
    done, counting = [0], threading.Lock()

    def interrupting(self, queue, keep_messages=True):
        delete_queue(self, queue, keep_messages)
        with counting:
            done[0] += 1
            if done[0] == 40:
                os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, from a connection's thread, mid-run

    monkeypatch.setattr(Applier, "_delete_queue", interrupting)
    result = interrupted_prune(run, path)
    reported = set(re.findall(rf"^- queue {re.escape(vhost)}/(\S+): deleted$", result.out, re.MULTILINE))
    gone = set(doomed) - names(api, vhost)
    assert reported == gone  # every deletion that landed is said, and none that did not
    assert 40 <= len(gone) < len(doomed)  # it stopped midway
    monkeypatch.setattr(Applier, "_delete_queue", delete_queue)
    again = run("apply", path, "--prune", "--auto-approve")
    assert again.code == 0, again.err
    assert f"Apply complete: {2 * (len(doomed) - len(gone))} change(s) applied" in again.out
    assert names(api, vhost) == set()
