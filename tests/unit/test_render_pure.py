"""render (definitions and Kubernetes resources) and the quorum transform, offline.

The definitions round trip: the files rendered as a definitions document, read back the way
the tool reads a broker, plan to no change; for every real-world file (through its export).
The Kubernetes resources are checked against the operator's field names (FIELDS, from its
api/v1beta1 types). Loading rendered definitions into a real broker is tested in
tests/integration/test_export.py and test_render.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import load_text
from tests.unit.test_export_pure import FILES, REALWORLD, REFUSED, export_and_load, live_state
from topology import redact
from topology.diff import diff
from topology.export import export_definitions
from topology.passwords import SHA512, matches
from topology.passwords import resolve_passwords
from topology.render.definitions import RESOLVE, Secrets, render_definitions, write_output
from topology.render.kubernetes import (
    CLUSTER_REFERENCE_FIELDS,
    ENUMS,
    FIELDS,
    NESTED_FIELDS,
    USER_TAGS,
    render_kubernetes,
)
from topology.state import desired_state
from topology.transform import to_quorum
from topology.validate import check_broker_version

DNS_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?\Z")


@pytest.fixture(autouse=True)
def _forget_secrets():
    yield
    redact.forget_all()


TOPOLOGY = """
vhosts:
  shop:
    default_queue_type: quorum
    limits: {max-queues: 10}
    exchanges:
      orders: {type: topic, alternate_exchange: unrouted}
      unrouted: {type: fanout}
    queues:
      work: {type: classic, max_priority: 5}
      q2: {delivery_limit: 3}
    bindings:
      - {source: orders, destination: work, routing_key: "order.#"}
      - {source: orders, destination: q2, routing_key: "order.#"}
    policies:
      ttl: {pattern: "^work$", definition: {message-ttl: 1000}}
    operator_policies:
      guard: {pattern: ".*", apply_to: queues, definition: {max-length: 50000}}
    shovels:
      mover: {source_uri: "${SRC_URI}", source_queue: work, destination_uri: "amqp://", destination_queue: q2}
    federation_upstreams:
      origin: {uri: "amqp://fed:${FED_PASSWORD}@upstream/shop", exchange: orders}
users:
  orders-svc:
    password: "${ORDERS_SVC_PASSWORD}"
    tags: [monitoring]
    limits: {max-connections: 10}
    permissions:
      shop: {configure: "^orders", write: ".*", read: ".*"}
    topic_permissions:
      shop:
        orders: {write: "^x", read: ".*"}
  certificate-only: {tags: [management]}
