"""Pydantic models of the file format, one class per object kind.

These models describe the *file format*: they accept friendly fields (``message_ttl:
30s``) and reject unknown keys. They give the messages of an invalid file and the JSON Schema;
a valid file's common kinds are built without them (:mod:`topology.model.specs`), with the same
fields and defaults. :mod:`topology.state` turns either into the canonical objects that are
compared with the broker.
"""

from __future__ import annotations

from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, WithJsonSchema, model_validator
from typing_extensions import Annotated

from topology.model.specs import DESTINATION_TYPES
from topology.model.values import parse_duration, parse_size
from topology.rules.limits import USER_LIMITS, VHOST_LIMITS
from topology.rules.policies import APPLY_TO_TYPES
from topology.rules.queues import MAX_AGE_PATTERN, QUEUE_TYPES, field_choices
from topology.variables import Substituted, typed

QueueType = Literal[QUEUE_TYPES]  # type: ignore[valid-type]
VhostLimit = Literal[VHOST_LIMITS]  # type: ignore[valid-type]
ApplyTo = Literal[tuple(APPLY_TO_TYPES)]  # type: ignore[misc]
Overflow = Literal[field_choices("overflow")]  # type: ignore[misc]
DeadLetterStrategy = Literal[field_choices("dead_letter_strategy")]  # type: ignore[misc]
QueueMode = Literal[field_choices("queue_mode")]  # type: ignore[misc]
LeaderLocator = Literal[field_choices("leader_locator")]  # type: ignore[misc]
DestinationType = Literal[DESTINATION_TYPES]  # type: ignore[misc]


def _amount_schema(what: str, unit_pattern: str, description: str) -> WithJsonSchema:
    """The schema of a duration or a size: a whole number, a number with a unit, or text with variables."""
    return WithJsonSchema({
        "anyOf": [
            {"type": "integer", "minimum": 0},
            {"type": "string", "pattern": rf"^\s*[0-9]+\s*{unit_pattern}?\s*$"},
            {"type": "string", "pattern": r"\$\{", "description": f"text with ${{VARIABLES}}: a {what} once substituted"},
        ],
        "description": description,
    })


_duration_schema = _amount_schema("duration", "(ms|s|m|h|d)", "Milliseconds, or a number with a unit: 500ms, 30s, 5m, 1h, 1d.")
_size_schema = _amount_schema("size", "([bB]|[kKmMgGtT][iI]?[bB])", "Bytes, or a number with a unit: B, KB, MB, GB, TB "
                              "(powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024).")


def _has_substituted(value: Any) -> bool:
    if isinstance(value, Substituted):
        return True
    if isinstance(value, dict):
        return any(isinstance(v, Substituted) for v in value.values())
    return False


def _type_for(annotation: Any, value: Any) -> Any:
    """``value`` with its :class:`Substituted` parts typed for a field of type ``annotation``."""
    if isinstance(value, Substituted):
        return str(value) if value.text or _wants_text(annotation) else typed(value)
    values = _map_values(annotation)
    if isinstance(value, dict) and values is not None:
        text = values is not Any and _wants_text(values)
        return {k: (str(v) if v.text or text else typed(v)) if isinstance(v, Substituted) else v
                for k, v in value.items()}
    return value


def _wants_text(annotation: Any) -> bool:
    """Whether a field of this type holds text (``str`` or ``str | None``)."""
    arguments = [a for a in get_args(annotation) if a is not type(None)] if get_origin(annotation) in (Union, UnionType) else [annotation]
    return arguments == [str]


def _map_values(annotation: Any) -> Any:
    """The type of a map field's values (``Any`` for raw arguments and policy definitions; ``int``
    for limits), or ``None`` when the field is no map (``dict[...] | None`` counts as a map)."""
    arguments = [a for a in get_args(annotation) if a is not type(None)] if get_origin(annotation) in (Union, UnionType) else [annotation]
    if len(arguments) == 1 and get_origin(arguments[0]) is dict:
        return get_args(arguments[0])[1]
    return None


