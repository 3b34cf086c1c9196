"""Unit tests for topology.loader: YAML files → merged topology, with located problems."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from topology import loader
from topology.errors import ConfigError, Problem
from tests.conftest import load_problems
from topology.loader import load

REPO_ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- helpers


def write(directory: Path, name: str, text: str) -> Path:
    """Write a YAML document (dedented, leading newline dropped) and return its path."""
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problems_of(*paths: Path | str) -> list[Problem]:
    """The problems of loading ``paths``; fails the test if loading succeeds."""
    with pytest.raises(ConfigError) as info:
        load([str(p) for p in paths])
    assert info.value.problems, "a ConfigError must carry at least one problem"
    return info.value.problems


def only_problem(*paths: Path | str) -> Problem:
    problems = problems_of(*paths)
    assert len(problems) == 1, [str(p) for p in problems]
    return problems[0]


# --------------------------------------------------------------------------- a valid file


def test_valid_file_is_loaded_with_defaults_origins_and_normalised_values(tmp_path):
    file = write(
        tmp_path,
        "shop.yaml",
        """
        vhosts:
          shop:
            description: the shop
            tags: [prod]
            default_queue_type: quorum
            exchanges:
              orders:
                type: topic
            queues:
              orders.created:
                message_ttl: 30s
                max_length_bytes: 1MiB
            bindings:
              - source: orders
                destination: orders.created
                routing_key: order.created
            policies:
              ttl:
                pattern: ^orders\\.
                definition:
                  message-ttl: 60000
        """,
    )
    topology = load([str(file)])
    assert list(topology.vhosts) == ["shop"]
    shop = topology.vhosts["shop"]
    assert shop.description == "the shop"
    assert shop.tags == ["prod"]
    assert shop.default_queue_type == "quorum"

    exchange = shop.exchanges["orders"]
    assert exchange.spec.type == "topic"
    assert exchange.spec.durable is True and exchange.spec.auto_delete is False and exchange.spec.internal is False
    assert (exchange.origin.file, exchange.origin.line) == (str(file), 7)
    assert exchange.origin.path == ("vhosts", "shop", "exchanges", "orders")

    queue = shop.queues["orders.created"]
    assert queue.spec.message_ttl == 30_000
    assert queue.spec.max_length_bytes == 1024 * 1024
    assert queue.origin.line == 10

    assert len(shop.bindings) == 1
    binding = shop.bindings[0]
    assert binding.spec.source == "orders" and binding.spec.routing_key == "order.created"
    assert binding.spec.destination_type == "queue"
    assert binding.origin.line == 14
    assert binding.origin.path == ("vhosts", "shop", "bindings", 0)

    policy = shop.policies["ttl"]
    assert policy.spec.pattern == r"^orders\."
    assert policy.spec.definition == {"message-ttl": 60000}
    assert policy.origin.line == 18
    assert shop.attribute_origins["description"].line == 3

    # the line of any key below an object can be looked up afterwards
    assert topology.line_of(queue.origin, "max_length_bytes") == 12
    assert topology.line_of(queue.origin, "not-there") == 10


def test_problem_str_has_file_line_and_location():
    problem = Problem("a.yaml", 3, "vhost 'v' queue 'q'", "boom")
    assert str(problem) == "a.yaml:3: vhost 'v' queue 'q': boom"
    assert str(Problem("a.yaml", 0, "", "boom")) == "a.yaml: boom"


# --------------------------------------------------------------------------- located problems


def test_several_problems_reported_at_once_with_exact_lines(tmp_path):
    file = write(
        tmp_path,
        "t.yaml",
        """
        vhosts:
          shop:
            exchanges:
              orders:
                durable: yes
              events:
                type: topic
                durable: "true"
            queues:
              q:
                max_length: "10"
                message_ttl: 30s
                colour: red
              q2:
                max_length_bytes: 10XB
                overflow: nope
            bindings:
              - destination: q
              - source: orders
                destination: q
                routing_key: 5
        """,
    )
    problems = problems_of(file)
    found = [(p.line, p.location, p.message) for p in problems]
    assert all(p.file == str(file) for p in problems)
    expected = [
        (4, "vhost 'shop' exchange 'orders'", "missing required field 'type'"),
        (8, "vhost 'shop' exchange 'events' durable",
         "expected true or false, got 'true' in quotes, which makes it text: remove the quotes"),
        (11, "vhost 'shop' queue 'q' max_length",
         "expected a whole number, got '10' in quotes, which makes it text: remove the quotes"),
        (13, "vhost 'shop' queue 'q' colour", "unknown key 'colour'"),
        (15, "vhost 'shop' queue 'q2' max_length_bytes", "invalid size '10XB'"),
        (16, "vhost 'shop' queue 'q2' overflow", "expected drop-head, reject-publish or reject-publish-dlx, got 'nope'"),
        (18, "vhost 'shop' binding #1", "missing required field 'source'"),
        (21, "vhost 'shop' binding #2 routing_key",
         "expected text, got 5, which YAML reads as a number: put it in quotes to keep it text"),
    ]
    assert len(found) == len(expected), found
    for (line, location, message), (want_line, want_location, want_message) in zip(found, expected):
        assert line == want_line, found
        assert location == want_location, found
        assert want_message in message, found
    # sorted by place
    assert problems == sorted(problems)


@pytest.mark.parametrize(
    ("text", "line", "key", "first"),
    [
        pytest.param(
            """
            vhosts: {}
            vhosts: {}
            """,
            2, "vhosts", 1, id="top-level",
        ),
        pytest.param(
            """
            vhosts:
              shop: {}
              shop: {}
            """,
            3, "shop", 2, id="vhost",
        ),
        pytest.param(
            """
            vhosts:
              shop:
                queues:
                  q:
                    durable: true
                  other: {}
                  q:
                    durable: false
            """,
            7, "q", 4, id="queue-name",
        ),
        pytest.param(
            """
            vhosts:
              shop:
                exchanges:
                  e:
                    type: direct
                    durable: true

                    type: topic
            """,
            8, "type", 5, id="exchange-field",
        ),
        pytest.param(
            """
            vhosts:
              shop:
                queues:
                  q:
                    arguments:
                      x-a: 1
                      x-b: 2
                      x-a: 3
            """,
            8, "x-a", 6, id="deep-in-arguments",
        ),
        pytest.param(
            """
            vhosts:
              shop:
                bindings:
                  - source: a
                    destination: b
                    arguments: {x-match: all, h: 1, h: 2}
            """,
            6, "h", 6, id="flow-mapping-in-list",
        ),
        pytest.param(
            """
            vhosts:
              shop:
                policies:
                  p:
                    pattern: .*
                    definition:
                      message-ttl: 1
                      max-length: 2
                      message-ttl: 3
            """,
            9, "message-ttl", 7, id="policy-definition",
        ),
    ],
)
def test_duplicate_keys_are_refused_naming_the_first_line(tmp_path, text, line, key, first):
    file = write(tmp_path, "t.yaml", text)
    problems = [p for p in problems_of(file) if "duplicate key" in p.message]
    assert len(problems) == 1, [str(p) for p in problems_of(file)]
    problem = problems[0]
    assert problem.line == line
    assert problem.message == f"duplicate key {key!r} (first at line {first})"


def test_duplicate_key_does_not_silently_keep_the_last_value(tmp_path):
    file = write(
        tmp_path,
        "t.yaml",
        """
        vhosts:
          shop:
            exchanges:
              e: {type: direct}
              e: {type: topic}
        """,
    )
    # PyYAML would keep the topic exchange without a word; the loader refuses the file
    with pytest.raises(ConfigError):
        load([str(file)])


@pytest.mark.parametrize(
    ("text", "line", "location", "key"),
    [
        pytest.param("vhost:\n  shop: {}\n", 1, "vhost", "vhost", id="top-level"),
        pytest.param("vhosts:\n  shop:\n    queue: {}\n", 3, "vhost 'shop' queue", "queue", id="vhost"),
        pytest.param(
            "vhosts:\n  shop:\n    exchanges:\n      e:\n        type: direct\n        kind: topic\n",
            6, "vhost 'shop' exchange 'e' kind", "kind", id="exchange",
        ),
        pytest.param(
            "vhosts:\n  shop:\n    queues:\n      q:\n        message-ttl: 5\n",
            5, "vhost 'shop' queue 'q' message-ttl", "message-ttl", id="queue-dashed-name",
        ),
        pytest.param(
            "vhosts:\n  shop:\n    bindings:\n      - source: a\n        destination: b\n        key: x\n",
            6, "vhost 'shop' binding #1 key", "key", id="binding",
        ),
        pytest.param(
            "vhosts:\n  shop:\n    policies:\n      p:\n        pattern: x\n        definition: {a: 1}\n        applyto: all\n",
            7, "vhost 'shop' policy 'p' applyto", "applyto", id="policy",
        ),
    ],
)
def test_unknown_keys_are_refused(tmp_path, text, line, location, key):
    file = tmp_path / "t.yaml"
    file.write_text(text)
    problem = only_problem(file)
    assert (problem.line, problem.location) == (line, location)
    assert problem.message == f"unknown key {key!r}" or problem.message.startswith(f"unknown key {key!r}; did you mean")


@pytest.mark.parametrize(
    ("text", "line", "location", "field"),
    [
        pytest.param(
            "vhosts:\n  shop:\n    exchanges:\n      e:\n        durable: true\n",
            4, "vhost 'shop' exchange 'e'", "type", id="exchange-type",
        ),
        pytest.param(
            "vhosts:\n  shop:\n    exchanges:\n      e: {}\n",
            4, "vhost 'shop' exchange 'e'", "type", id="exchange-type-empty-mapping",
        ),
        pytest.param(
            "vhosts:\n  shop:\n    bindings:\n      - destination: q\n",
            4, "vhost 'shop' binding #1", "source", id="binding-source",
        ),
        pytest.param(
            "vhosts:\n  shop:\n    bindings:\n      - source: e\n        routing_key: k\n",
            4, "vhost 'shop' binding #1", "destination", id="binding-destination",
        ),
        pytest.param(
            "vhosts:\n  shop:\n    policies:\n      p:\n        definition: {message-ttl: 1}\n",
            4, "vhost 'shop' policy 'p'", "pattern", id="policy-pattern",
        ),
        pytest.param(
            "vhosts:\n  shop:\n    policies:\n      p:\n        pattern: x\n",
            4, "vhost 'shop' policy 'p'", "definition", id="policy-definition",
        ),
    ],
)
def test_missing_required_fields(tmp_path, text, line, location, field):
    file = tmp_path / "t.yaml"
    file.write_text(text)
    problem = only_problem(file)
    assert (problem.line, problem.location, problem.message) == (line, location, f"missing required field {field!r}")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        pytest.param("max_length", '"10"',
                     "expected a whole number, got '10' in quotes, which makes it text: remove the quotes",
                     id="quoted-int"),
        pytest.param("max_length", "1.5", "expected a whole number, got 1.5", id="float-for-int"),
        pytest.param("max_length", "true",
                     "expected a whole number, got true (YAML reads yes, no, on and off as true and false)",
                     id="bool-for-int"),
        pytest.param("durable", '"true"',
                     "expected true or false, got 'true' in quotes, which makes it text: remove the quotes",
                     id="quoted-bool"),
        pytest.param("durable", "1", "expected true or false, got 1", id="int-for-bool"),
        pytest.param("dead_letter_exchange", "5",
                     "expected text, got 5, which YAML reads as a number: put it in quotes to keep it text",
                     id="int-for-str"),
        pytest.param("dead_letter_exchange", "2020-01-01",
                     "expected text, got 2020-01-01, which YAML reads as a date: put it in quotes to keep it text",
                     id="date-for-str"),
        pytest.param("arguments", "[1, 2]", "expected a map (key: value lines), got a list", id="list-for-mapping"),
        pytest.param("max_length", ".nan", "expected a whole number, got .nan", id="nan-for-int"),
        pytest.param("max_length", "!!binary aGk=", "expected a whole number, got binary data (!!binary)",
                     id="binary-for-int"),
        pytest.param("max_length", "!!set {a}", "expected a whole number, got !!set {a: null}", id="set-for-int"),
    ],
)
def test_wrong_types_are_refused_strictly(tmp_path, field, value, message):
    file = write(tmp_path, "t.yaml", f"vhosts:\n  shop:\n    queues:\n      q:\n        {field}: {value}\n")
    problem = only_problem(file)
    assert problem.line == 5
    assert problem.location == f"vhost 'shop' queue 'q' {field}"
    assert problem.message == message
    assert "Input should be" not in problem.message and "datetime" not in problem.message


@pytest.mark.parametrize(
    ("value", "expected"),
    [("yes", True), ("no", False), ("true", True), ("false", False), ("True", True), ("on", True), ("off", False)],
)
def test_yaml_booleans_are_accepted(tmp_path, value, expected):
    file = write(tmp_path, "t.yaml", f"vhosts:\n  shop:\n    queues:\n      q:\n        durable: {value}\n")
    assert load([str(file)]).vhosts["shop"].queues["q"].spec.durable is expected


def test_vhosts_must_be_a_mapping(tmp_path):
    file = write(tmp_path, "t.yaml", "vhosts: [shop]\n")
    problem = only_problem(file)
    assert problem.line == 1 and problem.location == "vhosts"
    assert problem.message == "expected a map (key: value lines), got a list"


def test_invalid_literal_lists_the_choices(tmp_path):
    file = write(tmp_path, "t.yaml", "vhosts:\n  shop:\n    queues:\n      q:\n        type: quorom\n")
    problem = only_problem(file)
    assert problem.line == 5
    assert problem.message == "expected classic, quorum or stream, got 'quorom'"


# --------------------------------------------------------------------------- several files and directories


def test_same_vhost_across_files_is_merged(tmp_path):
    a = write(
        tmp_path,
        "a.yaml",
        """
        vhosts:
          shop:
            description: the shop
            exchanges:
              orders: {type: topic}
            bindings:
              - {source: orders, destination: q1}
        """,
    )
    b = write(
        tmp_path,
        "b.yaml",
        """
        vhosts:
          shop:
            tags: [prod]
            queues:
              q1: {}
            bindings:
              - {source: orders, destination: q1, routing_key: x}
          other:
            queues:
              q1: {}
        """,
    )
    topology = load([str(a), str(b)])
    assert sorted(topology.vhosts) == ["other", "shop"]
    shop = topology.vhosts["shop"]
    assert shop.description == "the shop" and shop.tags == ["prod"]
    assert list(shop.exchanges) == ["orders"] and list(shop.queues) == ["q1"]
    assert shop.exchanges["orders"].origin.file == str(a)
    assert shop.queues["q1"].origin.file == str(b)
    assert [(d.origin.file, d.origin.line) for d in shop.bindings] == [(str(a), 7), (str(b), 7)]
    assert shop.attribute_origins["tags"].file == str(b)
    # the same queue name in another vhost is a different queue
    assert "q1" in topology.vhosts["other"].queues
    # the line table of both files is kept
    assert set(topology.lines) == {str(a), str(b)}


@pytest.mark.parametrize(
    ("kind", "body", "location"),
    [
        ("exchanges", "orders: {type: topic}", "vhost 'shop' exchange 'orders'"),
        ("queues", "orders: {}", "vhost 'shop' queue 'orders'"),
        ("policies", "orders: {pattern: x, definition: {max-length: 1}}", "vhost 'shop' policy 'orders'"),
    ],
)
def test_same_object_in_two_files_is_an_error_naming_both_places(tmp_path, kind, body, location):
    a = write(tmp_path, "a.yaml", f"vhosts:\n  shop:\n    {kind}:\n      {body}\n")
    b = write(tmp_path, "b.yaml", f"# second file\nvhosts:\n  shop:\n    {kind}:\n      {body}\n")
    problem = only_problem(a, b)
    assert problem.file == str(b)
    assert problem.line == 5
    assert problem.location == location
    assert problem.message == f"declared twice (also at {a}:4)"


def test_same_exchange_name_in_different_vhosts_is_fine(tmp_path):
    a = write(tmp_path, "a.yaml", "vhosts:\n  one:\n    exchanges:\n      e: {type: topic}\n")
    b = write(tmp_path, "b.yaml", "vhosts:\n  two:\n    exchanges:\n      e: {type: topic}\n")
    topology = load([str(a), str(b)])
    assert "e" in topology.vhosts["one"].exchanges and "e" in topology.vhosts["two"].exchanges


@pytest.mark.parametrize(
    ("attribute", "first", "second"),
    [
        ("description", "one", "two"),
        ("description", "same", "same"),
        ("tags", "[a]", "[b]"),
        ("default_queue_type", "quorum", "classic"),
    ],
)
def test_vhost_attribute_set_in_two_files_is_an_error(tmp_path, attribute, first, second):
    a = write(tmp_path, "a.yaml", f"vhosts:\n  shop:\n    {attribute}: {first}\n")
    b = write(tmp_path, "b.yaml", f"vhosts:\n  shop:\n    queues: {{}}\n    {attribute}: {second}\n")
    problem = only_problem(a, b)
    assert problem.file == str(b)
    assert problem.line == 4
    assert problem.location == f"vhost 'shop' {attribute}"
    assert problem.message == f"set twice (also at {a}:3)"


def test_problems_from_several_files_are_all_reported(tmp_path):
    a = write(tmp_path, "a.yaml", "vhosts:\n  shop:\n    exchanges:\n      e: {}\n")
    b = write(tmp_path, "b.yaml", "vhosts: {\n")
    c = write(tmp_path, "c.yaml", "vhosts:\n  shop:\n    queues:\n      q: {colour: red}\n")
    problems = problems_of(a, b, c, tmp_path / "missing.yaml")
    assert {p.file for p in problems} == {str(a), str(b), str(c), str(tmp_path / "missing.yaml")}
    assert len(problems) == 4


def test_directory_is_searched_recursively_in_sorted_order(tmp_path):
    root = tmp_path / "topo"
    write(root, "b.yaml", "vhosts:\n  shop:\n    queues:\n      q: {}\n")
    write(root, "a/z.yml", "vhosts:\n  shop:\n    queues:\n      q: {}\n")
    write(root, "c/d/deep.yaml", "vhosts:\n  deep: {}\n")
    write(root, "notes.txt", "vhosts: [this is not read]\n")
    write(root, "README.md", "not yaml at all: [\n")
    write(root, "x.yaml.bak", "vhosts: [this is not read]\n")

    files, problems = loader.discover([str(root)])
    assert problems == []
    assert files == [str(root / "a" / "z.yml"), str(root / "b.yaml"), str(root / "c" / "d" / "deep.yaml")]

    # the file that comes later in sorted order is the one reported
    problem = only_problem(root)
    assert problem.file == str(root / "b.yaml")
    assert problem.message == f"declared twice (also at {root / 'a' / 'z.yml'}:4)"


def test_directory_search_skips_hidden_directories_and_files(tmp_path):
    root = tmp_path / "topo"
    write(root, "main.yaml", "vhosts:\n  shop: {}\n")
    write(root, ".git/config.yaml", "vhosts: [broken\n")
    write(root, "sub/.cache/x.yaml", "vhosts: [broken\n")
    write(root, ".hidden.yaml", "vhosts: [broken\n")
    files, problems = loader.discover([str(root)])
    assert problems == []
    assert files == [str(root / "main.yaml")]
    assert list(load([str(root)]).vhosts) == ["shop"]


def test_a_hidden_directory_given_explicitly_is_still_searched(tmp_path):
    root = tmp_path / ".topology"
    write(root, "main.yaml", "vhosts:\n  shop: {}\n")
    assert list(load([str(root)]).vhosts) == ["shop"]


def test_directories_and_files_are_combined_and_deduplicated(tmp_path):
    root = tmp_path / "topo"
    inner = write(root, "a.yaml", "vhosts:\n  shop:\n    exchanges:\n      e: {type: topic}\n")
    extra = write(tmp_path, "extra.yaml", "vhosts:\n  shop:\n    queues:\n      q: {}\n")
    files, problems = loader.discover([str(root), str(inner), str(extra)])
    assert problems == []
    assert files == [str(inner), str(extra)]
    # the same file reached twice does not declare its objects twice
    topology = load([str(root), str(inner), str(extra)])
    assert list(topology.vhosts["shop"].exchanges) == ["e"]
    assert list(topology.vhosts["shop"].queues) == ["q"]


def test_directory_without_yaml_files_is_a_problem(tmp_path):
    root = tmp_path / "empty"
    root.mkdir()
    (root / "notes.txt").write_text("hello")
    problem = only_problem(root)
    assert problem.file == str(root)
    assert problem.line == 0
    assert "no *.yaml or *.yml file" in problem.message


def test_missing_path_is_a_problem(tmp_path):
    missing = tmp_path / "nope.yaml"
    problem = only_problem(missing)
    assert (problem.file, problem.line, problem.message) == (str(missing), 0, "no such file or directory")


# --------------------------------------------------------------------------- file contents


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "\ufeff"], ids=repr)
def test_empty_file_is_fine(tmp_path, text):
    file = tmp_path / "empty.yaml"
    file.write_text(text, encoding="utf-8")
    topology = load([str(file)])
    assert topology.vhosts == {}


def test_empty_file_next_to_a_real_one(tmp_path):
    empty = write(tmp_path, "a.yaml", "")
    real = write(tmp_path, "b.yaml", "vhosts:\n  shop: {}\n")
    assert list(load([str(empty), str(real)]).vhosts) == ["shop"]


@pytest.mark.parametrize("text", ["- vhosts\n- shop\n", "just a string\n", "42\n", "[]\n"], ids=repr)
def test_top_level_must_be_a_mapping(tmp_path, text):
    file = write(tmp_path, "t.yaml", text)
    problem = only_problem(file)
    assert problem.line == 1
    assert problem.message == "the top level must be a mapping (vhosts: ...)"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        pytest.param("vhosts:\n  shop: {\n", 3, id="unclosed-flow-mapping"),
        pytest.param("vhosts:\n  shop:\n    queues:\n      q: {durable: false\n", 5, id="unclosed-deeper"),
        pytest.param("vhosts:\n  shop:\n    queues: {}\n   bad indent: 1\n", 4, id="bad-indentation"),
        pytest.param("vhosts:\n  shop:\n    description: \"unterminated\n", 4, id="unterminated-string"),
        pytest.param("vhosts:\n  shop:\n    exchanges: *nowhere\n", 3, id="unknown-alias"),
        pytest.param("a: 1\n---\nb: 2\n", 2, id="two-documents"),
        pytest.param("vhosts:\n\tshop: {}\n", 2, id="tab-indentation"),
    ],
)
def test_invalid_yaml_gives_a_located_problem(tmp_path, text, line):
    file = tmp_path / "t.yaml"
    file.write_text(text)
    problem = only_problem(file)
    assert problem.file == str(file)
    assert problem.message.startswith(("invalid YAML: ", "invalid YAML at column "))
    assert len(problem.message) > len("invalid YAML at column 1: ")
    assert problem.line == line


@pytest.mark.parametrize("text, line, message", [
    ("vhosts:\n  v:\n    queues:\n\tq: {}\n", 4, "invalid YAML: a tab at column 1: YAML indents with spaces, never tabs"),
    ("vhosts:\n  v:\n    description: a: b\n", 3, "invalid YAML at column 19: a ':' where no key can start (a value "
                                                  "holding ': ' needs quotes, or the line is indented too far)"),
    ("vhosts:\n  v:\n    queues: {q: {}\n", 4, "invalid YAML at column 1: a {...} map that is not closed, or a value "
                                             "in it holding '{' or ',' (quote it)"),
])
def test_yaml_mistakes_are_named_in_the_users_words_with_their_column(tmp_path, text, line, message):
    problem = only_problem(write(tmp_path, "t.yaml", text))
    assert (problem.line, problem.message) == (line, message)


def test_a_key_indented_one_level_too_little_is_named_as_such(tmp_path):
    """`type` under `queues:` instead of under the queue: the queue is empty, and `type` sits where a
    name goes; neither says pydantic's words."""
    problems = load_problems(tmp_path, "vhosts:\n  v:\n    queues:\n      q1:\n      type: quorum\n")
    assert problems == [
        f"{tmp_path / 't.yaml'}:4: vhost 'v' queue 'q1': no settings: the value is empty (write {{}} for the "
        "defaults), or the keys meant for it are indented too little",
        f"{tmp_path / 't.yaml'}:5: vhost 'v' queue 'type': 'type' is a setting, not a name: it looks indented one "
        "level too little (it sits where a name goes)"]


