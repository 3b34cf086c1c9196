"""A definitions export made from the broker's own lists (pure): a vhost's, or the whole broker's.

Brokers older than :data:`topology.rules.versions.SLOW_EXPORT_BEFORE` build a vhost's export from
the lists the management API serves (``/api/queues/{vhost}``, ``/api/exchanges/{vhost}``,
``/api/bindings/{vhost}``, ``/api/policies/{vhost}``, ``/api/parameters``), then keep:

- every queue but the exclusive ones (those of a live connection);
- every exchange but the default one and the ``amq.*`` ones;
- every binding from a named exchange to a queue the export keeps or to a named exchange;
- every policy and parameter of the vhost;

and of each, the fields in :data:`FIELDS`. The last binding rule looks each queue up in a list, so
the broker's time grows with the queues times the bindings; :func:`export` keeps the same objects
with a set. The whole broker's export (:func:`export_all`) keeps the same from the lists of every
vhost, each entry with its ``vhost``, and adds the users, vhosts, permissions, topic permissions and
global parameters, whole (:data:`BROKER_FIELDS`). ``tests/integration/test_export_lists.py`` holds
both to the broker's own exports. From 4.3.3 the export itself holds the bindings to the exclusive
queues it leaves out; :func:`without_bindings_to_queues_left_out` leaves them out of it again.
"""

from __future__ import annotations

from operator import itemgetter
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

UNSORTED = {"sort": ""}
"""Asks for a list as the broker holds it: RabbitMQ 3.10-3.12 then leave out their sort of the
list (rabbit_mgmt_util:sort_list/4, "Do not sort when we are explicitly requested to sort with an
empty sort columns list"), which is a quarter of the time of a list of 10,000 bindings on 3.10.8;
from 3.13 (get_sorts_param/2) an empty sort is no sort asked for, and the list comes sorted as
without it. Nothing the tool does with a list depends on its order (the export's own is not
sorted either)."""

READS: dict[str, dict[str, str] | None] = {
    "queues": {"disable_stats": "true", "columns": ",".join((*FIELDS["queues"], "exclusive")), **UNSORTED},
    "exchanges": {"columns": ",".join(FIELDS["exchanges"])},
    "bindings": UNSORTED,  # no column list: it makes the broker slower here (it filters the whole answer)
    "policies": None,
    "parameters": None,  # every vhost's: the broker has no list of one vhost's parameters of every component
}
"""The query of each list read: only the fields the export holds, the queues without their
statistics (which the broker would otherwise look up for each), the long lists unsorted."""

SHAPES: dict[str, dict[str, str]] = {
    "queues": {**shapes.QUEUE, "exclusive": "bool"}, "exchanges": shapes.EXCHANGE,
    "bindings": {**shapes.BINDING, "destination_type": "str"}, "policies": shapes.POLICY, "parameters": shapes.PARAMETER,
}
"""The shape of each list's entries: with what tells the objects the export leaves out, which the
lists always hold."""

BROKER_FIELDS: dict[str, tuple[str, ...]] = {
    "users": ("name", "password_hash", "hashing_algorithm", "tags", "limits"),
    "vhosts": ("name",),
    "permissions": ("user", "vhost", "configure", "write", "read"),
    "topic_permissions": ("user", "vhost", "exchange", "write", "read"),
    "global_parameters": ("name", "value"),
}
"""The fields of the sections only the whole broker's export has. Its vhosts have their name alone
before 4.0, and from 4.0 on their description, tags, metadata (and before 4.2 default queue type)
as well, which the tool reads from the vhost list whatever the export holds
(:func:`topology.broker.live.live_definitions`): made from the lists, a vhost is its name."""

BROKER_READS: dict[str, tuple[str, dict[str, str] | None, dict[str, str]]] = {
    "users": ("users", None, shapes.NAMED),
    "vhosts": ("vhosts", {"columns": "name"}, shapes.NAMED),
    "permissions": ("permissions", None, shapes.PERMISSION),
    "topic_permissions": ("topic-permissions", None, shapes.PERMISSION),
    "global_parameters": ("global-parameters", None, shapes.GLOBAL_PARAMETER),
}
"""Of each section of :data:`BROKER_FIELDS`: the list's path under ``/api``, its query, and the
shape of its entries."""


def read_of(section: str, vhost: str | None) -> tuple[tuple[str, ...], dict[str, str] | None, dict[str, str]]:
    """How the list of a section is read: its path segments under ``/api``, its query, and the shape
    of its entries; of one vhost, or of every vhost (``None``: each entry with its ``vhost``)."""
    if section in BROKER_READS:
        path, query, shape = BROKER_READS[section]
        return (path,), query, shape
    query = READS[section]
    if vhost is not None and section != "parameters":  # no list holds one vhost's parameters of every component
        return (section, vhost), query, SHAPES[section]
    if query is not None and "columns" in query:
        query = {**query, "columns": query["columns"] + ",vhost"}
    return (section,), query, {**SHAPES[section], "vhost": "str"}


