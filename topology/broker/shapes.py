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
    if _fits(value, shape):
        return None  # the common case, checked without a word; the words are found only for a problem
    return _problem(value, shape, where)


def _fits(value: Any, shape: Any) -> bool:
    """Whether ``value`` has ``shape`` (what :func:`_problem` checks, in a quicker way: a definitions
    export of 20,000 objects is checked on every plan)."""
    if isinstance(shape, str):
        if shape == "any":
            return True
        kind = _KINDS[shape]
        return isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if isinstance(shape, list):
        if not isinstance(value, list):
            return False
        item = shape[0]
        if not isinstance(item, dict):
            return all(_fits(entry, item) for entry in value)
        checks = _checks(item)  # made once for the whole list
        return _column_fits(value, checks) or all(isinstance(entry, dict) and _map_fits(entry, checks)
                                                  for entry in value)
    return isinstance(value, dict) and _map_fits(value, _checks(shape))


def _map_fits(value: dict[str, Any], checks: list[tuple[str, Any, Any, bool, bool]]) -> bool:
    for name, kind, sub, missing_ok, null_ok in checks:
        field = value.get(name)
        if field is None:
            if missing_ok and (null_ok or name not in value):
                continue
            return False
        if kind is not None:
            if not isinstance(field, kind) or (kind is int and isinstance(field, bool)):
                return False
        elif sub is not None and not _fits(field, sub):
            return False
    return True


_EXACT = {str: frozenset({str}), int: frozenset({int}), bool: frozenset({bool}), dict: frozenset({dict})}
"""Of each kind, the types a decoded JSON value of it has."""
_NONE = type(None)


def _column_fits(entries: list[Any], checks: list[tuple[str, Any, Any, bool, bool]]) -> bool:
    """Whether every entry of a list of maps plainly fits: a field at a time over all the entries,
    each field's types gathered in one set (a list of 10,000 bindings: a fifth of the time of an entry
    at a time). ``False`` says only "not plainly": :func:`_map_fits` then decides for each entry,
    so this accepts nothing it would refuse."""
    if {type(entry) for entry in entries} - {dict}:
        return False
    for name, kind, sub, missing_ok, null_ok in checks:
        if sub is not None:
            return False  # a nested shape: an entry at a time
        found = {type(entry.get(name)) for entry in entries}
        if _NONE in found:
            if not (missing_ok and null_ok):
                return False  # missing or null where it may not be: an entry at a time says which
            found.discard(_NONE)
        if kind is not None and not found <= _EXACT[kind]:  # None: any value
            return False
    return True


_COMPILED: dict[int, tuple[dict[str, Any], list[tuple[str, Any, Any, bool, bool]]]] = {}


def _checks(shape: dict[str, Any]) -> list[tuple[str, Any, Any, bool, bool]]:
    """A map shape as (name, Python type or None, nested shape or None, may be missing, may be null)."""
    known = _COMPILED.get(id(shape))
    if known is not None and known[0] is shape:
        return known[1]
    checks = []
    for key, sub in shape.items():
        name = key.rstrip("?")
        optional = key.endswith("?")
        kind = _KINDS.get(sub) if isinstance(sub, str) else None
        nested = None if isinstance(sub, str) else sub
        checks.append((name, kind, nested, optional, optional and sub in ("str", "int", "bool", "any")))
    _COMPILED[id(shape)] = (shape, checks)
    return checks


def _problem(value: Any, shape: Any, where: str = "") -> str | None:
    """What in ``value`` does not have ``shape``, in words."""
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
            problem = _problem(item, shape[0], f"{where}[{index}]")
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
        problem = _problem(value[name], sub, f"{where + '.' if where else ''}{name}")
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