"""
SECRETS = {"SRC_URI": "amqp://mover:uri-secret-1@src/shop", "FED_PASSWORD": "fed-secret-2",
           "ORDERS_SVC_PASSWORD": "user-secret-3"}


def state_of(tmp_path, text: str = TOPOLOGY, environment: dict[str, str] | None = None):
    return desired_state(load_text(tmp_path, text, SECRETS if environment is None else environment))


def test_template_definitions_hold_no_secret_and_name_the_variables(tmp_path):
    result = render_definitions(state_of(tmp_path))
    text = write_output(result, "definitions")
    for secret in SECRETS.values():
        assert secret not in text
    document = json.loads(text)
    users = {u["name"]: u for u in document["users"]}
    assert users["orders-svc"] == {"name": "orders-svc", "password": "${ORDERS_SVC_PASSWORD}", "tags": ["monitoring"],
                                   "limits": {"max-connections": 10}}
    assert users["certificate-only"] == {"name": "certificate-only", "tags": ["management"]}
    parameters = {(p["component"], p["name"]): p["value"] for p in document["parameters"]}
    assert parameters[("shovel", "mover")]["src-uri"] == "${SRC_URI}"
    assert parameters[("shovel", "mover")]["dest-uri"] == "amqp://"
    assert parameters[("federation-upstream", "origin")]["uri"] == "amqp://fed:${FED_PASSWORD}@upstream/shop"
    assert parameters[("vhost-limits", "limits")] == {"max-queues": 10}
    assert parameters[("operator_policy", "guard")] == {"pattern": ".*", "apply-to": "queues", "priority": 0,
                                                         "definition": {"max-length": 50000}}
    assert document["vhosts"] == [{"name": "shop", "metadata": {"default_queue_type": "quorum"}}]
    assert {q["name"]: q["arguments"]["x-queue-type"] for q in document["queues"]} == {"work": "classic", "q2": "quorum"}
    assert sorted(result.variables) == ["FED_PASSWORD", "ORDERS_SVC_PASSWORD", "SRC_URI"]
    assert not result.unsupported and not result.holds_secrets
    assert any("certificate-only" in note for note in result.notes)
    assert any("shovel shop/mover uses queue 'work'" in note for note in result.notes)


def test_template_definitions_need_no_secret_set(tmp_path):
    from topology.engine import load_valid

    path = tmp_path / "t.yaml"
    path.write_text(TOPOLOGY, encoding="utf-8")
    topology = load_valid([str(path)], offline=True)
    document = render_definitions(desired_state(topology)).documents[0]
    parameters = {(p["component"], p["name"]): p["value"] for p in document["parameters"]}
    assert parameters[("shovel", "mover")]["src-uri"] == "${SRC_URI}"
    assert parameters[("federation-upstream", "origin")]["uri"] == "amqp://fed:${FED_PASSWORD}@upstream/shop"


def test_resolved_definitions_hash_passwords_and_hold_the_real_uris(tmp_path):
    result = render_definitions(state_of(tmp_path), Secrets(RESOLVE))
    document = result.documents[0]
    user = next(u for u in document["users"] if u["name"] == "orders-svc")
    assert "password" not in user and matches(SECRETS["ORDERS_SVC_PASSWORD"], user["password_hash"],
                                               user["hashing_algorithm"])
    parameters = {(p["component"], p["name"]): p["value"] for p in document["parameters"]}
    assert parameters[("shovel", "mover")]["src-uri"] == SECRETS["SRC_URI"]
    assert result.holds_secrets and not result.variables


@pytest.mark.parametrize("name", [f for f in FILES if f not in REFUSED])
def test_every_real_world_export_renders_to_definitions_that_plan_to_no_change(name, tmp_path):
    definitions = json.loads((REALWORLD / name).read_text(encoding="utf-8"))
    _, topology = export_and_load(definitions, tmp_path)
    desired = desired_state(topology)
    rendered = render_definitions(desired, Secrets(RESOLVE))
    assert not rendered.unsupported
    document = json.loads(write_output(rendered, "definitions"))
    live = live_state(document, sorted(desired.vhosts))
    resolve_passwords(desired, live)
    changes = diff(desired, live).changes
    assert changes == [], [c.title for c in changes]
    # and the rendered document exports to the same files
    again = export_definitions(document, sorted(desired.vhosts))
    assert again.files == export_definitions(definitions, sorted(desired.vhosts)).files


def check_resource(document: dict) -> None:
    """One rendered document against the operator's field names, enums and naming rules."""
    assert DNS_NAME.match(document["metadata"]["name"]) and len(document["metadata"]["name"]) <= 253
    if document["kind"] == "Secret":
        assert document["apiVersion"] == "v1" and set(document) == {"apiVersion", "kind", "metadata", "type", "stringData"}
        return
    kind, spec = document["kind"], document["spec"]
    assert document["apiVersion"] == "rabbitmq.com/v1beta1"
    assert set(spec) <= FIELDS[kind], set(spec) - FIELDS[kind]
    assert set(spec["rabbitmqClusterReference"]) <= CLUSTER_REFERENCE_FIELDS
    for (enum_kind, field_name), allowed in ENUMS.items():
        if enum_kind == kind and field_name in spec:
            assert spec[field_name] in allowed, (kind, field_name, spec[field_name])
    for (nested_kind, field_name), allowed in NESTED_FIELDS.items():
        if nested_kind == kind and field_name in spec:
            assert set(spec[field_name]) <= allowed
    if kind == "User":
        assert set(spec.get("tags", [])) <= USER_TAGS


