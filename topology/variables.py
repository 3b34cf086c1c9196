"""Variables in topology files: ``${VAR}`` and ``${VAR:-default}``, one topology for every environment.

A variable's value comes from the environment first, then from the ``--values`` files
(the later file wins), then from the ``:-`` default; like the shell, the default is
also taken when the value is empty. ``$${`` writes a literal ``${``.

Every value is text. A string that is exactly one reference (``max_length: ${MAX}``,
quoted or not) becomes a :class:`Substituted` string, and the models type it by what
the field expects: text where text is expected, otherwise a decimal number or a boolean
when the text is one (:func:`typed`). A secret always stays text. In raw ``arguments`` and policy
``definition`` maps, where any type goes, it is typed the same way unless tagged
``!!str``, which keeps it text. References inside longer strings always give text.

Secret variables come only from the environment: a values file that sets one, or a
file that gives one a default, is an error; their values are registered with
:mod:`topology.redact` so no output shows them.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from topology.errors import Problem
from topology.yaml_errors import yaml_problem

NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_REFERENCE_RE = re.compile(r"\$\$\{|\$\{([^}:]*)(?::-([^}]*))?\}|\$\{")

OFFLINE = "offline"
"""Where an unset secret's stand-in came from in ``validate`` (see :attr:`Variables.offline`)."""

SECRET_PATTERNS = ("*PASSWORD", "*PASSWD", "*SECRET", "*TOKEN", "*CREDENTIALS", "*PRIVATE_KEY")
"""Variable names that are secret without being declared so (case-insensitive)."""


class Substituted(str):
    """Text that was exactly one ``${...}`` reference; ``text`` when tagged ``!!str`` (never typed).

    The models turn it into the type the field expects (see the module docstring)."""

    text: bool

    def __new__(cls, value: str, text: bool = False) -> Substituted:
        result = super().__new__(cls, value)
        result.text = text
        return result


class Templated(str):
    """Text that held ``${...}`` references, partly: it keeps its :attr:`template` (the text as
    written) and where each variable's value came from (:attr:`origins`), so a shovel's URI can be
    checked and saved as written wherever YAML aliases or merge keys carried it."""

    template: str
    origins: dict[str, str]


def variable_names(text: str) -> list[str]:
    """The variables ``text`` refers to, in order (``$${`` is a literal, not a reference)."""
    return [m.group(1) for m in _REFERENCE_RE.finditer(text) if m.group(1) is not None]


def with_template(value: str, template: str, origins: dict[str, str]) -> str:
    """``value`` carrying its template and variable origins (a :class:`Substituted` keeps its own class)."""
    result = value if isinstance(value, Substituted) else Templated(value)
    result.template = template  # type: ignore[attr-defined]
    result.origins = origins  # type: ignore[attr-defined]
    return result


_INT_RE = re.compile(r"[-+]?[0-9]+\Z")
_FLOAT_RE = re.compile(r"[-+]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\Z")
_BOOLEANS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}


def typed(text: str) -> Any:
    """A variable's text as the value a number or boolean field expects: a decimal integer
    (``010`` is 10, never octal), a decimal fraction, a boolean (``true``/``false``, and
    YAML's ``yes``/``no``/``on``/``off``), ``null``/``~``/empty as nothing, else the text."""
    stripped = text.strip()
    if _INT_RE.match(stripped):
        return int(stripped, 10)
    if _FLOAT_RE.match(stripped):
        return float(stripped)
    lowered = stripped.lower()
    if lowered in _BOOLEANS:
        return _BOOLEANS[lowered]
    if lowered in ("null", "~", ""):
        return None
    return text


def is_secret_name(name: str, declared: Iterable[str] = ()) -> bool:
    """Whether a variable holds a secret: declared so, or named like one (``*PASSWORD``, ``*TOKEN``...)."""
    upper = name.upper()
    return name in set(declared) or any(fnmatch.fnmatchcase(upper, pattern) for pattern in SECRET_PATTERNS)


@dataclass(frozen=True)
class ValueSource:
    """Where a variable's value was found: ``environment``, a values file and line, or ``default``."""

    value: str
    origin: str


