"""What an apply locks (topology.locks) and the lock queues' names, without a broker."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest

from topology.broker.amqp import CLUSTER_LOCK_QUEUE, LOCK_QUEUE, VHOST_LOCK_PREFIX, lock_queue
from topology.errors import LockHeld
from topology.locks import (
    CLUSTER, LockKey, describe_keys, keys_for_plan, keys_for_topology, lock_groups, plan_under_locks, vhost_key,
)
from topology.rules.queues import MAX_QUEUE_NAME_BYTES

HOSTILE = [
    "/", "shop", "a/b/c", "%2F", "", " ", "ünïcødé-vhost", "日本語", "emoji-🐇", "tab\there", "new\nline",
    "\u202eright-to-left", "zero\u200bwidth", "x" * 300, "é" * 200, "🐇" * 100, "amq.direct", "a~" + "0" * 16,
    "topology.apply-lock", "\x00nul", "lone-\ud800-surrogate",
]


@pytest.mark.parametrize("vhost", HOSTILE)
def test_every_vhost_gets_a_valid_lock_queue_name(vhost):
    name = lock_queue(vhost_key(vhost))
    assert name.startswith(VHOST_LOCK_PREFIX)
    assert len(name.encode("utf-8")) <= MAX_QUEUE_NAME_BYTES
    assert name.isprintable()  # readable in rabbitmqctl list_queues, nothing that moves the cursor
    # ASCII: RabbitMQ 4 cuts its "locked queue" refusal to 255 characters; multi-byte ones overflow
    # the frame and the broker drops the connection instead of refusing
    assert name.isascii()
    assert name not in (LOCK_QUEUE, CLUSTER_LOCK_QUEUE)


def test_plain_names_are_kept_and_others_hashed_but_recognisable():
    assert lock_queue(vhost_key("/")) == "topology.apply-lock.vhost:/"
    unicode = lock_queue(vhost_key("ünïcødé"))
    assert unicode.startswith("topology.apply-lock.vhost:?n?c?d?~") and len(unicode) == len(VHOST_LOCK_PREFIX) + 7 + 17
    assert lock_queue(CLUSTER) == "topology.apply-lock.cluster"
    long = lock_queue(vhost_key("orders-" + "x" * 300))
    assert long.startswith("topology.apply-lock.vhost:orders-xxx") and "~" in long
    assert lock_queue(vhost_key("new\nline")).startswith("topology.apply-lock.vhost:new?line~")


def test_distinct_vhosts_get_distinct_lock_queues():
    names = [lock_queue(vhost_key(v)) for v in HOSTILE]
    names += [lock_queue(vhost_key("x" * 300 + "1")), lock_queue(vhost_key("x" * 300 + "2"))]
    assert len(set(names)) == len(HOSTILE) + 2


def test_vhosts_sort_by_name_and_the_cluster_key_last():
    keys = [CLUSTER, vhost_key("b"), vhost_key("a"), vhost_key("zz")]
    assert sorted(keys) == [vhost_key("a"), vhost_key("b"), vhost_key("zz"), CLUSTER]
    assert describe_keys(keys) == "vhost 'a', vhost 'b', vhost 'zz' and cluster-wide objects (users, global parameters)"


def change(vhost: str, kind: str = "queue"):
    return SimpleNamespace(vhost=vhost, kind=kind)


def plan_of(*changes):
    return SimpleNamespace(changes=list(changes))


def test_a_plan_locks_the_vhost_of_each_change_and_the_cluster_only_for_objects_of_no_vhost():
    queue_only = plan_of(change("shop"), change("shop", "binding"), change("billing", "vhost"))
    assert keys_for_plan(queue_only) == {vhost_key("shop"), vhost_key("billing")}
    # a permission is stored per vhost: its vhost's lock; a user or a global parameter: the cluster's
    with_users = plan_of(change("shop", "permission"), change("", "user"), change("", "global_parameter"))
    assert keys_for_plan(with_users) == {vhost_key("shop"), CLUSTER}
    assert keys_for_plan(plan_of()) == frozenset()


def test_the_files_lock_their_vhosts_and_those_their_users_have_permissions_on():
    user = SimpleNamespace(spec=SimpleNamespace(permissions={"shared": object()}, topic_permissions={"logs": {}}))
    topology = SimpleNamespace(vhosts={"shop": object(), "/": object()}, users={"app": user})
    assert keys_for_topology(topology) == {vhost_key("shop"), vhost_key("/"), vhost_key("shared"), vhost_key("logs")}


@dataclass
class FakeLock:
    """Locks held by others are in ``busy``; records what was taken, in which order."""

    busy: set = field(default_factory=set)
    taken: list = field(default_factory=list)
    releases: int = 0
    _held: set = field(default_factory=set)

    @property
    def held(self):
        return frozenset(self._held)

    def acquire(self, keys, timeout=0.0):
        for key in sorted(set(keys) - self._held):
            if key in self.busy:
                raise LockHeld(f"the apply lock of {key.title} is held")
            self._held.add(key)
            self.taken.append(key)

    def release(self):
        self.releases += 1
        self._held.clear()


def test_a_plan_that_needs_no_more_locks_is_made_once():
    lock, plans = FakeLock(), [plan_of(change("a"))]
    made = plan_under_locks(lock, {vhost_key("a"), vhost_key("b")}, plans.pop, 0)
    assert made.changes[0].vhost == "a" and lock.taken == [vhost_key("a"), vhost_key("b")] and not lock.releases


def test_a_cluster_wide_change_takes_the_cluster_lock_and_plans_again_under_it():
    lock = FakeLock()
    plans = [plan_of(change("a")), plan_of(change("a"), change("", "user"))]  # popped from the end
    made = plan_under_locks(lock, {vhost_key("a")}, plans.pop, 0)
    assert [c.vhost for c in made.changes] == ["a"]  # the second plan, made holding both
    assert lock.taken == [vhost_key("a"), CLUSTER] and not lock.releases
    assert not plans


def test_a_missing_lock_that_sorts_before_a_held_one_restarts_in_order():
    lock = FakeLock()
    plans = [plan_of(change("a"), change("z")), plan_of(change("a"), change("z"))]
    plan_under_locks(lock, {vhost_key("z")}, plans.pop, 0)
    assert lock.releases == 1 and lock.taken == [vhost_key("z"), vhost_key("a"), vhost_key("z")]


def test_a_cluster_lock_held_elsewhere_refuses_the_apply():
    lock = FakeLock(busy={CLUSTER})
    with pytest.raises(LockHeld, match="cluster-wide"):
        plan_under_locks(lock, {vhost_key("a")}, lambda: plan_of(change("", "user")), 0)


def test_applies_of_one_run_take_turns_only_when_their_locks_meet():
    scope, other = ("rabbit@one", "/"), ("rabbit@two", "/")
    groups = lock_groups({
        "a": (scope, frozenset({vhost_key("a")})),
        "b": (scope, frozenset({vhost_key("b")})),
        "ab": (scope, frozenset({vhost_key("a"), vhost_key("b")})),
        "c": (scope, frozenset({vhost_key("c"), CLUSTER})),
        "d": (scope, frozenset({CLUSTER})),
        "elsewhere": (other, frozenset({vhost_key("a")})),
        "empty": (scope, frozenset()),
    })
    assert groups["a"] == groups["b"] == groups["ab"]  # through "ab"
    assert groups["c"] == groups["d"] != groups["a"]
    assert len({groups["elsewhere"], groups["empty"], groups["a"], groups["c"]}) == 4
    unknown = lock_groups({"x": (scope, None), "y": (scope, frozenset({vhost_key("y")})), "z": (other, None)})
    assert unknown["x"] == unknown["y"] != unknown["z"]


def test_lock_keys_are_values():
    assert LockKey(False, "a") == vhost_key("a") and hash(vhost_key("a")) == hash(LockKey(False, "a"))


def test_early_locks_read_a_vhost_at_once_only_when_its_lock_was_taken():
    from topology.locks import EarlyLocks, vhost_key

    taken, read = [], []

    def take(key):
        taken.append(key)
        if key.vhost == "boom":
            raise RuntimeError("connection lost")  # acquire() meets it again and says so
        return key.vhost != "held"

    early = EarlyLocks(take, read_now=lambda v: read.append(("now", v)), read_later=lambda v: read.append(("later", v)))
    for vhost in ("shop", "held", "shop", "boom", "audit"):
        early.named(vhost)
    early.finish()
    assert taken == [vhost_key(v) for v in ("shop", "held", "boom", "audit")]  # each once, in the files' order
    assert read == [("now", "shop"), ("later", "held"), ("later", "boom"), ("now", "audit")]


def test_early_locks_finish_without_waiting_when_the_files_failed():
    import threading

    from topology.locks import EarlyLocks

    stuck = threading.Event()
    early = EarlyLocks(lambda key: stuck.wait(5), read_now=lambda v: None, read_later=lambda v: None)
    early.named("shop")
    early.finish(wait=False)  # returns while the first take still waits for its connection
    stuck.set()
