"""What every kind of object shares: the base class (values are compared in their canonical form,
:func:`topology.model.values.canonical`).

A kind's object (a frozen dataclass) is the one form in which the files' side and the
broker's side are compared. Each kind's module says, for its objects, how they are built from
the files (:meth:`Resource.declared`), from the broker's definitions
(:meth:`Resource.from_definition`) and from a saved plan (:meth:`Resource.from_plan`), and
what the broker is sent (:meth:`Resource.to_definition`, and the request bodies derived from it).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar


PASSWORD_SET, PASSWORD_CHANGED = "set", "changed"
"""A password (a user's, or a URI's) as the plan shows it: never the password, never its hash."""


_new, _set = object.__new__, object.__setattr__


def frozen_json(value: Any) -> str:
    """A value as one stable text (map keys sorted): part of an identity."""
    if not value and isinstance(value, dict):
        return "{}"  # most bindings have no arguments
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def without_vhost(entry: dict[str, Any]) -> dict[str, Any]:
    """A whole broker's definitions entry as one vhost's export writes it (no ``vhost`` key)."""
    return {k: v for k, v in entry.items() if k != "vhost"}


@dataclass(frozen=True)
class Resource:
    """Base of the canonical objects; ``key`` is the identity, ``props()`` what is compared."""

    kind: ClassVar[str] = ""
    section: ClassVar[str] = ""
    """The list of a definitions document that holds this kind (``queues``, ``parameters``...)."""
    replace_on_change: ClassVar[bool] = False
    """True when the broker cannot change the object in place."""
    updates: ClassVar[bool] = True
    """Whether a change of this kind can be an update in place (not for a replaced kind, nor for a
    binding, which has nothing to compare but its identity)."""

    vhost: str

    @property
    def key(self) -> tuple[Any, ...]:
        raise NotImplementedError

    @property
    def name(self) -> str:
        raise NotImplementedError

    def props(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def made(cls, fields: dict[str, Any]) -> Any:
        """The object whose fields are ``fields`` (every field of the kind, each given), made without
        the dataclass's ``__init__``: a frozen one sets each field through ``object.__setattr__``,
        which is half the cost of the objects made on both sides of a plan of 20,000 (for the
        queues and bindings; ``tests/unit/test_kinds.py`` holds the two ways equal)."""
        made = _new(cls)
        _set(made, "__dict__", fields)
        return made

    @property
    def where(self) -> str:
        """How output names the object: ``vhost/name``, or a vhost's, user's or global parameter's own name."""
        return self.name if self.kind == "vhost" or not self.vhost else f"{self.vhost}/{self.name}"

    def end_props(self) -> dict[str, Any]:
        """What the broker shows once this object is applied (its props, unless a change marks them)."""
        return self.props()

    def identity(self) -> dict[str, Any]:
        """The fields that name the object (used in plan files)."""
        return {"vhost": self.vhost, "name": self.name}

    # -- the kind's conversions (each kind defines those that apply to it) ------------------

    @classmethod
    def declared(cls, topology: Any) -> Iterator[tuple[Resource, Any]]:
        """The objects of this kind that the files declare, with where each was declared."""
        raise NotImplementedError

    @classmethod
    def from_definition(cls, entry: dict[str, Any], vhost: str | None = None) -> Resource | None:
        """The object of a definitions entry (``vhost``: of one vhost's export, whose entries do
        not name it); ``None`` for an entry of another kind sharing the section, or one the broker
        makes itself."""
        raise NotImplementedError

    def to_definition(self) -> dict[str, Any]:
        """Its entry in a whole broker's definitions document: the one broker body."""
        raise NotImplementedError

    def entry(self) -> dict[str, Any]:
        """Its entry in one vhost's definitions document (for ``POST /api/definitions/{vhost}``)."""
        return without_vhost(self.to_definition())

    @classmethod
    def from_plan(cls, identity: dict[str, Any], props: dict[str, Any]) -> Resource:
        """The object that ``identity()`` and ``props()`` describe (read back from a plan file)."""
        raise NotImplementedError

    def declare(self, client: Any) -> None:
        """Create it on the broker, or change it in place."""
        raise NotImplementedError(f"a {self.kind} is not declared alone")

    def remove(self, client: Any) -> None:
        """Delete it from the broker (a missing one is the caller's to ignore)."""
        raise NotImplementedError(f"a {self.kind} is not deleted alone")
