"""topology lint: each rule with a case that fires it and one that does not."""

from __future__ import annotations

import textwrap

import pytest

from topology.engine import load_valid
from topology.lint import RULES, Options, lint
from topology.state import desired_state


def findings(tmp_path, text: str, **options) -> list[tuple[str, str]]:
    path = tmp_path / "t.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    topology = load_valid([str(path)], offline=True)
    return [(f.rule, f.subject) for f in lint(topology, desired_state(topology), Options(**options))]


def only(tmp_path, rule: str, text: str, **options) -> list[str]:
    return [subject for found, subject in findings(tmp_path, text, **options) if found == rule]


BASE = """
vhosts:
  v:
    exchanges:
      work: {{type: direct}}
      dlx: {{type: direct}}
      fan: {{type: fanout}}
    queues:
{queues}
    bindings:
      - {{source: work, destination: jobs, routing_key: jobs}}
      - {{source: dlx, destination: dead, routing_key: jobs}}
      - {{source: fan, destination: dead}}
{more}
"""


def base(queues: str, more: str = "") -> str:
    return BASE.format(queues=textwrap.indent(textwrap.dedent(queues).strip("\n"), " " * 6), more=more)


def test_top001_a_dead_letter_exchange_that_is_not_declared(tmp_path):
    assert only(tmp_path, "TOP001", base("""
        jobs: {dead_letter_exchange: nowhere}
        dead: {}
    """)) == ["vhost 'v' queue 'jobs'"]
    assert only(tmp_path, "TOP001", base("""
        jobs: {dead_letter_exchange: dlx}
        dead: {}
    """)) == []


def test_top002_dead_letters_that_reach_no_queue(tmp_path):
    assert only(tmp_path, "TOP002", base("""
        jobs: {dead_letter_exchange: dlx, dead_letter_routing_key: other}
        dead: {}
    """)) == ["vhost 'v' queue 'jobs'"]
    assert only(tmp_path, "TOP002", base("""
        jobs: {dead_letter_exchange: dlx, dead_letter_routing_key: jobs}
        dead: {}
    """)) == []
    # to the default exchange, the routing key names the queue
    assert only(tmp_path, "TOP002", base("""
        jobs: {dead_letter_exchange: "", dead_letter_routing_key: dead}
        dead: {}
    """)) == []


def test_top003_a_dead_letter_loop_without_ttl(tmp_path):
    loop = """
        jobs: {{dead_letter_exchange: work, dead_letter_routing_key: retry}}
        retry: {{dead_letter_exchange: work, dead_letter_routing_key: jobs{ttl}}}
        dead: {{}}
    """
    more = "      - {source: work, destination: retry, routing_key: retry}"
    assert only(tmp_path, "TOP003", base(loop.format(ttl=""), more)) == ["vhost 'v' queue 'jobs'"]
    assert only(tmp_path, "TOP003", base(loop.format(ttl=", message_ttl: 30s"), more)) == []  # the retry pattern


def test_top004_to_006_classic_mirroring(tmp_path):
    text = base("jobs: {}\ndead: {}", """
    policies:
      ha-two: {pattern: "^jobs$", priority: 2, definition: {ha-mode: exactly, ha-params: 1}}
      ha-sync: {pattern: "^dead$", priority: 1, definition: {ha-mode: all, ha-sync-mode: automatic}}
      plain: {pattern: "^x$", definition: {message-ttl: 5}}""")
    found = findings(tmp_path, text)
    assert sorted(s for r, s in found if r == "TOP004") == ["vhost 'v' policy 'ha-sync'", "vhost 'v' policy 'ha-two'"]
    assert [s for r, s in found if r == "TOP005"] == ["vhost 'v' policy 'ha-two'"]
    assert [s for r, s in found if r == "TOP006"] == ["vhost 'v' policy 'ha-two'"]  # manual by default


def test_top007_a_quorum_group_larger_than_the_cluster(tmp_path):
    text = base("jobs: {type: quorum, initial_group_size: 5}\ndead: {type: quorum, initial_group_size: 3}")
    assert only(tmp_path, "TOP007", text, cluster_size=3) == ["vhost 'v' queue 'jobs'"]
    assert only(tmp_path, "TOP007", text) == []  # the cluster's size is not known


