"""YAML files → the merged desired state, with a file and line for every node.

PyYAML keeps the last of two equal keys without a word, and its constructed objects
forget where they came from. So the loader composes the node graph (with libyaml's C
parser when available), then walks it itself: it records the line of every mapping
key, refuses duplicate keys, and bounds how far aliases may expand.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from topology.errors import ConfigError, Problem
from topology.variables import OFFLINE, Substituted, Variables, with_template
from topology.yaml_errors import syntax_problem, yaml_problem

if TYPE_CHECKING:
    from pydantic import ValidationError

    from topology.model.format import TopologyFile
    from topology.model.topology import Topology

# The models (pydantic) are imported only for a file that topology.model.specs cannot build alone
# (references, other kinds, problems), and only once it is parsed: the vhost names it holds start
# the broker's reads (see parse_file's on_vhost) first.

try:  # libyaml is several times faster; pure Python is the fallback
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _Loader = yaml.SafeLoader

MAX_NODES = 2_000_000
"""Nodes one file may expand to (aliases included) before it is refused."""

MAX_FILE_BYTES = 64 * 1024 * 1024
"""Largest topology file read."""

_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"
_SET_TAG = "tag:yaml.org,2002:set"

Path_ = tuple[Any, ...]


class _TooLarge(Exception):
    pass


class Document:
    """One parsed YAML file: its data and the line of every key path."""

    def __init__(self, file: str, data: Any, lines: dict[Path_, int], substituted: set[Path_] | None = None,
                 variables_of: dict[Path_, str] | None = None, more_lines: Callable[[], dict[Path_, int]] | None = None):
        self.file = file
        self.data = data
        self.lines = lines
        self.more_lines = more_lines
        """Set when ``lines`` holds those of the objects only: reads the others (see :meth:`all_lines`)."""
        self.substituted = substituted or set()
        """Paths of the values that came from ``${...}`` references."""
        self.variables_of = variables_of or {}
        """Paths of the values that were exactly one ``${VARIABLE}``, with its name."""

    def all_lines(self) -> dict[Path_, int]:
        """The line of every key path: those below the objects are read now if they were left out."""
        if self.more_lines is not None:
            more, self.more_lines = self.more_lines, None
            self.lines.update(more())
        return self.lines

    def line_of(self, path: Iterable[Any]) -> int:
        """Line of the deepest recorded prefix of ``path`` (1 when nothing matches)."""
        path = tuple(path)
        if self.more_lines is not None and path not in self.lines:
            self.all_lines()
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)


class _Frame:
    """An open mapping or sequence while the events of a document are read."""

    __slots__ = ("value", "is_list", "path", "anchor", "size", "in_merge", "key", "key_line", "has_key", "skip", "seen",
                 "merges", "is_set")

    def __init__(self, value: Any, path: Path_, anchor: str | None, in_merge: bool):
        self.value = value
        self.is_list = isinstance(value, list)
        self.path = path
        self.anchor = anchor
        self.size = 1
        self.in_merge = in_merge
        self.key: Any = None
        self.key_line = 0
        self.has_key = False
        self.skip = False
        self.seen: dict[Any, int] = {}
        self.merges: list[dict[Any, Any]] = []
        self.is_set = False
        """A ``!!set``: its keys become a set (which the checks then name)."""


class _Builder:
    """Builds plain data from libyaml's parser events, with an explicit stack.

    libyaml's own composer recurses in C and crashes on deeply nested input; its parser
    does not. Building from events also keeps aliases as shared references: they are
    counted against :data:`MAX_NODES` by the size of what they stand for, never expanded.
    """

    def __init__(self, loader: Any, file: str, problems: list[Problem], variables: Variables | None = None,
                 on_vhost: Callable[[str], None] | None = None):
        self.loader = loader
        self.on_vhost = on_vhost
        self.variables = variables
        self.file = file
        self.problems = problems
        self.lines: dict[Path_, int] = {}
        self.anchors: dict[str, tuple[Any, int, dict[Any, int]]] = {}
        """anchor → (value, node count, line of each top-level key when it is a mapping)"""
        self.count = 0
        self.stack: list[_Frame] = []
        self.root: Any = None
        self.scalars: dict[tuple[Any, ...], Any] = {}
        self.unresolved = False
        """A variable reference could not be replaced (the problems say which)."""
        self.substituted_paths: set[Path_] = set()
        """Paths of the values that came from ``${...}`` references."""
        self.variables_of: dict[Path_, str] = {}
        """Paths of the values that were exactly one ``${VARIABLE}``, with its name."""

    def problem(self, line: int, path: Path_, message: str) -> None:
        from topology.model.topology import location

        self.problems.append(Problem(self.file, line, location(path), message))

    def count_nodes(self, size: int) -> None:
        self.count += size
        if self.count > MAX_NODES:
            raise _TooLarge()

    def child_path(self) -> tuple[Path_, bool]:
        """Path of the next node and whether it sits inside a merged mapping."""
        if not self.stack:
            return (), False
        parent = self.stack[-1]
        if isinstance(parent.value, list):
            return parent.path + (len(parent.value),), parent.in_merge
        if not parent.has_key:
            return parent.path, parent.in_merge  # a key
        if parent.key is _MERGE:
            return parent.path, True
        return parent.path + (parent.key,), parent.in_merge

    def record(self, path: Path_, line: int, in_merge: bool) -> None:
        if in_merge:
            self.lines.setdefault(path, line)
        else:
            self.lines[path] = line

    def run(self) -> Any:
        loader = self.loader
        loader.get_event()  # stream start
        if loader.check_event(yaml.StreamEndEvent):
            return None
        loader.get_event()  # document start
        # the loop runs once per node (tens of thousands in a large file): the common cases (a
        # plain key or value scalar in a mapping, an item of a list) are written out here
        get_event = loader.get_event
        stack = self.stack
        lines = self.lines
        scalars = self.scalars
        scalar_event, alias_event, document_end = yaml.ScalarEvent, yaml.AliasEvent, yaml.DocumentEndEvent
        collection_start = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
        substitute = self.variables is not None
        while True:
            event = get_event()
            kind = type(event)
            if kind is document_end:
                break
            line = event.start_mark.line + 1
            if kind is scalar_event:
                self.count += 1
                if self.count > MAX_NODES:
                    raise _TooLarge()
                parent = stack[-1] if stack else None
                text = event.value
                if parent is not None and not parent.is_list and not parent.has_key and (
                        text == "<<" or event.tag == _MERGE_TAG) and _is_merge_key(loader, event):
                    self.emit(None, 1, line, is_merge_key=True)
                    continue
                if parent is not None and parent.is_list:
                    path = parent.path + (len(parent.value),)
                    if parent.in_merge:
                        lines.setdefault(path, line)
                    else:
                        lines[path] = line  # a list item: problems name its own line
                if substitute and "${" in text:
                    value = self.substituted(event)
                else:
                    cache_key = (text, event.implicit, event.tag, event.style)
                    value = scalars.get(cache_key, _MISSING)
                    if value is _MISSING:
                        value = self._construct_scalar(event)
                        if len(scalars) < 100_000:
                            scalars[cache_key] = value  # scalar values are immutable
                if event.anchor:
                    self.anchors[event.anchor] = (value, 1, {})
                if (parent is not None and not parent.is_list and parent.has_key and not parent.skip
                        and parent.key is not _MERGE):
                    parent.size += 1
                    parent.has_key = False
                    parent.value[parent.key] = value  # the value of a key: the most common node
                else:
                    self.emit(value, 1, line, text=text)
            elif kind is alias_event:
                if event.anchor not in self.anchors:
                    raise _Unusable(line, f"invalid YAML: unknown alias *{event.anchor}")
                value, size, key_lines = self.anchors[event.anchor]
                self.count_nodes(size)
                self.emit(value, size, line, key_lines=key_lines)
            elif kind in collection_start:
                self.count_nodes(1)
                if len(stack) >= MAX_DEPTH:
                    raise _TooDeep()
                path, in_merge = self.child_path()
                if stack and stack[-1].is_list:
                    self.record(path, line, in_merge)
                container: Any = {} if kind is yaml.MappingStartEvent else []
                stack.append(_Frame(container, path, event.anchor, in_merge))
                if event.tag == _SET_TAG:
                    stack[-1].is_set = True
            else:  # mapping or sequence end
                frame = stack.pop()
                value = frame.value
                if frame.merges:
                    merged: dict[Any, Any] = {}
                    for source in frame.merges:
                        for key, item in source.items():
                            merged.setdefault(key, item)
                    merged.update(value)  # explicit keys win
                    value = merged
                if frame.is_set:
                    value = set(value)
                if frame.anchor:
                    self.anchors[frame.anchor] = (value, frame.size, frame.seen)
                self.emit(value, frame.size, line)
        if not loader.check_event(yaml.StreamEndEvent):
            raise _Unusable(loader.peek_event().start_mark.line + 1, "invalid YAML: a file holds one document, not several")
        return self.root

    def substituted(self, event: Any) -> Any:
        """A scalar with its ``${...}`` references replaced (see :mod:`topology.variables`)."""
        path, _ = self.child_path()  # a key's is its mapping's: problems are reported there
        return self.substitute(event.value, event.start_mark.line + 1, path, as_text=event.tag == _STR_TAG)

    def substitute(self, text: str, line: int, path: Path_, is_key: bool = False, as_text: bool = False) -> Any:
        """``text`` (a scalar at ``path``, or a key of the mapping at ``path``) with its ``${...}``
        references replaced; ``as_text``: tagged ``!!str``."""
        assert self.variables is not None
        value, problems = self.variables.substitute(text, as_text=as_text, environment_only=is_uri_path(path),
                                                    secret_place=is_user_secret_path(path))
        if problems:
            for message in problems:
                self.problem(line, path, message)
            self.unresolved = True
        self.substituted_paths.add(path)
        if isinstance(value, Substituted) and len(self.variables.last_names) == 1:
            self.variables_of[path] = self.variables.last_names[0]
        if not problems and isinstance(value, str):
            value = with_template(value, text, {name: self.variables.used.get(name, "")
                                                for name in self.variables.last_names})
        return value  # text (a Substituted when it was exactly one reference)

    def _construct_scalar(self, event: Any) -> Any:
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.loader.resolve(yaml.ScalarNode, event.value, event.implicit)
        constructor = self.loader.yaml_constructors.get(tag)
        if constructor is None:
            raise _Unusable(event.start_mark.line + 1, f"invalid YAML: unsupported tag {tag}")
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
        try:
            return constructor(self.loader, node)
        except Exception:  # noqa: BLE001 - !!int foo, !!bool maybe, !!timestamp 2020-13-45, 5000 digits: all the user's
            path, _ = self.child_path()
            self.problem(event.start_mark.line + 1, path, _unreadable_scalar(tag, event))
            self.unresolved = True  # the document is not checked further
            return event.value

    def emit(
        self, value: Any, size: int, line: int, is_merge_key: bool = False, key_lines: dict[Any, int] | None = None,
        text: str | None = None,
    ) -> None:
        if not self.stack:
            self.root = value
            return
        parent = self.stack[-1]
        parent.size += size
        if parent.is_list:
            parent.value.append(value)
            return
        if not parent.has_key:
            parent.has_key = True
            parent.key_line = line
            parent.skip = False
            if isinstance(value, Substituted):
                value = str(value)  # keys are names: always text
            if is_merge_key:
                parent.key = _MERGE
            elif isinstance(value, (list, dict)):
                self.problem(line, parent.path, "a key must be a plain value")
                parent.skip = True
            elif not isinstance(value, str):  # keys are names: 1, yes, ~ or a date are not text to YAML
                self.problem(line, parent.path, _not_text_key(parent.path, value, text))
                parent.skip = True
            elif value in parent.seen:
                self.problem(line, parent.path + (value,), f"duplicate key {value!r} (first at line {parent.seen[value]})")
                parent.skip = True
            else:
                parent.key = value
                parent.seen[value] = line
                self.record(parent.path + (value,), line, parent.in_merge)
                if self.on_vhost is not None and parent.path == ("vhosts",) and isinstance(value, str):
                    self.on_vhost(value)
            return
        parent.has_key = False
        if parent.skip:
            return
        if parent.key is _MERGE:
            sources = value if isinstance(value, list) else [value]
            for source in sources:
                if not isinstance(source, dict):
                    raise _Unusable(parent.key_line, "invalid YAML: a merge key (<<) needs a mapping or a list of mappings")
                parent.merges.append(source)
            for key, key_line in (key_lines or {}).items():
                self.lines.setdefault(parent.path + (key,), key_line)  # merged from an alias
            return
        parent.value[parent.key] = value


_MERGE = object()
_MISSING = object()


def _not_text_key(path: Path_, value: Any, text: str | None) -> str:
    """Why a key YAML did not read as text is refused, and how to write it."""
    from topology.model.topology import NAMED_SECTIONS

    names = path in (("vhosts",), ("users",), ("global_parameters",)) or (
        len(path) == 3 and path[0] == "vhosts" and path[2] in NAMED_SECTIONS)
    what = "name" if names else "key"
    kind = _yaml_kind(value) or "something other than text"
    if isinstance(value, bool):
        kind = f"a boolean ({'true' if value else 'false'})"
    elif isinstance(value, bytes):
        kind = "binary data"
    written = text if text is not None else _shown(value)
    if value is None and not written:
        return f"a {what} that is empty: write the {what}, in quotes if needed"
    return f"the {what} {written} is read as {kind}: write it in quotes ('{written}')"


_TAG_WORDS = {"int": "a whole number", "float": "a number", "timestamp": "a valid date", "bool": "true or false",
              "binary": "base64 text"}


def _unreadable_scalar(tag: str, event: Any) -> str:
    """Why a scalar could not be read as what its tag (written or implied) says."""
    kind = tag.rsplit(":", 1)[-1]
    text = event.value
    digits = sum(character.isdigit() for character in text)
    if kind in ("int", "float") and digits > 100:
        return f"a number with {digits} digits: far beyond anything RabbitMQ accepts"
    shown = text if len(text) <= 40 else text[:37] + "..."
    what = _TAG_WORDS.get(kind, f"a {kind} value")
    if event.tag in (None, "!") or event.implicit[0]:
        return f"'{shown}' is not {what}: put it in quotes to keep it text"
    return f"'!!{kind} {shown}' is not {what} (remove the !!{kind} tag, or write {what})"


OPT_IN_SECTIONS = frozenset({"operator_policies", "shovels", "federation_upstreams", "federation_upstream_sets"})
"""Vhost sections whose objects on the broker are managed (listed, pruned) only where a file names the section."""


def is_uri_path(path: Path_) -> bool:
    """Whether a YAML path is a shovel or federation upstream URI (or one URI of a list of them)."""
    from topology.model.topology import URI_FIELDS

    return (len(path) in (5, 6) and path[0] == "vhosts" and path[2] in URI_FIELDS and path[4] in URI_FIELDS[path[2]]
            and (len(path) == 5 or isinstance(path[5], int)))

def is_user_secret_path(path: Path_) -> bool:
    """Whether a YAML path is a user's password or password hash."""
    return len(path) == 3 and path[0] == "users" and path[2] in ("password", "password_hash")


