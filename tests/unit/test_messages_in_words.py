"""Problems in the topology and values files speak the user's words: one line, located, saying
what to do; never a traceback, a parser token, pydantic's wording, a Python class or repr."""

from __future__ import annotations

import warnings

import pytest
import yaml

from topology.errors import ConfigError
from topology.loader import load_valid
from topology.matching import pattern_match, pattern_problem
from topology.variables import Variables, load_values
from topology.yaml_errors import yaml_problem

FORBIDDEN = ("Input should be", "instance of", "[key]", "datetime.", "<stream end>", "#x0", "after validation",
             "constrained-", "literal[", "list[str]", "Value error", "FutureWarning", "Exceeds the limit",
             "set_int_max_str_digits", "at position", "<unicode string>", "found character", "did not find expected",
             "found undefined", "found unknown", "Traceback", "a bytes", "a date is")


def said(tmp_path, text: str) -> list[str]:
    """Every problem loading ``text`` gives, as the CLI prints it (the file named t.yaml)."""
    path = tmp_path / "t.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        load_valid([str(path)], offline=True)
    except ConfigError as error:
        lines = [str(problem).replace(str(path), "t.yaml") for problem in error.problems]
    else:
        return []
    for line in lines:
        assert "\n" not in line and not [word for word in FORBIDDEN if word in line], line
    return lines


def queue(settings: str) -> str:
    return f"vhosts:\n  shop:\n    queues:\n      a: {settings}\n"


@pytest.mark.parametrize(("settings", "expected"), [
    ("!!int foo", "t.yaml:4: vhost 'shop' queue 'a': '!!int foo' is not a whole number (remove the !!int tag, or "
                  "write a whole number)"),
    ("{max_length: !!float abc}", "t.yaml:4: vhost 'shop' queue 'a' max_length: '!!float abc' is not a number "
                                  "(remove the !!float tag, or write a number)"),
    ("{max_length: !!timestamp 2020-13-45}", "t.yaml:4: vhost 'shop' queue 'a' max_length: '!!timestamp 2020-13-45' "
                                             "is not a valid date (remove the !!timestamp tag, or write a valid date)"),
    ("{max_length: " + "1" * 5000 + "}", "t.yaml:4: vhost 'shop' queue 'a' max_length: a number with 5000 digits: "
                                         "far beyond anything RabbitMQ accepts"),
])
def test_a_value_its_tag_cannot_read_is_a_located_problem_not_a_traceback(tmp_path, settings, expected):
    assert said(tmp_path, queue(settings)) == [expected]


@pytest.mark.parametrize(("text", "expected"), [
    ("a: @x\n", "t.yaml:1: invalid YAML at column 4: a value cannot start with '@' (it is reserved in YAML): put "
                "the value in quotes"),
    ("a: `x\n", "t.yaml:1: invalid YAML at column 4: a value cannot start with '`' (it is reserved in YAML): put "
                "the value in quotes"),
    ("vhosts:\n  shop: &\n", "t.yaml:2: invalid YAML at column 10: an anchor (&) or alias (*) needs a name after it"),
    ("vhosts:\n  shop: !x!y z\n", "t.yaml:2: invalid YAML at column 9: an unknown tag (a '!' that starts a value): "
                                  "remove it, or put the value in quotes"),
    ('vhosts:\n  shop: "abc\\q"\n', "t.yaml:2: invalid YAML at column 13: an unknown backslash escape in a "
                                    "double-quoted value: write \\\\ for a backslash, or use single quotes"),
    ("vhosts:\n  shop: |x\n", "t.yaml:2: invalid YAML at column 10: unexpected text after a block indicator (| or >): "
                              "the text starts on the next line, indented"),
    ("%FOO bar\nvhosts: {}\n", "t.yaml:1: invalid YAML at column 5: a line starting with % that YAML does not "
                               "accept: remove it (or quote a value starting with %)"),
    ("%YAML 1.1\n%YAML 1.1\nvhosts: {}\n", "t.yaml:2: invalid YAML at column 1: a %YAML or %TAG line given twice: "
                                           "remove one"),
    ('key: "value" extra\n', "t.yaml:1: invalid YAML at column 14: text after a quoted value: put the whole value "
                             "inside the quotes"),
    ("vhosts:\n  shop: {queues: {}}}\n", "t.yaml:2: invalid YAML at column 21: a '}' that closes nothing"),
    ('vhosts:\n  "a\x01": {}\n', 't.yaml:2: invalid YAML at column 5: a control character (U+0001) is not allowed; '
                                 'remove it, or write it as "\\u0001" inside double quotes'),
])
def test_yaml_syntax_errors_name_the_mistake_not_the_parser(tmp_path, text, expected):
    assert said(tmp_path, text) == [expected]