def test_top008_to_010_durability_reach_and_dropping_exchanges(tmp_path):
    text = base("""
        jobs: {durable: false}
        dead: {}
        lonely: {}
    """, """
    policies:
      ae: {pattern: "^covered$", apply_to: exchanges, definition: {alternate-exchange: fan}}""").replace(
        "      fan: {type: fanout}", "      fan: {type: fanout}\n      empty: {type: topic, durable: false}\n"
                                     "      covered: {type: topic}")
    found = findings(tmp_path, text)
    assert sorted(s for r, s in found if r == "TOP008") == ["vhost 'v' exchange 'empty'", "vhost 'v' queue 'jobs'"]
    assert [s for r, s in found if r == "TOP009"] == ["vhost 'v' queue 'lonely'"]
    assert [s for r, s in found if r == "TOP010"] == ["vhost 'v' exchange 'empty'"]  # covered has an alternate


def test_top011_two_policies_tie(tmp_path):
    text = base("jobs: {}\ndead: {}", """
    policies:
      a: {pattern: "^jobs$", priority: 1, definition: {message-ttl: 5}}
      b: {pattern: "^j", priority: 1, definition: {max-length: 5}}
      c: {pattern: "^dead$", priority: 1, definition: {max-length: 5}}
      d: {pattern: "^dead$", priority: 2, definition: {max-length: 5}}""")
    assert only(tmp_path, "TOP011", text) == ["vhost 'v' queue 'jobs'"]


def test_top012_a_password_in_the_files(tmp_path, monkeypatch):
    monkeypatch.setenv("APP_PASSWORD", "from-env")
    text = """
    users:
      literal: {password: s3cret, allow_literal_password: true}
      variable: {password: "${APP_PASSWORD}"}
    """
    assert only(tmp_path, "TOP012", text) == ["user 'literal'"]


def test_top013_lazy_mode_by_version(tmp_path):
    text = base("jobs: {queue_mode: lazy}\ndead: {}")
    assert only(tmp_path, "TOP013", text, version=(3, 13)) == ["vhost 'v' queue 'jobs'"]
    assert only(tmp_path, "TOP013", text, version=(3, 11)) == []


def test_top014_the_default_delivery_limit_of_4_0_drops_without_a_dead_letter_exchange(tmp_path):
    text = base("jobs: {type: quorum}\ndead: {type: quorum, dead_letter_exchange: dlx}\n"
                "limited: {type: quorum, delivery_limit: 5}\nunlimited: {type: quorum, delivery_limit: -1}\n"
                "classic: {}")
    assert only(tmp_path, "TOP014", text, version=(4, 0, 5)) == ["vhost 'v' queue 'jobs'"]
    assert only(tmp_path, "TOP014", text, version=(3, 13, 7)) == []
    unknown = [f for f in findings_of(tmp_path, text) if f.rule == "TOP014"]
    assert [f.subject for f in unknown] == ["vhost 'v' queue 'jobs'"]
    assert "returned 20 times is dropped" in unknown[0].message and "when the broker is 4.0 or later" in unknown[0].message
    # a policy's dead-letter exchange or delivery limit counts too
    policy = base("jobs: {type: quorum}\ndead: {}", more="    policies:\n      dl: {pattern: '^jobs$', "
                                                          "definition: {dead-letter-exchange: dlx}}")
    assert only(tmp_path, "TOP014", policy, version=(4, 0, 5)) == []


def findings_of(tmp_path, text: str, **options):
    path = tmp_path / "t.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    topology = load_valid([str(path)], offline=True)
    return lint(topology, desired_state(topology), Options(**options))


def test_a_comment_suppresses_a_rule_for_one_object_and_ignore_for_all(tmp_path):
    text = base("""
        jobs: {durable: false}  # lint: ignore TOP008
        dead: {durable: false}  # lint: ignore TOP009, TOP010
        lonely: {durable: false}  # lint: ignore
    """)
    assert only(tmp_path, "TOP008", text) == ["vhost 'v' queue 'dead'"]
    assert only(tmp_path, "TOP008", text, ignore=frozenset({"TOP008"})) == []


def test_every_rule_is_documented_in_the_readme():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "docs" / "reference" / "lint.md").read_text(encoding="utf-8")
    for rule in RULES.values():
        assert f"`{rule.id}`" in readme and rule.name in readme, rule.id


