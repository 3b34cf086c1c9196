"""Shovels, federation upstreams and upstream sets: vhost runtime parameters the tool manages.

The file's friendly fields → the broker's runtime parameter values, and the one way their
URIs are shown (pure).

A shovel is the runtime parameter of component ``shovel``; a federation upstream of
``federation-upstream``; an upstream set of ``federation-upstream-set``. The broker
stores a value exactly as it was put, so the files' value and the live one are compared
after :func:`canonical_value`, which also reads the pre-3.7 shovel keys as their
current names. URIs may carry a password: what is compared and shown is the URI with
its password masked (:func:`mask_uri`), plus a ``credentials`` token (see
:class:`ParameterState`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar

from topology import redact
from topology.errors import TopologyError
from topology.redact import MASK, QUERY_PASSWORD_RE, REFERENCES_ONLY_RE, URL_PASSWORD_RE
from topology.kinds.base import PASSWORD_CHANGED, PASSWORD_SET, Resource
from topology.model.values import canonical
from topology.model.topology import URI_FIELDS
from topology.variables import Variables

if TYPE_CHECKING:
    from topology.model.format import FederationUpstream, Shovel, UpstreamSetMember

SHOVEL, UPSTREAM, UPSTREAM_SET = "shovel", "federation-upstream", "federation-upstream-set"
"""The broker's runtime parameter components."""

SHOVEL_KEYS: dict[str, str] = {
    "source_protocol": "src-protocol",
    "source_uri": "src-uri",
    "source_queue": "src-queue",
    "source_queue_arguments": "src-queue-args",
    "source_exchange": "src-exchange",
    "source_exchange_key": "src-exchange-key",
    "source_address": "src-address",
    "source_consumer_arguments": "src-consumer-args",
    "source_predeclared": "src-predeclared",
    "prefetch_count": "src-prefetch-count",
    "delete_after": "src-delete-after",
    "destination_protocol": "dest-protocol",
    "destination_uri": "dest-uri",
    "destination_queue": "dest-queue",
    "destination_queue_arguments": "dest-queue-args",
    "destination_exchange": "dest-exchange",
    "destination_exchange_key": "dest-exchange-key",
    "destination_address": "dest-address",
    "destination_predeclared": "dest-predeclared",
    "add_forward_headers": "dest-add-forward-headers",
    "add_timestamp_header": "dest-add-timestamp-header",
    "publish_properties": "dest-publish-properties",
    "destination_properties": "dest-properties",
    "destination_application_properties": "dest-application-properties",
    "destination_message_annotations": "dest-message-annotations",
    "ack_mode": "ack-mode",
    "reconnect_delay": "reconnect-delay",
}
"""Shovel fields of the files → the keys of the broker's shovel parameter."""

SHOVEL_OLD_KEYS = {
    "prefetch-count": "src-prefetch-count",
    "delete-after": "src-delete-after",
    "add-forward-headers": "dest-add-forward-headers",
    "add-timestamp-header": "dest-add-timestamp-header",
    "publish-properties": "dest-publish-properties",
}
"""Pre-3.7 shovel keys the broker still reads, as their current names (rabbit_shovel_parameters)."""

UPSTREAM_KEYS: dict[str, str] = {
    "uri": "uri",
    "exchange": "exchange",
    "queue": "queue",
    "consumer_tag": "consumer-tag",
    "prefetch_count": "prefetch-count",
    "reconnect_delay": "reconnect-delay",
    "max_hops": "max-hops",
    "expires": "expires",
    "message_ttl": "message-ttl",
    "trust_user_id": "trust-user-id",
    "ack_mode": "ack-mode",
    "resource_cleanup_mode": "resource-cleanup-mode",
    "ha_policy": "ha-policy",
    "queue_type": "queue-type",
    "bind_nowait": "bind-nowait",
    "channel_use_mode": "channel-use-mode",
    "upstream": "upstream",
}
"""Federation upstream (and upstream set member) fields → the broker's keys."""

URI_KEYS = {SHOVEL: ("src-uri", "dest-uri"), UPSTREAM: ("uri",), UPSTREAM_SET: ()}
"""The keys of each component that hold URIs."""


def _fields(spec: Any, keys: dict[str, str]) -> dict[str, Any]:
    value = {key: getattr(spec, name) for name, key in keys.items() if getattr(spec, name, None) is not None}
    return {**value, **spec.parameters}


def shovel_value(spec: Shovel) -> dict[str, Any]:
    """The broker's shovel parameter value for a declared shovel (raw ``parameters`` win)."""
    return canonical_value(SHOVEL, _fields(spec, SHOVEL_KEYS))


