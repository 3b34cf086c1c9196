"""The CI outputs: lint and validate as SARIF 2.1.0 (checked against the OASIS schema) and as GitHub
Actions workflow commands (read back by a parser of GitHub's syntax), routing tests and drift as
JUnit XML (checked against the Jenkins/Surefire junit-10.xsd). No broker."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import jsonschema
import pytest
import xmlschema

from topology.lint import RULES
from topology.render.annotations import escape_message, escape_property, render_annotations
from topology.render.diagnostics import (BROKER_VERSION, INVALID, SUSPECT, VALIDATE_RULES, Diagnostic, Report,
                                         lint_rules, repository_path)
from topology.render.sarif import render_sarif

SCHEMAS = Path(__file__).resolve().parents[1] / "fixtures" / "schemas"
SARIF_SCHEMA = json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
SARIF = jsonschema.Draft4Validator(SARIF_SCHEMA, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)
JUNIT = xmlschema.XMLSchema(str(SCHEMAS / "junit-10.xsd"))

LINTED = """
vhosts:
  v:
    exchanges:
      work: {type: direct}
    queues:
      jobs:
        durable: false
      orphan:
        arguments: {x-dead-letter-exchange: nowhere}
    bindings:
      - {source: work, destination: jobs, routing_key: jobs}
