"""Where a message goes: RabbitMQ's routing, simulated over a desired (or live) state (pure).

The rules are the broker's own (``rabbit_exchange:route/2`` and the exchange type modules
of RabbitMQ 3.10 to 4.x), followed step by step:

- A message carries routing keys: the one it was published with, then those of its ``CC``
  and ``BCC`` headers (arrays of strings); ``BCC`` is removed from the headers before routing.
- The default exchange (``""``) routes to the queue named by each routing key.
- ``direct``: bindings whose key equals a routing key. ``fanout``: every binding.
  ``topic``: the binding key and routing key are split on ``.`` into words (empty words
  count; an empty key has no words); ``*`` matches one word, ``#`` zero or more.
  ``headers``: ``x-match`` ``all`` (default) or ``any`` over the binding's arguments, not
  counting those starting with ``x-`` unless ``all-with-x`` / ``any-with-x``; a ``null``
  binding value asks only that the header be present; before RabbitMQ 3.13 values compare as
  Erlang's ``==`` (``10`` equals ``10.0``), from 3.13 exactly (``=:=``); ``"10"`` is never
  ``10`` and ``true`` never ``1``. An array or table binding value is compared with type tags
  that depend on the publishing client: the result is uncertain.
  ``x-delayed-message`` routes as its ``x-delayed-type`` (after the delay);
  ``x-consistent-hash`` and other plugin types route by rules this simulation does not
  reproduce: their bindings count as matched (no alternate exchange) and the result is
  uncertain, with the candidates listed.
- A ``CC`` or ``BCC`` header that is not an array makes the broker refuse the publish (406).
- An exchange's bindings to other exchanges send the message on, with the same routing
  keys; each exchange routes a message once (a loop ends there), and a queue receives it once.
- When an exchange's own bindings match nothing (neither a queue nor an exchange), its
  alternate exchange (argument ``alternate-exchange``, else the policy key) routes it.
- An internal exchange cannot be published to (the broker closes the channel); it routes
  what other exchanges send it.
- Dead-lettering (:func:`dead_letter`): the queue's dead-letter exchange (the queue argument
  wins over the policy) routes the message with the dead-letter routing key if set (and the
  ``CC`` header removed), else its original routing keys. A message expired (or dropped for
  length) into a queue it already died in, with no rejection on the way, is dropped by the
  broker: a cycle.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from topology.kinds import BindingState, ExchangeState, OperatorPolicyState, PolicyState, QueueState
from topology.state import State
from topology.matching import EXCHANGE, contest
from topology.rules.exchanges import built_in_exchanges
from topology.rules.versions import OLDEST_SUPPORTED

REASONS = ("rejected", "expired", "maxlen", "delivery_limit")
"""Why a message is dead-lettered (the ``x-death`` reason)."""


class RouteError(ValueError):
    """The message cannot be simulated: no such vhost or exchange in the files."""


@dataclass(frozen=True)
class Hop:
    """One step of a message's path: ``exchange`` sent it on ``via`` a binding (its key and
    arguments), its alternate exchange, or the default exchange's implicit binding."""

    exchange: str
    via: str
    """``binding``, ``alternate-exchange`` or ``default``."""
    routing_key: str = ""
    arguments: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"exchange": self.exchange, "via": self.via}
        if self.via == "binding":
            data["binding_key"] = self.routing_key
            if self.arguments:
                data["arguments"] = self.arguments
        return data


@dataclass
class Delivery:
    """One queue the message reaches, the path that took it there and, when asked, where
    it goes if it dies there."""

    queue: str
    path: list[Hop]
    dead_letter: "Route | None" = None
    dead_letter_reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.queue, "path": [hop.to_dict() for hop in self.path]}
        if self.dead_letter is not None:
            data["dead_letter"] = self.dead_letter.to_dict()
        return data


