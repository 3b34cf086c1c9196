"""Semantic rules over a whole merged topology (pure).

Structure and types are checked by the models when the files are loaded; the rules
here need the whole picture: references between objects, queue-type rules, and
policy definitions. Every problem is collected and reported at once.
"""

from __future__ import annotations

import base64
import datetime
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from topology.errors import ConfigError, Problem
from topology.model.specs import FRIENDLY_QUEUE_FIELDS, Queue
from topology.rules.names import RESERVED_PREFIX, is_reserved
from topology.rules.queues import (MAX_AGE_PATTERN, MAX_QUEUE_NAME_BYTES, QUEUE_ARGUMENTS, argument_for, field_for,
                                   is_queue_type, queue_type_of)
from topology.model.topology import NAMED_SECTIONS, Origin, Topology, VhostTopology, location, matching_ignore
from topology.model.values import canonical, parse_duration, parse_size
from topology.rules.exchanges import EXCHANGE_TYPES, HEADERS_MATCH, built_in_exchanges
from topology.rules.policies import OPERATOR_POLICY_KEY_VERSIONS, OPERATOR_POLICY_KEYS, POLICY_KEYS
from topology.rules.versions import CLASSIC_MIRRORING_REMOVED, version_text



class _Collector:
    def __init__(self, topology: Topology):
        self.topology = topology
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []

    def add(self, origin: Origin, subpath: tuple[Any, ...], message: str) -> None:
        line = self.topology.line_of(origin, *subpath)
        self.problems.append(Problem(origin.file, line, location(origin.path + subpath), message))

    def warn(self, origin: Origin, subpath: tuple[Any, ...], message: str) -> None:
        """Something RabbitMQ accepts but that is most likely a mistake (the files still validate)."""
        line = self.topology.line_of(origin, *subpath)
        self.warnings.append(Problem(origin.file, line, location(origin.path + subpath), message))


_DROPPED = " (RabbitMQ accepts it; messages sent there are dropped)"


def validate(topology: Topology) -> None:
    """Raise :class:`ConfigError` with every semantic problem of ``topology``; keep what RabbitMQ
    accepts but is likely a mistake in :attr:`Topology.warnings`."""
    found = _Collector(topology)
    _check_path_names(topology, found)
    for vhost in topology.vhosts.values():
        _check_vhost(vhost, found)
    for name, user in topology.users.items():
        _check_user(name, user.spec, user.origin, topology, found)
    for declared in topology.ignore_users:
        if not declared.spec.strip():
            found.add(declared.origin, (), "an ignore pattern cannot be empty")
        elif declared.spec != declared.spec.strip():
            found.add(declared.origin, (), f"ignore pattern {declared.spec!r} has spaces at an end: it would match no user name")
    if topology.ignore_users and not (topology.manage_all_users and topology.manage_all_users.spec):
        found.add(topology.ignore_users[0].origin, (), "ignore_users has no effect without manage_all_users: true "
                                                       "(users the files do not declare are left alone anyway)")
    for name, user in topology.users.items():
        pattern = matching_ignore(name, [d.spec for d in topology.ignore_users])
        if pattern is not None:
            found.add(user.origin, (), f"is declared but matches the ignore_users pattern {pattern!r}")
    for name, declared in topology.global_parameters.items():
        problem = "a parameter name cannot be empty" if not name else _plain_value_problem(declared.spec)
        if declared.spec == {}:
            problem = "an empty map: the broker stores it as an empty list (give the parameter a value)"
        if name == "cluster_name" and not isinstance(declared.spec, str):
            problem = "cluster_name must be text"
        if problem:
            found.add(declared.origin, (), problem)
    _check_tests(topology, found)
    topology.warnings = sorted(set(found.warnings))
    if found.problems:
        raise ConfigError(found.problems, topology.warnings)


PATH_STEPS = (".", "..")
"""Names the management HTTP API cannot address: in a URL they are path steps, which the broker
resolves away even percent-encoded (``PUT /api/exchanges/v/%2E`` is answered as ``/api/exchanges/v``)."""


STRIPPED_FROM_NAMES = frozenset("\r\n")
"""Characters RabbitMQ (3.10.8 and 4.3.6, seen) removes from a name given over the management API."""


def _check_path_names(topology: Topology, found: _Collector) -> None:
    """Every name that goes into a management API path (vhosts, their objects, users, global
    parameters) must be addressable there."""
    message = ("the name {name!r} cannot be managed: the management HTTP API reads it as a path step, "
               "so an object of that name can be neither read nor changed over HTTP")
    named: list[tuple[str, Origin]] = [(name, vhost.origin) for name, vhost in topology.vhosts.items()]
    for vhost in topology.vhosts.values():
        for section in NAMED_SECTIONS:
            named.extend((name, declared.origin) for name, declared in getattr(vhost, section).items())
    named.extend((name, declared.origin) for name, declared in topology.users.items())
    named.extend((name, declared.origin) for name, declared in topology.global_parameters.items())
    for name, origin in named:
        if name in PATH_STEPS:
            found.add(origin, (), message.format(name=name))
        elif STRIPPED_FROM_NAMES & set(name):
            found.add(origin, (), f"the name {name!r} holds a line break (CR or LF), which the broker removes from "
                                  "names: it would make another object than the one declared, and apply would never "
                                  "finish")


