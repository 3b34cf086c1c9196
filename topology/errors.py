"""One error root for everything a user can cause.

The command line catches :class:`TopologyError`, prints its one-line message (or its
list of problems) and exits with :attr:`TopologyError.exit_code`. Anything else that
escapes is a bug in the tool and shows a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass


EXIT_OK, EXIT_ERROR, EXIT_CHANGES, EXIT_INTERRUPTED = 0, 1, 2, 130
"""The command line's exit codes besides the errors' own (:attr:`TopologyError.exit_code`; 3:
:class:`LockHeld`): success, failure, changes present or drift found, interrupted (Ctrl-C)."""


class TopologyError(Exception):
    """Root of the errors a user can cause; ``str(error)`` is the one line to print,
    after the lines of :attr:`details` (if any)."""

    exit_code = 1
    details: list[str] = []


@dataclass(frozen=True, order=True)
class Problem:
    """One located problem in the topology files."""

    file: str
    line: int
    location: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        location = f" {self.location}:" if self.location else ""
        return f"{where}:{location} {self.message}"


class ConfigError(TopologyError):
    """The topology files are invalid; carries every problem found, sorted by place."""

    def __init__(self, problems: list[Problem], warnings: list[Problem] | None = None):
        self.problems = sorted(set(problems))
        self.warnings = sorted(set(warnings or []))
        """What RabbitMQ accepts but is likely a mistake, found along the way (printed as warnings)."""
        count = len(self.problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} found in the topology files")


class BrokerError(TopologyError):
    """The broker could not be reached, refused the credentials, or answered with an error."""


class PlanRefused(TopologyError):
    """The plan holds a change that the given options do not allow (e.g. a replacement)."""


class ApplyError(TopologyError):
    """A change failed while applying; the message names the object and the broker's reason.

    ``not_applied`` lists the changes of the plan that were not made (the failed one first);
    they are printed as :attr:`details`."""

    def __init__(self, message: str, not_applied: list[str] | None = None):
        super().__init__(message)
        self.details = [f"not applied: {line}" for line in not_applied or []]


class LockHeld(TopologyError):
    """Another apply holds the broker's apply lock (exit code 3, so CI can retry later)."""

    exit_code = 3


class StalePlan(PlanRefused):
    """A saved plan no longer matches the broker (an object it touches changed, or another broker)."""

    def __init__(self, message: str, changed: list[str]):
        super().__init__(message)
        self.details = [f"changed: {line}" for line in changed]