"""


def run(arguments: list[str], capsys) -> tuple[int, str, str]:
    from topology.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(arguments)
    out, err = capsys.readouterr()
    return exit_.value.code, out, err


def sarif_of(text: str) -> dict:
    document = json.loads(text)
    errors = sorted(SARIF.iter_errors(document), key=str)
    assert not errors, [e.message for e in errors]
    return document


# -- GitHub's workflow-command syntax, read back as the runner reads it ------------------------------

COMMAND = re.compile(r"^::(?P<command>[a-z]+)(?: (?P<properties>[^:]*))?::(?P<message>.*)$")


def unescape_message(text: str) -> str:
    return text.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")


def unescape_property(text: str) -> str:
    return (text.replace("%0D", "\r").replace("%0A", "\n").replace("%3A", ":").replace("%2C", ",")
            .replace("%25", "%"))


def parse_annotations(text: str) -> list[dict]:
    """Each line one workflow command ``::command k=v,k=v::message``: no raw line break, colon or
    comma inside a property value, no raw line break in a message."""
    found = []
    for line in text.splitlines():
        match = COMMAND.match(line)
        assert match, line
        properties = {}
        for pair in filter(None, (match.group("properties") or "").split(",")):
            key, _, value = pair.partition("=")
            assert key in {"file", "line", "endLine", "col", "endColumn", "title"} and "=" in pair, pair
            properties[key] = unescape_property(value)
        found.append({"command": match.group("command"), **properties,
                      "message": unescape_message(match.group("message"))})
    return found


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A directory to run in, as CI runs in the repository's root."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "topology").mkdir()
    return tmp_path


def write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)


# -- SARIF ---------------------------------------------------------------------------------------------


def test_lint_as_sarif_is_valid_and_has_lints_rules_and_each_finding_at_its_relative_place(project, capsys):
    write(project / "topology" / "t.yaml", LINTED)
    code, text_out, _ = run(["lint", "topology"], capsys)
    sarif_code, out, err = run(["lint", "topology", "--format", "sarif"], capsys)
    assert sarif_code == code == 2  # TOP001 is an error
    document = sarif_of(out)
    assert document["version"] == "2.1.0" and len(document["runs"]) == 1
    run_ = document["runs"][0]
    rules = run_["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == [*RULES, INVALID.id]
    levels = {"error": "error", "warning": "warning", "info": "note"}
    for rule in rules[:-1]:
        source = RULES[rule["id"]]
        assert rule["name"] == source.name and rule["defaultConfiguration"]["level"] == levels[source.severity]
        assert rule["shortDescription"]["text"] and rule["help"]["text"] and "{docs}" not in rule["help"]["markdown"]
    results = run_["results"]
    assert {r["ruleId"] for r in results} == {"TOP001", "TOP008", "TOP009"}
    for result in results:
        location = result["locations"][0]["physicalLocation"]
        assert location["artifactLocation"] == {"uri": "topology/t.yaml", "uriBaseId": "%SRCROOT%"}
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        line = location["region"]["startLine"]
        assert f"topology/t.yaml:{line}: {RULES[result['ruleId']].severity} {result['ruleId']}" in text_out
    assert run_["invocations"] == [{"executionSuccessful": True, "exitCode": 2}]
    assert "topology lint: 1 error(s), 1 warning(s), 1 note(s)" in err


@pytest.mark.parametrize("command", ["lint", "validate"])
@pytest.mark.parametrize("text, problem, line", [
    ("vhosts:\n  v:\n    queues:\n      q: {durable: maybe}\n", "durable", 4),
    ("vhosts: [\n", "invalid YAML", 2),
])
def test_a_file_that_cannot_be_loaded_is_a_result_and_the_exit_code_stays(command, text, problem, line, project, capsys):
    write(project / "topology" / "t.yaml", text)
    code, _, _ = run([command, "topology/t.yaml"], capsys)
    sarif_code, out, _ = run([command, "topology/t.yaml", "--format", "sarif"], capsys)
    github_code, annotations, _ = run([command, "topology/t.yaml", "--format", "github"], capsys)
    assert code == sarif_code == github_code == 1
    run_ = sarif_of(out)["runs"][0]
    [result] = run_["results"]
    assert result["ruleId"] == INVALID.id and result["level"] == "error" and problem in result["message"]["text"]
    assert result["locations"][0]["physicalLocation"]["region"] == {"startLine": line}
    assert run_["invocations"][0]["executionSuccessful"] is False
    [annotation] = parse_annotations(annotations)
    assert annotation["command"] == "error" and annotation["title"] == INVALID.id
    assert annotation["file"] == "topology/t.yaml" and annotation["line"] == str(line)


def test_an_error_with_no_place_in_the_files_is_a_notification_not_a_result(project, capsys):
    code, out, err = run(["validate", "--target", "prod", "--format", "sarif"], capsys)
    assert code == 1
    run_ = sarif_of(out)["runs"][0]
    assert run_["results"] == []
    [notification] = run_["invocations"][0]["toolExecutionNotifications"]
    assert "topology.toml" in notification["message"]["text"] and notification["level"] == "error"
    assert "error: " in err
    code, out, _ = run(["validate", "--target", "prod", "--format", "github"], capsys)
    [annotation] = parse_annotations(out)
    assert code == 1 and annotation["command"] == "error" and "topology.toml" in annotation["message"]


def test_validate_reports_warnings_and_version_rules_with_their_own_rule_ids(project, capsys):
    write(project / "topology" / "t.yaml", """
        vhosts:
          v:
            queues:
              q: {arguments: {x-dead-letter-exchange: nowhere}}
            policies:
              ha: {pattern: ".*", definition: {ha-mode: all}}
    """)
    code, out, _ = run(["validate", "topology", "--format", "sarif"], capsys)
    assert code == 0
    results = sarif_of(out)["runs"][0]["results"]
    assert [(r["ruleId"], r["level"]) for r in results] == [(SUSPECT.id, "warning")]
    code, out, _ = run(["validate", "topology", "--format", "sarif", "--broker-version", "4.0"], capsys)
    text_code, _, _ = run(["validate", "topology", "--broker-version", "4.0"], capsys)
    assert code == text_code == 1
    document = sarif_of(out)
    results = document["runs"][0]["results"]
    assert {r["ruleId"] for r in results} == {SUSPECT.id, BROKER_VERSION.id}
    assert [r["id"] for r in document["runs"][0]["tool"]["driver"]["rules"]] == [r.id for r in VALIDATE_RULES]
    assert document["runs"][0]["automationDetails"]["id"] == "topology/validate/"


@pytest.mark.parametrize("arguments", [["validate"], ["lint"], ["lint", "--strict"]])
@pytest.mark.parametrize("text", [
    "vhosts:\n  v:\n    queues:\n      q: {}\n",
    "vhosts:\n  v:\n    queues:\n      q: {durable: false}\n",
    LINTED,
])
def test_every_format_ends_with_the_text_formats_exit_code(arguments, text, project, capsys):
    write(project / "topology" / "t.yaml", text)
    codes = {output_format: run([*arguments, "topology", "--format", output_format], capsys)[0]
             for output_format in ("text", "sarif", "github")}
    assert len(set(codes.values())) == 1, codes


def test_paths_are_relative_to_the_directory_run_in_and_outside_it_absolute(project, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere") / "x.yaml"
    assert repository_path(str(project / "topology" / "a b.yaml"), str(project)) == ("topology/a b.yaml", True)
    assert repository_path("topology/a.yaml", str(project)) == ("topology/a.yaml", True)
    assert repository_path(str(outside), str(project)) == (str(outside), False)
    report = Report("lint", lint_rules(), (Diagnostic("TOP008", "warning", "m", "topology/a b.yaml", 3),
                                           Diagnostic("TOP008", "warning", "m", str(outside), 0)))
    locations = [r["locations"][0]["physicalLocation"] for r in sarif_of(render_sarif(report, str(project)))["runs"][0]["results"]]
    assert locations[0]["artifactLocation"] == {"uri": "topology/a%20b.yaml", "uriBaseId": "%SRCROOT%"}
    assert locations[1]["artifactLocation"] == {"uri": outside.as_uri()} and locations[1]["region"] == {"startLine": 1}


def test_a_diagnostic_without_a_file_becomes_a_notification(project):
    report = Report("lint", lint_rules(), (Diagnostic("TOP012", "error", "literal password", where="user 'u'"),))
    run_ = sarif_of(render_sarif(report, str(project)))["runs"][0]
    assert run_["results"] == []
    [notification] = run_["invocations"][0]["toolExecutionNotifications"]
    assert notification["associatedRule"]["id"] == "TOP012" and notification["message"]["text"] == "user 'u': literal password"


def test_sarif_with_all_targets_has_each_targets_findings(project, capsys):
    write(project / "topology" / "t.yaml", "vhosts:\n  v:\n    queues:\n      q: {durable: maybe}\n")
    (project / "topology.toml").write_text(textwrap.dedent("""
        [targets.dev]
        url = "http://127.0.0.1:15672"
        files = ["topology"]
        [targets.prod]
        url = "http://127.0.0.1:15672"
        files = ["topology"]
    """), encoding="utf-8")
    code, out, _ = run(["validate", "--all-targets", "--continue-on-error", "--format", "sarif"], capsys)
    assert code == 1
    results = sarif_of(out)["runs"][0]["results"]
    assert sorted(r["properties"]["target"] for r in results) == ["dev", "prod"]
    assert all(r["message"]["text"].startswith(f"target {r['properties']['target']}: ") for r in results)


# -- GitHub annotations --------------------------------------------------------------------------------


def test_lint_annotations_name_file_line_and_rule_and_follow_the_level(project, capsys):
    write(project / "topology" / "t.yaml", LINTED)
    code, out, _ = run(["lint", "topology", "--format", "github"], capsys)
    assert code == 2
    found = {(a["title"], a["command"]) for a in parse_annotations(out)}
    assert found == {("TOP001", "error"), ("TOP008", "warning"), ("TOP009", "notice")}
    assert all(a["file"] == "topology/t.yaml" and int(a["line"]) > 0 for a in parse_annotations(out))


def test_annotations_escape_what_githubs_syntax_reserves():
    hostile = "50% of a: b, c\r\nnext"
    assert escape_message(hostile) == "50%25 of a: b, c%0D%0Anext"
    assert escape_property(hostile) == "50%25 of a%3A b%2C c%0D%0Anext"
    report = Report("validate", VALIDATE_RULES, (Diagnostic(INVALID.id, "error", hostile, "dir,a/x:%y.yaml", 7,
                                                            where="vhost 'a::b'"),),
                    failures=("cannot read\nthe project file: 100%",))
    lines = render_annotations(report, "/").splitlines()
    assert len(lines) == 2
    annotation, failure = parse_annotations("\n".join(lines))
    assert annotation == {"command": "error", "file": "dir,a/x:%y.yaml", "line": "7", "title": INVALID.id,
                          "message": f"vhost 'a::b': {hostile}"}
    assert failure["message"] == "cannot read\nthe project file: 100%" and failure["title"] == "topology validate"


def test_secrets_are_masked_in_the_ci_formats(project, capsys, monkeypatch):
    """A secret inside a message is masked before escaping (escaped, it would no longer match)."""
    from topology import redact

    secret = "s3cr%t,:x"
    forget = redact.forget_all
    monkeypatch.setattr(redact, "forget_all", lambda: None)  # keep it registered through main()
    write(project / "topology" / "t.yaml", f"vhosts:\n  v:\n    queues:\n      'q-{secret}': {{durable: maybe}}\n")
    try:
        redact.register(secret)
        for output_format in ("sarif", "github"):
            _, out, err = run(["validate", "topology", "--format", output_format], capsys)
            assert "s3cr" not in out and "s3cr" not in err and "q-***" in out
    finally:
        forget()


# -- JUnit ---------------------------------------------------------------------------------------------


ROUTED = """
vhosts:
  shop:
    exchanges:
      orders: {type: topic}
    queues:
      eu: {}
      us: {}
    bindings:
      - {source: orders, destination: eu, routing_key: "order.*.eu"}
