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
  broker: a cycle (``rabbit_dead_letter:detect_cycles``). A rejected one is not dropped: back
  in a queue with the routing keys and headers it had there (:func:`death_state`), it loops.
- Dead-letter loops (:func:`dead_letter_loops`, which ``topology lint`` reports as ``TOP003``):
  the same dead-lettering, followed from each message the files name, until it loops.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Iterable
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
    dead_letter_above: bool = False
    """Its dead letter goes as shown above, where it died in this queue with the same routing keys
    and headers (rejected: not repeated)."""

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.queue, "path": [hop.to_dict() for hop in self.path]}
        if self.dead_letter is not None:
            data["dead_letter"] = self.dead_letter.to_dict()
        if self.dead_letter_above:
            data["dead_letter_as_above"] = True
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
    loops: list[tuple[str, ...]] = field(default_factory=list, repr=False)
    """The same cycles as rounds of queues, the one it comes back to first and last."""
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
        self._key_index: dict[str, tuple[dict[str, list[int]], _FirstWord]] = {}
        """Per direct or topic exchange, its bindings by exact key and its wildcard ones (positions)."""
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
        kind = routes_as(exchange)
        bindings = self.bindings.get(exchange.exchange, [])
        if kind not in SIMULATED_TYPES:
            if bindings:
                how = "sends the message to one of" if kind == "x-consistent-hash" else \
                    f"(type {kind}, not simulated) may send the message to"
                route.uncertain.append(f"exchange {exchange.exchange!r} {how}: "
                                       f"{', '.join(sorted({b.destination for b in bindings}))}")
            return [], bool(bindings)
        if kind in ("direct", "topic"):  # by the key index: a large exchange routes in time of its matches
            bindings = self._keyed(exchange.exchange, kind, keys)
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

    def _keyed(self, exchange: str, kind: str, keys: list[str]) -> list[BindingState]:
        """The bindings of a direct or topic exchange that may match one of ``keys``, in binding
        order: those whose key is one of them (looked up), and every wildcard topic binding (the
        matcher decides). The index is made once per exchange."""
        index = self._key_index.get(exchange)
        if index is None:
            exact: dict[str, list[int]] = {}
            wild = _FirstWord()
            for position, binding in enumerate(self.bindings.get(exchange, [])):
                if _literal(kind, binding.routing_key):
                    exact.setdefault(binding.routing_key, []).append(position)
                else:
                    wild.add(binding.routing_key, position)
            index = self._key_index[exchange] = (exact, wild)
        exact, wild = index
        positions: set[int] = set()
        for key in keys:
            positions.update(exact.get(key, ()))
            positions.update(wild.candidates(key))
        bindings = self.bindings.get(exchange, [])
        return [bindings[position] for position in sorted(positions)]


class _FirstWord:
    """Wildcard topic binding keys (or anything standing for them) by their first word: one that
    starts with a word matches only routing keys that start with it; one that starts with ``*`` or
    ``#`` may match any. :meth:`candidates` gives what may match a key, for the matcher to decide."""

    def __init__(self) -> None:
        self.by_word: dict[str, list[Any]] = {}
        self.any: list[Any] = []

    def add(self, pattern: str, item: Any) -> None:
        first = topic_words(pattern)[:1]
        if first and first[0] not in ("*", "#"):
            self.by_word.setdefault(first[0], []).append(item)
        else:
            self.any.append(item)

    def candidates(self, key: str) -> list[Any]:
        first = topic_words(key)[:1]
        return self.any + self.by_word.get(first[0], []) if first else self.any


def routes_as(exchange: ExchangeState) -> str:
    """The type an exchange routes as: an ``x-delayed-message`` exchange as its ``x-delayed-type``
    (after the delay), any other as its own type."""
    if exchange.type == "x-delayed-message":
        return str(exchange.arguments.get("x-delayed-type", "direct"))
    return exchange.type


def _literal(kind: str, binding_key: str) -> bool:
    """Whether a binding matches exactly one routing key, itself: every direct binding, and a topic
    binding without ``*`` or ``#``."""
    return kind == "direct" or not {"*", "#"} & set(topic_words(binding_key))


