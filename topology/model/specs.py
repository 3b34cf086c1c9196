"""The declared objects of a plainly valid file, built without pydantic.

A file's exchanges, queues, bindings and policies are nearly all of its objects. Importing the
models of :mod:`topology.model.format` and validating with them cost more CPU than the rest of a
``validate`` of 20,000 objects, so a document without ``${...}`` references is first read here:
the same fields, defaults and values as the models, for these kinds and the vhosts and file that
hold them. At the first value this module is not sure of (another kind, a value pydantic would
convert or refuse, an unknown key), :func:`build_file` gives up and the models read the whole
document, with their messages. ``tests/unit/test_specs.py`` checks that both agree.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, ClassVar

from topology.model.values import parse_duration, parse_size
from topology.rules.limits import VHOST_LIMITS
from topology.rules.policies import APPLY_TO_TYPES
from topology.rules.queues import MAX_AGE_PATTERN, QUEUE_TYPES, field_choices

DESTINATION_TYPES = ("queue", "exchange")
"""What a binding's destination is."""


class _Unsure(Exception):
    """A value this module does not accept as it is: the models decide."""


_LIMIT = 2**63  # a larger integer is left to the models


def _text(value: Any) -> str:
    if type(value) is str:
        return value
    raise _Unsure


def _flag(value: Any) -> bool:
    if value is True or value is False:
        return value
    raise _Unsure


def _optional_text(value: Any) -> str | None:
    if type(value) is str or value is None:
        return value
    raise _Unsure


# The checks below take ``optional`` rather than being wrapped by _optional: one call per field
# instead of two, for the fields most objects give.

def _integer(low: int = -_LIMIT, high: int = _LIMIT - 1, optional: bool = False) -> Callable[[Any], int | None]:
    def check(value: Any) -> int | None:
        if type(value) is int and low <= value <= high:
            return value
        if value is None and optional:
            return None
        raise _Unsure
    return check


def _choice(values: Any, optional: bool = False) -> Callable[[Any], str | None]:
    allowed = frozenset(values)

    def check(value: Any) -> str | None:
        if type(value) is str and value in allowed:
            return value
        if value is None and optional:
            return None
        raise _Unsure
    return check


def _amount(read: Callable[[Any], int], optional: bool = False) -> Callable[[Any], int | None]:
    """A duration or a size: a whole number, or a text the reader turns into one."""
    def check(value: Any) -> int | None:
        if type(value) is int and 0 <= value < _LIMIT:
            return value
        if type(value) is str:
            try:
                number = read(value)
            except ValueError:
                raise _Unsure from None
            if number < _LIMIT:
                return number
        if value is None and optional:
            return None
        raise _Unsure
    return check


_MAX_AGE = re.compile(MAX_AGE_PATTERN)


def _max_age(value: Any) -> str:
    if type(value) is str and "\n" not in value and _MAX_AGE.match(value):
        return value
    raise _Unsure


def _map(value: Any) -> dict[str, Any]:
    """A map of any values with text keys (raw arguments, a policy definition)."""
    if type(value) is dict and all(type(key) is str for key in value):
        return dict(value)
    raise _Unsure


def _texts(value: Any) -> list[str]:
    if type(value) is list and all(type(item) is str for item in value):
        return list(value)
    raise _Unsure


def _optional(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def optional(value: Any) -> Any:
        return None if value is None else check(value)
    return optional


def _nothing(empty: type) -> Callable[[Any], Any]:
    """A section this module does not build: accepted only empty (``shovels: {}``)."""
    def check(value: Any) -> Any:
        if type(value) is empty and not value:
            return empty()
        raise _Unsure
    return check


class Spec:
    """An object read like the model of the same name in :mod:`topology.model.format`: its fields
    as attributes (defaults for those left out), ``model_fields_set`` the fields given, frozen."""

    CHECKS: ClassVar[dict[str, Callable[[Any], Any]]] = {}
    """Each field's check: the value as the model would hold it, or :class:`_Unsure`."""
    DEFAULTS: ClassVar[dict[str, Any]] = {}
    """The default of each optional field (a map or a list: a new empty one for each object)."""
    REQUIRED: ClassVar[frozenset[str]] = frozenset()

    model_fields_set: frozenset[str]

    FRESH: ClassVar[tuple[tuple[str, type], ...]] = ()
    """The optional fields whose default is a new empty map or list."""
    TEMPLATE: ClassVar[dict[str, Any]] = {}
    """Every field in the model's order, with its default (a required one's is always replaced)."""

    @classmethod
    def read(cls, data: Any) -> Spec:
        """The object ``data`` declares, or :class:`_Unsure`."""
        if type(data) is not dict:
            raise _Unsure
        checks = cls.CHECKS
        fields = cls.TEMPLATE.copy()
        try:
            for name, value in data.items():
                fields[name] = checks[name](value)
        except KeyError:  # a field the kind does not have
            raise _Unsure from None
        if cls.REQUIRED and not cls.REQUIRED <= data.keys():
            raise _Unsure
        for name, empty in cls.FRESH:
            if name not in data:
                fields[name] = empty()
        fields["model_fields_set"] = frozenset(data)
        made = object.__new__(cls)
        object.__setattr__(made, "__dict__", fields)
        return made

    def fields(self) -> dict[str, Any]:
        return {name: value for name, value in self.__dict__.items() if name != "model_fields_set"}

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.fields() == other.fields()  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]  # like the models: their maps are not hashable

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{name}={value!r}' for name, value in self.fields().items())})"


