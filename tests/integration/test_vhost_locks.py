"""Per-vhost apply locks against the real broker: cluster-wide changes, saved plans, hostile vhost
names, and an older version's broker-wide lock.

Tests that hold the cluster-wide lock or the old broker-wide one do it in a lock vhost of their
own (``--amqp-url .../<vhost>``), so that no other apply on the broker ever sees them."""

from __future__ import annotations

import os
import threading
import uuid

import pika
import pytest

from tests.conftest import AMQP_HOST, AMQP_PORT, BROKER_AUTH, amqp_uri

pytestmark = pytest.mark.broker

QUEUES = """
vhosts:
  {vhost}:
    queues:
      work: {{durable: true}}
"""

WITH_USER = QUEUES + """
users:
  {user}:
    password: ${{LOCK_TEST_PASSWORD}}
    tags: [monitoring]
    permissions:
      {vhost}: {{configure: ".*", write: ".*", read: ".*"}}
"""


@pytest.fixture
def lock_vhost(api, other_vhost):
    """A vhost of this test's own to hold the lock queues in."""
    api.put("vhosts", other_vhost)
    return other_vhost


@pytest.fixture
def user(api, monkeypatch):
    name = f"lock-test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("LOCK_TEST_PASSWORD", uuid.uuid4().hex)
    yield name
    api.delete("users", name)


def locks(lock_vhost: str, *vhosts: str, cluster: bool = False, timeout: float = 30):
    """The apply locks of ``vhosts`` (and the cluster-wide one), held here as another apply would."""
    from topology.broker.amqp import Amqp, ApplyLock
    from topology.locks import CLUSTER, vhost_key

    lock = ApplyLock(Amqp(amqp_uri(lock_vhost), *BROKER_AUTH, timeout=10))
    lock.acquire([vhost_key(v) for v in vhosts] + ([CLUSTER] if cluster else []), timeout=timeout)
    return lock


def test_a_change_to_users_waits_for_the_cluster_wide_lock(run, write, vhost, lock_vhost, user, api):
    path = write(WITH_USER.format(vhost=vhost, user=user))
    lock = locks(lock_vhost, cluster=True)  # another apply changing users
    try:
        refused = run("apply", path, "--auto-approve", "--amqp-url", amqp_uri(lock_vhost))
    finally:
        lock.release()
    assert refused.code == 3, refused.err
    line = refused.err.strip().splitlines()[-1]
    assert line.startswith("error: the apply lock of cluster-wide objects (users, global parameters)"), line
    assert f"pid {os.getpid()}" in line
    # refused before its first write, in the vhost too
    assert api.session.get(api.url("users", user)).status_code == 404
    assert api.session.get(api.url("vhosts", vhost)).status_code == 404


def test_waiting_for_the_cluster_wide_lock_then_applying(run, write, vhost, lock_vhost, user, api):
    path = write(WITH_USER.format(vhost=vhost, user=user))
    lock = locks(lock_vhost, cluster=True)
    releaser = threading.Timer(1.5, lock.release)
    releaser.start()
    try:
        result = run("apply", path, "--auto-approve", "--amqp-url", amqp_uri(lock_vhost), "--lock-timeout", "30")
    finally:
        releaser.join()
    assert result.code == 0, result.err
    assert "waiting for the apply lock of cluster-wide objects" in result.err
    assert api.get("users", user)["tags"] == ["monitoring"]


def test_unchanged_users_leave_the_cluster_wide_lock_to_others(run, write, vhost, lock_vhost, user, api):
    path = write(WITH_USER.format(vhost=vhost, user=user))
    assert run("apply", path, "--auto-approve", "--amqp-url", amqp_uri(lock_vhost)).code == 0
    edited = write(WITH_USER.format(vhost=vhost, user=user).replace("work: {durable: true}",
                                                                    "work: {durable: true}\n      more: {}"), "v2.yaml")
    lock = locks(lock_vhost, cluster=True)  # another apply changing users meanwhile
    try:
        result = run("apply", edited, "--auto-approve", "--amqp-url", amqp_uri(lock_vhost))
    finally:
        lock.release()
    assert result.code == 0, result.err
    assert "Apply complete: 1 change(s)" in result.out


