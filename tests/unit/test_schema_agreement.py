"""The editor and the tool agree: a real JSON Schema validator (jsonschema), reading the files as an
editor's YAML 1.2 does, accepts every file the tool accepts (the examples, a file of every tricky
way of writing a value, the files export makes from real-world definitions and from generated
brokers, the topology snippets of the README and the docs, and mutations of them all), and rejects each file of
tests/fixtures/files/invalid, as the tool does."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import generate
from tests.unit.test_export_pure import REFUSED
from topology.errors import ConfigError
from topology.export import export_definitions, render_file
from topology.loader import load
from topology.schema import YAML_1_1_BOOLEANS, render

ROOT = Path(__file__).resolve().parents[2]
FILES = ROOT / "tests" / "fixtures" / "files"
SCHEMA = json.loads(render())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
ENVIRONMENT = {"SVC_PASSWORD": "not-a-real-password"}

_BOOL = "tag:yaml.org,2002:bool"


class EditorLoader(yaml.SafeLoader):
    """YAML as an editor's language server reads it (YAML 1.2 core): only true/false are booleans."""


EditorLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
EditorLoader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def schema_errors(text: str) -> list[str]:
    """What the schema finds wrong with a file, as an editor would show it (empty: valid)."""
    document = yaml.load(text, Loader=EditorLoader)  # noqa: S506 - a safe loader
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in VALIDATOR.iter_errors(document or {})]


def tool_accepts(path: Path, environment: dict[str, str] | None = None) -> bool:
    """``topology validate``'s verdict, with variables from ``environment`` only."""
    from topology.validate import validate
    from topology.variables import Variables

    try:
        validate(load([str(path)], Variables(environment=environment or ENVIRONMENT)))
    except ConfigError:
        return False
    return True


def _exported() -> list[tuple[str, dict[str, str]]]:
    """The files export makes (a project: they are valid together) of each real-world definitions
    file and of generated brokers."""
    projects = []
    for source in sorted((ROOT / "tests" / "fixtures" / "realworld").glob("*.json")):
        if source.name in REFUSED:
            continue  # what the broker refuses, by rules the schema cannot state (which policy keys a queue type takes)
        document = json.loads(source.read_text(encoding="utf-8"))
        projects.append((source.name, {path: render_file(data, source.name, "topology.schema.json")
                                       for path, data in export_definitions(document).files.items()}))
    for seed in range(4):
        projects.append((f"generated broker {seed}", {
            path: render_file(data, "a generated broker")
            for path, data in export_definitions(generate.definitions(seed, "schema")[0]).files.items()}))
    return projects


def _variables(texts: Any) -> dict[str, str]:
    """A value for every variable the files name without a default (a URI where the name says so)."""
    names = {name for text in texts for name in re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", text)}
    return {name: "amqp://user:secret-value@localhost/v" if "URI" in name else "value-1" for name in names}


def _doc_snippets() -> list[tuple[str, str]]:
    """The YAML blocks of the README and the docs that are whole topology files (top-level keys of
    the format only, vhosts among them)."""
    found = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        text = page.read_text(encoding="utf-8")
        for index, block in enumerate(re.findall(r"```yaml\n(.*?)```", text, flags=re.S)):
            try:
                data = yaml.safe_load(block)
            except yaml.YAMLError:
                continue
            if isinstance(data, dict) and data and set(data) <= set(SCHEMA["properties"]) and "vhosts" in data:
                found.append((f"docs {page.relative_to(ROOT)} yaml block {index}", block))
    return found


PROJECTS = ([(str(p.relative_to(ROOT)), {p.name: p.read_text(encoding="utf-8")})
             for p in sorted((ROOT / "examples").rglob("*.yaml"))]
            + [("tests/fixtures/files/valid.yaml", {"valid.yaml": (FILES / "valid.yaml").read_text(encoding="utf-8")})]
            + _exported() + [(name, {"snippet.yaml": text}) for name, text in _doc_snippets()])
"""Sets of files the tool accepts together, by where they come from."""


def test_the_corpus_is_broad():
    names = [name for name, _ in PROJECTS]
    assert sum(name.startswith("examples/") for name in names) >= 2
    assert sum(name.endswith(".json") for name in names) >= 10
    assert sum(name.startswith("docs ") for name in names) >= 4


@pytest.mark.parametrize("name, files", PROJECTS, ids=[name for name, _ in PROJECTS])
def test_what_the_tool_accepts_the_schema_accepts(name, files, tmp_path):
    for relative, text in files.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text, encoding="utf-8")
    assert tool_accepts(tmp_path, {**ENVIRONMENT, **_variables(files.values())}), name
    for relative, text in files.items():
        assert schema_errors(text) == [], f"{name}: {relative}"