MAX_DEPTH = 200
"""Deepest nesting of mappings and lists accepted (topology files need about eight)."""


class _TooDeep(Exception):
    pass


class _Unusable(Exception):
    """The document cannot be turned into data (like a syntax error); ``args``: line, message."""


def _is_merge_key(loader: Any, event: Any) -> bool:
    tag = event.tag
    if tag is None or tag == "!":
        tag = loader.resolve(yaml.ScalarNode, event.value, event.implicit)
    return tag == _MERGE_TAG


def parse_file(path: str, problems: list[Problem], variables: Variables | None = None,
               on_vhost: Callable[[str], None] | None = None, name: str | None = None) -> Document | None:
    """Parse one YAML file; problems are appended, ``None`` when nothing usable came out.

    With ``variables``, ``${...}`` references in scalars (keys included) are replaced.
    ``on_vhost`` is called with each vhost name as soon as it is read (to start reading the
    broker meanwhile; a name may come twice, and a file that turns out unusable may have named
    some). ``name``: how problems and origins name the file (default ``path``)."""
    file = name or path
    try:
        size = os.path.getsize(path)
        if size > MAX_FILE_BYTES:
            problems.append(Problem(file, 0, "", f"file is {size} bytes, larger than the {MAX_FILE_BYTES} allowed"))
            return None
        with open(path, "rb") as handle:
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
    return parse_text(text, file, problems, variables, on_vhost)


