"""validate accepts exactly what the broker accepts, at the broker's own limits: TTL and expiry
(ten years), queue name length (255 bytes of UTF-8), a dead-letter routing key without its exchange.
Each generated queue is checked by `topology validate` and declared raw on the broker."""

from __future__ import annotations

import os

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from topology.rules.queues import MAX_EXPIRY_MS, MAX_QUEUE_NAME_BYTES

pytestmark = pytest.mark.broker

EXAMPLES = int(os.environ.get("TOPOLOGY_LIMIT_EXAMPLES", "40"))


def near(limit: int) -> st.SearchStrategy[int]:
    return st.one_of(st.integers(limit - 2, limit + 2), st.integers(0, limit * 4), st.just(10**20))


@st.composite
def queues(draw):
    width = draw(st.integers(MAX_QUEUE_NAME_BYTES - 3, MAX_QUEUE_NAME_BYTES + 3))
    letter = draw(st.sampled_from(["a", "é", "キ"]))  # 1, 2 and 3 bytes of UTF-8
    name = ("q" + letter * width)[:width] if letter == "a" else "q" * (width % len(letter.encode())) + letter * (
        width // len(letter.encode()))
    arguments = {}
    for argument in draw(st.lists(st.sampled_from(["x-message-ttl", "x-expires", "x-dead-letter-routing-key",
                                                   "x-dead-letter-exchange"]), unique=True, max_size=3)):
        arguments[argument] = draw(near(MAX_EXPIRY_MS)) if argument in ("x-message-ttl", "x-expires") else "dlx"
    if arguments.get("x-expires") == 0:
        arguments["x-expires"] = 1
    return name, arguments


@settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(queue=queues())
def test_validate_accepts_what_the_broker_accepts_at_its_limits(queue, run, tmp_path, api, vhost):
    name, arguments = queue
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump({"vhosts": {vhost: {"exchanges": {"dlx": {"type": "fanout"}},
                                                       "queues": {name: {"arguments": arguments}}}}},
                                   allow_unicode=True), encoding="utf-8")
    valid = run("validate", str(path))
    api.put("vhosts", vhost)
    api.put("exchanges", vhost, "dlx", body={"type": "fanout"})
    response = api.session.put(api.url("queues", vhost, name), json={"durable": True, "arguments": arguments}, timeout=30)
    api.delete("queues", vhost, name)
    accepted = response.status_code < 300
    assert (valid.code == 0) is accepted, (name.encode(), arguments, valid.err, response.text[:200])
    if not accepted:
        assert valid.err.count("\n") >= 2 and "Traceback" not in valid.err
