"""Routing tests (``tests:`` in the files): each message must reach exactly the queues listed.

Offline, the simulator (:mod:`topology.route`) answers. Live, a throw-away vhost per tested
vhost is built from the files on the broker (its exchanges, queues, bindings, policies and
operator policies, loaded as a definitions document), every test message is published into
it, the queues that receive each one are read by consumers, and the vhost is deleted.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from dataclasses import dataclass
from typing import Any

from topology.model.topology import Origin, Topology
from topology.route import Message, Route, RouteError, route
from topology.kinds import BindingState, ExchangeState, PolicyState, QueueState
from topology.state import State
from topology.rules.versions import OLDEST_SUPPORTED

LIVE_PREFIX = "topology-test-"
"""How a live run's throw-away vhosts are named by default: this, then 12 random hex digits
(``test --live --vhost-prefix`` sets another start)."""
PREFIX_MAX_BYTES = 200
"""The longest prefix, in UTF-8 bytes: the name stays well within what a vhost name may be."""


@dataclass
class Outcome:
    """One test's result."""

    name: str
    origin: Origin
    expected: list[str]
    expected_refused: bool
    reached: list[str] | None = None
    refused: bool = False
    error: str | None = None
    route: Route | None = None
    """Offline: the simulated route (the paths)."""

    @property
    def passed(self) -> bool:
        return (self.error is None and self.refused == self.expected_refused
                and sorted(self.reached or []) == sorted(self.expected))

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "file": self.origin.file, "line": self.origin.line,
                                "passed": self.passed, "expected": sorted(self.expected),
                                "reached": sorted(self.reached or [])}
        if self.expected_refused or self.refused:
            data.update(expected_refused=self.expected_refused, refused=self.refused)
        if self.error:
            data["error"] = self.error
        return data


def describe(test: Any) -> str:
    """A test's name, or its message described."""
    if test.name:
        return str(test.name)
    exchange = "the default exchange" if test.exchange == "" else repr(test.exchange)
    headers = f" headers {json.dumps(test.headers, sort_keys=True)}" if test.headers else ""
    return f"{test.vhost}: {exchange} {test.routing_key!r}{headers}"


def _outcome(declared: Any) -> Outcome:
    test = declared.spec
    return Outcome(describe(test), declared.origin, list(test.queues), test.refused)


def run_offline(topology: Topology, state: State, version: tuple[int, ...] = OLDEST_SUPPORTED) -> list[Outcome]:
    """Each test answered by the simulator (with the rules of RabbitMQ ``version``)."""
    outcomes = []
    for declared in topology.tests:
        test, outcome = declared.spec, _outcome(declared)
        try:
            result = route(state, test.vhost, Message(test.exchange, test.routing_key, dict(test.headers)),
                           version=version)
        except RouteError as error:
            outcome.error = str(error)
        else:
            outcome.route, outcome.refused = result, result.refused is not None
            outcome.reached = result.queues
            if result.uncertain:  # never a pass that the simulation cannot vouch for: run it with --live
                outcome.error = "cannot be simulated: " + "; ".join(result.uncertain) + " (run it with --live)"
        outcomes.append(outcome)
    return outcomes


def live_document(state: State, vhost: str, name: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The definitions document of ``vhost``'s routing objects, moved to the vhost ``name``, and
    its queues (name → type)."""
    from topology.render.definitions import render_definitions

    moved = State()
    moved.vhosts[name] = dataclasses.replace(state.vhosts[vhost], vhost=name, limits=None, tracing=None)
    queues = {}
    for resource in state.objects.values():
        if resource.vhost == vhost and isinstance(resource, (ExchangeState, QueueState, BindingState, PolicyState)):
            moved.add(dataclasses.replace(resource, vhost=name))
            if isinstance(resource, QueueState):
                queues[resource.queue] = resource.type
    document = render_definitions(moved).documents[0]
    return document, queues


def _unsendable(key: str, value: Any) -> str | None:
    """Why pika cannot send a header value (a float anywhere, an integer beyond 64 bits)."""
    if isinstance(value, float):
        return f"header {key!r} holds a decimal number"
    if isinstance(value, int) and not isinstance(value, bool) and not -2**63 <= value < 2**63:
        return f"header {key!r} holds an integer beyond 64 bits"
    if isinstance(value, list):
        return next((p for p in (_unsendable(key, v) for v in value) if p), None)
    if isinstance(value, dict):
        return next((p for p in (_unsendable(key, v) for v in value.values()) if p), None)
    return None


def run_live(topology: Topology, state: State, client: Any, amqp: Any, prefix: str = LIVE_PREFIX,
             made: list[str] | None = None) -> tuple[list[Outcome], list[str]]:
    """Each test run on the broker, in throw-away vhosts built from the files (deleted after),
    named ``prefix`` and 12 random hex digits (each added to ``made`` before it is created). Also
    returns the throw-away vhosts that could not be deleted, with why."""
    from topology.broker.amqp import observe_routing
    from topology.broker.client import RequestRefused
    from topology.errors import TopologyError

    outcomes = [_outcome(declared) for declared in topology.tests]
    leftovers: list[str] = []
    by_vhost: dict[str, list[int]] = {}
    for index, declared in enumerate(topology.tests):
        test = declared.spec
        if test.vhost not in state.vhosts:
            outcomes[index].error = f"vhost {test.vhost!r} is not declared in the files"
            continue
        problem = next((p for p in (_unsendable(k, v) for k, v in sorted(test.headers.items())) if p), None)
        if problem:
            outcomes[index].error = f"{problem}, which the AMQP client cannot send; run this test offline"
            continue
        by_vhost.setdefault(test.vhost, []).append(index)
    for vhost, indexes in sorted(by_vhost.items()):
        name = f"{prefix}{uuid.uuid4().hex[:12]}"
        if made is not None:
            made.append(name)
        document, queues = live_document(state, vhost, name)
        try:
            client.import_definitions(document)
            client.put_permission(name, amqp.user, {"configure": ".*", "write": ".*", "read": ".*"})
            messages = [(topology.tests[i].spec.exchange, topology.tests[i].spec.routing_key,
                         dict(topology.tests[i].spec.headers)) for i in indexes]
            observed = observe_routing(amqp, name, queues, messages)
        except RequestRefused as refused:  # the tests cannot run: one error line, exit 1
            raise TopologyError(f"cannot build the throw-away vhost {name} for vhost {vhost!r}: {refused}") from None
        except TopologyError as error:
            raise TopologyError(f"{error} (in the throw-away vhost {name} for vhost {vhost!r})") from None
        finally:
            try:
                client.delete_vhost(name)
            except RequestRefused as refused:
                if refused.status != 404:  # 404: the import never created it
                    leftovers.append(f"{name}: {refused}")
            except TopologyError as error:  # never hides the tests' result: listed for the user to delete
                leftovers.append(f"{name}: {error}")
        for index, seen in zip(indexes, observed):
            if seen == "nacked":
                outcomes[index].error = ("the broker did not confirm the publish: a queue refused it (overflow "
                                         "reject-publish on a full queue?)")
                continue
            outcomes[index].refused = seen == "refused"
            outcomes[index].reached = [] if seen == "refused" else sorted(seen)
    return outcomes, leftovers
