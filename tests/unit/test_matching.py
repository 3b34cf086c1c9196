"""One answer to "which policies apply, and which wins", and one rule for patterns this tool
cannot evaluate: every reader takes it from topology/matching and says so."""

from __future__ import annotations

import pytest

from topology.ha import check_queues
from topology.matching import EXCHANGE, applies, contest
from topology.migrate import winning_policies
from topology.policies import resolve
from topology.route import Message, route
from topology.kinds import ExchangeState, PolicyState, VhostState
from topology.state import State
from topology.transform import _unreadable

UNDECIDED = ["^(a+)+$", "^a(?P<x"]
"""Nested unbounded repeats (exponential to match); a pattern Python cannot compile."""


def policy(name: str, pattern: str, priority: int = 0, apply_to: str = "all", **definition) -> PolicyState:
    return PolicyState(vhost="v", policy=name, pattern=pattern, apply_to=apply_to, priority=priority,
                       definition={k.replace("_", "-"): v for k, v in definition.items()} or {"message-ttl": 1})


def test_the_highest_priority_wins_ties_are_all_winners_and_apply_to_and_keys_count():
    policies = [policy("low", "^q", 1), policy("high", "^q", 5), policy("also", "^q", 5),
                policy("exchanges", "^q", 9, "exchanges"), policy("limit", "^q", 9, delivery_limit=3)]
    assert [p.policy for p in contest(policies, "q", "classic").winners] == ["also", "high"]  # a tie
    assert [p.policy for p in contest(policies, "q", "quorum").winners] == ["limit"]  # classic queues refuse the key
    assert [p.policy for p in contest(policies, "q", EXCHANGE).winners] == ["exchanges", "limit"]  # keys do not count
    assert contest(policies, "x", "classic").winners == []


@pytest.mark.parametrize("pattern", UNDECIDED)
def test_an_undecided_pattern_is_apart_and_only_where_it_could_win(pattern):
    undecided = policy("odd", pattern, 5)
    assert applies(undecided, "aaaa", "classic") is None
    assert [p.policy for p in contest([undecided, policy("low", "^a", 1)], "aaaa", "classic").undecided] == ["odd"]
    beaten = contest([undecided, policy("high", "^a", 9)], "aaaa", "classic")
    assert [p.policy for p in beaten.winners] == ["high"] and beaten.undecided == []
    assert contest([policy("odd", pattern, 5, "exchanges")], "aaaa", "classic").undecided == []  # not for queues


@pytest.mark.parametrize("pattern", UNDECIDED)
def test_every_reader_says_so(pattern):
    undecided = policy("odd", pattern, 5, alternate_exchange="ae")
    low = policy("low", "^a", 1)
    # drift: not checked, with a note (before: a finding against whatever the broker applied)
    health = check_queues("v", [{"name": "aaaa", "type": "classic", "state": "running", "node": "rabbit@a",
                                 "policy": "odd"}], [undecided, low], ["rabbit@a"], ["aaaa"], ["odd", "low"])
    assert health.findings == [] and any("odd cannot be evaluated" in n for n in health.notes)
    # explain
    assert resolve("aaaa", "classic", {}, [undecided, low], []).unreadable == ["policy odd"]
    # the quorum transform
    assert _unreadable("aaaa", "classic", [undecided, low], (3, 10, 8)) == ["odd"]
    # a migration counts it as applying to its temporary queue, to be safe
    api = [{"name": "odd", "pattern": pattern, "apply-to": "all", "priority": 5, "definition": {"message-ttl": 1}},
           {"name": "low", "pattern": "^a", "apply-to": "all", "priority": 1, "definition": {}}]
    assert [p["name"] for p in winning_policies("aaaa", api)] == ["odd", "low"]  # either may be in effect
    # route: an unroutable message through an exchange the policy may give an alternate exchange
    state = State()
    state.vhosts["v"] = VhostState(vhost="v")
    state.add(ExchangeState(vhost="v", exchange="aaaa", type="direct"))
    state.add(undecided)
    routed = route(state, "v", Message("aaaa", "k"))
    assert any("policy 'odd' may give exchange 'aaaa' an alternate exchange" in u for u in routed.uncertain)