def _spec(name: str, checks: dict[str, Callable[[Any], Any]], defaults: dict[str, Any]) -> type[Spec]:
    fresh = tuple((field, type(default)) for field, default in defaults.items() if type(default) in (dict, list))
    template = {field: defaults.get(field) for field in checks}
    return type(name, (Spec,), {"CHECKS": checks, "DEFAULTS": defaults, "REQUIRED": frozenset(checks) - set(defaults),
                                "FRESH": fresh, "TEMPLATE": template, "__module__": __name__,
                                "__doc__": f"A declared {name.lower()} (see Spec)."})


_QUEUE_TYPE = _choice(QUEUE_TYPES, optional=True)
_DURATION, _SIZE = _amount(parse_duration, optional=True), _amount(parse_size, optional=True)

Exchange = _spec("Exchange", {
    "type": _text, "durable": _flag, "auto_delete": _flag, "internal": _flag,
    "alternate_exchange": _optional_text, "arguments": _map,
}, {"durable": True, "auto_delete": False, "internal": False, "alternate_exchange": None, "arguments": {}})

Queue = _spec("Queue", {
    "type": _QUEUE_TYPE, "durable": _flag, "auto_delete": _flag,
    "message_ttl": _DURATION, "expires": _DURATION, "max_length": _integer(0, optional=True), "max_length_bytes": _SIZE,
    "overflow": _choice(field_choices("overflow"), optional=True),
    "dead_letter_exchange": _optional_text, "dead_letter_routing_key": _optional_text,
    "dead_letter_strategy": _choice(field_choices("dead_letter_strategy"), optional=True),
    "max_priority": _integer(0, 255, optional=True), "single_active_consumer": _optional(_flag),
    "delivery_limit": _integer(optional=True), "initial_group_size": _integer(1, optional=True),
    "max_age": _optional(_max_age), "queue_mode": _choice(field_choices("queue_mode"), optional=True),
    "leader_locator": _choice(field_choices("leader_locator"), optional=True), "arguments": _map,
}, {"type": None, "durable": True, "auto_delete": False, "message_ttl": None, "expires": None, "max_length": None,
    "max_length_bytes": None, "overflow": None, "dead_letter_exchange": None, "dead_letter_routing_key": None,
    "dead_letter_strategy": None, "max_priority": None, "single_active_consumer": None, "delivery_limit": None,
    "initial_group_size": None, "max_age": None, "queue_mode": None, "leader_locator": None, "arguments": {}})

Binding = _spec("Binding", {
    "source": _text, "destination": _text, "destination_type": _choice(DESTINATION_TYPES), "routing_key": _text,
    "arguments": _map,
}, {"destination_type": "queue", "routing_key": "", "arguments": {}})

Policy = _spec("Policy", {
    "pattern": _text, "apply_to": _choice(APPLY_TO_TYPES), "priority": _integer(), "definition": _map,
}, {"apply_to": "all", "priority": 0})


def _named(kind: type[Spec]) -> Callable[[Any], dict[str, Spec]]:
    read = kind.read

    def check(value: Any) -> dict[str, Spec]:
        if type(value) is not dict:
            raise _Unsure
        for name in value:
            if type(name) is not str:
                raise _Unsure
        return {name: read(data) for name, data in value.items()}
    return check


def _listed(kind: type[Spec]) -> Callable[[Any], list[Spec]]:
    read = kind.read

    def check(value: Any) -> list[Spec]:
        if type(value) is not list:
            raise _Unsure
        return [read(data) for data in value]
    return check


def _limits(value: Any) -> dict[str, int]:
    if type(value) is dict and all(name in VHOST_LIMITS and type(name) is str for name in value):
        integer = _integer()
        return {name: integer(number) for name, number in value.items()}
    raise _Unsure


Vhost = _spec("Vhost", {
    "description": _optional_text, "tags": _optional(_texts), "default_queue_type": _QUEUE_TYPE,
    "tracing": _optional(_flag), "limits": _optional(_limits),
    "exchanges": _named(Exchange), "queues": _named(Queue), "bindings": _listed(Binding),
    "policies": _named(Policy), "operator_policies": _named(Policy),
    "shovels": _nothing(dict), "federation_upstreams": _nothing(dict), "federation_upstream_sets": _nothing(dict),
    "ignore": _texts,
}, {"description": None, "tags": None, "default_queue_type": None, "tracing": None, "limits": None, "exchanges": {},
    "queues": {}, "bindings": [], "policies": {}, "operator_policies": {}, "shovels": {}, "federation_upstreams": {},
    "federation_upstream_sets": {}, "ignore": []})

TopologyFile = _spec("TopologyFile", {
    "vhosts": _named(Vhost), "users": _nothing(dict), "manage_all_users": _optional(_flag), "ignore_users": _texts,
    "global_parameters": _map, "tests": _nothing(list),
}, {"vhosts": {}, "users": {}, "manage_all_users": None, "ignore_users": [], "global_parameters": {}, "tests": []})

SPECS: tuple[type[Spec], ...] = (Exchange, Queue, Binding, Policy, Vhost, TopologyFile)
"""Every kind built here; each has a model of the same name in :mod:`topology.model.format`."""


def build_file(data: Any) -> Spec | None:
    """The file ``data`` declares (a document without ``${...}`` references), read like
    ``format.TopologyFile.model_validate(data)``; ``None`` when the models must read it."""
    try:
        return TopologyFile.read(data)
    except _Unsure:
        return None


FRIENDLY_QUEUE_FIELDS: tuple[str, ...] = tuple(name for name in Queue.CHECKS if name not in ("durable", "auto_delete",
                                                                                             "arguments"))
"""Names of the queue fields that map to x-arguments (``type`` among them: x-queue-type)."""