Duration = Annotated[int, BeforeValidator(parse_duration)]
"""A duration in milliseconds (``30s`` in a file becomes 30000)."""

Size = Annotated[int, BeforeValidator(parse_size)]
"""A size in bytes (``10MiB`` in a file becomes 10485760)."""

DurationField = Annotated[Duration, _duration_schema]
SizeField = Annotated[Size, _size_schema]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _type_variables(cls, data: Any, info: ValidationInfo) -> Any:
        """Give each value that was exactly one ``${...}`` reference the type its field expects
        (nothing to do where the context says the document has no references: the common case,
        once per object of a large file)."""
        if info.context is NO_REFERENCES or not isinstance(data, dict) or not any(
                _has_substituted(v) for v in data.values()):
            return data
        typed_data = dict(data)
        for name, value in data.items():
            field = cls.model_fields.get(name)
            if field is not None:
                typed_data[name] = _type_for(field.annotation, value)
        return typed_data


class Exchange(_Strict):
    """An exchange. Any property change needs the exchange to be replaced."""

    type: str = Field(description="direct, fanout, topic, headers, or a plugin type starting with x- (x-delayed-message, "
                                   "which also needs the x-delayed-type argument).")
    durable: bool = Field(True, description="Survives a broker restart.")
    auto_delete: bool = Field(False, description="Deleted when its last binding is removed.")
    internal: bool = Field(False, description="Cannot be published to directly: only other exchanges publish to it.")
    alternate_exchange: str | None = Field(None, description="Where messages that match no binding go (argument "
                                             "alternate-exchange); declared in the vhost, or a built-in amq.* exchange.")
    arguments: dict[str, Any] = Field(default_factory=dict, description="Raw exchange arguments.")


class Queue(_Strict):
    """A queue. Friendly fields map to x-arguments; any change needs the queue to be replaced."""

    type: QueueType | None = Field(None, description="x-queue-type; default: the vhost's default_queue_type, else classic.")
    durable: bool = Field(True, description="Survives a broker restart (quorum and stream queues must be durable).")
    auto_delete: bool = Field(False, description="Deleted when its last consumer goes (not for quorum or stream queues).")
    message_ttl: DurationField | None = Field(None, description="x-message-ttl: how long a message may stay in the queue.")
    expires: DurationField | None = Field(None, description="x-expires: the queue is deleted after being unused this long (> 0).")
    max_length: int | None = Field(None, ge=0, description="x-max-length: most messages held.")
    max_length_bytes: SizeField | None = Field(None, description="x-max-length-bytes: most bytes of message bodies held.")
    overflow: Overflow | None = Field(
        None, description="x-overflow: what happens when a length limit is reached (quorum queues ignore "
                          "reject-publish-dlx, so it is refused there)."
    )
    dead_letter_exchange: str | None = Field(None, description="x-dead-letter-exchange: an exchange declared in the vhost "
                                               "('' is the default exchange).")
    dead_letter_routing_key: str | None = Field(None, description="x-dead-letter-routing-key (default: the message's own).")
    dead_letter_strategy: DeadLetterStrategy | None = Field(
        None, description="x-dead-letter-strategy (quorum queues)."
    )
    max_priority: int | None = Field(None, ge=0, le=255, description="x-max-priority (classic queues): 0 to 255.")
    single_active_consumer: bool | None = Field(None, description="x-single-active-consumer.")
    delivery_limit: int | None = Field(
        None, description="x-delivery-limit (quorum queues): deliveries before a message is dead-lettered or dropped; "
                          "-1: no limit (RabbitMQ 4.0 and later, where the default is 20).")
    initial_group_size: int | None = Field(
        None, ge=1, description="x-quorum-initial-group-size (quorum) or x-initial-cluster-size (stream)."
    )
    max_age: str | None = Field(
        None, pattern=MAX_AGE_PATTERN, description="x-max-age (streams): a number and one of Y, M, D, h, m, s, e.g. 7D."
    )
    queue_mode: QueueMode | None = Field(None, description="x-queue-mode (classic queues).")
    leader_locator: LeaderLocator | None = Field(
        None, description="x-queue-leader-locator: where the queue's leader is placed (quorum and stream queues; "
                          "classic queues from RabbitMQ 4.0 on)."
    )
    arguments: dict[str, Any] = Field(default_factory=dict, description="Raw x-arguments, always allowed.")