def _check_tests(topology: Topology, found: _Collector) -> None:
    """Routing tests name a declared vhost, exchange and queues."""
    for declared in topology.tests:
        test = declared.spec
        vhost = topology.vhosts.get(test.vhost)
        if vhost is None:
            found.add(declared.origin, ("vhost",), f"vhost {test.vhost!r} is not declared")
            continue
        if test.exchange and test.exchange not in vhost.exchanges and test.exchange not in built_in_exchanges(test.vhost):
            found.add(declared.origin, ("exchange",), f"exchange {test.exchange!r} is not declared in vhost {test.vhost!r}")
        for index, queue in enumerate(test.queues):
            if queue not in vhost.queues:
                found.add(declared.origin, ("queues", index), f"queue {queue!r} is not declared in vhost {test.vhost!r}")
        if len(set(test.queues)) != len(test.queues):
            found.add(declared.origin, ("queues",), "a queue is listed twice")
        if test.refused and test.queues:
            found.add(declared.origin, ("queues",), "a refused publish reaches no queue: leave queues empty")
        for key, value in test.headers.items():
            problem = None if value is None else _plain_value_problem(value)  # a void header is an AMQP value
            if problem:
                found.add(declared.origin, ("headers", key), problem)


def _check_user(name: str, spec: Any, origin: Origin, topology: Topology, found: _Collector) -> None:
    """Names, password forms, limits and the regular expressions of permissions."""
    if not name:
        found.add(origin, (), "a user name cannot be empty")
    if spec.password is not None and spec.password_hash is not None:
        found.add(origin, ("password_hash",), "give password or password_hash, not both")
    if spec.password == "":
        found.add(origin, ("password",), "an empty password: leave password out to keep the broker's, "
                                          "or declare the user without one (certificate or external auth)")
    if spec.password_hash is not None and not spec.password_hash.startswith("${"):  # offline, it stands unread
        try:
            raw = base64.b64decode(spec.password_hash, validate=True)
        except ValueError:
            raw = b""
        from topology.passwords import digest_size

        size = digest_size(spec.hashing_algorithm)
        if len(raw) <= 4:
            found.add(origin, ("password_hash",), "not a RabbitMQ password hash (base64 of a 4-byte salt and a digest)")
        elif size is not None and len(raw) - 4 != size:
            algorithm = spec.hashing_algorithm or "rabbit_password_hashing_sha256 (the default)"
            found.add(origin, ("password_hash",), f"its digest has {len(raw) - 4} bytes, not the {size} of {algorithm}: "
                                                  "set hashing_algorithm to the algorithm that made it")
    for tag in spec.tags:
        if not tag.strip() or "," in tag or tag != tag.strip():
            found.add(origin, ("tags",), f"invalid tag {tag!r}: tags cannot be empty, hold a comma or spaces around them")
    for limit, value in spec.limits.items():
        if value < 0:
            found.add(origin, ("limits", limit), f"{limit} cannot be negative (leave it out for no limit)")
    for vhost, permission in spec.permissions.items():
        for field_name in ("configure", "write", "read"):
            _regex_problem(found, origin, ("permissions", vhost, field_name), getattr(permission, field_name))
    for vhost, exchanges in spec.topic_permissions.items():
        for exchange, permission in exchanges.items():
            if not exchange:
                found.add(origin, ("topic_permissions", vhost), "a topic permission needs an exchange name")
            for field_name in ("write", "read"):
                _regex_problem(found, origin, ("topic_permissions", vhost, exchange, field_name),
                               getattr(permission, field_name))


def _regex_problem(found: _Collector, origin: Origin, path: tuple[Any, ...], pattern: str,
                   matched_here: bool = False) -> bool:
    """Report what is wrong with a regular expression (RabbitMQ's are PCRE); whether it is refused."""
    from topology.matching import pattern_problem

    problem = pattern_problem(pattern, matched_here)
    if problem is None:
        return False
    refused, message = problem
    (found.add if refused else found.warn)(origin, path, message)
    return refused


def _plain_value_problem(value: Any, depth: int = 0) -> str | None:
    """What keeps ``value`` from being sent to the broker as JSON, or None."""
    if value is None:
        return "null is not a value the broker accepts"
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    if isinstance(value, (str, int, float, bool)):
        return None
    if isinstance(value, list):
        return next((p for p in (_plain_value_problem(v, depth + 1) for v in value) if p), None)
    if isinstance(value, dict):
        return next((p for p in (_plain_value_problem(v, depth + 1) for v in value.values()) if p), None)
    if isinstance(value, datetime.datetime):
        return (f"{value.isoformat(sep=' ')} is read as a date and time, which the broker does not accept: "
                "put it in quotes to make it text")
    if isinstance(value, datetime.date):
        return (f"{value.isoformat()} is read as a date, which the broker does not accept: put it in quotes to make "
                "it text")
    if isinstance(value, (bytes, bytearray)):
        return "binary data (!!binary) is not a value the broker accepts: write text"
    if isinstance(value, (set, frozenset)):
        return "a set (!!set) is not a value the broker accepts: write a list"
    return "this value is not one the broker accepts: write text, a number, true or false, a list or a map"


