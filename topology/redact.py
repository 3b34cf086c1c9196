"""Keep secrets out of every output: the one place that knows what is secret.

Secrets are registered as they are read (secret variables, the management password,
the passwords of AMQP and management URLs). :func:`redact` is applied to everything
the command line prints, errors included; :func:`hide` and :func:`reveal` keep them out
of saved plans, which name the variable instead and read it back from the environment
when the plan is applied.
"""

from __future__ import annotations

import os
import re
import threading
from urllib.parse import quote, quote_plus
from collections.abc import Callable, Iterable, Iterator
from typing import Any

MASK = "***"

URL_PASSWORD_RE = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*):(?P<password>[^\s/]*)@")
"""The password of a URL: up to its last ``@`` before the path (an unencoded ``@`` may be in it)."""

QUERY_PASSWORD_RE = re.compile(r"(?P<head>[?&]password=)(?P<password>[^&#\s\"']*)")
"""A ``password=`` query parameter (an AMQP URI's key file password)."""

REFERENCES_ONLY_RE = re.compile(r"(\$\{[A-Za-z_][A-Za-z0-9_]*\})+\Z")
"""Text made only of ``${VARIABLE}`` references (a password as written in a file, never a secret)."""


def _mask_url_passwords(text: str) -> str:
    """``text`` with every URL password masked, except ``${VARIABLE}`` references (a URI as written in a file).
    Each expression is tried only on text holding what it cannot match without (an ``@``, a
    ``password=``): most output holds neither, and an apply reports each change apart (48,000
    changes are as many calls)."""
    if "@" in text:
        text = URL_PASSWORD_RE.sub(
            lambda m: m.group(0) if REFERENCES_ONLY_RE.match(m.group("password")) else f"{m.group('head')}:{MASK}@",
            text)
    if "password=" not in text:
        return text
    return QUERY_PASSWORD_RE.sub(
        lambda m: m.group(0) if REFERENCES_ONLY_RE.match(m.group("password")) or not m.group("password")
        else f"{m.group('head')}{MASK}", text)

_lock = threading.Lock()
_secrets: dict[str, str | None] = {}
"""Secret value → the environment variable it came from (None: not from a variable)."""
_in_order: list[tuple[str, str | None]] | None = None
""":data:`_secrets` as :func:`_ordered` gives them, until one is registered or forgotten."""


def register(value: str, variable: str | None = None) -> None:
    """Treat ``value`` as a secret from now on (``variable``: the environment variable holding it),
    and the forms output may give it: escaped for JSON, Python, XML and Markdown."""
    global _in_order
    if not value:
        return
    with _lock:
        _in_order = None
        if variable is not None or value not in _secrets:
            _secrets[value] = variable
        for form in _escaped_forms(value):
            _secrets.setdefault(form, None)


def _escaped_forms(value: str) -> set[str]:
    import html

    from topology.markup import markdown_forms
    import json
    from xml.sax.saxutils import escape

    forms = {
        json.dumps(value, ensure_ascii=False)[1:-1],
        json.dumps(value)[1:-1],
        repr(value)[1:-1],
        escape(value),
        escape(value, {'"': "&quot;"}),
        escape(value, {"\t": "&#9;", "\n": "&#10;", "\r": "&#13;"}),
        escape(value, {'"': "&quot;", "\t": "&#9;", "\n": "&#10;", "\r": "&#13;"}),
        html.escape(value),
        *markdown_forms(value),
        quote(value, safe=""),
        quote(value),
        quote_plus(value),
        "".join(c if c.isascii() and c.isalnum() else "".join(f"%{b:02X}" for b in c.encode()) for c in value),
        "".join(c if c.isascii() and c.isalnum() else "".join(f"%{b:02x}" for b in c.encode()) for c in value),
        *_base64_forms(value),
    }
    forms.discard(value)
    return {form for form in forms if form}