def upstream_value(spec: FederationUpstream) -> dict[str, Any]:
    """The broker's federation-upstream value for a declared upstream."""
    return canonical_value(UPSTREAM, _fields(spec, UPSTREAM_KEYS))


def upstream_set_value(members: list[UpstreamSetMember]) -> list[dict[str, Any]]:
    """The broker's federation-upstream-set value: one map per member."""
    return canonical_value(UPSTREAM_SET, [_fields(member, UPSTREAM_KEYS) for member in members])


def canonical_value(component: str, value: Any) -> Any:
    """A parameter value in the one form both sides are compared in: old shovel keys under
    their current names, a list of one URI as that URI, numbers and maps canonical."""
    if component == SHOVEL and isinstance(value, dict):
        value = dict(value)
        for old, new in SHOVEL_OLD_KEYS.items():
            if old in value:
                found = value.pop(old)
                value.setdefault(new, found)
    if isinstance(value, dict):
        value = dict(value)
        for key in URI_KEYS.get(component, ()):
            uris = value.get(key)
            if isinstance(uris, list) and len(uris) == 1 and isinstance(uris[0], str):
                value[key] = uris[0]
    return canonical(value)


def uris_of(component: str, value: Any) -> dict[str, list[str]]:
    """The URIs of a parameter value, by key."""
    if not isinstance(value, dict):
        return {}
    found: dict[str, list[str]] = {}
    for key in URI_KEYS.get(component, ()):
        uris = value.get(key)
        if isinstance(uris, str):
            found[key] = [uris]
        elif isinstance(uris, list):
            found[key] = [u for u in uris if isinstance(u, str)]
    return found


def password_of(uri: str) -> str | None:
    """The password in a URI's user information, or ``None``."""
    match = URL_PASSWORD_RE.match(uri)
    return match.group("password") if match else None


def _query_passwords(uri: str) -> list[str]:
    return [m.group("password") for m in QUERY_PASSWORD_RE.finditer(uri)]


def mask_uri(uri: str) -> str:
    """The URI with its password, and any ``password=`` query parameter, replaced by ``***``
    (what plans show and compare)."""
    uri = URL_PASSWORD_RE.sub(lambda m: f"{m.group('head')}:{MASK}@", uri, count=1) if URL_PASSWORD_RE.match(uri) else uri
    return QUERY_PASSWORD_RE.sub(lambda m: f"{m.group('head')}{MASK}" if m.group("password") else m.group(0), uri)


def masked(component: str, value: Any) -> Any:
    """A parameter value with every URI's password masked."""
    if not isinstance(value, dict):
        return value
    result = dict(value)
    for key in URI_KEYS.get(component, ()):
        uris = result.get(key)
        if isinstance(uris, str):
            result[key] = mask_uri(uris)
        elif isinstance(uris, list):
            result[key] = [mask_uri(u) if isinstance(u, str) else u for u in uris]
    return result


def has_password(component: str, value: Any) -> bool:
    """Whether any URI of a parameter value holds a password (user information or ``password=``)."""
    return any(p is not None for p in passwords(component, value))


def passwords(component: str, value: Any) -> list[str | None]:
    """The passwords of a value's URIs, in order (compared to tell a changed password)."""
    found: list[str | None] = []
    for uris in uris_of(component, value).values():
        for uri in uris:
            found.append(password_of(uri))
            found.extend(_query_passwords(uri))
    return found


def users_of(component: str, value: Any) -> set[str]:
    """The user names in a value's URIs (``amqp://user[:password]@host``)."""
    from urllib.parse import unquote

    names = set()
    for uris in uris_of(component, value).values():
        for uri in uris:
            rest = uri.split("://", 1)[1] if "://" in uri else ""
            authority = rest.split("/", 1)[0].split("?", 1)[0]
            if "@" in authority:
                names.add(unquote(authority.rsplit("@", 1)[0].split(":", 1)[0]))
    return names


def vhost_of(uri: str) -> str | None:
    """The vhost an AMQP URI names (``amqp://`` alone: ``/``); ``None`` when it holds a
    ``${VARIABLE}`` that is not substituted."""
    from urllib.parse import unquote, urlsplit

    if "${" in uri:
        return None
    path = urlsplit(uri).path
    return unquote(path[1:]) if len(path) > 1 else "/"


_DEFAULT_RE = re.compile(r"\$\{[^}:]*:-([^}]*)\}")