def _check_values(origin: Origin, field: str, values: dict[str, Any], found: _Collector) -> None:
    for key, value in values.items():
        problem = _plain_value_problem(value)
        if problem:
            found.add(origin, (field, key), problem)


def _check_ignore(vhost: VhostTopology, found: _Collector) -> None:
    """Ignore patterns are not empty, and no declared object matches one (it would be both managed and ignored)."""
    for declared in vhost.ignore:
        if not declared.spec.strip():
            found.add(declared.origin, (), "an ignore pattern cannot be empty")
    if not vhost.ignore:
        return
    for kind in NAMED_SECTIONS:
        for name, object_declared in getattr(vhost, kind).items():
            pattern = matching_ignore(name, [d.spec for d in vhost.ignore])
            if pattern is not None:
                found.add(object_declared.origin, (), f"is declared but matches the ignore pattern {pattern!r} of vhost {vhost.name!r}")


def _check_vhost(vhost: VhostTopology, found: _Collector) -> None:
    for declared in list(vhost.exchanges.values()) + list(vhost.queues.values()) + vhost.bindings:
        arguments = declared.spec.arguments
        if arguments:  # most objects have none
            _check_values(declared.origin, "arguments", arguments, found)
    for declared in vhost.policies.values():
        _check_values(declared.origin, "definition", declared.spec.definition, found)

    if not vhost.name:
        found.add(vhost.origin, (), "a vhost name cannot be empty")
    for tag in vhost.tags or ():
        if "," in tag or not tag.strip():
            found.add(vhost.attribute_origins.get("tags", vhost.origin), (), f"invalid tag {tag!r}: tags cannot be empty or hold a comma")
    for limit, value in (vhost.limits or {}).items():
        if value < 0:
            found.add(vhost.attribute_origins.get("limits", vhost.origin), (limit,),
                      f"{limit} cannot be negative (leave it out for no limit)")

    built_in = built_in_exchanges(vhost.name)

    def exchange_exists(name: str) -> bool:
        return name in vhost.exchanges or name in built_in

    _check_ignore(vhost, found)

    for name, declared in vhost.exchanges.items():
        spec, origin = declared.spec, declared.origin
        if not name:
            found.add(origin, (), "an exchange name cannot be empty (the default exchange is built in)")
        elif is_reserved(name):
            found.add(origin, (), f"names starting with {RESERVED_PREFIX!r} are reserved by the broker")
        if spec.type not in EXCHANGE_TYPES and not spec.type.startswith("x-"):
            found.add(
                origin, ("type",),
                f"unknown exchange type {spec.type!r}: use direct, fanout, topic, headers, or a plugin type (x-...)",
            )
        if spec.type == "x-delayed-message" and "x-delayed-type" not in spec.arguments:
            found.add(origin, ("arguments",), "an x-delayed-message exchange needs the argument x-delayed-type")
        if spec.alternate_exchange is not None and "alternate-exchange" in spec.arguments:
            found.add(origin, ("arguments", "alternate-exchange"), "alternate-exchange is also given as alternate_exchange")
        alternate = spec.alternate_exchange if spec.alternate_exchange is not None else spec.arguments.get("alternate-exchange")
        if alternate is not None:
            path = ("alternate_exchange",) if spec.alternate_exchange is not None else ("arguments", "alternate-exchange")
            if not isinstance(alternate, str):
                found.add(origin, path, "the alternate exchange must be an exchange name")
            elif not exchange_exists(alternate):
                found.warn(origin, path, f"alternate exchange {alternate!r} is not declared in vhost {vhost.name!r}"
                                         f"{_DROPPED}")

    for name, declared in vhost.queues.items():
        _check_queue(vhost, name, declared.spec, declared.origin, found, exchange_exists)

    seen: dict[tuple[Any, ...], Origin] = {}
    for declared in vhost.bindings:
        spec, origin = declared.spec, declared.origin
        if spec.source == "":
            found.add(origin, ("source",), "the default exchange cannot be bound: every queue is bound to it by name")
        elif not exchange_exists(spec.source):
            found.add(origin, ("source",), f"source exchange {spec.source!r} is not declared in vhost {vhost.name!r}")
        elif spec.source in built_in and built_in[spec.source].condition:
            found.warn(origin, ("source",), f"exchange {spec.source!r} exists {built_in[spec.source].condition}")
        if spec.destination_type == "queue" and spec.destination not in vhost.queues:
            found.add(origin, ("destination",), f"destination queue {spec.destination!r} is not declared in vhost {vhost.name!r}")
        if spec.destination_type == "exchange" and not exchange_exists(spec.destination):
            found.add(
                origin, ("destination",), f"destination exchange {spec.destination!r} is not declared in vhost {vhost.name!r}"
            )
        source = vhost.exchanges.get(spec.source)
        is_headers = (source is not None and source.spec.type == "headers") or spec.source in ("amq.headers", "amq.match")
        x_match = spec.arguments.get("x-match")
        if x_match is not None and not (isinstance(x_match, str) and x_match in HEADERS_MATCH):
            found.add(origin, ("arguments", "x-match"), f"x-match must be one of {', '.join(sorted(HEADERS_MATCH))}")
        if is_headers and spec.routing_key:
            found.add(origin, ("routing_key",), "a headers exchange ignores the routing key: match on arguments instead")
        identity = (spec.source, spec.destination_type, spec.destination, spec.routing_key,
                    repr(canonical(spec.arguments)) if spec.arguments else "{}")
        if identity in seen:
            found.add(origin, (), f"the same binding is declared twice (also at {seen[identity]})")
        else:
            seen[identity] = origin

    for name, declared in vhost.policies.items():
        _check_policy(vhost, name, declared.spec.pattern, declared.spec.definition, declared.origin, found, exchange_exists)
    for name, declared in vhost.operator_policies.items():
        _check_policy(vhost, name, declared.spec.pattern, declared.spec.definition, declared.origin, found, exchange_exists)
        for key in declared.spec.definition:
            if key in POLICY_KEYS and key not in OPERATOR_POLICY_KEYS:
                found.add(declared.origin, ("definition", key),
                          f"{key} is not allowed in an operator policy (allowed: {', '.join(sorted(OPERATOR_POLICY_KEYS))})")


