"""The drift report as text, JSON, a Markdown comment, or JUnit XML (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from topology.drift import IN_SYNC, DriftReport, ObjectStatus
from topology.ha import CHECKS, Finding
from topology.render.stream import Items, pieces
from topology.render.junit import ERROR, FAILED, SKIPPED, Case, Suite, document, document_pieces
from topology.markup import markdown_cell, markdown_code

FORMATS = ("text", "json", "markdown", "junit")

def render(report: DriftReport, output_format: str) -> str:
    return "".join(render_pieces(report, output_format))


def render_pieces(report: DriftReport, output_format: str) -> Iterator[str]:
    """The report in ``output_format``, in pieces: JSON and JUnit an object at a time (what
    :func:`render` returns whole)."""
    if output_format == "json":
        return pieces(report.to_dict(items=Items))
    if output_format == "junit":
        return document_pieces("topology drift", _suites(report))
    return iter([{"text": render_text, "markdown": render_markdown}[output_format](report)])


def render_json(report: DriftReport) -> str:
    return "".join(pieces(report.to_dict(items=Items)))


Outcome = tuple[str, "DriftReport | None", "str | None", "list[str]"]
"""One target's name, its report, or the error that stopped it and the lines that explain it."""


def render_many_json(outcomes: Iterable[Outcome]) -> str:
    """Several targets' reports as one JSON document: ``{"targets": [report or {target, error}, ...]}``."""
    return "".join(render_many_pieces(outcomes, "json"))


def render_many_pieces(outcomes: Iterable[Outcome], output_format: str) -> Iterator[str]:
    """Several targets' reports in ``output_format``, in pieces (see :func:`render_pieces`)."""
    if output_format == "json":
        items = [report.to_dict(items=Items) if report is not None
                 else {"target": name, "error": error, "details": details} for name, report, error, details in outcomes]
        return pieces({"targets": items})
    if output_format == "junit":
        return document_pieces("topology drift", _many_suites(outcomes))
    return iter([render_many_markdown(outcomes)])


def _where(item: ObjectStatus) -> str:
    return item.name if item.kind == "vhost" or not item.vhost else f"{item.vhost}/{item.name}"


def _verdict(report: DriftReport) -> str:
    counts = report.summary()
    drifted = len(report.drifted_objects)
    parts = [f"{drifted} of {counts['objects']} managed object(s) drifted",
             f"{len(report.ha_findings)} high-availability finding(s)",
             f"{counts['orphans']} orphan(s)" + ("" if report.fail_on_orphans or not counts["orphans"] else " (not counted)")]
    head = "Drift found" if report.drifted else "In sync"
    return f"{head}: {', '.join(parts)}."


def _broker_line(report: DriftReport) -> str:
    if report.broker is None:
        return ""
    cluster = f", cluster {report.broker.cluster_name}" if report.broker.cluster_name else ""
    target = f"Target {report.target}: " if report.target else ""
    return f"{target}{report.broker.url} (RabbitMQ {report.broker.version}{cluster})"


def render_text(report: DriftReport) -> str:
    sections: list[list[str]] = [[f"Broker: {_broker_line(report)}"] if report.broker else []]
    drifted = report.drifted_objects
    if drifted:
        lines = ["Drifted objects:"]
        for item in drifted:
            declared = f"  [{item.declared_at}]" if item.declared_at else ""
            lines.append(f"  ! {item.kind} {_where(item)}: {item.status}{declared}")
            lines.append(f"        {item.describe()}")
        sections.append(lines)
    lines = [f"High availability ({len(report.health.checked)} queue(s) checked):"]
    if report.ha_findings:
        lines.extend(f"  ! queue {f.vhost}/{f.queue} [{f.check}]: {f.message}" for f in report.ha_findings)
    else:
        lines.append("  no finding")
    lines.extend(f"  ? queue {v}/{q}: statistics not available yet; not checked" for v, q in report.health.unknown)
    lines.extend(f"  ? queue {v}/{q}: statistics older than the last policy change; its policy check may be stale"
                 for v, q in report.health.stale)
    lines.extend(f"  note: {note}" for note in report.health.notes)
    sections.append(lines)
    if report.orphans:
        counted = "counted as drift (--fail-on-orphans)" if report.fail_on_orphans else "not counted as drift"
        lines = [f"Orphans: {len(report.orphans)} object(s) in managed vhosts that no file declares ({counted}):"]
        for resource in report.orphans:
            why = report.protected.get(resource.key)
            lines.append(f"  ? {resource.kind} {resource.where}" + (f"  (protected: {why})" if why else ""))
        sections.append(lines)
    if report.notes:
        sections.append([f"Note: {note}" for note in report.notes])
    sections.append([_verdict(report)])
    return "\n\n".join("\n".join(section) for section in sections if section)


