"""A connection the broker really closes, as a broker restart or a network cut would: the apply lock
and the queue inspector say so in words, never with a pika class name. The connection is closed
through the management API (only the test's own, found by its vhost), the broker keeps running."""

from __future__ import annotations

import re
import time

import pytest

from tests.conftest import BROKER_AUTH, amqp_uri

CLOSED = ("the broker closed the connection: Closed via management plugin",
          "the connection dropped (the broker restarted, or the network cut it)")
"""What a connection closed through the management API is said to be: the broker's close, or the
dropped socket when the client reads that first."""

PIKA_WORDS = re.compile(r"StreamLost|ConnectionClosed|ChannelClosed|WrongState|AMQP[A-Z]\w*(?:Error|Timeout)|"
                        r"CONNECTION_FORCED|Error\b")


def own_connection(api, vhost: str, name: str) -> str:
    """The broker's name of the one connection into ``vhost`` that the tool named ``name``."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        found = [c["name"] for c in api.get("connections") if c.get("vhost") == vhost
                 and (c.get("client_properties") or {}).get("connection_name") == name]
        if found:
            assert len(found) == 1, found
            return found[0]
        time.sleep(0.2)
    pytest.fail(f"no connection {name!r} into vhost {vhost!r} showed up")


def make_vhost(api, vhost: str) -> None:
    api.put("vhosts", vhost)
    api.put("permissions", vhost, BROKER_AUTH[0], body={"configure": ".*", "write": ".*", "read": ".*"})


def test_a_lost_apply_lock_says_why_in_words(api, vhost, other_vhost):
    from topology.broker.amqp import Amqp, ApplyLock
    from topology.errors import BrokerError
    from topology.locks import vhost_key

    make_vhost(api, vhost)
    amqp = Amqp(amqp_uri(vhost), *BROKER_AUTH, timeout=10)  # the lock queues live in the test's own vhost
    lock = ApplyLock(amqp)
    lock.acquire([vhost_key(other_vhost)], timeout=30)
    try:
        lock.check()  # held
        assert api.delete("connections", own_connection(api, vhost, "topology apply lock")) == 204
        deadline = time.monotonic() + 15
        while True:
            try:
                lock.check()
            except BrokerError as lost:
                said = str(lost)
                break
            assert time.monotonic() < deadline, "the lost lock was never noticed"
            time.sleep(0.2)
        assert said in [f"lost the apply lock on {amqp.display}: {why}; stopped" for why in CLOSED], said
        assert not PIKA_WORDS.search(said), said
    finally:
        lock.release()


def test_an_inspector_whose_connection_was_closed_says_why_in_words(api, vhost):
    from topology.broker.amqp import Amqp, QueueInspector
    from topology.errors import BrokerError

    make_vhost(api, vhost)
    api.put("queues", vhost, "orders", body={"durable": True})
    inspector = QueueInspector(Amqp(amqp_uri(vhost), *BROKER_AUTH, timeout=10))
    try:
        assert inspector.counts(vhost, "orders") == (0, 0)
        # the broker has sent its close when the request returns; the inspector finds it at its next use
        assert api.delete("connections", own_connection(api, vhost, "topology apply")) == 204
        with pytest.raises(BrokerError) as raised:
            inspector.counts(vhost, "orders")
        said = str(raised.value)
        assert said in [f"lost the AMQP connection while inspecting queue {vhost}/orders: {why}" for why in CLOSED], said
        assert not PIKA_WORDS.search(said), said
    finally:
        inspector.close()


def test_a_missing_queue_is_named_without_the_reply_code_name(api, vhost):
    """The broker's own reply, without its ``NOT_FOUND - `` style prefix."""
    from topology.broker.amqp import Amqp, QueueInspector
    from topology.errors import BrokerError

    make_vhost(api, vhost)
    inspector = QueueInspector(Amqp(amqp_uri(vhost), *BROKER_AUTH, timeout=10))
    try:
        with pytest.raises(BrokerError) as raised:
            inspector.stream_has_messages(vhost, "no-such-stream", wait=0.5)
        said = str(raised.value)
        assert said.startswith(f"cannot read stream {vhost}/no-such-stream: ") and "no queue 'no-such-stream'" in said
        assert "NOT_FOUND" not in said
    finally:
        inspector.close()
