"""The declared objects as custom resources of the RabbitMQ Messaging Topology Operator (pure).

One resource per object (``rabbitmq.com/v1beta1``: Vhost, Exchange, Queue, Binding, Policy,
OperatorPolicy, User, Permission, TopicPermission, Shovel, Federation), each with a
``rabbitmqClusterReference``. The field names are the operator's (its ``api/v1beta1`` types,
checked at release v1.20); :data:`FIELDS` lists them, and the tests check every rendered
resource against that list.

Credentials live in Kubernetes Secrets that the resources name: a User's
``importCredentialsSecret`` (keys ``username`` and ``password`` or ``passwordHash``), a
Shovel's ``uriSecret`` (``srcUri``, ``destUri``) and a Federation's (``uri``); several URIs are
joined with commas, as the operator splits them. The Secrets are rendered too, following the
same secrets rule as the definitions (:mod:`topology.render.definitions`): ``${VARIABLES}`` by
default, real values (a password only as a locally made hash) with ``resolve``.

What the operator cannot express decides by what it does. A setting that changes what the
broker does (an internal exchange, federation upstream sets, global parameters, shovel or
upstream keys it has no field for, the impersonator tag) goes in
:attr:`Rendered.unsupported`, and so does each resource that needs one of those (a binding of
an internal exchange, the permissions of a user left out, a policy naming an upstream set).
Metadata that changes nothing the broker does (a vhost's description, user tags that are
labels only) goes in :attr:`Rendered.dropped`: left out with a warning.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from topology.passwords import DEFAULT_ALGORITHM, SHA512
from topology.rules.names import USER_TAGS_ACTED_ON
from topology.render.definitions import Rendered, Secrets
from topology.kinds import (
    BindingState,
    ExchangeState,
    FederationUpstreamSetState,
    FederationUpstreamState,
    GlobalParameterState,
    OperatorPolicyState,
    PermissionState,
    PolicyState,
    QueueState,
    Resource,
    ShovelState,
    TopicPermissionState,
    UserState,
)
from topology.state import State

API_VERSION = "rabbitmq.com/v1beta1"
KIND_ORDER = ("Vhost", "Exchange", "Queue", "Binding", "Policy", "OperatorPolicy", "User", "Permission",
              "TopicPermission", "Federation", "Shovel")
"""The order resources are written in: what an object needs comes before it."""

FIELDS: dict[str, frozenset[str]] = {
    "Vhost": frozenset({"name", "tracing", "tags", "defaultQueueType", "rabbitmqClusterReference", "deletionPolicy",
                        "limits"}),
    "Exchange": frozenset({"name", "vhost", "type", "durable", "autoDelete", "arguments", "rabbitmqClusterReference"}),
    "Queue": frozenset({"name", "vhost", "type", "durable", "autoDelete", "deleteIfEmpty", "deleteIfUnused", "arguments",
                        "rabbitmqClusterReference", "deletionPolicy"}),
    "Binding": frozenset({"vhost", "source", "destination", "destinationType", "routingKey", "arguments",
                          "rabbitmqClusterReference"}),
    "Policy": frozenset({"name", "vhost", "pattern", "applyTo", "priority", "definition", "rabbitmqClusterReference"}),
    "OperatorPolicy": frozenset({"name", "vhost", "pattern", "applyTo", "priority", "definition",
                                 "rabbitmqClusterReference"}),
    "User": frozenset({"tags", "rabbitmqClusterReference", "importCredentialsSecret", "limits"}),
    "Permission": frozenset({"user", "userReference", "vhost", "permissions", "rabbitmqClusterReference"}),
    "TopicPermission": frozenset({"user", "userReference", "vhost", "permissions", "rabbitmqClusterReference"}),
    "Shovel": frozenset({
        "name", "vhost", "rabbitmqClusterReference", "uriSecret", "ackMode", "prefetchCount", "reconnectDelay",
        "addForwardHeaders", "deleteAfter", "srcDeleteAfter", "srcPrefetchCount", "destAddForwardHeaders",
        "destAddTimestampHeader", "srcQueueArgs", "destQueueArgs", "destProtocol", "destQueue", "destExchange",
        "destExchangeKey", "destPublishProperties", "destAddress", "destApplicationProperties", "destProperties",
        "destMessageAnnotations", "srcProtocol", "srcQueue", "srcExchange", "srcExchangeKey", "srcConsumerArgs",
        "srcAddress", "deletionPolicy"}),
    "Federation": frozenset({"name", "vhost", "rabbitmqClusterReference", "uriSecret", "prefetch-count", "ackMode",
                             "expires", "messageTTL", "maxHops", "reconnectDelay", "trustUserId", "exchange", "queue",
                             "deletionPolicy", "queueType", "resourceCleanupMode"}),
}
"""Every kind's ``spec`` fields, as the operator's types name them."""

NESTED_FIELDS: dict[tuple[str, str], frozenset[str]] = {
    ("Vhost", "limits"): frozenset({"connections", "queues"}),
    ("User", "limits"): frozenset({"connections", "channels"}),
    ("Permission", "permissions"): frozenset({"configure", "write", "read"}),
    ("TopicPermission", "permissions"): frozenset({"exchange", "read", "write"}),
}
CLUSTER_REFERENCE_FIELDS = frozenset({"name", "namespace", "connectionSecret"})
ENUMS: dict[tuple[str, str], frozenset[str]] = {
    ("Vhost", "defaultQueueType"): frozenset({"quorum", "classic", "stream"}),
    ("Vhost", "deletionPolicy"): frozenset({"delete", "retain"}),
    ("Binding", "destinationType"): frozenset({"exchange", "queue"}),
    ("Policy", "applyTo"): frozenset({"queues", "classic_queues", "quorum_queues", "streams", "exchanges", "all"}),
    ("OperatorPolicy", "applyTo"): frozenset({"queues", "classic_queues", "quorum_queues", "streams"}),
    ("Shovel", "ackMode"): frozenset({"on-confirm", "on-publish", "no-ack"}),
    ("Shovel", "srcProtocol"): frozenset({"amqp091", "amqp10"}),
    ("Shovel", "destProtocol"): frozenset({"amqp091", "amqp10"}),
    ("Federation", "ackMode"): frozenset({"on-confirm", "on-publish", "no-ack"}),
    ("Federation", "queueType"): frozenset({"classic", "quorum"}),
    ("Federation", "resourceCleanupMode"): frozenset({"default", "never"}),
}
"""The values the operator's schema allows, where it lists them."""
USER_TAGS = frozenset({"management", "policymaker", "monitoring", "administrator"})
"""The user tags the operator's User accepts."""

