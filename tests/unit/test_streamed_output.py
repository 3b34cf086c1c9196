"""The JSON plan and the drift report written piece by piece: the same bytes as the document
built whole, masked as it is written, and no secret in what is printed (offline)."""

from __future__ import annotations

import json
import random

import pytest

from tests.conftest import load_text
from tests.unit.test_export_pure import live_state
from topology import cli, redact
from topology.broker.live import BrokerInfo
from topology.diff import diff
from topology.drift import build_report
from topology.ha import QueueHealth
from topology.plan import build, load_saved_plan, read_saved_plan, saved_plan, saved_plan_pieces, write_saved_plan
from topology.render import drift as render_drift
from topology.render.json import plan_pieces, render_plan
from topology.render.stream import Items, compact_pieces, pieces
from topology.state import desired_state

TOPOLOGY = """
vhosts:
  shop:
    exchanges:
      orders: {type: topic}
      unrouted: {type: fanout}
    queues:
      work: {type: quorum, delivery_limit: 5}
      commandes-é: {message_ttl: 1000}
      audit-fed-secret-2: {}
    bindings:
      - {source: orders, destination: work, routing_key: "order.#"}
      - {source: orders, destination: commandes-é, routing_key: "commande.\\"quoted\\""}
    policies:
      ttl: {pattern: "^work$", apply_to: queues, definition: {message-ttl: 1000}}
    shovels:
      mover: {source_uri: "${SRC_URI}", source_queue: work, destination_uri: "amqp://", destination_queue: work}
    federation_upstreams:
      origin: {uri: "amqp://fed:${FED_PASSWORD}@upstream/shop", exchange: orders}
users:
  orders-svc:
    password: "${ORDERS_SVC_PASSWORD}"
    tags: [monitoring]
    permissions:
      shop: {configure: "^orders", write: ".*", read: ".*"}
"""
SECRETS = {"SRC_URI": "amqp://mover:uri-secret-1@src/shop", "FED_PASSWORD": "fed-secret-2",
           "ORDERS_SVC_PASSWORD": "user-secret-3"}
LIVE = {
    "vhosts": [{"name": "shop"}],
    "exchanges": [{"name": "orders", "vhost": "shop", "type": "direct", "durable": True}],
    "queues": [{"name": "work", "vhost": "shop", "durable": True, "arguments": {"x-queue-type": "classic"}},
               {"name": "scratch", "vhost": "shop", "durable": True, "arguments": {}}],
    "policies": [{"name": "ttl", "vhost": "shop", "pattern": "^work$", "apply-to": "queues", "priority": 0,
                  "definition": {"message-ttl": 5000}}],
}
BROKER = BrokerInfo(url="http://user:broker-secret-4@127.0.0.1:15672", version="4.0.5", cluster_name="rabbit@é")


@pytest.fixture(autouse=True)
def _forget_secrets():
    redact.forget_all()
    yield
    redact.forget_all()


@pytest.fixture
def made(tmp_path):
    """A plan with creations, updates, replacements and an unmanaged queue, secrets in it, and the
    drift report made from it."""
    desired = desired_state(load_text(tmp_path, TOPOLOGY, SECRETS))
    redact.register_url(BROKER.url)
    live = live_state(LIVE, ["shop"])
    plan = build(diff(desired, live), live, vhosts=["shop"], broker=BROKER)
    assert {c.action for c in plan.changes} >= {"create", "update", "replace"} and plan.unmanaged
    report = build_report(plan, desired, QueueHealth(checked=[("shop", "work")], unknown=[("shop", "work")]))
    return plan, report


def printed(capsys, write) -> str:
    capsys.readouterr()
    write()
    return capsys.readouterr().out


def test_the_streamed_json_plan_is_the_document_built_whole(made):
    plan, _ = made
    whole = json.dumps(plan.to_dict(), indent=2, ensure_ascii=False)
    assert "".join(plan_pieces(plan)) == render_plan(plan) == whole
    assert len(list(plan_pieces(plan))) > len(plan.changes)  # a change at a time, not one string


@pytest.mark.parametrize("chunk", [1, 7, 100, None])
def test_the_printed_json_plan_is_masked_as_it_was_whole_and_holds_no_secret(made, capsys, monkeypatch, chunk):
    plan, _ = made
    whole = json.dumps(plan.to_dict(), indent=2, ensure_ascii=False)
    assert any(secret in whole for secret in SECRETS.values())  # there is something to mask
    before = printed(capsys, lambda: cli.echo(whole))
    monkeypatch.setattr(redact, "STREAM_CHUNK", chunk or redact.STREAM_CHUNK)
    streamed = printed(capsys, lambda: cli.echo_pieces(plan_pieces(plan)))
    assert streamed == before
    for secret in [*SECRETS.values(), "broker-secret-4"]:
        assert secret not in streamed
    assert "audit-***" in streamed and "commandes-é" in streamed
    assert json.loads(streamed)["summary"]["unmanaged"] == 1


@pytest.mark.parametrize("output_format", render_drift.FORMATS)
def test_every_streamed_drift_report_is_the_report_built_whole(made, capsys, monkeypatch, output_format):
    _, report = made
    text = render_drift.render(report, output_format)
    if output_format == "json":
        assert text == json.dumps(report.to_dict(), indent=2, ensure_ascii=False)
    assert "".join(render_drift.render_pieces(report, output_format)) == text
    before = printed(capsys, lambda: cli.echo(text.rstrip("\n")))
    monkeypatch.setattr(redact, "STREAM_CHUNK", 5)
    streamed = printed(capsys, lambda: cli.echo_pieces(render_drift.render_pieces(report, output_format)))
    assert streamed == before
    for secret in [*SECRETS.values(), "broker-secret-4"]:
        assert secret not in streamed


