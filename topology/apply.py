"""Run a plan against the broker: one handler per (kind, action).

Before the first write, every queue that a replacement or deletion would delete is
checked for messages and consumers (AMQP counts and the management statistics), so
an unsafe plan stops with nothing changed. A replacement is self-contained: delete,
declare, re-create the bindings the broker dropped, all before the next change. If
the broker refuses the new declaration, the old object and its bindings are restored.
With ``migrate_messages``, a queue replacement goes through
:class:`~topology.migrate.Migration` instead and keeps its messages. Every step is
idempotent, so a re-run after any failure converges.

At scale, two things keep apply close to what the broker itself needs:

- a run of at least :data:`BULK_MIN` creations of exchanges, queues, bindings and policies goes
  to the broker as definitions imports (``POST /api/definitions/{vhost}``, one per vhost). The
  broker skips what already exists and some failures without a word (a binding it cannot make, a queue it cannot declare, every queue and binding
  while the cluster is below its target size), so the imported objects are checked on the
  broker before anything else is done, and any it does not show is created one request at a
  time, where a refusal is exact and stops the apply. The last run's check is the check every
  apply ends with (:func:`topology.engine.apply_plan`), so it costs no extra read; a run with
  changes after it is imported only from :data:`BULK_MIN_BEFORE_MORE` creations, as its check
  reads the whole vhost back;
- runs of independent changes of one kind (policies, permissions, bindings, parameters,
  exchange deletions...) go through :data:`WORKERS` keep-alive connections at once;
- runs of queue deletions go through :data:`QUEUE_DELETE_WORKERS` connections at once. From
  :data:`SURVEY_MIN` of them in a vhost, the checks before the first write are read in bulk (one
  statistics read, pipelined passive declares), and each queue is checked again just before its
  own deletion, as one at a time, with the exact counts of the next :data:`RECHECK_AHEAD` queues
  read in one batch; a binding deletion whose queue or exchange the plan deletes needs no request
  (:func:`fold_bindings`).

Everything else that can lose data (replacements, migrations) and every change to vhosts and
users stays one at a time, in order.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from queue import Empty, SimpleQueue
from dataclasses import dataclass, field
from typing import Any

from topology.broker.amqp import ApplyLock, MessageMover
from topology.broker.client import ManagementClient, RequestRefused, ignore_missing
from topology.diff import CREATE, DELETE, REPLACE, RESUME, UPDATE, Change
from topology.errors import ApplyError, BrokerError
from topology.migrate import Migration, MigrationRefused, preflight
from topology.plan import Plan
from topology import passwords
from topology.kinds import (
    KINDS,
    PARAMETER_KINDS,
    PASSWORD_CHANGED,
    BindingState,
    ExchangeState,
    QueueState,
    Resource,
    UserState,
    VhostState,
    canonical,
)
from topology.rules.queues import QUORUM_TICK, STATISTICS_INTERVAL, STATISTICS_WAIT

BULK_KINDS = ("exchange", "queue", "binding", "policy")
"""Kinds whose creations may go through a definitions import."""

BULK_MIN = 100
"""Creations in a row from which a definitions import is used (below, one request each: exact errors,
and a few dozen requests cost less than checking an import)."""

BULK_MIN_BEFORE_MORE = 5_000
"""Creations in a row from which a definitions import is used when more changes follow: its
check reads the vhosts back first (15 s for a vhost of 25,000 queues on the benchmark machine,
about what 5,000 creations take through the pool of connections)."""

IMPORT_SECONDS_PER_OBJECT = 0.02
"""Time allowed per imported object, beyond the usual timeout: one request imports a whole run
(the broker answers only once every object is made, and collects the garbage of every process
after each kind it imports, so a few large requests are much faster than many small ones)."""

WORKERS = 4
"""Keep-alive connections used at once for runs of independent changes."""

QUEUE_DELETE_WORKERS = 16
"""Keep-alive connections used at once to delete queues: the broker's own work per deleted queue
(stopping its process, dropping its bindings) gains from more at once (10,000 empty queues on
RabbitMQ 3.10, two cores: 22.6 s through 4 connections, 14-19 s through 8, 16 s through 16)."""

SURVEY_MIN = 50
"""Queue deletions in a vhost from which their checks before the first write are read in bulk:
the statistics of every queue of the vhost in one request (which costs about a second for a vhost
of 10,000 queues, so fewer deletions read each queue's own), and the exact counts by passive
declares sent without waiting for each answer."""

RECHECK_AHEAD = 32
"""Queues whose exact counts are read again in one batch of passive declares, just before they
are deleted (each deletion starts within about as long as its batch takes to delete)."""


AHEAD_CHUNK = 2000
"""Queues counted ahead (:class:`ChecksAhead`) between two looks at whether the apply stopped."""


def _doomed_queues(changes: Iterable[Change]) -> dict[str, list[Change]]:
    """Per vhost with at least :data:`SURVEY_MIN` queue deletions, those deletions: the vhosts
    whose checks before the first write are read in bulk."""
    doomed: dict[str, list[Change]] = {}
    for change in changes:
        if change.kind == "queue" and change.action == DELETE:
            doomed.setdefault(change.vhost, []).append(change)
    return {vhost: items for vhost, items in doomed.items() if len(items) >= SURVEY_MIN}


class ChecksAhead:
    """The checks before the first write of an apply that asks no one (auto-approved, its plan made
    from the files just before it, deletions checked one by one: not with ``--allow-data-loss``),
    begun as soon as the plan's changes are known rather than after the plan is built and printed:
    the plan's own read of the queues' statistics, made after :meth:`begin`, is theirs, and the
    exact counts of the queues to delete are read over AMQP beside it (a thread of its own, on the
    inspector's connections, which nothing else uses meanwhile). :meth:`Applier._survey` takes both
    over while the statistics read ended less than :data:`STATISTICS_REFRESH` before it, and reads
    them again otherwise (printing the plan may block on a pager or a slow log, without bound). An
    apply that asks first, or applies a saved plan, reads them after the answer, as before."""

    def __init__(self, inspector: MessageMover | None):
        self.inspector = inspector
        self.began: float | None = None
        """When the checks began (``time.monotonic()``): a statistics read asked for since is theirs."""
        self.counted_at: float | None = None
        """When every count was read (``time.monotonic()``; ``None`` before, or when none was to be)."""
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._counted: dict[tuple[str, str], tuple[int, int] | None] = {}
        self._failed: BaseException | None = None

    def begin(self, changes: Iterable[Change]) -> None:
        """The plan's changes are known: the checks begin (again, for a plan made again)."""
        self.finish()
        self.began, self.counted_at = time.monotonic(), None
        self._counted, self._failed = {}, None
        doomed = {vhost: [change.name for change in items] for vhost, items in _doomed_queues(changes).items()}
        if not doomed or self.inspector is None:
            return
        inspector, stop = self.inspector, threading.Event()
        self._stop = stop

        def count() -> None:
            try:
                for vhost, names in doomed.items():
                    for start in range(0, len(names), AHEAD_CHUNK):
                        if stop.is_set():
                            return
                        for name, counts in inspector.counts_many(vhost, names[start:start + AHEAD_CHUNK]).items():
                            self._counted[(vhost, name)] = counts
                self.counted_at = time.monotonic()
            except BaseException as error:  # raised by counted(), in the apply's own checks
                self._failed = error

        thread = threading.Thread(target=count, name="topology-checks", daemon=True)
        thread.start()
        self._thread = thread  # only once started: finish() joins it

    def counted(self, vhost: str, names: list[str]) -> dict[tuple[str, str], tuple[int, int] | None] | None:
        """The exact counts of these queues read ahead (waiting for them), or ``None`` if they were
        not all read; raises what reading them raised."""
        if self._thread is not None:
            self._thread.join()
        if self._failed is not None:
            raise self._failed
        keys = [(vhost, name) for name in names]
        if self.counted_at is None or any(key not in self._counted for key in keys):
            return None
        return {key: self._counted[key] for key in keys}

    def finish(self) -> None:
        """Stop counting (within :data:`AHEAD_CHUNK` queues) and wait for it: the inspector's
        connections are then free to use or close."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None


def _idle_counts(info: dict[str, Any]) -> tuple[Any, Any, Any]:
    """(messages, unacknowledged, consumers) of a queue's statistics, as the broker gives them."""
    return info.get("messages"), info.get("messages_unacknowledged"), info.get("consumers")


STATISTICS_REFRESH = STATISTICS_INTERVAL
"""Seconds after which a vhost's queue statistics, read in bulk, are read again before more of its
queues are deleted: the broker refreshes them no more often (``collect_statistics_interval``, 5 s by
default), so reading each queue's own just before deleting it would tell nothing newer."""

STATISTICS_SHARE = 3.0
"""A bulk read of a vhost's queue statistics is read again no sooner than this many times as long
as the last one took: reading them is work for the broker (at 24,000 queues on RabbitMQ 4.3, about
5 s), which read back to back slowed its deletions by a seventh; so it spends at most a third of
its time on them. (While the deletions go on, each read is computed afresh: the broker keeps the
list of queue statistics it computed for five times as long as computing it took, but only while
the same queues are asked for, ``rabbit_mgmt_db_cache`` on 3.10 to 4.3.)"""

PARALLEL = frozenset(
    {(kind, action) for kind in ("exchange", "queue", "binding", "policy", "operator_policy", "permission",
                                 "topic_permission") for action in (CREATE, UPDATE)}
    | {(kind, DELETE) for kind in ("exchange", "binding", "policy", "operator_policy", "permission", "topic_permission")}
    | {(kind, action) for kind in PARAMETER_KINDS for action in (CREATE, UPDATE, DELETE)}
)
"""(kind, action) pairs whose changes in a row are independent of each other and run at once."""


@dataclass
class ApplyOptions:
    """What apply may do, and the AMQP helpers it may use."""

    allow_replace: bool = False
    migrate_messages: bool = False
    """Replace queues by migrating their messages (needs ``mover``)."""
    allow_data_loss: bool = False
    """Delete queues (pruning) even when they hold messages."""
    mover: MessageMover | None = None
    """Moves messages, and counts them exactly before a queue is deleted (without it, only the
    statistics are checked and migrations are refused)."""
    lock: ApplyLock | None = None
    """Checked before each change: apply stops if the lock was lost."""
    amqp_user: str | None = None
    """The user of the AMQP connection (the lock's): never deleted or cut off, like the management user."""
    bulk_min: int | None = BULK_MIN
    """Creations in a row from which definitions imports are used (``None``: never)."""
    bulk_min_before_more: int = BULK_MIN_BEFORE_MORE
    """The same, for a run that more changes follow (its import is read back before they run)."""
    workers: int = WORKERS
    """Changes run at once in runs of independent changes (1: one at a time)."""
    messages_moved: dict[tuple[str, str], int] = field(default_factory=dict)
    """Filled by apply: per migrated queue (vhost, name), the messages moved into its new queue."""
    checks_ahead: ChecksAhead | None = None
    """The checks before the first write, begun with the plan (an apply that asks no one)."""


def _sync_limits(before: dict[str, int], after: dict[str, int], put: Callable[[str, int], None],
                 delete: Callable[[str], None]) -> None:
    """Set the limits that differ and delete those no longer wanted (vhost and user limits alike)."""
    for limit, value in after.items():
        if before.get(limit) != value:
            put(limit, value)
    for limit in sorted(set(before) - set(after)):
        ignore_missing(lambda limit=limit: delete(limit))


class Unsafe(Exception):
    """A change was not made, or not finished, because going on could lose data."""


Report = Callable[[Change, str], None]
"""Called with each change and ``"start"`` or ``"done"``."""


class _CtrlC:
    """While changes run in parallel, a first Ctrl-C asks them to stop: no further change starts,
    those under way finish and are reported, and then it is raised (as ``KeyboardInterrupt``). A
    second is raised at once. Only in the main thread, and only where Ctrl-C has Python's own
    handler; elsewhere nothing changes."""

    def __init__(self) -> None:
        self.asked = False
        self._previous: Any = None

    def __enter__(self) -> _CtrlC:
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:  # noqa: ARG002 - a signal handler's signature
        if self.asked:
            raise KeyboardInterrupt
        self.asked = True

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        if self.asked and kind is None:  # asked at any point before the handler was restored
            raise KeyboardInterrupt


class Applier:
    """Executes changes through a :class:`ManagementClient`."""

    def __init__(self, client: ManagementClient, options: ApplyOptions | None = None,
                 stage: Callable[[str], None] | None = None):
        self.client = client
        self.options = options or ApplyOptions()
        self.stage = stage or (lambda what: None)
        """Says what a long step is doing (the progress display's words)."""
        self.inspector = self.options.mover
        self._exclusive: dict[str, set[str]] = {}
        """Exclusive queues per vhost, read once by the pre-flight checks."""
        self._statistics: dict[str, tuple[float, dict[str, dict[str, Any]]]] = {}
        """Per vhost with many queue deletions: when its queues' statistics were read, and them by name."""
        self._refreshing: dict[str, threading.Thread] = {}
        self._refresh_failed: dict[str, BrokerError] = {}
        self._exact: dict[tuple[str, str], tuple[int, int] | None] = {}
        """Exact counts read ahead in bulk, each used by the next check of its queue (then read again)."""
        self._folded: dict[int, list[Change]] = {}
        """Per queue or exchange deletion (by ``id``): the binding deletions the broker does with it."""
        self.pending: list[Change] = []
        """The last run's imported changes, not yet checked on the broker (nor reported done):
        :func:`topology.engine.apply_plan` checks them with the rest."""
        self.applied: list[Change] = []
        """What :meth:`apply` has applied so far (:meth:`settle` adds to it)."""
        self._pool: ThreadPoolExecutor | None = None
        self.handlers: dict[tuple[str, str], Callable[[Change], None]] = {}
        for kind in KINDS:  # what each kind does alone, then what apply does around some of them
            if kind.declare is not Resource.declare:
                self.handlers[(kind.kind, CREATE)] = self._declare_change
                if kind.updates and not kind.replace_on_change:
                    self.handlers[(kind.kind, UPDATE)] = self._declare_change
            if kind.remove is not Resource.remove:
                self.handlers[(kind.kind, DELETE)] = self._remove
        self.handlers.update({
            ("vhost", CREATE): self._put_vhost,
            ("vhost", UPDATE): self._put_vhost,
            ("exchange", REPLACE): self._replace,
            ("queue", REPLACE): self._migrate if self.options.migrate_messages else self._replace,
            ("queue", RESUME): self._migrate,
            ("queue", DELETE): self._delete_queue_change,
            ("binding", DELETE): self._delete_binding,
            ("user", CREATE): self._put_user,
            ("user", UPDATE): self._put_user,
            ("user", DELETE): self._delete_user,
        })

    def apply(self, plan: Plan, report: Report | None = None) -> list[Change]:
        """Apply every change of ``plan``; return the changes applied. Raises :class:`ApplyError`."""
        report = report or (lambda change, event: None)
        applied: list[Change] = []
        self._folded = fold_bindings(plan.changes)
        folded = {id(binding) for bindings in self._folded.values() for binding in bindings}
        try:
            survey = self._survey(plan.changes)
            if survey is not None:
                self._guard(survey[0], applied, plan, survey[1])
            for change in plan.changes:
                self._guard(change, applied, plan, lambda c=change: self._preflight(c))
                if (change.kind, change.action) not in self.handlers:
                    raise ApplyError(f"no way to {change.action} a {change.kind} ({change.vhost}/{change.name})")
            self.applied = applied
            runs = list(self._runs([change for change in plan.changes if id(change) not in folded]))
            for index, (how, run) in enumerate(runs):
                last = index == len(runs) - 1
                if how == "import" and not last and len(run) < self.options.bulk_min_before_more:
                    for part_how, part in self._runs(run, bulk=False):  # reading back would cost more
                        (self._parallel if part_how == "parallel" else self._one_by_one)(part, applied, plan, report)
                elif how == "import":
                    imported = self._import(run, applied, plan, report)
                    if last:
                        self.pending = imported  # checked with everything else by apply_plan
                    else:
                        self._check_imported(imported, applied, plan, report)
                elif how == "parallel":
                    self._parallel(run, applied, plan, report)
                elif how == "queues":
                    self._delete_queues(run, applied, plan, report)
                else:
                    self._one_by_one(run, applied, plan, report)
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None
            for refresh in self._refreshing.values():
                refresh.join()
        return applied

    def _runs(self, changes: tuple[Change, ...] | list[Change], bulk: bool = True) -> Iterator[tuple[str, list[Change]]]:
        """The changes in order, in runs: ``import`` (creations for a definitions import),
        ``parallel`` (independent changes of one kind and action), ``queues`` (queue deletions,
        each checked just before it starts) or ``one`` (one at a time)."""
        index = 0
        while index < len(changes):
            change = changes[index]
            end = index + 1
            if bulk and change.action == CREATE and change.kind in BULK_KINDS and self.options.bulk_min is not None:
                while end < len(changes) and changes[end].action == CREATE and changes[end].kind in BULK_KINDS:
                    end += 1
                if end - index >= max(1, self.options.bulk_min):
                    yield "import", list(changes[index:end])
                    index = end
                    continue
                end = index + 1
            pair = (change.kind, change.action)
            if (pair in PARALLEL or pair == ("queue", DELETE)) and self.options.workers > 1:
                while end < len(changes) and (changes[end].kind, changes[end].action) == pair:
                    end += 1
            how = "one" if end - index == 1 else "queues" if pair == ("queue", DELETE) else "parallel"
            yield how, list(changes[index:end])
            index = end

    def _one_by_one(self, changes: list[Change], applied: list[Change], plan: Plan, report: Report) -> None:
        for change in changes:
            handler = self.handlers[(change.kind, change.action)]
            report(change, "start")
            self._guard(change, applied, plan, lambda h=handler, c=change: self._run(h, c))
            self._done(change, applied, report)

    def _done(self, change: Change, applied: list[Change], report: Report) -> None:
        """``change`` is applied, and so are the binding deletions the broker made with it."""
        applied.append(change)
        report(change, "done")
        for binding in self._folded.get(id(change), ()):
            report(binding, "start")
            applied.append(binding)
            report(binding, "done")

    def _parallel(self, changes: list[Change], applied: list[Change], plan: Plan, report: Report, *,
                  workers: int | None = None, prepare: Callable[[Change], None] | None = None,
                  handler: Callable[[Change], None] | None = None) -> None:
        """Independent changes through :attr:`ApplyOptions.workers` connections at once (or
        ``workers``). The lock is checked before each is started, and ``prepare`` called with it (in
        this thread); after a failure no new one starts, those under way finish, and the failure is
        reported as in :meth:`_guard`. ``handler`` runs each change (default: its kind's)."""
        failure: tuple[Change, BaseException] | None = None
        workers = workers or self.options.workers
        pool = self._pool_for_reads()
        position = {id(change): index for index, change in enumerate(changes)}
        queue = iter(changes)
        work = handler or (lambda change: self.handlers[(change.kind, change.action)](change))
        completed: SimpleQueue[tuple[Change, BaseException | None]] = SimpleQueue()
        """Each started change once it is done, with its error if it failed, put there by the thread
        that ran it (``concurrent.futures.wait`` locked every future under way on each call: a tenth
        of the CPU of deleting thousands of queues)."""
        under_way = 0
        """Changes handed to the pool and not yet taken back from ``completed``."""

        landed: list[Change] = []
        """Changes done, as each thread that ran one records it: what a second Ctrl-C reports from."""

        def run_one(change: Change) -> None:
            try:
                work(change)
            except BaseException as error:  # handed back to this thread, which reports it
                completed.put((change, error))
            else:
                landed.append(change)
                completed.put((change, None))

        finished: list[Change] = []
        """Changes done, not reported yet: the next ones are started first (reporting takes time)."""
        reported: set[int] = set()

        def collect(done: list[tuple[Change, BaseException | None]]) -> None:
            nonlocal failure
            for change, error in sorted(done, key=lambda entry: position[id(entry[0])]):
                if error is None:
                    finished.append(change)
                elif failure is None:
                    failure = (change, error)

        def settle() -> None:
            while finished:  # one at a time: an interruption midway reports none twice
                change = finished.pop(0)
                reported.add(id(change))
                self._done(change, applied, report)

        def take() -> list[tuple[Change, BaseException | None]]:
            nonlocal under_way
            done = [completed.get()]
            while True:
                try:
                    done.append(completed.get_nowait())
                except Empty:
                    break
            under_way -= len(done)
            return done

        with _CtrlC() as ctrl_c:
            try:
                while True:
                    # never more under way than there are workers: nothing waits in the pool's queue
                    # to start after a failure, a lost lock or an interruption
                    while failure is None and not ctrl_c.asked and under_way < workers:
                        change = next(queue, None)
                        if change is None:
                            break
                        try:
                            if self.options.lock is not None:
                                self.options.lock.check()
                            if prepare is not None:
                                prepare(change)
                        except (RequestRefused, Unsafe, BrokerError) as stopped:
                            failure = (change, stopped)
                            break
                        if ctrl_c.asked:  # during the checks: this one does not start either
                            break
                        report(change, "start")
                        under_way += 1
                        pool.submit(run_one, change)
                    settle()
                    if not under_way:
                        break
                    collect(take())
            except BaseException:
                # a second Ctrl-C, or one this thread could not defer: no change starts any more, those
                # under way finish (one request each); say which landed
                self._pool = None
                pool.shutdown(wait=True, cancel_futures=True)  # what never started is not done
                finished[:] = sorted((change for change in landed if id(change) not in reported),
                                     key=lambda change: position[id(change)])
                settle()
                raise
            # past here, a first Ctrl-C is raised as the block ends, once every change under way has
            # finished and been reported
        if failure is not None:
            change, error = failure

            def fail() -> None:
                raise error

            self._guard(change, applied, plan, fail)

    def _import(self, changes: list[Change], applied: list[Change], plan: Plan, report: Report) -> list[Change]:
        """Creations through definitions imports, one request per vhost (the broker makes exchanges,
        policies, queues, then bindings; vhosts do not depend on each other). A refused import is
        done again one object at a time, where the broker names what it refuses (what it made
        already is made again in place: creations are idempotent). Returns the changes imported,
        which the broker may have skipped: they are not applied (nor reported done) until checked."""
        imported: list[Change] = []
        by_vhost: dict[str, list[Change]] = {}
        for change in changes:
            by_vhost.setdefault(change.vhost, []).append(change)
        for vhost, items in by_vhost.items():
            if self.options.lock is not None:
                self._guard(items[0], applied, plan, self.options.lock.check)
            for change in items:
                report(change, "start")
            self.stage(f"importing {len(items):,} object(s) into vhost {vhost!r} in one request")
            try:
                self.client.import_vhost_definitions(vhost, definitions_document(items),
                                                     timeout=self.client.timeout + len(items) * IMPORT_SECONDS_PER_OBJECT)
            except (RequestRefused, BrokerError):
                # refused, or no answer in time (the broker may still be importing: the requests
                # below are idempotent, and make sure of each object)
                self.stage(f"creating the {len(items):,} object(s) the import did not, one at a time")
                self._one_by_one(items, applied, plan, lambda change, event: report(change, event)
                                 if event == "done" else None)
                continue
            finally:
                self.stage("")
            imported.extend(items)
        return imported

    def _check_imported(self, imported: list[Change], applied: list[Change], plan: Plan, report: Report) -> None:
        """Read the imported objects' vhosts back (one definitions export each): what the broker
        shows as declared is applied; the rest is created one request at a time, so a refusal
        stops the apply here, before any later change relies on it."""
        from topology.broker.live import internal_exchanges, read_live
        from topology.plan import unfinished

        if not imported:
            return
        live = read_live(self.client, sorted({change.vhost for change in imported}),
                         internal_exchanges=internal_exchanges(change.resource for change in imported))
        missing = {change.key for change in unfinished(Plan(changes=tuple(imported)), live)}
        self.settle(imported, missing, plan, report)

    def settle(self, imported: list[Change], missing: set[tuple[Any, ...]], plan: Plan,
               report: Report | None = None) -> None:
        """Imported changes, once checked: those whose object is not ``missing`` are applied; the
        others are made one request at a time, where the broker says exactly what it refuses (and
        the error counts what the whole plan had applied)."""
        report = report or (lambda change, event: None)
        for change in imported:
            if change.key not in missing:
                self.applied.append(change)
                report(change, "done")
        skipped = [change for change in imported if change.key in missing]
        self._one_by_one(skipped, self.applied, plan,
                         lambda change, event: report(change, event) if event == "done" else None)

    def _run(self, handler: Callable[[Change], None], change: Change) -> None:
        if self.options.lock is not None:
            self.options.lock.check()
        handler(change)

    def _preflight(self, change: Change) -> None:
        """Checks made for every change before the first write: nothing is changed if one fails."""
        self._check_connected_user(change)
        if change.kind == "user" and change.action == DELETE:
            self._check_no_connections(change)
        if change.kind == "exchange" and change.action in (REPLACE, DELETE):
            self._check_no_exclusive_bindings(change)
        if change.kind != "queue":
            return
        migrating = change.action == RESUME or (change.action == REPLACE and self.options.migrate_messages)
        if migrating:
            if self.options.mover is None:
                raise Unsafe("moving messages needs an AMQP connection")
            after = change.after
            assert isinstance(after, QueueState)
            counts = self.options.mover.counts(change.vhost, change.name)
            preflight(self._settled_details(change.vhost, change.name, counts), after, counts)
        elif change.action == REPLACE:
            self._check_queue_is_idle(change.before)
        elif change.action == DELETE:
            self._check_queue_is_idle(change.before, consumers_only=self.options.allow_data_loss)

    def _settled_details(self, vhost: str, name: str, counts: tuple[int, int] | None) -> dict[str, Any] | None:
        """The queue's statistics; when they show consumers or unacknowledged messages
        that the exact count does not (no consumer now), read them again until they are
        refreshed (they lag by up to the broker's statistics interval, 5 s by default, plus
        a quorum queue's tick, and may still show this tool's own consumer from a run that
        just stopped)."""
        details = self.client.queue_details(vhost, name)
        wait = STATISTICS_WAIT + (QUORUM_TICK if details is not None and details.get("type") == "quorum" else 0.0)
        deadline = time.monotonic() + wait
        while (details is not None and counts is not None and counts[1] == 0
               and (details.get("consumers") or details.get("messages_unacknowledged"))
               and time.monotonic() < deadline):
            time.sleep(1.0)
            details = self.client.queue_details(vhost, name)
        return details

    def _guard(self, change: Change, applied: list[Change], plan: Plan, action: Callable[[], None]) -> None:
        """Run ``action``; turn a refusal into one :class:`ApplyError` line with the progress so far."""
        try:
            action()
        except (RequestRefused, Unsafe, MigrationRefused, BrokerError) as failure:
            why = f"{failure.reason} (HTTP {failure.status})" if isinstance(failure, RequestRefused) else str(failure)
            done = {id(c) for c in applied}
            raise ApplyError(
                f"{change.title} failed: {why}; "
                f"{len(applied)} of {len(plan.changes)} change(s) had been applied, re-run to finish once the cause is fixed",
                not_applied=[c.title for c in plan.changes if id(c) not in done],
            ) from None

    # -- declarations ----------------------------------------------------------

    def _declare(self, resource: Resource | None) -> None:
        """Create (or overwrite in place) one object."""
        if resource is None:
            raise TypeError("nothing to declare")
        resource.declare(self.client)

    def _declare_change(self, change: Change) -> None:
        self._declare(change.after)

    def _remove(self, change: Change) -> None:
        """Delete one object; one already gone is fine."""
        before = change.before
        assert before is not None
        ignore_missing(lambda: before.remove(self.client))

    def _put_vhost(self, change: Change) -> None:
        vhost = change.after
        assert isinstance(vhost, VhostState)
        self.client.put_vhost(vhost.vhost, vhost.body())
        if vhost.limits is not None:
            before = (change.before.limits if isinstance(change.before, VhostState) else None) or {}
            _sync_limits(before, vhost.limits, lambda limit, value: self.client.put_vhost_limit(vhost.vhost, limit, value),
                         lambda limit: self.client.delete_vhost_limit(vhost.vhost, limit))

    def _check_connected_user(self, change: Change) -> None:
        """The user this apply is connected as (which a saved plan may not have known) keeps its
        administrator tag, password and permissions."""
        user = getattr(change.resource, "user", None)
        if user not in (self.client.user, self.options.amqp_user) or change.action == CREATE:
            return
        if change.kind == "user" and change.action == DELETE:
            raise Unsafe("it is the user this tool is connected as: it is never deleted")
        after = change.after
        if isinstance(after, UserState):
            before = change.before if isinstance(change.before, UserState) else None
            if before is not None and "administrator" in before.tags and "administrator" not in after.tags:
                raise Unsafe("it is the user this tool is connected as: it keeps its administrator tag")
            if after.password == PASSWORD_CHANGED:
                raise Unsafe("it is the user this tool is connected as: change its password by hand")
        elif change.kind in ("permission", "topic_permission"):
            raise Unsafe("it is a permission of the user this tool is connected as: change it by hand")

    def _put_user(self, change: Change) -> None:
        """Create or update a user: tags, password as a hash made here (the broker's own hash is
        sent back when the password is not to change: a user put without one loses it), limits."""
        user = change.after
        assert isinstance(user, UserState)
        live = self.client.get_user(user.user)
        stored = str((live or {}).get("password_hash") or "")
        algorithm = user.hashing_algorithm or (live or {}).get("hashing_algorithm") or passwords.DEFAULT_ALGORITHM
        if algorithm not in passwords.ALGORITHMS:
            raise Unsafe(f"its hashing algorithm {algorithm!r} is not one this tool can hash with; "
                         "declare hashing_algorithm: rabbit_password_hashing_sha256")
        body: dict[str, Any] = {"tags": ",".join(user.tags)}
        if user.managed_password and (user.password == PASSWORD_CHANGED or live is None):
            if user.declared_hash is not None:
                body["password_hash"] = user.declared_hash
            else:
                body["password_hash"] = passwords.password_hash(self._password_of(user), algorithm)
            body["hashing_algorithm"] = algorithm
        elif stored:
            body["password_hash"] = stored
            # RabbitMQ reads a user without an algorithm as md5 (rabbit_auth_backend_internal)
            body["hashing_algorithm"] = (live or {}).get("hashing_algorithm") or passwords.MD5
        else:
            # none: the empty hash, RabbitMQ's own "no password" (sent without any, the broker would
            # create the user with an empty password, which a credential validator may refuse)
            body["password_hash"] = ""
            body["hashing_algorithm"] = algorithm
        self.client.put_user(user.user, body)
        before = change.before.limits if isinstance(change.before, UserState) else {}
        _sync_limits(before, user.limits, lambda limit, value: self.client.put_user_limit(user.user, limit, value),
                     lambda limit: self.client.delete_user_limit(user.user, limit))

    def _check_no_connections(self, change: Change) -> None:
        """The broker closes a deleted user's connections: refuse while any is open (counted before the
        first write, and again right before deleting: the plan may be old)."""
        open_now = self.client.user_connections(change.name)
        if open_now:
            raise Unsafe(f"{open_now} connection(s) are open as this user; not deleted")

    def _delete_user(self, change: Change) -> None:
        """Delete a user no file declares (its permissions and limits go with it)."""
        self._check_no_connections(change)
        ignore_missing(lambda: self.client.delete_user(change.name))

    @staticmethod
    def _password_of(user: UserState) -> str:
        """The plain password to hash: from the files, or (a saved plan) from its environment variable."""
        if user.secret is not None:
            return user.secret
        if user.password_variable:
            value = os.environ.get(user.password_variable)
            if not value:
                raise Unsafe(f"its password comes from the environment variable {user.password_variable}, which is not set")
            from topology import redact

            redact.register(value)
            return value
        raise Unsafe("its password was written in the files, which a saved plan does not hold: apply from the files")

    # -- replacement -----------------------------------------------------------

    def _replace(self, change: Change) -> None:
        """Delete, declare anew and re-bind; restore the old object if the new one is refused."""
        before, after = change.before, change.after
        if isinstance(before, QueueState):
            self._check_queue_is_idle(before)
            self._delete_queue(before)
        elif isinstance(before, ExchangeState):
            ignore_missing(lambda: self.client.delete_exchange(before.vhost, before.exchange))
        else:
            raise TypeError(f"cannot replace {before!r}")
        try:
            self._declare(after)
        except RequestRefused as refused:
            lost = self._restore(before, change.rebind)
            outcome = "the old one and its bindings were restored" if not lost else f"restoring failed too: {lost}"
            raise Unsafe(f"the broker refused the new {change.kind}: {refused.reason}; {outcome}") from None
        lost = self._rebind(change.rebind)
        if lost:
            raise Unsafe(f"re-declared, but {len(lost)} binding(s) could not be re-created: {'; '.join(lost)}")

    def _restore(self, before: Resource | None, bindings: tuple[BindingState, ...]) -> str:
        try:
            self._declare(before)
        except RequestRefused as refused:
            return refused.reason
        return "; ".join(self._rebind(bindings))

    def _rebind(self, bindings: tuple[BindingState, ...]) -> list[str]:
        """Re-create bindings; return a description of each that failed (the others are still made)."""
        lost = []
        for binding in bindings:
            try:
                self._declare(binding)
            except RequestRefused as refused:
                lost.append(f"{binding.name}: {refused.reason}")
        return lost

    def _check_no_exclusive_bindings(self, change: Change) -> None:
        """The plan counted these too, but clients may have bound since (a saved plan, a slow 'yes').
        The vhost's exclusive queues are read first (once): without any, no exchange of the vhost
        needs its bindings read."""
        if change.vhost not in self._exclusive:
            self._exclusive[change.vhost] = self.client.exclusive_queues(change.vhost)
        if not self._exclusive[change.vhost]:
            return
        destinations = {
            b.get("destination") for b in self.client.exchange_bindings(change.vhost, change.name)
            if b.get("destination_type") == "queue"
        }
        exclusive = destinations & self._exclusive[change.vhost]
        if exclusive:
            raise Unsafe(
                f"it is bound to {len(exclusive)} exclusive queue(s) of connected clients, whose bindings would be "
                "dropped and cannot be re-created; nothing was changed"
            )

    def _migrate(self, change: Change) -> None:
        after = change.after
        assert isinstance(after, QueueState) and self.options.mover is not None
        guard = self.options.lock.check if self.options.lock is not None else None
        self.options.messages_moved[(after.vhost, after.queue)] = Migration(
            self.client, self.options.mover, guard=guard).run(after)
        if guard is not None:
            guard()
        if self.client.queue_details(after.vhost, after.queue) is None:
            self._declare(after)  # there was nothing to move

    def _survey(self, changes: tuple[Change, ...]) -> tuple[Change, Callable[[], None]] | None:
        """For the vhosts with at least :data:`SURVEY_MIN` queue deletions: the reads their checks
        before the first write take in bulk (one statistics read per vhost, pipelined passive
        declares), and the first of those deletions (named if the reads fail); ``None`` if none."""
        many = _doomed_queues(changes)
        if not many:
            return None
        ahead = self.options.checks_ahead

        def read() -> None:
            for vhost, items in many.items():
                counted = ahead.counted(vhost, [change.name for change in items]) if ahead is not None else None
                if counted is not None and self._take_over_statistics(vhost, ahead):
                    self._exact.update(counted)  # both read since the checks began, with the plan
                    continue
                if counted is not None and self.inspector is not None:
                    self.inspector.close()  # idle while the plan was printed: read on new connections
                self.stage(f"checking {len(items):,} queue(s) of vhost {vhost!r} for messages and consumers")
                # the statistics over HTTP while the passive declares go over AMQP
                statistics = self._pool_for_reads().submit(self._read_statistics, vhost)
                try:
                    if self.inspector is not None:
                        self._read_exact(vhost, [change.name for change in items])
                finally:
                    statistics.result()
            self.stage("")

        return next(iter(many.values()))[0], read

    def _pool_for_reads(self) -> ThreadPoolExecutor:
        if self._pool is None:  # one pool for the whole apply: its threads keep their connections
            self._pool = ThreadPoolExecutor(max_workers=max(self.options.workers, QUEUE_DELETE_WORKERS),
                                            thread_name_prefix="topology-apply")
        return self._pool

    def _take_over_statistics(self, vhost: str, ahead: ChecksAhead) -> bool:
        """Take the plan's statistics read over as the checks' own (:class:`ChecksAhead`) if it was
        asked for since they began and ended less than :data:`STATISTICS_REFRESH` ago, with the
        exact counts read beside it (each queue is counted again just before its deletion: an
        apply with ``--allow-data-loss`` has no checks ahead). The exclusive queues are then read
        again by the checks of the exchanges to delete (:meth:`_check_no_exclusive_bindings`): a
        client may have bound one while the plan was built and printed."""
        assert ahead.began is not None  # counted, so begun
        read = self.client.recent_queue_statistics(vhost, time.monotonic() - ahead.began)  # asked for since
        if read is None:
            return False
        if time.monotonic() - (read[0] + self.client.statistics_took(vhost)) >= STATISTICS_REFRESH:
            return False
        self._statistics[vhost] = read
        return True

    def _read_statistics(self, vhost: str) -> None:
        # the plan's own read, when it is as recent as the broker refreshes its statistics (not for as
        # long as the reads during the deletions are kept: what this read also tells, the exclusive
        # queues that may have been bound since the plan, and unacknowledged messages, must be fresh
        # at the first write)
        read = self.client.recent_queue_statistics(vhost, STATISTICS_REFRESH)
        started, statistics = read if read is not None else (time.monotonic(), self.client.queue_statistics(vhost))
        self._statistics[vhost] = (started, statistics)
        self._exclusive[vhost] = {name for name, entry in statistics.items() if entry.get("exclusive")}

    def _refresh_statistics(self, vhost: str) -> None:
        """Start reading the vhost's statistics again, unless a read is under way; raise the
        error of the last one, if it failed."""
        refresh = self._refreshing.get(vhost)
        if refresh is not None and refresh.is_alive():
            return
        failed = self._refresh_failed.pop(vhost, None)
        if failed is not None:
            raise failed
        last = self._statistics.get(vhost)
        if last is not None and time.monotonic() - last[0] <= self._statistics_lifetime(vhost):
            return  # a read that ended since the caller looked: not asked for again at once
        started = time.monotonic()

        def read() -> None:
            try:
                statistics = self.client.queue_statistics(vhost)
            except BrokerError as error:
                self._refresh_failed[vhost] = error
                return
            self._statistics[vhost] = (started, statistics)

        refresh = self._refreshing[vhost] = threading.Thread(target=read, name="topology-statistics", daemon=True)
        refresh.start()

    def _statistics_lifetime(self, vhost: str) -> float:
        """Seconds from its request for which a bulk read of the vhost's queue statistics is used
        while the deletions go on, before it is read again: :data:`STATISTICS_REFRESH`, or
        :data:`STATISTICS_SHARE` times as long as the last read took, whichever is longer."""
        return max(STATISTICS_REFRESH, STATISTICS_SHARE * self.client.statistics_took(vhost))

    def _read_exact(self, vhost: str, names: list[str]) -> None:
        assert self.inspector is not None
        for name, counts in self.inspector.counts_many(vhost, names).items():
            self._exact[(vhost, name)] = counts

    def _details(self, queue: QueueState) -> dict[str, Any] | None:
        """The queue's statistics: from its vhost's bulk read if there is one and it shows the
        queue, else the queue's own. A bulk read older than :meth:`_statistics_lifetime` is read
        again in the background (the deletions go on meanwhile, with the one before)."""
        read = self._statistics.get(queue.vhost)
        if read is not None and time.monotonic() - read[0] > self._statistics_lifetime(queue.vhost):
            self._refresh_statistics(queue.vhost)
            read = self._statistics[queue.vhost]
        found = read[1].get(queue.queue) if read is not None else None
        return found if found is not None else self.client.queue_details(queue.vhost, queue.queue)

    def _counts(self, queue: QueueState) -> tuple[int, int] | None:
        """The queue's exact (ready messages, consumers): read ahead in bulk (used once), or now."""
        assert self.inspector is not None
        key = (queue.vhost, queue.queue)
        if key in self._exact:
            return self._exact.pop(key)
        return self.inspector.counts(queue.vhost, queue.queue)

    def _check_queue_is_idle(self, queue: Resource | None, consumers_only: bool = False) -> None:
        """Refuse unless the queue holds no message (ready or unacknowledged) and has no consumer."""
        assert isinstance(queue, QueueState)
        info = self._details(queue)
        if info is None:
            return
        messages, unacked, consumers = _idle_counts(info)
        if not consumers_only and self.inspector is not None and any(
                isinstance(n, int) and n > 0 for n in (unacked, consumers)):
            # the statistics lag by up to the broker's interval: they may still show this tool's own
            # reader of a moment ago (a stream is read to be shown empty before a replacement, and
            # checked again just before its deletion); when the exact count shows no consumer, they
            # are read again until they are refreshed
            counts = self.inspector.settled_counts(queue.vhost, queue.queue)
            if counts is not None and counts[1] == 0:
                info = self._settled_details(queue.vhost, queue.queue, counts)
                if info is None:
                    return
                messages, unacked, consumers = _idle_counts(info)
        if consumers_only:
            exact = self._counts(queue) if self.inspector is not None else None
            consumers = max(consumers if isinstance(consumers, int) else 0, exact[1] if exact else 0)
            if consumers:
                raise Unsafe(f"it has {consumers} consumer(s); not deleted")
            return
        if any(isinstance(n, int) and n > 0 for n in (messages, unacked, consumers)):
            raise Unsafe(
                f"it holds {messages or 0} message(s) ({unacked or 0} unacknowledged) and has {consumers or 0} "
                "consumer(s); not deleted, nothing was lost"
            )
        if queue.type == "stream" or info.get("type") == "stream":
            # a passive declare may count 0 for a stream, and its statistics lag: both the
            # statistics and a read from the first offset must find it empty
            if not isinstance(messages, int):
                raise Unsafe("the broker has no statistics for this stream yet, so it cannot be shown to be empty; "
                             "retry shortly")
            if self.inspector is None:
                raise Unsafe("a stream can only be shown to be empty by reading it over AMQP; not deleted")
            if self.inspector.stream_has_messages(queue.vhost, queue.queue):
                raise Unsafe("the stream still holds messages (read from its first offset; a stream keeps them until "
                             "its retention removes whole segments); not deleted, nothing was lost. Delete it by hand "
                             "if its data may go")
        if self.inspector is not None:
            stream = queue.type == "stream" or info.get("type") == "stream"
            # for a stream: its consumers only; the reader just cancelled above can still count
            counts = self.inspector.settled_counts(queue.vhost, queue.queue) if stream else self._counts(queue)
            if counts is not None and (counts[0] or counts[1]):
                raise Unsafe(
                    f"it holds {counts[0]} message(s) and has {counts[1]} consumer(s); not deleted, nothing was lost"
                )

    def _delete_queue_change(self, change: Change) -> None:
        before = change.before
        assert isinstance(before, QueueState)
        if not self.options.allow_data_loss:
            self._check_queue_is_idle(before)
        self._delete_queue(before, keep_messages=not self.options.allow_data_loss)

    def _delete_queues(self, changes: list[Change], applied: list[Change], plan: Plan, report: Report) -> None:
        """Queue deletions through :data:`QUEUE_DELETE_WORKERS` connections at once. Each is checked
        here just before it starts, as :meth:`_delete_queue_change` checks it, with the exact counts
        of the next :data:`RECHECK_AHEAD` queues read in one batch; the connections send only the
        DELETE (with the broker's own guard for classic queues)."""
        position = {id(change): index for index, change in enumerate(changes)}
        self._exact.clear()  # what was read before the first write is not read just before a deletion

        def recheck(change: Change) -> None:
            if self.options.allow_data_loss:  # consumers were checked before the first write, as one at a time
                return
            before = change.before
            assert isinstance(before, QueueState)
            if self.inspector is not None and (before.vhost, before.queue) not in self._exact:
                start = position[id(change)]
                self._read_exact(before.vhost, [c.name for c in changes[start:start + RECHECK_AHEAD]
                                                if c.vhost == before.vhost])
            self._check_queue_is_idle(before)

        def delete(change: Change) -> None:
            before = change.before
            assert isinstance(before, QueueState)
            self._delete_queue(before, keep_messages=not self.options.allow_data_loss)

        self._parallel(changes, applied, plan, report, workers=max(self.options.workers, QUEUE_DELETE_WORKERS),
                       prepare=recheck, handler=delete)

    def _delete_queue(self, queue: QueueState, keep_messages: bool = True) -> None:
        # classic queues also get the broker's own atomic guard; quorum queues refuse it
        guarded = queue.type == "classic"
        try:
            ignore_missing(lambda: self.client.delete_queue(
                queue.vhost, queue.queue, if_empty=guarded and keep_messages, if_unused=guarded
            ))
        except RequestRefused as refused:
            if refused.status == 400 and guarded:
                raise Unsafe(
                    f"the broker refused to delete it: it holds messages or has consumers ({refused.reason}); nothing was lost"
                ) from None
            raise

    # -- deletion --------------------------------------------------------------

    def _delete_binding(self, change: Change) -> None:
        binding = change.before
        assert isinstance(binding, BindingState)
        for entry in self.client.bindings_between(binding.vhost, binding.source, binding.destination_type, binding.destination):
            if entry.get("routing_key", "") == binding.routing_key and canonical(entry.get("arguments") or {}) == binding.arguments:
                ignore_missing(
                    lambda: self.client.delete_binding(
                        binding.vhost, binding.source, binding.destination_type, binding.destination, entry["properties_key"]
                    )
                )


def fold_bindings(changes: tuple[Change, ...] | list[Change]) -> dict[int, list[Change]]:
    """The binding deletions that need no request of their own, by the ``id`` of the deletion in
    ``changes`` that makes them: the broker drops every binding of a queue it deletes, and every
    binding from or to an exchange it deletes. Each goes with the first such deletion in the plan's
    order (queues before exchanges), and is applied when that one is; if it fails, they are not."""
    position: dict[tuple[str, str, str], tuple[int, Change]] = {}
    for index, change in enumerate(changes):
        if change.action == DELETE and change.kind in ("queue", "exchange"):
            position[(change.kind, change.vhost, change.name)] = (index, change)
    folded: dict[int, list[Change]] = {}
    if not position:
        return folded
    for change in changes:
        binding = change.before
        if change.kind != "binding" or change.action != DELETE or not isinstance(binding, BindingState):
            continue
        owners = [position.get((binding.destination_type, binding.vhost, binding.destination)),
                  position.get(("exchange", binding.vhost, binding.source))]
        found = min((owner for owner in owners if owner is not None), default=None, key=lambda owner: owner[0])
        if found is not None:
            folded.setdefault(id(found[1]), []).append(change)
    return folded


def definitions_document(changes: list[Change]) -> dict[str, list[dict[str, Any]]]:
    """The definitions document (without vhost: for ``POST /api/definitions/{vhost}``) that
    creates the objects of ``changes`` (exchanges, queues, bindings and policies)."""
    document: dict[str, list[dict[str, Any]]] = {"exchanges": [], "queues": [], "bindings": [], "policies": []}
    for change in changes:
        resource = change.after
        if resource is None or resource.kind not in BULK_KINDS:
            raise TypeError(f"cannot import {resource!r}")
        document[resource.section].append(resource.entry())
    return {kind: entries for kind, entries in document.items() if entries}
