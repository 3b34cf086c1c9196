"""A generated broker: a RabbitMQ definitions document with every object kind the tool manages,
random names (slashes, percent signs, spaces, dollars, non-ASCII letters) and random settings,
from a seed. Used by the round-trip tests; everything in it loads as it is into a broker of the
version it is made for (no classic mirroring from 4.0 on)."""

from __future__ import annotations

import random
from typing import Any
from urllib.parse import quote

from topology.passwords import SHA256, password_hash
from topology.rules.versions import OLDEST_SUPPORTED, has_classic_mirroring

# characters a name may hold besides letters and digits (no leading or trailing space: the
# management UI trims them, and so would a reviewer)
ODD = ".-_:/%# ?$é→"
EXCHANGE_TYPES = ("direct", "fanout", "topic", "headers", "x-consistent-hash")
USER_TAGS = ("management", "monitoring", "policymaker", "impersonator", "ops-team")


class Generator:
    def __init__(self, seed: int, prefix: str) -> None:
        self.random = random.Random(seed)
        self.prefix = prefix
        self.names: set[str] = set()
        self.version: tuple[int, ...] = OLDEST_SUPPORTED
        self.amqp = "127.0.0.1:5672"

    def name(self, stem: str) -> str:
        """A new name: ``stem``, then random characters, some of them odd."""
        while True:
            tail = "".join(self.random.choice("abcxyz019" + ODD) for _ in range(self.random.randint(1, 6)))
            name = f"{stem}{tail}".strip()
            if name not in self.names and not name.endswith((".", "%")):
                self.names.add(name)
                return name

    def some(self, items: list, low: int = 0, high: int | None = None) -> list:
        high = len(items) if high is None else min(high, len(items))
        return self.random.sample(items, self.random.randint(min(low, high), high))

    def maybe(self, chance: float = 0.5) -> bool:
        return self.random.random() < chance


def definitions(seed: int, prefix: str, version: tuple[int, ...] = OLDEST_SUPPORTED,
                amqp: str = "127.0.0.1:5672") -> tuple[dict[str, Any], dict[str, str]]:
    """A definitions document whose vhosts, users and global parameter are all named
    ``prefix...``, and the password of each user that has one, for a broker of ``version`` whose
    AMQP listener is ``amqp`` (host:port: shovel and upstream URIs name it)."""
    g = Generator(seed, prefix)
    g.version = version
    g.amqp = amqp
    document: dict[str, Any] = {key: [] for key in (
        "users", "vhosts", "permissions", "topic_permissions", "parameters", "policies", "queues", "exchanges",
        "bindings")}
    vhosts = [g.name(f"{prefix}-v") for _ in range(2)]
    for index, vhost in enumerate(vhosts):
        entry: dict[str, Any] = {"name": vhost}
        if index == 0 or g.maybe():
            entry["metadata"] = {"description": f"generated {seed} {g.name('d')}", "tags": sorted(g.some(["a", "b", "c"], 1))}
            if g.maybe():
                entry["metadata"]["default_queue_type"] = g.random.choice(["classic", "quorum"])
        if g.maybe():
            entry["tracing"] = g.maybe()
        document["vhosts"].append(entry)
        _vhost(g, document, vhost, vhosts)
    passwords = _users(g, document, vhosts)
    document["global_parameters"] = [{"name": g.name(f"{prefix}-g"),
                                      "value": {"region": g.name("r"), "weight": g.random.randint(0, 9), "on": True}}]
    return document, passwords