def _check_queue(
    vhost: VhostTopology, name: str, spec: Queue, origin: Origin, found: _Collector, exchange_exists: Callable[[str], bool]
) -> None:
    if not name:
        found.add(origin, (), "a queue name cannot be empty")
    elif is_reserved(name):
        found.add(origin, (), f"names starting with {RESERVED_PREFIX!r} are reserved by the broker")
    elif len(name.encode("utf-8")) > MAX_QUEUE_NAME_BYTES:
        found.add(origin, (), f"a queue name is at most {MAX_QUEUE_NAME_BYTES} bytes (UTF-8); this one has "
                              f"{len(name.encode('utf-8'))}: the broker refuses it")
    raw_type = spec.arguments.get("x-queue-type")
    if raw_type is not None and not is_queue_type(raw_type):
        found.add(origin, ("arguments", "x-queue-type"), "x-queue-type must be classic, quorum or stream")
        return
    queue_type = queue_type_of(spec, vhost.default_queue_type)
    if queue_type in ("quorum", "stream"):
        if not spec.durable:
            found.add(origin, ("durable",), f"{queue_type} queues are always durable")
        if spec.auto_delete:
            found.add(origin, ("auto_delete",), f"{queue_type} queues cannot be auto-delete")

    for field_name in spec.model_fields_set & _FRIENDLY_FIELDS:  # in no order: ConfigError sorts its problems
        value = getattr(spec, field_name)
        if value is None:  # given as null: left out
            continue
        argument = argument_for(field_name, queue_type)
        if argument in spec.arguments:
            found.add(origin, ("arguments", argument), f"{argument} is also given as {field_name}")
        rule = QUEUE_ARGUMENTS.get(argument)
        if rule and queue_type not in rule.queue_types:
            found.add(origin, (field_name,), f"{field_name} ({argument}) is not supported by {queue_type} queues")
        elif rule and rule.maximum is not None and isinstance(value, int) and value > rule.maximum:
            found.add(origin, (field_name,), _above_maximum(argument, rule.maximum))
    if spec.overflow == "reject-publish-dlx" and queue_type == "quorum":
        found.add(origin, ("overflow",), "quorum queues do not support overflow reject-publish-dlx")
    if spec.expires == 0:
        found.add(origin, ("expires",), "expires must be greater than zero")

    for argument, value in spec.arguments.items():
        if argument == "x-queue-type":
            continue
        rule = QUEUE_ARGUMENTS.get(argument)
        if rule is None:
            continue  # unknown raw arguments are passed through untouched
        path = ("arguments", argument)
        if queue_type not in rule.queue_types:
            hint = f" (friendly field: {field_for(argument)})" if field_for(argument) else ""
            found.add(origin, path, f"{argument} is not supported by {queue_type} queues{hint}")
            continue
        message = _check_kind(rule.kind, value)
        if message:
            found.add(origin, path, f"{argument} {message}")
        elif rule.maximum is not None and isinstance(value, (int, float)) and value > rule.maximum:
            found.add(origin, path, _above_maximum(argument, rule.maximum))
        if argument == "x-overflow" and value == "reject-publish-dlx" and queue_type == "quorum":
            found.add(origin, path, "quorum queues do not support overflow reject-publish-dlx")

    dead_letter = spec.dead_letter_exchange if spec.dead_letter_exchange is not None else spec.arguments.get("x-dead-letter-exchange")
    if dead_letter is None and (spec.dead_letter_routing_key is not None or "x-dead-letter-routing-key" in spec.arguments):
        path = ("dead_letter_routing_key",) if spec.dead_letter_routing_key is not None else (
            "arguments", "x-dead-letter-routing-key")
        found.add(origin, path, "a dead-letter routing key needs the queue's own dead_letter_exchange (the broker "
                                "refuses it without one, even when a policy gives the exchange)")
    if isinstance(dead_letter, str) and dead_letter and not exchange_exists(dead_letter):
        path = ("dead_letter_exchange",) if spec.dead_letter_exchange is not None else ("arguments", "x-dead-letter-exchange")
        found.warn(origin, path, f"dead-letter exchange {dead_letter!r} is not declared in vhost {vhost.name!r}{_DROPPED}"
                                  " [lint: TOP001]")


