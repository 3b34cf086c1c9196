"""Global (cluster-wide) runtime parameters."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from topology.kinds.base import Resource
from topology.model.values import canonical


@dataclass(frozen=True)
class GlobalParameterState(Resource):
    """A cluster-wide runtime parameter (:attr:`vhost` is empty)."""

    kind: ClassVar[str] = "global_parameter"
    section: ClassVar[str] = "global_parameters"
    vhost: str = ""
    parameter: str = ""
    value: Any = field(default=None, hash=False)

    @property
    def key(self) -> tuple[Any, ...]:
        return ("global_parameter", "", self.parameter)

    @property
    def name(self) -> str:
        return self.parameter

    def props(self) -> dict[str, Any]:
        return {"value": self.value}

    @classmethod
    def declared(cls, topology: Any) -> Iterator[tuple[GlobalParameterState, Any]]:
        for name, declared in topology.global_parameters.items():
            yield cls(parameter=name, value=canonical(declared.spec)), declared.origin

    @classmethod
    def from_definition(cls, entry: dict[str, Any], vhost: str | None = None) -> GlobalParameterState:
        """A global parameter of a definitions document or ``GET /api/global-parameters``."""
        return cls(parameter=entry["name"], value=canonical(entry.get("value")))

    def to_definition(self) -> dict[str, Any]:
        return {"name": self.parameter, "value": self.value}

    @classmethod
    def from_plan(cls, identity: dict[str, Any], props: dict[str, Any]) -> GlobalParameterState:
        return cls(parameter=identity["name"], value=props.get("value"))

    def declare(self, client: Any) -> None:
        client.put_global_parameter(self.parameter, self.value)

    def remove(self, client: Any) -> None:
        client.delete_global_parameter(self.parameter)
