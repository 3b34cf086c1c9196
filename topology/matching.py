"""Which policies apply to a queue or an exchange, and which one wins: the one answer that
drift's checks, explain, route and lint, the quorum transform and migrations all use (pure).

RabbitMQ's rule (``rabbit_policy:match``): among a vhost's policies whose ``apply-to`` covers
the object, that a queue's type can take (a policy holding one key the type does not support
does not apply at all, so a lower one may win), and whose pattern matches the name, the
highest priority wins. Between equal priorities RabbitMQ's choice is not defined: every tied
policy is a winner, and readers say so.

**Patterns this tool cannot evaluate.** RabbitMQ matches with PCRE; Python's ``re`` stands in
here. A pattern Python cannot compile, or one that nests unbounded repeats (``^(a+)+$``: its
matching time doubles with each character of a name that almost matches; PCRE gives up past
its match limit, Python would not return) is *undecided*: that policy may or may not apply.
No reader takes it for either without saying so: :func:`contest` returns such policies apart
(those that could beat the winners), and each reader reports them (drift and explain name
them, route marks the outcome uncertain, a migration counts them as applying, to be safe).
"""

from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from topology.rules.policies import APPLY_TO_TYPES, unsupported_keys
from topology.rules.versions import OLDEST_SUPPORTED

try:  # the parser behind re, to look at a pattern's structure (Python 3.11 on)
    from re import _constants as _sre, _parser as _sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_constants as _sre  # type: ignore[no-redef]
    import sre_parse as _sre_parse  # type: ignore[no-redef]

# Python's re warns about PCRE's POSIX classes ([[:alpha:]]); such patterns are the user's
warnings.filterwarnings("ignore", message="Possible nested set", category=FutureWarning)

EXCHANGE = "exchange"
"""The target of :func:`applies` and :func:`contest` for an exchange (a queue's is its type)."""


class Policy(Protocol):
    """What matching reads of a policy (:class:`~topology.state.PolicyState` has it)."""

    policy: str
    pattern: str
    apply_to: str
    priority: int
    definition: dict[str, Any]


def pattern_match(pattern: str, name: str) -> bool | None:
    """Whether a policy pattern matches a name; ``None`` when it is undecided (see the module)."""
    compiled = _compiled(pattern)
    return None if compiled is None else compiled.search(name) is not None


@functools.lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        compiled = re.compile(pattern)
    except (re.error, OverflowError, RecursionError):
        return None
    return None if explosive(pattern) else compiled


def explosive(pattern: str) -> bool:
    """Whether ``pattern`` repeats without bound something that itself repeats without bound
    (``(a+)+``, ``(a*)*``, ``(.*x)+``): such a pattern can take exponential time to match."""
    try:
        parsed = _sre_parse.parse(pattern)
    except Exception:  # noqa: BLE001 - not compilable: compile() reports it
        return False

    def walk(items: Any, inside_unbounded: bool) -> bool:
        for op, av in items:
            if op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT, getattr(_sre, "POSSESSIVE_REPEAT", None)):
                low, high, body = av
                unbounded = high == _sre.MAXREPEAT or high > 1000
                if unbounded and inside_unbounded:
                    return True
                if walk(body, inside_unbounded or unbounded):
                    return True
            elif op == _sre.SUBPATTERN:
                if walk(av[-1], inside_unbounded):
                    return True
            elif op == _sre.BRANCH:
                if any(walk(branch, inside_unbounded) for branch in av[1]):
                    return True
            elif op in (_sre.ASSERT, _sre.ASSERT_NOT):
                if walk(av[1], inside_unbounded):
                    return True
        return False

    return walk(parsed, False)


def covers(apply_to: str, target: str) -> bool:
    """Whether a policy's ``apply-to`` covers ``target``: a queue type, or :data:`EXCHANGE`."""
    if target == EXCHANGE:
        return apply_to in ("all", "exchanges")
    return target in APPLY_TO_TYPES.get(apply_to, frozenset())


def refused_keys(policy: Policy, target: str, version: tuple[int, ...] = OLDEST_SUPPORTED) -> frozenset[str]:
    """The keys of ``policy`` a queue of type ``target`` does not take (any one keeps the policy off it)."""
    if target == EXCHANGE:
        return frozenset()
    return unsupported_keys(target, version) & frozenset(policy.definition)


def applies(policy: Policy, name: str, target: str, version: tuple[int, ...] = OLDEST_SUPPORTED) -> bool | None:
    """Whether RabbitMQ ``version`` considers ``policy`` for the object ``name`` (a queue of type
    ``target``, or an exchange); ``None`` when its pattern is undecided."""
    if not covers(policy.apply_to, target) or refused_keys(policy, target, version):
        return False
    return pattern_match(policy.pattern, name)


@dataclass
class Contest:
    """The outcome of matching a vhost's policies against one object."""

    winners: list[Any] = field(default_factory=list)
    """The policies of the highest priority among those that apply (several on a tie), by name."""
    undecided: list[Any] = field(default_factory=list)
    """Policies whose pattern is undecided and that would win or tie if they applied, by name."""


def contest(policies: Iterable[Policy], name: str, target: str,
            version: tuple[int, ...] = OLDEST_SUPPORTED) -> Contest:
    """Which of ``policies`` win for the object ``name`` (a queue of type ``target``, or an
    exchange), and which undecided ones could beat them."""
    applying, undecided = [], []
    for policy in policies:
        verdict = applies(policy, name, target, version)
        if verdict is None:
            undecided.append(policy)
        elif verdict:
            applying.append(policy)
    top = max((p.priority for p in applying), default=None)
    return Contest(
        winners=sorted((p for p in applying if p.priority == top), key=lambda p: p.policy),
        undecided=sorted((p for p in undecided if top is None or p.priority >= top), key=lambda p: p.policy),
    )