def parse_text(text: str, file: str, problems: list[Problem], variables: Variables | None = None,
               on_vhost: Callable[[str], None] | None = None, fast: bool = True) -> Document | None:
    """Parse the text of one file (see :func:`parse_file`); ``fast``: try the reader of plain
    block YAML first (:mod:`topology.block_yaml`: the same result, several times sooner)."""
    loader = _Loader(text)
    if fast:
        document = _read_plain(text, loader, file, problems, variables, on_vhost)
        if document is not None:
            loader.dispose()
            return document if document.data is not None else None
    builder = _Builder(loader, file, problems, variables, on_vhost)
    try:
        data = builder.run()
        if data is None:
            return Document(file, {}, {})
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else 0
        reason = error.problem or error.context
        if "nesting depth" in str(reason):  # libyaml 0.2.6 and later stop at their own depth limit
            problems.append(Problem(file, line, "", f"document is nested too deeply (more than {MAX_DEPTH} levels)"))
        else:
            problems.append(Problem(file, line, "", syntax_problem(text, mark, str(reason))))
        return None
    except yaml.YAMLError as error:  # a character YAML does not allow, or no place known
        line, message = yaml_problem(text, error)
        problems.append(Problem(file, line, "", message))
        return None
    except _TooLarge:
        problems.append(Problem(file, 0, "", f"document expands to more than {MAX_NODES} nodes (aliases?)"))
        return None
    except _Unusable as error:
        problems.append(Problem(file, error.args[0], "", error.args[1]))
        return None
    except yaml.constructor.ConstructorError as error:
        mark = error.problem_mark
        problems.append(Problem(file, mark.line + 1 if mark else 0, "", f"invalid value: {error.problem}"))
        return None
    except _TooDeep:
        line = builder.stack[-1].path and builder.lines.get(builder.stack[-1].path, 0) or 0
        problems.append(Problem(file, line, "", f"document is nested too deeply (more than {MAX_DEPTH} levels)"))
        return None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        problems.append(Problem(file, 1, "", "the top level must be a mapping (vhosts: ...)"))
        return None
    if builder.unresolved:
        return None  # what a missing variable would leave behind is not worth checking
    return Document(file, data, builder.lines, builder.substituted_paths, builder.variables_of)


