"""The project file (``topology.toml``): named targets, each a broker with its files and values.

```toml
secrets = ["ORDERS_SVC_PASS"]          # more secret variable names (optional)

[defaults]                             # what every target takes unless it says otherwise
files = ["topology/"]
values = ["values/common.yaml"]

[targets.prod]
url = "https://rabbit.prod.example:15671"
user_env = "RABBIT_PROD_USER"          # or: user = "deployer"
password_env = "RABBIT_PROD_PASSWORD"
amqp_url = "amqps://rabbit.prod.example:5671/"
values = ["values/common.yaml", "values/prod.yaml"]
tls = { ca = "certs/prod-ca.pem", cert = "certs/client.pem", key = "certs/client.key" }
```

Relative paths are relative to the project file. Credentials are never written in it:
only the names of the environment variables that hold them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from topology.errors import TopologyError
from topology.variables import NAME_RE
from topology.rules.versions import parse_given_version

PROJECT_FILE = "topology.toml"
TARGET_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")


class ProjectError(TopologyError):
    """The project file is missing, unreadable or invalid, or names a target that is not in it."""


@dataclass(frozen=True)
class TlsSettings:
    """TLS for the management API and AMQP: verification is on unless turned off."""

    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    verify: bool = True


@dataclass(frozen=True)
class Target:
    """One broker and what applies to it, with paths resolved and credential variables named."""

    name: str
    url: str
    amqp_url: str | None
    files: tuple[str, ...]
    values: tuple[str, ...]
    user: str | None
    user_env: str | None
    password_env: str | None
    timeout: float | None
    tls: TlsSettings
    broker_version: tuple[int, ...] | None = None
    """The version the project file says the target runs (offline commands check against it)."""

    def credentials(self, environment: dict[str, str] | None = None) -> tuple[str | None, str | None]:
        """(user, password) from the environment variables the target names (``None`` where it names none)."""
        environment = dict(os.environ) if environment is None else environment
        user = self.user
        if self.user_env is not None:
            user = environment.get(self.user_env) or None
            if user is None:
                raise ProjectError(f"target {self.name}: the environment variable {self.user_env} (user_env) is not set")
        password = None
        if self.password_env is not None:
            password = environment.get(self.password_env) or None
            if password is None:
                raise ProjectError(f"target {self.name}: the environment variable {self.password_env} (password_env) is not set")
        return user, password


@dataclass(frozen=True)
class Project:
    path: str
    targets: dict[str, Target]
    secrets: frozenset[str]

    def target(self, name: str) -> Target:
        if name not in self.targets:
            known = ", ".join(sorted(self.targets)) or "none"
            raise ProjectError(f"no target {name!r} in {self.path} (targets: {known})")
        return self.targets[name]


def find_project(start: str | None = None) -> str | None:
    """The nearest ``topology.toml`` in the current directory or above it."""
    directory = Path(start or os.getcwd()).resolve()
    for candidate in (directory, *directory.parents):
        path = candidate / PROJECT_FILE
        if path.is_file():
            return str(path)
    return None


def load_project(path: str) -> Project:
    """Read and check a project file; raise :class:`ProjectError` with one clear line."""
    import tomllib

    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as error:
        raise ProjectError(f"cannot read the project file {path}: {error.strerror or error}") from None
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")  # the byte-order mark some editors write
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise ProjectError(f"{path}:{line}: not UTF-8 text (save the project file as UTF-8)") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ProjectError(_toml_problem(path, str(error))) from None
    except RecursionError:
        raise ProjectError(f"{path}: invalid TOML: arrays or tables are nested too deeply") from None
    _refuse_literal_secrets(path, data)
    from pydantic import ValidationError

    from topology.project_settings import ProjectSettings  # pydantic: imported only for a project file

    try:
        settings = ProjectSettings.model_validate(data)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        more = f" (and {error.error_count() - 1} more problem(s))" if error.error_count() > 1 else ""
        raise ProjectError(f"{path}: {_settings_problem(first)}{more}") from None
    base = Path(path).resolve().parent
    for name in settings.secrets:
        if not NAME_RE.match(name):
            raise ProjectError(f"{path}: secrets: {name!r} is not a variable name")
    for name in settings.targets:
        if not TARGET_NAME_RE.match(name):
            raise ProjectError(f"{path}: targets.{name}: a target name is letters, digits, '.', '_' and '-', "
                               "starting with a letter or digit (it goes into file names)")
    if not settings.targets:
        raise ProjectError(f"{path}: targets: the project file names no target ([targets.NAME] with a url)")
    targets = {name: _target(name, spec, settings.defaults, base, path) for name, spec in settings.targets.items()}
    return Project(path=path, targets=targets, secrets=frozenset(settings.secrets))


_TOML_PLACE = re.compile(r"(?P<reason>.*) \(at (?:line (?P<line>\d+), column (?P<column>\d+)|end of document)\)\Z", re.S)

# The TOML reader's reasons (by how they start), in words that say what to write instead.
_TOML_REASONS: tuple[tuple[str, str], ...] = (
    ("Invalid value", 'a value that is not TOML (text needs quotes: url = "http://…"; an array is ["a", "b"])'),
    ("Cannot overwrite a value", "the key is set twice"),
    ("Cannot declare", "the table {table} is declared twice, or its keys were already set above"),
    ("Cannot redefine namespace", "the table {table} is declared twice, or its keys were already set above"),
    ("Cannot mutate immutable namespace", "a table written inline (tls = { … }) cannot get more keys later: "
                                          "put them all inside its { }"),
    ("Duplicate inline table key", "a key is set twice inside one { … } table"),
    ("Expected '=' after a key", "a key without '= value'"),
    ("Expected newline or end of document after a statement", "more text after the value: one key = value per line"),
    ("Invalid statement", "a line that is neither key = value nor a [table] header"),
    ("Invalid initial character for a key part", "a key is letters, digits, '_' and '-', or text in quotes"),
    ("Unclosed array", "an array opened with [ is not closed with ] (or a ',' is missing between its items)"),
    ("Unclosed inline table", "a table opened with { is not closed with } on its line "
                              "(or a ',' is missing between its keys)"),
    ("Expected ']' at the end of a table declaration", "a [table] header is not closed with ]"),
    ("Expected ']]' at the end of an array declaration", "an [[array]] header is not closed with ]]"),
    ("Unterminated string", "a quoted text is not closed"),
    ("Illegal character '\\n'", "a quoted text is not closed on its line"),
    ("Illegal character", "a control character is not allowed in text (write it as \\uXXXX inside double quotes)"),
    ("Found invalid character", "a control character is not allowed in a comment"),
    ("Expected '", "a text block opened with ''' or \"\"\" is not closed"),
    ("Unescaped '\\' in a string", "a backslash in double quotes: write \\\\ for a backslash, or use single quotes"),
    ("Invalid hex value", "an invalid \\u or \\U escape in double quotes"),
    ("Escaped character is not a Unicode scalar value", "an invalid \\u or \\U escape in double quotes"),
    ("Invalid date or datetime", "an invalid date or time"),
)


def _toml_problem(path: str, error: str) -> str:
    """``file:line: invalid TOML at column C: what to fix``, from the TOML reader's message."""
    found = _TOML_PLACE.match(error)
    reason = found["reason"] if found else error.split("\n", 1)[0]
    words = next((text for start, text in _TOML_REASONS if reason.startswith(start)), None)
    if words is None:
        words = reason[:1].lower() + reason[1:]
    elif "{table}" in words:
        names = re.findall(r"'((?:[^'\\]|\\.)*)'", reason)
        words = words.replace("{table}", f"[{'.'.join(names)}]" if names else "")
    if found is None:
        return f"{path}: invalid TOML: {words}"
    if found["line"] is None:
        if reason.startswith("Invalid value"):
            words = "the file ends where a value belongs (is it cut short?)"
        return f"{path}: invalid TOML at the end of the file: {words}"
    return f"{path}:{found['line']}: invalid TOML at column {found['column']}: {words}"