@pytest.mark.parametrize("output_format", ["json", "junit", "markdown"])
def test_several_targets_reports_streamed_are_the_documents_built_whole(made, output_format):
    _, report = made
    outcomes = [("one", report, None, []), ("two", None, "cannot reach the broker", ["a detail"])]
    whole = {"json": render_drift.render_many_json, "junit": render_drift.render_many_junit,
             "markdown": render_drift.render_many_markdown}[output_format](outcomes)
    if output_format == "json":
        assert whole == json.dumps({"targets": [report.to_dict(), {"target": "two", "error": "cannot reach the broker",
                                                                   "details": ["a detail"]}]}, indent=2, ensure_ascii=False)
    assert "".join(render_drift.render_many_pieces(outcomes, output_format)) == whole


def test_several_targets_plans_in_json_are_the_document_built_whole(made):
    plan, _ = made
    targets = [{"target": "a", "plan": plan, "error": None, "details": []},
               {"target": "b", "plan": None, "error": "failed", "details": ["why"]}]
    whole = json.dumps({"targets": [dict(t, plan=t["plan"].to_dict() if t["plan"] else None) for t in targets]},
                       indent=2, ensure_ascii=False)
    lazy = {"targets": [dict(t, plan=t["plan"].to_dict(items=Items) if t["plan"] else None) for t in targets]}
    assert "".join(pieces(lazy)) == whole


def _value(rng: random.Random, depth: int = 0):
    """A random JSON value, with lazy arrays in it (and what json.dumps writes of it, the same value without them)."""
    roll = rng.random()
    if depth > 3 or roll < 0.3:
        scalar = rng.choice([0, -7, 2.5, True, False, None, "", "é\n\"x\"\t", "a\u2028b", "\x1b[31m", 10**30, -0.0,
                             1e300, float("nan"), float("inf"), 3.0, {1: "a", 2: [1.5]}, {True: None}, ("t", 1)])
        return scalar, scalar
    if roll < 0.55:
        pairs = [(rng.choice(["k", "é", "a b", "\n"]) + str(i), _value(rng, depth + 1)) for i in range(rng.randrange(4))]
        return {k: lazy for k, (lazy, _) in pairs}, {k: plain for k, (_, plain) in pairs}
    items = [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    lazy = [lazy for lazy, _ in items]
    return (Items(iter(lazy)) if roll < 0.8 else lazy), [plain for _, plain in items]


@pytest.mark.parametrize("seed", range(200))
def test_pieces_write_what_json_dumps_writes(seed):
    lazy, plain = _value(random.Random(seed))
    assert "".join(pieces(lazy)) == json.dumps(plain, indent=2, ensure_ascii=False)


def test_the_saved_plan_written_a_change_at_a_time_is_the_document_built_whole(made, tmp_path, monkeypatch):
    plan, _ = made
    monkeypatch.setattr(redact, "value_checks", lambda names: {name: f"scrypt$00${name}" for name in names})
    whole = json.dumps(saved_plan(plan), indent=2, ensure_ascii=False)
    assert "".join(saved_plan_pieces(plan)) == whole
    path = tmp_path / "plan.json"
    write_saved_plan(plan, str(path))
    text = path.read_text(encoding="utf-8")
    assert text == whole + "\n"
    for secret in [*SECRETS.values(), "broker-secret-4"]:
        assert secret not in text
    assert json.loads(text)["secrets"] == ["FED_PASSWORD"]


def test_a_saved_plan_written_a_change_at_a_time_is_read_back(made, tmp_path, monkeypatch):
    plan, _ = made
    path = tmp_path / "plan.json"
    write_saved_plan(plan, str(path))
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    again = read_saved_plan(str(path))
    assert [c.fingerprint for c in again.changes] == [c.fingerprint for c in plan.changes]
    assert load_saved_plan(json.loads(path.read_text(encoding="utf-8")), "plan.json").vhosts == ("shop",)


@pytest.mark.parametrize("seed", range(200))
def test_compact_pieces_write_what_the_checksum_is_made_of(seed):
    lazy, plain = _value(random.Random(seed))
    assert "".join(compact_pieces(lazy)) == json.dumps(plain, sort_keys=True, separators=(",", ":"))


@pytest.mark.parametrize("seed", range(100))
def test_masking_in_chunks_is_masking_the_whole(seed):
    rng = random.Random(seed)
    secrets = ["s3cret", "pa:ss@word", "a", "p\u00e9\"quoted\""] + (["two\nlines"] if seed % 5 == 0 else [])
    for secret in secrets:
        redact.register(secret, "VARIABLE" if secret == "s3cret" else None)
    words = [*secrets, "amqp://user:pw@host/v", "https://x:y@h?password=z&a=1", "\n", " ", "\n\n", "text", ":", "@", "/"]
    text = "".join(rng.choice(words) for _ in range(rng.randrange(200)))
    cuts = sorted(rng.sample(range(len(text) + 1), min(len(text) + 1, rng.randrange(12))))
    parts = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]
    assert "".join(redact.redact_pieces(parts, chunk=rng.choice([1, 3, 16, 1000]))) == redact.redact(text)


def test_a_coloured_report_streamed_is_painted_as_it_was_whole(made, capsys, monkeypatch):
    _, report = made
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.delenv("NO_COLOR", raising=False)
    text = render_drift.render(report, "text")
    before = printed(capsys, lambda: cli.echo(text.rstrip("\n"), painted=True))
    monkeypatch.setattr(redact, "STREAM_CHUNK", 3)
    streamed = printed(capsys, lambda: cli.echo_pieces(render_drift.render_pieces(report, "text"), painted=True))
    assert streamed == before and "\x1b[" in streamed
