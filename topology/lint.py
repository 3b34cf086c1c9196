"""``topology lint``: what RabbitMQ accepts but is likely to lose messages or surprise (pure).

Each rule has an id, a severity and a reason (:data:`RULES`; the docs' lint reference is made from it). A
finding is suppressed for one object by a comment on the object's line in the files,
``# lint: ignore TOP008`` (several ids separated by commas or spaces; ``# lint: ignore`` alone
for every rule), and for all objects by ``--ignore TOP008``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from topology.kinds import parameter as parameters
from topology.matching import applies, contest
from topology.rules.queues import QUORUM_DEFAULT_DELIVERY_LIMIT_SINCE
from topology.model.topology import Origin, Topology
from topology.policies import DEFAULT_SOURCE
from topology.route import (Message, Network, arrival_keys, dead_letter, dead_letter_exchange,
                            dead_letter_loops, reachable_queues)
from topology.rules.versions import OLDEST_SUPPORTED
from topology.kinds import ExchangeState, OperatorPolicyState, PolicyState, ShovelState
from topology.state import State

ERROR, WARNING, INFO = "error", "warning", "info"


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    severity: str
    why: str
    """Why it matters, in the docs' words (Markdown; ``{docs}`` is the docs' root): the lint
    reference's table is made from it (``python -m topology.docs``)."""


RULES = {rule.id: rule for rule in (
    Rule("TOP001", "dead-letter-exchange-missing", ERROR,
         "A queue's dead-letter exchange (argument or policy) is not declared: RabbitMQ drops every message "
         "that dies there."),
    Rule("TOP002", "dead-letters-routed-nowhere", WARNING,
         "The dead-letter exchange exists but routes the queue's dead letters to no queue: they are dropped. "
         "Simulated with the dead-letter routing key, or without one with every key the queue's messages can "
         "carry (its name and the keys of the direct and topic bindings to it); when a fanout, headers or "
         "wildcard binding leaves the key open, only \"no binding or alternate exchange leads to a queue\" is "
         "reported. Headers and plugin exchanges on the way are not judged."),
    Rule("TOP003", "dead-letter-cycle-without-ttl", ERROR,
         "Queues without a message TTL dead-letter into each other: a rejected message loops at full speed for "
         "as long as consumers reject it. RabbitMQ stops expiry cycles, not rejection ones. The retry pattern "
         "(a TTL on a queue of the loop) passes. The loops are those `topology route --dead-letter rejected` "
         "finds, by the same simulation: each message published without headers to the default exchange or an "
         "exchange that can lead to a loop, with each routing key the files name, followed until it comes back "
         "to a queue with the routing keys and headers it had there. A loop only some keys take is reported "
         "with a message that takes it ([dead-letter loops]({docs}reference/lint.md#dead-letter-loops))."),
    Rule("TOP004", "classic-mirroring", WARNING,
         "`ha-*` policy keys: classic mirroring is deprecated since 3.9 and removed in 4.0. Use quorum queues "
         "([the transform]({docs}guides/mirrored-to-quorum.md))."),
    Rule("TOP005", "ha-exactly-too-few", WARNING,
         "`ha-mode: exactly` with `ha-params` below 2 keeps no mirror."),
    Rule("TOP006", "ha-sync-manual", WARNING,
         "`ha-sync-mode: manual`, the default: a new mirror does not get the messages already queued, and when "
         "the leader fails an unsynchronised mirror is promoted and they are lost."),
    Rule("TOP007", "quorum-group-larger-than-cluster", WARNING,
         "`initial_group_size` larger than `--cluster-size`: the queue gets fewer members than asked for. Runs "
         "only with `--cluster-size`."),
    Rule("TOP008", "not-durable", WARNING,
         "A non-durable queue or exchange disappears when its node restarts, with its messages and bindings."),
    Rule("TOP009", "queue-unreachable", INFO,
         "No binding reaches the queue (nor a dead-letter route through the default exchange, nor a shovel "
         "whose destination is in its vhost, nor queue federation): only publishes straight to it fill it."),
    Rule("TOP010", "exchange-drops-messages", WARNING,
         "An exchange with no binding, no alternate exchange (argument or policy) and no shovel consuming from "
         "it drops every message published to it, unless applications bind queues to it at run time."),
    Rule("TOP011", "policy-tie", WARNING,
         "Two policies (or two operator policies) of the same priority apply to the same queue or exchange: "
         "RabbitMQ applies either, and which is not defined."),
    Rule("TOP012", "plaintext-password", ERROR,
         "`allow_literal_password: true` with the password written in the files, readable by everyone who can "
         "read the repository."),
    Rule("TOP013", "lazy-has-no-effect", INFO,
         "`queue-mode: lazy` has no effect from RabbitMQ 3.12 on (with `--broker-version` below 3.12 it is not "
         "reported)."),
    Rule("TOP014", "default-delivery-limit-drops", WARNING,
         "From RabbitMQ 4.0 a quorum queue without a delivery limit gets one of 20; with no dead-letter "
         "exchange, a message returned 20 times is dropped. Set `dead_letter_exchange`, or `delivery_limit` "
         "(`-1`: none). Not reported with `--broker-version` below 4.0; without one, reported \"when the broker "
         "is 4.0 or later\"."),
)}
"""Every rule, by id."""


