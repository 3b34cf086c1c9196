"""The plan: an ordered, frozen, serialisable list of changes, and the gates on it.

Building a plan changes nothing. It can be rendered, saved as JSON and executed by
:mod:`topology.apply`. Dangerous changes are refused here, before the first write:
:meth:`Plan.check_allowed` decides whether replacements may go ahead.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from topology import __version__, redact
from topology.broker.live import BrokerInfo
from topology.rules.queues import QUORUM_PRIORITIES_SINCE
from topology.diff import ACTIONS, AT_STAKE, DELETE, REPLACE, RESUME, Change, Diff, FieldChange
from topology.errors import PlanRefused, TopologyError
from topology.kinds import BindingState, ExchangeState, from_plan, KIND_ORDER, QueueState, Resource
from topology.migration_record import migration_queue_name
from topology.render.stream import Items, Later, compact_pieces, pieces
from topology.state import State

PLAN_FORMAT_VERSION = 1
"""Version of the JSON plan format; bumped on any incompatible change."""


@dataclass(frozen=True)
class QueueFacts:
    """What the statistics say of a queue when planning (``None``: not known yet)."""

    messages: int | None = None
    consumers: int | None = None


@dataclass(frozen=True)
class Plan:
    """What apply will do, in the order it will do it."""

    changes: tuple[Change, ...]
    unmanaged: tuple[Resource, ...] = ()
    notes: tuple[str, ...] = ()
    vhosts: tuple[str, ...] = ()
    broker: BrokerInfo | None = None
    protected: dict[tuple[Any, ...], str] = field(default_factory=dict, hash=False)
    """Why each protected unmanaged object is never pruned."""
    prune: bool = False
    """Whether objects no file declares were planned for deletion."""

    @property
    def empty(self) -> bool:
        return not self.changes

    def summary(self) -> dict[str, int]:
        counts = {action: 0 for action in ACTIONS}
        for change in self.changes:
            counts[change.action] += 1
        return counts

    @property
    def replacements(self) -> list[Change]:
        return [c for c in self.changes if c.action == REPLACE]

    def check_allowed(self, *, allow_replace: bool = False, migrate_messages: bool = False, allow_data_loss: bool = False) -> None:
        """Refuse, before anything is written, what the options do not allow."""
        hazards = [f"{c.title}: {h}" for c in self.changes for h in c.hazards]
        if hazards:
            raise PlanRefused(f"refusing changes that would break what cannot be repaired: {'; '.join(hazards)}")
        replacements = self.replacements
        loaded = [c for c in replacements if c.kind == "queue" and c.messages and not migrate_messages]
        if loaded:
            what = "; ".join(f"queue {c.vhost}/{c.name} holds {c.messages} message(s)" for c in loaded)
            raise PlanRefused(
                f"refusing to replace queues that hold messages, they would be lost: {what}. "
                "Re-run with --migrate-messages to move them into the new queue, or drain them first."
            )
        unallowed = [c for c in replacements if not (allow_replace or (migrate_messages and c.kind == "queue"))]
        if unallowed:
            what = "; ".join(f"{c.kind} {c.vhost}/{c.name} ({_loss(c)})" for c in unallowed)
            raise PlanRefused(
                f"{len(unallowed)} object(s) must be deleted and re-created: {what}. Re-run with --allow-replace "
                "(queues: or with --migrate-messages, which keeps their messages)."
            )
        doomed = [c for c in self.changes if c.action == DELETE and c.kind == "queue" and c.messages]
        if doomed and not allow_data_loss:
            what = "; ".join(f"queue {c.vhost}/{c.name} holds {c.messages} message(s)" for c in doomed)
            raise PlanRefused(
                f"refusing to delete queues that hold messages: {what}. Re-run with --allow-data-loss to delete "
                "them with their messages, or drain them first."
            )

    def to_dict(self, items: Callable[[Iterator[dict[str, Any]]], Any] = list) -> dict[str, Any]:
        """The documented JSON form of the plan (docs/reference/plan-json.md). ``items`` holds the
        changes and the unmanaged objects: a list, or what makes them one at a time as the
        document is written (:class:`topology.render.stream.Items`)."""
        summary = self.summary()
        summary["unmanaged"] = len(self.unmanaged)
        return {
            "format_version": PLAN_FORMAT_VERSION,
            "tool_version": __version__,
            "broker": self.broker.to_dict() if self.broker else None,
            "vhosts": list(self.vhosts),
            "prune": self.prune,
            "changes": items(change_to_dict(c) for c in self.changes),
            "unmanaged": items(
                {"kind": r.kind, **r.identity(), "protected": self.protected.get(r.key)} for r in self.unmanaged
            ),
            "notes": list(self.notes),
            "summary": summary,
        }


def change_to_dict(change: Change) -> dict[str, Any]:
    data: dict[str, Any] = {
        "action": change.action,
        "kind": change.kind,
        "vhost": change.vhost,
        "name": change.name,
        "identity": change.resource.identity(),
        "diff": {name: {"before": f.before, "after": f.after} for name, f in change.fields.items()},
        "reason": change.reason,
        "before": change.before.props() if change.before else None,
        "after": change.after.props() if change.after else None,
    }
    if change.action == REPLACE:
        data["rebind"] = [b.identity() for b in change.rebind]
    if change.kind == "queue" and change.action in AT_STAKE:
        data["messages"] = change.messages
    if change.action in (REPLACE, DELETE) or change.hazards:
        data["hazards"] = list(change.hazards)
    data["fingerprint"] = change.fingerprint
    return data


def change_from_dict(data: dict[str, Any]) -> Change:
    """A change as :func:`change_to_dict` wrote it."""
    kind, identity = data["kind"], data["identity"]
    # the state before needs no real URIs: only the planned one is rebuilt from its templates
    before_identity = {k: v for k, v in identity.items() if k != "uris"}
    before = from_plan(kind, before_identity, data["before"]) if data["before"] is not None else None
    after = from_plan(kind, identity, data["after"]) if data["after"] is not None else None
    if data["action"] not in ACTIONS:
        raise ValueError(f"unknown action {data['action']!r}")
    if before is None and after is None:
        raise ValueError("has neither 'before' nor 'after'")
    return Change(
        action=data["action"],
        before=before,
        after=after,
        fields={name: FieldChange(f["before"], f["after"]) for name, f in data["diff"].items()},
        reason=data["reason"],
        rebind=tuple(from_plan("binding", b, {}) for b in data.get("rebind", ())),  # type: ignore[misc]
        messages=data.get("messages"),
        hazards=tuple(data.get("hazards", ())),
        fingerprint=data["fingerprint"],
    )


def plan_digest(document: dict[str, Any]) -> str:
    """A checksum of everything in a plan file but the checksum itself (detects edits)."""
    body = {k: v for k, v in document.items() if k != "digest"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


def saved_plan(plan: Plan) -> dict[str, Any]:
    """The document ``plan --out`` writes: the JSON plan and its checksum.

    It holds no secret: a secret from an environment variable is written as
    ``${VARIABLE}`` (listed under ``secrets``) and read back when the plan is applied."""
    document, secrets = redact.hide(plan.to_dict())
    document["secrets"] = secrets
    document["secret_checks"] = redact.value_checks(secrets)
    document["digest"] = plan_digest(document)
    return document


def saved_plan_pieces(plan: Plan) -> Iterator[str]:
    """The text of :func:`saved_plan` as :func:`write_saved_plan` writes it (``json.dumps`` with
    ``indent=2``), in pieces, a change at a time. The changes are made and hidden twice: for the
    checksum (which reaches the secret variables after them, in key order) and to be written."""
    used: set[str] = set()

    def hidden(value: Any) -> Any:
        copy, variables = redact.hide(value)
        used.update(variables)
        return copy

    def document() -> dict[str, Any]:
        whole = plan.to_dict(items=lambda items: Items(hidden(item) for item in items))
        return {hidden(key): value if isinstance(value, Items) else hidden(value) for key, value in whole.items()}

    for key, value in document().items():  # what the checksum reaches after the secret variables: which it names
        if isinstance(value, Items) and key > "secret_checks":
            for _ in value:
                pass
    named: dict[str, Any] = {}

    def secrets() -> list[str]:
        if not named:  # the first of the two the checksum reaches: every variable is known by then
            named["secrets"] = sorted(used)
            named["secret_checks"] = redact.value_checks(named["secrets"])
        return named["secrets"]

    def secret_checks() -> dict[str, str]:
        secrets()
        return named["secret_checks"]

    digest = hashlib.sha256()
    body = {**document(), "secrets": Later(secrets), "secret_checks": Later(secret_checks)}
    for piece in compact_pieces(body):
        digest.update(piece.encode("utf-8"))
    yield from pieces({**document(), "secrets": named["secrets"], "secret_checks": named["secret_checks"],
                       "digest": digest.hexdigest()})


def load_saved_plan(document: Any, source: str) -> Plan:
    """The plan in a document written by :func:`saved_plan`; refuses anything else."""
    if not isinstance(document, dict) or "format_version" not in document:
        raise TopologyError(f"{source} is not a plan file written by 'topology plan --out'")
    if document["format_version"] != PLAN_FORMAT_VERSION:
        raise TopologyError(
            f"{source} has plan format {document['format_version']!r}; this version of the tool reads format "
            f"{PLAN_FORMAT_VERSION}: make the plan again"
        )
    if document.get("digest") != plan_digest(document):
        raise PlanRefused(f"{source} was modified after 'topology plan --out' wrote it: make the plan again")
    secrets = document.get("secrets") or []
    if secrets:
        try:
            document = redact.reveal(document, [str(name) for name in secrets])
        except KeyError as missing:
            raise TopologyError(
                f"{source} needs the secret variable {missing.args[0]} in the environment (the plan file never holds secrets)"
            ) from None
        checks = document.get("secret_checks")
        if not isinstance(checks, dict) or set(checks) != set(secrets):
            raise PlanRefused(f"{source} does not record which values of its secret variables it was made with "
                              "(an older version of the tool wrote it): make the plan again")
        try:
            other = redact.check_values(checks)
        except ValueError as error:
            raise TopologyError(f"cannot apply {source}: the values of its secret variables cannot be checked here "
                                f"({error}): make the plan again on this machine") from None
        if other is not None:
            raise PlanRefused(
                f"{source} was made with another value of the secret variable {other} than the environment holds "
                "now; applying it would set a value nobody planned: make the plan again"
            )
    again = "make the plan again with 'topology plan --out'"
    for key, kind, words in (("changes", list, "a list"), ("notes", list, "a list"), ("vhosts", list, "a list"),
                             ("broker", dict, "an object")):
        if key not in document:
            raise TopologyError(f"{source} is not a valid plan file (it lacks '{key}'): {again}")
        if not isinstance(document[key], kind):
            raise TopologyError(f"{source} is not a valid plan file (its '{key}' is not {words}): {again}")
    part = "it"
    try:
        changes = []
        for number, change in enumerate(document["changes"], start=1):
            part = f"change #{number}"
            if not isinstance(change, dict):
                raise TypeError(number)
            changes.append(change_from_dict(change))
        part, broker = "its 'broker'", document["broker"]
        info = BrokerInfo(url=broker["url"], version=broker["version"], cluster_name=broker["cluster_name"])
        part = "it"
        return Plan(changes=tuple(changes), notes=tuple(document["notes"]), vhosts=tuple(document["vhosts"]),
                    broker=info, prune=bool(document["prune"]))
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise TopologyError(f"{source} is not a valid plan file ({part} {_plan_file_problem(error)}): {again}") from None


def _plan_file_problem(error: Exception) -> str:
    """What is wrong in a plan file, in words (never the Python exception's)."""
    if isinstance(error, KeyError):
        return f"lacks {str(error.args[0])!r}" if error.args else "lacks a key"
    if isinstance(error, ValueError) and re.match(r"unknown [a-z]+ '", str(error)):
        return f"names an {error}"
    if isinstance(error, ValueError) and str(error).startswith("has neither "):
        return str(error)
    return "holds a value of the wrong kind, or a key this version does not know"


BindingIndex = dict[tuple[str, str, str], list[BindingState]]
"""Live bindings by the queue or exchange whose deletion drops them: (kind, vhost, name)."""


def binding_index(live: State) -> BindingIndex:
    """Every live binding under each object whose deletion drops it (a queue: the bindings to it;
    an exchange: those from it and to it), in the order of ``live``, made once: looking each
    deleted object's bindings up in all of them was quadratic (10,000 queues pruned: 10⁸
    comparisons)."""
    index: BindingIndex = {}
    for binding in live.objects.values():
        if not isinstance(binding, BindingState):
            continue
        if binding.destination_type == "queue":
            index.setdefault(("queue", binding.vhost, binding.destination), []).append(binding)
        index.setdefault(("exchange", binding.vhost, binding.source), []).append(binding)
        if binding.destination_type == "exchange" and binding.destination != binding.source:
            index.setdefault(("exchange", binding.vhost, binding.destination), []).append(binding)
    return index


class Fingerprints(NamedTuple):
    """The fingerprint of each change of a diff, in its order, and the :func:`binding_index` they
    were made with (``None`` when no change drops bindings: none was made)."""

    index: BindingIndex | None
    digests: list[str]


def fingerprints(found: Diff, live: State) -> Fingerprints:
    """:func:`fingerprint` of each of the diff's changes: what :func:`build` attaches to them, made
    apart so that a plan can make them while it reads what the changes put at stake. (The plan's
    changes differ from the diff's in nothing a fingerprint reads.)"""
    index = binding_index(live) if any(_drops_bindings(c) for c in found.changes) else None
    return Fingerprints(index, [fingerprint(live, change, index) for change in found.changes])


def _drops_bindings(change: Change) -> bool:
    """Whether the change takes the bindings of its object with it (a queue or an exchange replaced,
    resumed or deleted): its fingerprint then covers them, and a plan of such changes indexes them."""
    return change.kind in ("queue", "exchange") and change.action in AT_STAKE


def fingerprint(live: State, change: Change, index: BindingIndex | None = None) -> str:
    """A digest of the live state a change depends on: the object itself, and for a
    queue or exchange that is replaced, resumed or deleted, every binding it has (and
    the migration in progress). A saved plan is stale when any of these differs.
    ``index``: :func:`binding_index` of ``live``, when several changes are fingerprinted."""
    if change.kind == "vhost":
        current: Resource | None = live.vhosts.get(change.vhost)
    else:
        current = live.objects.get(change.key)
    data: dict[str, Any] = {"object": current.props() if current is not None else None}
    if _drops_bindings(change):
        if index is None:
            index = binding_index(live)
        touching = index.get((change.kind, change.vhost, change.name), [])
        data["bindings"] = sorted(json.dumps(list(b.key), ensure_ascii=False) for b in touching)
    if change.kind == "user":  # a password changed by hand since is a change too (a digest of its hash)
        stored = live.password_hashes.get(change.name, ("", None))[0]
        data["password"] = hashlib.sha256(stored.encode("utf-8")).hexdigest()[:16]
    record = live.migrations.get((change.vhost, change.name)) if change.kind == "queue" else None
    data["migration"] = record.to_argument() if record is not None else None
    if data == _NOTHING:
        return _NOTHING_FINGERPRINT  # every creation of an object the broker does not hold
    return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()[:32]


_NOTHING = {"object": None, "migration": None}
_NOTHING_FINGERPRINT = hashlib.sha256(json.dumps(_NOTHING, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()[:32]


def stale_changes(plan: Plan, live: State) -> list[str]:
    """What changed on the broker since ``plan`` was made, one line per touched object."""
    lines = []
    index = binding_index(live)
    for change in plan.changes:
        if fingerprint(live, change, index) == change.fingerprint:
            continue
        now = live.vhosts.get(change.vhost) if change.kind == "vhost" else live.objects.get(change.key)
        then = change.before
        what = f"{change.kind} {change.where}"
        if then is None and now is not None:
            lines.append(f"{what}: created since the plan was made")
        elif then is not None and now is None:
            lines.append(f"{what}: deleted since the plan was made")
        elif then is not None and now is not None and then.props() != now.props():
            from topology.diff import describe

            fields = describe(then.props(), now.props())
            detail = ", ".join(f"{name} {_show(f.before)} -> {_show(f.after)}" for name, f in list(fields.items())[:5])
            lines.append(f"{what}: changed since the plan was made ({detail})")
        else:
            lines.append(f"{what}: its bindings or its migration changed since the plan was made")
    return lines


def _show(value: Any) -> str:
    return "(none)" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def unfinished(plan: Plan, live: State) -> list[Change]:
    """The changes of ``plan`` whose end state the broker does not show (after applying)."""
    left = []
    for change in plan.changes:
        if change.kind == "vhost":
            now = live.vhosts.get(change.vhost)
            done = now is not None and all(now.props().get(k) == v for k, v in change.resource.props().items())
        elif change.action == DELETE:
            done = change.key not in live.objects
        else:
            now = live.objects.get(change.key)
            done = now is not None and now.props() == change.resource.end_props() \
                and (change.vhost, change.name) not in live.migrations
        if not done:
            left.append(change)
    return left


def _loss(change: Change) -> str:
    parts = []
    if isinstance(change.resource, QueueState):
        parts.append("its messages, if any" if change.messages is None else f"{change.messages} message(s)")
    if change.rebind:
        parts.append(f"{len(change.rebind)} binding(s), re-created")
    parts.append(change.reason)
    return ", ".join(parts)


def _order(change: Change) -> tuple[Any, ...]:
    index = KIND_ORDER.index(change.kind)
    if change.action == DELETE:
        return (1, -index, change.vhost, change.name)
    return (0, index, change.vhost, change.name)


def build(
    found: Diff,
    live: State,
    *,
    vhosts: list[str],
    broker: BrokerInfo | None = None,
    queues: dict[tuple[str, str], QueueFacts] | None = None,
    hidden_bindings: dict[tuple[str, str], int] | None = None,
    user_connections: dict[str, int] | None = None,
    prune: bool = False,
    fingerprinted: Fingerprints | None = None,
) -> Plan:
    """Order the changes (kinds in dependency order, creations before deletions) and
    attach to each the live state it depends on (its fingerprint); to replacements the
    bindings to re-create, and to queue replacements, resumptions and deletions the
    messages at stake; and to replacements and deletions their hazards.

    ``queues`` holds the statistics of the queues those changes touch (a resumption's
    are those of its temporary queue). ``hidden_bindings`` counts, per (vhost,
    exchange) to be replaced or deleted, the bindings the definitions export does not
    show (to exclusive queues of connected clients). ``user_connections`` counts the
    connections open as each user to be deleted. ``fingerprinted``: :func:`fingerprints` of
    ``found`` and ``live``, when made already.
    """
    queues = queues or {}
    hidden_bindings = hidden_bindings or {}
    deleted = {c.key for c in found.changes if c.action == DELETE}
    # the live bindings, listed and indexed only for a plan that drops some (a no-op plan of 20,000
    # objects does not look at them)
    replaces = any(c.action == REPLACE for c in found.changes)
    live_bindings = [r for r in live.objects.values() if isinstance(r, BindingState)] if replaces else []
    index, digests = fingerprinted or fingerprints(found, live)
    changes = []
    for change, digest in zip(found.changes, digests, strict=True):
        facts = QueueFacts()
        if change.kind == "queue":
            name = migration_queue_name(change.name) if change.action == RESUME else change.name
            facts = queues.get((change.vhost, name), facts)
        if change.action == REPLACE:
            dropped = list(index.get((change.kind, change.vhost, change.name), ())) if index is not None else []
            rebind = tuple(sorted((b for b in dropped if b.key not in deleted), key=lambda b: b.key))
            hazards = _hazards(change, dropped, live_bindings, live, hidden_bindings)
            change = replace(change, rebind=rebind, messages=facts.messages, hazards=hazards)
        elif change.action == RESUME:
            change = replace(change, messages=facts.messages)
        elif change.action == DELETE and change.kind in ("queue", "exchange"):
            hazards = _deletion_hazards(change, facts, hidden_bindings)
            change = replace(change, messages=facts.messages if change.kind == "queue" else None, hazards=hazards)
        elif change.action == DELETE and change.kind == "user" and (user_connections or {}).get(change.name):
            open_now = (user_connections or {})[change.name]
            change = replace(change, hazards=(
                f"{open_now} connection(s) are open as this user: declare it in the files, add it to ignore_users, "
                "or close them first",))
        if change.fingerprint:
            change = replace(change, fingerprint=digest)
        else:  # the diff's own change, new and not shared: given its fingerprint in place (faster
            # than a copy, for tens of thousands of creations)
            object.__setattr__(change, "fingerprint", digest)
        changes.append(change)
    changes.sort(key=_order)
    notes = list(found.notes) + _priority_notes(changes, broker)
    return Plan(
        changes=tuple(changes),
        unmanaged=tuple(found.unmanaged),
        notes=tuple(dict.fromkeys(notes)),
        vhosts=tuple(sorted(vhosts)),
        broker=broker,
        protected=dict(found.protected),
        prune=prune,
    )


def _priority_notes(changes: list[Change], broker: BrokerInfo | None) -> list[str]:
    """A note for each classic queue that becomes a quorum queue on a broker whose quorum queues
    serve message priorities (:data:`QUORUM_PRIORITIES_SINCE`): consumers then get messages in another order."""
    if broker is None or broker.version_tuple < QUORUM_PRIORITIES_SINCE:
        return []
    return [f"queue {c.vhost}/{c.name}: quorum queues on RabbitMQ {broker.version} deliver messages that carry a "
            "priority ahead of lower ones, where a classic queue without max_priority keeps the order of arrival: "
            "consumers may see such messages, moved ones included, in another order"
            for c in changes
            if c.action == REPLACE and isinstance(c.before, QueueState) and isinstance(c.after, QueueState)
            and c.before.type == "classic" and c.after.type == "quorum"]


def _deletion_hazards(change: Change, facts: QueueFacts, hidden_bindings: dict[tuple[str, str], int]) -> tuple[str, ...]:
    hazards = []
    if change.kind == "queue" and facts.consumers:
        hazards.append(f"{facts.consumers} consumer(s) use it: declare it in the files, or add it to the vhost's ignore list")
    hidden = hidden_bindings.get((change.vhost, change.name), 0) if change.kind == "exchange" else 0
    if hidden:
        hazards.append(f"{hidden} binding(s) to exclusive queues of connected clients would be dropped")
    return tuple(hazards)


def _hazards(
    change: Change,
    dropped: list[BindingState],
    live_bindings: list[BindingState],
    live: State,
    hidden_bindings: dict[tuple[str, str], int],
) -> tuple[str, ...]:
    hazards = []
    hidden = hidden_bindings.get((change.vhost, change.name), 0) if change.kind == "exchange" else 0
    if hidden:
        hazards.append(
            f"{hidden} binding(s) to exclusive queues of connected clients would be dropped and cannot be re-created"
        )
    dropped_keys = {b.key for b in dropped}
    for source in sorted({b.source for b in dropped if b.source != change.name or change.kind != "exchange"}):
        exchange = live.objects.get(("exchange", change.vhost, source))
        if not isinstance(exchange, ExchangeState) or not exchange.auto_delete:
            continue
        if all(b.key in dropped_keys for b in live_bindings if b.vhost == change.vhost and b.source == source):
            hazards.append(f"the broker would delete auto-delete exchange {source!r} when its last binding goes")
    return tuple(hazards)


def write_saved_plan(plan: Plan, path: str) -> None:
    """Write ``plan`` as a saved plan to ``path``, atomically (a reader never sees half a file)."""
    import os

    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            for piece in saved_plan_pieces(plan):
                handle.write(piece)
            handle.write("\n")
        os.replace(temporary, path)
    except OSError as error:
        raise TopologyError(f"cannot write the plan to {path}: {error.strerror or error}") from None


def read_saved_plan(path: str) -> Plan:
    """The plan saved in ``path`` (see :func:`load_saved_plan`)."""
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except OSError as error:
        raise TopologyError(f"cannot read the plan {path}: {error.strerror or error}") from None
    except (ValueError, RecursionError):  # RecursionError: arrays nested thousands deep
        raise TopologyError(f"{path} is not a plan file written by 'topology plan --out' (not JSON)") from None
    return load_saved_plan(document, path)
