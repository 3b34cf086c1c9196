"""The --all-targets runner: per-target output, errors kept per target, stop on error, one lock at a time."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest

from topology.cli import EXIT_CHANGES, _run_jobs, echo
from topology.errors import TopologyError
from topology.targets import Selection


@dataclass(frozen=True)
class FakeJob:
    target: str
    problem: str | None = None
    insecure: bool = False


ALL = Selection(all_targets=True)


def test_each_target_prints_into_its_own_buffer_and_keeps_its_own_error():
    def work(job):
        echo(f"hello from {job.target}")
        if job.target == "b":
            raise TopologyError("b is broken")
        if job.target == "c":
            raise ValueError("a bug")
        return EXIT_CHANGES, job.target

    results = _run_jobs([FakeJob("a"), FakeJob("b"), FakeJob("c"), FakeJob("d", problem="no password")],
                        Selection(all_targets=True, continue_on_error=True), work)
    by_name = {r.name: r for r in results}
    assert [r.name for r in results] == ["a", "b", "c", "d"]
    assert by_name["a"].output == [("hello from a", False)] and by_name["a"].value == "a" and by_name["a"].code == 2
    assert by_name["b"].error == "b is broken" and by_name["b"].code == 1
    assert by_name["c"].error.startswith("internal error") and "ValueError: a bug" in by_name["c"].details[-1]
    assert by_name["d"].error == "no password" and by_name["d"].output == []


def test_a_failure_stops_the_targets_not_yet_started():
    started = []

    def work(job):
        started.append(job.target)
        raise TopologyError("down")

    # one lock group: they run one after the other, so the first failure stops the rest
    results = _run_jobs([FakeJob("a"), FakeJob("b"), FakeJob("c")], ALL, work, one_at_a_time=lambda job: "one broker")
    assert started == ["a"]
    assert [r.error for r in results][1:] == ["not run: another target failed (use --continue-on-error to run every target)"] * 2


def test_jobs_that_share_a_lock_never_overlap_and_others_run_in_parallel():
    running: dict[str, int] = {}
    most: dict[str, int] = {}
    guard = threading.Lock()
    both_groups = threading.Barrier(2)

    def work(job):
        group = job.target[0]
        with guard:
            running[group] = running.get(group, 0) + 1
            most[group] = max(most.get(group, 0), running[group])
        if job.target.endswith("1"):
            both_groups.wait(timeout=30)  # x1 and y1 must run at the same time, or this breaks
        with guard:
            running[group] -= 1
        return 0, None

    jobs = [FakeJob(name) for name in ("x1", "x2", "x3", "y1", "y2")]
    results = _run_jobs(jobs, ALL, work, one_at_a_time=lambda job: job.target[0])
    assert [r.error for r in results] == [None] * 5
    assert most == {"x": 1, "y": 1}


def test_errors_are_masked_before_they_go_into_documents():
    from topology import redact

    redact.forget_all()
    redact.register("pa\\ss", "ORDERS_PASSWORD")

    def work(job):
        raise TopologyError(f"bad value (got {'pa' + chr(92) + 'ss'!r})")

    [result] = _run_jobs([FakeJob("a")], Selection(all_targets=True), work)
    assert "pa" not in result.error.replace("pass", "") and "***" in result.error
    import json

    assert "pa\\\\" not in json.dumps({"error": result.error})
    redact.forget_all()


@pytest.mark.parametrize("after", [0.0, 0.2], ids=["as the targets start", "while they run"])
def test_ctrl_c_starts_no_further_target_lets_the_running_one_finish_and_reports_each(capsys, after):
    import os
    import signal
    import time

    finished = []

    def work(job):
        if job.target == "a":
            time.sleep(after)
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while target a runs
            time.sleep(0.3)
        finished.append(job.target)
        return 0, job.target

    # a Ctrl-C is a KeyboardInterrupt, even where the suite was started with SIGINT ignored
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            _run_jobs([FakeJob("a"), FakeJob("b")], ALL, work, one_at_a_time=lambda job: "one broker")
    finally:
        signal.signal(signal.SIGINT, previous)
    out, err = capsys.readouterr()
    assert finished == ["a"]  # a finished, b never started
    assert "interrupted: no further target starts; waiting for the running ones to finish" in err
    assert "  a: finished" in out and "  b: error: not run: interrupted" in out
