"""Hostile input, property-based: random and mutated topology files never make the loader or the
validator fail with anything but located problems (``ConfigError``), and what loads can be
turned into the desired state. Seeds are real files: a generated broker with every kind of object,
exported to the project's format."""

from __future__ import annotations

import os
import string
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import generate
from topology.errors import ConfigError
from topology.export import export_definitions, render_file
from topology.loader import load_valid
from topology.state import desired_state

EXAMPLES = int(os.environ.get("TOPOLOGY_HOSTILE_EXAMPLES", "150"))
"""Examples per property (more: ``TOPOLOGY_HOSTILE_EXAMPLES=2000``; ``TOPOLOGY_HOSTILE_RANDOM=1``: new ones each run)."""
PROFILE = settings(max_examples=EXAMPLES, deadline=None, derandomize=not os.environ.get("TOPOLOGY_HOSTILE_RANDOM"),
                   suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _seeds() -> list[str]:
    files = export_definitions(generate.definitions(3, "hostile")[0]).files
    return [render_file(data, "a generated broker") for data in files.values()]


SEEDS = _seeds()


NOT_THE_USERS_WORDS = ("Input should be", "instance of", "[key]", "datetime.", "<stream end>", "#x0", "after validation",
                       "constrained-", "literal[", "list[str]", "Value error", "FutureWarning", "Exceeds the limit",
                       "at position", "<unicode string>")
"""Parser, pydantic and Python wording that a problem never shows (the user did not write it)."""


def check(path: Path) -> None:
    """Load ``path``: it loads and gives a desired state, or every problem is located and on one line."""
    try:
        topology = load_valid([str(path)], offline=True)
    except ConfigError as error:
        assert error.problems, "a ConfigError must carry its problems"
        for problem in error.problems:
            assert problem.file == str(path)
            assert isinstance(problem.line, int) and problem.line >= 0
            assert problem.message and "\n" not in problem.message and "Traceback" not in problem.message
            said = f"{problem.location} {problem.message}"
            assert not [word for word in NOT_THE_USERS_WORDS if word in said], said
        return
    desired_state(topology)


def test_the_seeds_load_cleanly(tmp_path):
    assert len(SEEDS) >= 3
    for index, text in enumerate(SEEDS):
        path = tmp_path / f"seed{index}.yaml"
        path.write_text(text, encoding="utf-8")
        load_valid([str(path)], offline=True)  # the mutations start from valid files


YAML_BITS = list(":-[]{}&*!|>'\"#%@`,?\n\t ") + ["<<", "${", "}", "---", "...", "!!binary", "~", "null", "0x1F", "1e400",
                                              ".inf", "-.nan", "\u0000", "\ufeff", "é", "\U0001F600"]


@st.composite
def text_mutations(draw: st.DrawFn) -> tuple[int, str]:
    seed = draw(st.sampled_from(range(len(SEEDS))))
    text = SEEDS[seed]
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(text)))
        operation = draw(st.sampled_from(["insert", "delete", "replace", "duplicate-line", "truncate"]))
        piece = draw(st.one_of(st.sampled_from(YAML_BITS), st.text(string.printable, max_size=8)))
        if operation == "insert":
            text = text[:position] + piece + text[position:]
        elif operation == "delete":
            text = text[:position] + text[position + draw(st.integers(1, 40)):]
        elif operation == "replace":
            text = text[:position] + piece + text[position + len(piece):]
        elif operation == "duplicate-line":
            lines = text.splitlines(keepends=True)
            if lines:
                index = position % len(lines)
                lines.insert(index, lines[index])
                text = "".join(lines)
        else:
            text = text[:position]
    return seed, text


@PROFILE
@given(text_mutations())
def test_mutated_text_gives_located_problems_never_a_traceback(tmp_path, mutated):
    _, text = mutated
    path = tmp_path / "mutated.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    check(path)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(_paths(item, prefix + (key,)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_paths(item, prefix + (index,)))
    return found


VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
              st.text(max_size=12), st.sampled_from(["1h", "10MiB", "-1", "0", "${UNSET}", "quorum", "^q$", "", "all"])),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=6,
)


@st.composite
def tree_mutations(draw: st.DrawFn) -> Any:
    data = yaml.safe_load(SEEDS[draw(st.sampled_from(range(len(SEEDS))))])
    for _ in range(draw(st.integers(1, 4))):
        paths = [p for p in _paths(data) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        operation = draw(st.sampled_from(["replace", "delete", "add-key"]))
        if operation == "replace":
            parent[path[-1]] = draw(VALUES)
        elif operation == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=10))] = draw(VALUES)
    return data


@PROFILE
@given(tree_mutations())
def test_documents_with_wrong_values_anywhere_give_located_problems(tmp_path, data):
    path = tmp_path / "tree.yaml"
    try:
        text = yaml.safe_dump(data, allow_unicode=True)
    except yaml.YAMLError:
        return
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    check(path)


@PROFILE
@given(st.binary(max_size=3000))
def test_binary_junk_gives_a_located_problem(tmp_path, junk):
    path = tmp_path / "junk.yaml"
    path.write_bytes(junk)
    check(path)


@pytest.mark.parametrize("name", ["q/1", "q%2F", "q#x", "q?y=1", "q with spaces", "q.dots.", "очередь", "キュー", "q\u200b"])
def test_hostile_object_names_load_and_keep_their_exact_text(tmp_path, name):
    path = tmp_path / "names.yaml"
    path.write_text(yaml.safe_dump({"vhosts": {f"v/{name}": {
        "exchanges": {name: {"type": "topic"}},
        "queues": {name: {}},
        "bindings": [{"source": name, "destination": name, "routing_key": name}],
    }}}, allow_unicode=True), encoding="utf-8")
    state = desired_state(load_valid([str(path)], offline=True))
    assert {r.name for r in state.objects.values() if r.kind in ("exchange", "queue")} == {name}
