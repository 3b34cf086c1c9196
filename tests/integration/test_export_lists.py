"""On brokers whose definitions export is slow at scale (before RabbitMQ 4.3.3), the tool reads a
vhost from the broker's lists instead; the objects it sees must be those of the export, whatever
the vhost holds. On later brokers it reads the export itself."""

import pytest

from conftest import connect, management_client
from topology.rules.versions import has_slow_export

pytestmark = pytest.mark.broker

SECTIONS = ("queues", "exchanges", "bindings", "policies", "parameters")


def _objects(document: dict) -> dict:
    """Each section's objects, in any order, without their vhost (3.10 writes it on policies and
    parameters, 4.0 does not)."""
    return {section: sorted(repr(sorted((k, v) for k, v in entry.items() if k != "vhost"))
                            for entry in document.get(section) or [])
            for section in SECTIONS}


def test_the_tool_reads_a_vhost_as_the_broker_exports_it(api, vhost, broker_version):
    api.put("vhosts", vhost)
    api.put("exchanges", vhost, "x", body={"type": "topic", "arguments": {"alternate-exchange": "ae"}})
    api.put("exchanges", vhost, "xi", body={"type": "headers", "internal": True, "durable": False})
    api.put("queues", vhost, "plain", body={"arguments": {"x-message-ttl": 60000}})
    api.put("queues", vhost, "qq", body={"durable": True, "arguments": {"x-queue-type": "quorum"}})
    api.put("queues", vhost, "st", body={"durable": True, "arguments": {"x-queue-type": "stream"}})
    api.post("bindings", vhost, "e", "x", "q", "plain", body={"routing_key": "a.#"})
    api.post("bindings", vhost, "e", "amq.topic", "q", "qq", body={"routing_key": "b"})
    api.post("bindings", vhost, "e", "x", "e", "xi", body={"routing_key": "c", "arguments": {"x-match": "any"}})
    api.put("policies", vhost, "p", body={"pattern": "^plain$", "definition": {"max-length": 10}, "apply-to": "queues"})
    api.put("operator-policies", vhost, "op", body={"pattern": "^qq$", "definition": {"max-length": 100},
                                                     "apply-to": "queues"})
    api.put("vhost-limits", vhost, "max-queues", body={"value": 50})
    api.put("parameters", "federation-upstream", vhost, "up", body={"value": {"uri": "amqp://", "expires": 60000}})
    connection = connect(vhost)  # an exclusive queue, and bindings to it: the export leaves both out
    try:
        channel = connection.channel()
        mine = channel.queue_declare("", exclusive=True).method.queue
        channel.queue_bind(mine, "x", "d")
        channel.queue_bind(mine, "amq.fanout")
        exported = api.get("definitions", vhost)
        client = management_client()
        read = client.definitions(vhost)
        made = dict(client.requests_made)
    finally:
        connection.close()
    assert mine not in {q["name"] for q in read["queues"]}
    if has_slow_export(broker_version):
        # the overview (for the version), then the five lists
        assert made == {"GET": 6}
        assert _objects(read) == _objects(exported)
        assert {q["name"] for q in read["queues"]} == {"plain", "qq", "st"}
        assert {(b["source"], b["destination"]) for b in read["bindings"]} == {("x", "plain"), ("amq.topic", "qq"),
                                                                               ("x", "xi")}
        assert {p["component"] for p in read["parameters"]} >= {"federation-upstream", "operator_policy",
                                                                "vhost-limits"}
    else:
        assert made == {"GET": 2}  # the overview, then the export itself
        assert read == exported


def test_a_vhost_that_is_not_there_reads_as_the_export_says_it(api, vhost):
    from topology.errors import BrokerError

    answer = api.session.get(api.url("definitions", vhost), timeout=30)
    assert answer.status_code == 400  # "vhost_not_found" (the tool reads only the vhosts the broker lists)
    client = management_client()
    with pytest.raises(BrokerError, match="vhost_not_found"):
        client.definitions(vhost)  # before 4.3.3: the lists answer 404, and the export is asked what it says
