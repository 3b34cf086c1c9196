"""`topology lint` and `topology route --dead-letter` agree on dead-letter loops (pure).

On generated topologies (hypothesis) with chains of dead-letter exchanges of every simulated
type, with and without dead-letter routing keys and message TTLs: every loop `route` finds
among queues without a message TTL, for every message tried, lint reports (TOP003): for
`rejected` every loop, for the other reasons (whose cycles the broker stops by dropping the
message) those the message comes back round with the routing keys it had; and every loop lint
reports, `route` finds for the message lint names. Then the reported case itself, through
both commands.
"""

from __future__ import annotations

import itertools
import json
import tempfile
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from topology.engine import load_valid
from topology.lint import Options, lint
from topology.route import REASONS, Message, Network, Route, dead_letter_loops, has_message_ttl, route
from topology.rules.versions import OLDEST_SUPPORTED
from topology.state import desired_state

QUEUES = [f"q{i}" for i in range(5)]
EXCHANGES = [f"x{i}" for i in range(4)]
KEYS = ["", "a", "b", "a.b"] + QUEUES
"""Keys for bindings, dead-letter routing keys and messages."""
TOPIC_WORDS = ["a", "b", "*", "#"]
MESSAGE_KEYS = sorted(set(KEYS) | {".".join(p) for n in (1, 2) for p in itertools.product(["a", "b", "c"], repeat=n)})
"""Every message tried: each of these keys, to the default exchange and to each exchange."""


@st.composite
def topologies(draw) -> dict:
    """One vhost: exchanges of every simulated type (some internal, some with an alternate
    exchange), queues with or without a dead-letter exchange, routing key, TTL, length limit
    or delivery limit, and bindings with keys from a small vocabulary so that they match."""
    exchanges = {}
    names = EXCHANGES[:draw(st.integers(1, len(EXCHANGES)))]
    for name in names:
        spec = {"type": draw(st.sampled_from(["fanout", "fanout", "direct", "topic", "headers"]))}
        if draw(st.integers(0, 7)) == 0:
            spec["internal"] = True
        if draw(st.integers(0, 5)) == 0:
            spec["alternate_exchange"] = draw(st.sampled_from(names))
        exchanges[name] = spec
    queues = {}
    for name in QUEUES[:draw(st.integers(1, len(QUEUES)))]:
        spec: dict = {}
        if draw(st.integers(0, 5)) == 0:
            spec = {"type": "quorum", "delivery_limit": draw(st.integers(0, 3))}
        if draw(st.integers(0, 3)) > 0:
            spec["dead_letter_exchange"] = draw(st.sampled_from(names + [""]))
            if draw(st.integers(0, 2)) == 0:
                spec["dead_letter_routing_key"] = draw(st.sampled_from(KEYS))
        if draw(st.integers(0, 4)) == 0:
            spec["message_ttl"] = "1s"
        if draw(st.integers(0, 4)) == 0:
            spec["max_length"] = 1
        queues[name] = spec
    bindings, seen = [], set()
    for _ in range(draw(st.integers(0, 12))):
        source = draw(st.sampled_from(names))
        to_exchange = draw(st.integers(0, 4)) == 0
        binding = {"source": source, "destination": draw(st.sampled_from(names if to_exchange else sorted(queues)))}
        if to_exchange:
            binding["destination_type"] = "exchange"
        kind = exchanges[source]["type"]
        if kind == "topic":
            binding["routing_key"] = ".".join(draw(st.lists(st.sampled_from(TOPIC_WORDS), max_size=3)))
        elif kind == "direct":
            binding["routing_key"] = draw(st.sampled_from(KEYS))
        elif kind == "headers":
            binding["arguments"] = draw(st.sampled_from([{"x-match": "all"}, {"x-match": "any", "h": 1},
                                                         {"x-first-death-queue": "q0"}]))
        identity = json.dumps(binding, sort_keys=True)
        if identity not in seen:
            seen.add(identity)
            bindings.append(binding)
    return {"vhosts": {"v": {"exchanges": exchanges, "queues": queues, "bindings": bindings}}}