@dataclass(frozen=True)
class Finding:
    rule: str
    origin: Origin
    subject: str
    message: str

    @property
    def severity(self) -> str:
        return RULES[self.rule].severity

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "name": RULES[self.rule].name, "severity": self.severity, "file": self.origin.file,
                "line": self.origin.line, "object": self.subject, "message": self.message}

    def __str__(self) -> str:
        return f"{self.origin}: {self.severity} {self.rule} {self.subject}: {self.message}"


@dataclass
class Options:
    version: tuple[int, ...] | None = None
    """The broker's version: rules that depend on it (TOP004, TOP013) say so when unknown."""
    cluster_size: int | None = None
    """Nodes in the cluster (TOP007 runs only when known)."""
    ignore: frozenset[str] = frozenset()


class _Linter:
    def __init__(self, topology: Topology, state: State, options: Options) -> None:
        self.topology, self.state, self.options = topology, state, options
        self.findings: list[Finding] = []
        self.version = options.version or OLDEST_SUPPORTED
        self._index: dict[tuple[str, type], list[Any]] = {}
        for resource in state.objects.values():
            self._index.setdefault((resource.vhost, type(resource)), []).append(resource)

    def add(self, rule: str, key: tuple[Any, ...], subject: str, message: str) -> None:
        origin = self.state.origins.get(key) or Origin("", 0)
        self.findings.append(Finding(rule, origin, subject, message))

    def of(self, vhost: str, kind: type) -> list[Any]:
        return list(self._index.get((vhost, kind), ()))


def lint(topology: Topology, state: State, options: Options | None = None,
         lines: dict[str, list[str]] | None = None) -> list[Finding]:
    """Every finding of every rule not ignored, sorted by place; ``lines``: the files' lines,
    for ``# lint: ignore`` comments (read from disk when not given)."""
    options = options or Options()
    linter = _Linter(topology, state, options)
    for vhost in sorted(state.vhosts):
        network = Network(state, vhost, linter.version)
        _dead_letters(linter, network)
        _mirroring(linter, vhost)
        _durability_and_reach(linter, network)
        _ties(linter, network)
        _default_delivery_limit(linter, network)
    _passwords(linter)
    below: dict[tuple[str, int], dict[tuple[Any, ...], set[int]]] = {}
    found = [f for f in linter.findings if f.rule not in options.ignore and not _suppressed(f, topology, lines, below)]
    return sorted(set(found), key=lambda f: (f.origin.file, f.origin.line, f.rule, f.subject))


_IGNORE_RE = re.compile(r"#\s*lint:\s*ignore\b([^#]*)")