def test_a_parser_error_without_a_place_never_shows_a_class_name():
    assert yaml_problem("a: 1", yaml.YAMLError()) == (0, "invalid YAML (the parser gave no reason)")


@pytest.mark.parametrize(("text", "expected"), [
    (queue("[1, 2]"), "t.yaml:4: vhost 'shop' queue 'a': expected a map of settings (key: value lines), got a list"),
    ("vhosts:\n  shop: []\n", "t.yaml:2: vhost 'shop': expected a map of settings (key: value lines), got a list"),
    ("vhosts:\n  shop:\n    federation_upstream_sets:\n      s: [[1]]\n",
     "t.yaml:4: vhost 'shop' federation upstream set 's' #1: expected a map of settings (key: value lines), "
     "got a list"),
    ("vhosts:\n  shop:\n    queues: [a, b]\n", "t.yaml:3: vhost 'shop' queues: expected a map (key: value lines), "
                                               "got a list"),
])
def test_a_list_where_a_map_goes_names_no_model(tmp_path, text, expected):
    assert said(tmp_path, text) == [expected]


def test_the_members_of_a_union_are_one_problem_in_words(tmp_path):
    text = ("vhosts:\n  shop:\n    shovels:\n      s: {source_uri: 5, destination_uri: [], source_queue: q, "
            "delete_after: soon, reconnect_delay: x}\n")
    assert said(tmp_path, text) == [
        "t.yaml:4: vhost 'shop' shovel 's' delete_after: expected never, queue-length or a whole number, got 'soon'",
        "t.yaml:4: vhost 'shop' shovel 's' destination_uri: an empty list: give at least one URI",
        "t.yaml:4: vhost 'shop' shovel 's' reconnect_delay: expected a number, got 'x'",
        "t.yaml:4: vhost 'shop' shovel 's' source_uri: expected a URI or a list of URIs",
    ]


def test_an_unknown_key_of_a_map_with_fixed_keys_lists_them(tmp_path):
    assert said(tmp_path, "vhosts:\n  shop:\n    limits: {max-queues: 1, max-foo: 3}\n") == [
        "t.yaml:3: vhost 'shop' limits.max-foo: unknown key 'max-foo'; expected max-connections or max-queues"]


def test_names_yaml_does_not_read_as_text_are_refused_each_for_what_it_is(tmp_path):
    text = "vhosts:\n  shop:\n    queues:\n      1: {}\n      yes: {}\n      ~: {}\n      2020-01-01: {}\n"
    assert said(tmp_path, text) == [
        "t.yaml:4: vhost 'shop' queues: the name 1 is read as a number: write it in quotes ('1')",
        "t.yaml:5: vhost 'shop' queues: the name yes is read as a boolean (true): write it in quotes ('yes')",
        "t.yaml:6: vhost 'shop' queues: the name ~ is read as null (no value): write it in quotes ('~')",
        "t.yaml:7: vhost 'shop' queues: the name 2020-01-01 is read as a date: write it in quotes ('2020-01-01')",
    ]  # 1 and yes are not called duplicates (1 == True in Python)
    assert said(tmp_path, queue("{on: 1}")) == [
        "t.yaml:4: vhost 'shop' queue 'a': the key on is read as a boolean (true): write it in quotes ('on')"]


def test_quoted_names_that_look_like_other_things_load(tmp_path):
    assert said(tmp_path, "vhosts:\n  shop:\n    queues:\n      '1': {}\n      'yes': {}\n      '2020-01-01': {}\n") == []