def load(document: dict, directory: str):
    path = Path(directory) / "t.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    topology = load_valid([str(path)], offline=True)
    return topology, desired_state(topology)


def route_loops(result: Route) -> list[tuple[str, tuple[str, ...]]]:
    """Each dead-letter loop a simulated route shows, with the message's routing keys as it left
    the queue it comes back to and as it comes back: (``(a, b, a)``, keys equal)."""
    loops: list[tuple[str, tuple[str, ...]]] = []

    def walk(dead: Route | None, keys: dict[str, tuple[str, ...]]) -> None:
        if dead is None:
            return
        for loop in dead.loops:
            loops.append((loop, keys.get(loop[0]) == tuple(dead.routing_keys)))
        for onward in dead.deliveries:
            walk(onward.dead_letter, {**keys, onward.queue: tuple(dead.routing_keys)})

    for delivery in result.deliveries:
        walk(delivery.dead_letter, {delivery.queue: tuple(result.routing_keys)})
    return loops


def check_agreement(document: dict, directory: str, version: tuple[int, ...] = OLDEST_SUPPORTED) -> None:
    topology, state = load(document, directory)
    network = Network(state, "v", version)
    found = dead_letter_loops(network)
    reported = sorted(f.subject for f in lint(topology, state, Options(version=version), lines={})
                      if f.rule == "TOP003")
    assert reported == sorted(f"vhost 'v' queue {loop.queues[0]!r}" for loop in found)
    ttl = {name for name, spec in network.queues.items() if has_message_ttl(network, spec)}
    sources = [""] + [name for name, spec in document["vhosts"]["v"]["exchanges"].items() if not spec.get("internal")]
    covered: set[str] = set()
    for exchange, key in itertools.product(sources, MESSAGE_KEYS):
        for reason in REASONS:
            result = route(state, "v", Message(exchange, key), dead_letter=reason, version=version)
            for loop, same in route_loops(result):
                if set(loop) & ttl:
                    continue  # the retry pattern: lint passes it
                if reason != "rejected" and not same:
                    continue  # the broker drops it, and rejected it would not come back as it was: no loop
                owners = [f for f in found if set(loop) <= f.members]
                assert owners, f"route finds {' -> '.join(loop)} ({reason}, {exchange!r} {key!r}); lint does not"
                covered |= set(loop)
    for loop in found:  # lint's own example message loops when route follows it
        exchange, key = loop.published
        followed = route(state, "v", Message(exchange, key), dead_letter="rejected", version=version)
        rounds = [r for r, _ in route_loops(followed) if set(r) <= loop.members]
        assert rounds, f"lint reports {' -> '.join(loop.queues)}; route does not find it for {exchange!r} {key!r}"
        assert not set(loop.queues) & ttl
        covered |= {q for r in rounds for q in r}
    for loop in found:
        assert loop.members <= covered  # every queue lint says loops, route shows looping