def _direct(binding: BindingState, headers: dict[str, Any], keys: list[str]) -> bool:
    return binding.routing_key in keys


def _fanout(binding: BindingState, headers: dict[str, Any], keys: list[str]) -> bool:
    return True


def topic_words(key: str) -> list[str]:
    """A topic key's words (``rabbit_exchange_type_topic:split_topic_key``): ``""`` has none."""
    return key.split(".") if key else []


@functools.lru_cache(maxsize=1 << 16)
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
        followed: set[tuple[str, tuple[str, ...], str]] = set()
        for delivery in result.deliveries:
            _follow(network, delivery, message, dead_letter, [], depth, (), followed)
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


def dead_letter_exchange(network: Network, queue: QueueState) -> str | None:
    """The exchange a queue dead-letters to (its argument wins over a policy's; ``""`` is the
    default exchange), or ``None``: the broker drops what dies there."""
    name = network.queue_setting(queue, "dead-letter-exchange")
    return name if isinstance(name, str) else None


def has_message_ttl(network: Network, queue: QueueState) -> bool:
    """Whether a queue holds its messages for a message TTL (argument or policy): a dead-letter
    loop through it waits that long each round (the retry pattern)."""
    ttl = network.queue_setting(queue, "message-ttl")
    return isinstance(ttl, int) and not isinstance(ttl, bool)


def dead_letter(network: Network, queue: str, message: Message, reason: str, deaths: list[tuple[str, str]]) -> Route | None:
    """Where a message dead-lettered from ``queue`` goes (``None``: the queue has no
    dead-letter exchange). ``deaths``: (queue, reason) of its earlier deaths, newest first."""
    spec = network.queues[queue]
    exchange_name = dead_letter_exchange(network, spec)
    if exchange_name is None or not can_die(network, spec, reason):
        return None
    key = network.queue_setting(spec, "dead-letter-routing-key")
    headers = _death_headers(network, queue, message, reason)
    if isinstance(key, str):
        keys = [key]
        headers.pop("CC", None)
    else:
        keys = message.routing_keys()
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
                names = [name for name, _ in history]
                route.loops.append(tuple(reversed(names[:names.index(delivery.queue) + 1])) + (delivery.queue,))
    return route


def _death_headers(network: Network, queue: str, message: Message, reason: str) -> dict[str, Any]:
    """The headers exchanges see when a message dead-lettered from ``queue`` is routed: before
    3.13 with the ``x-first-death-*`` headers the broker adds at the first death."""
    headers = dict(message.routed_headers())
    if network.version < (3, 13):  # later versions do not route on the x-death headers they add
        for name, value in (("x-first-death-reason", reason), ("x-first-death-queue", queue),
                            ("x-first-death-exchange", message.exchange)):
            headers.setdefault(name, value)
    return headers


def death_state(network: Network, queue: str, message: Message, reason: str) -> tuple[str, tuple[str, ...], str]:
    """All that where a message goes when it dies in ``queue`` depends on: the queue, the
    message's routing keys and the headers its dead letter is routed with (as JSON). A message
    rejected back into a queue in the same state loops for as long as it is rejected."""
    import json

    headers = _death_headers(network, queue, message, reason)
    return queue, tuple(message.routing_keys()), json.dumps(headers, sort_keys=True, default=str)


