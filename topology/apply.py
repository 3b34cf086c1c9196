"""Run a plan against the broker: one handler per (kind, action).

Changes run in plan order and stop at the first failure with the object and the
broker's reason. Bindings dropped by a replacement are re-created once all
replacements of exchanges and queues are done. Every step is idempotent, so a re-run
after a failure converges.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from topology.broker.amqp import QueueInspector
from topology.broker.client import ManagementClient, RequestRefused
from topology.diff import CREATE, DELETE, REPLACE, UPDATE, Change
from topology.errors import ApplyError
from topology.plan import Plan
from topology.state import (
    KIND_ORDER,
    BindingState,
    ExchangeState,
    PolicyState,
    QueueState,
    Resource,
    VhostState,
    canonical,
)

class Unsafe(Exception):
    """A change was not made because making it could lose data."""


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
            ("exchange", CREATE): self._create_exchange,
            ("exchange", REPLACE): self._replace_exchange,
            ("exchange", DELETE): self._delete_exchange,
            ("queue", CREATE): self._create_queue,
            ("queue", REPLACE): self._replace_queue,
            ("queue", DELETE): self._delete_queue,
            ("binding", CREATE): self._create_binding,
            ("binding", DELETE): self._delete_binding,
            ("policy", CREATE): self._put_policy,
            ("policy", UPDATE): self._put_policy,
            ("policy", DELETE): self._delete_policy,
        }

    def apply(self, plan: Plan, report: Report | None = None) -> list[Change]:
        """Apply every change of ``plan``; return the changes applied. Raises :class:`ApplyError`."""
        report = report or (lambda change, event: None)
        applied: list[Change] = []
        pending_rebind: dict[tuple[Any, ...], BindingState] = {}
        binding_phase = KIND_ORDER.index("binding")

        def flush_rebinds() -> None:
            for binding in pending_rebind.values():
                self._run(Change(CREATE, None, binding, reason="re-created after a replacement"), applied, plan, report)
            pending_rebind.clear()

        for change in plan.changes:
            if pending_rebind and (change.action == DELETE or KIND_ORDER.index(change.kind) >= binding_phase):
                flush_rebinds()
            self._run(change, applied, plan, report)
            for binding in change.rebind:
                pending_rebind[binding.key] = binding
        flush_rebinds()
        return applied

    def _run(self, change: Change, applied: list[Change], plan: Plan, report: Report) -> None:
        handler = self.handlers.get((change.kind, change.action))
        if handler is None:
            raise ApplyError(f"no way to {change.action} a {change.kind} ({change.vhost}/{change.name})")
        report(change, "start")
        try:
            handler(change)
        except (RequestRefused, Unsafe) as failure:
            why = f"{failure.reason} (HTTP {failure.status})" if isinstance(failure, RequestRefused) else str(failure)
            done = sum(1 for c in applied if c in plan.changes)
            raise ApplyError(
                f"{change.action} {change.kind} {change.vhost}/{change.name} failed: {why}; "
                f"{done} of {len(plan.changes)} change(s) had been applied, re-run to finish once the cause is fixed"
            ) from None
        applied.append(change)
        report(change, "done")

    # -- handlers ------------------------------------------------------------

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

    def _create_exchange(self, change: Change) -> None:
        exchange = change.after
        assert isinstance(exchange, ExchangeState)
        self.client.put_exchange(
            exchange.vhost,
            exchange.exchange,
            {
                "type": exchange.type,
                "durable": exchange.durable,
                "auto_delete": exchange.auto_delete,
                "internal": exchange.internal,
                "arguments": exchange.arguments,
            },
        )

    def _replace_exchange(self, change: Change) -> None:
        self._delete_exchange(change)
        self._create_exchange(change)

    def _delete_exchange(self, change: Change) -> None:
        exchange = change.before
        assert isinstance(exchange, ExchangeState)
        _ignore_missing(lambda: self.client.delete_exchange(exchange.vhost, exchange.exchange))

    def _create_queue(self, change: Change) -> None:
        queue = change.after
        assert isinstance(queue, QueueState)
        self.client.put_queue(
            queue.vhost,
            queue.queue,
            {"durable": queue.durable, "auto_delete": queue.auto_delete, "arguments": queue.declare_arguments()},
        )

    def _replace_queue(self, change: Change) -> None:
        self._delete_queue(change)
        self._create_queue(change)

    def _delete_queue(self, change: Change) -> None:
        """Delete a queue only when it is empty and unused, checked exactly just before.

        Classic queues are also guarded by the broker itself (``if-empty``/``if-unused``);
        quorum queues refuse those flags, so for them the AMQP check is the guard.
        """
        queue = change.before
        assert isinstance(queue, QueueState)
        if self.inspector is not None:
            counts = self.inspector.counts(queue.vhost, queue.queue)
            if counts is None:
                return
            messages, consumers = counts
            if messages or consumers:
                raise Unsafe(f"it holds {messages} message(s) and has {consumers} consumer(s); not deleted, nothing was lost")
        guarded = queue.type == "classic"
        try:
            _ignore_missing(lambda: self.client.delete_queue(queue.vhost, queue.queue, if_empty=guarded, if_unused=guarded))
        except RequestRefused as refused:
            if refused.status == 400 and guarded:
                raise Unsafe(
                    f"the broker refused to delete it: it holds messages or has consumers ({refused.reason}); nothing was lost"
                ) from None
            raise

    def _create_binding(self, change: Change) -> None:
        binding = change.after
        assert isinstance(binding, BindingState)
        self.client.create_binding(
            binding.vhost,
            binding.source,
            binding.destination_type,
            binding.destination,
            {"routing_key": binding.routing_key, "arguments": binding.arguments},
        )

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

    def _put_policy(self, change: Change) -> None:
        policy = change.after
        assert isinstance(policy, PolicyState)
        self.client.put_policy(
            policy.vhost,
            policy.policy,
            {"pattern": policy.pattern, "apply-to": policy.apply_to, "priority": policy.priority, "definition": policy.definition},
        )

    def _delete_policy(self, change: Change) -> None:
        policy = change.before
        assert isinstance(policy, PolicyState)
        _ignore_missing(lambda: self.client.delete_policy(policy.vhost, policy.policy))


def _ignore_missing(action: Callable[[], None]) -> None:
    """Run a deletion; an object already gone is what was wanted."""
    try:
        action()
    except RequestRefused as refused:
        if refused.status != 404:
            raise


def resource_label(resource: Resource) -> str:
    return f"{resource.kind} {resource.vhost}/{resource.name}"
