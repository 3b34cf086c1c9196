"""Users (cluster-wide), their permissions and topic permissions."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from topology.kinds.base import PASSWORD_CHANGED, PASSWORD_SET, Resource
from topology.kinds.vhost import tag_list
from topology.model.topology import Origin


@dataclass(frozen=True)
class UserState(Resource):
    """A user (cluster-wide: :attr:`vhost` is empty). Its password is compared as a token:
    ``set`` (it has one, and a declared one matches), ``changed`` (a declared one does not
    match), ``None`` (none)."""

    kind: ClassVar[str] = "user"
    section: ClassVar[str] = "users"
    vhost: str = ""
    user: str = ""
    tags: tuple[str, ...] = ()
    password: str | None = None
    limits: dict[str, int] = field(default_factory=dict, hash=False)
    managed_password: bool = field(default=False, compare=False)
    """The files declare a password (or hash); otherwise it is left as it is."""
    password_variable: str | None = field(default=None, compare=False)
    """The environment variable the password comes from (saved plans read it again)."""
    secret: str | None = field(default=None, compare=False, repr=False)
    """The plain password, to hash when applying; never compared, printed or saved."""
    declared_hash: str | None = field(default=None, compare=False, repr=False)
    """A declared password hash; like the password, never printed or saved in a plan."""
    hash_variable: str | None = field(default=None, compare=False)
    """The environment variable the declared hash comes from."""
    hashing_algorithm: str | None = field(default=None, compare=False)

    @property
    def key(self) -> tuple[Any, ...]:
        return ("user", "", self.user)

    @property
    def name(self) -> str:
        return self.user

    def props(self) -> dict[str, Any]:
        return {"tags": list(self.tags), "password": self.password, "limits": self.limits}

    def end_props(self) -> dict[str, Any]:
        """A ``changed`` password reads ``set`` once it is applied."""
        props = self.props()
        if props["password"] == PASSWORD_CHANGED:
            props["password"] = PASSWORD_SET
        return props

    def password_note(self, created: bool) -> str | None:
        """What a plan says of the password when the files declare none (``None`` when they do):
        an existing user's is left as it is; a new user is created without one (RabbitMQ then
        refuses every password it is given: it can log in only by other means, a certificate)."""
        if self.managed_password:
            return None
        if created:
            return "password: none (none declared: it cannot log in with a password until one is set)"
        return "password: left as it is (none declared)"

    def identity(self) -> dict[str, Any]:
        return {"vhost": "", "name": self.user, "managed_password": self.managed_password,
                "password_variable": self.password_variable, "hashing_algorithm": self.hashing_algorithm}

    @classmethod
    def declared(cls, topology: Any) -> Iterator[tuple[UserState, Any]]:
        """The declared users. The password token is ``set`` here; :func:`topology.engine`
        compares it with the broker's hash before diffing."""
        for name, declared in topology.users.items():
            spec = declared.spec
            managed = spec.password is not None or spec.password_hash is not None
            yield cls(
                user=name, tags=tuple(sorted(set(spec.tags))), password=PASSWORD_SET if managed else None,
                limits=dict(sorted(spec.limits.items())), managed_password=managed,
                password_variable=topology.variables_of.get(("users", name, "password")),
                hash_variable=topology.variables_of.get(("users", name, "password_hash")),
                secret=spec.password, declared_hash=spec.password_hash, hashing_algorithm=spec.hashing_algorithm,
            ), declared.origin

    @classmethod
    def from_definition(cls, entry: dict[str, Any], vhost: str | None = None) -> UserState:
        """A user of ``GET /api/users`` or a definitions document: its password is ``set`` when it
        has a hash (the hash itself is kept apart by the reader, never in the object)."""
        limits = entry.get("limits") if isinstance(entry.get("limits"), dict) else {}
        return cls(user=entry["name"], tags=tuple(sorted(set(tag_list(entry.get("tags"))))),
                   password=PASSWORD_SET if entry.get("password_hash") else None,
                   limits={k: int(v) for k, v in sorted(limits.items()) if isinstance(v, (int, float))})

    def to_definition(self) -> dict[str, Any]:
        """Its definitions entry without a password (which only the renderer may write, and how)."""
        entry: dict[str, Any] = {"name": self.user, "tags": list(self.tags)}
        if self.limits:
            entry["limits"] = dict(self.limits)
        return entry

    @classmethod
    def from_plan(cls, identity: dict[str, Any], props: dict[str, Any]) -> UserState:
        return cls(user=identity["name"], tags=tuple(props.get("tags", ())), password=props.get("password"),
                   limits=dict(props.get("limits", {})), managed_password=bool(identity.get("managed_password")),
                   password_variable=identity.get("password_variable"),
                   hashing_algorithm=identity.get("hashing_algorithm"))

    def remove(self, client: Any) -> None:
        client.delete_user(self.user)