@dataclass
class Variables:
    """The values available to ``${...}`` references, and the secrets among them."""

    environment: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    values: dict[str, ValueSource] = field(default_factory=dict)
    """From the values files (the later file already won)."""
    secret_names: frozenset[str] = frozenset()
    """Variables declared secret, besides those named like one (:data:`SECRET_PATTERNS`)."""
    used: dict[str, str] = field(default_factory=dict)
    """Every variable a file used, with where its value came from."""
    offline: bool = False
    """``validate``: an undefined secret variable stands as ``${NAME}`` instead of failing
    (secrets live only where the tool runs against a broker)."""
    last_names: list[str] = field(default_factory=list)
    """The variables the last :meth:`substitute` referred to."""
    template: bool = False
    """``render --secrets template``: a reference in a secret place (a user's password or
    password hash, a shovel or upstream URI) or to a secret variable stands as ``${NAME}``,
    set or not; its value is never read."""

    def is_secret(self, name: str) -> bool:
        return is_secret_name(name, self.secret_names)

    def lookup(self, name: str, default: str | None) -> tuple[str | None, str]:
        """The value of ``name`` and where it came from (``None``: undefined)."""
        if self.environment.get(name, "") != "":
            return self.environment[name], "environment"
        source = self.values.get(name)
        if source is not None and source.value != "":
            return source.value, source.origin
        if default is not None:
            return default, "default"
        if name in self.environment or source is not None:
            return "", "environment" if name in self.environment else source.origin  # type: ignore[union-attr]
        return None, ""

    def substitute(self, text: str, as_text: bool = False, environment_only: bool = False,
                   secret_place: bool = False) -> tuple[Any, list[str]]:
        """``text`` with its references replaced, and the problems found (empty when fine).

        Returns a :class:`Substituted` when ``text`` is exactly one reference (``as_text``: tagged ``!!str``).
        With ``environment_only`` (shovel and upstream URIs), values come from the environment
        or the default, never from a values file, and stand as ``${NAME}`` offline. ``secret_place``:
        the text is a user's password or password hash (see :attr:`template`)."""
        if "$" not in text:
            return text, []
        problems: list[str] = []
        whole = False
        matches = list(_REFERENCE_RE.finditer(text))
        if len(matches) == 1 and matches[0].group(0) != "$${" and matches[0].span() == (0, len(text)):
            whole = True

        def replace(match: re.Match[str]) -> str:
            if match.group(0) == "$${":
                return "${"
            if match.group(0) == "${":
                problems.append("unclosed variable reference '${' (write '$${' for a literal '${')")
                return ""
            name, default = match.group(1), match.group(2)
            if not NAME_RE.match(name):
                problems.append(
                    f"bad variable reference {match.group(0)!r}: a name is letters, digits and _, "
                    "not starting with a digit"
                )
                return ""
            if self.is_secret(name) and default is not None:
                problems.append(f"secret variable {name} cannot have a default in a file: set it in the environment")
                return ""
            if self.template and (secret_place or environment_only or self.is_secret(name)):
                secret_parts.append(name)
                self.used[name] = OFFLINE
                return f"${{{name}}}"
            if environment_only:
                value, origin = ((self.environment[name], "environment") if self.environment.get(name, "") != ""
                                 else (default, "default") if default is not None else (None, ""))
            else:
                value, origin = self.lookup(name, default)
            if value is None and self.offline and (environment_only or self.is_secret(name)):
                secret_parts.append(name)
                self.used[name] = OFFLINE
                return f"${{{name}}}"
            if value is None:
                only_environment = self.is_secret(name) or environment_only
                problems.append(  # a secret, or a URI's variable, takes neither a values file nor a default
                    f"undefined variable {name}: set it in the environment"
                    + ("" if only_environment else f" or a --values file, or give a default: ${{{name}:-...}}")
                )
                return ""
            self.used[name] = origin
            if self.is_secret(name):
                secret_parts.append(name)
                if value:
                    from topology import redact

                    redact.register(value, name if origin == "environment" else None)
            return value

        secret_parts: list[str] = []
        self.last_names = variable_names(text)
        result = _REFERENCE_RE.sub(replace, text)
        if whole and not problems:
            # a secret stays text: typed, it would escape the redaction of saved plans
            return Substituted(result, as_text or environment_only or bool(secret_parts)), []
        return result, problems


def load_values(files: Iterable[str], variables: Variables) -> list[Problem]:
    """Read ``--values`` files (YAML maps of variable names to values) into ``variables``.

    Values are kept as text, exactly as written (``007`` stays ``007``); a later file
    wins. Returns the problems found."""
    problems: list[Problem] = []
    for file in files:
        try:
            with open(file, encoding="utf-8") as handle:
                text = handle.read()
        except OSError as error:
            problems.append(Problem(file, 0, "", f"cannot read the values file: {error.strerror or error}"))
            continue
        except UnicodeDecodeError:
            problems.append(Problem(file, 0, "", "the values file is not UTF-8 text"))
            continue
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as error:
            line, message = yaml_problem(text, error)
            problems.append(Problem(file, line, "", message))
            continue
        except RecursionError:
            problems.append(Problem(file, 0, "", "the values file is nested too deeply (a values file is a map of "
                                                 "variable names to single values)"))
            continue
        if node is None:
            continue
        if not isinstance(node, yaml.MappingNode):
            problems.append(Problem(file, node.start_mark.line + 1, "", "a values file is a map of variable names to values"))
            continue
        seen: dict[str, int] = {}
        for key, value in node.value:
            line = key.start_mark.line + 1
            name = key.value if isinstance(key, yaml.ScalarNode) else None
            if isinstance(name, str) and name in seen:
                problems.append(Problem(file, line, name, f"set twice in this file (also at line {seen[name]})"))
                continue
            if isinstance(name, str):
                seen[name] = line
            if not isinstance(name, str):
                problems.append(Problem(file, line, "", "a variable name must be plain text (letters, digits and _), "
                                                        "not a list or map"))
                continue
            if not NAME_RE.match(name):
                problems.append(Problem(file, line, "", f"bad variable name '{name}': letters, digits and _, not "
                                                        "starting with a digit"))
                continue
            if variables.is_secret(name):
                problems.append(Problem(file, line, name, "is a secret: secrets come only from the environment, never from a values file"))
                continue
            if not isinstance(value, yaml.ScalarNode):
                problems.append(Problem(file, line, name, "a value must be a single value (text, number or boolean), not a list or map"))
                continue
            text_value = "" if value.tag == "tag:yaml.org,2002:null" and not value.style else value.value
            variables.values[name] = ValueSource(text_value, f"{file}:{line}")
    return problems
