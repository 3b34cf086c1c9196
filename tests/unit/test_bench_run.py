"""The benchmark's runner (bench/run.py): it measures the package beside it and names the build it
measured (no broker: what is checked before measuring)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.fixture(scope="module")
def run():
    sys.path.insert(0, str(ROOT / "bench"))  # it imports its report module by name, as when run as a script
    try:
        spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "bench"))
    return module


def _git(root, *arguments: str) -> str:
    return subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.com", *arguments],
                          capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def checkout(run, tmp_path, monkeypatch):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    (tmp_path / "topology").mkdir()
    (tmp_path / "topology" / "__init__.py").write_text("", encoding="utf-8")
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "phase.py").write_text("", encoding="utf-8")
    (tmp_path / "README.md").write_text("", encoding="utf-8")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "one")
    monkeypatch.setattr(run, "ROOT", tmp_path.resolve())
    monkeypatch.setattr(run, "PACKAGE", (tmp_path / "topology").resolve())
    return tmp_path


def test_the_commit_measured_says_whether_and_how_what_a_run_executes_changed(run, checkout):
    head = _git(checkout, "rev-parse", "--short", "HEAD")
    assert run._commit() == head
    (checkout / "README.md").write_text("not run", encoding="utf-8")
    assert run._commit() == head  # a file no run executes
    (checkout / "topology" / "__init__.py").write_text("x = 1\n", encoding="utf-8")
    one = run._commit()
    assert one.startswith(f"{head}+changes-") and len(one) == len(head) + len("+changes-") + 8
    (checkout / "topology" / "__init__.py").write_text("x = 2\n", encoding="utf-8")
    assert run._commit() not in (head, one)  # two sets of changes told apart
    (checkout / "topology" / "__init__.py").write_text("", encoding="utf-8")
    (checkout / "bench" / "phase.py").write_text("y = 1\n", encoding="utf-8")
    assert run._commit().startswith(f"{head}+changes-")
    (checkout / "bench" / "phase.py").write_text("", encoding="utf-8")
    (checkout / "topology" / "kinds").mkdir()
    (checkout / "topology" / "kinds" / "new.py").write_text("", encoding="utf-8")  # not yet added
    assert run._commit().startswith(f"{head}+changes-")


def test_no_commit_is_named_outside_the_top_of_a_checkout(run, checkout, monkeypatch):
    monkeypatch.setattr(run, "ROOT", (checkout / "bench").resolve())  # inside one, not its top
    assert run._commit() is None


def test_the_files_watched_during_a_run_include_the_bytecode(run, checkout):
    (checkout / "topology" / "__pycache__").mkdir()
    (checkout / "topology" / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(b"")
    watched = run._measured_files()
    assert {str(checkout.resolve() / p) for p in ("topology/__init__.py", "bench/phase.py",
                                                   "topology/__pycache__/__init__.cpython-311.pyc")} == watched.keys()


@pytest.mark.parametrize("variable", ["PYTHONPATH", "PYTHONSAFEPATH"])
def test_the_benchmark_refuses_a_path_that_could_put_another_package_first(run, monkeypatch, variable):
    monkeypatch.setenv(variable, "/elsewhere")
    with pytest.raises(SystemExit, match="measures the package beside it"):
        run.build()