def test_values_are_shown_as_yaml_writes_them(tmp_path):
    assert said(tmp_path, "vhosts:\n  shop:\n    description: 2020-01-01\n") == [
        "t.yaml:3: vhost 'shop' description: expected text, got 2020-01-01, which YAML reads as a date: put it in "
        "quotes to keep it text"]
    assert said(tmp_path, queue("{max_length: yes}")) == [
        "t.yaml:4: vhost 'shop' queue 'a' max_length: expected a whole number, got true (YAML reads yes, no, on and "
        "off as true and false)"]


def test_a_secret_is_never_shown_in_a_type_problem(tmp_path):
    text = "users:\n  bob: {password: 98765432123, allow_literal_password: true}\n"
    (line,) = said(tmp_path, text)
    assert line == "t.yaml:2: user 'bob' password: expected text" and "98765432123" not in line


def test_a_malformed_age_is_said_in_words(tmp_path):
    assert said(tmp_path, queue("{type: stream, max_age: 7X}")) == [
        "t.yaml:4: vhost 'shop' queue 'a' max_age: invalid age '7X': write a number and one of Y, M, D, h, m, s "
        "(7D is seven days)"]


def test_list_items_are_counted_from_one(tmp_path):
    text = "vhosts: {shop: {}}\ntests:\n  - {vhost: shop, exchange: x, queues: a}\n"
    assert said(tmp_path, text) == ["t.yaml:3: test #1 queues: expected a list, got 'a'"]


def test_a_huge_duration_is_too_large_in_words(tmp_path):
    (line,) = said(tmp_path, queue('{message_ttl: "' + "1" * 5000 + '"}'))
    assert line.startswith("t.yaml:4: vhost 'shop' queue 'a' message_ttl: invalid duration '1111")
    assert line.endswith("...': the number is far too large")


def test_values_the_broker_does_not_take_are_named_as_yaml_reads_them(tmp_path):
    text = queue("{arguments: {x-foo: 2020-01-01, x-bar: !!binary aGk=, x-baz: !!set {a}}}")
    assert said(tmp_path, text) == [
        "t.yaml:4: vhost 'shop' queue 'a' arguments.x-bar: binary data (!!binary) is not a value the broker "
        "accepts: write text",
        "t.yaml:4: vhost 'shop' queue 'a' arguments.x-baz: a set (!!set) is not a value the broker accepts: write a "
        "list",
        "t.yaml:4: vhost 'shop' queue 'a' arguments.x-foo: 2020-01-01 is read as a date, which the broker does not "
        "accept: put it in quotes to make it text",
    ]


def policy(pattern: str) -> str:
    return (f"vhosts:\n  shop:\n    queues: {{orders: {{}}}}\n    policies:\n"
            f"      p: {{pattern: '{pattern}', definition: {{max-length: 1}}}}\n")


@pytest.mark.parametrize(("pattern", "words"), [
    ("^(a", "invalid regular expression '^(a': a '(' at character 2 is never closed"),
    ("a{2,1}", "invalid regular expression 'a{2,1}': the repeat at character 3 has its minimum above its maximum"),
    ("*a", "invalid regular expression '*a': nothing before the '*' at character 1 to repeat (write \\* for the "
           "character itself)"),
    ("[z-a]", "invalid regular expression '[z-a]': the range z-a at character 2 runs backwards"),
])
def test_a_broken_pattern_is_refused_with_a_character_counted_from_one(tmp_path, pattern, words):
    assert said(tmp_path, policy(pattern)) == [f"t.yaml:5: vhost 'shop' policy 'p' pattern: {words}"]


