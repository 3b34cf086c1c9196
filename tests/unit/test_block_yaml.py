"""The fast reader of plain block YAML (topology.block_yaml) against the full reader.

Whatever the fast reader accepts, it must read exactly as the full reader (libyaml's events,
``topology.loader._Builder``) does: the same data with the same types, the same line for every
key and list item, the same variables and problems. Whatever it cannot read that way it must
give up on. These tests hold the two to that on the project's own files and documentation, on
generated documents in several styles, and on mutations of both.
"""

from __future__ import annotations

import datetime
import math
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from topology import block_yaml, loader
from topology.variables import Variables

ROOT = Path(__file__).resolve().parents[2]


def corpus() -> dict[str, str]:
    """Every YAML file of the project and every YAML example of its documentation."""
    texts: dict[str, str] = {}
    for pattern in ("tests/**/*.yaml", "tests/**/*.yml", "examples/**/*.yaml", "ci-recipes/**/*.yaml"):
        for path in sorted(ROOT.glob(pattern)):
            texts[str(path.relative_to(ROOT))] = path.read_text(encoding="utf-8", errors="replace")
    for path in sorted([*ROOT.glob("docs/**/*.md"), ROOT / "README.md"]):
        for index, block in enumerate(re.findall(r"```yaml\n(.*?)```", path.read_text(encoding="utf-8"), re.S)):
            texts[f"{path.relative_to(ROOT)}#{index}"] = block
    return texts


CORPUS = corpus()
ENVIRONMENT = {"SHOP_DESCRIPTION": "the shop", "MAX_QUEUES": "12", "TTL_SECONDS": "30", "X": "x-value",
               "PASSWORD": "s3cret", "DURABLE": "yes"}


def strictly_equal(left, right) -> bool:
    """Equal with the same types all the way down (``1 == True`` and ``1 == 1.0`` are not)."""
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return list(left) == list(right) and all(type(a) is type(b) for a, b in zip(left, right)) and all(
            strictly_equal(left[key], right[key]) for key in left)
    if isinstance(left, (list, tuple)):
        return len(left) == len(right) and all(strictly_equal(a, b) for a, b in zip(left, right))
    if isinstance(left, float) and math.isnan(left):
        return math.isnan(right)
    return left == right and getattr(left, "template", None) == getattr(right, "template", None)


def read(text: str, fast: bool, environment: bool = True):
    """What one reader makes of ``text``: its document's parts, problems and vhost calls."""
    problems: list = []
    vhosts: list[str] = []
    variables = Variables(environment=ENVIRONMENT) if environment else None
    document = loader.parse_text(text, "f.yaml", problems, variables, vhosts.append, fast=fast)
    if document is None:
        return None, [(p.line, p.location, p.message) for p in problems], vhosts
    kept = dict(document.lines)  # before the lines below the objects are read, if they were left out
    every = document.all_lines()
    assert kept.items() <= every.items(), text  # what was kept is what a whole reading records
    parts = (document.data, every, document.substituted, document.variables_of)
    return parts, [(p.line, p.location, p.message) for p in problems], vhosts


def fast_only(text: str, environment: bool = True):
    """The fast reader's own result, or None when it gives up."""
    builder = loader._Builder(loader._Loader(text), "f.yaml", [], Variables(environment=ENVIRONMENT) if environment else None)
    data = block_yaml.read(text, builder.loader, builder.lines, builder.substitute if environment else None)
    return None if data is block_yaml.FALLBACK else data


def assert_same(text: str, environment: bool = True) -> bool:
    """Both readers agree on ``text``; returns whether the fast one read it."""
    fast, slow = read(text, True, environment), read(text, False, environment)
    assert fast[1] == slow[1], (text, fast[1], slow[1])
    used = fast_only(text, environment) is not None
    if used:
        assert fast[2] == slow[2], text  # the same vhosts named, in the same order
    else:  # the fast reader named those it read before it gave up, the full one names them all again
        assert fast[2][len(fast[2]) - len(slow[2]):] == slow[2], text
    assert (fast[0] is None) == (slow[0] is None), text
    if fast[0] is not None:
        assert strictly_equal(fast[0][0], slow[0][0]), (text, fast[0][0], slow[0][0])
        assert fast[0][1:] == slow[0][1:], (text, fast[0][1:], slow[0][1:])
    return used


def test_every_file_and_example_of_the_project_reads_the_same():
    used = [name for name, text in CORPUS.items() if assert_same(text)]
    assert len(CORPUS) > 30
    # the fast reader must not give up on the ordinary files it exists for
    assert {"tests/fixtures/files/valid.yaml", "examples/shop/topology.yaml"} <= set(used) or len(used) > len(CORPUS) // 2, used


