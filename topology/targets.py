"""Which brokers a command runs against: the connection options, or targets of the project file.

A :class:`Job` is everything one run needs: the files and values, and how to reach the
broker (URL, credentials, TLS). It makes the clients; it prints nothing.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from topology import redact
from topology.errors import EXIT_CHANGES, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, ConfigError, TopologyError
from topology.project import PROJECT_FILE, ProjectError, TlsSettings, find_project, load_project


@dataclass(frozen=True)
class Connection:
    """The connection options of the command line (``--url``, ``--user``, ...)."""

    url: str
    user: str
    password: str = field(repr=False)
    timeout: float
    insecure: bool = False
    timeout_given: bool = False
    """``--timeout`` was on the command line: it wins over a target's ``timeout``."""


@dataclass(frozen=True)
class Selection:
    """``--project``, ``--target``, ``--all-targets`` and ``--continue-on-error``."""

    project: str | None = None
    target: str | None = None
    all_targets: bool = False
    continue_on_error: bool = False

    @property
    def uses_project(self) -> bool:
        return self.target is not None or self.all_targets


@dataclass(frozen=True)
class Job:
    """One run of a command: against a named target, or (``target`` None) the connection options."""

    target: str | None
    paths: tuple[str, ...]
    values: tuple[str, ...]
    url: str
    user: str
    password: str = field(repr=False)
    timeout: float = 30.0
    amqp_url: str | None = None
    tls: TlsSettings = field(default_factory=TlsSettings)
    secret_names: frozenset[str] = frozenset()
    problem: str | None = None
    """Why this target cannot run (a credential or TLS file missing); the others still can."""
    broker_version: tuple[int, ...] | None = None
    """The RabbitMQ version the project file says the target runs."""
    root: str | None = None
    """The project file's folder (a target's run): output names the files relative to it."""

    @property
    def insecure(self) -> bool:
        return not self.tls.verify

    def client(self) -> Any:
        from topology.broker.client import ManagementClient

        verify: bool | str = self.tls.ca or True if self.tls.verify else False
        cert = (self.tls.cert, self.tls.key) if self.tls.cert and self.tls.key else self.tls.cert
        return ManagementClient(self.url, self.user, self.password, timeout=self.timeout, verify=verify, cert=cert)

    def amqp(self) -> Any:
        from topology.broker.amqp import Amqp, default_amqp_url, ssl_context

        context = None
        if self.tls != TlsSettings():
            context = ssl_context(self.tls.ca, self.tls.cert, self.tls.key, self.tls.verify)
        return Amqp(self.amqp_url or default_amqp_url(self.url), self.user, self.password, timeout=self.timeout,
                    ssl_context=context)


def resolve_jobs(
    selection: Selection, paths: tuple[str, ...], values: tuple[str, ...], connection: Connection | None,
    *, amqp_url: str | None = None, needs_paths: bool = True, connects: bool = True,
) -> list[Job]:
    """The runs a command makes. Without a target: one, with the connection options and
    ``paths`` (required when ``needs_paths``); the project file, when there is one, still
    names more secret variables. With ``--target`` or ``--all-targets``: one per target,
    whose files give the paths unless ``paths`` are given, whose values come before
    ``values``, whose URL, AMQP URL (``amqp_url`` is then not used), credentials, timeout
    and TLS settings win over the options (``--timeout`` given on the command line
    excepted). A target that cannot run gets :attr:`Job.problem` with ``--all-targets``,
    and raises otherwise. ``connects`` False (``validate``): no credential is read."""
    if selection.target is not None and selection.all_targets:
        raise TopologyError("give --target NAME or --all-targets, not both")
    if selection.continue_on_error and not selection.all_targets:
        raise TopologyError("--continue-on-error goes with --all-targets")
    base = connection or Connection(url="http://127.0.0.1:15672", user="guest", password="guest", timeout=30.0)
    if not selection.uses_project:
        if needs_paths and not paths:
            raise TopologyError("give the topology files (PATHS), or a target of the project file with --target NAME")
        secrets = project_secrets(selection.project)
        job = Job(None, paths, values, base.url, base.user, base.password, base.timeout, amqp_url,
                  TlsSettings(verify=not base.insecure), secret_names=secrets)
        _register(job)
        return [job]
    path = selection.project or find_project()
    if path is None:
        raise ProjectError(f"no {PROJECT_FILE} in this directory or above it: give --project FILE")
    project = load_project(path)
    names = [selection.target] if selection.target is not None else sorted(project.targets)
    jobs = []
    for name in names:
        target = project.target(name)
        files = paths or target.files
        job = Job(
            target=name, paths=tuple(files), values=target.values + tuple(values), url=target.url,
            user=base.user, password=base.password,
            timeout=base.timeout if base.timeout_given or target.timeout is None else target.timeout,
            amqp_url=target.amqp_url, tls=target.tls, secret_names=project.secrets, broker_version=target.broker_version,
            root=os.path.dirname(os.path.abspath(path)),
        )
        try:
            if needs_paths and not files:
                raise ProjectError(f"target {name} names no files: add files = [...] to {path}, or give PATHS")
            if connects:
                job = _connectable(job, target, path, base)
        except ProjectError as error:
            if not selection.all_targets:
                raise
            job = replace(job, problem=str(error))
        _register(job)
        jobs.append(job)
    return jobs


