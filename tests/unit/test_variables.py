"""Unit tests for ${VAR} substitution, values files, typing by field, and secret variables."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from topology import redact
from topology.errors import ConfigError
from topology.loader import load
from topology.variables import Substituted, Variables, is_secret_name, load_values, typed


def write(directory: Path, name: str, text: str) -> str:
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return str(path)


def load_with(tmp_path: Path, text: str, environment: dict[str, str] | None = None, values: list[str] = ()):
    variables = Variables(environment=environment or {})
    problems = load_values(values, variables)
    assert not problems, [str(p) for p in problems]
    return load([write(tmp_path, "topology.yaml", text)], variables), variables


def problems(tmp_path: Path, text: str, environment: dict[str, str] | None = None, values: list[str] = ()) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_with(tmp_path, text, environment, values)
    return [str(p) for p in info.value.problems]


TOPOLOGY = """
vhosts:
  ${VHOST:-shop}:
    exchanges:
      events.${ENV}: {type: topic}
    queues:
      orders:
        message_ttl: "${TTL:-60000}"
        max_length: ${MAX_LENGTH:-100}
        durable: ${DURABLE:-true}
        dead_letter_exchange: ${DLX:-123}
        max_length_bytes: ${BYTES:-10MiB}
        arguments:
          x-typed: "${ARG:-5}"
          x-text: !!str ${ARG:-5}
    bindings:
      - {source: "events.${ENV}", destination: orders, routing_key: "order.${ENV}.*"}
    policies:
      limit:
        pattern: "^orders$"
        priority: ${PRIORITY:-7}
        definition: {max-length: "${POLICY_MAX:-1000}", note: "${ENV}"}