def _toml_text(value: Any) -> str:
    """A value as it is written in TOML (for 'got …')."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"' if len(value) <= 60 else "a long text"
    if isinstance(value, (int, float)):
        return str(value).lower()
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return "a date or time" if hasattr(value, "isoformat") else "a value"


# What a key expects, for the keys whose value is not plain text.
_EXPECTED: dict[str, str] = {
    "targets": "a table of targets ([targets.NAME] with a url)",
    "defaults": "a [defaults] table",
    "files": 'an array of paths (files = ["topology/"])',
    "values": 'an array of paths (values = ["values/common.yaml"])',
    "secrets": 'an array of variable names (secrets = ["NAME"])',
    "timeout": "a number of seconds (timeout = 30)",
    "verify": "true or false",
}

_LIMITS = {"greater_than": "more than", "greater_than_equal": "at least", "less_than": "less than",
           "less_than_equal": "at most"}


def _settings_problem(problem: dict[str, Any]) -> str:
    """``where: what is wrong``, for one problem found in the project file's settings."""
    loc = [part for part in problem["loc"] if isinstance(part, (str, int))]
    keys = [part for part in loc if isinstance(part, str)]
    items = [part for part in loc if isinstance(part, int)]
    where = ".".join(keys) + (f" (item {items[-1] + 1})" if items else "")
    key = keys[-1] if keys else ""
    kind = problem["type"]
    got = f", got {_toml_text(problem['input'])}" if "input" in problem else ""
    if kind == "extra_forbidden":
        message = "unknown key"
    elif kind == "missing":
        message = "missing"
    elif kind == "value_error":
        message = problem["msg"].removeprefix("Value error, ")
    elif kind in _LIMITS:
        bound = next(iter((problem.get("ctx") or {}).values()), "")
        bound = int(bound) if isinstance(bound, float) and bound.is_integer() else bound
        message = f"must be {_LIMITS[kind]} {bound}{' seconds' if key == 'timeout' else ''}{got}"
    elif len(loc) == 2 and loc[0] == "targets" and kind in ("model_type", "dict_type"):
        message = f"expected a [targets.{loc[1]}] table with a url{got}"
    elif key == "tls" and kind in ("model_type", "dict_type"):
        table = f"{keys[0]}.{keys[1]}.tls" if keys[0] == "targets" and len(keys) > 2 else f"{keys[0]}.tls"
        message = f'expected a table (tls = {{ ca = "certs/ca.pem" }}, or a [{table}] table){got}'
    elif items and key in ("files", "values"):
        message = f"expected a path in quotes{got}"
    elif items and key == "secrets":
        message = f"expected a variable name in quotes{got}"
    elif key in _EXPECTED:
        message = f"expected {_EXPECTED[key]}{got}"
    elif kind in ("bool_type", "bool_parsing"):
        message = f"expected true or false{got}"
    elif kind in ("float_type", "int_type", "finite_number"):
        message = f"expected a number{got}"
    else:
        message = f"expected text in quotes{got}"
    return f"{where}: {message}" if where else message