def _connectable(job: Job, target: Any, path: str, base: Connection) -> Job:
    """``job`` with the target's credentials read and its TLS files checked."""
    user, password = target.credentials()
    for key in ("ca", "cert", "key"):
        file = getattr(job.tls, key)
        if file is not None and not os.path.isfile(file):
            raise ProjectError(f"{path}: targets.{target.name}.tls.{key}: no such file: {file}")
    if password is not None and password != user:  # one equal to the user's name is printed as that name
        redact.register(password)  # not as a variable: saved plans must never name it
    tls = job.tls
    if base.insecure:
        tls = TlsSettings(ca=tls.ca, cert=tls.cert, key=tls.key, verify=False)
    return replace(job, user=user or base.user, password=password or base.password, tls=tls)


def project_secrets(given: str | None) -> frozenset[str]:
    """The secret names of the project file: the one given, or one found here or above that
    loads (a file found by searching that is not a valid project file is not this tool's)."""
    if given is not None:
        return load_project(given).secrets
    found = find_project()
    if found is None:
        return frozenset()
    try:
        return load_project(found).secrets
    except ProjectError:
        return frozenset()


def _register(job: Job) -> None:
    redact.register_url(job.url)
    redact.register_url(job.amqp_url)


# -- running several targets ------------------------------------------------------

MAX_PARALLEL_TARGETS = 4
"""Targets run at once with --all-targets."""


@dataclass
class TargetResult:
    """What one run printed and how it ended."""

    job: Any
    code: int = EXIT_OK
    value: Any = None
    """What the run produced (a plan, a drift report), for the combined JSON and JUnit documents."""
    output: list[tuple[str, bool]] = field(default_factory=list)
    error: str | None = None
    details: list[str] = field(default_factory=list)
    """The lines that explain the error: file problems, objects a stale plan found changed..."""

    @property
    def name(self) -> str:
        return self.job.target or "(connection options)"


@contextmanager
def _ctrl_c_deferred() -> Iterator[list[bool]]:
    """Within the block, Ctrl-C is noted in the list yielded instead of raised (in the main
    thread; elsewhere Python delivers no signal anyway)."""
    import signal

    pressed: list[bool] = []
    if threading.current_thread() is not threading.main_thread():
        yield pressed
        return
    previous = signal.signal(signal.SIGINT, lambda number, frame: pressed.append(True))
    try:
        yield pressed
    finally:
        signal.signal(signal.SIGINT, previous)


class TargetsInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run of several targets, raised once the running ones finished: every
    target's result, in order (those that did not run say so)."""

    def __init__(self, results: list[TargetResult]):
        super().__init__("interrupted")
        self.results = results


