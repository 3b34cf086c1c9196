"""Every kind of object converts to and from each of its forms without loss (pure), and the
objects rendered from the files read back as the same objects through the broker-side readers."""

from __future__ import annotations

import dataclasses
import textwrap

import pytest

from topology.broker.live import access_state, definitions_state, vhost_definitions
from topology.kinds import (
    KINDS,
    BindingState,
    ExchangeState,
    FederationUpstreamSetState,
    FederationUpstreamState,
    GlobalParameterState,
    OperatorPolicyState,
    PermissionState,
    PolicyState,
    QueueState,
    ShovelState,
    TopicPermissionState,
    UserState,
    VhostState,
    from_plan,
)
from topology.loader import load_valid
from topology.render.definitions import RESOLVE, Secrets, render_definitions
from topology.state import State, desired_state

SAMPLES = [
    VhostState(vhost="v", description="orders", tags=("a", "b"), default_queue_type="quorum", tracing=True),
    VhostState(vhost="plain", description="", tags=(), tracing=False),
    ExchangeState(vhost="v", exchange="events", type="topic", durable=True, auto_delete=False, internal=True,
                  arguments={"alternate-exchange": "unrouted"}),
    ExchangeState(vhost="v", exchange="headers", type="headers", durable=False, auto_delete=True),
    QueueState(vhost="v", queue="orders", type="quorum", arguments={"x-delivery-limit": 5, "x-max-length": 10}),
    QueueState(vhost="v", queue="scratch", type="classic", durable=False, auto_delete=True),
    QueueState(vhost="v", queue="log", type="stream", arguments={"x-max-age": "7D"}),
    BindingState(vhost="v", source="events", destination="orders", routing_key="orders.#"),
    BindingState(vhost="v", source="headers", destination="events", destination_type="exchange",
                 arguments={"x-match": "any", "kind": "a"}),
    PolicyState(vhost="v", policy="ttl", pattern="^orders$", apply_to="queues", priority=3,
                definition={"message-ttl": 60000, "dead-letter-exchange": "dlx"}),
    OperatorPolicyState(vhost="v", policy="cap", pattern=".*", apply_to="queues", priority=1,
                        definition={"max-length": 1000}),
    GlobalParameterState(parameter="cluster_tags", value={"region": "eu"}),
    ShovelState.of_value("v", "mover", {"src-uri": "amqp://u:secret-1@h/v", "src-queue": "a",
                                        "dest-uri": ["amqp://h2/v"], "dest-queue": "b", "ack-mode": "on-confirm"}),
    FederationUpstreamState.of_value("v", "origin", {"uri": "amqp://u:secret-2@h/v", "max-hops": 2}),
    FederationUpstreamSetState.of_value("v", "all", [{"upstream": "origin"}]),
    UserState(user="svc", tags=("monitoring",), limits={"max-connections": 3}),
    PermissionState(vhost="v", user="svc", configure="^$", write=".*", read=".*"),
    TopicPermissionState(vhost="v", user="svc", exchange="events", write="^orders\\.", read=".*"),
]


def test_every_kind_has_samples():
    assert {type(s) for s in SAMPLES} == set(KINDS)


@pytest.mark.parametrize("resource", SAMPLES, ids=lambda r: f"{r.kind}:{r.name}")
def test_a_definitions_entry_reads_back_as_the_same_object(resource):
    """``from_definition(to_definition(x)) == x``, in a whole broker's document and (for the kinds a
    vhost's export holds) in one vhost's, whose entries do not name the vhost."""
    kind = type(resource)
    assert kind.from_definition(resource.to_definition()) == resource
    assert kind.from_definition(resource.to_definition()).props() == resource.props()
    if resource.vhost and kind is not VhostState:
        assert "vhost" not in resource.entry()
        assert kind.from_definition(resource.entry(), resource.vhost) == resource


@pytest.mark.parametrize("resource", SAMPLES, ids=lambda r: f"{r.kind}:{r.name}")
def test_a_saved_plan_entry_reads_back_as_the_same_object(resource):
    rebuilt = from_plan(resource.kind, resource.identity(), resource.props())
    assert rebuilt == resource and rebuilt.props() == resource.props() and rebuilt.key == resource.key


@pytest.mark.parametrize("resource", [s for s in SAMPLES if hasattr(s, "body") and not isinstance(s, VhostState)],
                         ids=lambda r: f"{r.kind}:{r.name}")
def test_each_request_body_holds_the_values_of_the_definitions_entry(resource):
    """A kind's PUT (or POST) body is its definitions entry (or, for a policy, the entry's
    ``value``) less the names the request's path holds: one source for both. (A vhost's body
    differs in form: the API takes its tags as one comma-separated text.)"""
    body, entry = resource.body(), resource.to_definition()
    entry = entry.get("value", entry) if isinstance(resource, OperatorPolicyState) else entry
    assert body and {k: entry[k] for k in body} == body
    assert set(entry) - set(body) <= {"name", "vhost", "source", "destination", "destination_type", "user"}


