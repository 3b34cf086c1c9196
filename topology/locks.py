"""What an apply locks: one lock per vhost it may change, and one for cluster-wide objects.

Two applies exclude each other exactly when their lock sets meet, so applies to different
vhosts of one broker run side by side. The keys (pure values, :class:`LockKey`):

- **a vhost's key** covers everything inside that vhost, and the vhost object itself (its
  creation, limits, metadata): queues, exchanges, bindings, policies, operator policies,
  shovels, federation upstreams, migrations, and the permissions and topic permissions of any
  user *on that vhost* (the broker stores a permission per vhost and user; a user's own
  settings are cluster-wide);
- **the cluster key** covers what belongs to no vhost: users (their tags, passwords, their
  creation and deletion, which also drops their permissions) and global parameters.

An apply takes the keys of every vhost its files name (:func:`keys_for_topology`), plans under
them, and takes whatever else the plan turns out to need (:func:`plan_under_locks`): the cluster
key when the plan changes a user or a global parameter, then plans again, so what it writes is
always what it planned while holding every lock the plan needs. A saved plan takes exactly the
keys of its changes (:func:`keys_for_plan`).

Locks are always taken in one order, vhosts by name then the cluster key (the order of
:class:`LockKey`): a run waits only for a key that sorts after every key it holds, so two runs
never wait for each other. A run that finds it needs a key sorting before one it holds
releases everything and takes the whole set again, in order.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, order=True)
class LockKey:
    """One lock: a vhost's (``cluster`` false) or the cluster-wide one (``vhost`` empty). The order
    (vhosts by name, then the cluster key) is the order every run takes its locks in."""

    cluster: bool
    vhost: str = ""

    @property
    def title(self) -> str:
        """How messages name it: ``vhost 'shop'``, or ``cluster-wide objects (users, global parameters)``."""
        return "cluster-wide objects (users, global parameters)" if self.cluster else f"vhost {self.vhost!r}"


CLUSTER = LockKey(True)
"""The lock of users and global parameters."""


def vhost_key(vhost: str) -> LockKey:
    return LockKey(False, vhost)


def keys_for_topology(topology: Any) -> frozenset[LockKey]:
    """The locks an apply of these files takes before it reads the broker: every vhost the files
    declare, and every vhost a declared user is given permissions on (the plan reads and may change
    only those). The cluster key is left to the plan: taken only when it changes a user or a global
    parameter."""
    vhosts = set(topology.vhosts)
    for declared in topology.users.values():
        vhosts.update(declared.spec.permissions)
        vhosts.update(declared.spec.topic_permissions)
    return frozenset(vhost_key(v) for v in vhosts)


def keys_for_plan(plan: Any) -> frozenset[LockKey]:
    """The locks a plan's changes need: the vhost of each change, the cluster key for a change of a
    user or a global parameter (the objects of no vhost)."""
    return frozenset(vhost_key(c.vhost) if c.vhost else CLUSTER for c in plan.changes)


def describe_keys(keys: Iterable[LockKey]) -> str:
    """``vhost 'a', vhost 'b' and cluster-wide objects (...)``, in lock order."""
    titles = [key.title for key in sorted(keys)]
    return titles[0] if len(titles) == 1 else ", ".join(titles[:-1]) + " and " + titles[-1]


class Lock(Protocol):
    """What :func:`plan_under_locks` needs of a lock set (:class:`topology.broker.amqp.ApplyLock`)."""

    @property
    def held(self) -> frozenset[LockKey]: ...

    def acquire(self, keys: Iterable[LockKey], timeout: float = 0.0) -> None: ...

    def release(self) -> None: ...


def plan_under_locks(lock: Lock, first: Iterable[LockKey], make: Callable[[], Any], timeout: float,
                     clock: Callable[[], float] = time.monotonic) -> Any:
    """Take ``first``, then ``make()`` the plan; while the plan needs keys not held, take them (at
    once when they sort after every held key, else release all and take the whole set again in
    order) and plan again. Returns a plan made while every key it needs was held. Raises what
    ``lock.acquire`` raises once ``timeout`` seconds (for all the waiting together) are spent."""
    deadline = clock() + timeout
    lock.acquire(first, timeout)
    while True:
        plan = make()
        needed = keys_for_plan(plan)
        missing = needed - lock.held
        if not missing:
            return plan
        wanted = lock.held | needed
        if lock.held and min(missing) < max(lock.held):
            lock.release()  # waiting for a key that sorts before a held one could wait forever
        lock.acquire(wanted, max(0.0, deadline - clock()))


class EarlyLocks:
    """Takes the lock of each vhost as the files name it, in the background and never waiting
    (``take(key)``, :meth:`topology.broker.amqp.ApplyLock.try_take`), then starts reading the vhost:
    at once when its lock is held (``read_now(vhost)``), else once the apply holds every lock
    (``read_later(vhost)``). An apply so reads a vhost while the rest of its files load, as a plan
    does, and still reads nothing it may change before holding its lock. :meth:`finish` waits
    until every named vhost was tried; then the lock is the caller's alone again."""

    def __init__(self, take: Callable[[LockKey], bool], read_now: Callable[[str], None],
                 read_later: Callable[[str], None]):
        self._take, self._read_now, self._read_later = take, read_now, read_later
        self._named: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="topology-early-locks", daemon=True)
        self._thread.start()

    def named(self, vhost: str) -> None:
        """The files name ``vhost`` (any number of times)."""
        self._named.put(vhost)

    def finish(self, wait: bool = True) -> None:
        """No more vhosts; return once every named one was tried (at once, without ``wait``: the
        files failed to load and the lock is given up anyway)."""
        self._named.put(None)
        if wait:
            self._thread.join()

    def _run(self) -> None:
        tried: set[str] = set()
        while (vhost := self._named.get()) is not None:
            if vhost in tried:
                continue
            tried.add(vhost)
            try:
                taken = self._take(vhost_key(vhost))
            except Exception:  # acquire() meets it again and reports it
                taken = False
            (self._read_now if taken else self._read_later)(vhost)


def lock_groups(sets: dict[Hashable, tuple[Hashable, frozenset[LockKey] | None]]) -> dict[Hashable, Hashable]:
    """Which runs of one process must take turns: ``sets`` gives, per run, its lock scope (broker and
    lock vhost) and its lock keys (``None`` when not known before it plans: it may take any). Runs in
    one scope whose key sets meet (directly or through others) get the same group; the others a
    group of their own. Returns the group of each run."""
    parent: dict[Hashable, Hashable] = {run: run for run in sets}

    def root(run: Hashable) -> Hashable:
        while parent[run] != run:
            parent[run] = parent[parent[run]]
            run = parent[run]
        return run

    runs = list(sets)
    for index, first in enumerate(runs):
        scope, keys = sets[first]
        for second in runs[index + 1:]:
            other_scope, other_keys = sets[second]
            if scope != other_scope:
                continue
            if keys is None or other_keys is None or keys & other_keys:
                parent[root(second)] = root(first)
    return {run: root(run) for run in runs}