def run_jobs(jobs: list[Any], selection: Any, work: Callable[[Any], tuple[int, Any]], *,
             capture: Callable[[list[tuple[str, bool]] | None], None] = lambda buffer: None,
             on_interrupt: Callable[[], None] = lambda: None,
             stop_on_error: bool | None = None, one_at_a_time: Callable[[Any], Any] | None = None) -> list[TargetResult]:
    """Run ``work(job)`` for each job. One job (no ``--all-targets``) runs here, printing as it
    goes, and its errors propagate. Several run in parallel threads (at most
    :data:`MAX_PARALLEL_TARGETS` at once), each printing into its own buffer, and each error
    is kept with its target; a failure stops the targets that have not started, unless
    ``--continue-on-error`` (or ``stop_on_error`` False). Jobs for which ``one_at_a_time``
    gives the same key run one after the other (applies to one broker share its lock).

    ``capture(buffer)`` points the calling thread's output at a target's buffer (``None``: back to
    the terminal). Ctrl-C starts no further target, calls ``on_interrupt``, lets the running ones
    finish (an apply is never cut off by the tool itself), and raises :class:`TargetsInterrupted`."""
    if stop_on_error is None:
        stop_on_error = not selection.continue_on_error
    if not selection.all_targets:
        if jobs[0].problem:
            raise TopologyError(jobs[0].problem)
        code, value = work(jobs[0])
        return [TargetResult(jobs[0], code, value)]
    from concurrent.futures import ThreadPoolExecutor

    stop = threading.Event()
    interrupted = threading.Event()
    done: list[TargetResult] = []

    def one(job: Any) -> TargetResult:
        result = TargetResult(job)
        if stop.is_set():
            result.code = EXIT_INTERRUPTED if interrupted.is_set() else EXIT_ERROR
            result.error = ("not run: interrupted" if interrupted.is_set()
                            else "not run: another target failed (use --continue-on-error to run every target)")
            return result
        capture(result.output)
        try:
            if job.problem:
                raise TopologyError(job.problem)
            result.code, result.value = work(job)
        except ConfigError as error:
            result.details = [str(problem) for problem in error.problems]
            result.code, result.error = error.exit_code, str(error)
        except TopologyError as error:
            result.details = list(error.details)
            result.code, result.error = error.exit_code, str(error)
        except Exception:  # a bug: keep it with its target, and let the others finish
            import traceback

            result.details = traceback.format_exc().rstrip().splitlines()
            result.code, result.error = EXIT_ERROR, "internal error in topology (a bug: please report it with the traceback)"
        finally:
            capture(None)
        # masked here, as text: once inside a JSON document, an escaped secret would no longer match
        result.error = redact.redact(result.error) if result.error else result.error
        result.details = [redact.redact(line) for line in result.details]
        if result.code not in (EXIT_OK, EXIT_CHANGES) and stop_on_error:
            stop.set()
        return result

    def group_runner(group: list[Any]) -> None:
        for job in group:
            done.append(one(job))

    groups: dict[Any, list[Any]] = {}
    for index, job in enumerate(jobs):
        groups.setdefault(one_at_a_time(job) if one_at_a_time else index, []).append(job)
    pool = ThreadPoolExecutor(max_workers=min(len(groups), MAX_PARALLEL_TARGETS))
    with _ctrl_c_deferred() as pressed:  # every target handed over (and its thread known) first
        futures = [pool.submit(group_runner, group) for group in groups.values()]
    try:
        if pressed:
            raise KeyboardInterrupt
        for future in futures:
            future.result()
    except KeyboardInterrupt:
        interrupted.set()
        stop.set()
        on_interrupt()
        pool.shutdown(wait=True, cancel_futures=True)
        ran = {id(result.job) for result in done}
        raise TargetsInterrupted(sorted(done, key=lambda r: jobs.index(r.job))
                                 + [TargetResult(job, EXIT_INTERRUPTED, error="not run: interrupted") for job in jobs
                                    if id(job) not in ran]) from None
    pool.shutdown(wait=True)
    order = {id(job): index for index, job in enumerate(jobs)}
    return sorted(done, key=lambda result: order[id(result.job)])
