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