_FRIENDLY_FIELDS = frozenset(FRIENDLY_QUEUE_FIELDS)


def _above_maximum(argument: str, maximum: int) -> str:
    return f"{argument} is at most {maximum} ms (ten years): the broker refuses more"


def _check_kind(kind: str, value: Any) -> str | None:
    """Check a raw argument or policy value; return what is wrong, or None."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # compared and sent as an integer
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if kind == "int":
        return None if is_int and value >= 0 else "must be a non-negative integer"
    if kind == "limit":
        return None if is_int else "must be an integer (-1: no limit)"
    if kind == "positive":
        return None if is_int and value > 0 else "must be a positive integer"
    if kind == "priority":
        return None if is_int and 0 <= value <= 255 else "must be an integer from 0 to 255"
    if kind == "bool":
        return None if isinstance(value, bool) else "must be true or false"
    if kind == "str":
        return None if isinstance(value, str) else "must be a string"
    if kind == "max-age":
        ok = isinstance(value, str) and _MAX_AGE.match(value)
        return None if ok else "must be a number and one of Y, M, D, h, m, s (7D)"
    if kind == "node-list":
        ok = isinstance(value, list) and value and all(isinstance(v, str) and v for v in value)
        return None if ok else "must be a non-empty list of node names"
    choices = kind.split("|")
    if choices[0].isdigit():
        return None if is_int and str(value) in choices else f"must be one of {', '.join(choices)}"
    return None if value in choices else f"must be one of {', '.join(choices)}"


def _parse_problem(parse: Callable[[Any], int], value: Any) -> str | None:
    """The message of ``parse`` failing on ``value`` (a duration or size), or None."""
    try:
        parse(value)
    except ValueError as error:
        return str(error)
    return None


_MAX_AGE = re.compile(MAX_AGE_PATTERN)


def _check_policy(
    vhost: VhostTopology,
    name: str,
    pattern: str,
    definition: dict[str, Any],
    origin: Origin,
    found: _Collector,
    exchange_exists: Callable[[str], bool],
) -> None:
    if not name:
        found.add(origin, (), "a policy name cannot be empty")
    if not _regex_problem(found, origin, ("pattern",), pattern, matched_here=True):
        from topology.matching import explosive

        if explosive(pattern):
            found.warn(origin, ("pattern",), "the pattern repeats something that itself repeats without bound: matching "
                       "it can take time that doubles with each character of a name (RabbitMQ gives up past its match "
                       "limit, and then the policy does not apply); lint, explain, graph and drift cannot say which "
                       "names it matches. Write it without the nested repeat (^(a+)+$ is ^a+$)")
    if not definition:
        found.add(origin, ("definition",), "a policy definition cannot be empty")
    for key, value in definition.items():
        path = ("definition", key)
        kind = POLICY_KEYS.get(key)
        if kind is None:
            found.add(origin, path, f"unknown policy key {key!r}")
            continue
        if kind == "special":
            continue
        if kind == "duration":
            message = _parse_problem(parse_duration, value)
            if message is None and key == "expires" and parse_duration(value) == 0:
                message = "expires must be greater than zero"
        elif kind == "size":
            message = _parse_problem(parse_size, value)
        else:
            message = _check_kind(kind, value)
            message = f"{key} {message}" if message else None
        if message:
            found.add(origin, path, message)
    mode = definition.get("ha-mode")
    params = definition.get("ha-params")
    if mode == "exactly":
        if not (isinstance(params, int) and not isinstance(params, bool) and params >= 1):
            found.add(origin, ("definition", "ha-params"), "with ha-mode exactly, ha-params must be an integer of at least 1")
    elif mode == "nodes":
        message = _check_kind("node-list", params)
        if message:
            found.add(origin, ("definition", "ha-params"), f"with ha-mode nodes, ha-params {message}")
    elif params is not None:
        found.add(origin, ("definition", "ha-params"), "ha-params is only used with ha-mode exactly or nodes")
    retry_type, retry_min, retry_max = (definition.get(k) for k in ("delayed-retry-type", "delayed-retry-min",
                                                                     "delayed-retry-max"))
    if retry_type not in (None, "disabled") and retry_min is None:
        found.add(origin, ("definition", "delayed-retry-type"), f"delayed-retry-min is required when delayed-retry-type is {retry_type}")
    if isinstance(retry_min, int) and isinstance(retry_max, int) and retry_max < retry_min:
        found.add(origin, ("definition", "delayed-retry-max"), "delayed-retry-max must not be smaller than delayed-retry-min")
    for key in ("ha-sync-mode", "ha-sync-batch-size", "ha-promote-on-shutdown", "ha-promote-on-failure"):
        if key in definition and mode is None:
            found.add(origin, ("definition", key), f"{key} needs ha-mode")
    for key in ("dead-letter-exchange", "alternate-exchange"):
        value = definition.get(key)
        if isinstance(value, str) and value and not exchange_exists(value):
            found.warn(origin, ("definition", key), f"{key} {value!r} is not declared in vhost {vhost.name!r}{_DROPPED}")


@dataclass(frozen=True)
class VersionRule:
    """Something the files use that only some broker versions accept."""

    rule: str
    since: tuple[int, ...] | None
    """First version that accepts it (None: no lower bound)."""
    until: tuple[int, ...] | None
    """First version that no longer accepts it (None: no upper bound)."""
    source: str
    found: Callable[[VhostTopology], list[tuple[Origin, tuple[Any, ...]]]]
    ranges: tuple[tuple[tuple[int, ...] | None, tuple[int, ...] | None], ...] = ()
    """Several ranges of versions that accept it, instead of :attr:`since` to :attr:`until`."""
    hint: str = ""
    """What to do instead, said after the refusal."""
    deprecated_feature: str | None = None
    """The broker's deprecated feature that governs it: where the broker says whether it permits
    that feature (``GET /api/deprecated-features`` gives its state on 4.3.6), its word decides instead of the
    version (a broker can permit a feature its version denies by default, or deny one it permits)."""

    def refuses(self, version: tuple[int, ...]) -> str | None:
        """Why ``version`` does not accept it (``needs ...``, ``is not supported ...``), or ``None``."""
        ranges = self.ranges or ((self.since, self.until),)
        if any((low is None or version >= low) and (high is None or version < high) for low, high in ranges):
            return None
        if len(ranges) > 1:
            return "is accepted only by RabbitMQ " + " and ".join(
                f"from {version_text(low)} on" if high is None else f"from {version_text(low)} (before {version_text(high)})"
                for low, high in ranges if low is not None)
        low, high = ranges[0]
        if low is not None and version < low:
            return f"needs RabbitMQ {version_text(low)} or later"
        return f"is not supported from RabbitMQ {version_text(high)} on"  # type: ignore[arg-type]


def _operator_policy_key(key: str) -> Callable[[VhostTopology], list[tuple[Origin, tuple[Any, ...]]]]:
    def found(vhost: VhostTopology) -> list[tuple[Origin, tuple[Any, ...]]]:
        return [(d.origin, ("definition", key)) for d in vhost.operator_policies.values() if key in d.spec.definition]

    return found


def _all_policies(vhost: VhostTopology) -> list[Any]:
    """The vhost's policies and operator policies."""
    return list(vhost.policies.values()) + list(vhost.operator_policies.values())


