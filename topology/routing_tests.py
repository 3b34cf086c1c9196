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
from topology.state import BindingState, ExchangeState, PolicyState, QueueState, State

LIVE_PREFIX = "topology-test-"
"""The name of a live run's throw-away vhosts: this, then random letters."""


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


def run_offline(topology: Topology, state: State) -> list[Outcome]:
    """Each test answered by the simulator."""
    outcomes = []
    for declared in topology.tests:
        test, outcome = declared.spec, _outcome(declared)
        try:
            result = route(state, test.vhost, Message(test.exchange, test.routing_key, dict(test.headers)))
        except RouteError as error:
            outcome.error = str(error)
        else:
            outcome.route, outcome.refused = result, result.refused is not None
            outcome.reached = result.queues
            if result.uncertain and not outcome.passed:
                outcome.error = "cannot be simulated: " + "; ".join(result.uncertain)
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


def run_live(topology: Topology, state: State, client: Any, amqp: Any) -> tuple[list[Outcome], list[str]]:
    """Each test run on the broker, in throw-away vhosts built from the files (deleted after).
    Also returns the throw-away vhosts that could not be deleted, with why."""
    from topology.broker.amqp import observe_routing
    from topology.errors import TopologyError

    outcomes = [_outcome(declared) for declared in topology.tests]
    leftovers: list[str] = []
    by_vhost: dict[str, list[int]] = {}
    for index, declared in enumerate(topology.tests):
        test = declared.spec
        if test.vhost not in state.vhosts:
            outcomes[index].error = f"vhost {test.vhost!r} is not declared in the files"
            continue
        floats = sorted(k for k, v in test.headers.items() if isinstance(v, float))
        if floats:
            outcomes[index].error = (f"header {floats[0]!r} is a decimal number, which the AMQP client cannot send; "
                                     "use an integer or text, or run the test offline")
            continue
        by_vhost.setdefault(test.vhost, []).append(index)
    for vhost, indexes in sorted(by_vhost.items()):
        name = f"{LIVE_PREFIX}{uuid.uuid4().hex[:12]}"
        document, queues = live_document(state, vhost, name)
        try:
            client.import_definitions(document)
            client.put_permission(name, amqp.user, {"configure": ".*", "write": ".*", "read": ".*"})
            messages = [(topology.tests[i].spec.exchange, topology.tests[i].spec.routing_key,
                         dict(topology.tests[i].spec.headers)) for i in indexes]
            observed = observe_routing(amqp, name, queues, messages)
        except TopologyError as error:
            for index in indexes:
                outcomes[index].error = f"{error} (in the throw-away vhost {name} for vhost {vhost!r})"
            continue
        finally:
            try:
                client.delete_vhost(name)
            except TopologyError as error:  # never hides the tests' result: listed for the user to delete
                leftovers.append(f"{name}: {error}")
        for index, seen in zip(indexes, observed):
            outcomes[index].refused = seen == "refused"
            outcomes[index].reached = [] if seen == "refused" else sorted(seen)
    return outcomes, leftovers