def test_a_saved_plan_locks_the_vhosts_it_changes(run, write, vhost, other_vhost, api, tmp_path):
    path = write(QUEUES.format(vhost=vhost))
    plan_file = str(tmp_path / "plan.json")
    assert run("plan", path, "--out", plan_file).code == 0
    held = locks("", vhost)
    try:
        refused = run("apply", "--plan", plan_file, "--auto-approve")
    finally:
        held.release()
    assert refused.code == 3 and f"the apply lock of vhost {vhost!r}" in refused.err, refused.err
    elsewhere = locks("", other_vhost)
    try:
        applied = run("apply", "--plan", plan_file, "--auto-approve")
    finally:
        elsewhere.release()
    assert applied.code == 0, applied.err
    assert api.get("queues", vhost, "work")["durable"] is True


HOSTILE = ["/", "a/b", "ünïcødé 🐇", "new\nline", "\u202eevil", "%2F..%2F", "x" * 300, "é" * 200]


def test_hostile_vhost_names_get_lock_queues_the_broker_takes(lock_vhost, api):
    from topology.broker.amqp import Amqp, ApplyLock, lock_queue
    from topology.errors import LockHeld
    from topology.locks import vhost_key

    lock = locks(lock_vhost, *HOSTILE)
    try:
        names = {q["name"] for q in api.get("queues", lock_vhost)}
        assert {lock_queue(vhost_key(v)) for v in HOSTILE} <= names
        for vhost in HOSTILE:  # each one excludes a second holder
            second = ApplyLock(Amqp(amqp_uri(lock_vhost), *BROKER_AUTH, timeout=10))
            try:
                with pytest.raises(LockHeld):
                    second.acquire([vhost_key(vhost)])
            finally:
                second.release()
    finally:
        lock.release()


def test_an_apply_to_a_vhost_with_a_hostile_name(run, write, vhost, api):
    hostile = f"{vhost}/ünï 🐇"
    path = write(QUEUES.format(vhost=f'"{hostile}"'))
    try:
        held = locks("", vhost)  # a vhost whose name starts the same is another lock
        try:
            result = run("apply", path, "--auto-approve")
        finally:
            held.release()
        assert result.code == 0, result.err
        assert api.get("queues", hostile, "work")["name"] == "work"
    finally:
        api.delete("vhosts", hostile)


def test_an_older_versions_broker_wide_lock_makes_apply_wait(run, write, vhost, lock_vhost, api):
    from topology.broker.amqp import LOCK_QUEUE

    path = write(QUEUES.format(vhost=vhost))
    older = pika.BlockingConnection(pika.ConnectionParameters(AMQP_HOST, AMQP_PORT, lock_vhost,
                                                              pika.PlainCredentials(*BROKER_AUTH)))
    try:
        older.channel().queue_declare(LOCK_QUEUE, exclusive=True, auto_delete=True,
                                      arguments={"topology-holder": {"user": "old", "host": "ci-1", "pid": 7,
                                                                     "since": "2026-01-01T00:00:00Z"}})
        refused = run("apply", path, "--auto-approve", "--amqp-url", amqp_uri(lock_vhost))
    finally:
        older.close()
    assert refused.code == 3, refused.err
    line = refused.err.strip().splitlines()[-1]
    assert "an apply of an older topology version" in line and "held by old@ci-1 (pid 7" in line, line
    assert api.session.get(api.url("vhosts", vhost)).status_code == 404
    applied = run("apply", path, "--auto-approve", "--amqp-url", amqp_uri(lock_vhost))  # once it ended
    assert applied.code == 0, applied.err