def _follow(network: Network, delivery: Delivery, message: Message, reason: str, deaths: list[tuple[str, str]],
            depth: int, states: tuple[tuple[str, tuple[str, ...], str], ...],
            followed: set[tuple[str, tuple[str, ...], str]]) -> None:
    """Dead-letter ``message`` from ``delivery``'s queue and follow its dead letters onwards.
    ``states``: its :func:`death_state` in each queue it died in on the way, oldest first;
    ``followed``: every state followed so far (rejected, a message in a state already followed
    goes the same way: it is not followed again, so that the tree stays finite and small)."""
    routed = dead_letter(network, delivery.queue, message, reason, deaths)
    if routed is None:
        return
    delivery.dead_letter, delivery.dead_letter_reason = routed, reason
    history = [(delivery.queue, reason)] + deaths
    here = states + (death_state(network, delivery.queue, message, reason),)
    followed.add(here[-1])
    dead = Message(routed.exchange, routed.routing_keys[0] if routed.routing_keys else "",
                   routed.headers, tuple(routed.routing_keys))
    for onward in routed.deliveries:
        if reason == "rejected":  # the broker does not stop a loop of rejections
            state = death_state(network, onward.queue, dead, reason)
            if state in here:  # back as it was: it goes the same way again, each time it is rejected
                loop = [s[0] for s in here[here.index(state):]] + [onward.queue]
                routed.loops.append(tuple(loop))
                routed.cycles.append(f"queue {onward.queue!r}: the message comes back each time it is rejected, "
                                     f"round {' -> '.join(loop)} (the broker does not stop this loop); "
                                     + _loop_ttl(network, loop[:-1]))
                continue
            if state in followed:
                onward.dead_letter_above, onward.dead_letter_reason = True, reason
                continue
        if depth > 1:
            _follow(network, onward, dead, reason, history, depth - 1, here, followed)


def _loop_ttl(network: Network, loop: list[str]) -> str:
    """What a rejection loop waits for on the way: the queues with a message TTL, or none
    (then ``topology lint`` reports the loop: ``TOP003``)."""
    held = [name for name in loop if has_message_ttl(network, network.queues[name])]
    if not held:
        return "no queue on the way has a message TTL (lint: TOP003)"
    return (f"{', '.join(repr(name) for name in held)} {'holds' if len(held) == 1 else 'hold'} it for a message TTL "
            "on the way (the retry pattern, which lint passes)")


# -- dead-letter loops ------------------------------------------------------------------------

UNMATCHED_KEY = "unmatched"
"""A routing key tried besides those the files name, for a message whose key they leave open."""


@dataclass(frozen=True)
class DeadLetterLoop:
    """Queues without a message TTL that a message rejected in each keeps dead-lettering round."""

    queues: tuple[str, ...]
    """One round, the first queue repeated at the end: ``(a, b, a)``."""
    every_arrival: bool
    """Whether every message tried that reaches the first queue loops, else only some (with
    some routing keys)."""
    published: tuple[str, str]
    """A message that loops: the exchange it is published to and its routing key."""
    members: frozenset[str] = frozenset()
    """Every queue of the group that loops into each other (``queues`` is one round)."""


def arrival_keys(network: Network, queue: str) -> tuple[list[str], bool]:
    """The routing keys a message can have in ``queue``: its name (a publish straight to it) and
    the keys of the direct and topic bindings to it; and whether another way in leaves the key
    open (fanout, headers, a wildcard topic key, a plugin type). A ``CC`` header can add any
    key: not counted."""
    keys, open_ = {queue}, False
    for binding in network.inbound.get(("queue", queue), ()):
        if _fixes_key(network, binding):
            keys.add(binding.routing_key)
        else:
            open_ = True
    return sorted(keys), open_


def _fixes_key(network: Network, binding: BindingState) -> bool:
    spec = network.exchanges.get(binding.source)
    kind = spec.type if spec is not None else ""
    return kind == "direct" or (kind == "topic" and not set(topic_words(binding.routing_key)) & {"*", "#"})


def named_keys(network: Network, exchanges: set[str] | None = None) -> list[str]:
    """The routing keys the files name in a vhost: queue names, dead-letter routing keys, the
    keys of the direct and topic bindings of ``exchanges`` (default: all), each wildcard topic
    key made literal (``*`` a word, ``#`` none), a key matching each two of those topic keys,
    when one does, and :data:`UNMATCHED_KEY`: the keys :func:`dead_letter_loops` tries."""
    keys = set(network.queues) | {UNMATCHED_KEY}
    for queue in network.queues.values():
        key = network.queue_setting(queue, "dead-letter-routing-key")
        if isinstance(key, str):
            keys.add(key)
    patterns: set[str] = set()
    for source, bindings in network.bindings.items():
        spec = network.exchanges.get(source)
        if spec is None or (exchanges is not None and source not in exchanges):
            continue
        kind = routes_as(spec)
        for binding in bindings:
            if kind == "direct":
                keys.add(binding.routing_key)
            elif kind == "topic":
                patterns.add(binding.routing_key)
    ordered = sorted(patterns)
    for index, pattern in enumerate(ordered):
        keys.add(".".join(UNMATCHED_KEY if w == "*" else w for w in topic_words(pattern) if w != "#"))
        if len(ordered) <= PAIRED_PATTERNS:
            for other in ordered[index + 1:]:
                both = topic_witness(pattern, other)
                if both is not None:
                    keys.add(both)
    return sorted(keys)