@settings(max_examples=100, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(topologies(), st.sampled_from([OLDEST_SUPPORTED, (3, 13, 7), (4, 0, 5)]))
def test_lint_reports_exactly_the_loops_route_finds(document, version):
    """Before 3.13 dead letters carry x-first-death-* headers that headers exchanges route on; from
    4.0 quorum queues have a delivery limit unless told otherwise."""
    with tempfile.TemporaryDirectory() as directory:
        check_agreement(document, directory, version)


REPORTED = """\
vhosts:
  v:
    exchanges:
      work: {type: direct}
      dlx-a: {type: fanout}
      dlx-b: {type: fanout}
    queues:
      a: {dead_letter_exchange: dlx-a}
      b: {dead_letter_exchange: dlx-b%s}
    bindings:
      - {source: work, destination: a, routing_key: a}
      - {source: dlx-a, destination: b}
      - {source: dlx-b, destination: a}
"""
"""The reported case: two fanout dead-letter exchanges, no TTL on the way (or one on b)."""


def fanout_loop(ttl: str = "") -> dict:
    return yaml.safe_load(REPORTED % (f", message_ttl: {ttl}" if ttl else ""))


@pytest.mark.parametrize("document", [
    fanout_loop(), fanout_loop("30s"),
    # a key-dependent loop: dead letters keep their key, and only 'retry' comes back
    {"vhosts": {"v": {"exchanges": {"in": {"type": "fanout"}, "dlx": {"type": "direct"}},
                      "queues": {"jobs": {"dead_letter_exchange": "dlx"}},
                      "bindings": [{"source": "in", "destination": "jobs"},
                                   {"source": "dlx", "destination": "jobs", "routing_key": "retry"}]}}},
    # keys fixed by dead-letter routing keys, through a topic and a direct exchange
    {"vhosts": {"v": {"exchanges": {"t": {"type": "topic"}, "d": {"type": "direct"}},
                      "queues": {"a": {"dead_letter_exchange": "t", "dead_letter_routing_key": "to.b"},
                                 "b": {"dead_letter_exchange": "d", "dead_letter_routing_key": "a"}},
                      "bindings": [{"source": "t", "destination": "b", "routing_key": "to.*"},
                                   {"source": "d", "destination": "a", "routing_key": "a"}]}}},
    # a loop that needs a key both topic bindings match: 'a.b'
    {"vhosts": {"v": {"exchanges": {"s": {"type": "topic"}, "t": {"type": "topic"}},
                      "queues": {"a": {"dead_letter_exchange": "s"}, "b": {"dead_letter_exchange": "t"}},
                      "bindings": [{"source": "s", "destination": "b", "routing_key": "*.b"},
                                   {"source": "t", "destination": "a", "routing_key": "a.*"}]}}},
])
def test_chosen_topologies_agree(document, tmp_path):
    check_agreement(document, str(tmp_path))


def run(arguments: list[str], capsys) -> tuple[int, str]:
    from topology.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(arguments)
    return exit_.value.code, capsys.readouterr().out


def test_the_reported_case_two_fanout_dead_letter_exchanges_without_ttl(tmp_path, capsys):
    path = tmp_path / "t.yaml"
    path.write_text(REPORTED % "", encoding="utf-8")
    code, out = run(["route", str(path), "--vhost", "v", "--exchange", "work", "--routing-key", "a",
                     "--dead-letter", "rejected"], capsys)
    assert code == 0
    assert out.splitlines()[-1].strip() == (
        "cycle: queue 'a': the message comes back each time it is rejected, round a -> b -> a (the broker does "
        "not stop this loop); no queue on the way has a message TTL (lint: TOP003)")
    code, out = run(["lint", str(path)], capsys)
    assert code == 2
    assert out.splitlines()[0] == (f"{path}:8: error TOP003 vhost 'v' queue 'a': dead letters loop through "
                                   "a -> b -> a with no message TTL on the way")
    # with a TTL on b, the retry pattern: route still shows the loop of rejections, and says why lint passes it
    path.write_text(REPORTED % ", message_ttl: 30s", encoding="utf-8")
    code, out = run(["route", str(path), "--vhost", "v", "--exchange", "work", "--routing-key", "a",
                     "--dead-letter", "rejected"], capsys)
    assert out.splitlines()[-1].strip().endswith("'b' holds it for a message TTL on the way (the retry pattern, "
                                                 "which lint passes)")
    code, out = run(["lint", str(path)], capsys)
    assert code == 0 and "TOP003" not in out


def test_a_key_dependent_loop_names_a_message_that_loops(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(textwrap.dedent("""
        vhosts:
          v:
            exchanges: {in: {type: fanout}, dlx: {type: direct}}
            queues:
              jobs: {dead_letter_exchange: dlx}
            bindings:
              - {source: in, destination: jobs}
              - {source: dlx, destination: jobs, routing_key: retry}
    """), encoding="utf-8")
    topology = load_valid([str(path)], offline=True)
    messages = [f.message for f in lint(topology, desired_state(topology)) if f.rule == "TOP003"]
    assert messages == ["dead letters loop through jobs -> jobs with no message TTL on the way (for some messages, "
                        "such as one published to exchange 'dlx' with routing key 'retry')"]
