"""JUnit XML, the test-report format CI systems read (pure): the pieces the drift report and the
routing tests share, and the routing tests' document.

The documents keep to the JUnit schema that Jenkins and Maven Surefire publish (``junit-10.xsd``,
which GitLab, GitHub test-report actions and Jenkins read): counts on each ``<testsuite>``, a
``<failure>``, ``<error>`` or ``<skipped>`` in a failed, broken or skipped ``<testcase>``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from topology.routing_tests import Outcome

PASSED, FAILED, ERROR, SKIPPED = "passed", "failed", "error", "skipped"


@dataclass(frozen=True)
class Case:
    """One test case; ``message`` (a line) and ``body`` (the whole story) say why it did not pass."""

    classname: str
    name: str
    result: str = PASSED
    message: str = ""
    body: str = ""
    kind: str = ""
    """The ``type`` of a failure or error (``drift``, ``routing``)."""

    def xml(self) -> str:
        head = f"    <testcase classname={quoteattr(self.classname)} name={quoteattr(self.name)}"
        if self.result in (FAILED, ERROR):
            tag = "failure" if self.result == FAILED else "error"
            kind = f" type={quoteattr(self.kind)}" if self.kind else ""
            return (f"{head}>\n      <{tag} message={quoteattr(self.message)}{kind}>{escape(self.body or self.message)}"
                    f"</{tag}>\n    </testcase>")
        if self.result == SKIPPED:
            return f"{head}>\n      <skipped message={quoteattr(self.message)}/>\n    </testcase>"
        return f"{head}/>"


@dataclass
class Suite:
    """A test suite: its cases, and the file they come from when there is one."""

    name: str
    cases: list[Case] = field(default_factory=list)
    file: str = ""

    def count(self, result: str) -> int:
        return sum(1 for case in self.cases if case.result == result)

    def xml(self) -> str:
        return "".join(self.xml_pieces())

    def xml_pieces(self) -> Iterator[str]:
        """:meth:`xml` in pieces, a case at a time."""
        file = f" file={quoteattr(self.file)}" if self.file else ""
        head = (f"  <testsuite name={quoteattr(self.name)} tests=\"{len(self.cases)}\" failures=\"{self.count(FAILED)}\" "
                f"errors=\"{self.count(ERROR)}\" skipped=\"{self.count(SKIPPED)}\"{file}")
        if not self.cases:
            yield head + "/>"
            return
        yield head + ">"
        for case in self.cases:
            yield "\n" + case.xml()
        yield "\n  </testsuite>"


def document(name: str, suites: Iterable[Suite]) -> str:
    """The ``<testsuites>`` document, with the totals of its suites."""
    return "".join(document_pieces(name, suites))


def document_pieces(name: str, suites: Iterable[Suite]) -> Iterator[str]:
    """:func:`document` in pieces, a test case at a time."""
    suites = list(suites)
    tests = sum(len(suite.cases) for suite in suites)
    failures, errors = (sum(suite.count(result) for suite in suites) for result in (FAILED, ERROR))
    yield (f'<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name={quoteattr(name)} tests="{tests}" '
           f'failures="{failures}" errors="{errors}">\n')
    for number, suite in enumerate(suites):
        if number:
            yield "\n"
        yield from suite.xml_pieces()
    yield "\n</testsuites>\n"


def render_routing_tests(tests: Sequence[Any], outcomes: Sequence[Outcome], live: bool) -> str:
    """The routing tests' results (``topology test --format junit``): a suite per file, a case per
    test (classname: its vhost); a test whose queues differ is a failure, one that could not be
    run (or simulated) an error. ``tests``: the files' declared tests, in the outcomes' order."""
    from topology.render.route import outcome_text

    suites: dict[str, Suite] = {}
    for declared, outcome in zip(tests, outcomes):
        file = outcome.origin.file
        suite = suites.setdefault(file, Suite(file or "(no file)", file=file))
        classname = f"vhost {declared.spec.vhost}"
        if outcome.passed:
            suite.cases.append(Case(classname, outcome.name))
        elif outcome.error:
            suite.cases.append(Case(classname, outcome.name, ERROR, outcome.error, outcome_text(outcome), "routing"))
        else:
            expected = "refused" if outcome.expected_refused else _queues(outcome.expected)
            reached = "refused" if outcome.refused else _queues(outcome.reached or [])
            suite.cases.append(Case(classname, outcome.name, FAILED, f"expected {expected}; reached {reached}",
                                    outcome_text(outcome), "routing"))
    mode = "on the broker" if live else "simulated"
    return document(f"topology test ({mode})", suites.values())


def _queues(names: Sequence[str]) -> str:
    return ", ".join(sorted(names)) if names else "no queue"