class Binding(_Strict):
    """A binding from an exchange to a queue or to another exchange."""

    source: str = Field(description="The source exchange: declared in the vhost, or a built-in amq.* exchange. The default "
                                 "exchange cannot be bound.")
    destination: str = Field(description="The destination queue or exchange, declared in the vhost.")
    destination_type: Literal[DESTINATION_TYPES] = Field(  # type: ignore[valid-type]
       "queue", description="queue or exchange.")
    routing_key: str = Field("", description="The binding key; a headers exchange ignores it, so one there is an error.")
    arguments: dict[str, Any] = Field(default_factory=dict, description="Binding arguments; for headers exchanges, x-match "
                                      "(all, any, all-with-x, any-with-x) and the headers to match.")


class Policy(_Strict):
    """A policy; changed in place."""

    pattern: str = Field(description="Regular expression matched against object names.")
    apply_to: ApplyTo = Field("all", description="Which objects the policy applies to; classic_queues, quorum_queues and "
                                                 "streams from RabbitMQ 3.12 on.")
    priority: int = Field(0, description="The policy with the highest priority wins.")
    definition: dict[str, Any] = Field(description="The policy keys (not empty), e.g. ha-mode, message-ttl, "
                                                "dead-letter-exchange: see the list below.")


ShovelProtocol = Literal["amqp091", "amqp10", "local"]
AckMode = Literal["on-confirm", "on-publish", "no-ack"]
Uris = Annotated[str | list[str], Field(min_length=1)]