def _policies_applying_to_queue_types(vhost: VhostTopology) -> list[tuple[Origin, tuple[Any, ...]]]:
    return [
        (d.origin, ("apply_to",))
        for d in _all_policies(vhost)
        if d.spec.apply_to in ("classic_queues", "quorum_queues", "streams")
    ]


def _classic_mirroring(vhost: VhostTopology) -> list[tuple[Origin, tuple[Any, ...]]]:
    """Each policy that mirrors, once (at its first ha-* key)."""
    found = []
    for d in _all_policies(vhost):
        keys = [key for key in d.spec.definition if key.startswith("ha-")]
        if keys:
            found.append((d.origin, ("definition", keys[0])))
    return found


def _upstream_setting(vhost: VhostTopology, name: str, key: str) -> list[tuple[Origin, tuple[Any, ...]]]:
    """Where federation upstreams and upstream set members use a setting (field or raw key)."""
    found = [(d.origin, (name,)) for d in vhost.federation_upstreams.values()
             if getattr(d.spec, name) is not None or key in d.spec.parameters]
    for declared in vhost.federation_upstream_sets.values():
        found += [(declared.origin, (index, name)) for index, member in enumerate(declared.spec)
                  if getattr(member, name) is not None or key in member.parameters]
    return found


def _shovel_setting(vhost: VhostTopology, names: tuple[str, ...],
                    matches: Callable[[Any], bool]) -> list[tuple[Origin, tuple[Any, ...]]]:
    """Where shovels set one of the fields ``names`` (or its raw key) to a value that ``matches``."""
    from topology.kinds.parameter import SHOVEL_KEYS

    return [(d.origin, (name,)) for d in vhost.shovels.values() for name in names
            if matches(getattr(d.spec, name)) or matches(d.spec.parameters.get(SHOVEL_KEYS[name]))]