def render_markdown(report: DriftReport) -> str:
    icon = ":warning:" if report.drifted else ":white_check_mark:"
    title = f" for {report.target}" if report.target else ""
    lines = [f"### {icon} topology drift{title}: {'drift found' if report.drifted else 'in sync'}", ""]
    if report.broker:
        lines += [f"Broker: {markdown_code(_broker_line(report), in_table=False)}", ""]
    lines += [_verdict(report), ""]
    drifted = report.drifted_objects
    if drifted:
        lines += ["| Kind | Object | Status | What differs | Declared at |", "|---|---|---|---|---|"]
        lines += [
            f"| {item.kind} | {markdown_code(_where(item))} | {item.status} | {markdown_cell(item.describe())} | {markdown_cell(item.declared_at)} |"
            for item in drifted
        ]
        lines.append("")
    lines += [f"#### High availability ({len(report.health.checked)} queue(s) checked)", ""]
    if report.ha_findings:
        lines += ["| Queue | Check | Finding |", "|---|---|---|"]
        lines += [f"| {markdown_code(f.vhost + '/' + f.queue)} | {f.check} | {markdown_cell(f.message)} |" for f in report.ha_findings]
    else:
        lines.append("No finding.")
    for vhost, queue in report.health.unknown:
        lines.append(f"- {markdown_code(vhost + '/' + queue, in_table=False)}: statistics not available yet; not checked")
    for vhost, queue in report.health.stale:
        lines.append(f"- {markdown_code(vhost + '/' + queue, in_table=False)}: statistics older than the last policy change; "
                     "its policy check may be stale")
    for note in report.health.notes:
        lines.append(f"- note: {markdown_cell(note)}")
    lines.append("")
    if report.orphans:
        counted = "counted as drift" if report.fail_on_orphans else "not counted as drift"
        lines += [f"#### Orphans ({len(report.orphans)}, {counted})", "", "| Kind | Object | Protected |", "|---|---|---|"]
        lines += [
            f"| {r.kind} | {markdown_code(r.vhost + '/' + r.name)} | {markdown_cell(report.protected.get(r.key) or '')} |"
            for r in report.orphans
        ]
        lines.append("")
    for note in report.notes:
        lines.append(f"> note: {markdown_cell(note)}")
    return "\n".join(lines).rstrip() + "\n"


def render_many_markdown(outcomes: Iterable[Outcome]) -> str:
    """Several targets' reports, one section each; a target that failed says why."""
    sections = [render_markdown(report) if report is not None else
                f"### :x: topology drift for {name}: error\n\n{markdown_cell(error or '')}\n"
                + "".join(f"\n- {markdown_cell(line)}" for line in details) + ("\n" if details else "")
                for name, report, error, details in outcomes]
    return "\n".join(sections)


def render_junit(report: DriftReport) -> str:
    """JUnit XML: a suite per vhost with a test case per managed object, a suite for the
    high-availability checks (a case per queue), and one for the orphans."""
    return document("topology drift", _suites(report))


def render_many_junit(outcomes: Iterable[Outcome]) -> str:
    """Several targets' reports in one JUnit document (suite names start with the target); a
    target that failed is a suite with one errored case."""
    return document("topology drift", _many_suites(outcomes))


def _many_suites(outcomes: Iterable[Outcome]) -> list[Suite]:
    suites: list[Suite] = []
    for name, report, error, details in outcomes:
        if report is not None:
            suites.extend(_suites(report))
        else:
            suites.append(Suite(f"{name}: error", [Case(name, "drift", ERROR, error or "", "\n".join(details))]))
    return suites


def _suites(report: DriftReport) -> list[Suite]:
    prefix = f"{report.target}: " if report.target else ""
    suites: list[Suite] = []
    by_vhost: dict[str, list[ObjectStatus]] = {}
    for item in report.objects:
        by_vhost.setdefault(item.vhost, []).append(item)
    for vhost, items in by_vhost.items():
        cases = []
        for item in items:
            # cluster-wide objects (users, global parameters) have no vhost: a suite of their own
            classname = f"{prefix}{vhost}.{item.kind}" if vhost else f"{prefix}cluster.{item.kind}"
            if item.status == IN_SYNC:
                cases.append(Case(classname, item.name))
            else:
                declared = f"\ndeclared at {item.declared_at}" if item.declared_at else ""
                cases.append(Case(classname, item.name, FAILED, f"{item.status}: {item.describe()}",
                                  f"{item.kind} {_where(item)}: {item.describe()}{declared}", "drift"))
        suites.append(Suite(f"{prefix}vhost {vhost}" if vhost else f"{prefix}cluster-wide", cases))
    findings: dict[tuple[str, str], list[Finding]] = {}
    for finding in report.ha_findings:
        findings.setdefault((finding.vhost, finding.queue), []).append(finding)
    unknown = set(report.health.unknown)
    cases = []
    for vhost, queue in report.health.checked:
        classname = f"{prefix}{vhost}.high-availability"
        found = findings.get((vhost, queue))
        if found:
            message = "; ".join(f"{f.check}: {f.message}" for f in sorted(found, key=lambda f: CHECKS.index(f.check)))
            cases.append(Case(classname, queue, FAILED, message, kind="drift"))
        elif (vhost, queue) in unknown:
            cases.append(Case(classname, queue, SKIPPED, "statistics not available yet"))
        else:
            cases.append(Case(classname, queue))
    suites.append(Suite(f"{prefix}high availability", cases))
    cases = []
    for resource in report.orphans:
        classname = f"{prefix}{resource.vhost or 'cluster'}.orphan.{resource.kind}"
        message = "on the broker but declared in no file"
        if report.fail_on_orphans:
            cases.append(Case(classname, resource.name, FAILED, message, kind="drift"))
        else:
            cases.append(Case(classname, resource.name, SKIPPED, message + " (not counted: --fail-on-orphans counts it)"))
    suites.append(Suite(f"{prefix}orphans", cases))
    return suites