PAIRED_PATTERNS = 64
"""Up to this many topic binding keys, :func:`named_keys` adds a key matching each two of them."""


def topic_witness(first: str, second: str) -> str | None:
    """A shortest routing key both topic binding keys match (their literal words and
    :data:`UNMATCHED_KEY` for the others), or ``None`` when none does."""
    one, two = topic_words(first), topic_words(second)
    alphabet = sorted({w for w in one + two if w not in ("*", "#")} | {UNMATCHED_KEY})
    begin = (frozenset(_close(one, {0})), frozenset(_close(two, {0})))
    seen = {begin}
    work: deque[tuple[tuple[frozenset[int], frozenset[int]], list[str]]] = deque([(begin, [])])
    while work:
        (left, right), words = work.popleft()
        if len(one) in left and len(two) in right:
            return ".".join(words) if words else ""
        for word in alphabet:
            state = (frozenset(_step(one, left, word)), frozenset(_step(two, right, word)))
            if state[0] and state[1] and state not in seen:
                seen.add(state)
                work.append((state, words + [word]))
    return None


def _step(pattern: list[str], positions: set[int] | frozenset[int], word: str) -> set[int]:
    """The positions in a topic pattern reachable after taking ``word`` (see :func:`topic_matches`)."""
    following = set()
    for position in positions:
        if position < len(pattern):
            part = pattern[position]
            if part == "#":
                following.add(position)
            if part in ("*", word):
                following.add(position + 1)
    return _close(pattern, following)


def reachable_queues(network: Network, exchange: str) -> set[str]:
    """The queues a message could reach from ``exchange`` with some routing key and headers:
    through every binding and alternate exchange (an over-estimate)."""
    if exchange == "":
        return set(network.queues)
    return {b.destination for name in _exchanges_from(network, exchange) for b in network.bindings.get(name, [])
            if b.destination_type == "queue" and b.destination in network.queues}


def _exchanges_from(network: Network, exchange: str) -> set[str]:
    """``exchange`` and the exchanges it can send a message on to: through its bindings to
    exchanges and alternate exchanges, and theirs (declared or not)."""
    seen, work = {exchange}, [exchange]
    while work:
        spec = network.exchanges.get(work.pop())
        if spec is None:
            continue
        onward = [b.destination for b in network.bindings.get(spec.exchange, []) if b.destination_type == "exchange"]
        alternate = network.exchange_setting(spec, "alternate-exchange")
        if isinstance(alternate, str):
            onward.append(alternate)
        for target in onward:
            if target not in seen:
                seen.add(target)
                work.append(target)
    return seen


_State = tuple[str, tuple[str, ...], str]
"""A message in a queue, as far as its dead-lettering depends on it (:func:`death_state`)."""


