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

# Kubernetes' IsDNS1123Subdomain: dot-separated labels, each starting and ending with a letter or digit
DNS_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")


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
      odd: {tags: [impersonator, monitoring, team-a]}
    global_parameters:
      cluster_name: c1
    """
    result = render_kubernetes(state_of(tmp_path, text, {}), "rmq")
    # metadata that changes nothing the broker does is left out with a warning, never refused
    assert sorted(result.dropped) == sorted([
        "vhost a b/c: description left out (the Vhost resource has no field for it; it changes nothing the broker does)",
        "user odd: tag(s) team-a left out (the User resource accepts administrator, management, monitoring, "
        "policymaker; labels only, they change nothing the broker does)",
    ])
    assert sorted(result.unsupported) == sorted([
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
    assert vhost["queues"]["orders"] == {"type": "quorum", "message_ttl": "1m", "overflow": "reject-publish",
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


def _transformed(policies: list[dict], queues: list[dict], operator: list[dict] = (), version=(3, 13, 7)):
    document = {"rabbitmq_version": "3.13.7", "vhosts": [{"name": "v"}],
                "queues": [{"vhost": "v", "durable": True, "auto_delete": False, **q} for q in queues],
                "policies": [{"vhost": "v", "apply-to": "queues", "priority": 0, **p} for p in policies],
                "parameters": [{"vhost": "v", "component": "operator_policy", "name": o["name"],
                                "value": {"apply-to": "queues", "priority": 0, **o}} for o in operator]}
    exported = export_definitions(document)
    changes = to_quorum(exported.files, version).changes
    return changes, exported.files["vhosts/v.yaml"]["vhosts"]["v"]


def test_the_quorum_transform_lists_a_policy_that_applies_instead_of_a_removed_one():
    # removing the emptied ha policy lets the catch-all policy win: its settings are listed
    changes, vhost = _transformed(
        [{"name": "ha-only", "pattern": "^q$", "priority": 9, "definition": {"ha-mode": "all"}},
         {"name": "catchall", "pattern": ".*", "definition": {"max-length": 5, "overflow": "reject-publish-dlx",
                                                                "dead-letter-exchange": "dlx"}}],
        [{"name": "q", "arguments": {}}])
    assert changes == [
        "vhost 'v' queue 'q': classic (mirrored by policy 'ha-only') -> quorum",
        "vhost 'v' policy 'ha-only': removed (it only held ha-mode)",
        "vhost 'v' queue 'q': policy 'catchall' applies now instead of 'ha-only'",
        "vhost 'v' queue 'q': policy setting dead-letter-exchange: unset -> dlx",
        "vhost 'v' queue 'q': policy setting max-length: unset -> 5",
        "vhost 'v' queue 'q': policy setting overflow: unset -> reject-publish-dlx",
        "vhost 'v' queue 'q': its policy sets overflow reject-publish-dlx, which a quorum queue reads as drop-head "
        "(the oldest message is dropped, not the new one refused): review the policy",
    ]
    assert vhost["queues"]["q"] == {"type": "quorum"}


def test_the_quorum_transform_lists_a_policy_that_stops_applying_to_the_quorum_queue():
    # classic_queues no longer covers the queue, and queue-mode keeps a policy off quorum queues
    changes, _ = _transformed(
        [{"name": "ha-cq", "pattern": "^a", "apply-to": "classic_queues", "priority": 2,
          "definition": {"ha-mode": "all", "message-ttl": 1000}},
         {"name": "ha-lazy", "pattern": "^b", "priority": 2, "definition": {"ha-mode": "all", "queue-mode": "lazy",
                                                                             "expires": 60000}}],
        [{"name": "a1", "arguments": {}}, {"name": "b1", "arguments": {}}])
    assert changes == [
        "vhost 'v' queue 'a1': classic (mirrored by policy 'ha-cq') -> quorum",
        "vhost 'v' queue 'b1': classic (mirrored by policy 'ha-lazy') -> quorum",
        "vhost 'v' policy 'ha-cq': removed ha-mode (classic mirroring)",
        "vhost 'v' policy 'ha-lazy': removed ha-mode (classic mirroring)",
        "vhost 'v' queue 'a1': policy setting message-ttl: 1000 -> unset",
        "vhost 'v' queue 'b1': policy 'ha-lazy' no longer applies to it: it holds queue-mode, which quorum queues "
        "do not take (review the policy)",
        "vhost 'v' queue 'b1': policy setting expires: 60000 -> unset",
        "vhost 'v' queue 'b1': policy setting queue-mode: lazy -> unset",
    ]


def test_the_quorum_transform_follows_operator_policies():
    # an operator policy can mirror a queue (3.11.10 to 3.13); its ha keys go too, and it still merges
    changes, vhost = _transformed(
        [{"name": "ttl", "pattern": ".*", "definition": {"message-ttl": 9000, "max-length": 100}}],
        [{"name": "q", "arguments": {}}, {"name": "plain", "arguments": {"x-max-priority": 4}}],
        operator=[{"name": "op", "pattern": "^q$", "definition": {"ha-mode": "exactly", "ha-params": 2,
                                                                   "max-length": 50}}])
    assert changes == [
        "vhost 'v' queue 'q': classic (mirrored by policy 'op') -> quorum",
        "vhost 'v' operator policy 'op': removed ha-mode, ha-params (classic mirroring)",
    ]
    assert vhost["operator_policies"]["op"]["definition"] == {"max-length": 50}
    assert vhost["queues"]["plain"] == {"max_priority": 4}


def test_the_quorum_transform_leaves_a_queue_it_cannot_decide_for():
    # (?i) after the start: PCRE takes it, Python's re does not
    changes, vhost = _transformed(
        [{"name": "ha-odd", "pattern": "^x(?i)orders$", "priority": 1, "definition": {"ha-mode": "all"}}],
        [{"name": "billing", "arguments": {"x-max-priority": 3}}])
    assert changes == [
        "vhost 'v' queue 'billing': left as it is: cannot tell whether it is mirrored (the pattern of 'ha-odd' is "
        "not one Python can evaluate); check it by hand",
        "vhost 'v' policy 'ha-odd': removed (it only held ha-mode)",
    ]
    assert vhost["queues"]["billing"] == {"max_priority": 3}


def test_the_quorum_transform_converts_on_a_tie_and_says_so():
    changes, vhost = _transformed(
        [{"name": "aa-plain", "pattern": "^tie$", "priority": 1, "definition": {"message-ttl": 5}},
         {"name": "zz-ha", "pattern": "^tie$", "priority": 1, "definition": {"ha-mode": "all"}}],
        [{"name": "tie", "arguments": {}}])
    assert changes[0] == ("vhost 'v' queue 'tie': classic (mirrored by policy 'zz-ha'; 'aa-plain', 'zz-ha' tie at "
                          "the same priority, and RabbitMQ applies either: the queue may or may not be mirrored now)"
                          " -> quorum")
    assert vhost["queues"]["tie"] == {"type": "quorum"}


def test_the_quorum_transform_keeps_a_declared_leader_locator():
    changes, vhost = _transformed(
        [{"name": "ha", "pattern": ".*", "definition": {"ha-mode": "all"}}],
        [{"name": "q", "arguments": {"x-queue-master-locator": "client-local", "x-queue-leader-locator": "balanced"}}])
    assert "vhost 'v' queue 'q': removed x-queue-master-locator client-local (leader_locator balanced already set)" \
        in changes
    assert vhost["queues"]["q"] == {"type": "quorum", "leader_locator": "balanced"}


def test_a_policy_priority_that_is_not_a_number_is_one_clear_error(tmp_path, capsys):
    from topology.cli import main

    path = tmp_path / "defs.json"
    path.write_text(json.dumps({"vhosts": [{"name": "v"}], "policies": [
        {"vhost": "v", "name": "p", "pattern": ".*", "priority": "high", "definition": {"ha-mode": "all"}}]}))
    with pytest.raises(SystemExit) as exit_:
        main(["export", "--from-definitions", str(path), "--out", str(tmp_path / "out"), "--transform", "quorum"])
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    # the definitions file's shape is checked first (as a live broker's answer is)
    assert err.strip() == (f"error: {path}: policies[0].priority is text, not a whole number: is this a RabbitMQ "
                           "definitions file?")


K8S = {"definitions": [], "k8s": ["--cluster-name", "c"]}
HASHED = """
vhosts:
  shop: {}
