"""The documentation: the README is a front door whose links resolve, the docs site builds with
MkDocs in strict mode (a broken link or anchor fails it), and the generated pages are fresh."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _docs_script():
    spec = importlib.util.spec_from_file_location("docs_script", ROOT / "scripts" / "docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_is_a_front_door_whose_links_resolve():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    for heading in ("## Install", "## Five minutes with your own broker", "## Exit codes", "## Documentation"):
        assert heading in text
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    assert links
    assert [link for link in links if not link.startswith("http") and not (ROOT / link).exists()] == []


def test_every_docs_page_is_in_the_site_navigation():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = {str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md")}
    assert pages and [page for page in sorted(pages) if f": {page}" not in nav] == []


def test_the_generated_pages_are_fresh():
    stale = [str(path.relative_to(ROOT)) for path, text in _docs_script().pages().items()
             if path.read_text(encoding="utf-8") != text]
    assert stale == [], f"stale generated docs (run scripts/docs.py): {stale}"


def test_the_site_builds_in_strict_mode(tmp_path):
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    page = (tmp_path / "site" / "getting-started" / "index.html").read_text(encoding="utf-8")
    assert "orders.dlx" in page and "rabbitmq-topology" in page  # the README's parts it includes


def _documented_json(page: str) -> dict:
    import json

    text = (ROOT / "docs" / "reference" / page).read_text(encoding="utf-8")
    return json.loads(re.search(r"```json\n(.*?)```", text, flags=re.S).group(1))


def _table_cell(page: str, key: str) -> str:
    text = (ROOT / "docs" / "reference" / page).read_text(encoding="utf-8")
    return re.search(rf"^\| `{re.escape(key)}` \| (.*) \|$", text, flags=re.M).group(1)


def test_the_json_plan_page_shows_the_keys_a_plan_has(write):
    """The page's example has exactly the keys of a real plan and of a real replacement in it; its
    table names every kind, in the order apply runs them, and every action."""
    import json

    from tests.unit.test_engine_pure import SHOP, _modified, desired, live, plan_of
    from topology.diff import ACTIONS
    from topology.kinds import KIND_ORDER
    from topology.render.json import render_plan

    data = _modified(edits=[("queues", "created", ("arguments", "x-message-ttl"), 1000)])
    data["queues"].append({"name": "stranger", "durable": True, "auto_delete": False, "arguments": {}})
    real = json.loads(render_plan(plan_of(desired(write, SHOP), live(data), counts={("queue", "v", "created"): 0})))
    shown = _documented_json("plan-json.md")
    assert set(shown) == set(real)
    replacement = next(c for c in real["changes"] if c["action"] == "replace")
    assert set(shown["changes"][0]) == set(replacement)
    assert set(shown["summary"]) == set(real["summary"])
    assert re.findall(r"`([a-z_]+)`", _table_cell("plan-json.md", "kind")) == list(KIND_ORDER)
    assert set(re.findall(r"`([a-z]+)`", _table_cell("plan-json.md", "action"))) == set(ACTIONS)


def test_the_json_drift_report_page_shows_the_keys_a_report_has():
    import json

    from tests.unit.test_drift_pure import render, report_of

    real = json.loads(render(report_of(), "json"))
    shown = _documented_json("drift-report.md")
    assert set(shown) == set(real)
    assert set(shown["summary"]) == set(real["summary"])
    assert set(shown["high_availability"]) == set(real["high_availability"])
    changed = next(o for o in real["objects"] if o["status"] == "changed")
    assert set(shown["objects"][0]) == set(changed)
    assert set(shown["high_availability"]["findings"][0]) == set(real["high_availability"]["findings"][0])
    assert set(shown["orphans"][0]) == set(real["orphans"][0])


def test_every_model_of_the_format_has_its_generated_table():
    """A model added to the format (a new kind, a new nested map) fails here until the file format
    page shows its table."""
    from topology.model.format import TopologyFile

    defs = set(TopologyFile.model_json_schema(mode="validation")["$defs"])
    documented = set(_docs_script().SECTIONS.values())
    assert defs | {"TopologyFile"} == documented
