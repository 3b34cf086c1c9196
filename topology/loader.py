"""YAML files → the merged desired state, with a file and line for every node.

PyYAML keeps the last of two equal keys without a word, and its constructed objects
forget where they came from. So the loader composes the node graph (with libyaml's C
parser when available), then walks it itself: it records the line of every mapping
key, refuses duplicate keys, and bounds how far aliases may expand.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from topology.errors import ConfigError, Problem
from topology.model import TopologyFile
from topology.model.topology import Declared, Origin, Topology, VhostTopology, location

try:  # libyaml is several times faster; pure Python is the fallback
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _Loader = yaml.SafeLoader

MAX_NODES = 2_000_000
"""Nodes one file may expand to (aliases included) before it is refused."""

MAX_FILE_BYTES = 64 * 1024 * 1024
"""Largest topology file read."""

_MERGE_TAG = "tag:yaml.org,2002:merge"

Path_ = tuple[Any, ...]


class _TooLarge(Exception):
    pass


class Document:
    """One parsed YAML file: its data and the line of every key path."""

    def __init__(self, file: str, data: Any, lines: dict[Path_, int]):
        self.file = file
        self.data = data
        self.lines = lines

    def line_of(self, path: Iterable[Any]) -> int:
        """Line of the deepest recorded prefix of ``path`` (1 when nothing matches)."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)


class _Walker:
    def __init__(self, loader: yaml.SafeLoader, file: str, problems: list[Problem]):
        self.loader = loader
        self.file = file
        self.problems = problems
        self.lines: dict[Path_, int] = {}
        self.count = 0

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _TooLarge()
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            result = []
            for index, item in enumerate(node.value):
                self.lines.setdefault(path + (index,), item.start_mark.line + 1)
                result.append(self.build(item, path + (index,)))
            return result
        return self.loader.construct_object(node, deep=True)

    def _mapping(self, node: yaml.MappingNode, path: Path_) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                for merged in self._merge_sources(value_node, path):
                    for key, value in merged.items():
                        result.setdefault(key, value)
                continue
            key = self.loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, (list, dict)):
                self.problems.append(Problem(self.file, line, location(path), "a key must be a plain value"))
                continue
            if key in seen:
                self.problems.append(
                    Problem(self.file, line, location(path + (key,)), f"duplicate key {key!r} (first at line {seen[key]})")
                )
                continue
            seen[key] = line
            self.lines[path + (key,)] = line
            result[key] = self.build(value_node, path + (key,))
        # explicit keys win over merged ones
        return result

    def _merge_sources(self, node: yaml.Node, path: Path_) -> list[dict[Any, Any]]:
        nodes = node.value if isinstance(node, yaml.SequenceNode) else [node]
        sources = []
        for item in nodes:
            if not isinstance(item, yaml.MappingNode):
                self.problems.append(
                    Problem(self.file, item.start_mark.line + 1, location(path), "a merge key (<<) needs a mapping")
                )
                continue
            sources.append(self._mapping(item, path))
        return sources


def parse_file(file: str, problems: list[Problem]) -> Document | None:
    """Parse one YAML file; problems are appended, ``None`` when nothing usable came out."""
    try:
        size = os.path.getsize(file)
        if size > MAX_FILE_BYTES:
            problems.append(Problem(file, 0, "", f"file is {size} bytes, larger than the {MAX_FILE_BYTES} allowed"))
            return None
        with open(file, "rb") as handle:
            raw = handle.read()
    except OSError as error:
        problems.append(Problem(file, 0, "", f"cannot read: {error.strerror or error}"))
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        problems.append(Problem(file, line, "", "not UTF-8 text"))
        return None
    if text.startswith("\ufeff"):
        text = text[1:]
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return Document(file, {}, {})
        walker = _Walker(loader, file, problems)
        data = walker.build(node, ())
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else 0
        problems.append(Problem(file, line, "", f"invalid YAML: {error.problem or error.context}"))
        return None
    except yaml.YAMLError as error:
        problems.append(Problem(file, 0, "", f"invalid YAML: {error}"))
        return None
    except _TooLarge:
        problems.append(Problem(file, 0, "", f"document expands to more than {MAX_NODES} nodes (aliases?)"))
        return None
    except RecursionError:
        problems.append(Problem(file, 0, "", "document is nested too deeply"))
        return None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        problems.append(Problem(file, 1, "", "the top level must be a mapping (vhosts: ...)"))
        return None
    return Document(file, data, walker.lines)


