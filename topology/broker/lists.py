"""A vhost's definitions export made from the broker's own lists (pure).

Brokers older than :data:`topology.rules.versions.SLOW_EXPORT_BEFORE` build a vhost's export from
the lists the management API serves (``/api/queues/{vhost}``, ``/api/exchanges/{vhost}``,
``/api/bindings/{vhost}``, ``/api/policies/{vhost}``, ``/api/parameters``), then keep:

- every queue but the exclusive ones (those of a live connection);
- every exchange but the default one and the ``amq.*`` ones;
- every binding from a named exchange to a queue the export keeps or to a named exchange;
- every policy and parameter of the vhost;

and of each, the fields in :data:`FIELDS`. The last binding rule looks each queue up in a list, so
the broker's time grows with the queues times the bindings; :func:`export` keeps the same objects
with a set. ``tests/integration/test_export_lists.py`` holds the two to the same objects on the
broker.
"""

from __future__ import annotations

from typing import Any

from topology.broker import shapes
from topology.rules.names import is_built_in_exchange

FIELDS: dict[str, tuple[str, ...]] = {
    "queues": ("name", "durable", "auto_delete", "arguments"),
    "exchanges": ("name", "type", "durable", "auto_delete", "internal", "arguments"),
    "bindings": ("source", "destination", "destination_type", "routing_key", "arguments"),
    "policies": ("name", "pattern", "apply-to", "definition", "priority"),
    "parameters": ("value", "component", "name"),
}
"""The fields of each object in a vhost's export (its ``vhost`` left out: the export is of one)."""

READS: dict[str, dict[str, str] | None] = {
    "queues": {"disable_stats": "true", "columns": ",".join((*FIELDS["queues"], "exclusive"))},
    "exchanges": {"columns": ",".join(FIELDS["exchanges"])},
    "bindings": None,  # a column list makes the broker slower here (it filters the whole answer)
    "policies": None,
    "parameters": None,  # every vhost's: the broker has no list of one vhost's parameters of every component
}
"""The query of each list read: only the fields the export holds, and the queues without their
statistics (which the broker would otherwise look up for each)."""

SHAPES: dict[str, dict[str, str]] = {
    "queues": {**shapes.QUEUE, "exclusive": "bool"}, "exchanges": shapes.EXCHANGE,
    "bindings": {**shapes.BINDING, "destination_type": "str"}, "policies": shapes.POLICY, "parameters": shapes.PARAMETER,
}
"""The shape of each list's entries: with what tells the objects the export leaves out, which the
lists always hold."""


def export(vhost: str, queues: list[dict[str, Any]], exchanges: list[dict[str, Any]],
           bindings: list[dict[str, Any]], policies: list[dict[str, Any]],
           parameters: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The vhost's export, from its lists as :data:`READS` reads them, of the shapes of :data:`SHAPES`
    (``parameters``: every vhost's)."""
    kept_queues = [entry for entry in queues if not entry["exclusive"]]
    names = {entry["name"] for entry in kept_queues}
    kept_bindings = [
        entry for entry in bindings
        if entry["source"] != "" and (
            entry["destination"] in names if entry["destination_type"] == "queue"
            else entry["destination_type"] == "exchange" and entry["destination"] != "")
    ]
    return {
        "queues": _fields("queues", kept_queues),
        "exchanges": _fields("exchanges", [e for e in exchanges if not is_built_in_exchange(e["name"])]),
        "bindings": _fields("bindings", kept_bindings),
        "policies": _fields("policies", policies),
        "parameters": _fields("parameters", [p for p in parameters if p.get("vhost") == vhost]),
    }


def _fields(section: str, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    fields = FIELDS[section]
    return [{name: entry[name] for name in fields if name in entry} for entry in entries]
