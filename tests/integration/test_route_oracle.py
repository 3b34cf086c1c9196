"""The routing simulator against the broker itself: for generated topologies and messages
(property-based, with hypothesis), the queues the simulator says a message reaches are
exactly the queues the broker delivers it to; and when each copy is rejected, its dead
letters reach exactly the queues the simulator names.

More examples: TOPOLOGY_ORACLE_EXAMPLES=200 scripts/test.sh tests/integration/test_route_oracle.py
"""

from __future__ import annotations

import json
import os
import time
import uuid

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.conftest import connect
from topology.engine import load_valid
from topology.route import Message, route
from topology.state import desired_state

pytestmark = pytest.mark.broker

EXAMPLES = int(os.environ.get("TOPOLOGY_ORACLE_EXAMPLES", "12"))
WORDS = ["a", "b", "", "*", "#"]
HEADER_KEYS = ["h1", "h2", "x-h"]
HEADER_VALUES = [1, 1.0, 2, "1", "a", True, False, None]
QUEUES = [f"q{i}" for i in range(5)]


@st.composite
def topologies(draw):
    """A vhost's exchanges (every simulated type, some internal, some with an alternate
    exchange, possibly a missing one), queues and bindings, with keys from a small
    vocabulary so that they often match."""
    count = draw(st.integers(3, 7))
    exchanges = {}
    for index in range(count):
        spec = {"type": draw(st.sampled_from(["direct", "fanout", "topic", "headers"]))}
        if draw(st.integers(0, 4)) == 0:
            spec["internal"] = True
        if draw(st.integers(0, 3)) == 0:
            spec["alternate_exchange"] = draw(st.sampled_from([f"x{i}" for i in range(count)] + ["x-missing"]))
        exchanges[f"x{index}"] = spec
    queues = {}
    for name in QUEUES[:draw(st.integers(1, len(QUEUES)))]:
        spec = {}
        if draw(st.integers(0, 2)) == 0:
            spec["dead_letter_exchange"] = draw(st.sampled_from(sorted(exchanges) + [""]))
            if draw(st.booleans()):
                spec["dead_letter_routing_key"] = draw(st.sampled_from(["a", "a.b", ""] + QUEUES))
        queues[name] = spec
    bindings, seen = [], set()
    for _ in range(draw(st.integers(0, 14))):
        source = draw(st.sampled_from(sorted(exchanges)))
        to_exchange = draw(st.integers(0, 3)) == 0
        destination = draw(st.sampled_from(sorted(exchanges) if to_exchange else sorted(queues)))
        binding = {"source": source, "destination": destination}
        if to_exchange:
            binding["destination_type"] = "exchange"
        kind = exchanges[source]["type"]
        if kind == "headers":
            arguments = {"x-match": draw(st.sampled_from(["all", "any", "all-with-x", "any-with-x"]))}
            for key in draw(st.lists(st.sampled_from(HEADER_KEYS), max_size=3, unique=True)):
                # the management API refuses a null (void) binding value: only AMQP clients bind with one
                arguments[key] = draw(st.sampled_from([v for v in HEADER_VALUES if v is not None]))
            binding["arguments"] = arguments
        else:
            binding["routing_key"] = ".".join(draw(st.lists(st.sampled_from(WORDS), max_size=3)))
        identity = json.dumps(binding, sort_keys=True)
        if identity not in seen:
            seen.add(identity)
            bindings.append(binding)
    return {"exchanges": exchanges, "queues": queues, "bindings": bindings}


@st.composite
def messages(draw, exchanges: list[str]):
    # pika cannot send a float header: 1.0 stays in the bindings only
    headers = {key: draw(st.sampled_from([v for v in HEADER_VALUES if not isinstance(v, float)]))
               for key in draw(st.lists(st.sampled_from(HEADER_KEYS), max_size=3, unique=True))}
    if draw(st.integers(0, 5)) == 0:
        headers["CC"] = draw(st.lists(st.sampled_from(QUEUES + ["a", "a.b"]), min_size=1, max_size=2))
    if draw(st.integers(0, 7)) == 0:
        headers["BCC"] = draw(st.lists(st.sampled_from(QUEUES + ["b"]), min_size=1, max_size=2))
    return Message(draw(st.sampled_from(exchanges + [""])),
                   ".".join(draw(st.lists(st.sampled_from(WORDS + QUEUES), max_size=3))), headers)


