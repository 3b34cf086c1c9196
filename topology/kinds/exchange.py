"""Exchanges."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from topology.kinds.base import Resource
from topology.model.values import canonical
from topology.rules.names import is_built_in_exchange


@dataclass(frozen=True)
class ExchangeState(Resource):
    kind: ClassVar[str] = "exchange"
    section: ClassVar[str] = "exchanges"
    replace_on_change: ClassVar[bool] = True
    exchange: str = ""
    type: str = "direct"
    durable: bool = True
    auto_delete: bool = False
    internal: bool = False
    arguments: dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def key(self) -> tuple[Any, ...]:
        return ("exchange", self.vhost, self.exchange)

    @property
    def name(self) -> str:
        return self.exchange

    def props(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "durable": self.durable,
            "auto_delete": self.auto_delete,
            "internal": self.internal,
            "arguments": self.arguments,
        }

    @classmethod
    def declared(cls, topology: Any) -> Iterator[tuple[ExchangeState, Any]]:
        for vhost in topology.vhosts.values():
            for name, declared in vhost.exchanges.items():
                spec = declared.spec
                arguments = dict(spec.arguments)
                if spec.alternate_exchange is not None:
                    arguments["alternate-exchange"] = spec.alternate_exchange
                yield cls(vhost=vhost.name, exchange=name, type=spec.type, durable=spec.durable,
                          auto_delete=spec.auto_delete, internal=spec.internal,
                          arguments=canonical(arguments)), declared.origin

    @classmethod
    def from_definition(cls, entry: dict[str, Any], vhost: str | None = None) -> ExchangeState | None:
        """An exchange of a definitions export or ``GET /api/exchanges``; ``None`` for a built-in one."""
        if is_built_in_exchange(entry["name"]):
            return None
        return cls(
            vhost=entry["vhost"] if vhost is None else vhost,
            exchange=entry["name"],
            type=entry.get("type", "direct"),
            durable=bool(entry.get("durable", True)),
            auto_delete=bool(entry.get("auto_delete", False)),
            internal=bool(entry.get("internal", False)),
            arguments=canonical(entry.get("arguments") or {}),
        )

    def to_definition(self) -> dict[str, Any]:
        return {"name": self.exchange, "vhost": self.vhost, **self.props()}

    def body(self) -> dict[str, Any]:
        """The body of ``PUT /api/exchanges/{vhost}/{name}``."""
        return {k: v for k, v in self.entry().items() if k != "name"}

    @classmethod
    def from_plan(cls, identity: dict[str, Any], props: dict[str, Any]) -> ExchangeState:
        return cls(vhost=identity["vhost"], exchange=identity["name"], **props)

    def declare(self, client: Any) -> None:
        client.put_exchange(self.vhost, self.exchange, self.body())

    def remove(self, client: Any) -> None:
        client.delete_exchange(self.vhost, self.exchange)