def export(vhost: str, queues: list[dict[str, Any]], exchanges: list[dict[str, Any]],
           bindings: list[dict[str, Any]], policies: list[dict[str, Any]],
           parameters: list[dict[str, Any]], *, as_listed: bool = False) -> dict[str, list[dict[str, Any]]]:
    """The vhost's export, from its lists as :func:`read_of` reads them (``parameters``: every
    vhost's). ``as_listed``: the same objects, each entry as its list gives it, with the fields of
    :data:`LISTED_ONLY` beside the export's: for a reader of the export's fields alone
    (:func:`topology.broker.live.definitions_state`), without a copy of each entry (at 20,000
    objects, about 14 ms): the lists' own entries (the parameters' shared with the other vhosts
    read meanwhile), to be read, never changed."""
    kept = _kept(queues, exchanges, bindings, _IN_ONE_VHOST)
    in_vhost = [p for p in parameters if p.get("vhost") == vhost]
    if as_listed:
        return {"queues": kept["queues"], "exchanges": kept["exchanges"], "bindings": kept["bindings"],
                "policies": policies, "parameters": in_vhost}
    return {
        "queues": _fields(kept["queues"], FIELDS["queues"]),
        "exchanges": _fields(kept["exchanges"], FIELDS["exchanges"]),
        "bindings": _fields(kept["bindings"], FIELDS["bindings"]),
        "policies": _fields(policies, FIELDS["policies"]),
        "parameters": _fields(in_vhost, FIELDS["parameters"]),
    }


LISTED_ONLY: dict[str, tuple[str, ...]] = {
    "queues": ("exclusive",), "bindings": ("vhost", "properties_key"), "policies": ("vhost",), "parameters": ("vhost",),
}
"""The fields a vhost's lists give beside those of its export (each list's may hold fewer: a
binding's ``properties_key`` is the broker's; ``tests/unit/test_export_lists_pure.py`` reads
the objects of both forms as the same)."""


def export_all(answers: dict[str, list[dict[str, Any]]], version: str) -> dict[str, Any]:
    """The whole broker's export, from the lists of every vhost as :func:`read_of` reads them:
    ``answers`` has a list for each section of :data:`FIELDS` and of :data:`BROKER_FIELDS`;
    ``version``: the broker's, as its overview writes it (the export names it twice, and `export
    --transform quorum` follows the rules of that version)."""
    kept = _kept(answers["queues"], answers["exchanges"], answers["bindings"], _IN_EVERY_VHOST)
    document: dict[str, Any] = {"rabbit_version": version, "rabbitmq_version": version}
    document.update((section, _fields(answers[section], fields)) for section, fields in BROKER_FIELDS.items())
    for section, fields in FIELDS.items():
        document[section] = _fields(kept.get(section, answers[section]), (*fields, "vhost"))
    return document


def without_bindings_to_queues_left_out(document: dict[str, Any], every_vhost: bool = False) -> dict[str, Any]:
    """A definitions export (a vhost's; ``every_vhost``: the whole broker's) without its bindings to
    queues it does not hold. RabbitMQ's export leaves those out itself before 4.3.3; from 4.3.3 it
    holds every binding, and so the bindings to the exclusive queues it leaves out: a connected
    application's, which the tool must not see (let alone prune), on any broker."""
    bindings = document.get("bindings")
    if not bindings:
        return document

    def queue(entry: dict[str, Any], name: str) -> Any:  # the queue ``entry[name]`` names, as a key
        return (entry.get("vhost"), entry.get(name)) if every_vhost else entry.get(name)

    held = {queue(entry, "name") for entry in document.get("queues") or ()}
    kept = [entry for entry in bindings if entry.get("destination_type") != "queue" or queue(entry, "destination") in held]
    return document if len(kept) == len(bindings) else {**document, "bindings": kept}


_IN_ONE_VHOST = (itemgetter("name"), itemgetter("destination"))
_IN_EVERY_VHOST = (itemgetter("vhost", "name"), itemgetter("vhost", "destination"))
"""How a queue is told apart from a binding's destination: in one vhost's lists, by its name; in
every vhost's, by its vhost and name."""


def _kept(queues: list[dict[str, Any]], exchanges: list[dict[str, Any]], bindings: list[dict[str, Any]],
          keys: tuple[Any, Any]) -> dict[str, list[dict[str, Any]]]:
    """The queues, exchanges and bindings the export keeps (``keys``: of a queue, and of a binding's
    destination queue; see :data:`_IN_ONE_VHOST`)."""
    queue_key, destination_key = keys
    kept_queues = [entry for entry in queues if not entry["exclusive"]]
    names = set(map(queue_key, kept_queues))
    return {
        "queues": kept_queues,
        "exchanges": [entry for entry in exchanges if not is_built_in_exchange(entry["name"])],
        "bindings": [
            entry for entry in bindings
            if entry["source"] != "" and (
                destination_key(entry) in names if entry["destination_type"] == "queue"
                else entry["destination_type"] == "exchange" and entry["destination"] != "")
        ],
    }


def _fields(entries: list[dict[str, Any]], fields: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{name: entry[name] for name in fields if name in entry} for entry in entries]
