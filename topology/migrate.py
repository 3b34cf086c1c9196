"""Replacing a queue that holds messages without losing one (``apply --migrate-messages``).

The messages wait in a temporary classic queue, ``topology.migrate.<queue>``, whose
arguments record the migration (:class:`~topology.state.MigrationRecord`: the queue,
the declaration to make, every binding the queue had). The steps are the same whether
a migration starts or resumes after a crash, and each can be repeated:

1. move the queue's messages into the temporary queue while the queue is still bound,
   so that messages published meanwhile land behind them;
2. bind the temporary queue as the queue is bound, then unbind the queue: a message
   published meanwhile reaches one of the two (for an instant both: a duplicate,
   never a loss);
3. move what is left into the temporary queue and delete the queue, which
   must be seen empty first (classic queues: by the broker itself, atomically;
   quorum queues, which have no such guard, are sealed first: see :meth:`Migration._seal_and_delete`);
4. declare the new queue and move the messages back, in order;
5. bind the new queue, unbind the temporary one, move what arrived meanwhile, and
   delete the temporary queue (the broker refuses while it holds a message).

Order is kept except at the two switches of bindings (steps 2 and 5): a message that
reached the queue being left in the instant before the switch is moved behind those that
reached the other queue after it. A resumed run takes up where the last stopped (a new
queue already declared holds the oldest messages, and the rest are moved in behind them).

No message is acked at its source before the broker confirmed its copy (see
:class:`~topology.broker.amqp.MessageMover`), so a crash at any point leaves every
message in the queue or in the temporary queue, and the next run finishes the job.
Every request and every message moved is preceded by a check of the apply lock: once
it is lost the migration stops there, as after a kill.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

from topology.broker.amqp import MessageMover, is_seal, stash, unstash
from topology.broker.client import ManagementClient, RequestRefused, ignore_missing
from topology.errors import BrokerError
from topology.rules.policies import DROPPING_KEYS
from topology.matching import contest
from topology.rules.queues import CLASSIC
from topology.kinds import BindingState, PolicyState, QueueState
from topology.migration_record import MIGRATION_ARGUMENT, migration_queue_name, MigrationRecord

ATTEMPTS = 10
"""How often to move stragglers (published straight to a queue meanwhile) before giving up."""

SEAL_SETTLE = 0.5
"""Seconds to wait, once a quorum queue is sealed, for publishes already on their way
inside the broker to land (where the last exact count sees them) before deleting it."""

SEAL_STEPS = 50
"""How many steps (a count, a seal message, a move) sealing a quorum queue may take."""

SEAL_DEFINITION = {"max-length": 1, "overflow": "reject-publish"}
"""The policy that seals a quorum queue about to be deleted. Holding more than one
message, the queue refuses every publish (a publisher with confirms gets a nack, never
a silent loss), and a publisher it refused stays refused until the queue is empty.
(``max-length: 0`` would let one message in whenever the queue is empty.)"""


def exact_pattern(name: str) -> str:
    """A policy pattern (PCRE, and Python ``re`` alike) matching exactly ``name``."""
    escaped = "".join(c if c.isalnum() or c == "_" or ord(c) > 127 else "\\" + c for c in name)
    return f"^{escaped}$(?!\\n)"


def winning_policies(queue: str, policies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The policies (as the management API gives them) that may apply to a classic queue named
    ``queue``: the winners, and to be safe those whose pattern is undecided and could win
    (:mod:`topology.matching`)."""
    outcome = contest([PolicyState.from_definition(p, "") for p in policies], queue, CLASSIC)
    names = {policy.policy for policy in outcome.winners + outcome.undecided}
    return [p for p in policies if str(p.get("name")) in names]


class MigrationRefused(Exception):
    """The migration did not start, or stopped, because going on could lose messages."""