@pytest.mark.parametrize("arguments, code", [((), 0), (("--strict",), 2)])
def test_the_lint_command_fails_on_warnings_only_when_strict(arguments, code, tmp_path, capsys):
    from topology.cli import main

    path = tmp_path / "t.yaml"
    path.write_text(textwrap.dedent(base("jobs: {durable: false}\ndead: {}")), encoding="utf-8")
    with pytest.raises(SystemExit) as exit_:
        main(["lint", str(path), *arguments])
    out = capsys.readouterr().out
    assert exit_.value.code == code
    assert f"{path}:" in out and "warning TOP008 vhost 'v' queue 'jobs'" in out


def test_a_comment_on_any_line_of_a_block_object_suppresses(tmp_path):
    text = base("""
        jobs:
          durable: false  # lint: ignore TOP008
        dead: {}
    """)
    assert only(tmp_path, "TOP008", text) == []


def test_dead_letter_loops_count_only_queues_without_ttl(tmp_path):
    # b has a TTL, but a loops on itself through the default exchange (a rejected publish straight to it)
    text = base("""
        jobs: {}
        dead: {}
        a: {dead_letter_exchange: ""}
        b: {dead_letter_exchange: "", message_ttl: 5s}
    """)
    assert only(tmp_path, "TOP003", text) == ["vhost 'v' queue 'a'"]
    # dead's dead letters keep their key: keyed 'dead' they go nowhere, but keyed 'jobs' (published to dlx,
    # or to the fanout) dlx sends them back to dead, round and round: a loop for that key only
    text = base("""
        jobs: {}
        dead: {dead_letter_exchange: dlx}
    """)
    assert only(tmp_path, "TOP002", text) == []  # the fanout leaves the key open: some key reaches a queue
    loops = [f for f in findings_of(tmp_path, text) if f.rule == "TOP003"]
    assert [f.message for f in loops] == [
        "dead letters loop through dead -> dead with no message TTL on the way (for some messages, such as one "
        "published to exchange 'dlx' with routing key 'jobs')"]
    internal = base("""
        jobs: {dead_letter_exchange: inner, dead_letter_routing_key: jobs}
        dead: {}
    """).replace("      fan: {type: fanout}", "      fan: {type: fanout}\n      inner: {type: direct, internal: true}")
    internal += "      - {source: inner, destination: dead, routing_key: jobs}\n"
    assert only(tmp_path, "TOP002", internal) == []  # dead-lettering into an internal exchange works


def test_shovels_and_federation_feed_queues_and_exchanges(tmp_path):
    text = base("""
        jobs: {}
        dead: {}
        inbox: {}
        federated: {}
    """, """
    shovels:
      s1: {source_exchange: empty, destination_uri: "amqp:///v", destination_queue: inbox, source_uri: "amqp://"}
    policies:
      fed: {pattern: "^federated$", apply_to: queues, definition: {federation-upstream-set: all}}""").replace(
        "      fan: {type: fanout}", "      fan: {type: fanout}\n      empty: {type: topic}")
    found = findings(tmp_path, text)
    assert [s for r, s in found if r == "TOP009"] == []
    assert [s for r, s in found if r == "TOP010"] == []


def test_a_dead_letter_loop_is_one_a_message_comes_back_to_as_it_was(tmp_path):
    # q2's dead letters reach q3 keyed 'q3' (its dead-letter routing key); q3's, keyed 'q2', reach q2: but a
    # message never goes q2 -> q3 -> q2 -> ..., for back in q3 it is keyed 'q3' and loops on q3 alone (as every
    # message in q3 ends up doing)
    text = """
    vhosts:
      v:
        exchanges: {x: {type: direct}}
        queues:
          q2: {dead_letter_exchange: "", dead_letter_routing_key: q3}
          q3: {dead_letter_exchange: ""}
        bindings:
          - {source: x, destination: q3, routing_key: q2}
    """
    loops = [f for f in findings_of(tmp_path, text) if f.rule == "TOP003"]
    assert [(f.subject, f.message) for f in loops] == [
        ("vhost 'v' queue 'q3'", "dead letters loop through q3 -> q3 with no message TTL on the way")]
