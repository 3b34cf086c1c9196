"""Which policies apply to a queue or an exchange, and which one wins: the one answer that
drift's checks, explain, route and lint, the quorum transform and migrations all use (pure).

RabbitMQ's rule (``rabbit_policy:match``): among a vhost's policies whose ``apply-to`` covers
the object, that a queue's type can take (a policy holding one key the type does not support
does not apply at all, so a lower one may win), and whose pattern matches the name, the
highest priority wins. Between equal priorities RabbitMQ's choice is not defined: every tied
policy is a winner, and readers say so.

**Patterns this tool cannot evaluate.** RabbitMQ matches with PCRE; Python's ``re`` stands in
here. A pattern Python cannot compile, one holding a POSIX class (``[[:alpha:]]``, which Python
reads as a set of characters), or one that nests unbounded repeats (``^(a+)+$``: its
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
    if _POSIX_CLASS.search(pattern):
        return None  # PCRE's [[:alpha:]] means something else to Python's re
    try:
        compiled = _compile(pattern)
    except (re.error, OverflowError, RecursionError):
        return None
    return None if explosive(pattern) else compiled


def _compile(pattern: str) -> re.Pattern[str]:
    """``re.compile``, without the warnings Python's re gives about sets (``[[``, ``&&``): those
    are PCRE's syntax, the user's to write (:func:`pattern_problem` says what it means here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return re.compile(pattern)


_POSIX_CLASS = re.compile(r"\[[^\]]*\[:\^?[a-z]+:\]")
"""A POSIX class inside a bracket expression (``[[:alpha:]]``): PCRE reads it, Python's re does not."""

_PCRE_ONLY = re.compile(r"\\[pPXRhHKQEGkCNe]|\\[xo]\{|\(\?<[A-Za-z_]|\(\?'|\(\?\||\(\?R\)|\(\?[+-]?[0-9]+\)"
                        r"|\(\?&|\(\?P>|\(\*[A-Z]")
"""Syntax PCRE (RabbitMQ's matcher) accepts and Python's re does not: \\p{L}, (?<name>...), \\Q...\\E, ..."""

_RE_WORDS = (
    ("missing ), unterminated subpattern", "a '(' at character {at} is never closed"),
    ("unbalanced parenthesis", "a ')' at character {at} closes nothing (write \\) for the character itself)"),
    ("unterminated character set", "a '[' at character {at} is never closed (write \\[ for the character itself)"),
    ("nothing to repeat", "nothing before the {here!r} at character {at} to repeat (write \\{here} for the character "
                          "itself)"),
    ("multiple repeat", "two repeats in a row at character {at} (write \\{here} for the character itself)"),
    ("min repeat greater than max repeat", "the repeat at character {at} has its minimum above its maximum"),
    ("the repetition number is too large", "a repeat count at character {at} is too large"),
    ("bad escape (end of pattern)", "the pattern ends with a lone backslash (write \\\\ for a backslash)"),
    ("bad escape", "an unknown escape {rest} at character {at} (write \\\\ for a backslash)"),
    ("incomplete escape", "an incomplete escape {rest} at character {at}"),
    ("bad character range", "the range {rest} at character {at} runs backwards"),
    ("look-behind requires fixed-width pattern", "a look-behind (?<=...) must match a fixed number of characters"),
    ("unknown extension", "an unknown group ({rest}) at character {at}"),
    ("unexpected end of pattern", "the pattern ends too early"),
    ("missing group name", "a group without its name at character {at}"),
    ("bad character in group name", "a group name at character {at} that is not a name"),
    ("unknown group name", "a reference at character {at} to a group that does not exist"),
    ("invalid group reference", "a reference at character {at} to a group that does not exist"),
    ("redefinition of group name", "a group name at character {at} used twice"),
    ("cannot refer to an open group", "a group at character {at} refers to itself"),
    ("missing ", "something is missing at character {at}"),
)
"""Python's re complaints → the mistake, in words, with a 1-based character position."""


def pattern_problem(pattern: str, matched_here: bool = True) -> tuple[bool, str] | None:
    """What is wrong with a pattern (a policy's, or a permission's) as ``(refused, message)``:
    ``refused`` when RabbitMQ would refuse it too, else a warning that this tool cannot check
    it; ``None`` when Python's re reads it as PCRE does. ``matched_here``: the tool matches
    names against the pattern (a policy's), and the warning says what that costs."""
    shown = pattern if len(pattern) <= 60 else pattern[:57] + "..."
    cost = ": explain, drift, lint and route cannot say which names it matches" if matched_here else ""
    posix = _POSIX_CLASS.search(pattern)
    if posix:
        token = posix.group(0)[posix.group(0).rindex("[:"):]
        return False, f"{token} is a POSIX class: RabbitMQ accepts it, but this tool cannot evaluate the pattern{cost}"
    try:
        _compile(pattern)
    except re.error as error:
        pcre = _PCRE_ONLY.search(pattern)
        if pcre or error.msg.startswith("global flags not at the start"):
            token = pcre.group(0) if pcre else "(?flags) after the start"
            token = "(?<name>...)" if token.startswith("(?<") else token
            return False, (f"'{shown}' uses {token}, PCRE syntax that this tool cannot check (RabbitMQ may accept "
                           f"it){cost}")
        return True, f"invalid regular expression '{shown}': {_re_words(pattern, error)}"
    except OverflowError:
        return True, f"invalid regular expression '{shown}': a repeat count is too large"
    except RecursionError:
        return True, f"invalid regular expression '{shown}': nested too deeply"
    return None


def _re_words(pattern: str, error: re.error) -> str:
    at = (error.pos or 0) + 1
    here = pattern[at - 1:at] if error.pos is not None else ""
    for said, words in _RE_WORDS:
        if error.msg.startswith(said):
            rest = error.msg[len(said):].strip()
            return words.format(at=at, here=here, rest=rest)
    return f"not a pattern this tool reads, at character {at}"


def explosive(pattern: str) -> bool:
    """Whether ``pattern`` repeats without bound something that itself repeats without bound
    (``(a+)+``, ``(a*)*``, ``(.*x)+``): such a pattern can take exponential time to match."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
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