def test_an_entry_of_another_kind_sharing_a_list_is_not_taken():
    shovel = SAMPLES[12].to_definition()
    assert FederationUpstreamState.from_definition(shovel) is None
    assert OperatorPolicyState.from_definition(shovel) is None
    assert PolicyState.from_definition(SAMPLES[10].to_definition()) is None
    assert ExchangeState.from_definition({"name": "amq.topic", "vhost": "v"}) is None
    assert BindingState.from_definition({"source": "", "vhost": "v", "destination": "q"}) is None


FILES = """
    vhosts:
      v:
        description: orders
        tags: [a, b]
        default_queue_type: quorum
        tracing: true
        limits: {max-queues: 10}
        exchanges:
          events: {type: topic, alternate_exchange: unrouted}
          unrouted: {type: fanout, internal: true}
        queues:
          orders: {max_length: 10, delivery_limit: 5, dead_letter_exchange: dlx}
          scratch: {type: classic, durable: false, auto_delete: true, message_ttl: 30s}
          log: {type: stream, max_age: 7D}
        bindings:
          - {source: events, destination: orders, routing_key: "orders.#"}
          - {source: events, destination: unrouted, destination_type: exchange, arguments: {a: 1}}
        policies:
          ttl: {pattern: "^orders$", apply_to: queues, priority: 3, definition: {message-ttl: 1m, max-length-bytes: 1MiB}}
        operator_policies:
          cap: {pattern: ".*", apply_to: queues, definition: {max-length: 1000}}
        shovels:
          mover:
            source_uri: "amqp://u:${SHOVEL_PASSWORD}@h/v"
            source_queue: orders
            destination_uri: "amqp://h2/v"
            destination_queue: elsewhere
        federation_upstreams:
          origin: {uri: "amqp://u:${SHOVEL_PASSWORD}@h/v", max_hops: 2, message_ttl: 10m}
        federation_upstream_sets:
          all:
            - {upstream: origin}
    users:
      svc:
        password: ${SVC_PASSWORD}
        tags: [monitoring]
        limits: {max-connections: 3}
        permissions:
          v: {configure: "^$", write: ".*", read: ".*"}
        topic_permissions:
          v:
            events: {write: "^orders\\\\.", read: ".*"}
    global_parameters:
      cluster_tags: {region: eu}
"""


def test_the_files_rendered_read_back_as_the_objects_they_declare(tmp_path, monkeypatch):
    """Every kind, built from the files, rendered as a definitions document (what an import sets),
    and read back by the same functions that read the broker's definitions, is the same object."""
    monkeypatch.setenv("SHOVEL_PASSWORD", "s3cret-shovel")
    monkeypatch.setenv("SVC_PASSWORD", "s3cret-user")
    path = tmp_path / "topology.yaml"
    path.write_text(textwrap.dedent(FILES))
    desired = desired_state(load_valid([str(path)]))
    assert {r.kind for r in desired.objects.values()} | {"vhost"} == {kind.kind for kind in KINDS}
    document = render_definitions(desired, Secrets(RESOLVE)).documents[0]

    read = State()
    for entry in document["vhosts"]:
        read.add(VhostState.from_definition(entry))
    for entry in document["parameters"]:
        if entry["component"] == "vhost-limits":
            read.vhosts[entry["vhost"]] = read.vhosts[entry["vhost"]].with_limits(entry["value"])
        elif entry["component"] == "operator_policy":
            read.add(OperatorPolicyState.from_definition(entry))
    for name in read.vhosts:
        definitions_state(read.vhosts[name], vhost_definitions(document, name), read)
    access_state(document["users"], document["permissions"], document["topic_permissions"], read)
    for entry in document["global_parameters"]:
        read.add(GlobalParameterState.from_definition(entry))

    assert read.vhosts == desired.vhosts
    assert sorted(read.objects) == sorted(desired.objects)
    for key, resource in desired.objects.items():
        assert read.objects[key].props() == resource.props(), key


def test_a_list_or_map_where_a_queue_type_goes_is_a_problem_not_a_crash(tmp_path):
    """Anything a file or a broker gives where a queue type goes is compared as a value, never hashed."""
    from tests.conftest import load_problems
    from topology.export import export_definitions

    problems = load_problems(tmp_path, "vhosts: {v: {queues: {q: {arguments: {x-queue-type: [quorum]}}}}}")
    assert any("x-queue-type must be classic, quorum or stream" in p for p in problems)
    assert VhostState.from_definition({"name": "v", "default_queue_type": ["quorum"]}).default_queue_type is None
    assert VhostState.from_definition({"name": "v", "metadata": {"default_queue_type": {"a": 1}}}).default_queue_type \
        is None
    exported = export_definitions({"vhosts": [{"name": "v", "default_queue_type": ["quorum"]}],
                                   "queues": [{"name": "q", "vhost": "v", "arguments": {}}]})
    assert exported.files


