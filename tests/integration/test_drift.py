"""topology drift against the real broker: every format, in sync and drifted, orphans,
high-availability findings, variables and values files."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree

import pytest

pytestmark = pytest.mark.broker

DECLARED = """
vhosts:
  {vhost}:
    exchanges:
      orders: {{type: topic}}
    queues:
      orders.created: {{}}
      orders.audit: {{message_ttl: 1h}}
    bindings:
      - {{source: orders, destination: orders.created, routing_key: "order.created"}}
      - {{source: orders, destination: orders.audit, routing_key: "order.#"}}
    policies:
      limits:
        pattern: "^orders\\\\."
        apply_to: queues
        priority: 1
        definition: {{max-length: 10000}}
"""


def drift(run, path: str, output_format: str, *extra: str):
    return run("drift", path, "--format", output_format, *extra)


def test_every_format_says_in_sync_and_exits_0(run, write, vhost):
    path = write(DECLARED.format(vhost=vhost))
    assert run("apply", path, "--auto-approve").code == 0

    text = drift(run, path, "text")
    assert text.code == 0, text.out + text.err
    assert "In sync: 0 of 7 managed object(s) drifted" in text.out

    document = json.loads(drift(run, path, "json").out)
    assert document["drifted"] is False and document["summary"]["in_sync"] == 7
    assert {o["status"] for o in document["objects"]} == {"in_sync"}
    assert document["high_availability"]["findings"] == []

    root = ElementTree.fromstring(drift(run, path, "junit").out)
    assert root.get("failures") == "0" and len(root.findall(".//testcase[@classname='" + vhost + ".queue']")) == 2

    markdown = drift(run, path, "markdown")
    assert markdown.code == 0 and "topology drift: in sync" in markdown.out and "| Kind |" not in markdown.out


def test_drift_behind_the_tools_back_is_reported_in_every_format_and_exits_2(run, write, vhost, api):
    path = write(DECLARED.format(vhost=vhost))
    assert run("apply", path, "--auto-approve").code == 0
    # behind the tool's back: a changed policy, a lost binding, an extra binding between a declared
    # pair, an orphan queue, and a policy that overrides the declared one on one queue
    api.put("policies", vhost, "limits", body={"pattern": "^orders\\.", "apply-to": "queues", "priority": 1,
                                               "definition": {"max-length": 5}})
    api.delete("bindings", vhost, "e", "orders", "q", "orders.created", "order.created")
    api.post("bindings", vhost, "e", "orders", "q", "orders.audit", body={"routing_key": "legacy.#"})
    api.put("queues", vhost, "stray", body={"durable": True})
    api.put("policies", vhost, "hotfix", body={"pattern": "^orders\\.audit$", "apply-to": "queues", "priority": 5,
                                               "definition": {"max-length": 1}})

    document = json.loads(drift(run, path, "json").out)
    assert document["drifted"] is True
    statuses = {(o["kind"], o["name"]): o["status"] for o in document["objects"] if o["status"] != "in_sync"}
    assert statuses == {
        ("policy", "limits"): "changed",
        ("binding", "orders -> queue orders.created [order.created]"): "missing",
        ("binding", "orders -> queue orders.audit [legacy.#]"): "undeclared",
    }
    changed = next(o for o in document["objects"] if o["name"] == "limits")
    assert changed["diff"] == {"definition.max-length": {"live": 5, "declared": 10000}}
    assert changed["declared_at"].endswith("topology.yaml:13")
    assert {(o["kind"], o["name"]) for o in document["orphans"]} == {("queue", "stray"), ("policy", "hotfix")}
    [finding] = document["high_availability"]["findings"]
    assert (finding["queue"], finding["check"], finding["expected"], finding["actual"]) == (
        "orders.audit", "policy", "limits", "hotfix")

    text = drift(run, path, "text")
    assert text.code == 2
    assert f"! policy {vhost}/limits: changed" in text.out and "definition.max-length: 5 on the broker, 10000 in the files" in text.out
    assert f"! queue {vhost}/orders.audit [policy]: policy hotfix is in effect, which no file declares" in text.out
    assert f"? queue {vhost}/stray" in text.out

    junit = drift(run, path, "junit")
    assert junit.code == 2
    root = ElementTree.fromstring(junit.out)
    failed = {(c.get("classname"), c.get("name")) for c in root.iter("testcase") if c.find("failure") is not None}
    assert failed == {
        (f"{vhost}.policy", "limits"),
        (f"{vhost}.binding", "orders -> queue orders.created [order.created]"),
        (f"{vhost}.binding", "orders -> queue orders.audit [legacy.#]"),
        (f"{vhost}.high-availability", "orders.audit"),
    }

    markdown = drift(run, path, "markdown")
    assert markdown.code == 2
    rows = [line for line in markdown.out.splitlines() if line.startswith("| ")]
    assert any(f"`{vhost}/limits`" in row and "changed" in row for row in rows)
    assert any("orders.created [order.created]" in row and "missing" in row for row in rows)
    assert any("`" + vhost + "/orders.audit`" in row and "hotfix" in row for row in rows)
    assert "#### Orphans (2, not counted as drift)" in markdown.out


def test_orphans_count_as_drift_only_with_fail_on_orphans(run, write, vhost, api):
    path = write(DECLARED.format(vhost=vhost))
    assert run("apply", path, "--auto-approve").code == 0
    api.put("exchanges", vhost, "stray", body={"type": "fanout"})
    without = drift(run, path, "text")
    assert without.code == 0 and f"? exchange {vhost}/stray" in without.out and "not counted" in without.out
    with_flag = drift(run, path, "json", "--fail-on-orphans")
    assert with_flag.code == 2 and json.loads(with_flag.out)["orphans"][0]["name"] == "stray"


def test_a_group_size_larger_than_the_cluster_is_not_drift(run, write, vhost, api):
    """RabbitMQ gives a quorum queue min(group size, cluster nodes) members: on this
    single-node broker, a group size of 3 is all it can have (members missing or offline
    on a real cluster: tests/integration/test_cluster.py)."""
    path = write(f"""
        vhosts:
          {vhost}:
            queues:
              payments: {{type: quorum, initial_group_size: 3}}
        """)
    assert run("apply", path, "--auto-approve").code == 0
    assert len(api.get("nodes")) == 1, "this test expects the single-node broker of the test machine"
    document = json.loads(drift(run, path, "json").out)
    if document["high_availability"]["statistics_missing"]:
        document = json.loads(drift(run, path, "json").out)  # a new quorum queue's statistics can take longer
    assert document["high_availability"]["findings"] == [] and document["drifted"] is False
    assert document["high_availability"]["queues_checked"] == 1


def test_a_missing_vhost_is_drift_and_a_bad_file_is_an_error(run, write, vhost):
    path = write(DECLARED.format(vhost=vhost))
    missing = drift(run, path, "json")
    assert missing.code == 2
    assert {o["status"] for o in json.loads(missing.out)["objects"]} == {"missing"}
    bad = write("vhosts: [", name="bad.yaml")
    error = run("drift", bad)
    assert error.code == 1 and "invalid YAML" in error.err


def test_variables_and_values_files_choose_the_environment(run, write, vhost, monkeypatch, tmp_path):
    path = write("""
        vhosts:
          ${VHOST}:
            queues:
              "orders.${ENV}":
                message_ttl: "${TTL:-60000}"
                max_length: ${MAX_LENGTH}
        """)
    staging = write("ENV: staging\nMAX_LENGTH: 100\n", name="staging.yaml")
    prod = write("ENV: prod\nMAX_LENGTH: 5000\n", name="prod.yaml")
    monkeypatch.setenv("VHOST", vhost)
    assert run("apply", path, "--values", staging, "--auto-approve").code == 0
    assert run("drift", path, "--values", staging).code == 0
    # the later values file wins: prod's queue is not there
    document = json.loads(run("drift", path, "--values", staging, "--values", prod, "--format", "json").out)
    assert {o["name"]: o["status"] for o in document["objects"] if o["kind"] == "queue"} == {"orders.prod": "missing"}
    # the environment wins over every values file
    monkeypatch.setenv("MAX_LENGTH", "7")
    document = json.loads(run("drift", path, "--values", staging, "--format", "json").out)
    [queue] = [o for o in document["objects"] if o["kind"] == "queue"]
    assert queue["diff"] == {"arguments.x-max-length": {"live": 100, "declared": 7}}
    monkeypatch.delenv("MAX_LENGTH")
    undefined = run("drift", path)
    assert undefined.code == 1 and f"{path}:7:" in undefined.err and "undefined variable MAX_LENGTH" in undefined.err