def _vhost(g: Generator, document: dict[str, Any], vhost: str, vhosts: list[str]) -> None:
    def add(kind: str, **entry: Any) -> None:
        document[kind].append({"vhost": vhost, **entry})

    exchanges = []
    for kind in list(EXCHANGE_TYPES) + g.some(list(EXCHANGE_TYPES), 1, 3):
        name = g.name(f"ex-{kind[:4]}")
        exchanges.append((name, kind))
    # the first exchange of each type is plain: the rest take random properties
    alternates = [name for name, kind in exchanges if kind == "fanout"]
    plain = set()
    for name, kind in exchanges:
        arguments: dict[str, Any] = {}
        first = kind not in plain
        plain.add(kind)
        if not first and g.maybe(0.4):
            arguments["alternate-exchange"] = g.random.choice(alternates)
        if not first and g.maybe(0.3):
            arguments["x-note"] = g.random.choice(["a", 7, True])
        if kind == "x-consistent-hash" and not first:
            arguments["hash-header"] = "x-shard"
        add("exchanges", name=name, type=kind, durable=first or g.maybe(0.8),
            auto_delete=not first and g.maybe(0.15), internal=not first and g.maybe(0.2), arguments=arguments)
    public = [(n, k) for n, k in exchanges]

    queues = []
    for index in range(g.random.randint(6, 10)):  # every type at least once
        kind = ("classic", "quorum", "stream")[index] if index < 3 else g.random.choice(["classic", "quorum", "stream"])
        name = g.name({"classic": "q-", "quorum": "qq-", "stream": "s-"}[kind])
        arguments: dict[str, Any] = {"x-queue-type": kind}
        durable, auto_delete = True, False
        if kind == "classic":
            durable = g.maybe(0.8)
            auto_delete = g.maybe(0.15)
            options = {
                "x-message-ttl": lambda: g.random.choice([0, 1000, 86_400_000]),
                "x-expires": lambda: g.random.choice([3_600_000, 86_400_000]),
                "x-max-length": lambda: g.random.randint(0, 100_000),
                "x-max-length-bytes": lambda: g.random.choice([1024, 10**9]),
                "x-overflow": lambda: g.random.choice(["drop-head", "reject-publish", "reject-publish-dlx"]),
                "x-dead-letter-exchange": lambda: g.random.choice([""] + [n for n, _ in exchanges]),
                "x-dead-letter-routing-key": lambda: g.name("dlk."),
                "x-max-priority": lambda: g.random.randint(1, 10),
                "x-single-active-consumer": lambda: g.maybe(),
                "x-queue-mode": lambda: g.random.choice(["default", "lazy"]),
                "x-custom": lambda: g.random.choice(["text", 12, False]),
            }
        elif kind == "quorum":
            options = {
                "x-delivery-limit": lambda: g.random.randint(0, 50),
                "x-dead-letter-exchange": lambda: g.random.choice([n for n, _ in exchanges]),
                "x-dead-letter-routing-key": lambda: g.name("dlk."),
                "x-quorum-initial-group-size": lambda: 1,
                "x-max-length": lambda: g.random.randint(1, 100_000),
                "x-message-ttl": lambda: 60_000,
                "x-single-active-consumer": lambda: g.maybe(),
            }
        else:
            options = {
                "x-max-age": lambda: g.random.choice(["7D", "1h", "30m"]),
                "x-max-length-bytes": lambda: 10**9,
                "x-stream-max-segment-size-bytes": lambda: 10**7,
                "x-initial-cluster-size": lambda: 1,
            }
        for key in g.some(sorted(options)):
            arguments[key] = options[key]()
        if arguments.get("x-dead-letter-strategy") == "at-least-once":
            arguments["x-overflow"] = "reject-publish"
        if kind == "quorum" and g.maybe(0.3):
            arguments.update({"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish",
                              "x-dead-letter-exchange": exchanges[0][0]})
        if "x-dead-letter-routing-key" in arguments and "x-dead-letter-exchange" not in arguments:
            arguments["x-dead-letter-exchange"] = ""
        add("queues", name=name, durable=durable, auto_delete=auto_delete, arguments=arguments)
        queues.append((name, kind))

    seen = set()
    for _ in range(g.random.randint(10, 18)):
        source, kind = g.random.choice(public)
        to_exchange = g.maybe(0.25)
        if to_exchange:
            destination, destination_type = g.random.choice([n for n, _ in exchanges if n != source]), "exchange"
        else:
            destination, destination_type = g.random.choice(queues)[0], "queue"
        key, arguments = "", {}
        if kind == "topic":
            key = ".".join(g.random.choice(["*", "#", "order", "a", g.name("w")]) for _ in range(g.random.randint(1, 4)))
        elif kind == "direct":
            key = g.random.choice(["", g.name("k")])
        elif kind == "headers":
            arguments = {"x-match": g.random.choice(["all", "any", "all-with-x", "any-with-x"])}
            for _ in range(g.random.randint(0, 3)):
                arguments[g.name("h")] = g.random.choice(["pdf", 10, 2.5, True, ""])
        elif kind == "x-consistent-hash":
            key = str(g.random.randint(1, 20))
        elif g.maybe(0.3):
            key = g.name("ignored")  # fanout ignores the key, but the binding keeps it
        if (source, destination, destination_type, key, str(arguments)) in seen:
            continue
        seen.add((source, destination, destination_type, key, str(arguments)))
        add("bindings", source=source, destination=destination, destination_type=destination_type,
            routing_key=key, arguments=arguments)
    # two bindings that differ by their arguments alone
    headers = next(n for n, k in exchanges if k == "headers")
    for match in ("all", "any"):
        add("bindings", source=headers, destination=queues[0][0], destination_type="queue", routing_key="",
            arguments={"x-match": match, "kind": "twin"})

    for _ in range(g.random.randint(2, 4)):
        apply_to = g.random.choice(["queues", "exchanges", "all"])
        target = g.random.choice(queues if apply_to != "exchanges" else exchanges)[0]
        pattern = g.random.choice([f"^{_regex(target)}$", f"^{_regex(target[:3])}", ".*", "^nothing-matches$"])
        definition: dict[str, Any] = {}
        keys = {
            "queues": {"message-ttl": 30_000, "max-length": 1000, "expires": 7_200_000, "ha-mode": "all",
                       "queue-mode": "lazy", "dead-letter-exchange": exchanges[0][0], "delivery-limit": 20},
            "exchanges": {"alternate-exchange": alternates[0]},
            "all": {"message-ttl": 45_000, "alternate-exchange": alternates[0], "max-length-bytes": 10**8},
        }[apply_to]
        if not has_classic_mirroring(g.version):
            keys.pop("ha-mode", None)
        for key in g.some(sorted(keys), 1):
            definition[key] = keys[key]
        if definition.get("ha-mode") == "all" and g.maybe():
            definition["ha-sync-mode"] = "automatic"
        add("policies", name=g.name("p-"), pattern=pattern, **{"apply-to": apply_to},
            definition=definition, priority=g.random.randint(-2, 10))

    add("parameters", component="vhost-limits", name="limits",
        value={k: g.random.randint(100, 10_000) for k in g.some(["max-connections", "max-queues"], 1)})
    for _ in range(g.random.randint(1, 2)):
        add("parameters", component="operator_policy", name=g.name("op-"),
            value={"pattern": g.random.choice([".*", f"^{_regex(queues[0][0][:2])}"]), "apply-to": "queues",
                   "priority": g.random.randint(0, 5),
                   "definition": {k: v for k, v in g.some(sorted({"max-length": 100_000, "message-ttl": 3_600_000,
                                                                     "expires": 86_400_000}.items()), 1)}})

    other = next(v for v in vhosts if v != vhost)
    classic = [n for n, k in queues if k == "classic"] or [g.name("q-src")]
    for _ in range(g.random.randint(1, 2)):
        source_uri = g.random.choice([f"amqp:///{quote(vhost, safe='')}",
                                      f"amqp://guest:guest@{g.amqp}/{quote(vhost, safe='')}"])
        value: dict[str, Any] = {"src-protocol": "amqp091", "src-uri": source_uri, "src-queue": g.random.choice(classic),
                                 "dest-protocol": "amqp091", "dest-uri": f"amqp:///{quote(other, safe='')}"}
        if g.maybe():
            value["dest-exchange"] = g.name("sh-x")  # the shovel declares nothing on the way out
            value["dest-exchange-key"] = g.name("k")
        else:
            value["dest-queue"] = g.name("sh-q")
        for key, make in {"ack-mode": lambda: g.random.choice(["on-confirm", "on-publish"]),
                          "src-prefetch-count": lambda: g.random.randint(1, 500),
                          "reconnect-delay": lambda: g.random.choice([1, 5]),
                          "add-forward-headers": lambda: g.maybe(),
                          "src-delete-after": lambda: "never"}.items():
            if g.maybe():
                value[key] = make()
        add("parameters", component="shovel", name=g.name("sh-"), value=value)

    upstreams = []
    for _ in range(g.random.randint(1, 2)):
        name = g.name("up-")
        value = {"uri": g.random.choice([f"amqp:///{quote(other, safe='')}",
                                         f"amqp://guest:guest@{g.amqp.replace('127.0.0.1', 'localhost')}/{quote(other, safe='')}"])}
        for key, make in {"max-hops": lambda: g.random.randint(1, 3), "expires": lambda: 3_600_000,
                          "message-ttl": lambda: 600_000, "prefetch-count": lambda: 100,
                          "ack-mode": lambda: "on-confirm", "trust-user-id": lambda: g.maybe(),
                          "exchange": lambda: g.name("upx")}.items():
            if g.maybe():
                value[key] = make()
        add("parameters", component="federation-upstream", name=name, value=value)
        upstreams.append(name)
    upstream_set = g.name("set-")
    add("parameters", component="federation-upstream-set", name=upstream_set,
        value=[{"upstream": u, **({"prefetch-count": 10} if g.maybe() else {})} for u in upstreams])
    federated = exchanges[0][0]  # a plain direct exchange; its links live in the other vhost
    add("policies", name=g.name("fed-"), pattern=f"^{_regex(federated)}$", **{"apply-to": "exchanges"},
        definition={"federation-upstream-set": upstream_set}, priority=100)


