"""The benchmark's report (bench/report.py): the targets it checks, and the docs page's table,
which is the results file written out (no broker, no matplotlib: the chart alone needs it)."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest

from tests.conftest import ROOT


@pytest.fixture(scope="module")
def report():
    spec = importlib.util.spec_from_file_location("bench_report", ROOT / "bench" / "report.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up while it is made
    spec.loader.exec_module(module)
    return module


def _phase(seconds: float, cpu: float = 0.1, writes: tuple[int, ...] = (0, 0, 0)) -> dict:
    return {"seconds": seconds, "cpu_seconds": cpu, "requests": 3, "write_requests": writes[0],
            "all_write_requests": list(writes), "peak_mb": 100.0}


def _result(objects: int, quiet: dict, busy: dict) -> dict:
    def condition(phases: dict) -> dict:
        floors = {"get": {"seconds": 2.0, "requests": 1}, "post": {"seconds": 30.0, "requests": 1},
                  "delete": {"seconds": 4.0, "requests": 10_000}}
        return {"floors": floors, "phases": phases}

    queues = objects // 2
    return {"objects": objects, "queues": queues,
            "counts": {"queues": queues, "bindings": queues, "exchanges": 1, "policies": 1},
            "conditions": {"quiet": condition(quiet), "busy": condition(busy)}}


def test_each_condition_is_held_to_its_own_bound_against_its_own_floor(report):
    result = _result(20_521, quiet={"plan no-op": _phase(2.4, cpu=0.4), "apply create": _phase(36.0)},
                     busy={"plan no-op": _phase(3.2, cpu=0.6), "apply create": _phase(44.0)})
    assert report.verdicts(result, "plan no-op") == [("≤ 1.2 / 1.5 × GET", {"quiet": True, "busy": False}),
                                                      ("CPU ≤ 0.5 s", {"quiet": True, "busy": False})]
    assert report.verdicts(result, "apply create") == [("≤ 1.15 / 1.5 × POST", {"quiet": False, "busy": True})]
    assert report.target_cell(result, "apply create") == "≤ 1.15 / 1.5 × POST: **not met** / met"


def test_a_no_op_apply_that_writes_misses_its_target_whatever_its_time(report):
    result = _result(10_000, quiet={"apply no-op": _phase(2.0, writes=(0, 1, 0))},
                     busy={"apply no-op": _phase(2.0)})
    assert report.verdicts(result, "apply no-op") == [("≤ 1.25 / 1.5 × GET, no write", {"quiet": False, "busy": True})]


def test_small_sizes_show_their_ratios_but_check_no_target(report):
    result = _result(1_000, quiet={"plan no-op": _phase(9.0)}, busy={"plan no-op": _phase(9.0)})
    assert report.target_cell(result, "plan no-op") == ("≤ 1.2 / 1.5 × GET (from 10,000 objects); "
                                                        "CPU ≤ 0.5 s (at 20,000 objects)")
    assert "| `plan`, nothing to do | 9.00 | 0.10 | 4.50 | 9.00 | 0.10 | 4.50 |" in report.markdown(
        {"date": "d", "cpus": 2, "rabbitmq": "4.3", "python": "3.11", "runs": 3, "version_seconds": 0.1,
         "results": [result]})
    assert report.summary({"results": [result]}) == "targets: 0 met, 0 not met"


def test_the_page_is_rewritten_between_its_markers_only(report, tmp_path):
    page = tmp_path / "benchmark.md"
    page.write_text(f"# Benchmark\n\nbefore\n\n{report.BEGIN}\nold table\n{report.END}\n\nafter\n", encoding="utf-8")
    results = {"date": "d", "cpus": 2, "rabbitmq": "4.3", "python": "3.11", "runs": 3, "version_seconds": 0.1,
               "results": [_result(20_000, quiet={"validate": _phase(0.3, cpu=0.2)}, busy={})]}
    report.rewrite_page(results, page)
    text = page.read_text(encoding="utf-8")
    assert text.startswith("# Benchmark\n\nbefore\n\n") and text.endswith(f"{report.END}\n\nafter\n")
    assert "old table" not in text and "| `validate` (no broker) | 0.30 | 0.20 |" in text


def test_each_results_file_has_its_own_table_and_chart(report, tmp_path):
    page = tmp_path / "benchmark.md"
    other = tmp_path / "results-4.3.json"
    page.write_text(f"a\n{report.BEGIN}\nold 3.10\n{report.END}\nb\n{report.begin(other)}\nold 4.3\n{report.END}\nc\n",
                    encoding="utf-8")
    results = {"date": "d", "cpus": 2, "rabbitmq": "4.3.6", "python": "3.11", "runs": 3, "version_seconds": 0.1,
               "results": [_result(20_000, quiet={"validate": _phase(0.3, cpu=0.2)}, busy={})]}
    report.rewrite_page(results, page, other)
    text = page.read_text(encoding="utf-8")
    assert "old 3.10" in text and "old 4.3" not in text and "| `validate` (no broker) | 0.30 | 0.20 |" in text
    assert text.endswith(f"{report.END}\nc\n") and text.index("old 3.10") < text.index("| `validate`")
    assert report.chart_path(other).name == "benchmark-curve-4.3.png"
    assert report.chart_path(report.RESULTS) == report.CHART
    with pytest.raises(SystemExit, match="markers"):
        report.rewrite_page(results, page, tmp_path / "results-5.0.json")


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "bench").glob("results*.json")))
def test_the_docs_table_is_the_results_file(report, name):
    results_file = ROOT / "bench" / name
    results = json.loads(results_file.read_text(encoding="utf-8"))
    text = (ROOT / "docs" / "benchmark.md").read_text(encoding="utf-8")
    shown = text.split(report.begin(results_file) + "\n", 1)[1].split(report.END, 1)[0]
    assert shown == report.markdown(results), f"the benchmark table of {name} is stale: run bench/report.py"
    assert report.chart_path(results_file).exists()


def test_a_size_measured_with_fewer_runs_says_so(report):
    results = [dict(_result(1_000, {}, {}), runs=3), dict(_result(51_302, {}, {}), runs=1)]
    assert report._runs({"runs": 3, "results": results}) == "3 runs (1 at 51,302 objects)"
    assert report._runs({"runs": 3, "results": results[:1]}) == "3 runs"


def test_the_runs_of_most_sizes_are_named_first(report):
    """A later --append of the largest size with one run leaves the report's own "runs" at 1."""
    results = [dict(_result(n, {}, {}), runs=3) for n in (1_000, 10_001)] + [dict(_result(51_302, {}, {}), runs=1)]
    assert report._runs({"runs": 1, "results": results}) == "3 runs (1 at 51,302 objects)"