def _read_plain(text: str, loader: Any, file: str, problems: list[Problem], variables: Variables | None,
                on_vhost: Callable[[str], None] | None) -> Document | None:
    """The file read by the fast reader of plain block YAML (:mod:`topology.block_yaml`), or
    ``None`` when the full reader must read it (nothing is then kept of the attempt). A document
    whose ``data`` is ``None`` stands for "read, with problems" (a variable could not be replaced)."""
    from topology import block_yaml

    start = len(problems)
    builder = _Builder(loader, file, problems, variables)

    def on_key(path: Path_, key: str) -> None:
        on_vhost(key)  # type: ignore[misc]  # given only with on_vhost; called for the keys of vhosts

    # Without references the text reads the same again: the lines below the objects (the fields,
    # a fifth of the reading) are then recorded only when a problem asks for one.
    shallow = variables is None or "${" not in text

    def every_line() -> dict[Path_, int]:
        lines: dict[Path_, int] = {}
        again = _Loader(text)
        try:
            if block_yaml.read(text, again, lines, None, None, MAX_NODES) is block_yaml.FALLBACK:
                return {}  # it read the first time: the objects' lines stand for their fields
        finally:
            again.dispose()
        return lines

    # each vhost is named as soon as it is read, as the full reader does: should this reader give
    # up further on, the full one names them again (reading a vhost ahead twice reads it once)
    data = block_yaml.read(text, loader, builder.lines, builder.substitute if variables is not None else None,
                           on_key if on_vhost is not None else None, MAX_NODES, shallow)
    if data is block_yaml.FALLBACK:
        del problems[start:]
        return None
    if builder.unresolved:
        return Document(file, None, {})
    return Document(file, data, builder.lines, builder.substituted_paths, builder.variables_of,
                    every_line if shallow else None)