def test_unknown_tag_is_refused_not_a_traceback(tmp_path):
    file = write(tmp_path, "t.yaml", "vhosts:\n  shop:\n    description: !!python/object:os.system ls\n")
    problem = only_problem(file)
    assert problem.message.startswith("invalid YAML")
    assert problem.line == 3


def test_non_utf8_bytes_are_a_located_problem(tmp_path):
    file = tmp_path / "latin1.yaml"
    file.write_bytes("vhosts:\n  shop:\n    description: café\n".encode("latin-1"))
    problem = only_problem(file)
    assert (problem.file, problem.line, problem.message) == (str(file), 3, "not UTF-8 text")


def test_a_control_character_is_a_located_problem_on_one_line(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("vhosts:\n  v:\n    description: a\x0cb\n", encoding="utf-8")
    (problem,) = problems_of(path)
    assert problem.line == 3
    assert problem.message == ("invalid YAML at column 19: a control character (U+000C) is not allowed; remove it, "
                               "or write it as \"\\u000c\" inside double quotes")


def test_utf8_text_and_byte_order_mark_are_fine(tmp_path):
    file = tmp_path / "bom.yaml"
    file.write_bytes("\ufeffvhosts:\n  café:\n    description: crème brûlée\n".encode("utf-8"))
    topology = load([str(file)])
    assert topology.vhosts["café"].description == "crème brûlée"


def test_a_non_scalar_key_is_a_problem(tmp_path):
    file = write(tmp_path, "t.yaml", "vhosts:\n  shop:\n    queues:\n      ? [a, b]\n      : {}\n")
    problem = only_problem(file)
    assert problem.line == 4
    assert problem.message == "a key must be a plain value"


def test_oversized_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(loader, "MAX_FILE_BYTES", 10)
    file = write(tmp_path, "t.yaml", "vhosts:\n  shop: {}\n")
    problem = only_problem(file)
    assert problem.line == 0 and "larger than the 10 allowed" in problem.message


# --------------------------------------------------------------------------- anchors, aliases and merge keys


def test_merge_keys_work_and_explicit_keys_win(tmp_path):
    file = write(
        tmp_path,
        "t.yaml",
        """
        vhosts:
          shop:
            queues:
              base: &defaults
                type: quorum
                delivery_limit: 5
                message_ttl: 1m
              orders:
                <<: *defaults
                delivery_limit: 10
              payments:
                delivery_limit: 20
                <<: *defaults
              plain:
                <<: *defaults
        """,
    )
    queues = load([str(file)]).vhosts["shop"].queues
    assert queues["base"].spec.delivery_limit == 5
    for name, limit in (("orders", 10), ("payments", 20), ("plain", 5)):
        spec = queues[name].spec
        assert spec.type == "quorum", name
        assert spec.message_ttl == 60_000, name
        assert spec.delivery_limit == limit, name
    topology = load([str(file)])
    assert topology.line_of(queues["orders"].origin, "delivery_limit") == 10
    # keys that only come from the merge are located at the anchor
    assert topology.line_of(queues["plain"].origin, "type") == 5


def test_merge_key_after_an_explicit_key_keeps_the_explicit_line(tmp_path):
    file = write(
        tmp_path,
        "t.yaml",
        """
        vhosts:
          shop:
            queues:
              base: &defaults
                delivery_limit: 5
              payments:
                delivery_limit: 20
                <<: *defaults
        """,
    )
    topology = load([str(file)])
    payments = topology.vhosts["shop"].queues["payments"]
    assert payments.spec.delivery_limit == 20  # the value is right...
    assert topology.line_of(payments.origin, "delivery_limit") == 7  # ...and so must be its line


def test_merge_key_with_a_list_earlier_sources_win(tmp_path):
    file = write(
        tmp_path,
        "t.yaml",
        """
        vhosts:
          shop:
            queues:
              a: &a {type: quorum, delivery_limit: 1}
              b: &b {type: classic, max_length: 7, delivery_limit: 2}
              c:
                <<: [*a, *b]
                delivery_limit: 3
        """,
    )
    spec = load([str(file)]).vhosts["shop"].queues["c"].spec
    assert spec.type == "quorum"
    assert spec.max_length == 7
    assert spec.delivery_limit == 3


def test_merge_key_of_a_non_mapping_is_a_problem(tmp_path):
    file = write(
        tmp_path,
        "t.yaml",
        """
        vhosts:
          shop:
            queues:
              q:
                <<: [1, 2]
        """,
    )
    problems = problems_of(file)
    assert problems
    assert all("a merge key (<<) needs a mapping" in p.message and p.line == 5 for p in problems)


def test_plain_aliases_are_expanded(tmp_path):
    file = write(
        tmp_path,
        "t.yaml",
        """
        vhosts:
          shop:
            queues:
              a:
                arguments: &args {x-max-length: 10, x-overflow: reject-publish}
              b:
                arguments: *args
        """,
    )
    queues = load([str(file)]).vhosts["shop"].queues
    assert queues["a"].spec.arguments == queues["b"].spec.arguments == {"x-max-length": 10, "x-overflow": "reject-publish"}


def _laughs(depth: int, width: int = 10, leaf: str = "[lol]", merge: bool = False) -> str:
    """A "billion laughs" document inside queue arguments (otherwise valid)."""
    lines = ["vhosts:", "  v:", "    queues:", "      q:", "        arguments:", f"          a0: &a0 {leaf}"]
    for i in range(1, depth + 1):
        refs = ", ".join([f"*a{i - 1}"] * width)
        lines.append(f"          a{i}: &a{i} {{<<: [{refs}]}}" if merge else f"          a{i}: &a{i} [{refs}]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_quickly(tmp_path, monkeypatch):
    monkeypatch.setattr(loader, "MAX_NODES", 10_000)
    file = tmp_path / "bomb.yaml"
    file.write_text(_laughs(9))  # 10**9 leaves once expanded
    started = time.perf_counter()
    problem = only_problem(file)
    elapsed = time.perf_counter() - started
    assert elapsed < 2
    assert problem.file == str(file)
    assert problem.message == "document expands to more than 10000 nodes (aliases?)"


def test_moderate_alias_use_below_the_limit_is_fine(tmp_path, monkeypatch):
    monkeypatch.setattr(loader, "MAX_NODES", 10_000)
    file = tmp_path / "ok.yaml"
    file.write_text(_laughs(2))  # about 100 leaves
    arguments = load([str(file)]).vhosts["v"].queues["q"].spec.arguments
    assert arguments["a2"] == [[["lol"]] * 10] * 10


def test_alias_bomb_through_non_empty_merge_keys_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(loader, "MAX_NODES", 10_000)
    file = tmp_path / "bomb.yaml"
    file.write_text(_laughs(9, leaf="{k: v}", merge=True))
    started = time.perf_counter()
    problem = only_problem(file)
    assert time.perf_counter() - started < 2
    assert "expands to more than 10000 nodes" in problem.message


def test_alias_bomb_through_empty_merge_keys_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(loader, "MAX_NODES", 1_000)
    file = tmp_path / "bomb.yaml"
    # merging empty mappings: no leaf at all, yet 10**5 mappings once expanded
    file.write_text(_laughs(5, leaf="{}", merge=True))
    started = time.perf_counter()
    problem = only_problem(file)
    assert time.perf_counter() - started < 2
    assert "expands to more than 1000 nodes" in problem.message


# --------------------------------------------------------------------------- deep nesting


def _nested(depth: int, flow: str) -> str:
    opening, closing = ("[" * depth, "]" * depth) if flow == "list" else ("{a: " * depth, "1" + "}" * depth)
    return f"vhosts:\n  v:\n    queues:\n      q:\n        arguments:\n          x: {opening}{closing}\n"


@pytest.mark.parametrize("flow", ["list", "mapping"])
def test_reasonable_nesting_loads(tmp_path, flow):
    file = tmp_path / "t.yaml"
    file.write_text(_nested(30, flow))
    value = load([str(file)]).vhosts["v"].queues["q"].spec.arguments["x"]
    depth = 0
    while isinstance(value, (list, dict)) and value:
        value = value[0] if isinstance(value, list) else value["a"]
        depth += 1
    assert depth == (29 if flow == "list" else 30)


@pytest.mark.parametrize("flow", ["list", "mapping"])
def test_deep_nesting_is_a_problem_not_a_traceback(tmp_path, flow):
    file = tmp_path / "t.yaml"
    file.write_text(_nested(3000, flow))
    problem = only_problem(file)
    assert problem.file == str(file)
    assert "nested too deeply" in problem.message


def test_very_deep_nesting_does_not_crash_the_process(tmp_path):
    file = tmp_path / "deep.yaml"
    # Run in a child process: a recursive C composer (libyaml's) would not raise but die
    # with SIGSEGV. The child's stack is limited to 1 MiB so that such a crash is cheap to
    # reach (with the default 8 MiB stack it happens at ~26000 levels).
    file.write_text(_nested(12_000, "list"))
    script = textwrap.dedent(
        f"""
        from topology.errors import ConfigError
        from topology.loader import load
        try:
            load([{str(file)!r}])
        except ConfigError as error:
            print("PROBLEMS", *[p.message for p in error.problems], sep="|")
        """
    )

    def small_stack() -> None:
        resource.setrlimit(resource.RLIMIT_STACK, (1024 * 1024, resource.getrlimit(resource.RLIMIT_STACK)[1]))

    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=REPO_ROOT,
        preexec_fn=small_stack, timeout=60,
    )
    assert result.returncode == 0, f"child died with {result.returncode}: {result.stderr[-500:]}"
    assert "nested too deeply" in result.stdout


def test_an_unknown_key_close_to_a_known_one_says_which(tmp_path):
    from tests.conftest import load_problems

    problems = load_problems(tmp_path, """
        vhosts:
          v:
            queues:
              q: {dead_leter_exchange: dlx, zzz: 1}
            exchangs: {}
        user: {}
        """)
    assert any(p.endswith("unknown key 'dead_leter_exchange'; did you mean 'dead_letter_exchange'?") for p in problems)
    assert any(p.endswith("unknown key 'exchangs'; did you mean 'exchanges'?") for p in problems)
    assert any(p.endswith("unknown key 'user'; did you mean 'users'?") for p in problems)
    assert any(p.endswith("unknown key 'zzz'") for p in problems)  # nothing close: no guess