tests:
  - name: an EU order reaches the EU queue
    vhost: shop
    exchange: orders
    routing_key: order.created.eu
    queues: [eu]
  - name: a US order reaches the US queue
    vhost: shop
    exchange: orders
    routing_key: order.created.us
    queues: [us]
"""


def test_routing_tests_as_junit_pass_the_schema_with_a_suite_per_file_and_failures_explained(project, capsys):
    write(project / "topology" / "orders.yaml", ROUTED)
    write(project / "topology" / "more.yaml", """
        tests:
          - {vhost: shop, exchange: orders, routing_key: order.paid.eu, queues: [eu]}
    """)
    code, out, _ = run(["test", "topology", "--format", "junit"], capsys)
    text_code, _, _ = run(["test", "topology"], capsys)
    assert code == text_code == 2
    JUNIT.validate(out)
    root = xmlschema.XMLResource(out).root
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == {"topology/more.yaml", "topology/orders.yaml"}
    assert root.get("tests") == "3" and root.get("failures") == "1" and root.get("errors") == "0"
    orders = suites["topology/orders.yaml"]
    assert orders.get("file") == "topology/orders.yaml" and orders.get("failures") == "1"
    [failure] = orders.iter("failure")
    assert failure.get("message") == "expected us; reached no queue" and failure.get("type") == "routing"
    assert "FAIL topology/orders.yaml:" in failure.text
    case = next(c for c in orders.iter("testcase") if c.find("failure") is None)
    assert case.get("classname") == "vhost shop" and case.get("name") == "an EU order reaches the EU queue"


def test_a_routing_test_that_cannot_run_is_an_error_case():
    from topology.model.topology import Origin
    from topology.render.junit import render_routing_tests
    from topology.routing_tests import Outcome

    class Spec:
        vhost = "shop"

    class Declared:
        spec = Spec()

    outcome = Outcome("t", Origin("a.yaml", 3), ["q"], False, error="cannot be simulated: a plugin exchange")
    document = render_routing_tests([Declared()], [outcome], live=False)
    JUNIT.validate(document)
    root = xmlschema.XMLResource(document).root
    assert root.get("errors") == "1" and root.find(".//error").get("message").startswith("cannot be simulated")


def test_the_drift_junit_shares_the_writer_and_passes_the_schema():
    from topology.render.drift import render_many_junit

    document = render_many_junit([("qa", None, "2 problems found", ["a.yaml:3: x & <y>"])])
    JUNIT.validate(document)
    error = xmlschema.XMLResource(document).root.find(".//error")
    assert error.text == "a.yaml:3: x & <y>" and error.get("message") == "2 problems found"


def test_the_junit_schema_refuses_what_it_should():
    """The check can fail: a case without a name, counts missing on a suite."""
    with pytest.raises(xmlschema.XMLSchemaValidationError):
        JUNIT.validate('<testsuites><testsuite name="s" tests="1" failures="0" errors="0"><testcase/></testsuite></testsuites>')
    with pytest.raises(xmlschema.XMLSchemaValidationError):
        JUNIT.validate('<testsuites><testsuite name="s"/></testsuites>')


def test_the_sarif_schema_refuses_what_it_should():
    assert list(SARIF.iter_errors({"version": "2.1.0", "runs": [{"tool": {"driver": {}}}]}))
    assert list(SARIF.iter_errors({"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "t"}},
                                                                  "results": [{"level": "fatal", "message": {"text": "x"}}]}]}))