def discover(paths: Iterable[str]) -> tuple[list[str], list[Problem]]:
    """Expand files and directories (every ``*.yaml``/``*.yml`` below, sorted) into files."""
    files: list[str] = []
    problems: list[Problem] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found, broken = [], 0
            for entry in sorted(path.rglob("*")):
                if entry.suffix.lower() not in (".yaml", ".yml") or entry.is_dir() or any(
                        part.startswith(".") for part in entry.relative_to(path).parts):
                    continue
                if entry.is_file():
                    found.append(str(entry))
                else:  # skipping it would make --prune delete what it declares
                    problems.append(Problem(str(entry), 0, "", _not_a_file(entry)))
                    broken += 1
            if not found and not broken:
                problems.append(Problem(given, 0, "", "directory holds no *.yaml or *.yml file"))
            files.extend(found)
        elif path.is_file():
            files.append(str(path))
        else:
            problems.append(Problem(given, 0, "", _not_a_file(path)))
    unique = list(dict.fromkeys(files))
    return unique, problems


def _not_a_file(path: Path) -> str:
    """Why a path that should be a topology file is not one."""
    if path.is_symlink() and not path.exists():
        return f"a link to nothing ({os.readlink(path)}): a topology file that is not there cannot be read"
    if path.exists():
        return "not a regular file (a pipe, socket or device): a topology file must be one"
    return "no such file or directory"


def _keys_at(path: tuple[Any, ...]) -> list[str]:
    """The keys the format allows in the map at ``path`` of a file (``[]`` where any key goes)."""
    from types import UnionType
    from typing import Union, get_args, get_origin

    from pydantic import BaseModel

    from topology.model.format import TopologyFile

    annotation: Any = TopologyFile
    for part in path:
        while get_origin(annotation) in (Union, UnionType):  # X | None
            annotation = next(a for a in get_args(annotation) if a is not type(None))
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(part))
            if field is None:
                return []
            annotation = field.annotation
        elif get_origin(annotation) in (dict, list):
            annotation = get_args(annotation)[-1]
        else:
            return []
    while get_origin(annotation) in (Union, UnionType):
        annotation = next(a for a in get_args(annotation) if a is not type(None))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [f.alias or name for name, f in annotation.model_fields.items()]
    return []


def _not_a_map(path: tuple[Any, ...], value: Any, what: str = "a map of settings") -> str:
    """Why a value that should be a map of settings is not, in the words of the likely mistake."""
    if value is None:
        return ("no settings: the value is empty (write {} for the defaults), or the keys meant for it are "
                "indented too little")
    if path and str(path[-1]) in _keys_at(path[:-1] + ("name",)):  # a key of the map its name stands in
        return (f"{path[-1]!r} is a setting, not a name: it looks indented one level too little "
                "(it sits where a name goes)")
    if isinstance(value, list):
        return f"expected {what} (key: value lines), got a list"
    return f"expected {what}, {_got(value, False)}"


_EXPECTED = {
    "string_type": "text", "int_type": "a whole number", "int_parsing": "a whole number",
    "int_from_float": "a whole number", "float_type": "a number", "float_parsing": "a number",
    "bool_type": "true or false", "bool_parsing": "true or false", "list_type": "a list",
    "dict_type": "a map (key: value lines)", "model_type": "a map of settings", "finite_number": "a finite number",
}
"""What a field takes, by the kind of pydantic's complaint when it got something else."""

_SECRET_KEYS = frozenset({"source_uri", "destination_uri", "uri", "password", "password_hash"})
"""Keys whose values are never shown in a problem (a URI may hold a password)."""


def _shown(value: Any) -> str:
    """A value as YAML would write it (never a Python repr of a date, bytes or a set)."""
    import datetime
    import math

    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return "binary data (!!binary)"
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return repr(shown)
    if isinstance(value, (list, dict, set)) and len(value) > 10:
        return f"a {'list' if isinstance(value, list) else 'map'} of {len(value)} items"
    try:
        text = yaml.safe_dump(value, default_flow_style=True, width=1_000_000).strip()
    except (yaml.YAMLError, RecursionError, ValueError):
        return "a list" if isinstance(value, list) else "a map"
    text = text.removesuffix("...").strip()
    return text if len(text) <= 60 else text[:57] + "..."


def _yaml_kind(value: Any) -> str | None:
    """What YAML read a plain value written without quotes as, when it is not text."""
    import datetime

    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (datetime.date, datetime.datetime)):
        return "a date"
    if isinstance(value, (int, float)):
        return "a number"
    if value is None:
        return "null (no value)"
    return None