class Shovel(_Strict):
    """A dynamic shovel: moves messages from a source to a destination. Changed in place
    (the broker restarts it; with on-confirm, unacknowledged messages go back to the source)."""

    source_protocol: ShovelProtocol | None = Field(None, description="amqp091 (the default), amqp10, or local (RabbitMQ 4.2+).")
    source_uri: Uris = Field(description="Required: one URI or a list (fail-over). From the environment (${SRC_URI}) "
                                         "when it holds a password; amqp:// alone is the local broker.")
    source_queue: str | None = Field(None, description="Consume from this queue: exactly one of source_queue and source_exchange (AMQP 0-9-1).")
    source_queue_arguments: dict[str, Any] | None = Field(None, description="Arguments for a source queue the shovel declares.")
    source_exchange: str | None = Field(None, description="Consume from a queue the shovel binds to this exchange.")
    source_exchange_key: str | None = Field(None, description="The routing key of that binding.")
    source_address: str | None = Field(None, description="The source address (AMQP 1.0 shovels).")
    source_consumer_arguments: dict[str, Any] | None = Field(None, description="Consumer arguments.")
    source_predeclared: bool | None = Field(None, description="Use the source queue as it is, without declaring it (RabbitMQ 4.0+).")
    prefetch_count: int | None = Field(None, ge=0, description="Unacknowledged messages in flight (the broker's default is 1000).")
    delete_after: Literal["never", "queue-length"] | Annotated[int, Field(ge=0)] | None = Field(
        None, description="never (the default), queue-length, or a number of messages; then the shovel deletes itself "
                          "(and the next apply creates it again).")
    destination_protocol: ShovelProtocol | None = Field(None, description="amqp091 (the default), amqp10, or local (RabbitMQ 4.2+).")
    destination_uri: Uris = Field(description="Required: one URI or a list (fail-over). From the environment when it holds a password.")
    destination_queue: str | None = Field(None, description="Publish to this queue: at most one of destination_queue and destination_exchange; neither: the message's own exchange and routing key.")
    destination_queue_arguments: dict[str, Any] | None = Field(None, description="Arguments for a destination queue the shovel declares.")
    destination_exchange: str | None = Field(None, description="Publish to this exchange.")
    destination_exchange_key: str | None = Field(None, description="With this routing key (default: the message's own).")
    destination_address: str | None = Field(None, description="The destination address (AMQP 1.0 shovels).")
    destination_predeclared: bool | None = Field(None, description="Use the destination queue as it is, without declaring it (RabbitMQ 4.0+).")
    add_forward_headers: bool | None = Field(None, description="Add the shovel's forwarding headers to each message.")
    add_timestamp_header: bool | None = Field(None, description="Add a timestamp header to each message.")
    publish_properties: dict[str, Any] | None = Field(None, description="Message properties to set on each message.")
    destination_properties: dict[str, Any] | None = Field(None, description="Message properties (AMQP 1.0 shovels).")
    destination_application_properties: dict[str, Any] | None = Field(None, description="Application properties (AMQP 1.0 shovels).")
    destination_message_annotations: dict[str, Any] | None = Field(None, description="Message annotations (AMQP 1.0 shovels).")
    ack_mode: AckMode | None = Field(None, description="on-confirm (the default: a message leaves the source once the destination confirms it), on-publish, or no-ack (can lose messages).")
    reconnect_delay: int | float | None = Field(None, ge=0, description="Seconds between reconnection attempts.")
    parameters: dict[str, Any] = Field(default_factory=dict, description="Raw shovel parameter keys, always allowed.")

    @model_validator(mode="after")
    def _source_and_destination(self) -> "Shovel":
        protocol = self.source_protocol or "amqp091"
        if protocol == "amqp091" and "src-queue" not in self.parameters and "src-exchange" not in self.parameters:
            if (self.source_queue is None) == (self.source_exchange is None):
                raise ValueError("give exactly one of source_queue and source_exchange")
        if self.destination_queue is not None and self.destination_exchange is not None:
            raise ValueError("give destination_queue or destination_exchange, not both")
        if isinstance(self.delete_after, int) and self.ack_mode == "no-ack":
            raise ValueError("ack_mode no-ack cannot be used with a numeric delete_after")
        _no_raw_uris(self.parameters, source_uri="src-uri", destination_uri="dest-uri")
        return self


def _no_raw_uris(raw: dict[str, Any], **fields: str) -> None:
    """URIs go in their own fields (whose passwords must come from the environment), not in raw parameters."""
    for field_name, key in fields.items():
        if key in raw:
            raise ValueError(f"give the URI as {field_name}, not as the raw parameter {key!r}")


class _UpstreamSettings(_Strict):
    exchange: str | None = Field(None, description="The upstream exchange (default: the federated exchange's name).")
    queue: str | None = Field(None, description="The upstream queue (default: the federated queue's name).")
    consumer_tag: str | None = Field(None, description="The consumer tag (queue federation).")
    prefetch_count: int | None = Field(None, ge=0, description="Unacknowledged messages in flight.")
    reconnect_delay: int | float | None = Field(None, ge=0, description="Seconds between reconnection attempts.")
    max_hops: int | None = Field(None, ge=1, description="How many federation links a message may cross (exchange federation).")
    expires: DurationField | None = Field(None, description="Expiry of the upstream's internal queue (a duration).")
    message_ttl: DurationField | None = Field(None, description="Message TTL of the upstream's internal queue (a duration).")
    trust_user_id: bool | None = Field(None, description="Pass on the user-id property of federated messages.")
    ack_mode: AckMode | None = Field(None, description="on-confirm (the default), on-publish, or no-ack (can lose messages).")
    resource_cleanup_mode: Literal["default", "never"] | None = Field(None, description="default, or never: keep the upstream's internal queue when the link goes.")
    ha_policy: str | None = Field(None, description="The internal queue's ha-policy (removed in RabbitMQ 3.13.1).")
    queue_type: Literal["classic", "quorum"] | None = Field(None, description="The type of the upstream's internal queue (RabbitMQ 3.13.1+).")
    bind_nowait: bool | None = Field(None, description="Bind without waiting for the broker's answer.")
    channel_use_mode: Literal["multiple", "single"] | None = Field(None, description="multiple (the default) or single channel per link.")
    parameters: dict[str, Any] = Field(default_factory=dict, description="Raw upstream keys, always allowed.")