def discover(paths: Iterable[str]) -> tuple[list[str], list[Problem]]:
    """Expand files and directories (every ``*.yaml``/``*.yml`` below, sorted) into files."""
    files: list[str] = []
    problems: list[Problem] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = sorted(
                str(p)
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix in (".yaml", ".yml")
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not found:
                problems.append(Problem(given, 0, "", "directory holds no *.yaml or *.yml file"))
            files.extend(found)
        elif path.is_file():
            files.append(str(path))
        else:
            problems.append(Problem(given, 0, "", "no such file or directory"))
    unique = list(dict.fromkeys(files))
    return unique, problems


def _pydantic_problems(document: Document, error: ValidationError) -> list[Problem]:
    problems = []
    for item in error.errors(include_url=False):
        path = tuple(item["loc"])
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = f"unknown key {path[-1]!r}" if path else "unknown key"
        elif item["type"] == "missing":
            message = f"missing required field {path[-1]!r}"
            path = path[:-1] if path else path
        elif message.startswith("Value error, "):
            message = message[len("Value error, "):]
        elif item["type"].endswith("_type") or item["type"] == "literal_error":
            message = f"{message} (got {item.get('input')!r})"
        problems.append(Problem(document.file, document.line_of(path), location(path), message))
    return problems


def load(paths: Iterable[str]) -> Topology:
    """Load, check the structure of and merge topology files; raise :class:`ConfigError` with every problem."""
    files, problems = discover(paths)
    topology = Topology()
    for file in files:
        document = parse_file(file, problems)
        if document is None:
            continue
        try:
            parsed = TopologyFile.model_validate(document.data)
        except ValidationError as error:
            problems.extend(_pydantic_problems(document, error))
            continue
        _merge(topology, parsed, document, problems)
    if problems:
        raise ConfigError(problems)
    return topology


def _merge(topology: Topology, parsed: TopologyFile, document: Document, problems: list[Problem]) -> None:
    file = document.file

    topology.lines[file] = document.lines

    def origin(*path: Any) -> Origin:
        return Origin(file, document.line_of(path), path)

    for vhost_name, vhost in parsed.vhosts.items():
        base = ("vhosts", vhost_name)
        merged = topology.vhosts.get(vhost_name)
        if merged is None:
            merged = topology.vhosts[vhost_name] = VhostTopology(vhost_name, origin(*base))
        for attribute in ("description", "tags", "default_queue_type"):
            value = getattr(vhost, attribute)
            if value is None:
                continue
            here = origin(*base, attribute)
            previous = getattr(merged, attribute)
            if previous is not None:
                first = merged.attribute_origins[attribute]
                problems.append(
                    Problem(file, here.line, location(base + (attribute,)), f"set twice (also at {first})")
                )
                continue
            setattr(merged, attribute, value)
            merged.attribute_origins[attribute] = here
        for kind in ("exchanges", "queues", "policies"):
            target = getattr(merged, kind)
            for name, spec in getattr(vhost, kind).items():
                here = origin(*base, kind, name)
                if name in target:
                    problems.append(
                        Problem(
                            file,
                            here.line,
                            location(base + (kind, name)),
                            f"declared twice (also at {target[name].origin})",
                        )
                    )
                    continue
                target[name] = Declared(spec, here)
        for index, binding in enumerate(vhost.bindings):
            merged.bindings.append(Declared(binding, origin(*base, "bindings", index)))