def _got(value: Any, expected_text: bool) -> str:
    """``got …`` for a message, with what YAML made of the value when that explains the mistake."""
    shown = _shown(value)
    kind = _yaml_kind(value)
    if kind is not None and expected_text and value is not None:
        return f"got {shown}, which YAML reads as {kind}: put it in quotes to keep it text"
    if isinstance(value, bool):
        return f"got {shown} (YAML reads yes, no, on and off as true and false)"
    if kind == "a date":
        return f"got {shown} (a date)"
    return f"got {shown}"


def _data_path(data: Any, loc: tuple[Any, ...], missing: bool) -> tuple[tuple[Any, ...], bool, bool]:
    """The part of pydantic's ``loc`` that are keys and indexes of the data, whether parts were
    left out (the tags of a union's members), and whether the error is about a key itself."""
    path: list[Any] = []
    node = data
    dropped = is_key = False
    for index, part in enumerate(loc):
        if part == "[key]":
            is_key = True
        elif isinstance(node, dict) and part in node:
            path.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            path.append(part)
            node = node[part]
        elif missing and index == len(loc) - 1:
            path.append(part)
        else:
            dropped = True
    return tuple(path), dropped, is_key


def _expected(item: Any) -> str:
    """What a field takes, in words, from one of pydantic's complaints."""
    kind = item["type"]
    context = item.get("ctx") or {}
    if kind == "literal_error":
        return str(context.get("expected", "one of the listed values")).replace("'", "")
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        bound = next(iter(context.values()), "")
        words = {"greater_than_equal": "at least", "greater_than": "more than", "less_than_equal": "at most",
                 "less_than": "less than"}[kind]
        return f"a number of {words} {bound}"
    if kind in _EXPECTED:
        return _EXPECTED[kind]
    message = str(item["msg"])
    return message[len("Input should be "):] if message.startswith("Input should be ") else message


def _either(choices: list[str]) -> str:
    """``a, b or c`` from what each member of a union takes (a member may itself say ``x or y``)."""
    words = list(dict.fromkeys(word for choice in choices
                               for word in re.split(r", | or ", choice) if word))
    if "a number" in words and "a whole number" in words:
        words.remove("a whole number")
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _item_message(item: Any, path: tuple[Any, ...], is_key: bool, secret: bool) -> tuple[tuple[Any, ...], str]:
    """One pydantic complaint in the user's words, with the path it belongs at."""
    kind = item["type"]
    message = str(item["msg"])
    value = item.get("input")
    context = item.get("ctx") or {}
    if is_key:
        if kind == "literal_error":
            return path, f"unknown key {_shown(value)}; expected {_expected(item)}"
        return path, f"the key {_shown(value)} is not accepted here: expected {_expected(item)}"
    if kind == "extra_forbidden":
        message = f"unknown key {path[-1]!r}" if path else "unknown key"
        import difflib  # only for a problem: not imported by every command (2 ms)

        close = difflib.get_close_matches(str(path[-1]), _keys_at(path[:-1]), n=1, cutoff=0.75) if path else []
        if close:
            message += f"; did you mean {close[0]!r}?"
        return path, message
    if kind in ("model_type", "dict_type") and not isinstance(value, dict):
        return path, _not_a_map(path, value, "a map of settings" if kind == "model_type" else "a map")
    if kind == "missing":
        return (path[:-1] if path else path), f"missing required field {path[-1]!r}"
    if message.startswith("Value error, "):
        return path, message[len("Value error, "):]
    if kind == "too_short":
        least = context.get("min_length", 1)
        what = "URI" if secret else "value"
        if least == 1:
            return path, f"an empty list: give at least one {what}"
        return path, f"a list of at least {least} items, got {context.get('actual_length', 'fewer')}"
    if kind == "too_long":
        return path, f"a list of at most {context.get('max_length')} items, got {context.get('actual_length', 'more')}"
    if kind == "string_pattern_mismatch":
        if path and path[-1] == "max_age":
            return path, (f"invalid age {_shown(value)}: write a number and one of Y, M, D, h, m, s (7D is seven "
                          "days)")
        return path, f"{_shown(value)} is not written the way this field takes"
    expected = _expected(item)
    if secret:
        return path, f"expected {expected}"
    if isinstance(value, str) and _quoted_by_mistake(kind, value):
        return path, f"expected {expected}, got {_shown(value)} in quotes, which makes it text: remove the quotes"
    return path, f"expected {expected}, {_got(value, kind == 'string_type')}"


def _quoted_by_mistake(kind: str, value: str) -> bool:
    """Whether ``value`` (text) would be what the field takes had it been written without quotes."""
    text = value.strip()
    if kind.startswith("bool"):
        return text.lower() in ("true", "false", "yes", "no", "on", "off")
    if kind.startswith("int"):
        return re.fullmatch(r"[-+]?[0-9]{1,30}", text) is not None
    if kind.startswith("float"):
        return re.fullmatch(r"[-+]?([0-9]{1,30}(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?", text) is not None
    return False


