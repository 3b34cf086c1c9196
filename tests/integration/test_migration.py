"""Replacing queues that hold messages (--migrate-messages), against the real broker:
no message lost, order, headers and properties kept, bindings kept, crashes resumed."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from urllib.parse import quote

import pika
import pytest

from tests.conftest import ROOT, connect, message_count, restart_broker_during, run_until_it_succeeds
from tests.faults import FaultProxy, Rule
from topology.rules.queues import QUORUM_PRIORITIES_SINCE

pytestmark = pytest.mark.broker

TOPOLOGY = """
vhosts:
  {vhost}:
    exchanges:
      orders: {{type: topic}}
    queues:
      work: {queue}
    bindings:
      - {{source: orders, destination: work, routing_key: "order.#"}}
"""


def files(write, vhost: str, queue: str = "{}", name: str = "topology.yaml") -> str:
    return write(TOPOLOGY.format(vhost=vhost, queue=queue), name)


def publish_many(vhost: str, messages: list[tuple[bytes, pika.BasicProperties]], exchange: str = "orders",
                 routing_key: str = "order.created") -> None:
    connection = connect(vhost)
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        for body, properties in messages:
            channel.basic_publish(exchange, routing_key, body, properties, mandatory=True)
    finally:
        connection.close()


def read_all(vhost: str, queue: str, keep: bool = False) -> list[tuple[bytes, pika.BasicProperties]]:
    """Every message of the queue in order; with ``keep`` they are put back (unacked, then requeued)."""
    connection = connect(vhost)
    got = []
    try:
        channel = connection.channel()
        total = channel.queue_declare(queue, passive=True).method.message_count
        # keeping: no acks, so a prefetch for all (quorum queues give an unlimited one only 2000)
        channel.basic_qos(prefetch_count=min(max(total, 1), 65535) if keep else 1000)
        if total:
            for method, properties, body in channel.consume(queue, auto_ack=not keep, inactivity_timeout=5):
                if method is None:
                    break
                got.append((body, properties))
                if len(got) == total:
                    break
    finally:
        connection.close()
    return got


def sample_messages(count: int, seed: int = 7) -> list[tuple[bytes, pika.BasicProperties]]:
    """Messages of different sizes, with headers and the other properties, persistent and transient."""
    rng = random.Random(seed)
    messages = []
    for i in range(count):
        body = f"{i:06d}:".encode() + rng.randbytes(rng.choice((0, 10, 200, 3000, 20000)))
        properties = pika.BasicProperties(
            headers={"index": i, "tenant": f"t{i % 7}", "nested": {"list": [i, "x"]}} if i % 5 else None,
            delivery_mode=2 if i % 3 else 1,
            content_type="application/octet-stream" if i % 2 else None,
            correlation_id=f"c-{i}" if i % 4 == 0 else None,
            message_id=f"m-{i}",
            priority=i % 10 if i % 6 == 0 else None,
            timestamp=1_700_000_000 + i if i % 8 == 0 else None,
            app_id="tests",
        )
        messages.append((body, properties))
    return messages


PROPERTIES = ("content_type", "headers", "delivery_mode", "priority", "correlation_id", "message_id", "timestamp", "app_id")


def same_message(sent: tuple[bytes, pika.BasicProperties], got: tuple[bytes, pika.BasicProperties]) -> bool:
    headers = dict(got[1].headers or {})
    headers.pop("x-delivery-count", None)  # quorum queues add it on every delivery
    received = {name: getattr(got[1], name) for name in PROPERTIES} | {"headers": headers or None}
    expected = {name: getattr(sent[1], name) for name in PROPERTIES}
    return sent[0] == got[0] and received == expected


def bindings_of(api, vhost: str, queue: str) -> set[tuple[str, str]]:
    return {(b["source"], b["routing_key"]) for b in api.get("queues", vhost, queue, "bindings") if b["source"]}


def wait_for_statistics(api, vhost: str, queue: str, messages: int) -> None:
    deadline = time.monotonic() + 30
    while api.get("queues", vhost, queue).get("messages") != messages:
        assert time.monotonic() < deadline, "the management statistics never caught up"
        time.sleep(0.5)


def test_ten_thousand_messages_survive_a_replacement(run, write, vhost, api):
    assert run("apply", files(write, vhost), "--auto-approve").code == 0
    api.post("bindings", vhost, "e", "amq.direct", "q", "work", body={"routing_key": "legacy"})  # no file declares it
    sent = sample_messages(10_000)
    publish_many(vhost, sent)
    assert message_count(vhost, "work") == 10_000

    changed = files(write, vhost, "{message_ttl: 1d, max_length: 50000, overflow: reject-publish}", "changed.yaml")
    result = run("apply", changed, "--auto-approve", "--migrate-messages")
    assert result.code == 0, result.err
    assert "-/+ queue " + vhost + "/work: replaced, 10,000 message(s) moved into it" in result.out

    arguments = api.get("queues", vhost, "work")["arguments"]
    assert arguments == {"x-message-ttl": 86_400_000, "x-max-length": 50_000, "x-overflow": "reject-publish",
                         "x-queue-type": "classic"}
    assert bindings_of(api, vhost, "work") == {("orders", "order.#"), ("amq.direct", "legacy")}
    assert [q["name"] for q in api.get("queues", vhost)] == ["work"]  # no temporary queue left
    got = read_all(vhost, "work")
    assert len(got) == 10_000
    mismatches = [i for i, (s, g) in enumerate(zip(sent, got)) if not same_message(s, g)]
    assert not mismatches, f"{len(mismatches)} message(s) differ, first at index {mismatches[0]}"
    assert run("plan", changed, "--detailed-exitcode").code == 0


def test_classic_to_quorum_keeps_transient_messages_transient(run, write, vhost, api, broker_version):
    assert run("apply", files(write, vhost), "--auto-approve").code == 0
    sent = sample_messages(300, seed=11)
    publish_many(vhost, sent)
    quorum = files(write, vhost, "{type: quorum}", "quorum.yaml")
    plan = run("plan", quorum)
    priorities = broker_version >= QUORUM_PRIORITIES_SINCE
    assert ("quorum queues on RabbitMQ" in plan.out and "in another order" in plan.out) is priorities, plan.out
    result = run("apply", quorum, "--auto-approve", "--migrate-messages")
    assert result.code == 0, result.err
    assert api.get("queues", vhost, "work")["type"] == "quorum"
    got = read_all(vhost, "work")
    if priorities:  # the quorum queue serves higher priorities first: each priority keeps its order
        def by_priority(messages):  # no priority is a level of its own (4.3.6 does not serve it as 0)
            return {p: [m for m in messages if m[1].priority == p] for p in (None, *range(10))}
        assert len(got) == 300 and [m[0] for m in got] != [m[0] for m in sent]
        for level, expected in by_priority(sent).items():
            assert len(by_priority(got)[level]) == len(expected)
            assert all(same_message(s, g) for s, g in zip(expected, by_priority(got)[level])), level
    else:
        assert len(got) == 300 and all(same_message(s, g) for s, g in zip(sent, got))
    assert bindings_of(api, vhost, "work") == {("orders", "order.#")}


def test_a_loaded_queue_is_not_replaced_without_the_flag(run, write, vhost, api):
    assert run("apply", files(write, vhost), "--auto-approve").code == 0
    publish_many(vhost, sample_messages(25))
    wait_for_statistics(api, vhost, "work", 25)
    changed = files(write, vhost, "{message_ttl: 1h}", "changed.yaml")

    plan = run("plan", changed)
    assert "messages in the queue now: 25" in plan.out
    assert "DESTRUCTIVE: it holds 25 message(s); apply refuses unless --migrate-messages" in plan.out
    for flags in ((), ("--allow-replace",)):
        result = run("apply", changed, "--auto-approve", *flags)
        assert result.code == 1
        assert "holds 25 message(s)" in result.err and "--migrate-messages" in result.err
    assert message_count(vhost, "work") == 25
    assert "x-message-ttl" not in api.get("queues", vhost, "work")["arguments"]


def test_an_interrupted_migration_is_finished_by_the_next_run(run, write, vhost, api):
    """The state a crash leaves after the old queue was deleted: the messages and the
    record of the migration are only in the temporary queue."""
    from topology.kinds import BindingState, QueueState
    from topology.migration_record import migration_queue_name, MigrationRecord

    path = files(write, vhost, "{message_ttl: 1h}")
    assert run("apply", path, "--auto-approve", "--migrate-messages").code == 0
    api.delete("queues", vhost, "work")
    target = QueueState(vhost=vhost, queue="work", arguments={"x-message-ttl": 3_600_000})
    record = MigrationRecord(vhost, "work", target, (
        BindingState(vhost=vhost, source="orders", destination="work", routing_key="order.#"),
        BindingState(vhost=vhost, source="amq.topic", destination="work", routing_key="kept.#"),
    ))
    temporary = migration_queue_name("work")
    api.put("queues", vhost, temporary, body={"durable": True, "arguments": {
        "x-queue-type": "classic", "topology-migration": record.to_argument()}})
    sent = sample_messages(500, seed=3)
    publish_many(vhost, sent, exchange="", routing_key=temporary)
    wait_for_statistics(api, vhost, temporary, 500)

    plan = run("plan", path)
    assert ">> queue work" in plan.out and "messages waiting to be moved back: 500" in plan.out
    assert "1 migration(s) to finish" in plan.out
    result = run("apply", path, "--auto-approve")  # no flag needed to finish what was started
    assert result.code == 0, result.err
    assert f">> queue {vhost}/work: migration finished, 500 message(s) moved into it" in result.out
    assert [q["name"] for q in api.get("queues", vhost)] == ["work"]
    assert bindings_of(api, vhost, "work") == {("orders", "order.#"), ("amq.topic", "kept.#")}
    got = read_all(vhost, "work")
    assert len(got) == 500 and all(same_message(s, g) for s, g in zip(sent, got))


def test_a_seal_left_by_a_crash_is_removed_before_the_new_queue_is_declared(run, write, vhost, api):
    """The state a crash leaves after a quorum queue was sealed and deleted: the seal
    policy (which would also match the new queue) and the temporary queue."""
    from topology.migrate import SEAL_DEFINITION, exact_pattern
    from topology.kinds import BindingState, QueueState
    from topology.migration_record import migration_queue_name, MigrationRecord

    path = files(write, vhost, "{type: quorum, delivery_limit: 5}")
    assert run("apply", files(write, vhost, "{type: quorum}", "before.yaml"), "--auto-approve").code == 0
    api.delete("queues", vhost, "work")
    target = QueueState(vhost=vhost, queue="work", type="quorum", arguments={"x-delivery-limit": 5})
    record = MigrationRecord(vhost, "work", target, (
        BindingState(vhost=vhost, source="orders", destination="work", routing_key="order.#"),))
    temporary = migration_queue_name("work")
    api.put("queues", vhost, temporary, body={"durable": True, "arguments": {
        "x-queue-type": "classic", "topology-migration": record.to_argument()}})
    api.put("policies", vhost, temporary, body={"pattern": exact_pattern("work"), "apply-to": "queues",
                                                 "priority": 1, "definition": SEAL_DEFINITION})
    publish_many(vhost, sample_messages(20, seed=5), exchange="", routing_key=temporary)

    plan = run("plan", path)
    assert "1 migration(s) to finish" in plan.out and "policy" not in plan.out  # the seal is part of the migration
    result = run("apply", path, "--auto-approve")
    assert result.code == 0, result.err
    assert api.get("policies", vhost) == []
    publish_many(vhost, sample_messages(5, seed=6), exchange="", routing_key="work")  # not refused: no seal
    assert message_count(vhost, "work") == 25
    assert run("plan", path, "--detailed-exitcode").code == 0


def test_a_seal_left_on_a_kept_queue_is_removed_with_its_seal_messages(run, write, vhost, api):
    """A crash while a quorum queue was sealed, then the files reverted: the queue is kept,
    and the seal policy and seal messages must go before messages are moved back."""
    from topology.broker.amqp import SEAL_HEADER, seal_value
    from topology.migrate import SEAL_DEFINITION, exact_pattern
    from topology.kinds import BindingState, QueueState
    from topology.migration_record import migration_queue_name, MigrationRecord

    path = files(write, vhost, "{type: quorum}")
    assert run("apply", path, "--auto-approve").code == 0
    kept = sample_messages(10, seed=8)
    publish_many(vhost, kept, exchange="", routing_key="work")
    seal = pika.BasicProperties(headers={SEAL_HEADER: seal_value(vhost, "work", "c0ffee")})
    publish_many(vhost, [(b"", seal), (b"", seal)], exchange="", routing_key="work")
    target = QueueState(vhost=vhost, queue="work", type="quorum")
    record = MigrationRecord(vhost, "work", target, (
        BindingState(vhost=vhost, source="orders", destination="work", routing_key="order.#"),), token="c0ffee")
    temporary = migration_queue_name("work")
    api.put("queues", vhost, temporary, body={"durable": True, "arguments": {
        "x-queue-type": "classic", "topology-migration": record.to_argument()}})
    waiting = sample_messages(15, seed=9)
    publish_many(vhost, waiting, exchange="", routing_key=temporary)
    api.put("policies", vhost, temporary, body={"pattern": exact_pattern("work"), "apply-to": "queues",
                                                 "priority": 1, "definition": SEAL_DEFINITION})

    result = run("apply", path, "--auto-approve")
    assert result.code == 0, result.err
    assert api.get("policies", vhost) == []
    got = read_all(vhost, "work")
    assert sorted(body for body, _ in got) == sorted(body for body, _ in kept + waiting)  # no seal message
    assert [q["name"] for q in api.get("queues", vhost)] == ["work"]


def test_messages_that_carry_the_tools_header_names_are_moved_unchanged(run, write, vhost, api):
    """A publisher's message with a seal header (as the tool once wrote it, predictably) was dropped
    during a migration, one with a stash header came back altered; markers now name the migration."""
    from topology.broker.amqp import SEAL_HEADER, STASH_HEADER, seal_value

    assert run("apply", files(write, vhost, "{type: quorum}"), "--auto-approve").code == 0
    sent = [
        (b"sealed?", pika.BasicProperties(delivery_mode=2, headers={SEAL_HEADER: seal_value(vhost, "work")})),
        (b"stashed?", pika.BasicProperties(delivery_mode=1, headers={STASH_HEADER: {"delivery-mode": 2, "headers": False}})),
        (b"mine", pika.BasicProperties(delivery_mode=2, headers={STASH_HEADER: "mine", "k": 1})),
        (b"plain", pika.BasicProperties(delivery_mode=1)),
    ]
    publish_many(vhost, sent, exchange="", routing_key="work")
    result = run("apply", files(write, vhost, "{type: classic}", "classic.yaml"), "--auto-approve", "--migrate-messages")
    assert result.code == 0, result.err
    assert api.get("queues", vhost, "work")["type"] == "classic"
    got = read_all(vhost, "work")
    assert [body for body, _ in got] == [body for body, _ in sent]
    for (_, before), (_, after) in zip(sent, got):
        headers = dict(after.headers or {})
        headers.pop("x-delivery-count", None)
        assert (after.delivery_mode, headers or None) == (before.delivery_mode, before.headers)


@pytest.mark.parametrize("queue_type, setting, argument, unit", [
    ("classic", "message_ttl", "x-message-ttl", ("h", 3_600_000)),
    # killed while sealed, too; limits above the deliveries this test makes (see README: a kill
    # returns the messages the mover held, counting one delivery each)
    ("quorum", "delivery_limit", "x-delivery-limit", ("0", 10)),
])
def test_killed_migrations_lose_no_message(write, vhost, api, queue_type, setting, argument, unit):
    """Kill apply at random points of migrations, several times; each next run finishes the job."""
    seed = int(os.environ.get("TOPOLOGY_TEST_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    subprocess.run([sys.executable, "-m", "topology", "apply", files(write, vhost, f"{{type: {queue_type}}}"),
                    "--auto-approve"], cwd=ROOT, check=True, capture_output=True)
    sent = sample_messages(4000, seed=5)
    publish_many(vhost, sent)
    expected = {body for body, _ in sent}
    for round_ in range(4):
        changed = f"{{type: {queue_type}, {setting}: {round_ + 1}{unit[0]}}}"
        path = files(write, vhost, changed, f"round{round_}.yaml")
        command = [sys.executable, "-m", "topology", "apply", path, "--auto-approve", "--migrate-messages"]
        victim = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        delay = rng.uniform(0.4, 2.5)
        time.sleep(delay)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        finish = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        assert finish.returncode == 0, f"seed {seed}, round {round_}, killed after {delay:.2f}s: {finish.stderr}"
        assert api.get("queues", vhost, "work")["arguments"][argument] == (round_ + 1) * unit[1]
        got = {body for body, _ in read_all(vhost, "work", keep=True)}
        lost = expected - got
        assert not lost, f"seed {seed}, round {round_}, killed after {delay:.2f}s: {len(lost)} message(s) lost"
        assert got <= expected, f"seed {seed}, round {round_}: foreign messages {sorted(got - expected)[:3]}"
        assert bindings_of(api, vhost, "work") == {("orders", "order.#")}
        assert [q["name"] for q in api.get("queues", vhost)] == ["work"]
        assert api.get("policies", vhost) == []


def test_a_policy_that_could_drop_waiting_messages_stops_the_migration(run, write, vhost, api):
    assert run("apply", files(write, vhost), "--auto-approve").code == 0
    api.put("policies", vhost, "everything", body={"pattern": ".*", "definition": {"message-ttl": 1000}})
    publish_many(vhost, sample_messages(40))
    result = run("apply", files(write, vhost, "{max_length: 100}", "changed.yaml"), "--auto-approve", "--migrate-messages")
    assert result.code == 1
    assert "policy 'everything' applies to the temporary queue" in result.err and "message-ttl" in result.err
    assert message_count(vhost, "work") == 40
    assert [q["name"] for q in api.get("queues", vhost)] == ["work"]
    assert bindings_of(api, vhost, "work") == {("orders", "order.#")}


def test_a_refused_new_queue_gives_back_the_old_one_with_messages_and_bindings(run, write, vhost, api):
    assert run("apply", files(write, vhost), "--auto-approve").code == 0
    api.post("bindings", vhost, "e", "amq.direct", "q", "work", body={"routing_key": "legacy"})
    sent = sample_messages(60)
    publish_many(vhost, sent)
    # validation refuses what the broker is known to refuse: the broker's refusal of the new queue
    # is injected in front of it
    with FaultProxy() as proxy:
        proxy.add(Rule("400", "PUT", f"/api/queues/{quote(vhost, safe='')}/work", times=1))
        result = run("apply", files(write, vhost, "{message_ttl: 5000s}", "bad.yaml"), "--auto-approve",
                     "--migrate-messages", "--url", proxy.url)
    assert result.code == 1, result.err
    assert "the old queue was restored with its 60 message(s) and its bindings" in result.err
    assert "x-message-ttl" not in api.get("queues", vhost, "work")["arguments"]
    assert bindings_of(api, vhost, "work") == {("orders", "order.#"), ("amq.direct", "legacy")}
    got = read_all(vhost, "work")
    assert len(got) == 60 and all(same_message(s, g) for s, g in zip(sent, got))


def test_a_queue_with_consumers_is_not_migrated(run, write, vhost, api):
    assert run("apply", files(write, vhost), "--auto-approve").code == 0
    publish_many(vhost, sample_messages(5))
    connection = connect(vhost)
    try:
        channel = connection.channel()
        channel.basic_consume("work", lambda *args: None)
        result = run("apply", files(write, vhost, "{message_ttl: 1h}", "changed.yaml"), "--auto-approve",
                     "--migrate-messages")
    finally:
        connection.close()
    assert result.code == 1 and "consumer(s): stop them first" in result.err
    assert "x-message-ttl" not in api.get("queues", vhost, "work")["arguments"]


def test_a_broker_restart_during_a_migration_leaves_nothing_the_next_run_cannot_finish(write, vhost, api):
    subprocess.run([sys.executable, "-m", "topology", "apply", files(write, vhost), "--auto-approve"],
                   cwd=ROOT, check=True, capture_output=True)
    sent = [(body, pika.BasicProperties(delivery_mode=2, headers=p.headers))
            for body, p in sample_messages(6000, seed=9)]  # only persistent messages survive a restart
    publish_many(vhost, sent)
    path = files(write, vhost, "{message_ttl: 1h}", "changed.yaml")
    command = [sys.executable, "-m", "topology", "apply", path, "--auto-approve", "--migrate-messages"]
    victim = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err = restart_broker_during(victim, after=1.2)
    if victim.returncode != 0:  # it may also have finished before the broker stopped
        assert err.strip().splitlines()[-1].startswith("error:") and "Traceback" not in err, err
    finish = run_until_it_succeeds(command)
    assert finish.returncode == 0, finish.stderr
    got = {body for body, _ in read_all(vhost, "work")}
    assert got >= {body for body, _ in sent}


class Publisher(threading.Thread):
    """Publishes numbered messages with confirms and the mandatory flag until stopped (or ``limit``
    messages), recording which the broker confirmed and which it refused (nack) or returned."""

    LIMIT = 20_000
    """About 40 s at the fastest interval: all of a migration on 3.10 (about 40 s with both
    publishers). On 4.0 a migration chased this hard took over ten minutes, most of it moving the
    backlog back into a quorum queue that grows by the direct publisher's 500 messages a second
    (the mover's confirms slow down as it grows); unbounded, that one case was most of the CI run."""

    def __init__(self, vhost: str, exchange: str, routing_key: str, prefix: str, interval: float = 0.002,
                 limit: int | None = LIMIT):
        super().__init__(daemon=True)
        self.interval, self.limit = interval, limit
        self.vhost, self.exchange, self.routing_key, self.prefix = vhost, exchange, routing_key, prefix
        self.confirmed: list[bytes] = []
        self.refused: list[bytes] = []
        self.unknown: list[bytes] = []
        self.error: BaseException | None = None
        self.reconnects = 0
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            connection = channel = None
            i = 0
            while not self.stop.is_set() and (self.limit is None or i < self.limit):
                if channel is None or not channel.is_open:
                    if connection is not None and connection.is_open:
                        connection.close()
                    connection = connect(self.vhost)
                    channel = connection.channel()
                    channel.confirm_delivery()
                body = f"{self.prefix}-{i}".encode()
                i += 1
                try:
                    channel.basic_publish(self.exchange, self.routing_key, body, mandatory=True)
                    self.confirmed.append(body)
                except (pika.exceptions.NackError, pika.exceptions.UnroutableError):
                    self.refused.append(body)  # the publisher knows: it would publish again
                except pika.exceptions.AMQPError:
                    # RabbitMQ 3.10 may close the connection of a publisher to a quorum queue
                    # being deleted (a channel crash in the broker); a client reconnects. Whether
                    # this message was taken is unknown.
                    self.unknown.append(body)
                    self.reconnects += 1
                    channel = None
                time.sleep(self.interval)
            connection.close()
        except BaseException as error:  # reported by the test
            self.error = error


@pytest.mark.parametrize("queue_type, interval", [("classic", 0.002), ("quorum", 0.002), ("quorum", 0.01)])
def test_publishers_during_a_migration_lose_no_confirmed_message(run, write, vhost, api, queue_type, interval):
    """Two publishers run through the migration (up to Publisher.LIMIT messages each), one through
    the bound exchange, one straight to the queue through the default exchange. Every message the broker
    confirmed is in the new queue at the end; only those published through the exchange
    at a binding switch may be there twice.

    A quorum queue is sealed before it is deleted, so the migration finishes under
    traffic. A classic queue cannot be (the broker confirms a message on its way to a
    queue being deleted, and drops it), so the migration stops while someone publishes
    straight to the queue, and the next run, once they stopped, finishes it."""
    assert run("apply", files(write, vhost, f"{{type: {queue_type}}}"), "--auto-approve").code == 0
    preloaded = [f"old-{i}".encode() for i in range(3000)]
    publish_many(vhost, [(body, pika.BasicProperties(delivery_mode=2)) for body in preloaded])
    # a classic queue's migration stops by itself while the direct publisher runs (the point of that
    # case), so its publishers must run until apply returns; a quorum queue's finishes under traffic
    limit = Publisher.LIMIT if queue_type == "quorum" else None
    publishers = [Publisher(vhost, "orders", "order.created", "routed", limit=limit),
                  Publisher(vhost, "", "work", "direct", interval, limit=limit)]
    for publisher in publishers:
        publisher.start()
    time.sleep(0.5)
    changed = files(write, vhost, f"{{type: {queue_type}, max_length: 1000000, overflow: reject-publish}}", "changed.yaml")
    result = run("apply", changed, "--auto-approve", "--migrate-messages")
    time.sleep(0.5)
    for publisher in publishers:
        publisher.stop.set()
        publisher.join(timeout=30)
        assert not publisher.is_alive() and publisher.error is None, repr(publisher.error)
    if queue_type == "classic":
        assert result.code == 1 and "messages keep arriving in " + vhost + "/work straight through" in result.err
        assert "1 migration(s) to finish" in run("plan", changed).out
        result = run("apply", changed, "--auto-approve")  # resuming needs no flag
    assert result.code == 0, result.err
    assert api.get("queues", vhost, "work")["arguments"].get("x-max-length") == 1_000_000
    assert [q["name"] for q in api.get("queues", vhost)] == ["work"]
    assert [p["name"] for p in api.get("policies", vhost)] == []  # the seal is gone

    got = [body for body, _ in read_all(vhost, "work")]
    routed, direct = publishers
    assert len(routed.confirmed) > 100 and len(direct.confirmed) > 100  # they really ran
    missing = set(preloaded + routed.confirmed + direct.confirmed) - set(got)
    assert not missing, f"{len(missing)} confirmed message(s) lost, e.g. {sorted(missing)[:5]}"
    unknown = set(routed.unknown + direct.unknown)
    assert set(got) - unknown <= set(preloaded + routed.confirmed + direct.confirmed)  # nothing refused slipped in
    duplicates = Counter(got) - Counter(set(got))
    assert all(body.startswith(b"routed-") for body in duplicates), sorted(duplicates)[:5]
    print(f"{queue_type}: {len(routed.confirmed)} + {len(direct.confirmed)} confirmed, "
          f"{len(routed.refused)} + {len(direct.refused)} refused, {sum(duplicates.values())} duplicate(s), "
          f"{routed.reconnects + direct.reconnects} reconnection(s)")