def uri_problem(template: str, uri: str) -> str | None:
    """What is wrong with a shovel or upstream URI as written (``template``) and as substituted
    (``uri``), or ``None``: a password written in the file (also in a ``:-`` default), or user
    information the broker would misread."""
    match = URL_PASSWORD_RE.match(template)
    literal = bool(match and match.group("password") and not REFERENCES_ONLY_RE.match(match.group("password")))
    literal = literal or any(p and not REFERENCES_ONLY_RE.match(p) for p in _query_passwords(template))
    literal = literal or any("@" in d or "password=" in d for d in _DEFAULT_RE.findall(template))
    if literal:
        return ("a password written in the file: take the URI from the environment (${VARIABLE}, without a "
                "default), or its password alone (amqp://user:${PASSWORD}@host)")
    rest = uri.split("://", 1)[1] if "://" in uri else ""
    before_query = rest.split("?", 1)[0].split("#", 1)[0]
    if "@" in before_query and "@" not in before_query.split("/", 1)[0]:
        return "a '/' before the '@' of the user information: encode it as %2F in the user name or password"
    return None


@dataclass(frozen=True)
class ParameterState(Resource):
    """A vhost runtime parameter the tool manages: a shovel, federation upstream or upstream set.

    :attr:`value` is the broker's value with every URI's password masked: what is compared
    and shown. :attr:`credentials` is ``set`` when a URI holds a password, ``changed`` when a
    declared one differs from the broker's (:func:`resolve_credentials`), ``None`` otherwise.
    The real value is :attr:`secret_value`, never compared, printed or saved."""

    kind: ClassVar[str] = ""
    section: ClassVar[str] = "parameters"
    component: ClassVar[str] = ""
    files_section: ClassVar[str] = ""
    """The vhost section of the files that declares this kind."""
    model: ClassVar[str] = ""
    """The model of the files that declares one (for a set: one member)."""
    keys: ClassVar[dict[str, str]] = {}
    """That model's fields → the keys of the broker's value."""
    value_of: ClassVar[Callable[[Any], Any]]
    """The broker's value for a declared one (from its spec)."""
    parameter: str = ""
    value: Any = field(default=None, hash=False)
    credentials: str | None = None
    secret_value: Any = field(default=None, compare=False, repr=False, hash=False)
    templates: dict[str, Any] | None = field(default=None, compare=False, hash=False)
    """Declared only: each URI key as written in the files, ``${...}`` included (saved plans)."""

    @property
    def key(self) -> tuple[Any, ...]:
        return (self.kind, self.vhost, self.parameter)

    @property
    def name(self) -> str:
        return self.parameter

    def props(self) -> dict[str, Any]:
        props = {"value": self.value}
        if self.credentials is not None:
            props["credentials"] = self.credentials
        return props

    def end_props(self) -> dict[str, Any]:
        props = self.props()
        if props.get("credentials") == PASSWORD_CHANGED:
            props["credentials"] = PASSWORD_SET
        return props

    def identity(self) -> dict[str, Any]:
        identity: dict[str, Any] = {"vhost": self.vhost, "name": self.parameter}
        if self.templates:
            identity["uris"] = self.templates
        return identity

    @classmethod
    def of_value(cls, vhost: str, name: str, value: Any, templates: dict[str, Any] | None = None) -> ParameterState:
        """A parameter object from its real value (declared or read from the broker)."""
        value = canonical_value(cls.component, value)
        return cls(vhost=vhost, parameter=name, value=masked(cls.component, value),
                   credentials=PASSWORD_SET if has_password(cls.component, value) else None,
                   secret_value=value, templates=templates)

    @classmethod
    def declared(cls, topology: Any) -> Iterator[tuple[ParameterState, Any]]:
        keys = cls.keys
        for vhost in topology.vhosts.values():
            for name, declared in getattr(vhost, cls.files_section).items():
                templates: dict[str, Any] = {}
                for field_name in URI_FIELDS.get(cls.files_section, ()):
                    written = getattr(declared.spec, field_name)
                    path = declared.origin.path + (field_name,)
                    if isinstance(written, str):
                        template: Any = topology.templates.get(path, written)
                    else:
                        template = [topology.templates.get(path + (i,), uri) for i, uri in enumerate(written)]
                    if template != written and keys[field_name] not in declared.spec.parameters:
                        templates[keys[field_name]] = template
                yield cls.of_value(vhost.name, name, cls.value_of(declared.spec), templates or None), declared.origin

    @classmethod
    def from_definition(cls, entry: dict[str, Any], vhost: str | None = None) -> ParameterState | None:
        """A parameter of a definitions document; ``None`` for another component's."""
        if entry.get("component") != cls.component or not isinstance(entry.get("name"), str):
            return None
        return cls.of_value(entry["vhost"] if vhost is None else vhost, entry["name"], entry.get("value"))

    def to_definition(self) -> dict[str, Any]:
        """Its definitions entry, with its real URIs (the caller decides what may be written)."""
        return {"vhost": self.vhost, "component": self.component, "name": self.parameter, "value": self.secret_value}

    @classmethod
    def from_plan(cls, identity: dict[str, Any], props: dict[str, Any]) -> ParameterState:
        return from_saved_plan(cls, identity["vhost"], identity["name"], identity.get("uris"), props)

    def declare(self, client: Any) -> None:
        """Create or change it in place, with its real URIs."""
        client.put_parameter(self.component, self.vhost, self.parameter, self.secret_value)

    def remove(self, client: Any) -> None:
        client.delete_parameter(self.component, self.vhost, self.parameter)