def test_the_lines_below_the_objects_are_read_when_first_asked():
    text = ("vhosts:\n  shop:\n    queues:\n      orders:\n        durable: true\n        message_ttl: 30s\n"
            "    bindings:\n      - source: x\n        destination: orders\n    tags: [a, b]\nusers:\n  u:\n"
            "    tags: [administrator]\n")
    document = loader.parse_text(text, "f.yaml", [], Variables())
    field = ("vhosts", "shop", "queues", "orders", "message_ttl")
    assert ("vhosts", "shop", "queues", "orders") in document.lines and ("vhosts", "shop", "bindings", 0) in document.lines
    assert field not in document.lines and ("users", "u", "tags") in document.lines
    assert document.line_of(field) == 6
    full = loader.parse_text(text, "f.yaml", [], Variables(), fast=False)
    assert document.lines == full.lines and document.more_lines is None
    # with references, the text may not read the same again: every line is recorded at once
    with_reference = text.replace("30s", "${TTL}")
    document = loader.parse_text(with_reference, "f.yaml", [], Variables(environment={"TTL": "1s"}))
    assert document.more_lines is None and field in document.lines


def test_a_loaded_topology_keeps_no_document_alive(tmp_path):
    """What reads the lines of fields later holds the file's text, not its parsed data."""
    import gc

    file = tmp_path / "t.yaml"
    file.write_text("vhosts:\n  shop:\n    queues:\n      orders:\n        expires: 0\n", encoding="utf-8")
    topology = loader.load([str(file)])
    gc.collect()
    assert str(file) in topology.more_lines
    assert not [o for o in gc.get_objects() if isinstance(o, loader.Document)]
    origin = topology.vhosts["shop"].queues["orders"].origin
    assert topology.line_of(origin, "expires") == 5 and str(file) not in topology.more_lines


def test_a_generated_large_file_is_read_by_the_fast_reader():
    queues = {f"q-{i}": {"message_ttl": 3_600_000, "max_length": 100_000 + i, "dead_letter_exchange": "dlx"}
              for i in range(200)}
    bindings = [{"source": "x", "destination": f"q-{i}", "routing_key": f"key.{i}"} for i in range(200)]
    text = yaml.safe_dump({"vhosts": {"v": {"queues": queues, "bindings": bindings,
                                            "exchanges": {"x": {"type": "topic"}}}}})
    assert assert_same(text)


@pytest.mark.parametrize("text", [
    "a: yes\nb: No\nc: 0o17\nd: 012\ne: 0x1F\nf: 1_000\ng: 1:30\nh: 1e3\ni: .5\nj: +1\nk: -0\nl: ~\nm: Null\n"
    "n: .inf\no: -.Inf\np: .NaN\nq: 2001-12-14\nr: 2001-12-14t21:59:43.10-05:00\ns: 3.0\nt: -12\nu: '012'\n",
    "vhosts:\n  v:\n    queues:\n      q: {max_length: 10, durable: yes}\n    tags: [a, b, c]\n",
    "x: 'it''s'\ny: \"double\"\nz: plain text # a comment\nw: a#b\n",
    "---\n# a comment\nvhosts: {}\n",
    "# before\n---\nvhosts:\n  v: {}\n",
    "list:\n- a\n- b:\n  - c\n-\n  d: 1\n- [x, y]\n- {}\n",
    "key:    spaced   \n  # indented comment\nother:\n",
    "url: amqp://user@host:5672/v\npattern: ^amq\\.\n",
    "users:\n  app:\n    password: ${PASSWORD}\n    tags: ['${X}']\n",
    "vhosts:\n  ${X}:\n    description: ${SHOP_DESCRIPTION}\n  'plain': {}\n",
    "a: ${MISSING}\n",
    "a: '${MISSING} in quotes'\n",
    "limits: {max-queues: \"${MAX_QUEUES:-100}\", max-connections: 50}\n",
    "vhosts: {a: {}, 'b': {queues: {q: {durable: true}}}}\n",  # vhosts named in a flow map
    # decimal integers, read without the resolver up to 18 digits, and what only looks like one
    "a: 0\nb: 00\nc: 012\nd: 123456789012345678\ne: 1234567890123456789\nf: \u0661\u0662\ng: 12 # c\n"
    "h: 1_0\ni: 99999999999999999999\nj: 7\nk: 7\nl: \u00b2\nm: 08\nn: 09\n",
])
def test_tricky_documents_read_the_same(text):
    assert assert_same(text)