users:
  hashed:
    password_hash: "${HASHED_HASH}"
    hashing_algorithm: rabbit_password_hashing_sha512
    permissions: {shop: {configure: ".*", write: ".*", read: ".*"}}
"""


@pytest.mark.parametrize("output_format", ["definitions", "k8s"])
def test_template_mode_writes_a_hash_from_a_variable_as_its_reference_set_or_not(output_format, tmp_path, capsys,
                                                                                   monkeypatch):
    from topology.cli import main

    path = tmp_path / "t.yaml"
    path.write_text(HASHED, encoding="utf-8")
    for value in (None, "the-real-hash-value"):
        if value is not None:
            monkeypatch.setenv("HASHED_HASH", value)
        with pytest.raises(SystemExit) as exit_:
            main(["render", str(path), "--format", output_format, *K8S[output_format]])
        assert exit_.value.code == 0
        out, err = capsys.readouterr()
        assert "${HASHED_HASH}" in out and "the-real-hash-value" not in out + err
        assert "HASHED_HASH: the password hash of user hashed" in err


@pytest.mark.parametrize("output_format", ["definitions", "k8s"])
def test_template_mode_refuses_to_print_a_secret_written_in_the_files(output_format, tmp_path, capsys):
    from topology.cli import main

    path = tmp_path / "t.yaml"
    path.write_text("users:\n  lit: {password: literal-pw-123, allow_literal_password: true}\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_:
        main(["render", str(path), "--format", output_format, *K8S[output_format]])
    assert exit_.value.code == 1
    out, err = capsys.readouterr()
    assert out == "" and "literal-pw-123" not in err
    assert "secret: a hash of the password of user lit (written in the files)" in err
    assert err.strip().endswith(f"error: the {output_format} output would hold secrets (listed above): give --out "
                                "FILE, or take them from variables")
    written = tmp_path / "out.txt"
    with pytest.raises(SystemExit) as exit_:
        main(["render", str(path), "--format", output_format, *K8S[output_format], "--out", str(written)])
    assert exit_.value.code == 0 and written.stat().st_mode & 0o777 == 0o600


def test_template_mode_never_reads_a_secret_so_a_name_equal_to_one_prints_as_it_is(tmp_path, capsys, monkeypatch):
    from topology.cli import main

    monkeypatch.setenv("SVC_PASSWORD", "shop")
    path = tmp_path / "t.yaml"
    path.write_text("vhosts:\n  shop: {queues: {shop: {}}}\nusers:\n  svc:\n    password: ${SVC_PASSWORD}\n"
                    "    permissions: {shop: {configure: '.*', write: '.*', read: '.*'}}\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_:
        main(["render", str(path), "--format", "definitions"])
    assert exit_.value.code == 0
    document = json.loads(capsys.readouterr().out)
    assert [v["name"] for v in document["vhosts"]] == ["shop"] and document["queues"][0]["vhost"] == "shop"
    assert document["users"][0]["password"] == "${SVC_PASSWORD}"


def test_kubernetes_names_stay_unique_and_valid_for_awkward_names(tmp_path):
    # '/' and 'default' both read "default": the hash of the exact identity tells them apart;
    # labels starting or ending with a dash, and a long name cut short, are cleaned
    long_vhost = "a" * 231
    text = f"""
    vhosts:
      /: {{queues: {{q: {{}}}}, exchanges: {{x: {{type: direct}}}}, bindings: [{{source: x, destination: q}}]}}
      default: {{queues: {{q: {{}}}}, exchanges: {{x: {{type: direct}}}}, bindings: [{{source: x, destination: q}}]}}
      "a-": {{queues: {{b: {{}}, -x: {{}}}}}}
      "{long_vhost}": {{queues: {{Bq: {{}}}}}}
    users:
      alice:
        permissions: {{/: {{configure: ".*", write: ".*", read: ".*"}}, default: {{configure: ".*", write: ".*", read: ".*"}}}}
    """
    import textwrap

    result = render_kubernetes(state_of(tmp_path, textwrap.dedent(text), {}), "rmq")
    names = [(d["kind"], d["metadata"]["name"]) for d in result.documents]
    assert len(set(names)) == len(names), sorted(names)
    for document in result.documents:
        check_resource(document)
    vhosts = {d["spec"]["name"]: d for d in result.documents if d["kind"] == "Vhost"}
    assert vhosts["/"]["spec"]["deletionPolicy"] == "retain" and "deletionPolicy" not in vhosts["default"]["spec"]
    assert vhosts["/"]["metadata"]["name"] != vhosts["default"]["metadata"]["name"]
    assert vhosts["default"]["metadata"]["name"].startswith("default-")  # the base is shared: both get a hash


def test_skip_unsupported_leaves_out_what_depends_on_a_skipped_resource(tmp_path):
    text = """
    vhosts:
      v:
        exchanges:
          inner: {type: direct, internal: true}
          outer: {type: fanout}
        queues: {q: {}}
        bindings:
          - {source: outer, destination: inner, destination_type: exchange}
          - {source: inner, destination: q}
          - {source: outer, destination: q}
        federation_upstreams:
          u1: {uri: "amqp://elsewhere"}
        federation_upstream_sets:
          all: [{upstream: u1}]
        policies:
          federate: {pattern: "^outer$", apply_to: exchanges, definition: {federation-upstream-set: all}}
        operator_policies:
          cap: {pattern: ".*", definition: {max-length: 100}}
    users:
      hashed:
        password_hash: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        permissions: {v: {configure: ".*", write: ".*", read: ".*"}}
    """
    import textwrap

    result = render_kubernetes(state_of(tmp_path, textwrap.dedent(text), {}), "rmq")
    assert sorted(result.unsupported) == sorted([
        "exchange v/inner: internal (the Exchange resource has no field for it)",
        "federation upstream set v/all (the operator has no resource for it)",
        "user hashed: a password_hash of rabbit_password_hashing_sha256 (the operator imports SHA-512 hashes only)",
        "binding v/outer -> exchange inner []: exchange 'inner' cannot be rendered, so neither can this",
        "binding v/inner -> queue q []: exchange 'inner' cannot be rendered, so neither can this",
        "policy v/federate: federation upstream set 'all' cannot be rendered, so neither can this",
        "permission v/hashed: its user hashed cannot be rendered, so neither can this",
    ]), result.unsupported
    kinds = sorted(d["kind"] for d in result.documents if d["kind"] != "Secret")
    assert kinds == ["Binding", "Exchange", "Federation", "OperatorPolicy", "Queue", "Vhost"]
    operator = next(d for d in result.documents if d["kind"] == "OperatorPolicy")
    assert operator["spec"]["applyTo"] == "queues"  # apply-to all: operator policy keys act on queues only
    assert any("apply-to all written as queues" in note for note in result.notes)


def test_a_uri_with_a_comma_cannot_go_into_an_operator_secret(tmp_path):
    text = "vhosts:\n  v:\n    federation_upstreams:\n      u: {uri: 'amqp://h/v?options=a,b'}\n"
    result = render_kubernetes(state_of(tmp_path, text, {}), "rmq")
    assert result.unsupported == ["federation upstream v/u: a URI of uri holds a comma (the operator reads a comma as "
                                  "the start of the next URI)"]


@pytest.mark.parametrize("arguments, message", [
    (["--format", "definitions", "--cluster-name", "rmq"], "--cluster-name and --namespace are for --format k8s"),
    (["--format", "definitions", "--namespace", "apps"], "--cluster-name and --namespace are for --format k8s"),
    (["--format", "k8s", "--cluster-name", "Rmq_1"], "--cluster-name 'Rmq_1' is not a Kubernetes name"),
    (["--format", "k8s", "--cluster-name", "rmq", "--namespace", "a.b"], "--namespace 'a.b' is not a Kubernetes"),
])
def test_render_options_that_do_not_fit_the_format_are_refused(arguments, message, tmp_path, capsys):
    from topology.cli import main

    path = tmp_path / "t.yaml"
    path.write_text("vhosts:\n  v: {}\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_:
        main(["render", str(path), *arguments])
    assert exit_.value.code != 0
    out, err = capsys.readouterr()
    assert out == "" and message in err


def test_template_mode_prints_a_shovel_uri_that_holds_a_variable(run, tmp_path):
    """A ${VAR} in a shovel's URI was registered as if it were a password, and then the whole
    output was refused as holding "a secret's value (a name, say)"."""
    path = tmp_path / "t.yaml"
    path.write_text("vhosts:\n  v:\n    queues:\n      q: {}\n    shovels:\n      s:\n"
                    "        source_uri: \"amqp://user:${SRC_PASS}@host/v\"\n        source_queue: q\n"
                    "        destination_uri: \"amqp://\"\n        destination_queue: q2\n", encoding="utf-8")
    result = run("render", str(path), "--format", "definitions")
    assert result.code == 0, result.err
    assert '"src-uri": "amqp://user:${SRC_PASS}@host/v"' in result.out and "SRC_PASS: in src-uri of shovel v/s" in result.err


def test_the_shipped_shop_renders_for_kubernetes_with_a_warning_for_its_description(capsys):
    """A vhost description has no field in the operator's Vhost: the rest is written, exit 0, and
    stderr says what was left out; a setting that changes what the broker does still fails."""
    from topology.cli import main

    shop = Path(__file__).resolve().parents[2] / "examples" / "shop"
    with pytest.raises(SystemExit) as exit_:
        main(["render", str(shop), "--format", "k8s", "--cluster-name", "rabbitmq", "--namespace", "shop"])
    assert exit_.value.code == 0
    out, err = capsys.readouterr()
    vhost = next(d for d in yaml.safe_load_all(out) if d["kind"] == "Vhost")
    assert vhost["spec"] == {"name": "shop", "defaultQueueType": "quorum", "rabbitmqClusterReference": {"name": "rabbitmq"}}
    assert err.splitlines() == ["warning: vhost shop: description left out (the Vhost resource has no field for it; "
                                "it changes nothing the broker does)"]


def test_a_setting_that_changes_what_the_broker_does_still_fails_and_skip_unsupported_still_skips(tmp_path, capsys):
    from topology.cli import main

    path = tmp_path / "t.yaml"
    path.write_text("vhosts:\n  v:\n    description: notes\n    exchanges:\n      inner: {type: direct, internal: true}\n",
                    encoding="utf-8")
    with pytest.raises(SystemExit) as exit_:
        main(["render", str(path), "--format", "k8s", "--cluster-name", "c"])
    assert exit_.value.code == 1
    out, err = capsys.readouterr()
    assert out == "" and "unsupported: exchange v/inner: internal" in err and "description" not in err
    with pytest.raises(SystemExit) as exit_:
        main(["render", str(path), "--format", "k8s", "--cluster-name", "c", "--skip-unsupported"])
    assert exit_.value.code == 0
    out, err = capsys.readouterr()
    assert [d["kind"] for d in yaml.safe_load_all(out)] == ["Vhost"]
    assert "skipped: exchange v/inner: internal" in err and "warning: vhost v: description left out" in err
