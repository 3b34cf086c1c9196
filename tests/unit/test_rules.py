"""The tables of broker knowledge in topology/rules, and that every reader agrees with them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import load_problems, load_text
from topology.lint import lint
from topology.render.graph import build
from topology.route import Network
from topology.rules.exchanges import BUILT_IN_EXCHANGES, built_in_exchanges
from topology.rules.policies import DURATION_KEYS, POLICY_KEYS, SIZE_KEYS
from topology.kinds.policy import canonical_policy_definition
from topology.state import desired_state

BOUND = """
vhosts:
  "{vhost}":
    queues:
      q: {{}}
    bindings:
      - {{source: {exchange}, destination: q, {match}}}
"""


@pytest.mark.parametrize("vhost", ["/", "v"])
@pytest.mark.parametrize("exchange", sorted(BUILT_IN_EXCHANGES))
def test_validate_route_and_graph_agree_on_every_built_in_exchange(tmp_path, vhost, exchange):
    """A binding from a built-in exchange validates exactly where the broker has it; route (and so lint)
    and graph then know its type and whether it is internal; one that exists only under a condition is
    a warning naming it."""
    headers = BUILT_IN_EXCHANGES[exchange].type == "headers"
    text = BOUND.format(vhost=vhost, exchange=exchange, match="arguments: {x-match: any, h: x}" if headers else "routing_key: k")
    built_in = built_in_exchanges(vhost).get(exchange)
    if built_in is None:
        problems = load_problems(tmp_path, text)
        assert any(f"source exchange {exchange!r} is not declared in vhost {vhost!r}" in p for p in problems)
        return
    topology = load_text(tmp_path, text)
    warnings = [str(w) for w in topology.warnings]
    assert bool(warnings) == bool(built_in.condition), warnings
    assert all(built_in.condition in w for w in warnings)
    state = desired_state(topology)
    known = Network(state, vhost).exchanges[exchange]
    assert (known.type, known.internal) == (built_in.type, built_in.internal)
    labels = [label for _, kind, label in build(state).vhosts[vhost] if kind == "exchange"]
    assert labels == [f"{exchange} ({built_in.type}{', internal' if built_in.internal else ''})"]


DEAD_LETTERING = """
vhosts:
  "{vhost}":
    queues:
      q: {{dead_letter_exchange: {exchange}}}
"""


@pytest.mark.parametrize("vhost", ["/", "v"])
@pytest.mark.parametrize("exchange", sorted(BUILT_IN_EXCHANGES))
def test_validate_and_lint_agree_on_every_built_in_exchange_as_a_dead_letter_exchange(tmp_path, vhost, exchange):
    """A built-in exchange as a queue's dead-letter exchange is missing for validate (a warning) exactly
    where lint finds it missing (TOP001): where the broker does not have it."""
    topology = load_text(tmp_path, DEAD_LETTERING.format(vhost=vhost, exchange=exchange))
    missing_for_validate = any("is not declared" in str(w) for w in topology.warnings)
    missing_for_lint = any(f.rule == "TOP001" for f in lint(topology, desired_state(topology)))
    assert missing_for_validate == missing_for_lint == (built_in_exchanges(vhost).get(exchange) is None)


def test_policy_keys_with_units_are_normalised_as_validation_reads_them(tmp_path):
    """Every key the table says takes a duration or a size is validated with units and compared as the
    number the broker stores (a key known to one and not the other showed as a phantom diff)."""
    assert DURATION_KEYS == {k for k, kind in POLICY_KEYS.items() if kind == "duration"} and DURATION_KEYS
    assert SIZE_KEYS and all(POLICY_KEYS[k] == "size" for k in SIZE_KEYS)
    definition = {**{key: "30s" for key in DURATION_KEYS}, **{key: "2KiB" for key in SIZE_KEYS}}
    assert canonical_policy_definition(definition) == {**{key: 30_000 for key in DURATION_KEYS},
                                                       **{key: 2048 for key in SIZE_KEYS}}
    lines = "\n".join(f"          {key}: {value}" for key, value in definition.items())
    load_text(tmp_path, f"""
vhosts:
  v:
    policies:
      p:
        pattern: "^q"
        apply_to: queues
        definition:
{lines}
""")


FORMAT = (Path(__file__).resolve().parents[2] / "docs" / "reference" / "file-format.md").read_text(encoding="utf-8")


def readme_section(title: str) -> str:
    """A section of the file format's reference page."""
    start = FORMAT.index(f"\n## {title}\n")
    return FORMAT[start:FORMAT.index("\n## ", start + 1)]


def test_the_queue_fields_table_says_what_the_rules_say():
    """Every friendly queue field is in the README's table with its x-argument and its queue types."""
    from topology.rules.queues import ALL_TYPES, QUEUE_ARGUMENTS

    rows = {row.split("|")[1].strip(" `"): row for row in readme_section("`queues.<name>`").splitlines()
            if row.startswith("| `")}
    for argument in QUEUE_ARGUMENTS.values():
        if argument.field is None or argument.field == "initial_group_size":
            continue
        row = rows.get(argument.field)
        assert row is not None, f"{argument.field} is missing from the README's queue table"
        columns = [c.strip() for c in row.split("|")[1:-1]]
        assert columns[1] == f"`{argument.name}`", row
        types = "all" if argument.queue_types == ALL_TYPES and not argument.types_since else ", ".join(
            t for t in ("classic", "quorum", "stream") if t in argument.queue_types and t not in dict(argument.types_since))
        assert columns[2].startswith(types), (row, types)


def test_the_policy_keys_list_names_every_key_the_rules_know():
    section = readme_section("`policies.<name>`")
    missing = [key for key in POLICY_KEYS if f"`{key}`" not in section]
    assert missing == [], f"policy keys the README does not name: {missing}"