SHOVEL_FIELDS = {
    "src-protocol": "srcProtocol", "src-queue": "srcQueue", "src-queue-args": "srcQueueArgs",
    "src-exchange": "srcExchange", "src-exchange-key": "srcExchangeKey", "src-address": "srcAddress",
    "src-consumer-args": "srcConsumerArgs", "src-prefetch-count": "srcPrefetchCount",
    "src-delete-after": "srcDeleteAfter", "dest-protocol": "destProtocol", "dest-queue": "destQueue",
    "dest-queue-args": "destQueueArgs", "dest-exchange": "destExchange", "dest-exchange-key": "destExchangeKey",
    "dest-address": "destAddress", "dest-add-forward-headers": "destAddForwardHeaders",
    "dest-add-timestamp-header": "destAddTimestampHeader", "dest-publish-properties": "destPublishProperties",
    "dest-properties": "destProperties", "dest-application-properties": "destApplicationProperties",
    "dest-message-annotations": "destMessageAnnotations", "ack-mode": "ackMode", "reconnect-delay": "reconnectDelay",
}
"""The broker's shovel keys → the Shovel fields (the URIs go to its Secret)."""
UPSTREAM_FIELDS = {
    "exchange": "exchange", "queue": "queue", "prefetch-count": "prefetch-count", "reconnect-delay": "reconnectDelay",
    "max-hops": "maxHops", "expires": "expires", "message-ttl": "messageTTL", "trust-user-id": "trustUserId",
    "ack-mode": "ackMode", "resource-cleanup-mode": "resourceCleanupMode", "queue-type": "queueType",
}
"""The broker's federation upstream keys → the Federation fields."""
SHOVEL_URIS = {"src-uri": "srcUri", "dest-uri": "destUri"}
UPSTREAM_URIS = {"uri": "uri"}
_NAME_MAX = 253