@dataclass
class Route:
    """Where one message goes."""

    vhost: str
    exchange: str
    routing_keys: list[str]
    deliveries: list[Delivery] = field(default_factory=list)
    refused: str | None = None
    """Why the broker refuses the publish (an internal exchange); nothing is routed."""
    uncertain: list[str] = field(default_factory=list)
    """What the simulation cannot tell (a hash-based exchange's choice, an unknown exchange type)."""
    dropped: list[str] = field(default_factory=list)
    """Where the message was lost on the way (an alternate or dead-letter exchange that does not exist)."""
    cycles: list[str] = field(default_factory=list)
    """Dead-letter cycles: queues the message would come back to (see :func:`dead_letter`)."""
    reason: str = ""
    """For a dead-lettered message: why it died."""
    source_queue: str = ""
    headers: dict[str, Any] = field(default_factory=dict, repr=False)
    """The headers the exchanges saw."""

    @property
    def queues(self) -> list[str]:
        return [d.queue for d in self.deliveries]

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"vhost": self.vhost, "exchange": self.exchange, "routing_keys": self.routing_keys,
                                "queues": [d.to_dict() for d in self.deliveries]}
        if self.reason:
            data = {"reason": self.reason, "from_queue": self.source_queue, **data}
        for key in ("refused", "uncertain", "dropped", "cycles"):
            if getattr(self, key):
                data[key] = getattr(self, key)
        return data


@dataclass(frozen=True)
class Message:
    """A message as published: exchange, routing key and headers (JSON values)."""

    exchange: str
    routing_key: str = ""
    headers: dict[str, Any] = field(default_factory=dict, hash=False)
    keys: tuple[str, ...] | None = None
    """A dead-lettered message's routing keys, as the broker set them (not from its headers)."""

    def routing_keys(self) -> list[str]:
        """The routing key and those of the ``CC`` and ``BCC`` headers (``rabbit_basic:header_routes``)."""
        if self.keys is not None:
            return list(self.keys)
        keys = [self.routing_key]
        for header in ("CC", "BCC"):
            value = self.headers.get(header)
            if isinstance(value, list):
                keys += [str(v) for v in value if isinstance(v, str)]
        return keys

    def routed_headers(self) -> dict[str, Any]:
        """The headers exchanges see: without ``BCC``."""
        return {k: v for k, v in self.headers.items() if k != "BCC"}