@pytest.mark.parametrize("text", [
    "a: &x 1\nb: *x\n",  # anchors and aliases
    "a: !!str 1\n",  # tags
    "a: |\n  text\n",  # block scalars
    "a: one\n  two\n",  # a multi-line plain scalar
    "a: 1\na: 2\n",  # a duplicate key
    "1: a\n",  # a key that is not text
    "yes: a\n",
    "a:\n  <<: {b: 1}\n",  # a merge key
    "a: \"esc\\taped\"\n",  # escapes
    "a:\tb\n",  # a tab
    "a: b\r\nc: d\r\n",  # carriage returns
    "a: b\u2028c: d\n",  # a line separator, a line break to YAML
    "a: b\x85\n",  # a next-line character, too
    "- a\n- b\n",  # a list at the top
    "a: b\n---\nc: d\n",  # two documents
    "a: b\n...\n",  # an end marker
    "a: [1, [2, 3]\n",  # an unclosed flow list
    "a: {b}\n",  # a flow key without a value
    "a: b: c\n",  # a value that is a mapping on the same row
    "a:\n-\n",  # an empty list item
    "",
    "a" + " " * 1100 + ": 1\n",  # a key libyaml finds too long (its span, not its text)
    "'" + "''" * 600 + "': 1\n",
    "x: {a" + " " * 1100 + ": 1}\n",
    "a: " + "[" * 150 + "]" * 150 + "\n",  # nested deeply in a flow collection
    "a: " + "{b: " * 120 + "1" + "}" * 120 + "\n",
])
def test_what_the_fast_reader_leaves_to_the_full_one(text):
    assert fast_only(text) is None
    assert_same(text)


def test_without_variables_references_stay_as_written():
    text = "a: ${X}\nb: ['${X}']\n"
    assert assert_same(text, environment=False)
    assert read(text, True, environment=False)[0][0] == {"a": "${X}", "b": ["${X}"]}


# ----------------------------------------------------------------------------------- generated

_SCALARS = st.one_of(
    st.sampled_from(["yes", "no", "on", "Off", "true", "NULL", "~", "", "0", "012", "0o17", "0x1f", "1_000", "1:30",
                     "1e3", "1.5", ".inf", "-.inf", ".nan", "+7", "-3", "2020-01-01", "a: b", "#x", "a #b", "x#y",
                     "it's", 'say "hi"', "- x", "-x", "[a]", "{a}", "a,b", "*x", "&x", "!x", "|", ">", "%", "@",
                     "`", "?", ":", "a:", "a:b", "^amq\\.", " lead", "trail ", "q-1", "key.1", "${X}", "ü", "é x",
                     "---", "...", "<<", "="]),
    st.integers(min_value=-10**20, max_value=10**20),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12),
    st.dates(min_value=datetime.date(1900, 1, 1), max_value=datetime.date(2100, 1, 1)),
)
_KEYS = st.one_of(st.sampled_from(["a", "vhosts", "queues", "q-1", "x y", "k.1", "it's", "a:b", "#", "1", "yes",
                                   "ü", "${X}", "<<", "-", "- a", "? x"]),
                  st.text(alphabet="abcxyz-_. :'\"#", min_size=1, max_size=6))
_DATA = st.recursive(
    _SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_KEYS, children, max_size=4),
    max_leaves=25,
)


def _styles(data, style: int) -> str:
    if style == 0:
        return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    if style == 1:
        return yaml.safe_dump(data, allow_unicode=True, default_flow_style=None, sort_keys=False)
    if style == 2:
        return yaml.safe_dump(data, allow_unicode=True, indent=4, width=20, sort_keys=False)
    return yaml.safe_dump(data, allow_unicode=False, default_flow_style=True, sort_keys=False)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.dictionaries(_KEYS, _DATA, min_size=1, max_size=5), style=st.integers(0, 3),
       comments=st.lists(st.tuples(st.integers(0, 40), st.sampled_from(["# c", "", "  # c", "   "])), max_size=3))
def test_generated_documents_read_the_same(data, style, comments):
    try:
        text = _styles(data, style)
    except yaml.YAMLError:
        return
    lines = text.split("\n")
    for position, line in comments:
        lines.insert(min(position, len(lines)), line)
    assert_same("\n".join(lines))


_PIECES = [": ", ":", " #", "#", "- ", "-", "'", '"', "  ", "\n", "\n  ", "[", "]", "{}", "[]", ",", "yes", "1",
           "0o7", "1:30", "${X}", "<<", "&a", "*a", "!!str", "|", ">", "?", "~", "null", "2020-01-01", "--- ", "...",
           "@", "%", "\\", "''", " ", "{", "}", "a: b", "${MISSING}"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(CORPUS)), edits=st.lists(
    st.tuples(st.integers(0, 10_000), st.integers(0, 4), st.integers(0, 200), st.sampled_from(_PIECES)), max_size=3))