def _users(g: Generator, document: dict[str, Any], vhosts: list[str]) -> dict[str, str]:
    passwords = {}
    topic_exchanges = [(e["vhost"], e["name"]) for e in document["exchanges"] if e["type"] == "topic"]
    for index in range(3):
        name = g.name(f"{g.prefix}-u")
        password = f"pw-{g.random.getrandbits(64):x}"
        if index == 2:  # a user without a password (certificates, say)
            user: dict[str, Any] = {"name": name, "password_hash": "", "hashing_algorithm": SHA256}
        else:
            passwords[name] = password
            user = {"name": name, "password_hash": password_hash(password, SHA256), "hashing_algorithm": SHA256}
        user["tags"] = sorted(g.some(list(USER_TAGS)))
        if g.maybe():
            user["limits"] = {k: g.random.randint(1, 100) for k in g.some(["max-connections", "max-channels"], 1)}
        document["users"].append(user)
        for vhost in (vhosts if index == 0 else g.some(vhosts, 1)):
            document["permissions"].append({"user": name, "vhost": vhost, "configure": g.random.choice(["^$", ".*", "^q-"]),
                                            "write": ".*", "read": g.random.choice([".*", "^(q|qq)-.*"])})
        for vhost, exchange in g.some(topic_exchanges, 0, 2):
            document["topic_permissions"].append({"user": name, "vhost": vhost, "exchange": exchange,
                                                  "write": "^order\\.", "read": ".*"})
    return passwords


def _regex(text: str) -> str:
    return "".join("\\" + c if c in ".^$*+?()[]{}|\\/" else c for c in text)
