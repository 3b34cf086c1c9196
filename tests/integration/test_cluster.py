"""High-availability drift on a real three-node cluster (scripts/cluster.sh): classic mirrors
on every node and synchronised, a mirror that comes back unsynchronised, quorum members
offline while a node is down."""

from __future__ import annotations

import json
import subprocess
import uuid

import pika
import pytest
import requests

from tests.conftest import ROOT, wait_until

pytestmark = [pytest.mark.broker, pytest.mark.cluster]

CLUSTER_URL = "http://127.0.0.1:15681"
SCRIPT = str(ROOT / "scripts" / "cluster.sh")


def cluster(*args: str) -> None:
    subprocess.run([SCRIPT, *args], check=True, capture_output=True, timeout=600)


@pytest.fixture(scope="module")
def cluster_api():
    """Start the cluster for this module's tests and stop it (deleting its data) afterwards."""
    try:
        cluster("start")
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as failure:
        cluster("stop")  # nothing half-started is left behind
        pytest.fail(f"scripts/cluster.sh start failed: {getattr(failure, 'stderr', b'')!r}")
    session = requests.Session()
    session.auth = ("guest", "guest")
    session.headers["content-type"] = "application/json"
    yield session
    cluster("stop")


@pytest.fixture
def cluster_vhost(cluster_api):
    name = f"topology-test-{uuid.uuid4().hex[:10]}"
    yield name
    cluster("start-app", "2")  # a test may leave a node's application stopped
    cluster("start-app", "3")
    cluster_api.delete(f"{CLUSTER_URL}/api/vhosts/{name}", timeout=30)


def queue(api, vhost: str, name: str) -> dict:
    return api.get(f"{CLUSTER_URL}/api/queues/{vhost}/{name}", timeout=30).json()


def drift(run, path: str) -> tuple[int, dict]:
    result = run("drift", path, "--url", CLUSTER_URL, "--format", "json")
    assert result.code in (0, 2), result.err
    return result.code, json.loads(result.out)


def apply_on_cluster(run, path: str) -> None:
    applied = run("apply", path, "--url", CLUSTER_URL, "--amqp-url", "amqp://127.0.0.1:5681/", "--auto-approve")
    assert applied.code == 0, applied.err


def publish(vhost: str, queue_name: str, count: int) -> None:
    connection = pika.BlockingConnection(pika.ConnectionParameters(
        "127.0.0.1", 5681, vhost, pika.PlainCredentials("guest", "guest")))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        for i in range(count):
            channel.basic_publish("", queue_name, f"m{i}".encode(), pika.BasicProperties(delivery_mode=2), mandatory=True)
    finally:
        connection.close()


def test_mirrors_on_every_node_are_in_sync_and_a_restarted_mirror_is_not(run, write, cluster_api, cluster_vhost):
    path = write(f"""
        vhosts:
          {cluster_vhost}:
            queues:
              orders: {{type: classic}}
            policies:
              mirror-all:
                pattern: "^orders$"
                apply_to: queues
                definition: {{ha-mode: all, ha-sync-mode: manual}}
        """)
    apply_on_cluster(run, path)
    wait_until(lambda: len(queue(cluster_api, cluster_vhost, "orders").get("synchronised_slave_nodes") or []) == 2,
               "two synchronised mirrors")
    code, report = drift(run, path)
    assert code == 0 and report["high_availability"]["findings"] == [], report["high_availability"]

    publish(cluster_vhost, "orders", 20)
    cluster("stop-app", "2")
    cluster("start-app", "2")  # with ha-sync-mode manual, its mirror comes back empty: unsynchronised
    wait_until(lambda: "topo2@localhost" in (queue(cluster_api, cluster_vhost, "orders").get("slave_nodes") or [])
               and "topo2@localhost" not in queue(cluster_api, cluster_vhost, "orders").get("synchronised_slave_nodes", []),
               "the restarted mirror to show as unsynchronised")
    code, report = drift(run, path)
    findings = report["high_availability"]["findings"]
    assert code == 2 and [f["check"] for f in findings] == ["mirrors"], findings
    assert "1 of 2 mirror(s) not synchronised: topo2@localhost" in findings[0]["message"]


def test_quorum_members_offline_while_a_node_is_down(run, write, cluster_api, cluster_vhost):
    path = write(f"""
        vhosts:
          {cluster_vhost}:
            queues:
              payments: {{type: quorum, initial_group_size: 3}}
        """)
    apply_on_cluster(run, path)
    wait_until(lambda: len(queue(cluster_api, cluster_vhost, "payments").get("online") or []) == 3, "three members online")
    code, report = drift(run, path)
    assert code == 0 and report["high_availability"]["findings"] == []

    cluster("stop-app", "3")
    wait_until(lambda: "topo3@localhost" not in (queue(cluster_api, cluster_vhost, "payments").get("online") or ["topo3@localhost"]),
               "the member on the stopped node to go offline")
    code, report = drift(run, path)
    findings = report["high_availability"]["findings"]
    assert code == 2 and [f["check"] for f in findings] == ["members"], findings
    assert "2 of 3 quorum member(s) online (offline: topo3@localhost)" in findings[0]["message"]