def render_kubernetes(state: State, cluster_name: str, namespace: str | None = None,
                      secrets: Secrets | None = None) -> Rendered:
    """The custom resources (and their Secrets) of the desired ``state``, for the RabbitmqCluster ``cluster_name``."""
    secrets = secrets or Secrets()
    result = Rendered()
    names = _Names()
    reference = {"name": cluster_name}
    resources: list[tuple[str, tuple[str, ...], dict[str, Any]]] = []
    for name in sorted(state.vhosts):
        vhost = state.vhosts[name]
        spec: dict[str, Any] = {"name": name}
        if vhost.tracing:
            spec["tracing"] = True
        if vhost.tags:
            spec["tags"] = list(vhost.tags)
        if vhost.default_queue_type is not None:
            spec["defaultQueueType"] = vhost.default_queue_type
        if vhost.limits:
            spec["limits"] = {{"max-connections": "connections", "max-queues": "queues"}[k]: v
                              for k, v in vhost.limits.items()}
        if name == "/":  # deleting the resource must not delete the default vhost
            spec["deletionPolicy"] = "retain"
        if vhost.description:
            result.dropped.append(f"vhost {name}: description left out (the Vhost resource has no field for it; "
                                  "it changes nothing the broker does)")
        resources.append(("Vhost", (name,), spec))
    made_for: list[tuple[Resource, tuple[str, tuple[str, ...], dict[str, Any]]]] = []
    left_out: set[tuple[Any, ...]] = set()
    for resource in sorted(state.objects.values(), key=lambda r: r.key):
        made = _resource(resource, secrets, result)
        if made is None:
            left_out.add(resource.key)
        else:
            made_for.append((resource, made))
    for resource, made in made_for:
        missing = _needs(resource, left_out)
        if missing:
            result.unsupported.append(f"{resource.kind.replace('_', ' ')} {resource.where}: {missing} cannot be "
                                      "rendered, so neither can this")
        else:
            resources.append(made)
    resources.sort(key=lambda item: KIND_ORDER.index(item[0]))  # stable: by name within a kind
    for kind, parts, spec in resources:
        names.reserve(kind, parts)
    for kind, parts, spec in resources:
        secret = spec.pop("_secret", None)
        name = names.name(kind, parts)
        if secret is not None:
            secret_name = f"{name}-{secret.pop('_suffix')}"[:_NAME_MAX]
            field_name = "importCredentialsSecret" if kind == "User" else "uriSecret"
            spec[field_name] = {"name": secret_name}
            result.documents.append(_document("Secret", secret_name, namespace, None, secret, api_version="v1"))
        spec["rabbitmqClusterReference"] = dict(reference)
        result.documents.append(_document(kind, name, namespace, spec))
    return result


def _document(kind: str, name: str, namespace: str | None, spec: dict[str, Any] | None,
              string_data: dict[str, str] | None = None, api_version: str = API_VERSION) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    document: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "metadata": metadata}
    if spec is not None:
        document["spec"] = spec
    if string_data is not None:
        document["type"] = "Opaque"
        document["stringData"] = string_data
    return document


def _needs(resource: Resource, left_out: set[tuple[Any, ...]]) -> str | None:
    """What ``resource`` depends on that is not rendered (its user, its exchanges, its upstream set)."""
    if isinstance(resource, (PermissionState, TopicPermissionState)) and ("user", "", resource.user) in left_out:
        return f"its user {resource.user}"
    if isinstance(resource, BindingState):
        ends = [resource.source] + ([resource.destination] if resource.destination_type == "exchange" else [])
        for exchange in ends:
            if exchange and ("exchange", resource.vhost, exchange) in left_out:
                return f"exchange {exchange!r}"
    if isinstance(resource, PolicyState):
        upstream_set = resource.definition.get("federation-upstream-set")
        if isinstance(upstream_set, str) and ("federation_upstream_set", resource.vhost, upstream_set) in left_out:
            return f"federation upstream set {upstream_set!r}"
    return None