class Network:
    """The exchanges, queues, bindings and policies of one vhost, indexed for routing."""

    def __init__(self, state: State, vhost: str, version: tuple[int, ...] = OLDEST_SUPPORTED) -> None:
        if vhost not in state.vhosts:
            raise RouteError(f"vhost {vhost!r} is not declared in the files")
        self.vhost = vhost
        self.version = version
        self.exact_headers = version >= (3, 13)
        """From 3.13 the headers exchange compares values with ``=:=`` (``10`` is not ``10.0``)."""
        self.exchanges: dict[str, ExchangeState] = {
            name: ExchangeState(vhost=vhost, exchange=name, type=built_in.type, internal=built_in.internal)
            for name, built_in in built_in_exchanges(vhost).items()}
        self.queues: dict[str, QueueState] = {}
        self.bindings: dict[str, list[BindingState]] = {}
        """By source exchange."""
        self.inbound: dict[tuple[str, str], list[BindingState]] = {}
        """By (destination type, destination)."""
        self._settings: dict[str, dict[str, Any]] = {}
        self.policies: list[PolicyState] = []
        self.operator_policies: list[PolicyState] = []
        for resource in state.objects.values():
            if resource.vhost != vhost:
                continue
            if isinstance(resource, ExchangeState):
                self.exchanges[resource.exchange] = resource
            elif isinstance(resource, QueueState):
                self.queues[resource.queue] = resource
            elif isinstance(resource, BindingState):
                self.bindings.setdefault(resource.source, []).append(resource)
                self.inbound.setdefault((resource.destination_type, resource.destination), []).append(resource)
            elif isinstance(resource, OperatorPolicyState):
                self.operator_policies.append(resource)
            elif isinstance(resource, PolicyState):
                self.policies.append(resource)
        for bindings in self.bindings.values():
            bindings.sort(key=lambda b: b.key)

    # -- policies -------------------------------------------------------------------------

    def exchange_policies(self, exchange: str) -> list[PolicyState]:
        """The policies that may apply to an exchange: the highest priority among those that
        apply to exchanges and match its name (several on a tie)."""
        return contest(self.policies, exchange, EXCHANGE).winners

    def exchange_setting(self, exchange: ExchangeState, key: str) -> Any:
        """An exchange's setting: its ``key`` argument, else the winning policy's key."""
        if key in exchange.arguments:
            return exchange.arguments[key]
        winners = self.exchange_policies(exchange.exchange)
        return winners[0].definition.get(key) if winners else None

    def queue_settings(self, queue: QueueState) -> dict[str, Any]:
        """A queue's effective settings (its arguments and policies resolved as the broker does:
        :func:`topology.policies.resolve`), worked out once per queue."""
        settings = self._settings.get(queue.queue)
        if settings is None:
            from topology.policies import resolve

            found = resolve(queue.queue, queue.type, queue.arguments, self.policies, self.operator_policies,
                            self.version)
            settings = self._settings[queue.queue] = {key: s.value for key, s in found.settings.items()}
        return settings

    def queue_setting(self, queue: QueueState, key: str) -> Any:
        return self.queue_settings(queue).get(key)

    # -- routing --------------------------------------------------------------------------

    def publish(self, message: Message) -> Route:
        """Route a message published to ``message.exchange``."""
        route = Route(self.vhost, message.exchange, message.routing_keys())
        for header in ("CC", "BCC"):
            if header in message.headers and not isinstance(message.headers[header], list):
                route.refused = (f"header {header} is not an array: the broker refuses the publish "
                                 "(406 PRECONDITION_FAILED closes the channel)")
                return route
        if message.exchange == "":
            self._default(route, route.routing_keys, [])
            return route
        exchange = self.exchanges.get(message.exchange)
        if exchange is None:
            raise RouteError(f"vhost {self.vhost!r} has no exchange {message.exchange!r} in the files")
        if exchange.internal:
            route.refused = (f"exchange {message.exchange!r} is internal: the broker refuses the publish "
                             "(403 ACCESS_REFUSED closes the channel)")
            return route
        self._route(route, exchange, message.routed_headers(), route.routing_keys)
        return route

    def _default(self, route: Route, keys: list[str], path: list[Hop]) -> None:
        for key in sorted(set(keys)):
            if key in self.queues and key not in route.queues:
                route.deliveries.append(Delivery(key, path + [Hop("", "default", key)]))

    def _route(self, route: Route, start: ExchangeState, headers: dict[str, Any], keys: list[str]) -> None:
        """Breadth first from ``start``: each exchange routes once, each queue receives once."""
        seen = {start.exchange}
        work: deque[tuple[ExchangeState, list[Hop]]] = deque([(start, [])])
        while work:
            exchange, path = work.popleft()
            destinations, unknown = self._matches(route, exchange, headers, keys)
            if not destinations and not unknown:
                if "alternate-exchange" not in exchange.arguments:
                    for policy in contest(self.policies, exchange.exchange, EXCHANGE).undecided:
                        route.uncertain.append(
                            f"policy {policy.policy!r} may give exchange {exchange.exchange!r} an alternate exchange: "
                            "its pattern cannot be evaluated here")
                alternate = self.exchange_setting(exchange, "alternate-exchange")
                if isinstance(alternate, str):
                    destinations = [("exchange", alternate, Hop(exchange.exchange, "alternate-exchange"))]
            for kind, name, hop in destinations:
                if kind == "queue":
                    if name not in route.queues and name in self.queues:
                        route.deliveries.append(Delivery(name, path + [hop]))
                    continue
                if name in seen:
                    continue
                seen.add(name)
                target = self.exchanges.get(name)
                if target is None:
                    route.dropped.append(f"exchange {name!r} (named by {exchange.exchange!r}) is not declared: "
                                         "the broker skips it")
                    continue
                work.append((target, path + [hop]))

    def _matches(self, route: Route, exchange: ExchangeState, headers: dict[str, Any],
                 keys: list[str]) -> tuple[list[tuple[str, str, Hop]], bool]:
        """The destinations an exchange's own bindings match: (kind, name, hop); and whether it
        routes by rules not simulated here (then its bindings count as matched: no alternate)."""
        kind = exchange.type
        if kind == "x-delayed-message":
            kind = str(exchange.arguments.get("x-delayed-type", "direct"))
        bindings = self.bindings.get(exchange.exchange, [])
        if kind not in SIMULATED_TYPES:
            if bindings:
                how = "sends the message to one of" if kind == "x-consistent-hash" else \
                    f"(type {kind}, not simulated) may send the message to"
                route.uncertain.append(f"exchange {exchange.exchange!r} {how}: "
                                       f"{', '.join(sorted({b.destination for b in bindings}))}")
            return [], bool(bindings)
        found = []
        for binding in bindings:
            if kind == "headers":
                matched = headers_match(binding.arguments, headers, exact=self.exact_headers)
                if matched is None:
                    route.uncertain.append(f"exchange {exchange.exchange!r}: a binding compares an array or table "
                                           "header, whose element types depend on the publishing client")
                    continue
            else:
                matched = MATCHERS[kind](binding, headers, keys)
            if matched:
                found.append((binding.destination_type, binding.destination,
                              Hop(exchange.exchange, "binding", binding.routing_key, binding.arguments)))
        return found, False


