"""Rules of the code's layout that a reader relies on: the tables of broker knowledge depend on
nothing else, and modules do not import each other in a circle (imports inside functions count:
they only hide a cycle)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "topology"

KNOWN_CYCLES = [{"topology.kinds.parameter", "topology.state"}]
"""Cycles still to break (issue 20: the kinds/ package gives parameters a module of their own).
This list may only shrink."""


def imports() -> dict[str, set[str]]:
    """Module → the tool's modules it imports, anywhere in its body."""
    modules = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("topology"):
                graph[module] |= {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in modules}
                if node.module in modules and not any(f"{node.module}.{a.name}" in modules for a in node.names):
                    graph[module].add(node.module)
            elif isinstance(node, ast.Import):
                graph[module] |= {a.name for a in node.names if a.name in modules}
        graph[module].discard(module)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in graph.get(module, ()):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = set()
            while True:
                other = stack.pop()
                component.add(other)
                if other == module:
                    break
            if len(component) > 1:
                found.append(component)

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_no_import_cycle():
    assert cycles(imports()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]


def test_the_rules_import_nothing_else_of_the_tools():
    graph = imports()
    for module, imported in graph.items():
        if module.startswith("topology.rules"):
            assert {m for m in imported if not m.startswith("topology.rules")} == set(), module


def test_kind_modules_never_import_the_state_module():
    """`topology.state` imports every kind; a kind importing it (or a module that does) would
    bring the cycle back that the kinds package broke."""
    graph = imports()

    def reaches(module: str, target: str, seen: set[str]) -> bool:
        if module == target:
            return True
        seen.add(module)
        return any(reaches(m, target, seen) for m in graph.get(module, ()) if m not in seen)

    kinds = [m for m in graph if m.startswith("topology.kinds")]
    assert len(kinds) >= 9
    assert [m for m in kinds if reaches(m, "topology.state", set())] == []


def test_every_kind_is_in_the_registry_once():
    import inspect

    from topology import kinds
    from topology.kinds.base import Resource

    concrete = {cls for module in vars(kinds).values() if inspect.ismodule(module)
                for cls in vars(module).values()
                if inspect.isclass(cls) and issubclass(cls, Resource) and cls.kind}
    assert set(kinds.KINDS) == concrete
    assert len(kinds.KIND_ORDER) == len(set(kinds.KIND_ORDER))


def test_the_command_line_starts_without_the_heavy_modules():
    """`topology --version` and `--help` import only the command line itself (the benchmark measures
    the time; this keeps the imports that cost it from creeping back in at module level)."""
    import subprocess
    import sys

    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, topology.cli; print(' '.join(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True).stdout.split()
    heavy = {"pydantic", "requests", "pika", "yaml", "deepdiff", "topology.state", "topology.plan", "topology.targets"}
    assert heavy & set(loaded) == set()