def _base64_forms(value: str) -> set[str]:
    """What ``value`` looks like inside any base64 text that encodes it (an echoed ``Basic``
    header, a token): at each of the three alignments, the characters that only its own bytes
    make (the stretch left when too short to be told apart from other text)."""
    import base64

    data, forms = value.encode("utf-8"), set()
    for offset in range(3):
        start = -(-4 * offset // 3)  # the first character made of the value's bytes alone
        end = 4 * ((offset + len(data)) // 3)  # the last complete group
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            middle = encode(b"\0" * offset + data).decode("ascii")[start:end]
            if len(middle) >= 8:
                forms.add(middle)
    return forms


def register_url(url: str | None) -> None:
    """Treat the password in a URL (``amqp://user:password@host``) as a secret."""
    if not url:
        return
    from urllib.parse import unquote

    for match in list(URL_PASSWORD_RE.finditer(url)) + list(QUERY_PASSWORD_RE.finditer(url)):
        password = match.group("password")
        if REFERENCES_ONLY_RE.match(password):  # a URI as written in a file: the variable's name, no secret
            continue
        register(password)
        register(unquote(password))


def forget_all() -> None:
    """Forget every registered secret (tests; each command is one process otherwise)."""
    global _in_order
    with _lock:
        _in_order = None
        _secrets.clear()


def _ordered() -> list[tuple[str, str | None]]:
    """The secrets, longest first (no partial leftovers), sorted once until the next change."""
    global _in_order
    with _lock:
        if _in_order is None:
            _in_order = sorted(_secrets.items(), key=lambda item: -len(item[0]))
        return _in_order


def redact(text: str) -> str:
    """``text`` with every registered secret and every URL password replaced by ``***``."""
    if not text:
        return text
    text = _mask_url_passwords(text)
    for secret, _ in _ordered():
        if secret in text:
            text = text.replace(secret, MASK)
    return text


STREAM_CHUNK = 1 << 16
"""How much text :func:`redact_pieces` gathers before it masks and passes on what it holds."""


def redact_pieces(pieces: Iterable[str], chunk: int | None = None) -> Iterator[str]:
    """The text ``pieces`` make, masked as :func:`redact` masks it whole, in chunks of whole lines
    (about ``chunk`` characters, :data:`STREAM_CHUNK` unless given) as the pieces come: a long
    document is never held whole.

    No secret and no URL password spans a line feed (:data:`URL_PASSWORD_RE` stops at white
    space), so masking line by line is masking the whole. A secret that holds a line feed could
    span two lines: while one is registered, the text is gathered whole and masked at once."""
    if any("\n" in secret for secret, _ in _ordered()):
        yield redact("".join(pieces))
        return
    chunk = chunk or STREAM_CHUNK
    held: list[str] = []
    size = 0
    for piece in pieces:
        held.append(piece)
        size += len(piece)
        if size < chunk:
            continue
        text = "".join(held)
        end = text.rfind("\n") + 1
        if end:
            yield redact(text[:end])
        held, size = [text[end:]], len(text) - end
    text = "".join(held)
    if text:
        yield redact(text)


def hide(document: Any) -> tuple[Any, list[str]]:
    """A copy of a JSON document for a file, in which each secret variable's value becomes
    ``${VARIABLE}`` (which :func:`reveal` undoes) and each URL password ``***``. Returns
    the copy and the variables it refers to. Other secrets (the management password) are
    never put in such documents, and masking them there could change names for good."""
    secrets = [(secret, variable) for secret, variable in _ordered() if variable]
    used: set[str] = set()

    def hide_in(value: str) -> str:
        value = _mask_url_passwords(value)
        for secret, variable in secrets:
            if secret in value:
                value = value.replace(secret, f"${{{variable}}}")
                used.add(variable)  # type: ignore[arg-type]
        return value

    return _map_strings(document, hide_in), sorted(used)


def reveal(document: Any, variables: list[str], environment: dict[str, str] | None = None) -> Any:
    """Undo :func:`hide` for ``variables``, reading them from the environment (and registering them).

    Raises ``KeyError`` with the name of a variable that is not set."""
    environment = dict(os.environ) if environment is None else environment
    values: dict[str, str] = {}
    for name in variables:
        if not environment.get(name):
            raise KeyError(name)
        values[f"${{{name}}}"] = environment[name]
        register(environment[name], name)

    def reveal_in(value: str) -> str:
        for placeholder, secret in values.items():
            value = value.replace(placeholder, secret)
        return value

    return _map_strings(document, reveal_in) if values else document


CHECK_COST = {"n": 2 ** 14, "r": 8, "p": 1}
"""scrypt's cost for :func:`value_checks`: tens of milliseconds and 16 MiB per guess."""

CHECK_ITERATIONS = 600_000
"""PBKDF2-SHA256 iterations, where Python's OpenSSL has no scrypt (some FIPS builds)."""


def _check_of(value: str, salt: bytes, method: str) -> str:
    import hashlib

    if method == "scrypt":
        return hashlib.scrypt(value.encode("utf-8"), salt=salt, **CHECK_COST).hex()
    return hashlib.pbkdf2_hmac("sha256", value.encode("utf-8"), salt, CHECK_ITERATIONS).hex()


def value_checks(variables: list[str]) -> dict[str, str]:
    """For each secret variable registered with its value, ``<method>$<salt>$<hash>`` of the value
    (scrypt, or PBKDF2-SHA256 where there is none), with a random salt: enough for
    :func:`check_values` to notice another value later, and slow to guess from (it is not the
    secret, nor a fast hash of it)."""
    import hashlib
    import secrets as random

    method = "scrypt" if hasattr(hashlib, "scrypt") else "pbkdf2-sha256"
    values = {variable: secret for secret, variable in _ordered() if variable}
    checks = {}
    for name in variables:
        if name in values:
            salt, used = random.token_bytes(16), method
            try:
                digest = _check_of(values[name], salt, used)
            except ValueError:  # scrypt refused its memory here
                used = "pbkdf2-sha256"
                digest = _check_of(values[name], salt, used)
            checks[name] = f"{used}${salt.hex()}${digest}"
    return checks


def check_values(checks: dict[str, Any], environment: dict[str, str] | None = None) -> str | None:
    """The first variable whose value in the environment is not the one ``checks`` were made of.
    Raises ``ValueError`` for a check this Python cannot make (scrypt missing)."""
    import hashlib
    import hmac

    environment = dict(os.environ) if environment is None else environment
    for name, check in sorted(checks.items()):
        parts = str(check).split("$")
        if len(parts) != 3 or parts[0] not in ("scrypt", "pbkdf2-sha256"):
            return name
        method, salt, expected = parts
        if method == "scrypt" and not hasattr(hashlib, "scrypt"):
            raise ValueError("this machine's Python has no scrypt, which the plan's secret checks use")
        try:
            digest = _check_of(environment.get(name, ""), bytes.fromhex(salt), method)
        except ValueError:  # not hexadecimal
            return name
        if not hmac.compare_digest(digest, expected):
            return name
    return None


def _map_strings(value: Any, change: Callable[[str], str]) -> Any:
    """A copy of a JSON document with ``change`` applied to every string, keys included."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, dict):
        return {_map_strings(k, change): _map_strings(v, change) for k, v in value.items()}
    if isinstance(value, list):
        return [_map_strings(v, change) for v in value]
    return value