def dead_letter_loops(network: Network) -> list[DeadLetterLoop]:
    """The rejection loops among queues without a message TTL, found as :func:`route` with
    ``dead_letter="rejected"`` finds them: each message published without headers to the
    default exchange or an exchange that can lead to such a loop, with each routing key of
    :func:`named_keys`, is followed through :func:`dead_letter` until it comes back to a queue
    in a state it was in (:func:`death_state`; its headers count only when a headers or plugin
    exchange can take dead letters). The states form a graph whose strongly connected groups
    are the loops: one per set of queues, starting at the first queue by name."""
    import json

    looping = {name: spec for name, spec in network.queues.items() if not has_message_ttl(network, spec)
               and dead_letter_exchange(network, spec) is not None and can_die(network, spec, "rejected")}
    # an over-estimate first: queue -> its dead-letter exchange -> every queue that exchange may reach
    # (through the exchange, so that queues sharing one do not repeat its edges)
    rough: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for name, spec in looping.items():
        exchange = str(dead_letter_exchange(network, spec))
        rough[("queue", name)] = {("exchange", exchange)}
        if ("exchange", exchange) not in rough:
            rough[("exchange", exchange)] = {("queue", q) for q in reachable_queues(network, exchange) if q in looping}
    candidates = {name for group in strongly_connected(rough) for kind, name in group if kind == "queue"}
    if not candidates:
        return []
    leading = {name for name, spec in network.exchanges.items() if reachable_queues(network, name) & candidates}
    # where no headers exchange takes dead letters, their headers change nothing: states without them
    after = {name for queue in candidates for name in
             _exchanges_from(network, str(dead_letter_exchange(network, network.queues[queue])))}
    headed = any(network.exchanges[name].type not in MATCHERS for name in after if name in network.exchanges)

    keys = named_keys(network, leading)
    default_used = any(dead_letter_exchange(network, network.queues[queue]) == "" for queue in candidates)
    alike = _key_classes(network, keys, default_used)

    def state_of(queue: str, message: Message) -> _State:
        # keys that every binding treats alike go the same way: one stands for them all
        if headed:
            name, held, headers = death_state(network, queue, message, "rejected")
            return name, tuple(alike.get(key, key) for key in held), headers
        return queue, tuple(alike.get(key, key) for key in message.routing_keys()), ""

    entries: dict[str, list[_State]] = {}
    example: dict[_State, tuple[str, str]] = {}
    standing = sorted(set(alike.values()))
    for exchange in [""] + sorted(name for name in leading if not network.exchanges[name].internal):
        # the default exchange routes by queue name: each candidate's own; another exchange routes
        # all the keys its bindings (and those of the exchanges it leads to) treat alike the same way:
        # one is published, and each of the others arrives where it went
        groups = [(key, [key]) for key in sorted(candidates)] if exchange == "" else \
            _entry_groups(network, exchange, standing)
        for key, standing_for in groups:
            for delivery in network.publish(Message(exchange, key)).deliveries:
                if delivery.queue not in candidates:
                    continue
                for each in standing_for:
                    state = state_of(delivery.queue, Message(exchange, each))
                    entries.setdefault(delivery.queue, []).append(state)
                    example.setdefault(state, (exchange, each))
    edges: dict[_State, set[_State]] = {}
    known: dict[tuple[Any, ...], set[_State]] = {}  # queues with the same dead-lettering share the way
    work = deque(state for arrivals in entries.values() for state in arrivals)
    while work:
        state = work.popleft()
        if state in edges:
            continue
        name, held, headers = state  # the headers hold what the exchange it was published to set
        spec = network.queues[name]
        way = (dead_letter_exchange(network, spec), network.queue_setting(spec, "dead-letter-routing-key"), held,
               headers, name if headed else "")
        onward = known.get(way)
        if onward is None:
            routed = dead_letter(network, name, Message("", held[0], json.loads(headers or "{}"), held), "rejected", [])
            onward = set()
            if routed is not None:
                dead = Message(routed.exchange, routed.routing_keys[0] if routed.routing_keys else "",
                               routed.headers, tuple(routed.routing_keys))
                onward = {state_of(d.queue, dead) for d in routed.deliveries if d.queue in candidates}
            known[way] = onward
        edges[state] = onward
        work.extend(target for target in onward if target not in edges)
    backwards: dict[_State, set[_State]] = {}
    for state, onward in edges.items():
        for target in onward:
            backwards.setdefault(target, set()).add(state)
    groups: dict[frozenset[str], list[list[_State]]] = {}  # the same queues, looped with other keys
    for group in strongly_connected(edges):
        groups.setdefault(frozenset(state[0] for state in group), []).append(group)
    loops = []
    for parts in groups.values():
        states = {state for part in parts for state in part}
        first = min(state[0] for state in states)
        start = min(state for state in states if state[0] == first)
        round_ = _shortest_round(edges, start, next(set(part) for part in parts if start in part))
        into = _reach(backwards, list(states))  # the states from which a message ends up looping
        published = sorted(example[state] for state in into if state in example)
        loops.append(DeadLetterLoop(tuple(state[0] for state in round_) + (first,),
                                    all(state in into for state in entries.get(first, [])), published[0],
                                    frozenset(state[0] for state in states)))
    return sorted(loops, key=lambda loop: loop.queues)