def test_kubernetes_resources_use_the_operators_fields_and_secrets(tmp_path):
    result = render_kubernetes(state_of(tmp_path), "rmq", "apps")
    text = write_output(result, "k8s")
    for secret in SECRETS.values():
        assert secret not in text
    documents = list(yaml.safe_load_all(text))
    for document in documents:
        check_resource(document)
        assert document["metadata"]["namespace"] == "apps"
    kinds = [d["kind"] for d in documents]
    assert kinds.index("Vhost") < kinds.index("Exchange") < kinds.index("Binding") < kinds.index("User")
    by_name = {(d["kind"], d["metadata"]["name"]): d for d in documents}
    user = by_name[("User", "orders-svc")]["spec"]
    assert user["limits"] == {"connections": 10} and user["rabbitmqClusterReference"] == {"name": "rmq"}
    credentials = by_name[("Secret", user["importCredentialsSecret"]["name"])]["stringData"]
    assert credentials == {"username": "orders-svc", "password": "${ORDERS_SVC_PASSWORD}"}
    plain = by_name[("Secret", by_name[("User", "certificate-only")]["spec"]["importCredentialsSecret"]["name"])]
    assert plain["stringData"] == {"username": "certificate-only", "passwordHash": ""}
    shovel = by_name[("Shovel", "shop.mover")]["spec"]
    assert shovel["srcQueue"] == "work" and shovel["destQueue"] == "q2"
    assert by_name[("Secret", shovel["uriSecret"]["name"])]["stringData"] == {"srcUri": "${SRC_URI}", "destUri": "amqp://"}
    federation = by_name[("Federation", "shop.origin")]["spec"]
    assert federation["exchange"] == "orders"
    assert by_name[("Vhost", "shop")]["spec"]["limits"] == {"queues": 10}
    queue = by_name[("Queue", "shop.q2")]["spec"]
    assert queue == {"name": "q2", "vhost": "shop", "type": "quorum", "durable": True, "autoDelete": False,
                     "arguments": {"x-delivery-limit": 3}, "rabbitmqClusterReference": {"name": "rmq"}}
    bindings = [d["metadata"]["name"] for d in documents if d["kind"] == "Binding"]
    assert len(set(bindings)) == 2


def test_resolved_kubernetes_users_get_a_sha512_hash(tmp_path):
    result = render_kubernetes(state_of(tmp_path), "rmq", secrets=Secrets(RESOLVE))
    secret = next(d for d in result.documents if d["kind"] == "Secret" and d["stringData"].get("username") == "orders-svc")
    assert "password" not in secret["stringData"]
    assert matches(SECRETS["ORDERS_SVC_PASSWORD"], secret["stringData"]["passwordHash"], SHA512)


def test_what_the_operator_cannot_express_is_listed(tmp_path):
    text = """
    vhosts:
      "a b/c":
        description: hidden things
        exchanges:
          inner: {type: direct, internal: true}
        federation_upstreams:
          u1: {uri: "amqp://h", exchange: x, consumer_tag: mine}
        federation_upstream_sets:
          all: [{upstream: u1}]
    users:
      odd: {tags: [impersonator, monitoring]}
    global_parameters:
      cluster_name: c1
    """
    result = render_kubernetes(state_of(tmp_path, text, {}), "rmq")
    assert sorted(result.unsupported) == sorted([
        "vhost a b/c: description (the Vhost resource has no field for it)",
        "exchange a b/c/inner: internal (the Exchange resource has no field for it)",
        "federation upstream a b/c/u1: consumer-tag (the Federation resource has no field for it)",
        "federation upstream set a b/c/all (the operator has no resource for it)",
        "user odd: tag(s) impersonator (the User resource accepts administrator, management, monitoring, policymaker)",
        "global parameter cluster_name (the operator has no resource for it)",
    ])
    for document in result.documents:
        check_resource(document)
    vhost = next(d for d in result.documents if d["kind"] == "Vhost")
    assert vhost["spec"]["name"] == "a b/c" and vhost["metadata"]["name"].startswith("a-b-c-")


@pytest.mark.parametrize("name", [f for f in FILES if f not in REFUSED])
def test_every_real_world_export_renders_to_valid_kubernetes_resources(name, tmp_path):
    definitions = json.loads((REALWORLD / name).read_text(encoding="utf-8"))
    _, topology = export_and_load(definitions, tmp_path)
    result = render_kubernetes(desired_state(topology), "rmq")
    documents = list(yaml.safe_load_all(write_output(result, "k8s")))
    names = set()
    for document in documents:
        check_resource(document)
        names.add((document["kind"], document["metadata"]["name"]))
    assert len(names) == len(documents)  # unique per kind