INVALID = sorted((FILES / "invalid").glob("*.yaml"))


@pytest.mark.parametrize("path", INVALID, ids=[p.name for p in INVALID])
def test_what_the_schema_can_express_it_refuses_as_the_tool_does(path):
    assert not tool_accepts(path)
    assert schema_errors(path.read_text(encoding="utf-8")), f"{path.name}: the schema accepts it"


def test_the_yaml_1_1_booleans_are_the_words_the_tool_reads_as_booleans():
    for word in YAML_1_1_BOOLEANS:
        assert isinstance(yaml.safe_load(f"v: {word}")["v"], bool), word
        assert yaml.load(f"v: {word}", Loader=EditorLoader)["v"] == word  # noqa: S506 - a safe loader


# -- mutations: whatever value lands in a field, the tool accepting it means the schema does -------

VALUES = st.one_of(
    st.integers(-5, 10**6), st.booleans(), st.none(), st.sampled_from(YAML_1_1_BOOLEANS),
    st.sampled_from(["${X}", "${X:-5}", "${X:-true}", "${X:-quorum}", "${X:-30s}", "${X}s", "x${X:-1}", "30s", "1h",
                     "5 weeks", "10MiB", "512kb", "7D", "quorum", "classic", "lazy", "topic", "queues", "", "text",
                     "1.5", "0x1F", "1_000", "-1", "~"]),
    st.lists(st.sampled_from(["a", "management", 1]), max_size=2), st.dictionaries(st.sampled_from(["a", "b"]),
                                                                                   st.integers(0, 3), max_size=2))


def _scalar_paths(data: Any, path: tuple = ()) -> list[tuple]:
    if isinstance(data, dict):
        return [p for key, value in data.items() for p in _scalar_paths(value, path + (key,))] or [path]
    if isinstance(data, list):
        return [p for index, value in enumerate(data) for p in _scalar_paths(value, path + (index,))] or [path]
    return [path]


def _set(data: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    copy = dict(data) if isinstance(data, dict) else list(data)
    copy[path[0]] = _set(copy[path[0]], path[1:], value)
    return copy


def _seeds() -> list[Any]:
    """The corpus's files that the tool accepts alone (a cluster file without its vhosts' files is refused)."""
    import tempfile

    seeds = []
    with tempfile.TemporaryDirectory() as folder:
        for _, files in PROJECTS:
            for text in files.values():
                path = Path(folder) / "seed.yaml"
                path.write_text(text, encoding="utf-8")
                if tool_accepts(path, {**ENVIRONMENT, **_variables([text])}):
                    seeds.append(yaml.safe_load(text))
    return seeds


SEEDS = _seeds()


def test_the_mutations_start_from_many_files():
    assert len(SEEDS) >= 15


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.data())
def test_a_mutated_file_the_tool_accepts_the_schema_accepts(tmp_path, data):
    seed = data.draw(st.sampled_from(SEEDS))
    paths = _scalar_paths(seed)
    path = data.draw(st.sampled_from(paths))
    value = data.draw(VALUES)
    text = yaml.safe_dump(_set(seed, path, value), allow_unicode=True, sort_keys=False)
    text = re.sub(r"'(\$\{[^']*)'", r'"\1"', text)  # as a person writes a variable: in double quotes or bare
    file = tmp_path / "m.yaml"
    file.write_text(text, encoding="utf-8")
    if tool_accepts(file, {**ENVIRONMENT, **_variables([text]), "X": "7"}):
        assert schema_errors(text) == [], (path, value)