def _lines_below(topology: Topology, file: str, depth: int,
                 cache: dict[tuple[str, int], dict[tuple[Any, ...], set[int]]]) -> dict[tuple[Any, ...], set[int]]:
    """The lines of a file's keys, by their path's first ``depth`` parts (made once per file and
    depth, in ``cache``: a finding then finds the lines of its object at once)."""
    found = cache.get((file, depth))
    if found is None:
        found = cache[(file, depth)] = {}
        for key, line in topology.lines_of(file).items():
            if len(key) >= depth:
                found.setdefault(key[:depth], set()).add(line)
    return found


def _suppressed(finding: Finding, topology: Topology, lines: dict[str, list[str]] | None,
                below: dict[tuple[str, int], dict[tuple[Any, ...], set[int]]] | None = None) -> bool:
    """Whether a ``# lint: ignore`` comment on a line of the object (its key or any line
    below it) names the finding's rule, or no rule."""
    if not finding.origin.file or finding.origin.line <= 0:
        return False
    if lines is None:
        lines = {}
    if finding.origin.file not in lines:
        try:
            with open(topology.sources.get(finding.origin.file, finding.origin.file), encoding="utf-8") as handle:
                lines[finding.origin.file] = handle.read().splitlines()
        except OSError:
            lines[finding.origin.file] = []
    text = lines[finding.origin.file]
    path = finding.origin.path
    numbers = {finding.origin.line} | (_lines_below(topology, finding.origin.file, len(path),
                                                    {} if below is None else below).get(path, set())
                                       if path else set())
    for number in sorted(numbers):
        match = _IGNORE_RE.search(text[number - 1]) if 0 < number <= len(text) else None
        if match is not None:
            ids = {part for part in re.split(r"[\s,]+", match.group(1).strip()) if part}
            if not ids or finding.rule in ids:
                return True
    return False


def _dead_letters(linter: _Linter, network: Network) -> None:
    """TOP001 to TOP003, answered by the routing simulator (:mod:`topology.route`): what
    ``topology route --dead-letter rejected`` shows for each message lint tries."""
    vhost = network.vhost
    for queue in sorted(network.queues.values(), key=lambda q: q.queue):
        where = f"vhost {vhost!r} queue {queue.queue!r}"
        exchange = dead_letter_exchange(network, queue)
        if exchange is None:
            continue
        if exchange != "" and exchange not in network.exchanges:
            linter.add("TOP001", queue.key, where, f"its dead-letter exchange {exchange!r} is not declared")
            continue
        key = network.queue_setting(queue, "dead-letter-routing-key")
        keys, open_ = ([key], False) if isinstance(key, str) else arrival_keys(network, queue.queue)
        to = "the default exchange" if exchange == "" else f"exchange {exchange!r}"
        if open_:  # dead letters keep keys that cannot be known here: any binding may take them
            if not reachable_queues(network, exchange):
                linter.add("TOP002", queue.key, where, f"its dead-letter exchange {exchange!r} has no binding to a "
                           "queue (nor an alternate exchange leading to one): dead letters are dropped")
            continue
        reached, certain = _dead_route(network, queue.queue, keys)
        if certain and not reached:
            said = f"routing key {keys[0]!r}" if isinstance(key, str) else \
                "the routing keys its messages can have (" + ", ".join(repr(k) for k in keys) + ")"
            linter.add("TOP002", queue.key, where, f"its dead letters go to {to} with {said}, which reach no queue")
    for loop in dead_letter_loops(network):
        first = linter.state.objects[("queue", vhost, loop.queues[0])]
        exchange, key = loop.published
        to = "the default exchange" if exchange == "" else f"exchange {exchange!r}"
        which = "" if loop.every_arrival else \
            f" (for some messages, such as one published to {to} with routing key {key!r})"
        others = sorted(loop.members - set(loop.queues))
        also = f"; {', '.join(others)} {'loops' if len(others) == 1 else 'loop'} with them too" if others else ""
        linter.add("TOP003", first.key, f"vhost {vhost!r} queue {loop.queues[0]!r}",
                   "dead letters loop through " + " -> ".join(loop.queues) + f" with no message TTL on the way{which}"
                   + also)