MIRRORED = {
    "vhosts": [{"name": "legacy"}],
    "queues": [
        {"name": "orders", "vhost": "legacy", "durable": True, "auto_delete": False, "arguments": {
            "x-max-priority": 10, "x-queue-mode": "lazy", "x-overflow": "reject-publish-dlx", "x-message-ttl": 60000,
            "x-queue-master-locator": "min-masters", "x-queue-version": 2}},
        {"name": "tmp", "vhost": "legacy", "durable": False, "auto_delete": False, "arguments": {}},
        {"name": "unmirrored", "vhost": "legacy", "durable": True, "auto_delete": False, "arguments": {}},
    ],
    "policies": [
        {"vhost": "legacy", "name": "ha-all", "pattern": "^(orders|tmp)$", "apply-to": "queues", "priority": 0,
         "definition": {"ha-mode": "all", "ha-sync-mode": "automatic"}},
        {"vhost": "legacy", "name": "ha-dlx", "pattern": "^orders$", "apply-to": "all", "priority": 1,
         "definition": {"ha-mode": "exactly", "ha-params": 2, "message-ttl": 5}},
    ],
}


def test_the_quorum_transform_lists_every_change_and_gives_files_valid_on_4_0(tmp_path):
    exported = export_definitions(json.loads(json.dumps(MIRRORED)))
    changes = to_quorum(exported.files).changes
    assert changes == [
        "vhost 'legacy' queue 'orders': classic (mirrored by policy 'ha-dlx') -> quorum",
        "vhost 'legacy' queue 'orders': removed max_priority 10 (quorum queues have no priorities before "
        "RabbitMQ 4.0, and two levels from 4.0)",
        "vhost 'legacy' queue 'orders': overflow reject-publish-dlx -> reject-publish (quorum queues do not "
        "dead-letter rejected publishes; they would read reject-publish-dlx as drop-head)",
        "vhost 'legacy' queue 'orders': removed queue_mode 'lazy' (quorum queues keep messages on disk)",
        "vhost 'legacy' queue 'orders': x-queue-master-locator min-masters -> leader_locator balanced",
        "vhost 'legacy' queue 'orders': removed x-queue-version 2 (classic queues only)",
        "vhost 'legacy' queue 'tmp': left classic (not durable: a quorum queue cannot be); it loses its mirrors "
        "(policy 'ha-all')",
        "vhost 'legacy' policy 'ha-all': removed (it only held ha-mode, ha-sync-mode)",
        "vhost 'legacy' policy 'ha-dlx': removed ha-mode, ha-params (classic mirroring)",
    ]
    vhost = exported.files["vhosts/legacy.yaml"]["vhosts"]["legacy"]
    assert vhost["queues"]["orders"] == {"type": "quorum", "message_ttl": 60000, "overflow": "reject-publish",
                                         "leader_locator": "balanced"}
    assert vhost["queues"]["unmirrored"] == {}
    assert vhost["policies"] == {"ha-dlx": {"pattern": "^orders$", "priority": 1, "definition": {"message-ttl": 5}}}
    from topology.export import render_file

    path = Path(tmp_path / "legacy.yaml")
    path.write_text(render_file(exported.files["vhosts/legacy.yaml"], "test"), encoding="utf-8")
    topology = load_text(tmp_path, path.read_text())
    check_broker_version(topology, (4, 0), "4.0", offline=True)  # no ha-* key left: valid on 4.0
    assert not any(key.startswith("ha-") for policy in vhost["policies"].values() for key in policy["definition"])


def test_the_quorum_transform_leaves_files_without_mirroring_alone():
    exported = export_definitions({"vhosts": [{"name": "v"}], "queues": [
        {"name": "q", "vhost": "v", "durable": True, "arguments": {"x-max-priority": 3}}]})
    before = json.dumps(exported.files, sort_keys=True)
    assert to_quorum(exported.files).changes == []
    assert json.dumps(exported.files, sort_keys=True) == before
