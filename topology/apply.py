"""Run a plan against the broker: one handler per (kind, action).

Before the first write, every queue that a replacement would delete is checked for
messages and consumers (AMQP counts and the management statistics), so an unsafe
plan stops with nothing changed. A replacement is self-contained: delete, declare,
re-create the bindings the broker dropped, all before the next change. If the broker
refuses the new declaration, the old object and its bindings are restored. Every step
is idempotent, so a re-run after any failure converges.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from topology.broker.amqp import QueueInspector
from topology.broker.client import ManagementClient, RequestRefused
from topology.diff import CREATE, DELETE, REPLACE, UPDATE, Change
from topology.errors import ApplyError, BrokerError
from topology.plan import Plan
from topology.state import BindingState, ExchangeState, PolicyState, QueueState, Resource, VhostState, canonical


class Unsafe(Exception):
    """A change was not made, or not finished, because going on could lose data."""


Report = Callable[[Change, str], None]
"""Called with each change and ``"start"`` or ``"done"``."""


class Applier:
    """Executes changes through a :class:`ManagementClient`."""

    def __init__(self, client: ManagementClient, inspector: QueueInspector | None = None):
        self.client = client
        self.inspector = inspector
        self.handlers: dict[tuple[str, str], Callable[[Change], None]] = {
            ("vhost", CREATE): self._put_vhost,
            ("vhost", UPDATE): self._put_vhost,
            ("exchange", CREATE): lambda c: self._declare(c.after),
            ("exchange", REPLACE): self._replace,
            ("queue", CREATE): lambda c: self._declare(c.after),
            ("queue", REPLACE): self._replace,
            ("binding", CREATE): lambda c: self._declare(c.after),
            ("binding", DELETE): self._delete_binding,
            ("policy", CREATE): lambda c: self._declare(c.after),
            ("policy", UPDATE): lambda c: self._declare(c.after),
        }

    def apply(self, plan: Plan, report: Report | None = None) -> list[Change]:
        """Apply every change of ``plan``; return the changes applied. Raises :class:`ApplyError`."""
        report = report or (lambda change, event: None)
        applied: list[Change] = []
        for change in plan.changes:
            if change.action == REPLACE and isinstance(change.before, QueueState):
                self._guard(change, applied, plan, lambda c=change: self._check_queue_is_idle(c.before))
        for change in plan.changes:
            handler = self.handlers.get((change.kind, change.action))
            if handler is None:
                raise ApplyError(f"no way to {change.action} a {change.kind} ({change.vhost}/{change.name})")
            report(change, "start")
            self._guard(change, applied, plan, lambda h=handler, c=change: h(c))
            applied.append(change)
            report(change, "done")
        return applied

    def _guard(self, change: Change, applied: list[Change], plan: Plan, action: Callable[[], None]) -> None:
        """Run ``action``; turn a refusal into one :class:`ApplyError` line with the progress so far."""
        try:
            action()
        except (RequestRefused, Unsafe, BrokerError) as failure:
            why = f"{failure.reason} (HTTP {failure.status})" if isinstance(failure, RequestRefused) else str(failure)
            raise ApplyError(
                f"{change.action} {change.kind} {change.vhost}/{change.name} failed: {why}; "
                f"{len(applied)} of {len(plan.changes)} change(s) had been applied, re-run to finish once the cause is fixed"
            ) from None

    # -- declarations ----------------------------------------------------------

    def _declare(self, resource: Resource | None) -> None:
        """Create (or overwrite in place) one object."""
        if isinstance(resource, ExchangeState):
            self.client.put_exchange(resource.vhost, resource.exchange, {
                "type": resource.type, "durable": resource.durable, "auto_delete": resource.auto_delete,
                "internal": resource.internal, "arguments": resource.arguments,
            })
        elif isinstance(resource, QueueState):
            self.client.put_queue(resource.vhost, resource.queue, {
                "durable": resource.durable, "auto_delete": resource.auto_delete, "arguments": resource.declare_arguments(),
            })
        elif isinstance(resource, BindingState):
            self.client.create_binding(resource.vhost, resource.source, resource.destination_type, resource.destination,
                                       {"routing_key": resource.routing_key, "arguments": resource.arguments})
        elif isinstance(resource, PolicyState):
            self.client.put_policy(resource.vhost, resource.policy, {
                "pattern": resource.pattern, "apply-to": resource.apply_to, "priority": resource.priority,
                "definition": resource.definition,
            })
        else:
            raise TypeError(f"cannot declare {resource!r}")

    def _put_vhost(self, change: Change) -> None:
        vhost = change.after
        assert isinstance(vhost, VhostState)
        body: dict[str, Any] = {}
        if vhost.description is not None:
            body["description"] = vhost.description
        if vhost.tags is not None:
            body["tags"] = ",".join(vhost.tags)
        if vhost.default_queue_type is not None:
            # 3.10.8 to 3.11.11 read "defaultqueuetype"; later versions "default_queue_type"
            body["default_queue_type"] = vhost.default_queue_type
            body["defaultqueuetype"] = vhost.default_queue_type
        self.client.put_vhost(vhost.vhost, body)

    # -- replacement -----------------------------------------------------------

    def _replace(self, change: Change) -> None:
        """Delete, declare anew and re-bind; restore the old object if the new one is refused."""
        before, after = change.before, change.after
        if isinstance(before, QueueState):
            self._check_queue_is_idle(before)
            self._delete_queue(before)
        elif isinstance(before, ExchangeState):
            _ignore_missing(lambda: self.client.delete_exchange(before.vhost, before.exchange))
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

    def _check_queue_is_idle(self, queue: Resource | None) -> None:
        """Refuse unless the queue holds no message (ready or unacknowledged) and has no consumer."""
        assert isinstance(queue, QueueState)
        info = self.client.queue_info(queue.vhost, queue.queue)
        if info is None:
            return
        messages, unacked, consumers = (info.get(k) for k in ("messages", "messages_unacknowledged", "consumers"))
        if any(isinstance(n, int) and n > 0 for n in (messages, unacked, consumers)):
            raise Unsafe(
                f"it holds {messages or 0} message(s) ({unacked or 0} unacknowledged) and has {consumers or 0} "
                "consumer(s); not deleted, nothing was lost"
            )
        if queue.type == "stream" and not isinstance(messages, int):
            # a passive declare always counts 0 for a stream: only the statistics can tell
            raise Unsafe("the broker has no statistics for this stream yet, so it cannot be shown to be empty; retry shortly")
        if self.inspector is not None:
            counts = self.inspector.counts(queue.vhost, queue.queue)
            if counts is not None and (counts[0] or counts[1]):
                raise Unsafe(
                    f"it holds {counts[0]} message(s) and has {counts[1]} consumer(s); not deleted, nothing was lost"
                )

    def _delete_queue(self, queue: QueueState) -> None:
        # classic queues also get the broker's own atomic guard; quorum queues refuse it
        guarded = queue.type == "classic"
        try:
            _ignore_missing(lambda: self.client.delete_queue(queue.vhost, queue.queue, if_empty=guarded, if_unused=guarded))
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
                _ignore_missing(
                    lambda: self.client.delete_binding(
                        binding.vhost, binding.source, binding.destination_type, binding.destination, entry["properties_key"]
                    )
                )


def _ignore_missing(action: Callable[[], None]) -> None:
    """Run a deletion; an object already gone is what was wanted."""
    try:
        action()
    except RequestRefused as refused:
        if refused.status != 404:
            raise