def test_apply_has_a_handler_for_exactly_the_changes_a_plan_can_hold():
    from topology.apply import Applier

    handlers = set(Applier(object()).handlers)  # type: ignore[arg-type]
    expected = {("vhost", "create"), ("vhost", "update"), ("exchange", "create"), ("exchange", "replace"),
                ("exchange", "delete"), ("queue", "create"), ("queue", "replace"), ("queue", "resume"),
                ("queue", "delete"), ("binding", "create"), ("binding", "delete"), ("user", "create"),
                ("user", "update"), ("user", "delete")}
    for kind in ("policy", "operator_policy", "global_parameter", "permission", "topic_permission", "shovel",
                 "federation_upstream", "federation_upstream_set"):
        expected |= {(kind, "create"), (kind, "update"), (kind, "delete")}
    assert handlers == expected


@pytest.mark.parametrize("resource", SAMPLES, ids=lambda r: f"{r.kind}:{r.name}")
def test_an_object_made_without_its_init_is_the_same_object(resource):
    """``made`` (the queues' and bindings' quick way) gives what the dataclass's ``__init__`` gives;
    and an object's attributes are its fields alone, which the diff compares as maps."""
    kind = type(resource)
    made = kind.made(dict(resource.__dict__))
    assert made == resource and hash(made) == hash(resource) and repr(made) == repr(resource)
    assert made.key == resource.key and made.props() == resource.props()
    assert list(resource.__dict__) == [f.name for f in dataclasses.fields(resource)]
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.vhost = "other"  # type: ignore[misc]


@pytest.mark.parametrize("entry", [
    {"name": "q", "durable": True, "auto_delete": False, "arguments": {"x-queue-type": "quorum", "x-max-length": 5.0}},
    {"name": "q", "vhost": "v", "arguments": {}},
    {"name": "q", "durable": False, "auto_delete": True, "arguments": None, "type": "stream"},
])
def test_a_queue_read_from_the_broker_is_the_one_its_init_makes(entry):
    made = QueueState.from_definition(entry, "v", "classic")
    arguments = {k: int(v) if isinstance(v, float) else v for k, v in (entry["arguments"] or {}).items()
                 if k != "x-queue-type"}
    expected = QueueState(vhost="v", queue="q", type=(entry["arguments"] or {}).get("x-queue-type")
                          or entry.get("type") or "classic", durable=entry.get("durable", True),
                          auto_delete=entry.get("auto_delete", False), arguments=arguments)
    assert made == expected and made.__dict__ == expected.__dict__


def test_a_binding_read_from_the_broker_is_the_one_its_init_makes():
    entry = {"source": "x", "destination": "q", "destination_type": "queue", "routing_key": "k",
             "arguments": {"b": 1.0, "a": "z"}}
    made = BindingState.from_definition(entry, "v")
    expected = BindingState(vhost="v", source="x", destination="q", routing_key="k", arguments={"a": "z", "b": 1})
    assert made == expected and list(made.arguments) == ["a", "b"] and made.key == expected.key


@pytest.mark.parametrize("data", [
    {"message_ttl": "1h", "max_length": None, "arguments": {"x-queue-type": "quorum", "x-b": 2, "x-a": 1.0}},
    {"type": "stream", "initial_group_size": 3, "max_age": "7D"},
    {"type": "quorum", "initial_group_size": 3, "delivery_limit": 5, "arguments": {"x-delivery-limit": 9}},
    {},
])
def test_a_declared_queues_arguments_are_the_same_from_either_reading_of_the_files(data):
    """The x-arguments of a queue, from the objects built without pydantic and from its models: the
    friendly fields given (not those given as null) over the raw arguments, without x-queue-type, sorted."""
    from topology.kinds.queue import queue_arguments
    from topology.model import format as models
    from topology.model.specs import Queue

    quick, model = Queue.read(data), models.Queue.model_validate(data)
    queue_type = data.get("type") or (data.get("arguments") or {}).get("x-queue-type") or "classic"
    assert queue_arguments(quick, queue_type) == queue_arguments(model, queue_type)
    arguments = queue_arguments(quick, queue_type)
    assert "x-queue-type" not in arguments and list(arguments) == sorted(arguments)
    assert "x-max-length" not in arguments
    if "initial_group_size" in data:
        assert arguments[{"stream": "x-initial-cluster-size", "quorum": "x-quorum-initial-group-size"}[queue_type]] == 3
    if "delivery_limit" in data:
        assert arguments["x-delivery-limit"] == 5  # the friendly field over the raw argument
