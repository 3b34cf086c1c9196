"""Migrations under attack, against the real broker: the apply lock lost at every phase of a
migration, two applies racing for one queue, and order with a live publisher and with kills."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter

import pika
import pytest

from tests.conftest import BROKER_AUTH, ROOT, amqp_uri, connect, management_client
from tests.integration.test_migration import Publisher, files, publish_many, read_all

pytestmark = pytest.mark.broker

LOCK_NAME = "topology apply lock"


def numbered(count: int, prefix: str = "old") -> list[bytes]:
    return [f"{prefix}-{i:06d}".encode() for i in range(count)]


def persistent(bodies: list[bytes]) -> list[tuple[bytes, pika.BasicProperties]]:
    return [(body, pika.BasicProperties(delivery_mode=2)) for body in bodies]


def queue_bodies(vhost: str, queue: str) -> list[bytes]:
    """The queue's messages, left in it (an absent queue holds none)."""
    connection = connect(vhost)
    try:
        connection.channel().queue_declare(queue, passive=True)
    except pika.exceptions.ChannelClosedByBroker:
        return []
    finally:
        connection.close()
    return [body for body, _ in read_all(vhost, queue, keep=True)]


def lock_connection(api, pid: int, timeout: float = 20.0) -> str:
    """The name of the lock connection of process ``pid`` (its client properties say who holds it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for connection in api.get("connections"):
            properties = connection.get("client_properties") or {}
            if properties.get("connection_name") == LOCK_NAME and (properties.get("topology") or {}).get("pid") == pid:
                return connection["name"]
        time.sleep(0.1)
    pytest.fail(f"no lock connection of process {pid} appeared")


def inversions(bodies: list[bytes]) -> int:
    """Messages that come after a later one of the same publisher (numbers in the body)."""
    count, highest = 0, {}
    for body in bodies:
        prefix, _, number = body.decode().rpartition("-")
        if int(number) < highest.get(prefix, -1):
            count += 1
        highest[prefix] = max(highest.get(prefix, -1), int(number))
    return count


class LosingLock:
    """A real apply lock whose AMQP connection is closed by the broker (``DELETE /api/connections``,
    standing in for a network cut or an idle timeout) at the ``at``-th check: the checks are made
    before every request and every round of messages moved, so ``at`` picks a point in a migration."""

    def __init__(self, api, at: int | None, vhost: str):
        from topology.broker.amqp import Amqp, ApplyLock
        from topology.locks import vhost_key

        self.api, self.at, self.checks = api, at, 0
        self.lock = ApplyLock(Amqp(amqp_uri(), *BROKER_AUTH, timeout=10))
        self.lock.acquire([vhost_key(vhost)], timeout=60)  # the lock of the vhost the migration changes

    def check(self) -> None:
        from topology.errors import BrokerError

        self.checks += 1
        if self.checks == self.at:
            self.api.delete("connections", lock_connection(self.api, os.getpid()))
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                try:
                    self.lock.check()
                except BrokerError:
                    break
                time.sleep(0.05)
            else:
                pytest.fail("the lost lock was never noticed")
        self.lock.check()

    @property
    def held(self):
        return self.lock.held

    def release(self) -> None:
        self.lock.release()


def migrate_in_process(write, vhost: str, queue: str, at: int | None, api):
    """Apply ``queue`` (a YAML mapping) with --migrate-messages, losing the lock at check ``at``;
    return (the error or None, the number of lock checks made)."""
    from topology.apply import ApplyOptions
    from topology.broker.amqp import Amqp, MessageMover
    from topology.engine import apply_plan, make_plan
    from topology.errors import TopologyError
    from topology.loader import load_valid

    topology = load_valid([files(write, vhost, queue, "changed.yaml")])
    client = management_client()
    lock = LosingLock(api, at, vhost)
    mover = MessageMover(Amqp(amqp_uri(), *BROKER_AUTH, timeout=10), guard=lock.check)
    try:
        options = ApplyOptions(migrate_messages=True, mover=mover, lock=lock)  # type: ignore[arg-type]
        try:
            apply_plan(make_plan(topology, client), client, topology=topology, options=options)
        except TopologyError as error:
            return error, lock.checks
        return None, lock.checks
    finally:
        lock.release()
        mover.close()
        client.close()


@pytest.mark.parametrize("before, after", [("classic", "quorum"), ("quorum", "classic")])
def test_a_lost_lock_stops_the_migration_at_every_phase_and_the_next_run_finishes_it(run, write, vhost, api,
                                                                                      before, after):
    """The lock is lost at seven points spread over the whole migration (its first requests, the move
    of the backlog, the switch of bindings, the drain or seal of the old queue, the move back, the
    last requests): the run stops there in one line, never reports success, loses no message and
    leaves no duplicate; the next run finishes it with every message in order."""
    from topology.broker.amqp import MessageMover

    sent = numbered(300)
    old, new = f"{{type: {before}}}", f"{{type: {after}, max_length: 100000}}"

    def prepare() -> None:
        api.delete("queues", vhost, "work")
        assert run("apply", files(write, vhost, old), "--auto-approve").code == 0
        publish_many(vhost, persistent(sent))

    prepare()
    error, total = migrate_in_process(write, vhost, new, None, api)  # a whole migration: how many checks
    assert error is None and queue_bodies(vhost, "work") == sent
    assert total > 2 * len(sent) // MessageMover.PREFETCH  # one before every round moved, there and back
    # the first requests, the backlog, the switch of bindings, the drain or seal, the move back, the last requests
    points = sorted({1, 4, total // 3, total // 2, 2 * total // 3, total - 3, total - 1})
    for at in points:
        prepare()
        error, _ = migrate_in_process(write, vhost, new, at, api)
        assert error is not None, f"lock lost at check {at} of {total}: the apply reported success"
        line = str(error)
        assert "lost the apply lock" in line and "\n" not in line, line
        from topology.migration_record import migration_queue_name

        waiting = queue_bodies(vhost, "work") + queue_bodies(vhost, migration_queue_name("work"))
        assert sorted(set(waiting)) == sent, f"lock lost at check {at} of {total}: a message was lost"
        assert not Counter(waiting) - Counter(set(waiting)), f"lock lost at check {at} of {total}: duplicates"
        result = run("apply", files(write, vhost, new, "changed.yaml"), "--auto-approve", "--migrate-messages")
        assert result.code == 0, f"lock lost at check {at} of {total}: {result.err}"
        assert api.get("queues", vhost, "work")["type"] == after
        assert queue_bodies(vhost, "work") == sent, f"lock lost at check {at} of {total}: order or count"
        assert [q["name"] for q in api.get("queues", vhost)] == ["work"]
        assert api.get("policies", vhost) == []


def test_two_applies_after_a_lost_lock_never_both_move_messages(write, vhost, api):
    """The issue's scenario: the lock connection of a migrating apply is closed by the broker, and the
    same apply is started again at once. The first stops (exit 1, no success line), the second takes
    the lock and finishes; every message is there once, in order."""
    subprocess.run([sys.executable, "-m", "topology", "apply", files(write, vhost, "{type: classic}"), "--auto-approve"],
                   cwd=ROOT, check=True, capture_output=True)
    sent = numbered(3000)
    publish_many(vhost, persistent(sent))
    path = files(write, vhost, "{type: quorum}", "changed.yaml")
    command = [sys.executable, "-m", "topology", "apply", path, "--auto-approve", "--migrate-messages", "--lock-timeout", "60"]
    from topology.broker.amqp import Amqp, ApplyLock
    from topology.locks import vhost_key
    from topology.migration_record import migration_queue_name

    # The broker lists a connection only after its first statistics (up to 5 s), and the whole
    # migration can take less: the first apply waits for this lock until its own is listed.
    held = ApplyLock(Amqp(amqp_uri(), *BROKER_AUTH, timeout=10))
    held.acquire([vhost_key(vhost)], timeout=60)
    try:
        first = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lock = lock_connection(api, first.pid)
    finally:
        held.release()
    temporary = migration_queue_name("work")
    deadline = time.monotonic() + 60
    while not any(queue_bodies_count(vhost, temporary)):  # moving has begun
        assert time.monotonic() < deadline and first.poll() is None, "the migration never started"
        time.sleep(0.05)
    api.delete("connections", lock)
    second = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = first.communicate(timeout=120)
    assert first.returncode == 1, out + err
    assert "Apply complete" not in out and "lost the apply lock" in err.strip().splitlines()[-1], err
    assert "Traceback" not in err
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert "Apply complete" in out
    assert api.get("queues", vhost, "work")["type"] == "quorum"
    assert queue_bodies(vhost, "work") == sent
    assert [q["name"] for q in api.get("queues", vhost)] == ["work"]


def queue_bodies_count(vhost: str, queue: str) -> tuple[int]:
    """(ready messages,) of the queue, (0,) when it does not exist."""
    connection = connect(vhost)
    try:
        return (connection.channel().queue_declare(queue, passive=True).method.message_count,)
    except pika.exceptions.ChannelClosedByBroker:
        return (0,)
    finally:
        if connection.is_open:
            connection.close()


def first_copies(bodies: list[bytes]) -> list[bytes]:
    """The messages in the order of their first copy (a kill leaves duplicates behind)."""
    seen: set[bytes] = set()
    return [body for body in bodies if not (body in seen or seen.add(body))]


@pytest.mark.parametrize("before, after", [("classic", "quorum"), ("quorum", "classic")])
def test_a_live_publisher_keeps_its_order_through_a_migration(run, write, vhost, api, before, after):
    """Messages waiting in the queue come out first and in order; those a publisher sends through
    the exchange meanwhile follow in order, except the few that reached the queue being left in the
    instant before a switch of bindings (the Guarantees section's bound: one round of the mover's)."""
    from topology.broker.amqp import MessageMover

    assert run("apply", files(write, vhost, f"{{type: {before}}}"), "--auto-approve").code == 0
    preloaded = numbered(3000)
    publish_many(vhost, persistent(preloaded))
    publisher = Publisher(vhost, "orders", "order.created", "routed", interval=0.004)
    publisher.start()
    time.sleep(0.3)
    result = run("apply", files(write, vhost, f"{{type: {after}, max_length: 1000000}}", "changed.yaml"),
                 "--auto-approve", "--migrate-messages")
    time.sleep(0.3)
    publisher.stop.set()
    publisher.join(timeout=30)
    assert publisher.error is None, repr(publisher.error)
    assert result.code == 0, result.err
    got = queue_bodies(vhost, "work")
    assert len(publisher.confirmed) > 200  # it really ran
    assert got[:len(preloaded)] == preloaded
    routed = got[len(preloaded):]
    assert set(publisher.confirmed) <= set(routed), "a confirmed message was lost"
    late = inversions(first_copies(routed))
    duplicates = len(routed) - len(set(routed))
    print(f"{before} -> {after}: {len(publisher.confirmed)} published meanwhile, {late} out of order, "
          f"{duplicates} duplicate(s)")
    assert late <= 2 * MessageMover.PREFETCH, f"{late} of {len(routed)} messages out of order"


@pytest.mark.parametrize("before, after", [("classic", "quorum"), ("quorum", "classic")])
def test_kills_during_a_migration_keep_the_order_of_first_copies(write, vhost, api, before, after):
    """Killed at random points, then re-run: every message is there, in order of their first copies
    when moving out of a classic queue; a kill leaves at most one round of the mover's duplicated,
    and a quorum queue puts the round it gets back behind its other messages (at most that many late)."""
    from topology.broker.amqp import MessageMover

    seed = int(os.environ.get("TOPOLOGY_TEST_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    subprocess.run([sys.executable, "-m", "topology", "apply", files(write, vhost, f"{{type: {before}}}"),
                    "--auto-approve"], cwd=ROOT, check=True, capture_output=True)
    sent = numbered(2500)
    publish_many(vhost, persistent(sent))
    path = files(write, vhost, f"{{type: {after}}}", "changed.yaml")
    command = [sys.executable, "-m", "topology", "apply", path, "--auto-approve", "--migrate-messages"]
    kills = 0
    for _ in range(3):
        victim = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.5, 2.5))
        if victim.poll() is None:
            victim.send_signal(signal.SIGKILL)
            kills += 1
        victim.wait()
    finish = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert finish.returncode == 0, f"seed {seed}: {finish.stderr}"
    got = queue_bodies(vhost, "work")
    assert set(got) == set(sent), f"seed {seed}: lost {len(set(sent) - set(got))}"
    duplicates = len(got) - len(sent)
    late = inversions(first_copies(got))
    print(f"{before} -> {after}, seed {seed}: {kills} kill(s), {duplicates} duplicate(s), {late} out of order")
    assert duplicates <= kills * MessageMover.PREFETCH, f"seed {seed}"
    assert late <= (kills * MessageMover.PREFETCH if before == "quorum" else 0), f"seed {seed}"


@pytest.mark.parametrize("before, after", [("classic", "quorum"), ("quorum", "classic")])
def test_a_consumer_that_attaches_during_a_migration_is_named_as_such(write, vhost, api, before, after):
    """An application consumer attaches to the old queue while its messages are being moved: the
    migration stops saying a consumer (not publishers) is in the way; once it is gone, the next run
    finishes with every message (those it held unacknowledged came back). A classic queue refuses
    the consumer while a round of the mover's runs (an exclusive consumer); a quorum queue ignores
    exclusivity, and the mover's next count finds it."""
    subprocess.run([sys.executable, "-m", "topology", "apply", files(write, vhost, f"{{type: {before}}}"), "--auto-approve"],
                   cwd=ROOT, check=True, capture_output=True)
    sent = numbered(6000)
    publish_many(vhost, persistent(sent))
    command = [sys.executable, "-m", "topology", "apply", files(write, vhost, f"{{type: {after}}}", "changed.yaml"),
               "--auto-approve", "--migrate-messages"]
    migrating = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    from topology.migration_record import migration_queue_name

    deadline = time.monotonic() + 60
    while not any(queue_bodies_count(vhost, migration_queue_name("work"))):
        assert time.monotonic() < deadline and migrating.poll() is None, "the migration never started"
        time.sleep(0.05)
    consumer = connect(vhost)
    try:
        attached = False
        while not attached and time.monotonic() < deadline:  # refused while the mover's round runs
            channel = consumer.channel()
            channel.basic_qos(prefetch_count=5)
            try:
                channel.basic_consume("work", lambda *args: None)
                attached = True
            except pika.exceptions.ChannelClosedByBroker as closed:
                assert closed.reply_code == 403, closed  # in exclusive use by the mover
                time.sleep(0.01)
        assert attached
        out, err = migrating.communicate(timeout=120)
    finally:
        consumer.close()  # its 5 unacknowledged messages go back to the queue
    assert migrating.returncode == 1, out
    line = err.strip().splitlines()[-1]
    assert "consume" in line and "publishers" not in line and "Traceback" not in err, line
    finish = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert finish.returncode == 0, finish.stderr
    assert set(queue_bodies(vhost, "work")) == set(sent)
