"""Every `topology` command the docs show runs, against the test broker where it needs one, in a
folder laid out as the docs assume: the shipped examples, `topology/` holding the shop example
(applied first), values files and a definitions file, with the vhost `shop` renamed to the
test's throw-away vhost. A command may find changes or drift (exit 2), never fail (exit 1). The
README's commands run in test_readme_tour.py, with their output compared."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import ROOT
from tests.unit.test_docs_commands import LINES

pytestmark = pytest.mark.broker

DOCS_LINES = [(page, words) for page, words in LINES if page != "README.md"]


def sandbox(tmp_path, vhost: str):
    """The folder the docs' commands run in."""
    def renamed(text: str) -> str:
        return text.replace("\n  shop:\n", f"\n  {vhost}:\n").replace("vhost: shop\n", f"vhost: {vhost}\n")

    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    for path in (tmp_path / "examples").rglob("*.yaml"):
        path.write_text(renamed(path.read_text(encoding="utf-8")), encoding="utf-8")
    shutil.copytree(tmp_path / "examples" / "shop", tmp_path / "topology")
    (tmp_path / "values").mkdir()
    for name in ("common.yaml", "prod.yaml"):
        (tmp_path / "values" / name).write_text("{}\n", encoding="utf-8")


@pytest.mark.parametrize("page, words", DOCS_LINES, ids=[f"{p}: {' '.join(w)}" for p, w in DOCS_LINES])
def test_a_command_the_docs_show_runs(page, words, run, tmp_path, vhost, monkeypatch):
    sandbox(tmp_path, vhost)
    monkeypatch.chdir(tmp_path)
    assert run("apply", "topology/", "--auto-approve").code == 0
    assert run("render", "topology/", "--format", "definitions", "--out", "definitions.json").code == 0
    arguments = [vhost if word == "shop" else word for word in words[1:]]
    result = run(*arguments)
    assert result.code in (0, 2), f"{page}: {' '.join(words)}\n{result.out[-2000:]}{result.err[-2000:]}"