def _policy_key(key: str) -> Callable[[VhostTopology], list[tuple[Origin, tuple[Any, ...]]]]:
    def found(vhost: VhostTopology) -> list[tuple[Origin, tuple[Any, ...]]]:
        return [(d.origin, ("definition", key)) for d in _all_policies(vhost) if key in d.spec.definition]

    return found


def _queue_argument_values(argument: str) -> Callable[[VhostTopology], list[tuple[Origin, tuple[Any, ...], str, Any]]]:
    """Where the vhost's queues set ``argument`` (friendly field or raw): (origin, path, queue type, value)."""
    field = field_for(argument)

    def found(vhost: VhostTopology) -> list[tuple[Origin, tuple[Any, ...], str, Any]]:
        places = []
        for declared in vhost.queues.values():
            spec = declared.spec
            value = getattr(spec, field, None) if field is not None else None
            if value is None and argument not in spec.arguments:
                continue  # most queues: the type is not worked out
            queue_type = queue_type_of(spec, vhost.default_queue_type)
            if value is not None:
                places.append((declared.origin, (field,), queue_type, value))
            if argument in spec.arguments:
                places.append((declared.origin, ("arguments", argument), queue_type, spec.arguments[argument]))
        return places

    return found


def _is_negative(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0


def _argument_version_rules() -> tuple[VersionRule, ...]:
    """The version rules of queue arguments (and their policy keys), from the argument table."""
    rules: list[VersionRule] = []
    for argument in QUEUE_ARGUMENTS.values():
        places = _queue_argument_values(argument.name)
        for queue_type, since in argument.types_since:
            field = field_for(argument.name)
            rules.append(VersionRule(
                f"{argument.name}{f' ({field})' if field else ''} on a {queue_type} queue", since=since, until=None,
                source="QUEUE_ARGUMENTS in topology/model/arguments.py",
                found=lambda vhost, places=places, queue_type=queue_type: [
                    (origin, path) for origin, path, kind, _ in places(vhost) if kind == queue_type]))
        for value_kind, since, what in argument.values_since:
            assert value_kind == "negative", value_kind
            key = argument.name.removeprefix("x-")

            def negative(vhost: VhostTopology, places=places, key=key) -> list[tuple[Origin, tuple[Any, ...]]]:
                return [(origin, path) for origin, path, _, value in places(vhost) if _is_negative(value)] + [
                    (d.origin, ("definition", key)) for d in _all_policies(vhost) if _is_negative(d.spec.definition.get(key))]

            rules.append(VersionRule(what, since=since, until=None, source="QUEUE_ARGUMENTS in topology/model/arguments.py",
                                     found=negative))
    return tuple(rules)


VERSION_RULES: tuple[VersionRule, ...] = (
    VersionRule(
        "policy key consumer-timeout",
        since=(3, 12),
        until=None,
        source="rabbit_policies validators in rabbitmq-server v3.12.0; 3.10.8 answers 'not recognised policy settings'",
        found=_policy_key("consumer-timeout"),
    ),
    VersionRule(
        "policy key target-group-size",
        since=(3, 13),
        until=None,
        source="rabbit_quorum_queue:validate_policy/1 in rabbitmq-server v3.13.0",
        found=_policy_key("target-group-size"),
    ),
    *(VersionRule(
        f"policy key {key}",
        since=(4, 3, 1),
        until=None,
        source="rabbit_quorum_queue policy_validator and operator_policy_validator registrations in rabbitmq-server v4.3.1",
        found=_policy_key(key),
    ) for key in ("delayed-retry-type", "delayed-retry-min", "delayed-retry-max")),
    VersionRule(
        "policy apply_to classic_queues, quorum_queues or streams",
        since=(3, 12),
        until=None,
        source="RabbitMQ 3.12.0 release notes; rabbit_policy apply-to validation (3.10/3.11 accept all, queues, exchanges)",
        found=_policies_applying_to_queue_types,
    ),
    VersionRule(
        "classic queue mirroring (ha-* policy keys)",
        since=None,
        until=CLASSIC_MIRRORING_REMOVED,
        source="RabbitMQ 4.0.0 release notes: classic queue mirroring was removed",
        found=_classic_mirroring,
        hint="use quorum queues ('topology export --transform quorum' writes a broker's mirrored queues as quorum "
             "queues)",
    ),
    VersionRule(
        "a transient non-exclusive queue (durable: false); declare it durable, or use an exclusive queue from the "
        "application (the broker refuses it unless the deprecated feature transient_nonexcl_queues is permitted)",
        since=None,
        until=(4, 3),
        source="rabbit_amqqueue in rabbitmq-server v4.3.0: deprecated feature transient_nonexcl_queues is "
               "denied_by_default (permitted_by_default in 4.0 to 4.2; 4.3.6 was seen to permit it by default)",
        found=lambda vhost: [(d.origin, ("durable",)) for d in vhost.queues.values() if not d.spec.durable],
        deprecated_feature="transient_nonexcl_queues",
    ),
    VersionRule(
        "queue-master-locator (x-queue-master-locator or the policy key); use queue-leader-locator "
        "instead (the broker refuses it unless the deprecated feature queue_master_locator is permitted)",
        since=None,
        until=(4, 3),
        source="rabbit_queue_location and rabbit_classic_queue:validate_arguments/1, validate_policy/1 in "
               "rabbitmq-server v4.3.0: deprecated feature queue_master_locator is denied_by_default",
        found=lambda vhost: _policy_key("queue-master-locator")(vhost) + [
            (d.origin, ("arguments", "x-queue-master-locator")) for d in vhost.queues.values()
            if "x-queue-master-locator" in d.spec.arguments],
        deprecated_feature="queue_master_locator",
    ),
    VersionRule(
        "shovel source_predeclared or destination_predeclared",
        since=(4, 0),
        until=None,
        source="rabbit_shovel_parameters in rabbitmq-server v4.0.0 (src-predeclared, dest-predeclared)",
        found=lambda vhost: _shovel_setting(vhost, ("source_predeclared", "destination_predeclared"),
                                            lambda value: value is not None),
    ),
    VersionRule(
        "shovel protocol local",
        since=(4, 2),
        until=None,
        source="rabbit_local_shovel, first in rabbitmq-server v4.2.0",
        found=lambda vhost: _shovel_setting(vhost, ("source_protocol", "destination_protocol"),
                                            lambda value: value == "local"),
    ),
    VersionRule(
        "federation upstream queue_type",
        since=(3, 13, 1),
        until=None,
        source="rabbit_federation_parameters:shared_validation/0 in rabbitmq-server v3.13.1 (queue-type)",
        found=lambda vhost: _upstream_setting(vhost, "queue_type", "queue-type"),
    ),
    VersionRule(
        "federation upstream ha_policy",
        since=None,
        until=(3, 13, 1),
        source="rabbit_federation_parameters:shared_validation/0 in rabbitmq-server v3.13.1 (ha-policy removed)",
        found=lambda vhost: _upstream_setting(vhost, "ha_policy", "ha-policy"),
    ),
) + tuple(
    VersionRule(f"operator policy key {key}", since=None, until=None,
                source="operator_policy_validator registrations in deps/rabbit/src at each tag (see OPERATOR_POLICY_KEY_VERSIONS)",
                found=_operator_policy_key(key), ranges=ranges)
    for key, ranges in OPERATOR_POLICY_KEY_VERSIONS.items()
)
VERSION_RULES += _argument_version_rules()
"""Version rules, each with its source. Checked against the broker before planning."""


def check_broker_version(topology: Topology, version: tuple[int, ...], version_text: str, *, offline: bool = False,
                         permits: Callable[[str], bool | None] | None = None, source: str = "--broker-version") -> None:
    """Raise :class:`ConfigError` for anything the files use that this broker version does not accept
    (``offline``: the version was given to ``validate``, by ``source``, not read from a broker). ``permits``: the
    broker's word on a deprecated feature (``None``: it does not say), asked only for a feature the
    files use."""
    if not version:
        return
    found = _Collector(topology)
    for rule in VERSION_RULES:
        if not (permits and rule.deprecated_feature) and rule.refuses(version) is None:
            continue  # this version accepts it: where the files use it does not matter (not looked for)
        places = [place for vhost in topology.vhosts.values() for place in rule.found(vhost)]
        if not places:
            continue
        permitted = permits(rule.deprecated_feature) if permits and rule.deprecated_feature else None
        if permitted is None:
            needs = rule.refuses(version)
            against = f"checked against {version_text} ({source})" if offline else f"the broker runs {version_text}"
        elif permitted:
            needs = None
        else:
            needs = "is refused"
            against = f"the broker ({version_text}) denies the deprecated feature {rule.deprecated_feature}"
        if needs is None:
            continue
        hint = f": {rule.hint}" if rule.hint and needs != "is refused" else ""
        for origin, path in places:
            found.add(origin, path, f"{rule.rule} {needs}{hint}; {against}")
    if found.problems:
        raise ConfigError(found.problems)


def check_exchange_types(topology: Topology, enabled: tuple[str, ...]) -> None:
    """Raise :class:`ConfigError` for exchanges of a type the broker has not enabled (a plugin missing)."""
    if not enabled:
        return
    found = _Collector(topology)
    for vhost in topology.vhosts.values():
        for declared in vhost.exchanges.values():
            if declared.spec.type not in enabled:
                found.add(
                    declared.origin, ("type",),
                    f"exchange type {declared.spec.type!r} is not enabled on the broker (enabled: {', '.join(enabled)})",
                )
    if found.problems:
        raise ConfigError(found.problems)