class FederationUpstream(_UpstreamSettings):
    """A federation upstream: where federated exchanges and queues take messages from. Changed in place."""

    uri: Uris = Field(description="Required: one URI or a list (fail-over). From the environment (${UPSTREAM_URI}) when it holds a password.")

    @model_validator(mode="after")
    def _uri_field(self) -> "FederationUpstream":
        _no_raw_uris(self.parameters, uri="uri")
        return self


class UpstreamSetMember(_UpstreamSettings):
    """One upstream of an upstream set, with settings that override the upstream's."""

    upstream: str = Field(description="The federation upstream's name.")

    @model_validator(mode="after")
    def _no_uri(self) -> "UpstreamSetMember":
        if "uri" in self.parameters:
            raise ValueError("an upstream set names its upstreams; their URIs are set on the upstreams")
        return self


class Vhost(_Strict):
    """A virtual host and the objects declared in it."""

    description: str | None = Field(None, description="Vhost metadata: a description.")
    tags: list[str] | None = Field(None, description="Vhost metadata: tags (a tag cannot contain a comma).")
    default_queue_type: QueueType | None = Field(
        None, description="The type of the vhost's queues that declare none. The broker stores it when creating the vhost "
                          "(3.10.8+); an existing vhost's is changed in place only on 3.11+ (older brokers: a note in the "
                          "plan). Either way, queues declared without a type get it from the files."
    )
    tracing: bool | None = Field(None, description="Message tracing (the firehose, amq.rabbitmq.trace) on or off; left as "
                                              "it is when omitted.")
    limits: dict[VhostLimit, int] | None = Field(
        None, description="max-connections, max-queues (integers ≥ 0), enforced by the broker; a limit not listed is "
                          "removed; all left as they are when limits is omitted.")
    exchanges: dict[str, Exchange] = Field(default_factory=dict, description="Exchanges, keyed by name.")
    queues: dict[str, Queue] = Field(default_factory=dict, description="Queues, keyed by name.")
    bindings: list[Binding] = Field(default_factory=list, description="Bindings (they have no name).")
    policies: dict[str, Policy] = Field(default_factory=dict, description="Policies, keyed by name.")
    operator_policies: dict[str, Policy] = Field(
        default_factory=dict, description="Operator policies: limits that users' policies cannot override.")
    shovels: dict[str, Shovel] = Field(default_factory=dict, description="Dynamic shovels, keyed by name.")
    federation_upstreams: dict[str, FederationUpstream] = Field(
        default_factory=dict, description="Federation upstreams, keyed by name.")
    federation_upstream_sets: dict[str, list[UpstreamSetMember]] = Field(
        default_factory=dict, description="Federation upstream sets: a name and its upstreams.")
    ignore: list[str] = Field(
        default_factory=list,
        description="Name patterns of objects the tool leaves alone: never pruned, not listed as unmanaged. "
                    "Shell-style and case-sensitive (* any run of characters, ? one character, [abc] one of a set). "
                    "Applies to exchange, queue, policy, shovel and federation upstream (and set) names, and to "
                    "bindings from or to such objects; a declared object must not match one. Patterns from several "
                    "files add up.",
    )


HashingAlgorithm = Literal["rabbit_password_hashing_sha256", "rabbit_password_hashing_sha512", "rabbit_password_hashing_md5"]
UserLimit = Literal[USER_LIMITS]  # type: ignore[valid-type]