def test_all_targets_apply_beside_a_held_vhost_lock(run, tmp_path, api, vhost, other_vhost, monkeypatch):
    """Two targets on one broker, in two vhosts: the one whose vhost another apply holds is refused,
    the other is applied."""
    from tests.conftest import BROKER_URL

    (tmp_path / "shop.yaml").write_text(QUEUES.format(vhost="${VHOST}"), encoding="utf-8")
    for name, value in (("dev", vhost), ("prod", other_vhost)):
        (tmp_path / f"{name}.yaml").write_text(f"VHOST: {value}\n", encoding="utf-8")
    (tmp_path / "topology.toml").write_text(f"""
[defaults]
files = ["shop.yaml"]
user = "{BROKER_AUTH[0]}"
password_env = "LOCK_TEST_BROKER_PASSWORD"

[targets.dev]
url = "{BROKER_URL}"
amqp_url = "{amqp_uri('')}"
values = ["dev.yaml"]

[targets.prod]
url = "{BROKER_URL}"
amqp_url = "{amqp_uri('')}"
values = ["prod.yaml"]
""", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOCK_TEST_BROKER_PASSWORD", BROKER_AUTH[1])
    held = locks("", vhost)
    try:
        result = run("apply", "--all-targets", "--auto-approve", "--continue-on-error")
    finally:
        held.release()
    assert result.code == 3, result.out + result.err
    assert f"the apply lock of vhost {vhost!r}" in result.out + result.err
    assert api.session.get(api.url("vhosts", vhost)).status_code == 404
    assert api.get("queues", other_vhost, "work")["name"] == "work"


def test_applying_a_plan_without_its_locks_is_refused_before_any_write(write, vhost, other_vhost, api):
    from tests.conftest import management_client
    from topology.apply import ApplyOptions
    from topology.engine import apply_plan, make_plan
    from topology.errors import ApplyError
    from topology.loader import load_valid

    topology = load_valid([write(QUEUES.format(vhost=vhost))])
    client = management_client()
    lock = locks("", other_vhost)  # the lock of another vhost than the plan's
    try:
        with pytest.raises(ApplyError, match=f"the plan changes vhost '{vhost}', whose apply lock this run does not hold"):
            apply_plan(make_plan(topology, client), client, topology=topology, options=ApplyOptions(lock=lock))
    finally:
        lock.release()
        client.close()
    assert api.session.get(api.url("vhosts", vhost)).status_code == 404


def test_a_lock_vhost_the_amqp_user_may_not_open_is_said_with_what_to_do(run, write, vhost, lock_vhost, user, api):
    """A team's AMQP user often has no access to '/': the refusal says where the lock is kept and how
    to name another vhost, which every apply to the broker must then share."""
    password = os.environ["LOCK_TEST_PASSWORD"]
    api.put("users", user, body={"password": password, "tags": ""})
    api.put("vhosts", vhost)
    api.put("permissions", vhost, user, body={"configure": ".*", "write": ".*", "read": ".*"})
    refused = run("apply", write(QUEUES.format(vhost=vhost)), "--auto-approve",
                  "--amqp-url", amqp_uri(lock_vhost, user, password))
    assert refused.code == 1
    line = refused.err.strip().splitlines()[-1]
    assert f"has no access to vhost '{lock_vhost}'" in line and "where the apply lock is kept" in line, line
    assert "every apply to this broker must keep its lock in the same vhost" in line and password not in refused.err


def test_locks_taken_early_out_of_order_are_given_up_and_what_was_read_under_them_read_again(
        run, write, vhost, lock_vhost, api, monkeypatch):
    """An apply takes each vhost's lock as its files name it, never waiting, and reads that vhost at
    once. Files naming a vhost whose lock another apply holds after one it took (against the lock
    order) make it give up what it holds and wait in order; the vhost it read under the lock it gave
    up is read again, so a change made there meanwhile is seen."""
    from topology.broker.client import ManagementClient

    first, second = vhost, f"{vhost}-z"  # in lock order; the files name the second first
    path = write(f"""
        vhosts:
          {second}:
            exchanges:
              x: {{type: direct}}
          {first}:
            queues:
              work: {{durable: true}}
        """)
    try:
        assert run("apply", path, "--auto-approve", "--amqp-url", amqp_uri(lock_vhost)).code == 0
        held = locks(lock_vhost, first)  # another apply, in the vhost named second
        gave_up = threading.Event()
        drop = ManagementClient.drop_ungated_reads

        def observed(self: ManagementClient) -> None:  # the apply gives up its locks: what it read goes
            drop(self)
            gave_up.set()

        monkeypatch.setattr(ManagementClient, "drop_ungated_reads", observed)
        results = []
        applying = threading.Thread(target=lambda: results.append(
            run("apply", path, "--auto-approve", "--amqp-url", amqp_uri(lock_vhost), "--lock-timeout", "30")))
        applying.start()
        try:
            assert gave_up.wait(20), "the apply did not give up the lock it took early"
            api.delete("exchanges", second, "x")  # while it waits for the lock of the first vhost
        finally:
            held.release()
            applying.join(60)
        result = results[0]
        assert result.code == 0, result.err
        assert f"exchange {second}/x: created" in result.out  # planned from a new read
        assert api.get("exchanges", second, "x")["type"] == "direct"
    finally:
        api.delete("vhosts", second)


def test_a_vhost_read_early_is_read_again_when_an_older_versions_lock_was_held_meanwhile(
        run, write, vhost, lock_vhost, api, monkeypatch):
    """An older version takes no vhost lock, only its broker-wide one. An apply that read a vhost
    as soon as it took that vhost's lock, and then finds the older apply's lock held, waits for it
    and reads the vhost again: the older apply may have changed it meanwhile."""
    from topology.broker.amqp import LOCK_QUEUE, ApplyLock

    path = write(f"""
        vhosts:
          {vhost}:
            exchanges:
              x: {{type: direct}}
        """)
    assert run("apply", path, "--auto-approve", "--amqp-url", amqp_uri(lock_vhost)).code == 0
    older = pika.BlockingConnection(pika.ConnectionParameters(AMQP_HOST, AMQP_PORT, lock_vhost,
                                                              pika.PlainCredentials(*BROKER_AUTH)))
    take = ApplyLock.try_take
    started: list[threading.Timer] = []

    def then_an_older_apply(self: ApplyLock, key) -> bool:
        taken = take(self, key)  # the vhost is read from here on
        if taken and not started:  # an older apply starts, changes the vhost, and ends a moment later
            older.channel().queue_declare(LOCK_QUEUE, exclusive=True, auto_delete=True)
            started.append(threading.Timer(1.5, lambda: api.delete("exchanges", vhost, "x")))
            started[0].start()
        return taken

    monkeypatch.setattr(ApplyLock, "try_take", then_an_older_apply)
    releaser = threading.Timer(3.0, older.close)  # the older apply ends (its only user by then)
    releaser.start()
    try:
        result = run("apply", path, "--auto-approve", "--amqp-url", amqp_uri(lock_vhost), "--lock-timeout", "30")
    finally:
        releaser.join()
        for timer in started:
            timer.join()
        if older.is_open:
            older.close()
    assert started, "no lock was taken early"
    assert result.code == 0, result.err
    assert "an apply of an older topology version" in result.err  # it waited for it
    assert f"exchange {vhost}/x: created" in result.out  # planned from a new read


def test_reads_held_for_the_gate_leave_the_reading_threads_to_the_vhosts_whose_lock_is_held(api, vhost):
    """An apply reads a vhost whose lock it took early at once, while the reads it may make only
    once it holds every lock wait for that (the gate): more of those than reading threads must not
    hold up the early read."""
    from tests.conftest import management_client
    from topology.broker.client import READERS, RequestRefused

    api.put("vhosts", vhost)
    client = management_client()
    client.gate = threading.Event()
    try:
        held = [f"{vhost}-elsewhere-{index}" for index in range(READERS + 2)]
        for name in held:
            client.read_ahead_vhost(name)  # gated: waits for the gate
        client.read_ahead_vhost(vhost, gated=False)
        early = client._prefetched[(("definitions", vhost), ())]
        assert early.done.wait(30), "the early read waited behind the reads held for the gate"
        assert early.error is None and "queues" in early.result
        assert not any(client._prefetched[(("definitions", name), ())].done.is_set() for name in held)
        client.gate.set()
        for name in held:  # once the gate opens, each is read (these vhosts do not exist: the broker says so)
            slot = client._prefetched[(("definitions", name), ())]
            assert slot.done.wait(30) and isinstance(slot.error, RequestRefused), slot.error
    finally:
        client.cancelled = True
        client.gate.set()
        client.close()