def _table(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _refuse_literal_secrets(path: str, data: dict[str, Any]) -> None:
    sections = [("defaults", data.get("defaults"))] + [
        (f"targets.{name}", spec) for name, spec in _table(data.get("targets")).items() if isinstance(spec, dict)
    ]
    for where, section in sections:
        if isinstance(section, dict) and "password" in section:
            raise ProjectError(
                f"{path}: {where}.password: a password is never written in the project file; "
                "name the environment variable that holds it: password_env = \"NAME\""
            )
        for key in ("url", "amqp_url"):
            value = section.get(key) if isinstance(section, dict) else None
            if isinstance(value, str) and "@" in value.split("//", 1)[-1].split("/", 1)[0]:
                raise ProjectError(
                    f"{path}: {where}.{key}: a URL in the project file must not hold credentials; "
                    "use user_env and password_env"
                )


def _target(name: str, spec: Any, defaults: Any, base: Path, path: str) -> Target:
    """The target ``name`` of the project file ``path`` from its settings and the defaults
    (:mod:`topology.project_settings`)."""
    def pick(key: str) -> Any:
        own = getattr(spec, key)
        return own if own is not None else getattr(defaults, key)

    if spec.user is not None or spec.user_env is not None:  # the target's own way of naming the user wins
        defaults = defaults.model_copy(update={"user": None, "user_env": None})

    def resolve(paths: list[str] | None) -> tuple[str, ...]:
        return tuple(str(base / p) if not os.path.isabs(p) else p for p in paths or ())

    tls = pick("tls") or TlsSettings()
    tls = TlsSettings(
        ca=resolve([tls.ca])[0] if tls.ca else None,
        cert=resolve([tls.cert])[0] if tls.cert else None,
        key=resolve([tls.key])[0] if tls.key else None,
        verify=tls.verify,
    )
    if tls.key and not tls.cert:
        raise ProjectError(f"{path}: targets.{name}.tls: a client key needs its certificate (cert)")
    if pick("user") is not None and pick("user_env") is not None:
        raise ProjectError(f"{path}: targets.{name}: give user or user_env, not both")
    return Target(
        name=name, url=spec.url, amqp_url=spec.amqp_url, files=resolve(pick("files")), values=resolve(pick("values")),
        user=pick("user"), user_env=pick("user_env"), password_env=pick("password_env"), timeout=pick("timeout"),
        tls=tls, broker_version=parse_given_version(pick("broker_version")) if pick("broker_version") else None,
    )