class Permission(_Strict):
    """A user's permissions in one vhost: regular expressions of the resource names it may use."""

    configure: str = Field(description="Resources the user may declare and delete (^$ for none).")
    write: str = Field(description="Resources the user may publish to or bind from (^$ for none).")
    read: str = Field(description="Resources the user may consume from or bind to (^$ for none).")


class TopicPermission(_Strict):
    """A user's routing-key permissions on one topic exchange."""

    write: str = Field(description="Routing keys the user may publish with (a regular expression).")
    read: str = Field(description="Routing keys the user may bind queues with (a regular expression).")


class User(_Strict):
    """A broker user. Its password is never read back: it is compared by hash."""

    password: str | None = Field(
        None, description="The password, from the environment: ${ORDERS_SVC_PASSWORD} (names ending in PASSWORD are "
                          "secret). A literal is refused unless allow_literal_password is true. Omitted (with "
                          "password_hash): an existing user's password is left as it is, and a new user gets none "
                          "(it cannot log in with a password).")
    password_hash: str | None = Field(
        None, description="A RabbitMQ password hash instead of password (base64 of a 4-byte salt and the digest), with "
                          "hashing_algorithm.")
    hashing_algorithm: HashingAlgorithm | None = Field(
        None, description="The algorithm of password_hash, or the one to hash password with (default: the broker's for "
                          "this user, else rabbit_password_hashing_sha256).")
    allow_literal_password: bool = Field(False, description="Accept a password written in the file itself.")
    tags: list[str] = Field(default_factory=list, description="administrator, monitoring, management, policymaker, or "
                                                            "your own.")
    limits: dict[UserLimit, int] = Field(default_factory=dict, description="max-connections, max-channels (a limit not "
                                                                         "declared is removed).")
    permissions: dict[str, Permission] = Field(default_factory=dict, description="Permissions by vhost: configure, "
                                               "write and read, each a regular expression (^$ for nothing).")
    topic_permissions: dict[str, dict[str, TopicPermission]] = Field(
        default_factory=dict, description="Topic permissions by vhost, then by exchange: write and read regular "
                                          "expressions of routing keys.")


class RoutingTest(_Strict):
    """A message and the exact set of queues it must reach (``topology test``)."""

    name: str | None = Field(None, description="What the test checks (default: the message, described).")
    vhost: str = Field(description="The vhost the message is published in.")
    exchange: str = Field(description="The exchange it is published to ('' for the default exchange).")
    routing_key: str = Field("", description="Its routing key.")
    headers: dict[str, Any] = Field(default_factory=dict, description="Its headers (CC and BCC add routing keys).")
    queues: list[str] = Field(description="Every queue it must reach, and no other ([] for none).")
    refused: bool = Field(False, description="The publish must be refused (an internal exchange).")


class TopologyFile(_Strict):
    """One topology file. Several files (and directories of them) are merged."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,
        json_schema_extra={
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "topology file",
        },
    )

    vhosts: dict[str, Vhost] = Field(default_factory=dict, description="Virtual hosts, keyed by name.")
    users: dict[str, User] = Field(default_factory=dict, description="Users, keyed by name.")
    manage_all_users: bool | None = Field(
        None, description="The files declare every user of the broker: the others are listed as unmanaged and deleted "
                          "by --prune (never the user the tool connects as, nor those matching ignore_users).")
    ignore_users: list[str] = Field(
        default_factory=list, description="Name patterns (* ? [abc]) of users the tool leaves alone under manage_all_users.")
    global_parameters: dict[str, Any] = Field(
        default_factory=dict, description="Cluster-wide runtime parameters, such as cluster_name.")
    tests: list[RoutingTest] = Field(
        default_factory=list, description="Routing tests: messages and the queues they must reach (topology test); "
                                          "plan and apply ignore them.")


NO_REFERENCES: dict[str, Any] = {"references": False}
"""The validation context of a document without ``${...}`` references (``model_validate(data,
context=NO_REFERENCES)``): its values need no typing."""