def _resource(resource: Resource, secrets: Secrets, result: Rendered) -> tuple[str, tuple[str, ...], dict[str, Any]] | None:
    """(kind, name parts, spec) of one object; ``_secret`` in the spec holds its Secret's data."""
    vhost = resource.vhost
    if isinstance(resource, ExchangeState):
        if resource.internal:
            result.unsupported.append(f"exchange {resource.where}: internal (the Exchange resource has no field for it)")
            return None
        spec: dict[str, Any] = {"name": resource.exchange, "vhost": resource.vhost, "type": resource.type,
                                "durable": resource.durable, "autoDelete": resource.auto_delete}
        if resource.arguments:
            spec["arguments"] = resource.arguments
        return "Exchange", (vhost, resource.exchange), spec
    if isinstance(resource, QueueState):
        spec = {"name": resource.queue, "vhost": resource.vhost, "type": resource.type, "durable": resource.durable,
                "autoDelete": resource.auto_delete}
        if resource.arguments:
            spec["arguments"] = resource.arguments
        return "Queue", (vhost, resource.queue), spec
    if isinstance(resource, BindingState):
        spec = {"vhost": resource.vhost, "source": resource.source, "destination": resource.destination,
                "destinationType": resource.destination_type, "routingKey": resource.routing_key}
        if resource.arguments:
            spec["arguments"] = resource.arguments
        return "Binding", (vhost, resource.source, resource.destination, "\0" + resource.name), spec
    if isinstance(resource, PolicyState):  # and operator policies
        kind = "OperatorPolicy" if isinstance(resource, OperatorPolicyState) else "Policy"
        apply_to = resource.apply_to
        if kind == "OperatorPolicy" and apply_to == "all":  # operator policy keys act on queues alone
            apply_to = "queues"
            result.notes.append(f"operator policy {resource.where}: apply-to all written as queues (the resource's "
                                "way to say the same: operator policy keys act on queues only)")
        if apply_to not in ENUMS[(kind, "applyTo")]:
            result.unsupported.append(f"{resource.kind.replace('_', ' ')} {resource.where}: apply-to "
                                      f"{resource.apply_to!r} (the {kind} resource accepts "
                                      f"{', '.join(sorted(ENUMS[(kind, 'applyTo')]))})")
            return None
        return kind, (vhost, resource.policy), {
            "name": resource.policy, "vhost": resource.vhost, "pattern": resource.pattern, "applyTo": apply_to,
            "priority": resource.priority, "definition": resource.definition}
    if isinstance(resource, UserState):
        return _user(resource, secrets, result)
    if isinstance(resource, PermissionState):
        return "Permission", (resource.user, vhost), {
            "user": resource.user, "vhost": resource.vhost,
            "permissions": {"configure": resource.configure, "write": resource.write, "read": resource.read}}
    if isinstance(resource, TopicPermissionState):
        return "TopicPermission", (resource.user, vhost, resource.exchange), {
            "user": resource.user, "vhost": resource.vhost,
            "permissions": {"exchange": resource.exchange, "write": resource.write, "read": resource.read}}
    if isinstance(resource, ShovelState):
        return _parameter("Shovel", resource, SHOVEL_FIELDS, SHOVEL_URIS, secrets, result)
    if isinstance(resource, FederationUpstreamState):
        return _parameter("Federation", resource, UPSTREAM_FIELDS, UPSTREAM_URIS, secrets, result)
    if isinstance(resource, FederationUpstreamSetState):
        result.unsupported.append(f"federation upstream set {resource.where} (the operator has no resource for it)")
        return None
    if isinstance(resource, GlobalParameterState):
        result.unsupported.append(f"global parameter {resource.parameter} (the operator has no resource for it)")
        return None
    raise TypeError(f"cannot render {resource!r}")  # pragma: no cover - every kind is handled above


