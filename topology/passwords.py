"""RabbitMQ password hashes, computed and checked locally (pure).

RabbitMQ stores ``base64(salt + H(salt + password))`` with a 4-byte random salt, where H
is the user's ``hashing_algorithm`` (``rabbit_password_hashing_sha256`` by default since
3.6, ``_sha512``, or the legacy ``_md5``). The tool never reads a password back: it
hashes the declared password with the stored salt and compares, and it sets passwords
as a hash made here, so the plain password never crosses the wire.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import replace

from topology.kinds import PASSWORD_CHANGED, PASSWORD_SET, UserState
from topology.state import State

SHA256, SHA512, MD5 = "rabbit_password_hashing_sha256", "rabbit_password_hashing_sha512", "rabbit_password_hashing_md5"
ALGORITHMS = {SHA256: hashlib.sha256, SHA512: hashlib.sha512, MD5: hashlib.md5}
DEFAULT_ALGORITHM = SHA256
SALT_BYTES = 4


def password_hash(password: str, algorithm: str = DEFAULT_ALGORITHM, salt: bytes | None = None) -> str:
    """The ``password_hash`` RabbitMQ would store for ``password`` (a random salt unless given)."""
    digest = ALGORITHMS[algorithm]
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    return base64.b64encode(salt + digest(salt + password.encode("utf-8")).digest()).decode("ascii")


def digest_size(algorithm: str | None) -> int | None:
    """Bytes of a hash's digest for ``algorithm`` (``None``: unknown)."""
    digest = ALGORITHMS.get(algorithm or DEFAULT_ALGORITHM)
    return digest().digest_size if digest else None


def matches(password: str, stored_hash: str, algorithm: str | None) -> bool:
    """Whether ``password`` is the one behind ``stored_hash`` (False for an unknown algorithm or a malformed hash)."""
    digest = ALGORITHMS.get(algorithm or MD5)  # RabbitMQ reads a user without an algorithm as md5
    if digest is None or not stored_hash:
        return False
    try:
        raw = base64.b64decode(stored_hash, validate=True)
    except ValueError:
        return False
    salt, expected = raw[:SALT_BYTES], raw[SALT_BYTES:]
    if len(expected) != digest().digest_size:
        return False
    return hmac.compare_digest(digest(salt + password.encode("utf-8")).digest(), expected)


def resolve_passwords(desired: State, live: State) -> None:
    """Give each declared user's password token its meaning against the broker: ``set``
    when the declared password (or hash) is the one the broker stores, ``changed`` when
    not; an undeclared password keeps the broker's token (it is left as it is)."""
    for key, user in list(desired.objects.items()):
        if not isinstance(user, UserState):
            continue
        have = live.objects.get(key)
        if not user.managed_password:
            token = have.password if isinstance(have, UserState) else None
        elif have is None:
            token = PASSWORD_SET
        else:
            stored, algorithm = live.password_hashes.get(user.user, ("", None))
            if user.hashing_algorithm is not None and user.hashing_algorithm != (algorithm or MD5):
                same = False
            elif user.declared_hash is not None:
                same = user.declared_hash == stored
            else:
                same = user.secret is not None and matches(user.secret, stored, algorithm)
            token = PASSWORD_SET if same else PASSWORD_CHANGED
        desired.objects[key] = replace(user, password=token)
