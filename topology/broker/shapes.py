"""The shapes of the management API's answers, checked where they arrive (pure).

Everything after the client trusts an answer's shape: a list where an object belongs, a queue
without a name or arguments given as a list would otherwise surface deep inside as a traceback,
and ``/api/vhosts`` answering ``{}`` would read as a broker without vhosts. A shape is ``"str"``,
``"int"``, ``"bool"``, ``"object"`` (any object), ``"any"``, a one-item list (a list of that shape),
or a dict of keys to shapes (keys ending in ``?`` may be missing, and those of a single value
null too, as the broker writes some empty fields so)."""

from __future__ import annotations

from typing import Any

NAMED = {"name": "str"}
EXCHANGE = {"name": "str", "vhost?": "str", "type?": "str", "arguments?": "object"}
QUEUE = {"name": "str", "vhost?": "str", "arguments?": "object"}
BINDING = {"source": "str", "destination": "str", "vhost?": "str", "destination_type?": "str", "routing_key?": "str",
           "arguments?": "object"}
POLICY = {"name": "str", "vhost?": "str", "pattern": "str", "definition": "object", "priority?": "int",
          "apply-to?": "str"}
PARAMETER = {"component": "str", "vhost?": "str", "name": "str", "value": "any"}
PERMISSION = {"user": "str", "vhost": "str"}
DEFINITIONS = {
    "vhosts?": [NAMED], "users?": [NAMED], "permissions?": [PERMISSION], "topic_permissions?": [PERMISSION],
    "exchanges?": [EXCHANGE], "queues?": [QUEUE], "bindings?": [BINDING], "policies?": [POLICY],
    "parameters?": [PARAMETER], "global_parameters?": [{"name": "str", "value": "any"}],
}
"""A definitions export, of one vhost or of the whole broker."""

OVERVIEW = {"rabbitmq_version?": "str", "cluster_name?": "str", "exchange_types?": [NAMED]}
VHOST_LIMITS = {"vhost": "str", "value": "object"}
GLOBAL_PARAMETER = {"name": "str", "value": "any"}
QUEUE_DETAILS = {"name": "str", "arguments?": "object", "type?": "str"}

_KINDS = {"str": str, "int": int, "bool": bool, "object": dict}
_WORDS = {"str": "text", "int": "a whole number", "bool": "true or false", "object": "an object"}


def shape_problem(value: Any, shape: Any, where: str = "") -> str | None:
    """What in ``value`` does not have ``shape`` (``where``: the place, ``queues[3].name``), or ``None``."""
    if shape == "any":
        return None
    if isinstance(shape, str):
        kind = _KINDS[shape]
        if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
            return None
        return f"{where or 'the answer'} is {_what(value)}, not {_WORDS[shape]}"
    if isinstance(shape, list):
        if not isinstance(value, list):
            return f"{where or 'the answer'} is {_what(value)}, not a list"
        for index, item in enumerate(value):
            problem = shape_problem(item, shape[0], f"{where}[{index}]")
            if problem:
                return problem
        return None
    if not isinstance(value, dict):
        return f"{where or 'the answer'} is {_what(value)}, not an object"
    for key, sub in shape.items():
        name = key.rstrip("?")
        if value.get(name) is None:
            optional = key.endswith("?") and (name not in value or sub in ("str", "int", "bool", "any"))
            if optional:
                continue
            return f"{where + '.' if where else ''}{name} is {'null' if name in value else 'missing'}"
        problem = shape_problem(value[name], sub, f"{where + '.' if where else ''}{name}")
        if problem:
            return problem
    return None


def describe(value: Any) -> str:
    """What kind of JSON value ``value`` is, in words ("a list", "text", "a number")."""
    return _what(value)


def _what(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return {dict: "an object", list: "a list", str: "text"}.get(type(value), "a number")
