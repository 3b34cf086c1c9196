"""render and the quorum transform against the real broker: rendered definitions load into the
broker and plan to no change; a classic mirrored queue exported with --transform quorum becomes
a quorum queue, keeping its messages. (The real-world files' rendered definitions are loaded in
tests/integration/test_export.py.)"""

from __future__ import annotations

import json
import uuid

import pytest
import yaml

from tests.conftest import BROKER_AUTH, amqp_uri, connect_as, message_count, needs_classic_mirroring, publish
from tests.integration.test_export import load_definitions

pytestmark = pytest.mark.broker

FILES = """
vhosts:
  {vhost}:
    default_queue_type: quorum
    limits: {{max-queues: 20}}
    exchanges:
      orders: {{type: topic, alternate_exchange: unrouted}}
      unrouted: {{type: fanout}}
    queues:
      work: {{type: classic, max_priority: 5}}
      kept: {{delivery_limit: 3}}
    bindings:
      - {{source: orders, destination: work, routing_key: "order.#"}}
      - {{source: unrouted, destination: kept}}
    policies:
      ttl: {{pattern: "^work$", definition: {{message-ttl: 60000}}}}
    operator_policies:
      guard: {{pattern: ".*", apply_to: queues, definition: {{max-length: 50000}}}}
    shovels:
      mover: {{source_uri: "${{RENDER_SRC_URI}}", source_queue: work, destination_uri: "amqp:///{vhost}", destination_queue: kept}}
users:
  {user}:
    password: "${{RENDER_USER_PASSWORD}}"
    tags: [monitoring]
    permissions:
      {vhost}: {{configure: ".*", write: ".*", read: ".*"}}
"""


@pytest.fixture
def user(api):
    name = f"topology-test-{uuid.uuid4().hex[:8]}"
    yield name
    api.delete("users", name)


def test_rendered_definitions_with_substituted_variables_load_to_no_change(run, write, vhost, user, api, monkeypatch):
    path = write(FILES.format(vhost=vhost, user=user))
    rendered = run("render", path, "--format", "definitions")  # no variable set: template mode needs none
    assert rendered.code == 0, rendered.err
    assert "RENDER_USER_PASSWORD" in rendered.err and "RENDER_SRC_URI" in rendered.err
    password = f"pw-{uuid.uuid4().hex}"
    uri = amqp_uri(vhost, *BROKER_AUTH)
    text = rendered.out.replace("${RENDER_USER_PASSWORD}", password).replace("${RENDER_SRC_URI}", uri)
    response = load_definitions(api, json.loads(text))
    assert response.status_code < 400, response.text[:300]

    monkeypatch.setenv("RENDER_USER_PASSWORD", password)
    monkeypatch.setenv("RENDER_SRC_URI", uri)
    plan = run("plan", path, "--format", "json")
    assert plan.code == 0, plan.err
    assert json.loads(plan.out)["changes"] == []
    assert api.get("operator-policies", vhost)[0]["name"] == "guard"
    # the password loaded is the one the variable held
    connect_as(vhost, user, password).close()


def test_kubernetes_resources_render_from_the_same_files(run, write, vhost, user):
    path = write(FILES.format(vhost=vhost, user=user))
    missing = run("render", path, "--format", "k8s")
    assert missing.code == 1 and "--cluster-name" in missing.err
    rendered = run("render", path, "--format", "k8s", "--cluster-name", "rmq")
    assert rendered.code == 0, rendered.err
    kinds = sorted(d["kind"] for d in yaml.safe_load_all(rendered.out))
    assert kinds == sorted(["Vhost", "Exchange", "Exchange", "Queue", "Queue", "Binding", "Binding", "Policy",
                            "OperatorPolicy", "User", "Secret", "Permission", "Shovel", "Secret"])
    refused = run("render", path, "--format", "definitions", "--secrets", "resolve")
    assert refused.code == 1 and "--out" in refused.err


def test_a_classic_mirrored_queue_exported_with_the_quorum_transform_becomes_quorum(run, vhost, api, tmp_path,
                                                                                      broker_version):
    needs_classic_mirroring(broker_version)
    api.put("vhosts", vhost, body={})
    api.put("permissions", vhost, BROKER_AUTH[0], body={"configure": ".*", "write": ".*", "read": ".*"})
    api.put("queues", vhost, "orders", body={"durable": True, "arguments": {"x-max-priority": 5,
                                                                            "x-overflow": "reject-publish-dlx"}})
    api.put("policies", vhost, "mirror", body={"pattern": "^orders$", "apply-to": "queues",
                                                "definition": {"ha-mode": "all", "ha-sync-mode": "automatic"}})
    publish(vhost, "orders", [f"m{i}".encode() for i in range(50)])
    out = tmp_path / "out"
    exported = run("export", "--vhost", vhost, "--no-users", "--out", str(out), "--transform", "quorum")
    assert exported.code == 0, exported.err
    assert f"transform: vhost '{vhost}' queue 'orders': classic (mirrored by policy 'mirror') -> quorum" in exported.out
    assert f"transform: vhost '{vhost}' policy 'mirror': removed (it only held ha-mode, ha-sync-mode)" in exported.out

    plan = run("plan", str(out), "--prune", "--format", "json")
    assert plan.code == 0, plan.err
    actions = sorted((c["action"], c["kind"], c["name"]) for c in json.loads(plan.out)["changes"])
    assert actions == [("delete", "policy", "mirror"), ("replace", "queue", "orders")]
    applied = run("apply", str(out), "--prune", "--auto-approve", "--migrate-messages")
    assert applied.code == 0, applied.err
    queue = api.get("queues", vhost, "orders")
    assert queue["type"] == "quorum" and queue["arguments"] == {"x-overflow": "reject-publish", "x-queue-type": "quorum"}
    assert message_count(vhost, "orders") == 50
    assert api.get("policies", vhost) == []
    again = run("plan", str(out), "--prune", "--format", "json")
    assert json.loads(again.out)["changes"] == []