def _entry_groups(network: Network, exchange: str, keys: list[str]) -> list[tuple[str, list[str]]]:
    """``keys`` in groups that a publish to ``exchange`` routes alike (see :func:`_alike`, over the
    exchanges it can lead to), each with the key that stands for its group."""
    groups = _alike(network, _exchanges_from(network, exchange), keys)
    return [(members[0], members) for members in groups]


def _key_classes(network: Network, keys: list[str], default_used: bool) -> dict[str, str]:
    """Each of ``keys`` with the key that stands for it: the first of the keys that every binding
    of the vhost treats alike (:func:`_alike`; with ``default_used``, the default exchange's queue
    names count as exact keys). Such keys route alike everywhere, so following one follows them all."""
    groups = _alike(network, network.bindings, sorted(keys), set(network.queues) if default_used else set())
    return {key: members[0] for members in groups for key in members}


def _alike(network: Network, exchanges: Iterable[str], keys: list[str], exact: set[str] | None = None) -> list[list[str]]:
    """``keys`` (in their order) in groups that the bindings of ``exchanges`` treat alike: equal to
    the same exact direct and topic binding keys (and ``exact``), matched by the same wildcard topic
    keys. Each key alone when one of them routes by a type not simulated (which may look at the key)."""
    exact = set(exact or ())
    wild = _FirstWord()
    for name in exchanges:
        spec = network.exchanges.get(name)
        bindings = network.bindings.get(name, [])
        if spec is None or not bindings:
            continue
        kind = routes_as(spec)
        if kind in ("fanout", "headers"):
            continue
        if kind not in ("direct", "topic"):
            return [[key] for key in keys]
        for binding in bindings:
            if _literal(kind, binding.routing_key):
                exact.add(binding.routing_key)
            else:
                wild.add(binding.routing_key, binding.routing_key)
    groups: dict[tuple[Any, ...], list[str]] = {}
    for key in keys:
        matched = tuple(sorted({p for p in wild.candidates(key) if topic_matches(p, key)}))
        groups.setdefault((key if key in exact else None, matched), []).append(key)
    return list(groups.values())


def _reach(edges: dict[Any, set[Any]], starts: list[Any]) -> set[Any]:
    seen, work = set(starts), list(starts)
    while work:
        for onward in edges.get(work.pop(), ()):
            if onward not in seen:
                seen.add(onward)
                work.append(onward)
    return seen


def _shortest_round(edges: dict[Any, set[Any]], start: Any, within: set[Any]) -> list[Any]:
    """The states of a shortest way from ``start`` back to it inside ``within``, ``start`` first."""
    previous: dict[Any, Any] = {}
    work = deque([start])
    while work:
        state = work.popleft()
        for onward in sorted(edges.get(state, ()), key=repr):
            if onward == start:
                path = [state]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return list(reversed(path))
            if onward in within and onward not in previous:
                previous[onward] = state
                work.append(onward)
    return [start]


def strongly_connected(edges: dict[Any, set[Any]]) -> list[list[Any]]:
    """The groups of nodes that reach each other and hold a cycle (a node looping to itself
    included), each sorted (Tarjan's algorithm, without recursion)."""
    index: dict[Any, int] = {}
    low: dict[Any, int] = {}
    stack: list[Any] = []
    on_stack: set[Any] = set()
    groups: list[list[Any]] = []
    for root in sorted(edges, key=repr):
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work = [(root, iter(sorted(edges.get(root, ()), key=repr)))]
        while work:
            node, onward = work[-1]
            advanced = False
            for target in onward:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(edges.get(target, ()), key=repr))))
                    advanced = True
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1 or node in edges.get(node, ()):
                    groups.append(sorted(group, key=repr))
    return sorted(groups, key=repr)
