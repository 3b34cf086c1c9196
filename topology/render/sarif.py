"""A :class:`~topology.render.diagnostics.Report` as SARIF 2.1.0, the static-analysis format that
GitHub code scanning, GitLab and IDEs read (pure).

One run of the tool ``topology``: its rules in ``tool.driver.rules``, a result per diagnostic.
Every result has a physical location, as GitHub code scanning requires (it rejects a whole file for
one result without): the file, relative to the directory the command ran in (``uriBaseId``
``%SRCROOT%``, the repository's root when run there), and its line (1 when the problem is the
whole file). An error with no place in the files (a project file problem) is a notification of
the invocation, which then did not complete.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

from topology import __version__
from topology.render.diagnostics import Diagnostic, Report, RuleDoc, repository_path

SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
SOURCE_ROOT = "%SRCROOT%"


def render_sarif(report: Report, base: str) -> str:
    """The SARIF log of ``report``; file paths relative to ``base``, the directory the command ran in."""
    index = {rule.id: number for number, rule in enumerate(report.rules)}
    notifications: list[dict[str, object]] = [{"level": "error", "message": {"text": failure}}
                                              for failure in report.failures]
    for diagnostic in report.diagnostics:
        if not diagnostic.file:  # never a result without a place: GitHub would refuse the whole log
            notification: dict[str, object] = {"level": diagnostic.level, "message": {"text": diagnostic.text}}
            if diagnostic.rule in index:
                notification["associatedRule"] = {"id": diagnostic.rule, "index": index[diagnostic.rule]}
            notifications.append(notification)
    invocation: dict[str, object] = {"executionSuccessful": report.completed, "exitCode": report.exit_code}
    if notifications:
        invocation["toolExecutionNotifications"] = notifications
    run = {
        "tool": {"driver": {"name": "topology", "version": __version__, "semanticVersion": __version__,
                            "rules": [_rule(rule) for rule in report.rules]}},
        "automationDetails": {"id": f"topology/{report.command}/"},
        "invocations": [invocation],
        "results": [_result(d, index, base) for d in report.diagnostics if d.file],
    }
    log = {"$schema": SCHEMA, "version": "2.1.0", "runs": [run]}
    return json.dumps(log, indent=2, ensure_ascii=False)


def _rule(rule: RuleDoc) -> dict[str, object]:
    return {"id": rule.id, "name": rule.name, "shortDescription": {"text": rule.short},
            "fullDescription": {"text": rule.help_text},
            "help": {"text": rule.help_text, "markdown": rule.help},
            "defaultConfiguration": {"level": rule.level}}


def _result(diagnostic: Diagnostic, index: dict[str, int], base: str) -> dict[str, object]:
    path, inside = repository_path(diagnostic.file, base)
    artifact = {"uri": quote(path), "uriBaseId": SOURCE_ROOT} if inside else {"uri": Path(path).as_uri()}
    location: dict[str, object] = {"physicalLocation": {"artifactLocation": artifact,
                                                        "region": {"startLine": max(diagnostic.line, 1)}}}
    if diagnostic.where:
        location["logicalLocations"] = [{"fullyQualifiedName": diagnostic.where}]
    result: dict[str, object] = {"ruleId": diagnostic.rule, "level": diagnostic.level,
                                 "message": {"text": diagnostic.text}, "locations": [location]}
    if diagnostic.rule in index:
        result["ruleIndex"] = index[diagnostic.rule]
    if diagnostic.target:
        result["properties"] = {"target": diagnostic.target}
    return result