@pytest.mark.parametrize(("pattern", "token"), [
    ("\\p{L}+", "\\p"), ("(?<n>a)", "(?<name>...)"), ("\\Qa.b\\E", "\\Q"), ("a(?i)b", "(?flags) after the start"),
])
def test_pcre_syntax_python_cannot_read_is_a_warning_and_stays_undecided(tmp_path, pattern, token):
    path = tmp_path / "t.yaml"
    path.write_text(policy(pattern), encoding="utf-8")
    topology = load_valid([str(path)], offline=True)  # RabbitMQ accepts it: not refused
    (warning,) = topology.warnings
    assert warning.location == "vhost 'shop' policy 'p' pattern"
    assert warning.message == (f"'{pattern}' uses {token}, PCRE syntax that this tool cannot check (RabbitMQ may "
                               "accept it): explain, drift, lint and route cannot say which names it matches")
    assert pattern_match(pattern, "orders") is None


def test_a_posix_class_is_a_warning_and_stays_undecided(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(policy("^[[:alpha:]]+$"), encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Python's FutureWarning about nested sets would fail here
        topology = load_valid([str(path)], offline=True)
        assert pattern_match("^[[:alpha:]]+$", "orders") is None
        assert pattern_match("[a-z&&b]", "orders") is True  # PCRE and Python both read && as two characters
    assert [w.message for w in topology.warnings] == [
        "[:alpha:] is a POSIX class: RabbitMQ accepts it, but this tool cannot evaluate the pattern: explain, drift, "
        "lint and route cannot say which names it matches"]


def test_a_permission_pattern_says_the_same_without_the_policy_readers():
    assert pattern_problem("(", matched_here=False) == (
        True, "invalid regular expression '(': a '(' at character 1 is never closed")
    refused, message = pattern_problem("\\p{L}", matched_here=False)
    assert not refused and message == "'\\p{L}' uses \\p, PCRE syntax that this tool cannot check (RabbitMQ may accept it)"


def test_validate_prints_no_python_warning_for_set_syntax(run, tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(policy("[a-z&&b]"), encoding="utf-8")
    result = run("validate", str(path))
    assert result.code == 0 and "warning" not in result.err and "FutureWarning" not in result.err
    path.write_text(policy("^[[:alpha:]]+$"), encoding="utf-8")
    result = run("validate", str(path))
    assert result.code == 0 and "FutureWarning" not in result.err and "at position" not in result.err
    assert result.err.count("[:alpha:] is a POSIX class") == 1


def test_a_library_warning_is_shown_without_its_class_name(capsys):
    from topology.cli import _show_warning

    _show_warning(DeprecationWarning("something old\nand more"), DeprecationWarning, "x.py", 1)
    assert capsys.readouterr().err.strip() == "warning: something old"


def values(tmp_path, text: str) -> list[str]:
    path = tmp_path / "v.yaml"
    path.write_text(text, encoding="utf-8")
    lines = [str(problem).replace(str(path), "v.yaml") for problem in load_values([str(path)], Variables())]
    for line in lines:
        assert "\n" not in line and not [word for word in FORBIDDEN if word in line], line
    return lines


@pytest.mark.parametrize(("text", "expected"), [
    ("A: b: c\n", "v.yaml:1: invalid YAML at column 5: a ':' where no key can start (a value holding ': ' needs "
                  "quotes, or the line is indented too far)"),
    ('A: "x\x01"\n', 'v.yaml:1: invalid YAML at column 6: a control character (U+0001) is not allowed; remove it, or '
                     'write it as "\\u0001" inside double quotes'),
    ("A: @x\n", "v.yaml:1: invalid YAML at column 4: a value cannot start with '@' (it is reserved in YAML): put the "
                "value in quotes"),
    ("A: *x\n", "v.yaml:1: invalid YAML at column 4: unknown alias *x (an alias names an anchor (&name) written "
                "before it)"),
    ("A: [1\n", "v.yaml:2: invalid YAML at column 1: a [...] list that is not closed, or a value in it holding '[' "
                "or ',' (quote it)"),
    ("[a]: 1\n", "v.yaml:1: a variable name must be plain text (letters, digits and _), not a list or map"),
    ("A: " + "[" * 3000 + "]" * 3000 + "\n", "v.yaml: the values file is nested too deeply (a values file is a map "
                                             "of variable names to single values)"),
])
def test_values_files_use_the_same_words(tmp_path, text, expected):
    assert values(tmp_path, text) == [expected]