def _dead_route(network: Network, queue: str, keys: list[str]) -> tuple[set[str], bool]:
    """The queues a message with one of ``keys`` reaches when it dies in ``queue`` (internal
    exchanges included: dead-lettering into them works), and whether that is certain (no headers
    or plugin exchange on the way, whose choice depends on more than the key)."""
    reached: set[str] = set()
    for key in keys:
        route = dead_letter(network, queue, Message("", key, keys=(key,)), "rejected", [])
        if route is None:  # a stream: nothing dies there
            return set(), False
        through = {route.exchange} | {h.exchange for d in route.deliveries for h in d.path}
        if route.uncertain or any(network.exchanges[x].type == "headers" for x in through if x in network.exchanges):
            return set(), False
        reached |= set(route.queues)
    return reached, True


def _mirroring(linter: _Linter, vhost: str) -> None:
    for policy in sorted(linter.of(vhost, PolicyState) + linter.of(vhost, OperatorPolicyState), key=lambda p: p.key):
        definition = policy.definition
        kind = "operator policy" if isinstance(policy, OperatorPolicyState) else "policy"
        where = f"vhost {vhost!r} {kind} {policy.policy!r}"
        if not any(key.startswith("ha-") for key in definition):
            if definition.get("queue-mode") == "lazy":
                _lazy(linter, policy.key, where)
            continue
        linter.add("TOP004", policy.key, where, "classic mirroring (" + ", ".join(sorted(k for k in definition if
                   k.startswith("ha-"))) + ") is removed in RabbitMQ 4.0; use quorum queues")
        if definition.get("ha-mode") == "exactly" and isinstance(definition.get("ha-params"), int) \
                and definition["ha-params"] < 2:
            linter.add("TOP005", policy.key, where, f"ha-mode exactly with ha-params {definition['ha-params']}: no mirror")
        operator = isinstance(policy, OperatorPolicyState)  # merged with a user policy, which may set it
        if "ha-mode" in definition and definition.get("ha-sync-mode", "automatic" if operator else "manual") != "automatic":
            said = "ha-sync-mode manual" if "ha-sync-mode" in definition else "no ha-sync-mode (manual by default)"
            linter.add("TOP006", policy.key, where, f"{said}: new mirrors do not receive the messages already queued")
        if definition.get("queue-mode") == "lazy":
            _lazy(linter, policy.key, where)


def _lazy(linter: _Linter, key: tuple[Any, ...], where: str) -> None:
    version = linter.options.version
    if version is not None and version < (3, 12):
        return
    when = "" if version is not None else " (when the broker is 3.12 or later; give --broker-version to know)"
    linter.add("TOP013", key, where, f"queue-mode lazy has no effect{when}")


def _default_delivery_limit(linter: _Linter, network: Network) -> None:
    """TOP014: quorum queues that take 4.0's default delivery limit and have nowhere to dead-letter."""
    from topology.policies import resolve

    known = linter.options.version
    if known is not None and known < QUORUM_DEFAULT_DELIVERY_LIMIT_SINCE:
        return
    version = known or QUORUM_DEFAULT_DELIVERY_LIMIT_SINCE
    when = "" if known is not None else " (when the broker is 4.0 or later; give --broker-version to know)"
    for queue in sorted(network.queues.values(), key=lambda q: q.queue):
        if queue.type != "quorum":
            continue
        found = resolve(queue.queue, queue.type, queue.arguments, network.policies, network.operator_policies, version)
        limit, dead_letter = found.settings.get("delivery-limit"), found.settings.get("dead-letter-exchange")
        if limit is None or limit.source != DEFAULT_SOURCE or (dead_letter is not None and isinstance(dead_letter.value, str)):
            continue
        linter.add("TOP014", queue.key, f"vhost {network.vhost!r} queue {queue.queue!r}",
                   f"a message returned {limit.value} times is dropped: the queue has the default delivery limit and "
                   f"no dead-letter exchange{when}")