def _pydantic_problems(document: Document, error: ValidationError) -> list[Problem]:
    from topology.model.topology import location

    problems: list[Problem] = []
    unions: dict[tuple[Any, ...], list[Any]] = {}
    for item in error.errors(include_url=False):
        path, dropped, is_key = _data_path(document.data, tuple(item["loc"]), item["type"] == "missing")
        secret = bool(_SECRET_KEYS & set(map(str, path)))
        if dropped and not is_key and item["type"] not in ("missing", "extra_forbidden"):
            unions.setdefault(path, []).append(item)  # one member of a union: said once, for all members
            continue
        path, message = _item_message(item, path, is_key, secret)
        problems.append(Problem(document.file, document.line_of(path), location(path), message))
    for path, items in unions.items():
        if any(len(other) > len(path) and other[:len(path)] == path for other in unions):
            continue  # a list member took it further: its items' problems say more
        secret = bool(_SECRET_KEYS & set(map(str, path)))
        words = [_expected(item) for item in items]
        if secret:
            words = [{"text": "a URI", "a list": "a list of URIs"}.get(w, w) for w in words]
        if len(items) == 1 and not secret:
            path, message = _item_message(items[0], path, False, secret)
        else:
            message = f"expected {_either(words)}"
            if not secret:
                message += f", {_got(items[0].get('input'), False)}"
        problems.append(Problem(document.file, document.line_of(path), location(path), message))
    return problems


def shown_path(path: str, root: str | None) -> str:
    """How output names a file: relative to ``root`` (the project file's folder) when it lies
    below it, else as given."""
    if root is None:
        return path
    full = os.path.abspath(path)
    base = os.path.abspath(root)
    if os.path.commonpath([full, base]) != base:
        return path
    return Path(os.path.relpath(full, base)).as_posix()


def load(paths: Iterable[str], variables: Variables | None = None,
         on_vhost: Callable[[str], None] | None = None, root: str | None = None) -> Topology:
    """Load, check the structure of and merge topology files; raise :class:`ConfigError` with every problem.

    ``${...}`` references take their values from ``variables`` (default: the environment only);
    ``on_vhost``: see :func:`parse_file`; ``root``: the files are named relative to it in
    problems and origins (:func:`shown_path`)."""
    from topology.model.specs import build_file
    from topology.model.topology import Topology as Merged

    files, problems = discover(paths)
    problems = [replace(p, file=shown_path(p.file, root)) for p in problems]
    variables = variables if variables is not None else Variables()
    topology: Topology | None = None
    sources: dict[str, str] = {}
    for file in files:
        name = shown_path(file, root)
        sources[name] = file
        document = parse_file(file, problems, variables, on_vhost, name=name)
        if document is None:
            continue
        topology = topology or Merged()
        parsed = None if document.substituted else build_file(document.data)
        if parsed is None:
            from pydantic import ValidationError as Invalid

            from topology.model.format import NO_REFERENCES, TopologyFile as FileModel

            try:
                parsed = FileModel.model_validate(document.data, context=None if document.substituted else NO_REFERENCES)
            except Invalid as error:
                problems.extend(_pydantic_problems(document, error))
                continue
        _merge(topology, parsed, document, problems, variables)
    if problems:
        raise ConfigError(problems)
    if topology is None:
        topology = Merged()
    topology.sources = sources
    return topology


def load_valid(paths: Iterable[str], values: Iterable[str] = (), secret_names: Iterable[str] = (),
               *, offline: bool = False, template: bool = False,
               on_vhost: Callable[[str], None] | None = None, root: str | None = None) -> Topology:
    """Load and validate the files, with ``${...}`` variables from the environment and the
    ``values`` files (``secret_names``: more secret variables; ``offline``: an undefined
    secret stands as ``${NAME}``; ``template``: every secret stands so, see
    :attr:`Variables.template`; ``on_vhost``: see :func:`parse_file`; ``root``: see :func:`load`);
    raise :class:`~topology.errors.ConfigError` with every problem."""
    from topology.collector import paused
    from topology.validate import validate
    from topology.variables import load_values

    variables = Variables(secret_names=frozenset(secret_names), offline=offline or template, template=template)
    problems = load_values(values, variables)
    if problems:
        raise ConfigError([replace(p, file=shown_path(p.file, root)) for p in problems])
    with paused():  # what is built here lives to the end of the command (topology.collector)
        topology = load(paths, variables, on_vhost, root)
        validate(topology)
    return topology