def test_a_policy_overridden_outside_the_tool_on_the_cluster(run, write, cluster_api, cluster_vhost):
    path = write(f"""
        vhosts:
          {cluster_vhost}:
            queues:
              legacy: {{type: classic}}
            policies:
              mirror-two:
                pattern: "^legacy$"
                apply_to: queues
                priority: 1
                definition: {{ha-mode: exactly, ha-params: 2, ha-sync-mode: automatic}}
        """)
    apply_on_cluster(run, path)
    wait_until(lambda: len(queue(cluster_api, cluster_vhost, "legacy").get("synchronised_slave_nodes") or []) == 1,
               "one synchronised mirror")
    cluster_api.put(f"{CLUSTER_URL}/api/policies/{cluster_vhost}/no-mirrors", timeout=30, data=json.dumps(
        {"pattern": "^legacy$", "apply-to": "queues", "priority": 9, "definition": {"max-length": 100}}))
    code, report = drift(run, path)
    findings = report["high_availability"]["findings"]
    assert code == 2 and [(f["check"], f["expected"], f["actual"]) for f in findings] == [
        ("policy", "mirror-two", "no-mirrors")], findings


def test_mirroring_policies_place_synchronised_mirrors_on_the_expected_nodes(run, write, cluster_api, cluster_vhost):
    """ha-mode exactly and nodes, with ha-sync-mode automatic: the mirrors are where the policy says
    and in sync, also after a mirror's node restarts with messages in the queue."""
    path = write(f"""
        vhosts:
          {cluster_vhost}:
            queues:
              two: {{type: classic}}
              pinned: {{type: classic}}
            policies:
              exactly-two:
                pattern: "^two$"
                apply_to: queues
                definition: {{ha-mode: exactly, ha-params: 2, ha-sync-mode: automatic}}
              on-one-and-three:
                pattern: "^pinned$"
                apply_to: queues
                definition: {{ha-mode: nodes, ha-params: [topo1@localhost, topo3@localhost], ha-sync-mode: automatic}}
        """)
    apply_on_cluster(run, path)
    wait_until(lambda: len(queue(cluster_api, cluster_vhost, "two").get("synchronised_slave_nodes") or []) == 1,
               "one synchronised mirror of 'two'")
    wait_until(lambda: (queue(cluster_api, cluster_vhost, "pinned").get("synchronised_slave_nodes") or []) == ["topo3@localhost"],
               "the mirror of 'pinned' on topo3, synchronised")
    pinned = queue(cluster_api, cluster_vhost, "pinned")
    assert pinned["node"] == "topo1@localhost" and pinned["slave_nodes"] == ["topo3@localhost"]
    code, report = drift(run, path)
    assert code == 0 and report["high_availability"]["findings"] == [], report["high_availability"]

    publish(cluster_vhost, "pinned", 50)
    cluster("stop-app", "3")
    cluster("start-app", "3")  # automatic sync: the mirror catches up by itself
    wait_until(lambda: (queue(cluster_api, cluster_vhost, "pinned").get("synchronised_slave_nodes") or []) == ["topo3@localhost"],
               "the restarted mirror to synchronise by itself")
    code, report = drift(run, path)
    assert code == 0 and report["high_availability"]["findings"] == [], report["high_availability"]
    assert queue(cluster_api, cluster_vhost, "pinned")["messages"] == 50


def test_apply_while_a_node_is_down_then_convergence_when_it_returns(run, write, cluster_api, cluster_vhost):
    """With node 3 down: apply through node 1 works and drift shows what waits for node 3; apply
    through node 3 ends in one clear line; once node 3 is back everything converges by itself."""
    path = write(f"""
        vhosts:
          {cluster_vhost}:
            queues:
              payments: {{type: quorum, initial_group_size: 3}}
              pinned: {{type: classic}}
            policies:
              on-one-and-three:
                pattern: "^pinned$"
                apply_to: queues
                definition: {{ha-mode: nodes, ha-params: [topo1@localhost, topo3@localhost], ha-sync-mode: automatic}}
        """)
    cluster("stop-app", "3")
    through_three = run("apply", path, "--url", "http://127.0.0.1:15683", "--auto-approve")
    assert through_three.code == 1
    assert through_three.err.count("\n") == 1 and "cannot reach the management API at http://127.0.0.1:15683" in through_three.err
    apply_on_cluster(run, path)
    # what waits for node 3 is shown as drift, not hidden (once the statistics show the new queue)
    code, report = wait_until(lambda: (lambda found: found if found[0] == 2 else None)(drift(run, path)),
                              "drift to show the quorum member on node 3 offline", timeout=30)
    findings = report["high_availability"]["findings"]
    assert [(f["queue"], f["check"]) for f in findings] == [("payments", "members")], findings
    assert "offline: topo3@localhost" in findings[0]["message"]
    cluster("start-app", "3")
    wait_until(lambda: len(queue(cluster_api, cluster_vhost, "payments").get("online") or []) == 3
               and (queue(cluster_api, cluster_vhost, "pinned").get("synchronised_slave_nodes") or []) == ["topo3@localhost"],
               "node 3's quorum member online and its mirror synchronised", timeout=60)
    code, report = drift(run, path)
    assert code == 0 and report["high_availability"]["findings"] == [], report["high_availability"]
    again = run("apply", path, "--url", CLUSTER_URL, "--amqp-url", "amqp://127.0.0.1:5681/", "--auto-approve")
    assert again.code == 0 and "Apply complete" not in again.out, again.out  # nothing left to do
