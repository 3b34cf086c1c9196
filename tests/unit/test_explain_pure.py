"""explain offline: which policies apply to a queue, which win, and how each setting resolves."""

from __future__ import annotations

import json
import textwrap

import pytest

TOPOLOGY = """
vhosts:
  shop:
    queues:
      orders: {type: quorum, max_length: 1000, dead_letter_exchange: dlx, overflow: drop-head, expires: 3600000}
      legacy: {message_ttl: 5000, max_length: 10}
      log: {type: stream, max_age: 7D}
    exchanges:
      dlx: {type: fanout}
      other: {type: fanout}
    policies:
      ha-all: {pattern: ".*", apply_to: all, definition: {ha-mode: all}}
      limits: {pattern: "^ord", apply_to: queues, priority: 5, definition: {max-length: 2000, dead-letter-exchange: other, overflow: reject-publish, expires: 60000, message-ttl: 60000}}
      lazy: {pattern: "^o", priority: 9, definition: {queue-mode: lazy}}
      low: {pattern: "^o", priority: 1, definition: {message-ttl: 1}}
      age: {pattern: "^log$", definition: {max-age: 1D}}
    operator_policies:
      cap: {pattern: ".*", apply_to: queues, definition: {max-length: 500, message-ttl: 120000}}
"""