def _merge(topology: Topology, parsed: TopologyFile, document: Document, problems: list[Problem],
           variables: Variables) -> None:
    from topology.model.topology import NAMED_SECTIONS, Declared, Origin, VhostTopology, location

    file = document.file

    topology.lines[file] = lines = document.lines
    if document.more_lines is not None:
        topology.more_lines[file] = document.more_lines  # it holds the text, not the document's data

    def origin(*path: Any) -> Origin:
        return Origin(file, document.line_of(path), path)

    for vhost_name, vhost in parsed.vhosts.items():
        base = ("vhosts", vhost_name)
        merged = topology.vhosts.get(vhost_name)
        if merged is None:
            merged = topology.vhosts[vhost_name] = VhostTopology(vhost_name, origin(*base))
        for attribute in ("description", "tags", "default_queue_type", "tracing", "limits"):
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
        for kind in NAMED_SECTIONS:
            target = getattr(merged, kind)
            section = base + (kind,)
            for name, spec in getattr(vhost, kind).items():
                path = section + (name,)
                here = Origin(file, lines.get(path) or document.line_of(path), path)  # origin(), inline: once per object
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
        merged.declared_sections.update(OPT_IN_SECTIONS & vhost.model_fields_set)
        _check_uris(vhost, base, document, topology, problems)
        section = base + ("bindings",)
        for index, binding in enumerate(vhost.bindings):
            path = section + (index,)
            merged.bindings.append(Declared(binding, Origin(file, lines.get(path) or document.line_of(path), path)))
        for index, pattern in enumerate(vhost.ignore):
            merged.ignore.append(Declared(pattern, origin(*base, "ignore", index)))
    def first_time(target: dict[str, Declared[Any]], section: str, name: str, twice: str) -> bool:
        """Whether ``name`` is new in ``target`` (cluster-wide maps merged across files); else a problem."""
        if name in target:
            here = origin(section, name)
            problems.append(Problem(file, here.line, location((section, name)), f"{twice} (also at {target[name].origin})"))
            return False
        return True

    if parsed.manage_all_users is not None:
        here = origin("manage_all_users")
        if topology.manage_all_users is not None:
            problems.append(Problem(file, here.line, "manage_all_users", f"set twice (also at {topology.manage_all_users.origin})"))
        else:
            topology.manage_all_users = Declared(parsed.manage_all_users, here)
    for index, pattern in enumerate(parsed.ignore_users):
        topology.ignore_users.append(Declared(pattern, origin("ignore_users", index)))
    if "global_parameters" in parsed.model_fields_set:
        topology.global_parameters_named = True
    for parameter, value in parsed.global_parameters.items():
        if first_time(topology.global_parameters, "global_parameters", parameter, "set twice"):
            topology.global_parameters[parameter] = Declared(value, origin("global_parameters", parameter))
    for index, test in enumerate(parsed.tests):
        topology.tests.append(Declared(test, origin("tests", index)))
    for user_name, user in parsed.users.items():
        here = origin("users", user_name)
        if not first_time(topology.users, "users", user_name, "declared twice"):
            continue
        password_path = ("users", user_name, "password")
        variable = document.variables_of.get(password_path)
        if user.password is not None and not user.allow_literal_password and (
                variable is None or variables.used.get(variable) not in ("environment", OFFLINE)):
            why = ("a literal password in a file" if variable is None
                   else f"the password comes from {variable}, set in {variables.used.get(variable)}, not the environment")
            problems.append(Problem(
                file, document.line_of(password_path), location(password_path),
                f"{why}: take it from the environment (password: ${{VARIABLE}}), or set allow_literal_password: true",
            ))
            continue
        if variable is not None and user.password and variables.used.get(variable) == "environment":
            from topology import redact

            redact.register(user.password, variable)  # a password is a secret, whatever its variable's name
        topology.users[user_name] = Declared(user, here)
        for path in (password_path, ("users", user_name, "password_hash")):
            if path in document.variables_of:
                topology.variables_of[path] = document.variables_of[path]


def _check_uris(vhost: Any, base: Path_, document: Document, topology: Topology, problems: list[Problem]) -> None:
    """Shovel and upstream URIs: a password must come from the environment, never be written in
    the file (nor in a ``:-`` default); their variables come from the environment only; every
    password is a secret from now on; templates are kept for saved plans. The URIs are read from
    the document's data, where they carry their templates also through YAML aliases and merge keys."""
    from topology import redact
    from topology.model.topology import location, value_at
    from topology.model.topology import URI_FIELDS

    if not any(getattr(vhost, section) for section in URI_FIELDS):
        return  # no URI to look at: the kinds (uri_problem's module) are not needed
    from topology.kinds.parameter import uri_problem

    for section, fields in URI_FIELDS.items():
        for name, spec in getattr(vhost, section).items():
            for field_name in fields:
                value = getattr(spec, field_name)
                raw_value = value_at(document.data, base + (section, name, field_name))
                uris = [value] if isinstance(value, str) else list(value)
                for index, uri in enumerate(uris):
                    path = base + (section, name, field_name) + (() if isinstance(value, str) else (index,))
                    raw = raw_value if isinstance(value, str) else value_at(raw_value, (index,))
                    template = getattr(raw, "template", None)
                    origins = getattr(raw, "origins", {})
                    message = uri_problem(template if template is not None else uri, uri)
                    elsewhere = sorted(n for n, where in origins.items() if where not in ("environment", "default", OFFLINE))
                    if message is None and elsewhere:
                        message = (f"{elsewhere[0]} is set in {origins[elsewhere[0]] or 'no place'}: the variables of a "
                                   "URI come from the environment only")
                    if message is not None:
                        problems.append(Problem(document.file, document.line_of(path), location(path), message))
                    redact.register_url(uri)
                    if template is not None:
                        topology.templates[path] = template