def preflight(details: dict[str, Any] | None, target: QueueState, counts: tuple[int, int] | None = None) -> None:
    """Refuse, before anything is written, a migration that cannot keep every message.
    ``details`` are the queue's statistics, ``counts`` its exact (ready, consumers)."""
    if details is None:
        return
    name = f"{target.vhost}/{target.queue}"
    # a quorum queue's exact count reads 0 when its leader is slow to answer: both count
    consumers = max(details.get("consumers") or 0, counts[1] if counts else 0)
    if consumers:
        raise MigrationRefused(
            f"queue {name} has {consumers} consumer(s): stop them first (a consumer's unacknowledged "
            "messages would be lost when the queue is deleted); nothing was changed"
        )
    unacked = details.get("messages_unacknowledged") or 0
    if unacked:
        raise MigrationRefused(
            f"queue {name} has {unacked} unacknowledged message(s) held by a client: they would be lost when "
            "the queue is deleted; close that client first; nothing was changed"
        )
    if details.get("type") == "stream":
        raise MigrationRefused(
            f"stream {name} cannot be migrated: consuming a stream does not remove its messages, and a passive "
            "declare cannot show it empty; nothing was changed"
        )
    if target.arguments.get("x-overflow", "drop-head") == "drop-head":
        # the broker confirms a publish into a full drop-head queue and drops the oldest message
        for argument, have, unit in (("x-max-length", details.get("messages"), "message(s)"),
                                     ("x-max-length-bytes", details.get("message_bytes"), "byte(s)")):
            limit = target.arguments.get(argument)
            if isinstance(limit, int) and isinstance(have, int) and have > limit:
                raise MigrationRefused(
                    f"queue {name} holds {have} {unit}, more than the new {argument} {limit}: moving them back "
                    "would drop the oldest; nothing was changed"
                )


class _Guarded:
    """The management client with ``guard`` called before each of its requests: a lost apply
    lock stops a migration before its next step, and nothing is cleaned up without the lock
    (another apply may have taken it over, seal and all)."""

    def __init__(self, client: ManagementClient, guard: Callable[[], None]):
        self._client = client
        self._guard = guard

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def guarded(*args: Any, **kwargs: Any) -> Any:
            self._guard()
            return attribute(*args, **kwargs)

        return guarded