def delivered(vhost: str, topology: dict, sent: list[Message]) -> tuple[list[set[str] | str], dict]:
    """Publish each message (mandatory, with confirms) and read which queues received it
    (``"refused"`` for a publish the broker closed the channel on); then reject every copy, and
    read where each dead letter went: {(message, queue it died in): queues}."""
    import pika
    from pika.exceptions import ChannelClosedByBroker, UnroutableError

    connection = connect(vhost)
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        outcome: list[set[str] | str] = []
        for index, message in enumerate(sent):
            try:
                channel.basic_publish(message.exchange, message.routing_key, str(index).encode(),
                                      pika.BasicProperties(headers=message.headers or None), mandatory=True)
                outcome.append(set())
            except UnroutableError:
                outcome.append(set())
            except ChannelClosedByBroker as error:
                assert error.reply_code == 403, error
                outcome.append("refused")
                channel = connection.channel()
                channel.confirm_delivery()
        held = []
        for queue in topology["queues"]:
            while True:
                method, _, body = channel.basic_get(queue, auto_ack=False)
                if method is None:
                    break
                received = outcome[int(body)]
                assert isinstance(received, set)
                assert queue not in received, f"message {int(body)} reached {queue} twice"
                received.add(queue)
                held.append(method.delivery_tag)
        for tag in held:
            channel.basic_reject(tag, requeue=False)
        dead: dict[tuple[int, str], set[str]] = {}
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < 0.5:  # dead-lettering is asynchronous: read until it is quiet
            for queue in topology["queues"]:
                while True:
                    method, properties, body = channel.basic_get(queue, auto_ack=True)
                    if method is None:
                        break
                    quiet_since = time.monotonic()
                    source = properties.headers["x-death"][0]["queue"]
                    assert queue not in dead.get((int(body), source), set()), "a dead letter arrived twice"
                    dead.setdefault((int(body), source), set()).add(queue)
            connection.sleep(0.05)
        return outcome, dead
    finally:
        connection.close()


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          derandomize=os.environ.get("TOPOLOGY_ORACLE_RANDOM") is None,  # CI: the same examples each run
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_the_simulator_and_the_broker_send_messages_to_the_same_queues(data, run, api, tmp_path):
    topology = data.draw(topologies())
    sent = data.draw(st.lists(messages(sorted(topology["exchanges"])), min_size=4, max_size=12))
    vhost = f"topology-test-{uuid.uuid4().hex[:10]}"
    path = tmp_path / f"{vhost}.yaml"
    path.write_text(yaml.safe_dump({"vhosts": {vhost: topology}}), encoding="utf-8")
    try:
        applied = run("apply", str(path), "--auto-approve")
        assert applied.code == 0, applied.err
        state = desired_state(load_valid([str(path)]))
        expected, expected_dead = [], {}
        for index, message in enumerate(sent):
            result = route(state, vhost, message, dead_letter="rejected", depth=1)
            expected.append("refused" if result.refused else set(result.queues))
            for delivery in result.deliveries:
                if delivery.dead_letter is not None and delivery.dead_letter.queues:
                    expected_dead[(index, delivery.queue)] = set(delivery.dead_letter.queues)
            event("refused" if result.refused else ("0", "1", "2+")[min(len(result.queues), 2)] + " queue(s)"
                  + (" via an alternate exchange" if any(h.via == "alternate-exchange" for d in result.deliveries
                                                         for h in d.path) else ""))
        outcome, dead = delivered(vhost, topology, sent)
        assert outcome == expected
        assert dead == expected_dead
    finally:
        api.delete("vhosts", vhost)


@settings(max_examples=max(EXAMPLES // 2, 4), deadline=None, database=None,
          derandomize=os.environ.get("TOPOLOGY_ORACLE_RANDOM") is None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_topology_test_live_passes_the_tests_the_simulator_writes(data, run, api, tmp_path):
    """The simulator's answers, written as routing tests, pass when run on the broker by
    ``topology test --live`` (its throw-away vhost and consumers), queue types mixed."""
    topology = data.draw(topologies())
    for name in topology["queues"]:
        topology["queues"][name]["type"] = data.draw(st.sampled_from(["classic", "quorum", "stream"]))
        if topology["queues"][name]["type"] == "stream":
            topology["queues"][name].pop("dead_letter_exchange", None)
            topology["queues"][name].pop("dead_letter_routing_key", None)
    sent = data.draw(st.lists(messages(sorted(topology["exchanges"])), min_size=1, max_size=8))
    vhost = "shop"
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump({"vhosts": {vhost: topology}}), encoding="utf-8")
    state = desired_state(load_valid([str(path)]))
    tests = []
    for message in sent:
        result = route(state, vhost, message)
        tests.append({"vhost": vhost, "exchange": message.exchange, "routing_key": message.routing_key,
                      "headers": message.headers, "queues": sorted(result.queues), "refused": bool(result.refused)})
    path.write_text(yaml.safe_dump({"vhosts": {vhost: topology}, "tests": tests}), encoding="utf-8")
    before = {v["name"] for v in api.get("vhosts")}
    result = run("test", str(path), "--live", "--format", "json")
    assert result.code == 0, result.out + result.err
    assert {v["name"] for v in api.get("vhosts")} == before
