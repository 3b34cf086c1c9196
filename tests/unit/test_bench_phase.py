"""The benchmark's measured run (bench/phase.py): the peak memory it reports is its own process's,
not the peak of the process that started it (which Linux hands on in ``ru_maxrss``); the package it
runs is the one beside the benchmark, whatever else is on the path."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

PARENT = """
import subprocess, sys
held = b"x" * (300 * 1024 * 1024)  # written, so resident: the parent's peak is over 300 MB
child = subprocess.run([sys.executable, *sys.argv[1:]], capture_output=True, text=True, check=False)
print(child.stdout)
print(child.stderr)
"""


def _run_under_a_large_parent(*arguments: str) -> str:
    return subprocess.run([sys.executable, "-c", PARENT, *arguments], capture_output=True, text=True,
                          cwd=ROOT, check=True, timeout=120).stdout


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the inherited peak and VmHWM are Linux's")
def test_the_peak_a_phase_reports_is_its_own_not_its_parents():
    # the premise: a child's ru_maxrss holds its parent's peak
    inherited = _run_under_a_large_parent(
        "-c", "import resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)")
    if int(inherited.split()[0]) < 300:
        pytest.skip("this kernel does not hand the parent's peak on in ru_maxrss: nothing to tell apart")
    output = _run_under_a_large_parent(str(ROOT / "bench" / "phase.py"), "validate", str(ROOT / "examples" / "shop"))
    line = next((l for l in output.splitlines() if l.startswith("BENCH ")), None)
    assert line is not None, output[-2000:]
    measured = json.loads(line[len("BENCH "):])
    assert measured["code"] == 0
    assert 5 < measured["peak_mb"] < 150


def test_a_phase_runs_the_package_beside_the_benchmark_not_another_on_the_path(tmp_path):
    # a decoy package first on PYTHONPATH: a run that imported it would fail (it has no cli)
    (tmp_path / "topology").mkdir()
    (tmp_path / "topology" / "__init__.py").write_text("", encoding="utf-8")
    phase = [sys.executable, str(ROOT / "bench" / "phase.py"), "validate", str(ROOT / "examples" / "shop")]
    result = subprocess.run(phase, capture_output=True, text=True, cwd=tmp_path, check=False, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(tmp_path)})
    line = next((l for l in result.stderr.splitlines() if l.startswith("BENCH ")), None)
    assert line is not None, result.stderr[-2000:]
    measured = json.loads(line[len("BENCH "):])
    assert measured["code"] == 0
    assert measured["package"] == str((ROOT / "topology").resolve())
