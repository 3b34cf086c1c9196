"""Every kind of object, built from the files and applied, reads back from the broker as the same
object (the per-kind round trip of tests/unit/test_kinds.py, with the broker in the middle)."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import AMQP_ADDRESS, management_client
from topology.broker.live import read_live
from topology.kinds import KINDS
from topology.loader import load_valid
from topology.state import desired_state

pytestmark = pytest.mark.broker


@pytest.fixture
def names(api):
    """A user and a global parameter of this test, deleted after it."""
    suffix = uuid.uuid4().hex[:8]
    made = {"user": f"topology-test-{suffix}", "parameter": f"topology-test-{suffix}"}
    yield made
    api.delete("users", made["user"])
    api.delete("global-parameters", made["parameter"])


def test_every_kind_applied_reads_back_as_the_object_the_files_declare(run, write, vhost, names, monkeypatch):
    monkeypatch.setenv("KIND_PASSWORD", "kinds-s3cret")
    user, parameter = names["user"], names["parameter"]
    path = write(f"""
        vhosts:
          {vhost}:
            description: every kind
            tags: [a, b]
            default_queue_type: quorum
            tracing: true
            limits: {{max-queues: 10}}
            exchanges:
              events: {{type: topic, alternate_exchange: unrouted}}
              unrouted: {{type: fanout, internal: true}}
            queues:
              orders: {{max_length: 10, delivery_limit: 5, dead_letter_exchange: dlx}}
              scratch: {{type: classic, message_ttl: 30s}}  # durable: transient queues are deprecated on 4.x
              log: {{type: stream, max_age: 7D}}
            bindings:
              - {{source: events, destination: orders, routing_key: "orders.#"}}
              - {{source: events, destination: unrouted, destination_type: exchange, arguments: {{a: 1}}}}
            policies:
              ttl: {{pattern: "^orders$", apply_to: queues, priority: 3, definition: {{max-length-bytes: 1MiB}}}}
            operator_policies:
              cap: {{pattern: "^scratch$", apply_to: queues, definition: {{max-length: 1000}}}}
            shovels:
              mover:
                source_uri: "amqp://{user}:${{KIND_PASSWORD}}@{AMQP_ADDRESS}/{vhost}"
                source_queue: scratch
                destination_uri: "amqp://{user}:${{KIND_PASSWORD}}@{AMQP_ADDRESS}/{vhost}"
                destination_queue: orders
            federation_upstreams:
              origin: {{uri: "amqp://{user}:${{KIND_PASSWORD}}@{AMQP_ADDRESS}/{vhost}", max_hops: 2}}
            federation_upstream_sets:
              all:
                - {{upstream: origin}}
        users:
          {user}:
            password: ${{KIND_PASSWORD}}
            tags: [monitoring]
            limits: {{max-connections: 3}}
            permissions:
              {vhost}: {{configure: ".*", write: ".*", read: ".*"}}
            topic_permissions:
              {vhost}:
                events: {{write: "^orders\\\\.", read: ".*"}}
        global_parameters:
          {parameter}: {{region: eu}}
        """)
    applied = run("apply", path, "--auto-approve")
    assert applied.code == 0, applied.err

    desired = desired_state(load_valid([path]))
    assert {r.kind for r in desired.objects.values()} | {"vhost"} == {kind.kind for kind in KINDS}
    live = read_live(management_client(), [vhost], access=True, limits=True, parameters=True,
                     operator_policies=[vhost], internal_exchanges=[(vhost, "unrouted")])
    assert live.vhosts[vhost] == desired.vhosts[vhost]
    for key, resource in desired.objects.items():
        assert key in live.objects, key
        assert live.objects[key].props() == resource.props(), key