"""


def test_references_are_replaced_everywhere_keys_included_and_typed_by_field(tmp_path):
    topology, variables = load_with(tmp_path, TOPOLOGY, {"ENV": "prod"})
    shop = topology.vhosts["shop"]
    assert list(shop.exchanges) == ["events.prod"]
    queue = shop.queues["orders"].spec
    assert queue.message_ttl == 60000  # a quoted reference where a duration is expected
    assert queue.max_length == 100 and queue.durable is True
    assert queue.dead_letter_exchange == "123"  # a text field keeps text
    assert queue.max_length_bytes == 10 * 1024 * 1024
    assert queue.arguments == {"x-typed": 5, "x-text": "5"}  # any-type maps: typed unless !!str
    binding = shop.bindings[0].spec
    assert (binding.source, binding.routing_key) == ("events.prod", "order.prod.*")
    policy = shop.policies["limit"].spec
    assert policy.priority == 7 and policy.definition == {"max-length": 1000, "note": "prod"}
    assert variables.used["ENV"] == "environment" and variables.used["TTL"] == "default"


def test_precedence_environment_then_later_values_file_then_default(tmp_path):
    first = write(tmp_path, "base.yaml", "TTL: 1000\nMAX_LENGTH: 5\nENV: dev\n")
    second = write(tmp_path, "prod.yaml", "TTL: 2000\n")
    topology, variables = load_with(tmp_path, TOPOLOGY, {"TTL": "3000"}, [first, second])
    queue = topology.vhosts["shop"].queues["orders"].spec
    assert queue.message_ttl == 3000  # the environment wins
    assert queue.max_length == 5  # from the first values file: nothing later sets it
    assert queue.durable is True  # the default
    assert list(topology.vhosts["shop"].exchanges) == ["events.dev"]
    assert variables.used["MAX_LENGTH"].endswith("base.yaml:2")

    topology, _ = load_with(tmp_path, TOPOLOGY, {}, [first, second])
    assert topology.vhosts["shop"].queues["orders"].spec.message_ttl == 2000  # the later file wins


def test_values_are_text_as_written(tmp_path):
    values = write(tmp_path, "values.yaml", 'ENV: "007"\nDLX: 007\nFLAG: yes\nEMPTY:\n')
    variables = Variables(environment={})
    assert load_values([values], variables) == []
    assert {k: v.value for k, v in variables.values.items()} == {"ENV": "007", "DLX": "007", "FLAG": "yes", "EMPTY": ""}


def test_an_empty_value_takes_the_default_like_the_shell(tmp_path):
    topology, _ = load_with(tmp_path, TOPOLOGY, {"ENV": "x", "MAX_LENGTH": ""})
    assert topology.vhosts["shop"].queues["orders"].spec.max_length == 100


def test_an_undefined_variable_names_the_variable_the_file_and_the_line(tmp_path):
    found = problems(tmp_path, TOPOLOGY)
    # events.${ENV} (a key), the binding's source and routing key, the policy's note
    assert all("undefined variable ENV" in p for p in found), found
    lines = sorted(int(p.split(":")[1]) for p in found)
    assert lines == [4, 16, 16, 21]
    assert all(p.startswith(str(tmp_path / "topology.yaml")) for p in found)


def test_malformed_references_are_located_errors(tmp_path):
    found = problems(tmp_path, "vhosts:\n  v:\n    queues:\n      a: {dead_letter_exchange: '${1BAD}'}\n      b: {dead_letter_exchange: 'x${OPEN'}\n")
    assert any(":4:" in p and "bad variable reference '${1BAD}'" in p for p in found), found
    assert any(":5:" in p and "unclosed variable reference" in p for p in found), found


def test_a_doubled_dollar_writes_a_literal_reference(tmp_path):
    topology, _ = load_with(tmp_path, "vhosts:\n  v:\n    queues:\n      q: {dead_letter_routing_key: '$${NOT_A_VARIABLE}'}\n")
    assert topology.vhosts["v"].queues["q"].spec.dead_letter_routing_key == "${NOT_A_VARIABLE}"


def test_a_wrong_type_after_substitution_is_a_located_error(tmp_path):
    found = problems(tmp_path, "vhosts:\n  v:\n    queues:\n      q: {max_length: '${N}'}\n", {"N": "many"})
    assert len(found) == 1 and ":4:" in found[0] and "max_length" in found[0], found


def test_typed_reads_decimal_numbers_and_booleans():
    assert typed("60000") == 60000 and typed("true") is True and typed("1.5") == 1.5 and typed("no") is False
    assert typed("010") == 10 and typed("08") == 8  # decimal, never YAML 1.1's octal
    assert typed("1:30") == "1:30" and typed("0x1F") == "0x1F"  # never sexagesimal or hexadecimal
    assert typed("x") == "x" and typed("2026-01-01") == "2026-01-01" and typed("~") is None


def test_substituted_marks_whole_references_only():
    variables = Variables(environment={"A": "1"})
    whole, _ = variables.substitute("${A}")
    part, _ = variables.substitute("x${A}")
    assert isinstance(whole, Substituted) and not whole.text and whole == "1"
    assert not isinstance(part, Substituted) and part == "x1"


# --------------------------------------------------------------------------- secrets


def test_secret_names():
    assert is_secret_name("ORDERS_PASSWORD") and is_secret_name("api_token") and is_secret_name("DB_SECRET")
    assert not is_secret_name("TTL") and is_secret_name("TTL", ["TTL"])


def test_a_secret_never_comes_from_a_values_file(tmp_path):
    values = write(tmp_path, "values.yaml", "ENV: dev\nBROKER_PASSWORD: hunter2\n")
    variables = Variables(environment={})
    found = [str(p) for p in load_values([values], variables)]
    assert len(found) == 1 and ":2:" in found[0] and "secrets come only from the environment" in found[0]
    assert "hunter2" not in found[0]


def test_a_secret_cannot_have_a_default_in_a_file(tmp_path):
    found = problems(tmp_path, "vhosts:\n  v:\n    queues:\n      q: {dead_letter_exchange: '${X_TOKEN:-abc}'}\n")
    assert len(found) == 1 and "secret variable X_TOKEN cannot have a default" in found[0]
    found = problems(tmp_path, "vhosts:\n  v:\n    queues:\n      q: {dead_letter_exchange: '${X_TOKEN}'}\n")
    assert "or a --values file" not in found[0]


def test_a_secret_always_stays_text(tmp_path):
    topology, _ = load_with(tmp_path, "vhosts:\n  v:\n    queues:\n      q: {arguments: {x-pin: '${PIN_SECRET}'}}\n",
                            {"PIN_SECRET": "12345"})
    assert topology.vhosts["v"].queues["q"].spec.arguments == {"x-pin": "12345"}
    redact.forget_all()


def test_validate_offline_stands_in_for_undefined_secrets(tmp_path):
    variables = Variables(environment={}, offline=True)
    topology = load([write(tmp_path, "t.yaml", "vhosts:\n  v:\n    queues:\n      q: {dead_letter_exchange: 'x-${X_TOKEN}'}\n")],
                    variables)
    assert topology.vhosts["v"].queues["q"].spec.dead_letter_exchange == "x-${X_TOKEN}"
    found = problems(tmp_path, "vhosts:\n  v:\n    queues:\n      q: {dead_letter_exchange: '${NOT_SECRET}'}\n")
    assert "undefined variable NOT_SECRET" in found[0]


def test_a_secret_from_the_environment_is_registered_for_redaction(tmp_path):
    redact.forget_all()
    try:
        load_with(tmp_path, "vhosts:\n  v:\n    queues:\n      q: {dead_letter_exchange: 'dlx-${X_TOKEN}'}\n", {"X_TOKEN": "s3cr3t-value"})
        assert redact.redact("dlx-s3cr3t-value") == "dlx-***"
    finally:
        redact.forget_all()


# --------------------------------------------------------------------------- values files


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", "a values file is a map"),
        ("1BAD: x\n", "bad variable name"),
        ("LIST: [1, 2]\n", "a value must be a single value"),
        ("A: [\n", "invalid YAML"),
        ("A: 1\nA: 2\n", "set twice in this file (also at line 1)"),
    ],
)
def test_bad_values_files_are_located_errors(tmp_path, text, message):
    values = write(tmp_path, "values.yaml", text)
    found = [str(p) for p in load_values([values], Variables(environment={}))]
    assert len(found) == 1 and message in found[0] and found[0].startswith(values), found


def test_a_missing_values_file_is_an_error(tmp_path):
    found = [str(p) for p in load_values([str(tmp_path / "nope.yaml")], Variables(environment={}))]
    assert len(found) == 1 and "cannot read the values file" in found[0]


def test_an_unset_variable_is_told_only_what_it_may_take(tmp_path):
    """A secret (or a URI's variable) comes from the environment only, so its hint never offers a
    values file or a default, which would then be refused; any other variable is offered all three."""
    secret = problems(tmp_path, "users:\n  u:\n    password: ${SVC_PASSWORD}\n")
    assert [p for p in secret if "SVC_PASSWORD" in p][0].endswith("undefined variable SVC_PASSWORD: set it in the environment")
    plain = problems(tmp_path, "vhosts:\n  v:\n    queues:\n      q: {dead_letter_exchange: '${DLX_NAME}'}\n")
    assert plain[0].endswith("undefined variable DLX_NAME: set it in the environment or a --values file, or give a "
                             "default: ${DLX_NAME:-...}")
    defaulted = problems(tmp_path, "users:\n  u:\n    password: ${SVC_PASSWORD:-x}\n")
    assert any("cannot have a default" in p for p in defaulted)