def _direct(binding: BindingState, headers: dict[str, Any], keys: list[str]) -> bool:
    return binding.routing_key in keys


def _fanout(binding: BindingState, headers: dict[str, Any], keys: list[str]) -> bool:
    return True


def topic_words(key: str) -> list[str]:
    """A topic key's words (``rabbit_exchange_type_topic:split_topic_key``): ``""`` has none."""
    return key.split(".") if key else []


def topic_matches(binding_key: str, routing_key: str) -> bool:
    """Whether a topic binding key matches a routing key."""
    pattern, words = topic_words(binding_key), topic_words(routing_key)
    # positions in the pattern reachable after consuming a prefix of the words
    reachable = {0}
    reachable = _close(pattern, reachable)
    for word in words:
        following = set()
        for position in reachable:
            if position == len(pattern):
                continue
            part = pattern[position]
            if part == "#":
                following.add(position)  # '#' takes this word and may take more
            if part in ("*", word):
                following.add(position + 1)
        reachable = _close(pattern, following)
        if not reachable:
            return False
    return len(pattern) in reachable


def _close(pattern: list[str], positions: set[int]) -> set[int]:
    """Add the positions after each ``#`` that may take no word."""
    result = set(positions)
    stack = list(positions)
    while stack:
        position = stack.pop()
        if position < len(pattern) and pattern[position] == "#" and position + 1 not in result:
            result.add(position + 1)
            stack.append(position + 1)
    return result


def _topic(binding: BindingState, headers: dict[str, Any], keys: list[str]) -> bool:
    return any(topic_matches(binding.routing_key, key) for key in keys)


def headers_match(arguments: dict[str, Any], headers: dict[str, Any], exact: bool = False) -> bool | None:
    """Whether a headers binding's arguments match a message's headers (``exact``: RabbitMQ
    3.13+); ``None`` when it depends on an array or table value (uncertain)."""
    match = arguments.get("x-match", "all")
    with_x = match in ("all-with-x", "any-with-x")
    wanted = {k: v for k, v in arguments.items() if k != "x-match" and (with_x or not k.startswith("x-"))}
    results: list[bool | None] = []
    for key, value in wanted.items():
        if key not in headers:
            results.append(False)
        elif value is None:
            results.append(True)
        elif isinstance(value, (list, dict)) or isinstance(headers[key], (list, dict)):
            results.append(None if isinstance(value, (list, dict)) and isinstance(headers[key], (list, dict)) else False)
        else:
            results.append(amqp_equal(value, headers[key], exact))
    if match in ("any", "any-with-x"):
        return True if any(r is True for r in results) else (None if None in results else False)
    # all, all-with-x, and any other value (the broker's legacy default)
    return False if any(r is False for r in results) else (None if None in results else True)


def amqp_equal(binding_value: Any, header_value: Any, exact: bool = False) -> bool:
    """Two plain AMQP field values as JSON gives them, compared as Erlang's ``==`` (numbers by
    value) or, with ``exact``, ``=:=`` (``10`` is not ``10.0``); ``true`` is never ``1``, text
    never a number."""
    if isinstance(binding_value, bool) or isinstance(header_value, bool):
        return isinstance(binding_value, bool) and isinstance(header_value, bool) and binding_value == header_value
    numbers = (int, float)
    if isinstance(binding_value, numbers) and isinstance(header_value, numbers):
        if exact and type(binding_value) is not type(header_value):
            return False
        return binding_value == header_value
    return type(binding_value) is type(header_value) and binding_value == header_value


MATCHERS = {"direct": _direct, "fanout": _fanout, "topic": _topic}
"""How each exchange type matches a binding (headers: :func:`headers_match`)."""
SIMULATED_TYPES = frozenset(MATCHERS) | {"headers"}
"""The exchange types simulated exactly."""