def _durability_and_reach(linter: _Linter, network: Network) -> None:
    vhost = network.vhost
    queues = sorted(network.queues.values(), key=lambda q: q.queue)
    exchanges = sorted(linter.of(vhost, ExchangeState), key=lambda e: e.exchange)
    shovels = [s for s in linter.state.objects.values() if isinstance(s, ShovelState)]
    consumed = {str(s.value.get("src-exchange")) for s in shovels if s.vhost == vhost and isinstance(s.value, dict)
                and s.value.get("src-exchange")}  # a shovel binds its own queue to it
    for exchange in exchanges:
        where = f"vhost {vhost!r} exchange {exchange.exchange!r}"
        if not exchange.durable:
            linter.add("TOP008", exchange.key, where, "not durable: gone after a restart, with its bindings")
        has_binding = exchange.exchange in network.bindings or exchange.exchange in consumed
        if not has_binding and not isinstance(network.exchange_setting(exchange, "alternate-exchange"), str):
            linter.add("TOP010", exchange.key, where, "no binding and no alternate exchange: messages published "
                       "to it are dropped (unless applications bind queues to it at run time)")
    fed = {destination for kind, destination in network.inbound if kind == "queue"}
    for queue in queues:
        settings = network.queue_settings(queue)
        exchange, key = settings.get("dead-letter-exchange"), settings.get("dead-letter-routing-key")
        if exchange == "" and isinstance(key, str):
            fed.add(key)
    for shovel in shovels:
        value = shovel.value if isinstance(shovel.value, dict) else {}
        if value.get("dest-queue") and vhost in _destination_vhosts(shovel):
            fed.add(str(value["dest-queue"]))
    federated = [p for p in linter.of(vhost, PolicyState) if {"federation-upstream", "federation-upstream-set"}
                 & set(p.definition)]
    for queue in queues:
        where = f"vhost {vhost!r} queue {queue.queue!r}"
        if any(applies(p, queue.queue, queue.type, linter.version) is not False for p in federated):
            fed.add(queue.queue)  # queue federation fills it from its upstreams (or may: undecided pattern)
        if not queue.durable:
            linter.add("TOP008", queue.key, where, "not durable: gone after a restart, with its messages")
        if queue.queue not in fed:
            linter.add("TOP009", queue.key, where, "no binding reaches it")
        size = queue.arguments.get("x-quorum-initial-group-size")
        if queue.type == "quorum" and isinstance(size, int) and linter.options.cluster_size is not None \
                and size > linter.options.cluster_size:
            linter.add("TOP007", queue.key, where, f"initial group size {size} on a cluster of "
                       f"{linter.options.cluster_size} node(s)")
        if queue.arguments.get("x-queue-mode") == "lazy":
            _lazy(linter, queue.key, where)


def _destination_vhosts(shovel: ShovelState) -> set[str]:
    """The vhosts a shovel's destination URIs name; its own vhost too when a URI cannot be
    read here (an unset variable)."""
    uris = parameters.uris_of(parameters.SHOVEL, shovel.value).get("dest-uri", [])
    return {parameters.vhost_of(uri) or shovel.vhost for uri in uris}


def _ties(linter: _Linter, network: Network) -> None:
    vhost = network.vhost
    for label, policies in (("policies", network.policies), ("operator policies", network.operator_policies)):
        for kind, objects in (("queue", list(network.queues.values())), ("exchange", linter.of(vhost, ExchangeState))):
            for target in sorted(objects, key=lambda o: o.key):
                if kind == "queue":
                    winners = contest(policies, target.queue, target.type, linter.version).winners
                elif label == "policies":
                    winners = network.exchange_policies(target.exchange)
                else:
                    continue  # operator policies do not act on exchanges
                if len(winners) > 1:
                    names = ", ".join(repr(p.policy) for p in winners)
                    linter.add("TOP011", target.key, f"vhost {vhost!r} {kind} {target.name!r}",
                               f"{label} {names} both apply at priority {winners[0].priority}: either may win")


def _passwords(linter: _Linter) -> None:
    for name, declared in sorted(linter.topology.users.items()):
        user = declared.spec
        if user.password is not None and user.allow_literal_password and \
                ("users", name, "password") not in linter.topology.variables_of:
            linter.findings.append(Finding("TOP012", declared.origin, f"user {name!r}",
                                           "its password is written in the files"))
