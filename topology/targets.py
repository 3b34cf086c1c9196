"""Which brokers a command runs against: the connection options, or targets of the project file.

A :class:`Job` is everything one run needs: the files and values, and how to reach the
broker (URL, credentials, TLS). It makes the clients; it prints nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any

from topology import redact
from topology.errors import TopologyError
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
    if password is not None:
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