class Migration:
    """Runs (or resumes) the migration of one queue through the management API and AMQP.
    ``guard`` (the apply lock's check) raises once going on is unsafe; it is called before
    every management request and, through the mover's own guard, every message moved."""

    def __init__(self, client: ManagementClient, mover: MessageMover, guard: Callable[[], None] | None = None):
        self.client: Any = client if guard is None else _Guarded(client, guard)
        self.mover = mover
        self.token = ""
        """The running migration's token (:attr:`MigrationRecord.token`)."""

    def run(self, target: QueueState) -> int:
        """Replace the queue by ``target`` keeping its messages and bindings, or finish
        an interrupted migration of it. Returns how many messages were moved into it."""
        vhost, queue = target.vhost, target.queue
        temporary = migration_queue_name(queue)
        current = self._current(vhost, queue)
        fresh = self._bindings_of(vhost, queue) if current is not None else []
        record = self._interrupted(vhost, queue, temporary)
        resumed = record is not None
        if record is None:
            if current is None or current.props() == target.props():
                return 0  # nothing to move: the caller declares the queue
            record = MigrationRecord(vhost, queue, target, tuple(fresh), token=secrets.token_hex(8))
            self._check_temporary(vhost, temporary)  # a resumption goes on: its messages are safer moved back
            self.client.put_queue(vhost, temporary, {
                "durable": True, "auto_delete": False,
                "arguments": {"x-queue-type": "classic", MIGRATION_ARGUMENT: record.to_argument()},
            })
        self.token = record.token
        if resumed:
            sealed = self._sealed(vhost, temporary)
            self._unseal(vhost, temporary)  # a crash may have left the seal of a kept queue
            if sealed and current is not None and current.type != "classic" and current.props() == target.props():
                # ... and seal messages in it: take everything out (they are dropped), it all comes back
                # (without a seal, a queue of the new shape is the new queue, holding the oldest messages)
                self.mover.move(vhost, queue, temporary, self._without_seals(vhost, queue))
        record = record.with_bindings(fresh)

        old = current if current is not None and current.props() != target.props() else None
        moved = self._move_backlog(old, temporary) if old is not None else 0  # new messages still land behind it
        for binding in record.bindings:
            self._bind(binding, temporary)
        if old is not None:
            self._unbind(vhost, queue)
            moved += self._drain_and_delete(old, temporary)
            current = None
        refused: RequestRefused | None = None
        if current is None:
            self._unseal(vhost, temporary)  # a crash may have left it; it would seal the new queue
            try:
                self._declare(target)
            except RequestRefused as error:
                if old is None:
                    raise MigrationRefused(
                        f"the broker refused the new queue: {error.reason}; its messages wait safely in "
                        f"{temporary!r}: fix the files and re-run"
                    ) from None
                refused = error
                self._declare(old)  # put the old queue back, then its messages and bindings
        back = self.mover.move(vhost, temporary, queue, self._unstash)
        for binding in record.bindings:
            self._bind(binding, queue)
        self._unbind(vhost, temporary)
        self._finish(vhost, temporary, queue)
        if refused is not None:
            raise MigrationRefused(
                f"the broker refused the new queue: {refused.reason}; the old queue was restored with its "
                f"{moved} message(s) and its bindings"
            )
        return back

    # -- steps -------------------------------------------------------------------

    def _interrupted(self, vhost: str, queue: str, temporary: str) -> MigrationRecord | None:
        details = self.client.queue_details(vhost, temporary)
        if details is None:
            return None
        record = MigrationRecord.from_argument(vhost, (details.get("arguments") or {}).get(MIGRATION_ARGUMENT))
        if record is None or record.queue != queue:
            raise MigrationRefused(
                f"queue {vhost}/{temporary} exists but is not this tool's migration of {queue!r}; rename or remove it"
            )
        return record

    def _current(self, vhost: str, queue: str) -> QueueState | None:
        details = self.client.queue_details(vhost, queue)
        return None if details is None else QueueState.from_definition(details, vhost)

    def _bindings_of(self, vhost: str, queue: str) -> list[BindingState]:
        return [
            BindingState.from_definition(entry, vhost) for entry in self.client.queue_bindings(vhost, queue) if entry.get("source")
        ]

    def _check_temporary(self, vhost: str, temporary: str) -> None:
        """Refuse when a policy would let messages expire or be dropped in the temporary queue."""
        found = []
        for operator in (False, True):
            for policy in winning_policies(temporary, self.client.policies(vhost, operator=operator)):
                unsafe = sorted(k for k in policy.get("definition") or {} if k in DROPPING_KEYS)
                if unsafe:
                    kind = "operator policy" if operator else "policy"
                    found.append(f"{kind} {policy.get('name')!r} applies to the temporary queue {temporary!r} and sets "
                                 f"{', '.join(unsafe)}")
        if found:
            raise MigrationRefused(
                f"{'; '.join(found)}, so messages could be dropped there: exclude names starting with "
                "'topology.migrate.' from its pattern, then re-run; nothing was changed"
            )

    def _declare(self, queue: QueueState) -> None:
        queue.declare(self.client)

    def _bind(self, binding: BindingState, destination: str) -> None:
        self.client.create_binding(binding.vhost, binding.source, "queue", destination,
                                   {"routing_key": binding.routing_key, "arguments": binding.arguments})

    def _unbind(self, vhost: str, queue: str) -> None:
        for entry in self.client.queue_bindings(vhost, queue):
            if not entry.get("source"):
                continue
            ignore_missing(
                lambda e=entry: self.client.delete_binding(vhost, e["source"], "queue", queue, e["properties_key"])
            )

    def _move_backlog(self, old: QueueState, temporary: str) -> int:
        """Move the old queue's messages while it is still bound, so that what publishers send
        meanwhile lands behind them: passes over what the queue holds, until a pass finds at most
        one round of the mover's (what arrives during that last pass is all that can be overtaken
        at the switch of bindings), or after :data:`ATTEMPTS` passes when publishers outpace it."""
        vhost, queue = old.vhost, old.queue
        transform = self._without_seals(vhost, queue)
        moved = 0
        for _ in range(ATTEMPTS):
            counts = self.mover.counts(vhost, queue)
            if not counts or not counts[0]:
                break
            taken, _ = self.mover.take(vhost, queue, temporary, transform, counts[0])
            moved += taken
            if counts[0] <= self.mover.PREFETCH:
                break
        return moved

    def _drain_and_delete(self, old: QueueState, temporary: str) -> int:
        """Move the old queue's messages out, then delete it once it is seen empty and unused."""
        vhost, queue = old.vhost, old.queue
        if old.type != "classic":
            return self._seal_and_delete(old, temporary)
        moved, deleted = self.mover.drain_and_delete(vhost, queue, temporary, self._stash, ATTEMPTS)
        if deleted:
            return moved
        raise self._keep_arriving(vhost, queue, temporary)

    def _seal_and_delete(self, old: QueueState, temporary: str) -> int:
        """Delete a quorum queue, which the broker cannot delete only-if-empty, without
        losing a message published to it meanwhile.

        After a first drain, a policy of the highest priority (:data:`SEAL_DEFINITION`)
        makes the queue refuse publishes once it holds two messages. From then on the
        queue is never emptied again: its messages are moved from the head, always
        leaving one, and this tool's seal messages are published whenever at most one
        is ready, until the queue holds only seal messages, at least two. A further seal
        message refused proves the seal in force; after :data:`SEAL_SETTLE` the exact
        count must still be those seal messages and no consumer. Then the queue is
        deleted, with only seal messages in it, and the policy removed (before the new
        queue is declared, which it would match)."""
        vhost, queue = old.vhost, old.queue
        transform = self._without_seals(vhost, queue)
        moved = self.mover.move(vhost, queue, temporary, transform)  # the bulk, while publishes still land
        priority = max((int(p.get("priority", 0)) for p in self.client.policies(vhost)), default=0) + 1
        self.client.put_policy(vhost, temporary, {
            "pattern": exact_pattern(queue), "apply-to": "queues", "priority": priority, "definition": SEAL_DEFINITION,
        })
        seals = 0  # seal messages in the queue
        done = False  # the queue is gone
        try:
            for _ in range(SEAL_STEPS):
                counts = self.mover.settled_counts(vhost, queue)
                if counts is None:
                    done = True
                    return moved
                ready = counts[0]
                if counts[1] or ready < seals:
                    raise MigrationRefused(
                        f"while sealing quorum queue {vhost}/{queue} for its deletion, "
                        + (f"{counts[1]} consumer(s) attached to it" if counts[1] else
                           "messages left it that this tool did not take (a purge, a consumer or an expiry)")
                        + f"; stop that and re-run (its messages wait safely in {temporary!r})"
                    )
                if ready <= 1:
                    seals += self.mover.offer(vhost, queue, self.token)
                elif ready == seals:
                    if self.mover.offer(vhost, queue, self.token):
                        seals += 1  # taken: the seal is not in force yet
                        continue
                    time.sleep(SEAL_SETTLE)
                    details = self.client.queue_details(vhost, queue)
                    done = details is None
                    if not done and self.mover.counts(vhost, queue) == (seals, 0) and not details.get("messages_unacknowledged"):
                        ignore_missing(lambda: self.client.delete_queue(vhost, queue, if_empty=False, if_unused=False))
                        done = True
                    if done:
                        return moved
                else:
                    taken, dropped = self.mover.take(vhost, queue, temporary, transform, ready - 1)
                    moved, seals = moved + taken, seals - dropped
        finally:
            cleared = done
            if not done:  # stopped: take the seal messages out before consumers could see them
                try:
                    moved += self.mover.move(vhost, queue, temporary, transform)
                    cleared = True
                except BrokerError:
                    pass  # the seal policy stays: it tells the next run to drop them
            if cleared:
                self._unseal(vhost, temporary)
        raise self._keep_arriving(vhost, queue, temporary)

    def _without_seals(self, vhost: str, queue: str) -> Any:
        def transform(properties: Any) -> Any:
            return None if is_seal(properties, vhost, queue, self.token) else stash(properties, self.token)

        return transform

    def _stash(self, properties: Any) -> Any:
        return stash(properties, self.token)

    def _unstash(self, properties: Any) -> Any:
        return unstash(properties, self.token)

    def _sealed(self, vhost: str, temporary: str) -> bool:
        """Whether the seal policy of this migration is in place (a crash while sealing)."""
        return any(policy.get("name") == temporary for policy in self.client.policies(vhost))

    def _unseal(self, vhost: str, temporary: str) -> None:
        ignore_missing(lambda: self.client.delete_policy(vhost, temporary))

    def _keep_arriving(self, vhost: str, queue: str, temporary: str) -> MigrationRefused:
        """Why the old queue could not be seen empty and unused: a consumer that attached
        meanwhile, or publishers that keep sending straight to it."""
        try:
            counts = self.mover.counts(vhost, queue)
        except BrokerError:
            counts = None
        if counts is not None and counts[1]:
            return MigrationRefused(
                f"{counts[1]} consumer(s) attached to {vhost}/{queue} during the migration; stop them and re-run "
                f"(the messages wait safely in {queue!r} and {temporary!r}; those a consumer holds come back "
                "when it stops)"
            )
        return MigrationRefused(
            f"messages keep arriving in {vhost}/{queue} straight through the default exchange; "
            f"stop its publishers and re-run (they wait safely in {temporary!r})"
        )

    def _finish(self, vhost: str, temporary: str, queue: str) -> None:
        for _ in range(ATTEMPTS):
            self.mover.move(vhost, temporary, queue, self._unstash)
            if self._delete_if_empty(vhost, temporary):
                return
        raise MigrationRefused(f"messages keep arriving in {vhost}/{temporary}; re-run to move them to {queue!r}")

    def _delete_if_empty(self, vhost: str, queue: str) -> bool:
        try:
            self.client.delete_queue(vhost, queue, if_empty=True, if_unused=True)
        except RequestRefused as refused:
            if refused.status == 404:
                return True
            if refused.status == 400:
                return False
            raise
        return True
