"""The declared objects as a RabbitMQ definitions document (pure).

The document is what ``load_definitions``, ``rabbitmqctl import_definitions``, the
management UI's import and ``POST /api/definitions`` read. It is built from the desired
state (:func:`topology.state.desired_state`), so every default and friendly field is
already in the broker's terms.

Secrets follow one rule for every output format (see :class:`Secrets`):

- ``template`` (the default): no secret is written. A password that comes from a
  variable is written as that reference, ``"password": "${ORDERS_SVC_PASSWORD}"``, and a
  URI as written in the files when it holds a password (``${SRC_URI}``,
  ``amqp://u:${PW}@h``). RabbitMQ does not substitute them: the reader substitutes them
  (``envsubst``, a Helm template) before loading. :attr:`Rendered.variables` lists them.
- ``resolve``: the real values, for a document that is loaded as it is. A password is
  still never written: it becomes a ``password_hash`` made here with a random salt.

What a definitions document cannot hold goes in :attr:`Rendered.unsupported`; vhost limits
and operator policies travel as the runtime parameters RabbitMQ stores them as
(components ``vhost-limits`` and ``operator_policy``), which an import sets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from topology.kinds import ParameterState, UserState
from topology.kinds import parameter as parameters
from topology.passwords import DEFAULT_ALGORITHM, password_hash
from topology.state import State
from topology.variables import variable_names

TEMPLATE, RESOLVE = "template", "resolve"


@dataclass
class Rendered:
    """A rendered output and what its reader must know."""

    documents: list[dict[str, Any]] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    """``${VARIABLES}`` left in the output (template mode) → what each must hold."""
    unsupported: list[str] = field(default_factory=list)
    """Declared settings the format cannot express, one line each (left out of the output)."""
    dropped: list[str] = field(default_factory=list)
    """Declared metadata the format cannot express and that does not change what the broker does
    (a vhost's description), one line each: left out of the output with a warning, never refused."""
    notes: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    """The secrets the output holds (a URI's password, a password hash), one line each: such an
    output is written only to a private file."""

    @property
    def holds_secrets(self) -> bool:
        return bool(self.secrets)


@dataclass
class Secrets:
    """How a user's password and a URI are written (see the module docstring)."""

    mode: str = TEMPLATE

    def password(self, user: UserState, algorithm: str, result: Rendered) -> tuple[str, str] | None:
        """A declared password as written: in template mode, ``("password", "${VARIABLE}")`` when it
        comes from a variable, ``("hash", "${VARIABLE}")`` for a hash from one; else ``("hash", h)``:
        the declared hash, or one made here with ``algorithm``. ``None`` when the files declare
        no password."""
        if user.declared_hash is not None:
            if self.mode == TEMPLATE and user.hash_variable:
                result.variables[user.hash_variable] = f"the password hash of user {user.user}"
                return "hash", f"${{{user.hash_variable}}}"
            result.secrets.append(f"the password hash of user {user.user}"
                                  + (" (written in the files)" if self.mode == TEMPLATE else ""))
            return "hash", str(user.declared_hash)
        if user.secret is None:
            return None
        if self.mode == TEMPLATE and user.password_variable:
            result.variables[user.password_variable] = f"the password of user {user.user}"
            return "password", f"${{{user.password_variable}}}"
        result.secrets.append(f"a hash of the password of user {user.user}"
                              + (" (written in the files)" if self.mode == TEMPLATE else ""))
        return "hash", password_hash(str(user.secret), algorithm)

    def parameter_value(self, resource: ParameterState, result: Rendered) -> Any:
        """A shovel's or upstream's value with each URI real, or as written where it holds a password."""
        value = resource.secret_value
        if not isinstance(value, dict):
            return value
        value = dict(value)
        templates = resource.templates or {}
        for key in parameters.URI_KEYS.get(resource.component, ()):
            if key not in value:
                continue
            secret = parameters.has_password(resource.component, {key: value[key]})
            unresolved = "${" in str(value[key])  # offline: a variable that is not set
            if self.mode == TEMPLATE and (secret or unresolved):
                # as written; offline, an unset variable already stands as written in the value
                written = templates.get(key, value[key])
                names = [name for template in (written if isinstance(written, list) else [written])
                         for name in variable_names(str(template))]
                if not names:  # a literal password: the loader refuses one, so only a raw parameter holds it
                    result.unsupported.append(
                        f"{resource.kind} {resource.where}: the password of {key} is not from a variable; "
                        "take it from the environment, or render with --secrets resolve")
                    value[key] = parameters.masked(resource.component, {key: value[key]})[key]
                    continue
                value[key] = written
                for name in names:
                    result.variables[name] = f"in {key} of {resource.kind.replace('_', ' ')} {resource.where}"
            elif secret:
                result.secrets.append(f"the password in {key} of {resource.kind.replace('_', ' ')} {resource.where}")
        return value


def render_definitions(state: State, secrets: Secrets | None = None) -> Rendered:
    """The definitions document of the desired ``state``."""
    secrets = secrets or Secrets()
    result = Rendered()
    document: dict[str, Any] = {key: [] for key in (
        "users", "vhosts", "permissions", "topic_permissions", "parameters", "global_parameters", "policies",
        "queues", "exchanges", "bindings")}
    for name in sorted(state.vhosts):
        vhost = state.vhosts[name]
        document["vhosts"].append(vhost.to_definition())
        limits = vhost.limits_definition()
        if limits is not None:
            document["parameters"].append(limits)
        elif vhost.limits is not None:
            result.notes.append(f"vhost {name}: 'limits: {{}}' removes the broker's limits when applied; a "
                                "definitions import cannot remove them")
    for resource in sorted(state.objects.values(), key=lambda r: r.key):
        _add(resource, document, secrets, result)
    _shovel_notes(state, result)
    result.documents.append({key: value for key, value in document.items() if value})
    return result


def _add(resource: Any, document: dict[str, Any], secrets: Secrets, result: Rendered) -> None:
    """One object's entry: its kind's own, with what the secrets rule says of passwords and URIs."""
    entry = resource.to_definition()
    if isinstance(resource, UserState):
        first, *rest = entry.items()
        entry = dict([first, *_password_keys(resource, secrets, result).items(), *rest])
        if not resource.managed_password:
            result.notes.append(f"user {resource.user} has no password in the files: loading the document leaves it "
                                "without one (RabbitMQ clears an existing user's password), where apply leaves it as it is")
    elif isinstance(resource, ParameterState):
        entry["value"] = secrets.parameter_value(resource, result)
    document[resource.section].append(entry)


def _shovel_notes(state: State, result: Rendered) -> None:
    """RabbitMQ imports runtime parameters before queues, and a starting shovel declares a missing
    queue itself, as a classic queue: say so for each shovel queue the document declares."""
    for resource in state.objects.values():
        if resource.kind != "shovel" or not isinstance(resource.value, dict):
            continue
        for side in ("src", "dest"):
            queue = resource.value.get(f"{side}-queue")
            if queue and not resource.value.get(f"{side}-predeclared") and ("queue", resource.vhost, queue) in state.objects:
                result.notes.append(
                    f"shovel {resource.where} uses queue {queue!r} of this document: RabbitMQ imports shovels "
                    "before queues, and a shovel that starts first declares the queue itself as a classic queue; "
                    "into a broker without the queue, load the shovels after the rest")


def _password_keys(user: UserState, secrets: Secrets, result: Rendered) -> dict[str, str]:
    """A definitions user's ``password``, or ``password_hash`` and ``hashing_algorithm``; none without a password."""
    algorithm = user.hashing_algorithm or DEFAULT_ALGORITHM
    written = secrets.password(user, algorithm, result)
    if written is None:
        return {}
    kind, value = written
    if kind == "password" and user.hashing_algorithm and user.hashing_algorithm != DEFAULT_ALGORITHM:
        result.notes.append(f"user {user.user}: RabbitMQ hashes a password it imports with its own configured "
                            f"algorithm, not {user.hashing_algorithm}; --secrets resolve writes a hash made with it")
    return {"password": value} if kind == "password" else {"password_hash": value, "hashing_algorithm": algorithm}


def write_output(result: Rendered, output_format: str) -> str:
    """The text of a rendered output: JSON for definitions, multi-document YAML for k8s."""
    if output_format == "definitions":
        return json.dumps(result.documents[0], indent=2, ensure_ascii=False) + "\n"
    import yaml

    return yaml.safe_dump_all(result.documents, sort_keys=False, allow_unicode=True, explicit_start=True,
                              default_flow_style=False, width=1000)
