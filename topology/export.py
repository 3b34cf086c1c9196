"""A RabbitMQ definitions document → the project's YAML files (pure).

The same converter serves a live broker (its definitions export) and a definitions file.
Each object is written with the friendly fields where they say the same thing, raw
arguments otherwise, and defaults left out, so that a reviewer reads only what matters;
ordering is stable (vhosts, kinds and names sorted) so that re-exports diff cleanly.

What cannot or should not be managed as code is skipped and reported: the built-in and
``amq.*`` exchanges, server-named queues, objects internal to plugins (federation), the
temporary queues of interrupted migrations, and ``internal_cluster_id``; so is the user
the tool connects as (which RabbitMQ gives a permission on every vhost it creates), unless
asked for. Durations and sizes are written with their unit (``1d``, ``10MiB``) where the
format's field reads one.

No secret is written. Users are written without a password (the tool then leaves each one's
password as it is), or, when asked, with ``${<USER>_PASSWORD}``; a URI that holds a password
becomes ``${<NAME>_URI}``; :attr:`Export.variables` lists the variables.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from pydantic import ValidationError

from topology.kinds import parameter as parameters
from topology.kinds.vhost import tag_list
from topology.errors import TopologyError
from topology.model.format import FederationUpstream, Queue, Shovel, UpstreamSetMember
from topology.model.values import with_unit
from topology.schema import modeline
from topology.rules.limits import USER_LIMITS, VHOST_LIMITS
from topology.rules.names import is_built_in_exchange, is_federation_link, is_reserved, why_reserved_queue
from topology.rules.queues import argument_for, field_for, is_queue_type
from topology.kinds import canonical
from topology.migration_record import MIGRATION_ARGUMENT, MIGRATION_PREFIX

DEFAULT_VHOST = "/"


@dataclass
class Export:
    """The files to write (path → data), and what the reader must know."""

    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    """What was left out, and why (one line each)."""
    variables: dict[str, str] = field(default_factory=dict)
    """Environment variables the files refer to → what each must hold."""
    notes: list[str] = field(default_factory=list)
    connecting_user: str | None = None
    """The user the tool connects as, when it was left out though it has access to an exported
    vhost (with its permissions and topic permissions)."""
    secret_values: dict[str, str] = field(default_factory=dict, repr=False)
    """The values of the variables where the source holds them (URIs with passwords, plain
    passwords in a definitions file): never written or printed."""


def variable_name(*parts: str) -> str:
    """An environment variable name made of ``parts``: upper case, other characters as ``_``."""
    name = re.sub(r"[^A-Za-z0-9]+", "_", "_".join(parts)).strip("_").upper()
    return name if name and not name[0].isdigit() else f"V_{name}"


def vhost_file_name(vhost: str, taken: Iterable[str] = ()) -> str:
    """The file of a vhost: its name made safe for a path (``/`` is ``default``), and not one of
    ``taken``: two names that read the same there (``x/y`` and ``x_2Fy``, ``/`` and ``default``)
    get ``+2``, ``+3``... (a ``+`` is always escaped in a name, so no name reads like that)."""
    stem = "default" if vhost == DEFAULT_VHOST else quote(vhost, safe="-_.").replace("%", "_")
    taken = set(taken)
    name, number = f"vhosts/{stem}.yaml", 1
    while name in taken:
        number += 1
        name = f"vhosts/{stem}+{number}.yaml"
    return name


def export_definitions(definitions: dict[str, Any], vhosts: list[str] | None = None, *,
                       default_vhost: str = DEFAULT_VHOST, users: bool = True, connecting_user: str | None = None,
                       password_variables: bool = False) -> Export:
    """Convert ``definitions`` (a whole-broker export, or one vhost's, whose entries carry no
    ``vhost``: they belong to ``default_vhost``) into the project's files.

    ``vhosts``: the vhosts to export (default: every vhost of the document but ``/``, plus
    ``/`` when it holds objects and is the only one). ``users``: also the users, their
    permissions and the global parameters. ``connecting_user``: the user the tool connects
    as, left out with its permissions (:attr:`Export.connecting_user` says when it had any).
    ``password_variables``: write each user that has a password with ``password:
    ${<USER>_PASSWORD}`` (the files then manage passwords, and planning needs the variables);
    by default users are written without one, and their passwords are left as they are."""
    result = Export()
    definitions = _addressable(definitions, result)
    grouped = _by_vhost(definitions, default_vhost)
    known = sorted({v.get("name") for v in definitions.get("vhosts") or () if isinstance(v, dict)} | set(grouped))
    if vhosts is None:
        chosen = [v for v in known if v != DEFAULT_VHOST]
        if not chosen and DEFAULT_VHOST in known:
            chosen = [DEFAULT_VHOST]
        elif DEFAULT_VHOST in known and grouped.get(DEFAULT_VHOST):
            result.skipped.append("vhost '/': the default vhost (name it with --vhost / to export it)")
    else:
        chosen = list(vhosts)
        for name in chosen:
            if name not in known:
                result.skipped.append(f"vhost {name!r}: not in the definitions")
        chosen = [v for v in chosen if v in known]
    entries = {v.get("name"): v for v in definitions.get("vhosts") or () if isinstance(v, dict)}
    for name in sorted(chosen):
        data = _vhost(name, entries.get(name, {}), grouped.get(name, {}), result)
        result.files[vhost_file_name(name, result.files)] = {"vhosts": {name: data}}
    if users:
        cluster = _cluster(definitions, set(chosen), result, connecting_user, password_variables)
        if cluster:
            result.files["cluster.yaml"] = cluster
    return result


# The JSON reader's reasons (by how they start), in words that say what to fix.
_JSON_REASONS: tuple[tuple[str, str], ...] = (
    ("Expecting value", "a value is missing here"),
    ("Expecting property name enclosed in double quotes", "a key in double quotes is expected here (a ',' left "
                                                          "before a '}'?)"),
    ("Expecting ',' delimiter", "a ',' is missing between two items"),
    ("Expecting ':' delimiter", "a ':' is missing after a key"),
    ("Extra data", "more text after the end of the document"),
    ("Unterminated string", "a text in double quotes is not closed"),
    ("Invalid control character", "a control character inside a text in quotes (write it as \\n or \\uXXXX)"),
    ("Invalid \\escape", "an invalid backslash escape inside a text in quotes"),
    ("Invalid \\uXXXX escape", "an invalid \\u escape inside a text in quotes"),
)


def parse_definitions(data: bytes, source: str) -> dict[str, Any]:
    """The definitions document in ``data`` (a file named ``source``), in the shape the broker writes
    it; raises :class:`TopologyError` with one clear line (``file:line``) otherwise."""
    from topology.broker import shapes

    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise TopologyError(f"{source}:{line}: not UTF-8 text: is this a RabbitMQ definitions file?") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        if error.pos >= len(text.rstrip()):
            raise TopologyError(f"{source}:{error.lineno}: not JSON: the file ends too early (is it cut short?)") from None
        words = next((w for start, w in _JSON_REASONS if error.msg.startswith(start)), "not valid here")
        raise TopologyError(f"{source}:{error.lineno}: not JSON at column {error.colno}: {words}") from None
    except (ValueError, RecursionError):  # a number of thousands of digits; arrays nested thousands deep
        raise TopologyError(f"{source}: not a RabbitMQ definitions file (a number far too long, or arrays or "
                            "objects nested far too deep)") from None
    if not isinstance(document, dict):
        raise TopologyError(f"{source}: not a RabbitMQ definitions file (expected a JSON object, "
                            f"got {shapes.describe(document)})")
    problem = shapes.shape_problem(document, shapes.DEFINITIONS)
    if problem:
        raise TopologyError(f"{source}: {problem}: is this a RabbitMQ definitions file?")
    return document


def _addressable(definitions: dict[str, Any], result: Export) -> dict[str, Any]:
    """``definitions`` without what is named ``.`` or ``..`` (made over AMQP): the management API
    cannot address such names, so validation refuses them; each is reported as skipped."""
    from topology.validate import PATH_STEPS

    why = "the management HTTP API cannot address this name"
    kept = dict(definitions)
    labels = {"vhosts": "vhost", "users": "user", "global_parameters": "global parameter", "exchanges": "exchange",
              "queues": "queue", "policies": "policy", "operator_policies": "operator policy", "parameters": "parameter",
              "bindings": "binding", "permissions": "permission", "topic_permissions": "topic permission"}
    for kind, label in labels.items():
        if kind not in definitions or not isinstance(definitions[kind], list):
            continue
        entries = []
        for entry in definitions[kind]:
            names = [entry.get(k) for k in ("name", "vhost", "source", "destination", "user")] if isinstance(entry, dict) else []
            if any(isinstance(n, str) and n in PATH_STEPS for n in names):
                what = " -> ".join(str(entry.get(k)) for k in ("source", "destination")) if kind == "bindings" else \
                    repr(entry.get("name", entry.get("user")))
                result.skipped.append(f"{label} {what} (vhost {entry.get('vhost')!r}): {why}" if "vhost" in entry
                                      else f"{label} {what}: {why}")
                continue
            entries.append(entry)
        kept[kind] = entries
    return kept


def _by_vhost(definitions: dict[str, Any], default_vhost: str) -> dict[str, dict[str, list[dict[str, Any]]]]:
    grouped: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for kind in ("exchanges", "queues", "bindings", "policies", "operator_policies", "parameters"):
        for entry in definitions.get(kind) or ():
            if not isinstance(entry, dict):
                continue
            group = kind
            if kind == "parameters" and entry.get("component") == "operator_policy" and isinstance(entry.get("value"), dict):
                # how a definitions document carries an operator policy (render writes them so)
                group = "operator_policies"
                entry = {**entry["value"], "vhost": entry.get("vhost"), "name": entry.get("name")}
            grouped.setdefault(str(entry.get("vhost", default_vhost)), {}).setdefault(group, []).append(entry)
    return grouped


def _vhost(name: str, entry: dict[str, Any], objects: dict[str, list[dict[str, Any]]], result: Export) -> dict[str, Any]:
    data: dict[str, Any] = {}
    metadata = entry.get("metadata") if isinstance(entry.get("metadata"), dict) else {}
    description = entry.get("description", metadata.get("description"))
    if description:
        data["description"] = description
    tags = tag_list(entry.get("tags", metadata.get("tags")))
    if tags:
        data["tags"] = FlowList(sorted(tags))
    if entry.get("tracing") is True:
        data["tracing"] = True
    default_type = entry.get("default_queue_type", metadata.get("default_queue_type"))
    if is_queue_type(default_type):
        data["default_queue_type"] = default_type
    where = f"vhost {name!r}"
    exchanges = _exchanges(objects.get("exchanges", []), where, result)
    queues = _queues(objects.get("queues", []), default_type if is_queue_type(default_type) else None, where, result)
    skipped_names = {e["name"] for e in objects.get("exchanges", []) if e.get("name") not in exchanges} | {
        q["name"] for q in objects.get("queues", []) if q.get("name") not in queues}
    present = {("exchange", e.get("name")) for e in objects.get("exchanges", [])} | {
        ("queue", q.get("name")) for q in objects.get("queues", [])}
    bindings = _bindings(objects.get("bindings", []), skipped_names, present, where, result)
    policies = _policies(objects.get("policies", []), where, result)
    limits, shovels, upstreams, sets = _parameters(name, objects.get("parameters", []), where, result)
    if limits:
        data["limits"] = limits
    for key, value in (("exchanges", exchanges), ("queues", queues), ("bindings", bindings), ("policies", policies),
                       ("operator_policies", _policies(objects.get("operator_policies", []), where, result))):
        if value:
            data[key] = value
    if shovels:
        data["shovels"] = shovels
    if upstreams:
        data["federation_upstreams"] = upstreams
    if sets:
        data["federation_upstream_sets"] = sets
    return data


def _internal(arguments: dict[str, Any]) -> bool:
    return "x-internal-purpose" in arguments


def _exchanges(entries: list[dict[str, Any]], where: str, result: Export) -> dict[str, Any]:
    exchanges: dict[str, Any] = {}
    for entry in sorted(entries, key=lambda e: str(e.get("name"))):
        name = str(entry.get("name", ""))
        arguments = dict(entry.get("arguments") or {})
        if is_built_in_exchange(name):
            continue  # built into the broker: not even worth a line
        if _internal(arguments) or is_federation_link(name):
            result.skipped.append(f"{where} exchange {name!r}: internal to a plugin ({arguments.get('x-internal-purpose', 'federation')})")
            continue
        data: dict[str, Any] = {"type": entry.get("type", "direct")}
        if not entry.get("durable", True):
            data["durable"] = False
        if entry.get("auto_delete", False):
            data["auto_delete"] = True
        if entry.get("internal", False):
            data["internal"] = True
        alternate = arguments.pop("alternate-exchange", None)
        if isinstance(alternate, str):
            data["alternate_exchange"] = alternate
        elif alternate is not None:
            arguments["alternate-exchange"] = alternate
        if arguments:
            data["arguments"] = canonical(arguments)
        exchanges[name] = data
    return exchanges


def _queues(entries: list[dict[str, Any]], default_type: str | None, where: str, result: Export) -> dict[str, Any]:
    queues: dict[str, Any] = {}
    for entry in sorted(entries, key=lambda e: str(e.get("name"))):
        name = str(entry.get("name", ""))
        arguments = dict(entry.get("arguments") or {})
        if is_reserved(name):
            result.skipped.append(f"{where} queue {name!r}: {why_reserved_queue(name)}")
            continue
        if _internal(arguments) or is_federation_link(name):
            result.skipped.append(f"{where} queue {name!r}: internal to a plugin ({arguments.get('x-internal-purpose', 'federation')})")
            continue
        if name.startswith(MIGRATION_PREFIX) and MIGRATION_ARGUMENT in arguments:
            result.skipped.append(f"{where} queue {name!r}: the temporary queue of an interrupted migration (run apply to finish it)")
            continue
        if entry.get("exclusive"):
            result.skipped.append(f"{where} queue {name!r}: exclusive to a client connection")
            continue
        queue_type = str(arguments.pop("x-queue-type", None) or entry.get("type") or default_type or "classic")
        data: dict[str, Any] = {}
        if queue_type != (default_type or "classic"):
            data["type"] = queue_type
        if not entry.get("durable", True):
            data["durable"] = False
        if entry.get("auto_delete", False):
            data["auto_delete"] = True
        raw: dict[str, Any] = {}
        for argument, value in sorted(arguments.items()):
            friendly = field_for(argument)
            if friendly and friendly != "type" and argument_for(friendly, queue_type) == argument \
                    and friendly not in data and _fits(friendly, value):
                data[friendly] = with_unit(Queue.model_fields[friendly].annotation, value)
            else:
                raw[argument] = value
        if raw:
            data["arguments"] = canonical(raw)
        queues[name] = data
    return queues


def _fits(friendly: str, value: Any) -> bool:
    """Whether ``value`` is valid for the friendly queue field (else it stays a raw argument)."""
    try:
        Queue.model_validate({friendly: value})
    except ValidationError:
        return False
    return True


def _bindings(entries: list[dict[str, Any]], skipped: set[str], present: set[tuple[str, Any]], where: str,
              result: Export) -> list[dict[str, Any]]:
    bindings = []
    for entry in entries:
        source, destination = str(entry.get("source", "")), str(entry.get("destination", ""))
        destination_type = str(entry.get("destination_type", "queue"))
        if source == "":
            continue  # the default exchange's implicit bindings
        if source in skipped or destination in skipped:
            result.skipped.append(f"{where} binding {source} -> {destination}: its other end was skipped")
            continue
        missing = [(kind, name) for kind, name in (("exchange", source), (destination_type, destination))
                   if (kind, name) not in present and not (kind == "exchange" and is_built_in_exchange(name))]
        if missing:
            kind, name = missing[0]
            result.skipped.append(f"{where} binding {source} -> {destination}: its {kind} {name!r} is not in the "
                                  "definitions (a broker cannot hold such a binding)")
            continue
        data: dict[str, Any] = Flow(source=source, destination=destination)
        if entry.get("destination_type", "queue") != "queue":
            data["destination_type"] = entry["destination_type"]
        if entry.get("routing_key", ""):
            data["routing_key"] = entry["routing_key"]
        if entry.get("arguments"):
            data["arguments"] = canonical(entry["arguments"])
        bindings.append(data)
    bindings.sort(key=lambda b: (b["source"], b.get("destination_type", "queue"), b["destination"],
                                 b.get("routing_key", ""), json.dumps(b.get("arguments", {}), sort_keys=True)))
    unique = []
    for binding in bindings:
        if not unique or unique[-1] != binding:
            unique.append(binding)
    return unique


def _policies(entries: list[dict[str, Any]], where: str, result: Export) -> dict[str, Any]:
    policies: dict[str, Any] = {}
    for entry in sorted(entries, key=lambda e: str(e.get("name"))):
        data: dict[str, Any] = {"pattern": entry.get("pattern", "")}
        if entry.get("apply-to", "all") != "all":
            data["apply_to"] = entry["apply-to"]
        if entry.get("priority", 0):
            data["priority"] = entry["priority"]
        data["definition"] = canonical(entry.get("definition") or {})
        policies[str(entry.get("name"))] = data
    return policies


_SHOVEL_FIELDS = {key: name for name, key in parameters.SHOVEL_KEYS.items()}
_UPSTREAM_FIELDS = {key: name for name, key in parameters.UPSTREAM_KEYS.items()}


def _parameters(vhost: str, entries: list[dict[str, Any]], where: str, result: Export) -> tuple[
        dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    limits: dict[str, Any] = {}
    shovels: dict[str, Any] = {}
    upstreams: dict[str, Any] = {}
    sets: dict[str, Any] = {}
    for entry in sorted(entries, key=lambda e: (str(e.get("component")), str(e.get("name")))):
        component, name, value = entry.get("component"), str(entry.get("name")), entry.get("value")
        if component == "vhost-limits" and isinstance(value, dict):
            limits.update({k: v for k, v in value.items() if k in VHOST_LIMITS})
        elif component == parameters.SHOVEL and isinstance(value, dict):
            shovels[name] = _friendly(parameters.canonical_value(parameters.SHOVEL, value), _SHOVEL_FIELDS, Shovel,
                                      (vhost, "shovel", name), result)
        elif component == parameters.UPSTREAM and isinstance(value, dict):
            upstreams[name] = _friendly(parameters.canonical_value(parameters.UPSTREAM, value), _UPSTREAM_FIELDS,
                                        FederationUpstream, (vhost, "upstream", name), result)
        elif component == parameters.UPSTREAM_SET and isinstance(value, list):
            sets[name] = [_friendly(member, _UPSTREAM_FIELDS, UpstreamSetMember, (vhost, "upstream set", name), result)
                          for member in value if isinstance(member, dict)]
        else:
            result.skipped.append(f"{where} parameter {component}/{name}: a component the format does not manage")
    return limits, shovels, upstreams, sets


def _friendly(value: dict[str, Any], fields: dict[str, str], model: type[Any], owner: tuple[str, str, str],
              result: Export) -> dict[str, Any]:
    """A shovel's or upstream's value with friendly field names (``model``'s), durations with their
    unit; URIs with a password become variables."""
    data: dict[str, Any] = {}
    raw: dict[str, Any] = {}
    for key, item in value.items():
        name = fields.get(key)
        if name is None or name in ("upstream",) and owner[1] != "upstream set":
            raw[key] = item
            continue
        if name in ("source_uri", "destination_uri", "uri"):
            item = _uris(item, owner, name, result)
        elif name in model.model_fields:
            item = with_unit(model.model_fields[name].annotation, item)
        data[name] = item
    if raw:
        data["parameters"] = raw
    order = ["upstream"] + list(fields.values()) + ["parameters"]  # the order of the format's fields
    return {k: data[k] for k in sorted(data, key=order.index)}


def _uris(value: Any, owner: tuple[str, str, str], field_name: str, result: Export) -> Any:
    uris = [value] if isinstance(value, str) else list(value)
    written = []
    for index, uri in enumerate(uris):
        if not parameters.has_password(parameters.UPSTREAM, {"uri": uri}):
            written.append(uri)
            continue
        vhost, kind, name = owner
        suffix = "" if len(uris) == 1 else f"_{index + 1}"
        variable = variable_name(name, field_name.replace("_uri", "").replace("uri", ""), "URI") + suffix
        while variable in result.variables:
            variable += "_"
        result.variables[variable] = f"the URI of {kind} {name!r} in vhost {vhost!r} ({field_name}), with its password"
        result.secret_values[variable] = uri
        written.append(Reference(f"${{{variable}}}"))
    return written[0] if isinstance(value, str) else written


def _cluster(definitions: dict[str, Any], vhosts: set[str], result: Export, connecting_user: str | None,
             password_variables: bool) -> dict[str, Any]:
    data: dict[str, Any] = {}
    users: dict[str, Any] = {}
    permissions: dict[str, dict[str, Any]] = {}
    for entry in definitions.get("permissions") or ():
        if isinstance(entry, dict) and entry.get("vhost") in vhosts:
            permissions.setdefault(str(entry.get("user")), {})[entry["vhost"]] = Flow(
                (k, entry.get(k, "")) for k in ("configure", "write", "read"))
    topic: dict[str, dict[str, Any]] = {}
    for entry in definitions.get("topic_permissions") or ():
        if isinstance(entry, dict) and entry.get("vhost") in vhosts:
            topic.setdefault(str(entry.get("user")), {}).setdefault(entry["vhost"], {})[str(entry.get("exchange", ""))] = Flow(
                (k, entry.get(k, "")) for k in ("write", "read"))
    declared = {str(u.get("name")): u for u in definitions.get("users") or () if isinstance(u, dict)}
    if connecting_user is not None and (connecting_user in permissions or connecting_user in topic):
        # RabbitMQ gives the user that creates a vhost a permission there: the tool's own user
        # would otherwise come along with every export, and need its password to plan
        result.connecting_user = connecting_user
        permissions.pop(connecting_user, None)
        topic.pop(connecting_user, None)
        declared.pop(connecting_user, None)
    for name in sorted((set(permissions) | set(topic)) - set(declared)):
        result.skipped.append(f"the permissions of user {name!r}: no such user in the definitions")
    for name in sorted(set(declared) - set(permissions) - set(topic)):
        result.skipped.append(f"user {name!r}: no permission in the exported vhosts")
    kept_passwords = 0
    for name in sorted(set(declared) & (set(permissions) | set(topic))):
        entry = declared[name]
        user: dict[str, Any] = {}
        has_password = bool(entry.get("password_hash") or entry.get("password"))
        if has_password and not password_variables:
            kept_passwords += 1
        elif has_password:
            variable = variable_name(name, "PASSWORD")
            while variable in result.variables:
                variable += "_"
            result.variables[variable] = f"the password of user {name!r}"
            user["password"] = Reference(f"${{{variable}}}")
            if isinstance(entry.get("password"), str) and entry["password"]:
                result.secret_values[variable] = entry["password"]
        tags = [t.strip() for t in tag_list(entry.get("tags")) if t.strip()]
        if tags:
            user["tags"] = FlowList(sorted(tags))
        limits = entry.get("limits")
        if isinstance(limits, dict) and limits:
            user["limits"] = {k: v for k, v in sorted(limits.items()) if k in USER_LIMITS}
        if name in permissions:
            user["permissions"] = dict(sorted(permissions[name].items()))
        if name in topic:
            user["topic_permissions"] = {v: dict(sorted(x.items())) for v, x in sorted(topic[name].items())}
        users[name] = user
    if users:
        data["users"] = users
    if kept_passwords:
        result.notes.append(f"{kept_passwords} user(s) written without their password: plan and apply leave it as it "
                            "is (--password-variables writes password: ${<USER>_PASSWORD} instead)")
    parameters_found = {str(p.get("name")): p.get("value") for p in definitions.get("global_parameters") or ()
                        if isinstance(p, dict)}
    if "internal_cluster_id" in parameters_found:
        result.skipped.append("global parameter 'internal_cluster_id': the broker's own")
    kept = {k: canonical(v) for k, v in sorted(parameters_found.items()) if k != "internal_cluster_id"}
    if kept:
        data["global_parameters"] = kept
    return data


class Reference(str):
    """A ``${VARIABLE}`` the exporter wrote (every other ``${`` in exported text is escaped)."""


def _escaped(value: Any) -> Any:
    """``value`` with ``${`` in its text written ``$${`` (a literal ``${`` in a name or argument)."""
    if isinstance(value, Reference):
        return str(value)
    if isinstance(value, str):
        return value.replace("${", "$${")
    if isinstance(value, dict):
        return type(value)({_escaped(k): _escaped(v) for k, v in value.items()}) if isinstance(value, Flow) else {
            _escaped(k): _escaped(v) for k, v in value.items()}
    if isinstance(value, list):
        return (FlowList if isinstance(value, FlowList) else list)(_escaped(v) for v in value)
    return value


SECRET_INSIDE_MIN = 8
"""How long a secret must be to be looked for inside longer text (a routing key ``orders.<token>``);
a shorter one counts only where a whole name or value equals it (``admin`` is no secret in
``administrator``)."""


def hide_secret_values(result: Export, secrets: dict[str, str], unnamed: Iterable[str] = ()) -> None:
    """Write ``${NAME}`` in the files wherever the value of secret variable ``NAME`` (``secrets``:
    name → value, from the environment) appears in what the source holds: a routing key, a name,
    an argument, a value that a topology file filled from that variable. The files then plan to
    no change with the variable set, and never hold the secret. A secret that no variable holds
    (``unnamed``: the management password given on the command line) stops the export.

    Raises :class:`TopologyError` (the secret itself never in it) when a secret cannot be written
    as its variable: an ``unnamed`` one, or one right after a ``$`` (``$${`` reads as a literal)."""
    known = {value: name for name, value in sorted(secrets.items()) if value}
    hidden = [value for value in unnamed if value and value not in known]
    if not known and not hidden:
        return
    inside = sorted((v for v in list(known) + hidden if len(v) >= SECRET_INSIDE_MIN), key=len, reverse=True)
    finder = re.compile("|".join(re.escape(value) for value in inside)) if inside else None

    def spans(value: str) -> list[tuple[int, int, str]]:
        if value in known or value in hidden:
            return [(0, len(value), value)]
        return [(m.start(), m.end(), m.group(0)) for m in finder.finditer(value)] if finder is not None else []

    def hide(value: Any) -> Any:
        if isinstance(value, Reference):
            return value  # a reference the exporter wrote already
        if isinstance(value, str):
            found = spans(value)
            if not found:
                return value
            parts, end = [], 0
            for start, stop, secret in found:
                name = known.get(secret)
                if name is None:
                    raise TopologyError("not exporting: a name or value on the broker holds a secret that is in no "
                                        "secret variable (the management password?); nothing was written")
                before = value[end:start]
                if before.endswith("$"):
                    raise TopologyError(f"not exporting: a name or value on the broker holds '$' right before the value "
                                        f"of secret variable {name}, which a topology file cannot write; nothing was "
                                        "written")
                parts.append(before.replace("${", "$${"))
                parts.append(f"${{{name}}}")
                result.variables.setdefault(name, "a secret variable: its value is on the broker (in a name, "
                                                  "routing key, argument or value), written here as the variable")
                end = stop
            parts.append(value[end:].replace("${", "$${"))
            return Reference("".join(parts))
        if isinstance(value, dict):
            return type(value)({hide(k): hide(v) for k, v in value.items()})
        if isinstance(value, list):
            return type(value)(hide(v) for v in value)
        return value

    result.files = {path: hide(data) for path, data in result.files.items()}


class Flow(dict):  # type: ignore[type-arg]
    """A map written on one line (a binding)."""


class FlowList(list):  # type: ignore[type-arg]
    """A list written on one line (tags)."""


def render_file(data: dict[str, Any], source: str, schema: str | None = None) -> str:
    """One exported file as YAML text, with a header naming where it came from (and, with
    ``schema``, the path of the JSON Schema from the file, for editors)."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    Dumper.add_representer(Flow, lambda d, v: d.represent_mapping("tag:yaml.org,2002:map", v.items(), flow_style=True))
    Dumper.add_representer(FlowList, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True))
    body = yaml.dump(_escaped(data), Dumper=Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False,
                     width=120)
    head = modeline(schema) if schema is not None else ""
    return f"{head}# Exported by 'topology export' from {source}.\n{body}"