def test_the_machine_speed_measured_around_a_size_is_shown_with_it(report):
    measured = _result(20_000, {"plan no-op": _phase(2.2)}, {"plan no-op": _phase(2.4)})
    older = _result(1_000, {"plan no-op": _phase(0.2)}, {"plan no-op": _phase(0.2)})
    measured["loop_seconds"] = [0.26, 0.41]
    whole = {"date": "2026-12-05", "cpus": 2, "rabbitmq": "3.10.8", "python": "3.11.7", "runs": 3,
             "version_seconds": 0.05, "results": [older, measured]}
    page = report.markdown(whole)
    assert "**20,000 objects (10,000 queues, 10,000 bindings, 1 exchange, 1 policy); the fixed loop took 0.26 s, " \
           "then 0.41 s**" in page
    assert "**1,000 objects (500 queues, 500 bindings, 1 exchange, 1 policy)**" in page  # measured before the loop
    assert "a fixed Python loop" in page and "the fixed loop took" in report.text(measured)
    assert "a fixed Python loop" not in report.markdown({**whole, "results": [older]})


def test_the_instructions_counted_at_a_size_are_shown_beyond_pythons_start(report):
    counted = _result(20_521, {"validate": _phase(0.3)}, {"validate": _phase(0.3)})
    counted["conditions"]["quiet"]["instructions"] = {"python": 88_168_886, "validate": 2_396_655_420,
                                                      "plan no-op": 4_320_000_000}
    plain = _result(1_000, {"validate": _phase(0.1)}, {"validate": _phase(0.1)})
    page = report.markdown({"date": "d", "cpus": 2, "rabbitmq": "3.10.8", "python": "3.11", "runs": 3,
                            "version_seconds": 0.1, "results": [plain, counted]})
    line = ("Instructions (callgrind, once, quiet; they do not change with the machine's speed): `validate` 2.31 G, "
            "a `plan` with nothing to do 4.23 G, beyond Python's own start (0.09 G).")
    assert f"1 policy)**\n\n{line}\n\n| 20,521 objects |" in page
    assert page.count("Instructions (callgrind") == 1  # none for the size counted without them
    assert line.replace("`", "") == report.text(counted).splitlines()[1]
    assert "Instructions" not in report.text(plain)


def test_a_count_without_pythons_start_or_without_a_phase_shows_no_line(report):
    for counted in ({"validate": 2_396_655_420}, {"python": 88_168_886}):
        result = _result(20_521, {"validate": _phase(0.3)}, {"validate": _phase(0.3)})
        result["conditions"]["quiet"]["instructions"] = counted
        assert "Instructions" not in report.text(result)


def test_the_table_names_the_build_measured_and_each_builds_sizes_when_they_differ(report):
    def results(*builds: str | None) -> dict:
        measured = [_result(n, quiet={}, busy={}) | ({"commit": b} if b else {})
                    for n, b in zip((1_000, 10_001, 50_001), builds)]
        return {"date": "d", "cpus": 2, "rabbitmq": "3.10.8", "python": "3.11.7", "runs": 3, "version_seconds": 0.1,
                "results": measured}

    one = report.markdown(results("abc1234", "abc1234", "abc1234"))
    assert "Python 3.11.7, the tool of `abc1234`; each figure" in one
    assert ("Python 3.11.7, the tool of `abc1234` at 1,000 and 10,001 objects, `def5678+changes` at 50,001 objects; "
            in report.markdown(results("abc1234", "abc1234", "def5678+changes")))
    assert "Python 3.11.7; each figure" in report.markdown(results(None, None, None))  # measured before it was recorded
    assert ("Python 3.11.7, the tool of `abc1234` at 10,001 and 50,001 objects (not recorded at 1,000 objects); "
            in report.markdown(results(None, "abc1234", "abc1234")))  # an older file, sizes added with --append