@pytest.fixture
def explain(tmp_path, capsys):
    from topology.cli import main

    path = tmp_path / "t.yaml"
    path.write_text(textwrap.dedent(TOPOLOGY), encoding="utf-8")

    def run(queue: str, *more: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exit_:
            main(["explain", str(path), "--vhost", "shop", "--queue", queue, *more])
        out, err = capsys.readouterr()
        return exit_.value.code, out, err

    return run


def test_a_quorum_queue_skips_policies_with_keys_it_does_not_take_and_resolves_each_setting(explain):
    code, out, _ = explain("orders", "--format", "json")
    assert code == 0
    document = json.loads(out)
    verdicts = {p["name"]: (p["applies"], p["wins"]) for p in document["policies"]}
    assert verdicts == {"lazy": (False, False), "limits": (True, True), "low": (True, False),
                        "ha-all": (False, False), "cap": (True, True)}
    assert "queue-mode" in next(p["why_not"] for p in document["policies"] if p["name"] == "lazy")
    settings = {k: (v["value"], v["source"]) for k, v in document["settings"].items()}
    assert settings == {
        "dead-letter-exchange": ("dlx", "argument"),  # quorum: the argument wins
        "expires": (60000, "policy limits"),  # quorum: the policy wins
        "max-length": (500, "operator policy cap"),  # the smallest of 2000, 500 and the argument 1000
        "message-ttl": (60000, "policy limits"),  # smaller than the operator policy's 120000
        "overflow": ("reject-publish", "policy limits"),  # quorum: the policy wins
    }


def test_a_classic_queue_takes_the_smaller_of_argument_and_policy(explain):
    code, out, _ = explain("legacy", "--format", "json")
    settings = json.loads(out)["settings"]
    assert code == 0
    assert (settings["message-ttl"]["value"], settings["message-ttl"]["source"]) == (5000, "argument")
    assert (settings["max-length"]["value"], settings["max-length"]["source"]) == (10, "argument")
    assert settings["ha-mode"] == {"value": "all", "source": "policy ha-all"}


def test_a_stream_takes_the_policy_over_its_argument_and_the_text_says_why(explain):
    code, out, _ = explain("log")
    assert code == 0
    assert "max-age: \"1D\"  from policy age (the policy wins over the argument '7D')" in out
    assert "ha-all: priority 0, apply-to all, pattern '.*': does not apply: it holds ha-mode" in out


def test_an_unknown_queue_is_one_error_line(explain):
    code, _, err = explain("nope")
    assert code == 1 and err.strip().endswith("error: vhost 'shop' has no queue 'nope' in the files")


def test_version_dependent_merges_and_ties(tmp_path):
    from topology.policies import resolve
    from topology.kinds import OperatorPolicyState, PolicyState

    def policy(name, definition, priority=0, operator=False):
        kind = OperatorPolicyState if operator else PolicyState
        return kind(vhost="v", policy=name, pattern=".*", apply_to="queues", priority=priority, definition=definition)

    # classic mirroring in an operator policy (3.11.10 to 3.13): all beats exactly, the larger count wins
    found = resolve("q", "classic", {}, [policy("p", {"ha-mode": "exactly", "ha-params": 2})],
                    [policy("o", {"ha-mode": "all", "ha-params": 3}, operator=True)], (3, 13, 7))
    assert found.merged == {"ha-mode": "all", "ha-params": 3}
    found = resolve("q", "classic", {}, [policy("p", {"ha-mode": "all"})],
                    [policy("o", {"ha-mode": "exactly"}, operator=True)], (3, 13, 7))
    assert found.merged["ha-mode"] == "all" and found.settings["ha-mode"].source == "policy p"
    # target-group-size: the larger
    found = resolve("q", "quorum", {}, [policy("p", {"target-group-size": 5})],
                    [policy("o", {"target-group-size": 3}, operator=True)], (3, 13, 7))
    assert found.merged == {"target-group-size": 5}
    # a quorum queue's expires: the policy's before 4.0, the smaller from 4.0
    arguments = {"x-expires": 10000}
    old = resolve("q", "quorum", arguments, [policy("p", {"expires": 60000})], [], (3, 13, 7))
    new = resolve("q", "quorum", arguments, [policy("p", {"expires": 60000})], [], (4, 0, 5))
    assert (old.settings["expires"].value, new.settings["expires"].value) == (60000, 10000)
    # a tie is said on every setting it gives
    tied = resolve("q", "classic", {}, [policy("a", {"message-ttl": 1}, 1), policy("b", {"max-length": 2}, 1)], [])
    assert "a, b tie at priority 1" in tied.settings["message-ttl"].detail
    assert [c.tie for c in tied.candidates] == [True, True]


def test_a_quorum_queues_delivery_limit_follows_the_rules_of_4_0():
    from topology.policies import resolve
    from topology.kinds import PolicyState

    def policy(definition):
        return PolicyState(vhost="v", policy="p", pattern=".*", apply_to="queues", priority=0, definition=definition)

    def limit(arguments, definition, version):
        found = resolve("q", "quorum", arguments, [policy(definition)] if definition else [], [], version)
        setting = found.settings.get("delivery-limit")
        return None if setting is None else (setting.value, setting.source)

    # before 4.0: no limit unless one is set, and the smaller of two wins
    assert limit({}, {}, (3, 13, 7)) is None
    assert limit({"x-delivery-limit": 5}, {"delivery-limit": 3}, (3, 13, 7)) == (3, "policy p")
    # from 4.0: 20 when none is set; when either is negative, the larger (rabbit_quorum_queue:resolve_delivery_limit)
    assert limit({}, {}, (4, 0, 5)) == (20, "the broker's default")
    assert limit({"x-delivery-limit": -1}, {}, (4, 0, 5)) == (-1, "argument")
    assert limit({"x-delivery-limit": -1}, {"delivery-limit": 5}, (4, 0, 5)) == (5, "policy p")
    assert limit({"x-delivery-limit": 7}, {"delivery-limit": -1}, (4, 3, 6)) == (7, "argument")
    assert limit({"x-delivery-limit": 7}, {"delivery-limit": 3}, (4, 3, 6)) == (3, "policy p")
    # classic queues have none, on every version
    assert "delivery-limit" not in resolve("q", "classic", {}, [], [], (4, 3, 6)).settings


def test_a_pattern_with_nested_repeats_is_never_evaluated(tmp_path):
    """^(a+)+$ against a name of forty a's and a b takes Python's re longer than anyone waits: lint,
    explain, graph and route finish, saying the pattern cannot be evaluated; validate warns."""
    import subprocess
    import sys

    from topology.matching import explosive, pattern_match

    assert explosive("^(a+)+$") and explosive("(x*)*") and explosive("^(.*a)+$") and explosive("((ab)+c)*")
    assert not explosive("^orders\\.") and not explosive("^(a|b)+$") and not explosive("(ab){2,5}") and not explosive(".*")
    name = "a" * 40 + "b"
    assert pattern_match("^(a+)+$", name) is None and pattern_match("^a+$", name) is False
    path = tmp_path / "t.yaml"
    path.write_text(f"vhosts:\n  v:\n    queues:\n      {name}: {{}}\n    exchanges:\n      x: {{type: fanout}}\n"
                    f"    bindings:\n      - {{source: x, destination: {name}}}\n"
                    "    policies:\n      bomb: {pattern: '^(a+)+$', definition: {max-length: 1}}\n", encoding="utf-8")
    commands = [["validate"], ["lint"], ["graph"], ["explain", "--vhost", "v", "--queue", name],
                ["route", "--vhost", "v", "--exchange", "x"]]
    for command in commands:  # a guard against hanging, not a speed measurement
        done = subprocess.run([sys.executable, "-m", "topology", command[0], str(path), *command[1:]],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode in (0, 2), (command, done.stderr)
        if command[0] == "validate":
            assert "warning" in done.stderr and "repeats something that itself repeats without bound" in done.stderr
        if command[0] == "explain":
            assert "patterns Python cannot evaluate" in done.stdout and "bomb" in done.stdout