@dataclass(frozen=True)
class ShovelState(ParameterState):
    kind: ClassVar[str] = "shovel"
    component: ClassVar[str] = SHOVEL
    files_section: ClassVar[str] = "shovels"
    model: ClassVar[str] = "Shovel"
    keys: ClassVar[dict[str, str]] = SHOVEL_KEYS
    value_of = staticmethod(shovel_value)


@dataclass(frozen=True)
class FederationUpstreamState(ParameterState):
    kind: ClassVar[str] = "federation_upstream"
    component: ClassVar[str] = UPSTREAM
    files_section: ClassVar[str] = "federation_upstreams"
    model: ClassVar[str] = "FederationUpstream"
    keys: ClassVar[dict[str, str]] = UPSTREAM_KEYS
    value_of = staticmethod(upstream_value)


@dataclass(frozen=True)
class FederationUpstreamSetState(ParameterState):
    kind: ClassVar[str] = "federation_upstream_set"
    component: ClassVar[str] = UPSTREAM_SET
    files_section: ClassVar[str] = "federation_upstream_sets"
    model: ClassVar[str] = "UpstreamSetMember"
    keys: ClassVar[dict[str, str]] = UPSTREAM_KEYS
    value_of = staticmethod(upstream_set_value)


PARAMETER_KINDS: dict[str, type[ParameterState]] = {
    cls.kind: cls for cls in (ShovelState, FederationUpstreamState, FederationUpstreamSetState)}
"""The parameter kinds, by kind (their component is :attr:`ParameterState.component`)."""
PARAMETER_COMPONENTS: dict[str, type[ParameterState]] = {cls.component: cls for cls in PARAMETER_KINDS.values()}
MODEL_KEYS = {cls.model: cls.keys for cls in PARAMETER_KINDS.values()}
"""The field → broker key table of each model of the files' parameters (docs and schema show the keys)."""


def from_saved_plan(cls: type[ParameterState], vhost: str, name: str, templates: dict[str, Any] | None,
                    props: dict[str, Any]) -> ParameterState:
    """A parameter from a saved plan: its real URIs come from their templates, substituted again from the
    environment (a saved plan never holds a password); the masked value is what was planned."""
    value = props.get("value")
    real = value
    if templates and isinstance(value, dict):
        variables = Variables()
        real = dict(value)
        for key, template in templates.items():
            written = [template] if isinstance(template, str) else list(template)
            uris = []
            for text in written:
                uri, problems = variables.substitute(text, environment_only=True)
                if problems:
                    raise TopologyError(f"{cls.kind} {vhost}/{name}: {problems[0]} (the plan file never holds URIs' secrets)")
                if any(p == redact.MASK for p in passwords(cls.component, {key: str(uri)}) if p):
                    raise TopologyError(f"{cls.kind} {vhost}/{name}: a URI's password was masked in the plan file: "
                                        "apply from the files")
                redact.register_url(str(uri))
                uris.append(str(uri))
            real[key] = uris[0] if isinstance(template, str) else uris
        if masked(cls.component, canonical_value(cls.component, real)) != value:
            raise TopologyError(f"{cls.kind} {vhost}/{name}: a URI's environment variable holds another URI than when "
                                "the plan was made: make the plan again")
    return cls(vhost=vhost, parameter=name, value=value, credentials=props.get("credentials"), secret_value=real,
               templates=templates)


def resolve_credentials(desired: Any, live: Any) -> None:
    """Mark each declared shovel or upstream whose URI passwords differ from the broker's as
    ``credentials: changed`` (the masked URIs alone cannot show it). Both are
    :class:`topology.state.State`; only ``desired`` is changed."""
    declared = [(key, want) for key, want in desired.objects.items()
                if isinstance(want, ParameterState) and want.credentials is not None]
    for key, want in declared:
        have = live.objects.get(key)
        if not isinstance(have, ParameterState):
            continue
        if passwords(want.component, want.secret_value) != passwords(have.component, have.secret_value):
            desired.objects[key] = replace(want, credentials=PASSWORD_CHANGED)