def route(state: State, vhost: str, message: Message, *, dead_letter: str | None = None,
          version: tuple[int, ...] = OLDEST_SUPPORTED, depth: int = 8) -> Route:
    """Where ``message`` goes in ``vhost``; with ``dead_letter`` (a reason of :data:`REASONS`),
    also where it goes from each queue if it dies there for that reason, and from there on."""
    network = Network(state, vhost, version)
    result = network.publish(message)
    if dead_letter is not None:
        for delivery in result.deliveries:
            _follow(network, delivery, message, dead_letter, [], depth)
    return result


def can_die(network: Network, queue: QueueState, reason: str) -> bool:
    """Whether a message can be dead-lettered from ``queue`` for ``reason``: streams never
    dead-letter; only quorum queues have a delivery limit, and only when one is set (from 4.0
    there is one, 20, unless a negative one sets none); a queue that refuses publishes when full
    (``overflow: reject-publish``) drops nothing for its length."""
    if queue.type == "stream":
        return False
    if reason == "delivery_limit":  # a negative limit is none (4.0 on); before 4.0 none unless one is set
        limit = network.queue_setting(queue, "delivery-limit")
        return (queue.type == "quorum" and isinstance(limit, (int, float)) and not isinstance(limit, bool)
                and limit >= 0)
    if reason == "maxlen":
        return network.queue_setting(queue, "overflow") != "reject-publish"
    return True


def dead_letter(network: Network, queue: str, message: Message, reason: str, deaths: list[tuple[str, str]]) -> Route | None:
    """Where a message dead-lettered from ``queue`` goes (``None``: the queue has no
    dead-letter exchange). ``deaths``: (queue, reason) of its earlier deaths, newest first."""
    spec = network.queues[queue]
    exchange_name = network.queue_setting(spec, "dead-letter-exchange")
    if not isinstance(exchange_name, str) or not can_die(network, spec, reason):
        return None
    key = network.queue_setting(spec, "dead-letter-routing-key")
    headers = dict(message.routed_headers())
    if isinstance(key, str):
        keys = [key]
        headers.pop("CC", None)
    else:
        keys = message.routing_keys()
    if network.version < (3, 13):  # later versions do not route on the x-death headers they add
        for name, value in (("x-first-death-reason", reason), ("x-first-death-queue", queue),
                            ("x-first-death-exchange", message.exchange)):
            headers.setdefault(name, value)
    route = Route(network.vhost, exchange_name, keys, reason=reason, source_queue=queue, headers=headers)
    if exchange_name == "":
        network._default(route, keys, [])
    else:
        exchange = network.exchanges.get(exchange_name)
        if exchange is None:
            route.dropped.append(f"dead-letter exchange {exchange_name!r} of queue {queue!r} is not declared: "
                                 "the broker drops the message")
            return route
        network._route(route, exchange, headers, keys)
    if reason != "rejected":  # rabbit_dead_letter:detect_cycles
        history = [(queue, reason)] + deaths
        for delivery in list(route.deliveries):
            earlier = [i for i, (name, _) in enumerate(history) if name == delivery.queue]
            if earlier and all(r != "rejected" for _, r in history[:earlier[0] + 1]):
                route.deliveries.remove(delivery)
                route.cycles.append(f"queue {delivery.queue!r}: the message already died there ({reason}, no "
                                    "rejection since): the broker drops it")
    return route


def _follow(network: Network, delivery: Delivery, message: Message, reason: str, deaths: list[tuple[str, str]],
            depth: int) -> None:
    routed = dead_letter(network, delivery.queue, message, reason, deaths)
    if routed is None:
        return
    delivery.dead_letter, delivery.dead_letter_reason = routed, reason
    history = [(delivery.queue, reason)] + deaths
    if reason == "rejected":  # the broker does not stop a loop of rejections
        for onward in routed.deliveries:
            if any(name == onward.queue for name, _ in history):
                routed.cycles.append(f"queue {onward.queue!r}: the message comes back each time it is rejected "
                                     "(the broker does not stop this loop)")
    if depth <= 1:
        return
    dead = Message(routed.exchange, routed.routing_keys[0] if routed.routing_keys else "",
                   routed.headers, tuple(routed.routing_keys))
    for onward in routed.deliveries:
        if not any(name == onward.queue for name, _ in history):
            _follow(network, onward, dead, reason, history, depth - 1)