@dataclass(frozen=True)
class PermissionState(Resource):
    kind: ClassVar[str] = "permission"
    section: ClassVar[str] = "permissions"
    user: str = ""
    configure: str = ""
    write: str = ""
    read: str = ""

    @property
    def key(self) -> tuple[Any, ...]:
        return ("permission", self.vhost, self.user)

    @property
    def name(self) -> str:
        return self.user

    def props(self) -> dict[str, Any]:
        return {"configure": self.configure, "write": self.write, "read": self.read}

    @classmethod
    def declared(cls, topology: Any) -> Iterator[tuple[PermissionState, Any]]:
        for name, declared in topology.users.items():
            for vhost, permission in declared.spec.permissions.items():
                yield cls(vhost=vhost, user=name, configure=permission.configure, write=permission.write,
                          read=permission.read), \
                    Origin(declared.origin.file, topology.line_of(declared.origin, "permissions", vhost),
                           declared.origin.path + ("permissions", vhost))

    @classmethod
    def from_definition(cls, entry: dict[str, Any], vhost: str | None = None) -> PermissionState:
        return cls(vhost=entry["vhost"] if vhost is None else vhost, user=entry["user"],
                   configure=entry.get("configure", ""), write=entry.get("write", ""), read=entry.get("read", ""))

    def to_definition(self) -> dict[str, Any]:
        return {"user": self.user, "vhost": self.vhost, **self.props()}

    def body(self) -> dict[str, Any]:
        """The body of ``PUT /api/permissions/{vhost}/{user}``."""
        return {k: v for k, v in self.to_definition().items() if k not in ("user", "vhost")}

    @classmethod
    def from_plan(cls, identity: dict[str, Any], props: dict[str, Any]) -> PermissionState:
        return cls(vhost=identity["vhost"], user=identity["name"], **props)

    def declare(self, client: Any) -> None:
        client.put_permission(self.vhost, self.user, self.body())

    def remove(self, client: Any) -> None:
        client.delete_permission(self.vhost, self.user)


@dataclass(frozen=True)
class TopicPermissionState(Resource):
    kind: ClassVar[str] = "topic_permission"
    section: ClassVar[str] = "topic_permissions"
    user: str = ""
    exchange: str = ""
    write: str = ""
    read: str = ""

    @property
    def key(self) -> tuple[Any, ...]:
        return ("topic_permission", self.vhost, self.user, self.exchange)

    @property
    def name(self) -> str:
        return f"{self.user} on {self.exchange}"

    def props(self) -> dict[str, Any]:
        return {"write": self.write, "read": self.read}

    def identity(self) -> dict[str, Any]:
        return {"vhost": self.vhost, "name": self.name, "user": self.user, "exchange": self.exchange}

    @classmethod
    def declared(cls, topology: Any) -> Iterator[tuple[TopicPermissionState, Any]]:
        for name, declared in topology.users.items():
            for vhost, exchanges in declared.spec.topic_permissions.items():
                for exchange, permission in exchanges.items():
                    yield cls(vhost=vhost, user=name, exchange=exchange, write=permission.write,
                              read=permission.read), \
                        Origin(declared.origin.file, topology.line_of(declared.origin, "topic_permissions", vhost, exchange),
                               declared.origin.path + ("topic_permissions", vhost, exchange))

    @classmethod
    def from_definition(cls, entry: dict[str, Any], vhost: str | None = None) -> TopicPermissionState:
        return cls(vhost=entry["vhost"] if vhost is None else vhost, user=entry["user"],
                   exchange=entry.get("exchange", ""), write=entry.get("write", ""), read=entry.get("read", ""))

    def to_definition(self) -> dict[str, Any]:
        return {"user": self.user, "vhost": self.vhost, "exchange": self.exchange, **self.props()}

    def body(self) -> dict[str, Any]:
        """The body of ``PUT /api/topic-permissions/{vhost}/{user}``."""
        return {k: v for k, v in self.to_definition().items() if k not in ("user", "vhost")}

    @classmethod
    def from_plan(cls, identity: dict[str, Any], props: dict[str, Any]) -> TopicPermissionState:
        return cls(vhost=identity["vhost"], user=identity["user"], exchange=identity["exchange"], **props)

    def declare(self, client: Any) -> None:
        client.put_topic_permission(self.vhost, self.user, self.body())

    def remove(self, client: Any) -> None:
        client.delete_topic_permission(self.vhost, self.user, self.exchange)
