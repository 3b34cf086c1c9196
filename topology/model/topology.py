"""The merged desired state: every file's vhosts combined, each object with its origin."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from topology.model.format import (Binding, Exchange, FederationUpstream, Policy, Queue, QueueType, Shovel,
                                       UpstreamSetMember, User)

T = TypeVar("T")


@dataclass(frozen=True)
class Origin:
    """Where an object was declared: file, line (1-based; 0 when unknown) and YAML path."""

    file: str
    line: int
    path: tuple[Any, ...] = ()

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


NAMED_SECTIONS = {"exchanges": "exchange", "queues": "queue", "policies": "policy", "operator_policies": "operator policy",
                  "shovels": "shovel", "federation_upstreams": "federation upstream",
                  "federation_upstream_sets": "federation upstream set"}
"""The sections of a vhost in the files that hold objects by name, with how one of them is called."""


def location(path: Iterable[Any]) -> str:
    """A readable place in the format, e.g. ``vhost 'shop' queue 'orders.created' message_ttl``."""
    path = list(path)
    parts: list[str] = []
    if len(path) >= 2 and path[0] == "vhosts":
        parts.append(f"vhost {path[1]!r}")
        rest = path[2:]
        singular = {**NAMED_SECTIONS, "bindings": "binding"}
        if len(rest) >= 2 and rest[0] in singular:
            name = f"#{rest[1] + 1}" if rest[0] == "bindings" and isinstance(rest[1], int) else repr(rest[1])
            parts.append(f"{singular[rest[0]]} {name}")
            rest = rest[2:]
        if rest:
            parts.append(_dotted(rest))
    elif len(path) >= 2 and path[0] == "users":
        parts.append(f"user {path[1]!r}")
        if path[2:]:
            parts.append(_dotted(path[2:]))
    elif len(path) >= 2 and path[0] == "tests" and isinstance(path[1], int):
        parts.append(f"test #{path[1] + 1}")
        if path[2:]:
            parts.append(_dotted(path[2:]))
    else:
        parts.append(_dotted(path))
    return " ".join(parts)


def _dotted(path: Iterable[Any]) -> str:
    """Keys joined with dots; a list item is counted from 1 (``tags #2``, ``uri #1``)."""
    text, after_item = "", False
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"{' ' if text else ''}#{part + 1}"
            after_item = True
        else:
            text += f"{' ' if after_item else '.' if text else ''}{part}"
            after_item = False
    return text


def matching_ignore(name: str, patterns: Iterable[str]) -> str | None:
    """The first ignore pattern that matches ``name`` (shell-style, case-sensitive), or ``None``."""
    return next((p for p in patterns if p.strip() and fnmatchcase(name, p)), None)


URI_FIELDS = {"shovels": ("source_uri", "destination_uri"), "federation_upstreams": ("uri",)}
"""The URI fields of each vhost section of the files (their passwords come from the environment)."""


def value_at(data: Any, path: Iterable[Any]) -> Any:
    """The value at ``path`` in nested maps and lists, or ``None`` when there is none."""
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


@dataclass(frozen=True)
class Declared(Generic[T]):
    """A declared object with the place it came from."""

    spec: T
    origin: Origin


@dataclass
class VhostTopology:
    """One vhost as declared across all files."""

    name: str
    origin: Origin
    description: str | None = None
    tags: list[str] | None = None
    default_queue_type: QueueType | None = None
    tracing: bool | None = None
    limits: dict[str, int] | None = None
    exchanges: dict[str, Declared[Exchange]] = field(default_factory=dict)
    queues: dict[str, Declared[Queue]] = field(default_factory=dict)
    bindings: list[Declared[Binding]] = field(default_factory=list)
    policies: dict[str, Declared[Policy]] = field(default_factory=dict)
    operator_policies: dict[str, Declared[Policy]] = field(default_factory=dict)
    shovels: dict[str, Declared[Shovel]] = field(default_factory=dict)
    federation_upstreams: dict[str, Declared[FederationUpstream]] = field(default_factory=dict)
    federation_upstream_sets: dict[str, Declared[list[UpstreamSetMember]]] = field(default_factory=dict)
    ignore: list[Declared[str]] = field(default_factory=list)
    declared_sections: set[str] = field(default_factory=set)
    """The opt-in sections a file names for this vhost, even empty (operator_policies, shovels,
    federation_upstreams, federation_upstream_sets): only there are the broker's own listed and pruned."""
    """Name patterns of objects left alone (never pruned, not listed as unmanaged)."""
    attribute_origins: dict[str, Origin] = field(default_factory=dict)
    """Where each vhost attribute (description, tags, default_queue_type, tracing, limits) was set."""


@dataclass
class Topology:
    """The whole desired state, keyed by vhost name."""

    vhosts: dict[str, VhostTopology] = field(default_factory=dict)
    users: dict[str, Declared[User]] = field(default_factory=dict)
    global_parameters: dict[str, Declared[Any]] = field(default_factory=dict)
    global_parameters_named: bool = False
    """A file names ``global_parameters:`` (even empty): the broker's others are then listed and pruned."""
    manage_all_users: Declared[bool] | None = None
    """Set: the files declare every user of the broker (docs/reference/file-format.md, users)."""
    ignore_users: list[Declared[str]] = field(default_factory=list)
    tests: list[Declared[Any]] = field(default_factory=list)
    """Routing tests (:class:`~topology.model.RoutingTest`), in file order."""
    variables_of: dict[tuple[Any, ...], str] = field(default_factory=dict)
    """The ``${VARIABLE}`` that gave a user's password, by YAML path (saved plans name it)."""
    templates: dict[tuple[Any, ...], str] = field(default_factory=dict)
    """Shovel and upstream URIs as written, with their ``${...}`` references, by YAML path
    (a saved plan holds these and substitutes them again from the environment)."""
    warnings: list[Any] = field(default_factory=list)
    """What validation found that RabbitMQ accepts but is likely a mistake (:class:`~topology.errors.Problem`)."""
    lines: dict[str, dict[tuple[Any, ...], int]] = field(default_factory=dict, repr=False)
    """Per file, the line of every YAML key path (for locating problems); see :meth:`lines_of`."""
    more_lines: dict[str, Callable[[], dict[tuple[Any, ...], int]]] = field(default_factory=dict, repr=False)
    """The files whose :attr:`lines` hold those of the objects only, each with what reads the
    others (:attr:`topology.loader.Document.more_lines`)."""
    sources: dict[str, str] = field(default_factory=dict, repr=False)
    """Per file as origins name it (relative to the project file's folder in target mode), the path
    it was read from."""

    def lines_of(self, file: str) -> dict[tuple[Any, ...], int]:
        """The line of every key path of ``file`` (those below its objects read now if they were left out)."""
        more = self.more_lines.pop(file, None)
        if more is not None:
            self.lines[file].update(more())
        return self.lines.get(file, {})

    def line_of(self, origin: Origin, *subpath: Any) -> int:
        """The line of ``subpath`` below the object at ``origin`` (the object's own line if absent)."""
        lines = self.lines.get(origin.file, {})
        path = origin.path + subpath
        if subpath and path not in lines and origin.file in self.more_lines:
            lines = self.lines_of(origin.file)
        while len(path) > len(origin.path):
            if path in lines:
                return lines[path]
            path = path[:-1]
        return origin.line