def test_mutated_files_read_the_same(name, edits):
    lines = CORPUS[name].split("\n")
    for row, operation, column, piece in edits:
        row %= max(len(lines), 1)
        if not lines:
            break
        line = lines[row]
        column = min(column, len(line))
        if operation == 0:
            lines[row] = line[:column] + piece + line[column:]
        elif operation == 1:
            lines[row] = line[:column] + line[column + 1:]
        elif operation == 2:
            lines.insert(row, line)
        elif operation == 3:
            del lines[row]
        else:
            lines[row] = " " * (column % 4) + line
    assert_same("\n".join(lines))


def test_the_limit_of_nodes_counts_flow_items(monkeypatch):
    monkeypatch.setattr(loader, "MAX_NODES", 100)
    text = "a: [" + "1, " * 200 + "]\n"
    assert fast_only(text) is not None  # the fast reader alone would take it...
    assert read(text, True)[0] is None and read(text, True)[1] == read(text, False)[1]  # ...but leaves it



@pytest.mark.parametrize("size", [1, 7, 64])
def test_rows_found_a_piece_at_a_time_are_the_rows_of_the_whole_text(monkeypatch, size):
    """The rows are found in pieces (so that the first vhost is named at once): pieces of any size
    give the same rows, lines, data and vhost callbacks as the whole text in one piece."""
    from topology import block_yaml

    texts = [*CORPUS.values(), "", "\n", "a: 1", "a: 1\n", "\n\n", "a:\n  b: 2\n\n  # c\n"]
    whole = {text: (block_yaml._ROW.findall(text), read(text, fast=True)) for text in texts}
    monkeypatch.setattr(block_yaml, "FIRST_CHUNK", size)
    monkeypatch.setattr(block_yaml, "CHUNK", size)
    for text in texts:
        rows, result = whole[text]
        if block_yaml._usual(text):
            assert list(block_yaml._rows(text)) == rows
        assert strictly_equal(read(text, fast=True), result)


_LONG_ROW = re.compile(r"^[^\n]{%d}" % block_yaml.LONG_ROW, re.MULTILINE)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(st.text(st.characters(max_codepoint=0x7F), max_size=30),
                          st.text(max_size=5),
                          st.sampled_from(["\n", "a" * (block_yaml.LONG_ROW - 1), "\x85", "\u2028", "\ufeff"])),
                max_size=8))
def test_the_quick_check_of_a_piece_is_the_regular_expressions(parts):
    """:func:`block_yaml._usual` (bytes for ASCII text, row lengths by splitting) finds what the
    two regular expressions it stands for find: an unusual character, a row of 1,000 or more."""
    text = "".join(parts)
    expected = block_yaml._UNUSUAL.search(text) is None and _LONG_ROW.search(text) is None
    assert block_yaml._usual(text) == expected
    for row in ("a" * (block_yaml.LONG_ROW - 1), "a" * block_yaml.LONG_ROW):
        assert block_yaml._usual(f"{text}\n{row}\nb: 1\n") == (expected and len(row) < block_yaml.LONG_ROW)


@pytest.mark.parametrize("start", [0, 1, 2, 250, 498, 499, 500, 501, 998, 999, 1000, 1001, 1499, 1500])
def test_a_long_row_is_found_wherever_it_starts(start):
    """The rows are measured only where a block of half a long row holds no line break."""
    from topology import block_yaml

    before = "k" * (start - 1) + "\n" if start else ""
    for length in (block_yaml.LONG_ROW - 1, block_yaml.LONG_ROW, block_yaml.LONG_ROW + 1):
        for after in ("", "\n", "\nb: 1\n"):
            text = before + "v" * length + after
            assert block_yaml._usual(text) == (length < block_yaml.LONG_ROW and start - 1 < block_yaml.LONG_ROW)


_ROW_PIECES = st.sampled_from([" ", "  ", "-", "- ", ":", ": ", "#", " #", "'", "''", '"', "a", "b c", "q-1", "x.y",
                               "1", "[", "]", "{", "}", ",", "?", "&", "*", "!", "|", ">", "%", "@", "`", "\n"])


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_ROW_PIECES, max_size=30).map("".join))
def test_the_possessive_row_pattern_finds_the_rows_the_backtracking_one_finds(text):
    """The row pattern's possessive runs (``*+``, ``++``) never give back what backtracking would
    have made a row of: the same pattern with plain runs finds the same rows in any text."""
    backtracking = re.compile(block_yaml._ROW.pattern.replace("*+", "*").replace("++", "+"), block_yaml._ROW.flags)
    assert backtracking.pattern != block_yaml._ROW.pattern
    assert block_yaml._ROW.findall(text) == backtracking.findall(text)
