"""Policies and operator policies."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from topology.kinds.base import Resource
from topology.model.values import canonical
from topology.model.values import parse_duration, parse_size
from topology.rules.policies import DURATION_KEYS, SIZE_KEYS


def canonical_policy_definition(definition: dict[str, Any]) -> dict[str, Any]:
    """A policy definition with durations and sizes given with units turned into integers."""
    result = {}
    for key, value in definition.items():
        if isinstance(value, str) and key in DURATION_KEYS:
            try:
                value = parse_duration(value)
            except ValueError:
                pass  # reported by validation
        elif isinstance(value, str) and key in SIZE_KEYS:
            try:
                value = parse_size(value)
            except ValueError:
                pass
        result[key] = value
    return canonical(result)


@dataclass(frozen=True)
class PolicyState(Resource):
    kind: ClassVar[str] = "policy"
    section: ClassVar[str] = "policies"
    files_section: ClassVar[str] = "policies"
    """The vhost section of the files that declares this kind."""
    policy: str = ""
    pattern: str = ""
    apply_to: str = "all"
    priority: int = 0
    definition: dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def key(self) -> tuple[Any, ...]:
        return (self.kind, self.vhost, self.policy)

    @property
    def name(self) -> str:
        return self.policy

    def props(self) -> dict[str, Any]:
        return {"pattern": self.pattern, "apply_to": self.apply_to, "priority": self.priority, "definition": self.definition}

    def body(self) -> dict[str, Any]:
        """The body of ``PUT /api/policies/{vhost}/{name}`` (and of an operator policy's)."""
        return {"pattern": self.pattern, "apply-to": self.apply_to, "priority": self.priority,
                "definition": self.definition}

    @classmethod
    def declared(cls, topology: Any) -> Iterator[tuple[PolicyState, Any]]:
        for vhost in topology.vhosts.values():
            for name, declared in getattr(vhost, cls.files_section).items():
                spec = declared.spec
                yield cls(vhost=vhost.name, policy=name, pattern=spec.pattern, apply_to=spec.apply_to,
                          priority=spec.priority, definition=canonical_policy_definition(spec.definition)), \
                    declared.origin

    @classmethod
    def from_definition(cls, entry: dict[str, Any], vhost: str | None = None) -> PolicyState | None:
        """A policy of a definitions export or ``GET /api/policies`` (an operator policy: of
        ``GET /api/operator-policies``, or the runtime parameter a definitions document holds it as)."""
        if "component" in entry:
            if entry["component"] != "operator_policy" or cls is PolicyState:
                return None
            entry = {**entry["value"], "name": entry["name"], "vhost": entry.get("vhost")}
        return cls(vhost=str(entry["vhost"] if vhost is None else vhost), policy=str(entry["name"]),
                   pattern=str(entry.get("pattern", "")), apply_to=str(entry.get("apply-to", "all")),
                   priority=int(entry.get("priority", 0)),
                   definition=canonical_policy_definition(entry.get("definition") or {}))

    def to_definition(self) -> dict[str, Any]:
        return {"vhost": self.vhost, "name": self.policy, **self.body()}

    @classmethod
    def from_plan(cls, identity: dict[str, Any], props: dict[str, Any]) -> PolicyState:
        return cls(vhost=identity["vhost"], policy=identity["name"], **props)

    def declare(self, client: Any) -> None:
        client.put_policy(self.vhost, self.policy, self.body())

    def remove(self, client: Any) -> None:
        client.delete_policy(self.vhost, self.policy)


@dataclass(frozen=True)
class OperatorPolicyState(PolicyState):
    """An operator policy: a policy whose limits users' own policies cannot raise. A definitions
    document holds it as a runtime parameter of component ``operator_policy``."""

    kind: ClassVar[str] = "operator_policy"
    section: ClassVar[str] = "parameters"
    files_section: ClassVar[str] = "operator_policies"

    def to_definition(self) -> dict[str, Any]:
        return {"vhost": self.vhost, "component": "operator_policy", "name": self.policy, "value": self.body()}

    def declare(self, client: Any) -> None:
        client.put_operator_policy(self.vhost, self.policy, self.body())

    def remove(self, client: Any) -> None:
        client.delete_operator_policy(self.vhost, self.policy)