def _user(user: UserState, secrets: Secrets, result: Rendered) -> tuple[str, tuple[str, ...], dict[str, Any]] | None:
    odd = [tag for tag in user.tags if tag not in USER_TAGS]
    acted_on = [tag for tag in odd if tag in USER_TAGS_ACTED_ON]
    if acted_on:
        result.unsupported.append(f"user {user.user}: tag(s) {', '.join(acted_on)} (the User resource accepts "
                                  f"{', '.join(sorted(USER_TAGS))})")
    labels = [tag for tag in odd if tag not in USER_TAGS_ACTED_ON]
    if labels:
        result.dropped.append(f"user {user.user}: tag(s) {', '.join(labels)} left out (the User resource accepts "
                              f"{', '.join(sorted(USER_TAGS))}; labels only, they change nothing the broker does)")
    spec: dict[str, Any] = {}
    tags = [tag for tag in user.tags if tag in USER_TAGS]
    if tags:
        spec["tags"] = tags
    if user.limits:
        spec["limits"] = {{"max-connections": "connections", "max-channels": "channels"}[k]: v
                          for k, v in user.limits.items()}
    data: dict[str, str] = {"_suffix": "credentials", "username": user.user}
    if user.declared_hash is not None and (user.hashing_algorithm or DEFAULT_ALGORITHM) != SHA512:
        result.unsupported.append(f"user {user.user}: a password_hash of {user.hashing_algorithm or DEFAULT_ALGORITHM} "
                                  "(the operator imports SHA-512 hashes only)")
        return None
    written = secrets.password(user, SHA512, result)  # the operator reads SHA-512 hashes only
    if written is None:
        data["passwordHash"] = ""  # no password: the operator's way to say so (an absent key makes one up)
    else:
        data["password" if written[0] == "password" else "passwordHash"] = written[1]
    spec["_secret"] = data
    return "User", (user.user,), spec


def _parameter(kind: str, resource: Any, fields: dict[str, str], uris: dict[str, str], secrets: Secrets,
               result: Rendered) -> tuple[str, tuple[str, ...], dict[str, Any]] | None:
    value = secrets.parameter_value(resource, result)
    if not isinstance(value, dict):
        return None
    spec: dict[str, Any] = {"name": resource.parameter, "vhost": resource.vhost}
    data: dict[str, str] = {"_suffix": "uri" if kind == "Federation" else "uris"}
    left: list[str] = []
    for key, item in sorted(value.items()):
        if key in uris:
            items = item if isinstance(item, list) else [item]
            if any("," in str(uri) for uri in items):  # the operator splits the Secret's value on commas
                result.unsupported.append(f"{resource.kind.replace('_', ' ')} {resource.where}: a URI of {key} holds "
                                          "a comma (the operator reads a comma as the start of the next URI)")
                return None
            data[uris[key]] = ",".join(str(uri) for uri in items)
        elif key in fields:
            spec[fields[key]] = str(item) if fields[key] in ("deleteAfter", "srcDeleteAfter") else item
        else:
            left.append(key)
    if left:
        result.unsupported.append(f"{resource.kind.replace('_', ' ')} {resource.where}: {', '.join(left)} "
                                  f"(the {kind} resource has no field for {'it' if len(left) == 1 else 'them'})")
        return None
    spec["_secret"] = data
    return kind, (resource.vhost, resource.parameter), spec


class _Names:
    """Kubernetes names (DNS subdomains: dot-separated labels of a-z, 0-9 and inner dashes)
    for the objects: the readable name where it is already valid and unique, else a cleaned
    one with a short hash of the exact identity (``/`` and ``""`` read ``default`` there)."""

    def __init__(self) -> None:
        self.bases: dict[tuple[str, str], int] = {}

    @staticmethod
    def _clean(text: str) -> str:
        labels = (re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]+", "-", label)).strip("-") for label in text.split("."))
        return ".".join(label for label in labels if label)

    @classmethod
    def _base(cls, parts: tuple[str, ...]) -> str:
        readable = ["default" if p in ("/", "") else p for p in parts if not p.startswith("\0")]
        return cls._clean(".".join(readable).lower()) or "x"

    def reserve(self, kind: str, parts: tuple[str, ...]) -> None:
        key = (kind, self._base(parts))
        self.bases[key] = self.bases.get(key, 0) + 1

    def name(self, kind: str, parts: tuple[str, ...]) -> str:
        base = self._base(parts)
        exact = ".".join(parts)
        if exact == base and self.bases[(kind, base)] == 1 and len(base) <= _NAME_MAX - 12:
            return base
        digest = hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()[:8]
        return f"{self._clean(base[:_NAME_MAX - 21]) or 'x'}-{digest}"

