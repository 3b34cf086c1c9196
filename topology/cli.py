"""The command line: parse options, call the engine, render, choose the exit code.

This is the only module that prints or exits. Exit codes: 0 success (and, with
``plan --detailed-exitcode``, no changes; for ``drift``, in sync), 1 any error, 2 changes
present (``plan --detailed-exitcode``) or drift found (``drift``), 3 the apply lock is held
by another run, 130 interrupted.
"""

from __future__ import annotations

import functools
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, NoReturn

import click

from topology import __version__
from topology.errors import EXIT_CHANGES, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, ConfigError, TopologyError
from topology.rules.versions import OLDEST_SUPPORTED, parse_given_version, version_text

if TYPE_CHECKING:  # imported where used: `topology --version` and `--help` stay fast
    from pathlib import Path

    from topology.targets import TargetResult

EXIT_DRIFT = 2


_output = threading.local()
"""Per thread, where :func:`echo` writes: a buffer while a target runs beside others."""


def echo(message: Any = "", err: bool = False, *, styled: bool = False, painted: bool = False) -> None:
    """Print a line, with every secret redacted and control characters made visible: all output
    goes through here. ``styled``: the text holds the plan's colours, added to text already made
    visible (topology.render.text). ``painted``: the tool's line shapes are coloured
    (:func:`topology.terminal.paint`), as every line on stderr is, where colour is wanted."""
    from topology.redact import redact

    _write([redact(str(message)) if styled else _shown(message)], err, paint=not styled and (err or painted))


def _shown(message: Any) -> str:
    from topology.redact import redact
    from topology.terminal import visible

    return visible(redact(str(message)))


def _write(texts: list[str], err: bool, paint: bool) -> None:
    """Write lines already redacted and made visible, at once (to the buffer of a target whose
    output is collected, when there is one); ``paint``: colour their shapes where colour is wanted."""
    from topology.terminal import colour_wanted, paint as painted_text

    buffer = getattr(_output, "buffer", None)
    if buffer is not None:
        buffer.extend((text, err) for text in texts)
        return
    colour = colour_wanted(sys.stderr if err else sys.stdout)
    if colour and paint:
        texts = [painted_text(text) for text in texts]
    click.echo("\n".join(texts), err=err, color=colour)


LOG_EVERY = 0.2
"""Seconds an applied change's line may wait to be written with the next ones."""
LOG_BLOCK = 500
"""Lines of applied changes written at once, at most."""


def echo_lines(lines: Iterable[str], err: bool = False, *, painted: bool = False) -> None:
    """:func:`echo` of each line, written at once."""
    _write([_shown(line) for line in lines], err, paint=err or painted)


def echo_pieces(pieces: Iterable[str], err: bool = False, *, painted: bool = False) -> None:
    """:func:`echo` of the text ``pieces`` make, its line feeds at the end left out, written a few
    lines at a time as the pieces come (a long plan or report is never held whole), redacted and
    made visible as :func:`echo` does it whole (:func:`topology.redact.redact_pieces`)."""
    from topology.redact import redact_pieces
    from topology.terminal import colour_wanted, paint, visible

    if getattr(_output, "buffer", None) is not None:
        echo("".join(pieces).rstrip("\n"), err, painted=painted)
        return

    def trimmed() -> Iterator[str]:
        held = ""
        for piece in pieces:
            text = piece.rstrip("\n")
            if text:
                yield held + text
                held = ""
            held += piece[len(text):]

    colour = colour_wanted(sys.stderr if err else sys.stdout)
    for text in redact_pieces(trimmed()):
        text = visible(text)
        click.echo(paint(text) if colour and (err or painted) else text, err=err, color=colour, nl=False)
    click.echo("", err=err, color=colour)


def warn(message: str) -> None:
    echo(f"warning: {message}", err=True)


def _load(job: Any, offline: bool = False, template: bool = False, on_vhost: Callable[[str], None] | None = None) -> Any:
    """Load and validate a job's files; print what validation warns of (RabbitMQ accepts it)."""
    from topology.loader import load_valid

    topology = load_valid(job.paths, job.values, job.secret_names, offline=offline, template=template, root=job.root,
                          on_vhost=on_vhost)
    for problem in topology.warnings:
        warn(str(problem))
    return topology


def _progress(label: str, total: int | None = None) -> Any:
    """A progress display on stderr (see :mod:`topology.progress`); off while the output of
    several targets is collected (they run at once)."""
    from topology.progress import Progress

    return Progress(label, total, show="off" if getattr(_output, "buffer", None) is not None else None)


def _client(job: Any) -> Any:
    """The job's management client; a problem in the files is reported before one with the
    connection settings."""
    try:
        return job.client()
    except TopologyError:
        _load(job)
        raise


def _load_reading(job: Any, gate: Any = None, client: Any = None,
                  on_vhost: Callable[[str], None] | None = None) -> tuple[Any, Any]:
    """Load a job's files while its broker is read (through ``client``, made here when not given):
    the overview and vhost list at once, each vhost's definitions as soon as the files name it
    (after ``gate`` opens, when given: an apply reads only once it holds the lock; or as
    ``on_vhost`` decides). Returns the topology and the client."""
    client = client or _client(job)
    client.gate = gate
    client.read_ahead()
    try:
        topology = _load(job, on_vhost=on_vhost or client.read_ahead_vhost)
    except BaseException:
        client.cancelled = True
        client.close()
        raise
    return topology, client


def connection_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--url, --user, --password, --timeout, --insecure for commands that talk to the broker."""

    @click.option("--url", envvar="TOPOLOGY_URL", default="http://127.0.0.1:15672", show_default=True,
                  help="Management API URL [env TOPOLOGY_URL].")
    @click.option("--user", envvar="TOPOLOGY_USER", default="guest", show_default=True,
                  help="Management user [env TOPOLOGY_USER].")
    @click.option("--password", envvar="TOPOLOGY_PASSWORD", default="guest", show_default=False,
                  help="Management password [env TOPOLOGY_PASSWORD; default guest]. Prefer the environment variable.")
    @click.option("--timeout", type=float, default=30.0, show_default=True,
                  callback=_within(0.1, 3600, "seconds"), help="Seconds to wait for each request (0.1 to 3600).")
    @click.option("--insecure", is_flag=True,
                  help="Do not verify the broker's TLS certificate (prints a warning; for tests only).")
    @functools.wraps(command)
    def wrapper(*args: Any, url: str, user: str, password: str, timeout: float, insecure: bool, **kwargs: Any) -> Any:
        from topology import redact
        from topology.targets import Connection

        ctx = click.get_current_context()
        if ctx.get_parameter_source("password") != click.core.ParameterSource.DEFAULT and password != user:
            # the well-known default "guest" is no secret, nor a password that is its user's name
            # (masking it would hide that user, and every object named alike, in every output)
            redact.register(password)
        redact.register_url(url)
        timeout_given = ctx.get_parameter_source("timeout") == click.core.ParameterSource.COMMANDLINE
        return command(*args, connection=Connection(url, user, password, timeout, insecure, timeout_given), **kwargs)

    return wrapper


def target_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--project, --target, --all-targets, --continue-on-error."""

    @click.option("--project", envvar="TOPOLOGY_PROJECT", type=click.Path(dir_okay=False), default=None,
                  help="The project file naming the targets [env TOPOLOGY_PROJECT; default: topology.toml here or above].")
    @click.option("--target", "target", default=None, help="Run against this target of the project file.")
    @click.option("--all-targets", is_flag=True,
                  help="Run against every target of the project file, in parallel, with a result per target.")
    @click.option("--continue-on-error", is_flag=True,
                  help="With --all-targets: when one target fails, go on with the others (default: stop starting new ones).")
    @functools.wraps(command)
    def wrapper(*args: Any, project: str | None, target: str | None, all_targets: bool, continue_on_error: bool,
                **kwargs: Any) -> Any:
        from topology.targets import Selection

        return command(*args, selection=Selection(project, target, all_targets, continue_on_error), **kwargs)

    return wrapper


def _check_target_options(ctx: click.Context, selection: Any) -> None:
    """With targets, the project file gives each target's URLs: refuse them on the command
    line, and say so when the environment sets them."""
    if not selection.uses_project:
        return
    for name, option, variable in (("url", "--url", "TOPOLOGY_URL"), ("amqp_url", "--amqp-url", "TOPOLOGY_AMQP_URL")):
        source = ctx.get_parameter_source(name)
        if source == click.core.ParameterSource.COMMANDLINE:
            raise click.UsageError(f"{option} does not go with --target or --all-targets: the project file gives "
                                   f"each target's {name} (or set it there)")
        if source == click.core.ParameterSource.ENVIRONMENT:
            warn(f"{variable} is ignored with --target or --all-targets: each target's {name} from the project file applies")


def _within(low: float, high: float | None, unit: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """An option's callback refusing a number outside ``low``..``high`` (or below ``low``), or not
    finite, in words: "give 0.1 to 3600 seconds" (click's own ranges say "0.1<=x<=3600")."""

    def check(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is None:
            return value
        if not math.isfinite(value) or value < low or (high is not None and value > high):
            wanted = f"{low:g} to {high:g} {unit}" if high is not None else f"at least {low:g} {unit}"
            raise click.BadParameter(f"give {wanted}", ctx=ctx, param=param)
        return value

    return check


paths_argument = click.argument("paths", nargs=-1, type=click.Path())
values_option = click.option(
    "--values", "values", multiple=True, type=click.Path(dir_okay=False),
    help="A YAML map of variable names to values for ${VAR} in the files; repeatable, the later file wins; "
         "the environment wins over all (docs: guides/environments.md).",
)

def _run_jobs(jobs: list[Any], selection: Any, work: Callable[[Any], tuple[int, Any]],
              stop_on_error: bool | None = None, one_at_a_time: Callable[[Any], Any] | None = None) -> list[TargetResult]:
    """:func:`topology.targets.run_jobs`, printing through :func:`echo`: a target's output goes to its
    own buffer while several run; Ctrl-C prints what ran, and exits 130."""
    from topology.targets import TargetsInterrupted, run_jobs

    def user_work(job: Any) -> tuple[int, Any]:
        try:
            return work(job)
        except click.ClickException as error:  # a usage error found while running a target
            raise TopologyError(error.format_message()) from None

    def capture(buffer: list[tuple[str, bool]] | None) -> None:
        _output.buffer = buffer

    try:
        return run_jobs(jobs, selection, user_work, capture=capture, stop_on_error=stop_on_error,
                        one_at_a_time=one_at_a_time,
                        on_interrupt=lambda: echo("interrupted: no further target starts; waiting for the running "
                                                  "ones to finish", err=True))
    except TargetsInterrupted as interrupted:
        _print_results(interrupted.results, lambda r: "finished")
        raise KeyboardInterrupt from None


def _read_saved_plan(path: str) -> Any:
    from topology.plan import read_saved_plan

    return read_saved_plan(path)


def _print_results(results: list[TargetResult], outcome: Callable[[TargetResult], str]) -> int:
    """Print each target's buffered output under its name, then a line per target; the exit code."""
    for result in results:
        echo(f"== target {result.name} ==")
        for text, err in result.output:
            echo(text, err=err)
        for line in result.details:
            echo(line, err=True)
        if result.error:
            echo(f"error: {result.error}", err=True)
        echo("")
    echo("Targets:")
    for result in results:
        state = f"error: {result.error}" if result.error else outcome(result)
        echo(f"  {result.name}: {state}")
    return _worst(results)


def _worst(results: list[TargetResult]) -> int:
    """1 (or the one shared error code) when a target failed, else 2 when one had changes or drift, else 0."""
    failed = {r.code for r in results if r.code not in (EXIT_OK, EXIT_CHANGES)}
    if failed:
        return failed.pop() if len(failed) == 1 else EXIT_ERROR
    return EXIT_CHANGES if any(r.code == EXIT_CHANGES for r in results) else EXIT_OK


def _colour() -> bool:
    from topology.terminal import colour_wanted

    return colour_wanted(sys.stdout) and getattr(_output, "buffer", None) is None


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
             invoke_without_command=True, epilog="Run 'topology help COMMAND' (or 'topology COMMAND --help') for "
                                                 "a command's options and examples.")
@click.version_option(__version__, "--version", prog_name="topology", message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Topology as code for RabbitMQ: validate, plan and apply YAML topology files."""
    if ctx.invoked_subcommand is None:
        echo(ctx.get_help())


@cli.command("help")
@click.argument("command", required=False)
@click.pass_context
def help_command(ctx: click.Context, command: str | None) -> None:
    """Show the help of topology, or of one of its commands."""
    parent = ctx.parent
    assert parent is not None
    if command is None:
        echo(parent.get_help())
        return
    found = cli.get_command(parent, command)
    if found is None:
        import difflib

        close = difflib.get_close_matches(command, list(cli.commands), n=1)
        raise click.UsageError(f"no such command {command!r}" + (f"; did you mean {close[0]!r}?" if close else ""),
                               ctx)
    with click.Context(found, info_name=command, parent=parent) as sub:
        echo(found.get_help(sub))


def _offline_version(given: tuple[int, ...] | None, job: Any, *, quiet: bool = False) -> tuple[int, ...]:
    """The broker version an offline command uses: --broker-version, else the project target's
    broker_version, else the oldest supported (said on stderr unless ``quiet``)."""
    version = given or job.broker_version
    if version is not None:
        return version
    if not quiet:
        echo(f"note: rules of RabbitMQ {version_text(OLDEST_SUPPORTED)}, the oldest supported version (give "
             "--broker-version, or broker_version in the project's target)", err=True)
    return OLDEST_SUPPORTED


def _broker_version(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        return parse_given_version(value)
    except ValueError as error:
        raise click.BadParameter(str(error), ctx=ctx, param=param) from None


CI_FORMATS = ("sarif", "github")
CI_FORMAT_HELP = ("text for people; sarif (SARIF 2.1.0) for code scanning, github for annotations in GitHub Actions "
                  "(docs: guides/ci.md).")


@cli.command()
@paths_argument
@values_option
@click.option("--broker-version", callback=_broker_version, default=None, metavar="VERSION",
              help="Also check the files against the rules of this RabbitMQ version (e.g. 4.0), offline.")
@click.option("--format", "output_format", type=click.Choice(["text", *CI_FORMATS]), default="text", show_default=True,
              help=CI_FORMAT_HELP)
@target_options
@click.pass_context
def validate(ctx: click.Context, paths: tuple[str, ...], values: tuple[str, ...], broker_version: tuple[int, ...] | None,
             output_format: str, selection: Any) -> None:
    """Check topology files (and directories of them) without a broker.

    Exit 0 when valid, 1 with every problem listed as file:line: location: message.
    With --broker-version, also the version rules that plan checks against the broker.
    """
    from topology.targets import resolve_jobs

    if output_format in CI_FORMATS:
        _ci_output(ctx, output_format, _validation_report(paths, values, broker_version, selection))

    def work(job: Any) -> tuple[int, Any]:
        topology = _load(job, offline=True)
        _check_given_version(topology, broker_version, job)
        objects = sum(
            len(v.exchanges) + len(v.queues) + len(v.bindings) + len(v.policies) + len(v.operator_policies)
            + len(v.shovels) + len(v.federation_upstreams) + len(v.federation_upstream_sets)
            for v in topology.vhosts.values()
        )
        users = f", {len(topology.users)} user(s)" if topology.users else ""
        echo(f"Valid: {len(topology.vhosts)} vhost(s), {objects} object(s){users} in {len(topology.lines)} file(s).")
        return EXIT_OK, None

    jobs = resolve_jobs(selection, paths, values, None, connects=False)
    results = _run_jobs(jobs, selection, work)
    if selection.all_targets:
        ctx.exit(_print_results(results, lambda r: "valid"))


def _check_given_version(topology: Any, broker_version: tuple[int, ...] | None, job: Any) -> None:
    """The version rules of --broker-version, or of the target's broker_version, when one is given
    (raises :class:`ConfigError` with the rules broken)."""
    from topology.validate import check_broker_version

    version = broker_version or job.broker_version
    if version is not None:
        check_broker_version(topology, version, version_text(version), offline=True,
                             source="--broker-version" if broker_version else f"target {job.target}")


def _ci_output(ctx: click.Context, output_format: str, report: Any) -> NoReturn:
    """Print a lint or validate report as SARIF or GitHub Actions workflow commands, a line per count
    and error on stderr, and exit with the report's code."""
    from dataclasses import replace

    from topology.redact import redact
    from topology.render.annotations import render_annotations
    from topology.render.sarif import render_sarif

    # masked before rendering: once escaped into JSON or a workflow command, a secret would no longer match
    report = replace(report, failures=tuple(redact(f) for f in report.failures),
                     diagnostics=tuple(replace(d, message=redact(d.message), where=redact(d.where))
                                       for d in report.diagnostics))
    text = (render_sarif if output_format == "sarif" else render_annotations)(report, os.getcwd())
    if text:
        echo(text)
    counts = {level: sum(1 for d in report.diagnostics if d.level == level) for level in ("error", "warning", "note")}
    echo(f"topology {report.command}: {counts['error']} error(s), {counts['warning']} warning(s), "
         f"{counts['note']} note(s)", err=True)
    for failure in report.failures:
        echo(f"error: {failure}", err=True)
    if report.exit_code not in (EXIT_OK, EXIT_CHANGES) and not report.failures:
        echo(f"error: {counts['error']} problem(s) found in the topology files (listed on stdout)", err=True)
    ctx.exit(report.exit_code)


def _failed_report(command: str, rules: Any, error: TopologyError) -> Any:
    """The report of a command stopped by ``error``: the problems of files that cannot be loaded,
    or the error itself."""
    from topology.render.diagnostics import INVALID, Report, from_problems

    if isinstance(error, ConfigError):
        return Report(command, rules, tuple(from_problems(error.problems, INVALID)), exit_code=error.exit_code)
    return Report(command, rules, failures=(*error.details, str(error)), exit_code=error.exit_code)


def _validation_report(paths: tuple[str, ...], values: tuple[str, ...], broker_version: tuple[int, ...] | None,
                       selection: Any) -> Any:
    """What validate finds, for --format sarif and github: every problem, warning and version rule
    broken, of every target with --all-targets."""
    from topology.loader import load_valid
    from topology.render.diagnostics import BROKER_VERSION, INVALID, SUSPECT, VALIDATE_RULES, Report, from_problems
    from topology.targets import resolve_jobs

    def work(job: Any) -> tuple[int, Any]:
        target = job.target if selection.all_targets else ""
        try:
            topology = load_valid(job.paths, job.values, job.secret_names, offline=True, root=job.root)
        except ConfigError as error:
            return error.exit_code, from_problems(error.problems, INVALID, target) + from_problems(error.warnings, SUSPECT, target)
        found = from_problems(topology.warnings, SUSPECT, target)
        try:
            _check_given_version(topology, broker_version, job)
        except ConfigError as error:
            return error.exit_code, found + from_problems(error.problems, BROKER_VERSION, target)
        return EXIT_OK, found

    try:
        results = _run_jobs(resolve_jobs(selection, paths, values, None, connects=False), selection, work)
    except TopologyError as error:
        return _failed_report("validate", VALIDATE_RULES, error)
    found = tuple(d for r in results for d in r.value or ())
    failures = tuple(f"target {r.name}: {line}" for r in results if r.error for line in (*r.details, r.error))
    return Report("validate", VALIDATE_RULES, found, failures, _worst(results) if selection.all_targets else results[0].code)


prune_option = click.option(
    "--prune", is_flag=True,
    help="Also delete objects in managed vhosts that no file declares (protected objects excepted; docs: concepts/safety.md, Pruning).",
)


def _per_target(path: str | None, job: Any, selection: Any) -> str | None:
    """``path`` for this job: with --all-targets, ``{target}`` in it becomes the target's name."""
    if path is None or not selection.all_targets:
        return path
    return path.replace("{target}", job.target)


def _check_per_target(path: str | None, option: str, selection: Any) -> None:
    if path is not None and selection.all_targets and "{target}" not in path:
        raise click.UsageError(f"with --all-targets, {option} needs {{target}} in the file name, e.g. plans/{{target}}.json")


@cli.command()
@paths_argument
@click.option("--format", "output_format", type=click.Choice(["text", "json", "markdown"]), default="text",
              show_default=True, help="text for people, json for programs (docs: reference/plan-json.md), "
                                      "markdown for a pull-request comment.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 0 with no changes, 2 with changes, 1 on error.")
@click.option("--out", "out", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Also save the plan to this file, for 'apply --plan FILE' (it holds no secret). "
                   "With --all-targets, {target} in the name becomes each target's name.")
@prune_option
@values_option
@target_options
@connection_options
@click.pass_context
def plan(ctx: click.Context, paths: tuple[str, ...], output_format: str, detailed_exitcode: bool, out: str | None,
         prune: bool, values: tuple[str, ...], selection: Any, connection: Any) -> None:
    """Show what apply would change on the broker to match the files. Changes nothing."""
    from topology.targets import resolve_jobs

    _check_per_target(out, "--out", selection)
    _check_target_options(ctx, selection)
    combined = selection.all_targets and output_format in ("json", "markdown")

    def work(job: Any) -> tuple[int, Any]:
        progress = _progress("plan")
        try:
            progress.stage("loading the files")
            topology, client = _load_reading(job)
            try:
                from topology.engine import make_plan  # after the files: the broker is read meanwhile

                the_plan = make_plan(topology, client, prune=prune, stage=progress.stage)
            finally:
                client.close()
        finally:
            progress.close()
        target_out = _per_target(out, job, selection)
        if target_out is not None:
            from topology.plan import write_saved_plan

            write_saved_plan(the_plan, target_out)
        if combined:
            pass  # printed with the other targets' plans
        elif output_format == "json":
            from topology.render.json import plan_pieces

            echo_pieces(plan_pieces(the_plan))
        elif output_format == "markdown":
            from topology.render.text import render_plan_markdown

            echo(render_plan_markdown(the_plan, job.target).rstrip("\n"))
        else:
            from topology.render.text import render_plan

            echo(render_plan(the_plan, colour=_colour()), styled=True)
            if target_out is not None:
                echo(f"\nSaved the plan to {target_out}. Apply exactly this plan with: topology apply --plan {target_out}")
        return (EXIT_CHANGES if detailed_exitcode and not the_plan.empty else EXIT_OK), the_plan

    try:
        jobs = resolve_jobs(selection, paths, values, connection)
        _warn_insecure(jobs)
        results = _run_jobs(jobs, selection, work)
    except TopologyError as error:
        if output_format == "markdown":  # a pull-request comment step posts stdout: say what went wrong there too
            from topology.markup import markdown_cell

            lines = [str(p) for p in getattr(error, "problems", ())] + list(error.details)
            echo(f"### :x: topology plan: error\n\n{markdown_cell(error)}" + ("\n" if lines else "")
                 + "".join(f"\n- {markdown_cell(line)}" for line in lines))
        raise
    if combined and output_format == "json":
        from topology.render.stream import Items, pieces

        echo_pieces(pieces({"targets": [
            {"target": r.name, "plan": r.value.to_dict(items=Items) if r.value is not None else None, "error": r.error,
             "details": r.details}
            for r in results
        ]}))
        ctx.exit(_worst(results))
    if combined:
        from topology.markup import markdown_cell
        from topology.render.text import render_plan_markdown

        echo("\n".join(
            render_plan_markdown(r.value, r.name) if r.value is not None
            else f"### :x: topology plan for {r.name}: error\n\n{markdown_cell(r.error or '')}\n"
            + "".join(f"\n- {markdown_cell(line)}" for line in r.details) + ("\n" if r.details else "")
            for r in results
        ).rstrip("\n"))
        ctx.exit(_worst(results))
    if selection.all_targets:
        ctx.exit(_print_results(results, lambda r: "no changes" if r.value.empty else _summary(r.value)))
    ctx.exit(results[0].code)


def _summary(the_plan: Any) -> str:
    from topology.render.text import summary_line

    return summary_line(the_plan).removeprefix("Plan: ").rstrip(".")


@cli.command()
@paths_argument
@click.option("--format", "output_format", type=click.Choice(["text", "json", "markdown", "junit"]), default="text",
              show_default=True, help="text for people, json for programs, markdown for a pull-request comment, "
                                      "junit for CI test reports (docs: reference/drift-report.md).")
@click.option("--fail-on-orphans", is_flag=True,
              help="Count objects in the managed vhosts that no file declares as drift (they are always listed).")
@values_option
@target_options
@connection_options
@click.pass_context
def drift(ctx: click.Context, paths: tuple[str, ...], output_format: str, fail_on_orphans: bool,
          values: tuple[str, ...], selection: Any, connection: Any) -> None:
    """Compare the broker with the files, high availability included. Changes nothing.

    Exit 0 in sync, 2 when drift is found, 1 on error."""
    from dataclasses import replace

    from topology.targets import resolve_jobs

    _check_target_options(ctx, selection)
    combined = selection.all_targets and output_format in ("json", "junit", "markdown")

    def work(job: Any) -> tuple[int, Any]:
        topology, client = _load_reading(job)
        from topology.engine import check_drift  # after the files: the broker is read meanwhile
        from topology.render import drift as render_drift

        try:
            report = replace(check_drift(topology, client, fail_on_orphans=fail_on_orphans), target=job.target)
        finally:
            client.close()
        if not combined:
            echo_pieces(render_drift.render_pieces(report, output_format), painted=output_format == "text")
        return (EXIT_DRIFT if report.drifted else EXIT_OK), report

    jobs = resolve_jobs(selection, paths, values, connection)
    _warn_insecure(jobs)
    results = _run_jobs(jobs, selection, work)
    if combined:
        from topology.render import drift as render_drift

        outcomes = [(r.name, r.value, r.error, r.details) for r in results]
        echo_pieces(render_drift.render_many_pieces(outcomes, output_format))
        ctx.exit(_worst(results))
    if selection.all_targets:
        ctx.exit(_print_results(results, lambda r: "drift found" if r.value.drifted else "in sync"))
    ctx.exit(results[0].code)


@cli.command()
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Directory to write the files to (vhosts/<name>.yaml, cluster.yaml); existing files of the same "
                   "names are overwritten, others left alone.")
@click.option("--vhost", "vhosts", multiple=True,
              help="Export this vhost (repeatable). Default: every vhost but the default one '/'.")
@click.option("--from-definitions", "definitions_file", type=click.Path(dir_okay=False), default=None,
              help="Read a RabbitMQ definitions file (as 'rabbitmqctl export_definitions' or the management UI "
                   "write) instead of the broker.")
@click.option("--no-users", is_flag=True, help="Leave users, permissions and global parameters out.")
@click.option("--include-connecting-user", is_flag=True,
              help="Also export the user this command connects as (--user; RabbitMQ gives it a permission on every "
                   "vhost it creates), with its permissions. Default: left out, and said so on stderr.")
@click.option("--password-variables", is_flag=True,
              help="Write each user that has a password with password: ${<USER>_PASSWORD}, so that the files manage "
                   "passwords (planning then needs the variables). Default: users without a password, which the "
                   "tool leaves as it is.")
@click.option("--transform", "transforms", multiple=True, type=click.Choice(["quorum"]),
              help="quorum: classic mirrored queues become quorum queues (ha-* policy keys dropped, arguments quorum "
                   "queues refuse removed or rewritten); every change is listed.")
@connection_options
@target_options
@click.pass_context
def export(ctx: click.Context, out_dir: str, vhosts: tuple[str, ...], definitions_file: str | None, no_users: bool,
           include_connecting_user: bool, password_variables: bool, transforms: tuple[str, ...], connection: Any,
           selection: Any) -> None:
    """Write the project's YAML files from a live broker or a definitions file.

    The files plan to no change against the broker they came from. No secret is written: users
    come without a password (left as it is; --password-variables writes ${VARIABLES}), and URIs
    that hold one become ${VARIABLES}, listed at the end. What is left out (built-in and
    server-named objects, plugins' internal ones, the default vhost unless named, the user this
    command connects as) is listed too.
    """
    from pathlib import Path

    from topology.broker.live import live_definitions
    from topology.export import export_definitions, hide_secret_values, render_file
    from topology.targets import project_secrets
    from topology.variables import is_secret_name

    if selection.all_targets:
        raise click.UsageError("export reads one broker: give --target NAME, not --all-targets")
    if definitions_file is not None:
        from topology.export import parse_definitions

        try:
            data = Path(definitions_file).read_bytes()
        except OSError as error:
            raise TopologyError(f"cannot read {definitions_file}: {error.strerror or error}") from None
        document = parse_definitions(data, definitions_file)
        source = Path(definitions_file).name
        password = os.environ.get("TOPOLOGY_PASSWORD", "guest")
        connecting_user = connection.user
    else:
        from topology.targets import resolve_jobs

        _check_target_options(ctx, selection)
        job = resolve_jobs(selection, (), (), connection, needs_paths=False)[0]
        client = job.client()
        try:
            document = live_definitions(client)
        finally:
            client.close()
        source = client.url
        password = job.password
        connecting_user = client.user
    result = export_definitions(document, list(vhosts) or None, users=not no_users,
                                connecting_user=None if include_connecting_user else connecting_user,
                                password_variables=password_variables)
    # secret variables' values the broker holds become ${NAME}; the management password (never
    # written as a variable, like "guest", the well-known default) stops the export instead
    declared = project_secrets(selection.project)
    hide_secret_values(result, {name: value for name, value in os.environ.items()
                                if is_secret_name(name, declared) and value not in (password, "guest")},
                       unnamed=[password] if password and password not in ("guest", connecting_user) else [])
    if not result.files:
        raise TopologyError("nothing to export: " + ("; ".join(result.skipped) or "the source holds no vhost"))
    changes: list[str] = []
    if "quorum" in transforms:
        from topology.transform import to_quorum

        from topology.broker.live import BrokerInfo

        version = BrokerInfo("", str(document.get("rabbitmq_version") or document.get("rabbit_version") or ""), "")
        changes = to_quorum(result.files, version.version_tuple or None).changes
    from topology.schema import SCHEMA_FILE_NAME, packaged

    root = Path(out_dir)
    for path, data in sorted(result.files.items()):
        target = root / path
        schema = Path(os.path.relpath(root / SCHEMA_FILE_NAME, target.parent)).as_posix()
        _write_new(target, render_file(data, source, schema), 0o644, inside=root)
        echo(f"wrote {target}")
    _write_new(root / SCHEMA_FILE_NAME, packaged(), 0o644, inside=root)
    echo(f"wrote {root / SCHEMA_FILE_NAME} (the files' JSON Schema, for editors)")
    for line in result.skipped:
        echo(f"skipped: {line}")
    if result.connecting_user is not None:
        echo(f"skipped: user {result.connecting_user!r} and its permissions: the user this command connects as "
             "(--include-connecting-user exports them)", err=True)
    for line in result.notes:
        echo(f"note: {line}")
    for line in changes:
        echo(f"transform: {line}")
    if transforms and not changes:
        echo("transform: nothing to change (no classic mirrored queue, no ha-* policy key)")
    if result.variables:
        echo("Set these environment variables before planning (the files refer to them; no secret was written):")
        for name, what in sorted(result.variables.items()):
            echo(f"  {name}: {what}")


@cli.command()
@paths_argument
@values_option
@click.option("--format", "output_format", type=click.Choice(["definitions", "k8s"]), required=True,
              help="definitions: a RabbitMQ definitions document (JSON); k8s: Messaging Topology Operator resources "
                   "(multi-document YAML).")
@click.option("--cluster-name", default=None, help="k8s: the RabbitmqCluster the resources refer to (required).")
@click.option("--namespace", default=None, help="k8s: the namespace of every resource.")
@click.option("--secrets", "secrets_mode", type=click.Choice(["template", "resolve"]), default="template",
              help="template (default): passwords and URIs with a password are written as their ${VARIABLES}; "
                   "resolve: real URIs, and passwords as hashes made here (needs --out).")
@click.option("--out", "out_file", type=click.Path(dir_okay=False), default=None,
              help="Write to this file (created private, mode 600) instead of standard output.")
@click.option("--skip-unsupported", is_flag=True,
              help="Render what the format can express and list the rest, instead of failing.")
@target_options
@click.pass_context
def render(ctx: click.Context, paths: tuple[str, ...], values: tuple[str, ...], output_format: str,
           cluster_name: str | None, namespace: str | None, secrets_mode: str, out_file: str | None,
           skip_unsupported: bool, selection: Any) -> None:
    """Write the files as a RabbitMQ definitions document or as Kubernetes custom resources.

    Offline: no broker is read. Exit 1 when the files declare a setting the format cannot
    express (listed), unless --skip-unsupported; metadata that changes nothing the broker does
    (a vhost's description) is left out with a warning.
    """
    from topology.render.definitions import Secrets, render_definitions, write_output
    from topology.render.kubernetes import render_kubernetes
    from topology.state import desired_state
    from topology.targets import resolve_jobs

    if selection.all_targets:
        raise click.UsageError("render writes one document: give --target NAME, not --all-targets")
    if output_format == "k8s" and not cluster_name:
        raise click.UsageError("--format k8s needs --cluster-name NAME (the RabbitmqCluster the resources belong to)")
    if output_format != "k8s" and (cluster_name or namespace):
        raise click.UsageError("--cluster-name and --namespace are for --format k8s")
    import re

    label = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
    if cluster_name and (len(cluster_name) > 253 or not re.fullmatch(rf"{label}(\.{label})*", cluster_name)):
        raise click.UsageError(f"--cluster-name {cluster_name!r} is not a Kubernetes name (lower-case letters, digits, "
                               "inner '-' and '.')")
    if namespace and (len(namespace) > 63 or not re.fullmatch(label, namespace)):
        raise click.UsageError(f"--namespace {namespace!r} is not a Kubernetes namespace (at most 63 lower-case "
                               "letters, digits and inner '-')")
    if secrets_mode == "resolve" and out_file is None:
        raise click.UsageError("--secrets resolve writes secrets: give --out FILE (never standard output)")
    job = resolve_jobs(selection, paths, values, None, connects=False)[0]
    topology = _load(job, template=secrets_mode == "template")
    state = desired_state(topology)
    secrets = Secrets(secrets_mode)
    if output_format == "definitions":
        result = render_definitions(state, secrets)
    else:
        assert cluster_name is not None
        result = render_kubernetes(state, cluster_name, namespace, secrets)
    if result.unsupported and not skip_unsupported:
        error = TopologyError(f"{len(result.unsupported)} declared setting(s) cannot be expressed as {output_format} "
                              "(listed above); --skip-unsupported renders the rest")
        error.details = [f"unsupported: {line}" for line in result.unsupported]
        raise error
    if result.secrets and out_file is None:
        error = TopologyError(f"the {output_format} output would hold secrets (listed above): give --out FILE, "
                              "or take them from variables")
        error.details = [f"secret: {line}" for line in result.secrets]
        raise error
    text = write_output(result, output_format)
    if out_file is None:
        from topology.redact import redact

        if redact(text) != text:  # masking would change the document: never print a corrupted one
            raise TopologyError(f"the {output_format} output holds text equal to a secret's value (a name, say); "
                                "it is not printed: give --out FILE")
        echo(text.rstrip("\n"))
    else:
        from pathlib import Path

        _write_new(Path(out_file), text, 0o600)
        echo(f"wrote {out_file}", err=True)
    for line in result.unsupported:
        echo(f"skipped: {line}", err=True)
    for line in result.dropped:
        warn(line)
    for line in result.notes:
        echo(f"note: {line}", err=True)
    if result.variables:
        echo("Substitute these variables before " + ("loading (RabbitMQ does not):" if output_format == "definitions"
                                                       else "applying (Kubernetes does not):"), err=True)
        for name, what in sorted(result.variables.items()):
            echo(f"  {name}: {what}", err=True)


def _header(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, Any]:
    """``--header key=value``: the value as JSON when it parses (``10`` a number, ``"10"`` text), else text."""
    import json

    headers: dict[str, Any] = {}
    for item in values:
        key, equals, text = item.partition("=")
        if not equals or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", ctx=ctx, param=param)
        try:
            headers[key] = json.loads(text)
        except ValueError:
            headers[key] = text
    return headers


@cli.command()
@paths_argument
@values_option
@click.option("--vhost", required=True, help="The vhost the message is published in.")
@click.option("--exchange", required=True, help="The exchange it is published to ('' for the default exchange).")
@click.option("--routing-key", default="", help="Its routing key.")
@click.option("--header", "headers", multiple=True, metavar="KEY=VALUE", callback=_header,
              help="A message header (repeat); the value is read as JSON when it parses (size=10 is the number 10, "
                   "size='\"10\"' the text), else as text. CC and BCC (JSON arrays) add routing keys.")
@click.option("--dead-letter", type=click.Choice(["rejected", "expired", "maxlen", "delivery_limit"]), default=None,
              help="Also follow where the message goes if it dies in each queue it reaches, for this reason.")
@click.option("--broker-version", callback=_broker_version, default=None, metavar="VERSION",
              help="Route with the rules of this RabbitMQ version (default 3.10.8; from 3.13 header values "
                   "compare exactly: 10 is not 10.0).")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text",
              help="text, or json (an object with a queues list).")
@target_options
@click.pass_context
def route(ctx: click.Context, paths: tuple[str, ...], values: tuple[str, ...], vhost: str, exchange: str,
          routing_key: str, headers: dict[str, Any], dead_letter: str | None, broker_version: tuple[int, ...] | None,
          output_format: str, selection: Any) -> None:
    """Show which queues a message reaches, and by which path, as RabbitMQ would route it.

    Offline: the files are the topology; no broker is read.
    """
    import json

    from topology.route import Message, RouteError
    from topology.route import route as simulate
    from topology.state import desired_state
    from topology.targets import resolve_jobs

    if selection.all_targets:
        raise click.UsageError("route simulates one topology: give --target NAME, not --all-targets")
    job = resolve_jobs(selection, paths, values, None, connects=False)[0]
    state = desired_state(_load(job, offline=True))
    try:
        result = simulate(state, vhost, Message(exchange, routing_key, headers), dead_letter=dead_letter,
                          version=_offline_version(broker_version, job))
    except RouteError as error:
        raise TopologyError(str(error)) from None
    if output_format == "json":
        echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
        return
    from topology.render.route import route_text

    echo(route_text(result))


@cli.command()
@paths_argument
@values_option
@click.option("--vhost", required=True, help="The queue's vhost.")
@click.option("--queue", required=True, help="The queue.")
@click.option("--broker-version", callback=_broker_version, default=None, metavar="VERSION",
              help="Resolve with the rules of this RabbitMQ version (default 3.10.8: which policy keys each queue "
                   "type takes changed over versions).")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", help="text or json.")
@target_options
@click.pass_context
def explain(ctx: click.Context, paths: tuple[str, ...], values: tuple[str, ...], vhost: str, queue: str,
            broker_version: tuple[int, ...] | None, output_format: str, selection: Any) -> None:
    """Show a queue's declared arguments, the policies that match it, which win, and the
    effective value of each setting with where it comes from. Offline."""
    import json

    from topology.policies import resolve
    from topology.render.explain import explain_dict, explain_text
    from topology.route import Network, RouteError
    from topology.state import desired_state
    from topology.targets import resolve_jobs

    if selection.all_targets:
        raise click.UsageError("explain reads one topology: give --target NAME, not --all-targets")
    job = resolve_jobs(selection, paths, values, None, connects=False)[0]
    state = desired_state(_load(job, offline=True))
    version = _offline_version(broker_version, job, quiet=True)  # its output names the version
    try:
        network = Network(state, vhost, version)
    except RouteError as error:
        raise TopologyError(str(error)) from None
    spec = network.queues.get(queue)
    if spec is None:
        raise TopologyError(f"vhost {vhost!r} has no queue {queue!r} in the files")
    found = resolve(queue, spec.type, spec.arguments, network.policies, network.operator_policies, version)
    if output_format == "json":
        echo(json.dumps(explain_dict(spec, found, version), indent=2, ensure_ascii=False))
    else:
        echo(explain_text(spec, found, version))


@cli.command(name="lint")
@paths_argument
@values_option
@click.option("--strict", is_flag=True, help="Warnings fail too (exit 2), not only errors.")
@click.option("--ignore", "ignored", multiple=True, metavar="RULE",
              help="Leave out this rule (repeat), e.g. --ignore TOP009.")
@click.option("--broker-version", callback=_broker_version, default=None, metavar="VERSION",
              help="The broker's version, for the rules that depend on it (classic mirroring, lazy queues).")
@click.option("--cluster-size", type=int, default=None, callback=_within(1, None, "node"),
              help="Nodes in the cluster (1 or more), for TOP007 (quorum group sizes).")
@click.option("--format", "output_format", type=click.Choice(["text", "json", *CI_FORMATS]), default="text",
              show_default=True, help="text for people, json for programs; " + CI_FORMAT_HELP.removeprefix("text for people; "))
@target_options
@click.pass_context
def lint_command(ctx: click.Context, paths: tuple[str, ...], values: tuple[str, ...], strict: bool,
                 ignored: tuple[str, ...], broker_version: tuple[int, ...] | None, cluster_size: int | None,
                 output_format: str, selection: Any) -> None:
    """Find what RabbitMQ accepts but is likely to lose messages or surprise, offline.

    Exit 0 when clean (info and, without --strict, warnings do not count), 2 on a finding that
    counts, 1 when the files cannot be read. Suppress a rule for one object with a comment on its
    line: # lint: ignore TOP008.
    """
    import json

    from topology.lint import ERROR, INFO, RULES, Options, lint
    from topology.state import desired_state
    from topology.targets import resolve_jobs

    if selection.all_targets:
        raise click.UsageError("lint reads one topology: give --target NAME, not --all-targets")
    unknown = sorted(set(ignored) - set(RULES))
    if unknown:
        raise click.UsageError(f"no such rule: {', '.join(unknown)} (the rules: {', '.join(sorted(RULES))})")
    try:
        job = resolve_jobs(selection, paths, values, None, connects=False)[0]
        topology = _load(job, offline=True)
    except TopologyError as error:
        if output_format not in CI_FORMATS:
            raise
        from topology.render.diagnostics import lint_rules

        _ci_output(ctx, output_format, _failed_report("lint", lint_rules(), error))
    found = lint(topology, desired_state(topology), Options(broker_version or job.broker_version, cluster_size,
                                                            frozenset(ignored)))
    failing = [f for f in found if f.severity == ERROR or (strict and f.severity != INFO)]
    if output_format in CI_FORMATS:
        from topology.render.diagnostics import Report, from_findings, lint_rules

        _ci_output(ctx, output_format, Report("lint", lint_rules(), tuple(from_findings(found)),
                                              exit_code=EXIT_CHANGES if failing else EXIT_OK))
    if output_format == "json":
        echo(json.dumps({"findings": [f.to_dict() for f in found], "failing": len(failing)}, indent=2,
                        ensure_ascii=False))
    else:
        for finding in found:
            echo(str(finding), painted=True)
        counts = {s: sum(1 for f in found if f.severity == s) for s in ("error", "warning", "info")}
        echo(f"{counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} note(s)"
             + ("" if not found else "; suppress one with a '# lint: ignore RULE' comment on its line"))
    if failing:
        ctx.exit(EXIT_CHANGES)


@cli.command()
@paths_argument
@values_option
@click.option("--format", "output_format", type=click.Choice(["mermaid", "dot"]), default="mermaid",
              help="mermaid (default) or dot (Graphviz).")
@click.option("--vhost", "vhosts", multiple=True, help="Only this vhost (repeat); default: every vhost.")
@target_options
@click.pass_context
def graph(ctx: click.Context, paths: tuple[str, ...], values: tuple[str, ...], output_format: str,
          vhosts: tuple[str, ...], selection: Any) -> None:
    """Draw the exchanges, queues, bindings, dead-letter routes and alternate exchanges, offline."""
    from topology.render.graph import render as render_graph
    from topology.state import desired_state
    from topology.targets import resolve_jobs

    if selection.all_targets:
        raise click.UsageError("graph draws one topology: give --target NAME, not --all-targets")
    job = resolve_jobs(selection, paths, values, None, connects=False)[0]
    state = desired_state(_load(job, offline=True))
    for vhost in vhosts:
        if vhost not in state.vhosts:
            raise TopologyError(f"vhost {vhost!r} is not declared in the files")
    echo(render_graph(state, output_format, list(vhosts) or None).rstrip("\n"))


@cli.command(name="test")
@paths_argument
@values_option
@click.option("--live", is_flag=True,
              help="Run the tests on the broker, in throw-away vhosts built from the files (deleted after), "
                   "instead of with the simulator.")
@click.option("--amqp-url", envvar="TOPOLOGY_AMQP_URL", default=None,
              help="--live: the AMQP URL to publish through [env TOPOLOGY_AMQP_URL; default: the management host, "
                   "port 5672].")
@click.option("--vhost-prefix", default=None, metavar="PREFIX", envvar="TOPOLOGY_TEST_VHOST_PREFIX",
              help="--live: how the throw-away vhosts' names start, before 12 random hex digits (for brokers with "
                   "naming rules) [env TOPOLOGY_TEST_VHOST_PREFIX; default: topology-test-].")
@click.option("--broker-version", callback=_broker_version, default=None, metavar="VERSION",
              help="Offline: simulate with the rules of this RabbitMQ version (default 3.10.8).")
@click.option("--format", "output_format", type=click.Choice(["text", "json", "junit"]), default="text",
              help="text, json (an object with a tests list), or junit for CI test reports (a suite per file).")
@connection_options
@target_options
@click.pass_context
def test_command(ctx: click.Context, paths: tuple[str, ...], values: tuple[str, ...], live: bool,
                 amqp_url: str | None, vhost_prefix: str | None, broker_version: tuple[int, ...] | None,
                 output_format: str, selection: Any, connection: Any) -> None:
    """Run the routing tests of the files (tests:): each message must reach exactly its queues.

    Offline by default (the simulator). Exit 0 when every test passes, 2 when one fails,
    1 when they cannot be run.
    """
    import json

    from topology import redact
    from topology.routing_tests import LIVE_PREFIX, PREFIX_MAX_BYTES, run_live, run_offline
    from topology.state import desired_state
    from topology.targets import resolve_jobs

    if selection.all_targets:
        raise click.UsageError("test runs one topology: give --target NAME, not --all-targets")
    if vhost_prefix is not None and not live:
        raise click.UsageError("--vhost-prefix names the throw-away vhosts of --live; offline tests make none")
    if vhost_prefix is not None and (not vhost_prefix or len(vhost_prefix.encode("utf-8")) > PREFIX_MAX_BYTES):
        raise click.BadParameter(f"give 1 to {PREFIX_MAX_BYTES} bytes", param_hint="'--vhost-prefix'")
    redact.register_url(amqp_url)
    job = resolve_jobs(selection, paths, values, connection if live else None, amqp_url=amqp_url,
                       connects=live)[0]
    # the throw-away vhosts hold exchanges, queues, bindings and policies only: no user or shovel
    # is made, so their secrets (passwords, URIs) are not needed, live or not
    topology = _load(job, offline=True)
    if not topology.tests:
        raise TopologyError("the files hold no routing test (a tests: section)")
    state = desired_state(topology)
    leftovers: list[str] = []
    made: list[str] = []
    if live:
        client = job.client()
        try:
            outcomes, leftovers = run_live(topology, state, client, job.amqp(), vhost_prefix or LIVE_PREFIX, made)
        finally:
            client.close()
    else:
        outcomes = run_offline(topology, state, _offline_version(broker_version, job))
    failed = [o for o in outcomes if not o.passed]
    if output_format == "json":
        document: dict[str, Any] = {"mode": "live" if live else "offline", "passed": len(outcomes) - len(failed),
                                    "failed": len(failed), "tests": [o.to_dict() for o in outcomes]}
        if live:
            document["throwaway_vhosts"] = made
        echo(json.dumps(document, indent=2, ensure_ascii=False))
    elif output_format == "junit":
        from topology.render.junit import render_routing_tests

        echo(render_routing_tests(topology.tests, outcomes, live).rstrip("\n"))
    else:
        from topology.render.route import outcome_text

        for outcome in outcomes:
            echo(outcome_text(outcome), painted=True)
        echo(f"{len(outcomes) - len(failed)} passed, {len(failed)} failed ({'on the broker' if live else 'simulated'})")
    for line in leftovers:
        warn(f"could not delete the throw-away vhost {line}; delete it by hand")
    if failed:
        ctx.exit(EXIT_CHANGES)


def _write_new(target: Path, text: str, mode: int, inside: Path | None = None) -> None:
    """Write ``text`` to ``target`` (made, or emptied, with ``mode``), never through a link: a
    symbolic link at ``target`` is refused, and so is a folder on the way that leads out of
    ``inside`` (what a command writes goes where its --out says, secrets included)."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if inside is not None and not target.parent.resolve().is_relative_to(inside.resolve()):
            raise TopologyError(f"cannot write {target}: a link on the way leads out of {inside}")
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
        os.fchmod(descriptor, mode)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as error:
        if target.is_symlink():
            raise TopologyError(f"cannot write {target}: it is a symbolic link (not written through)") from None
        raise TopologyError(f"cannot write {target}: {error.strerror or error}") from None


@cli.command("schema")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Write the schema to this file instead of printing it.")
def schema_command(out: str | None) -> None:
    """Print the JSON Schema of the topology files, for editors and CI.

    With the YAML language server (VS Code's YAML extension, Neovim, JetBrains IDEs), a first line
    '# yaml-language-server: $schema=topology.schema.json' in a topology file completes and checks
    it as you type; 'topology export' writes both.
    """
    from topology.schema import packaged

    if out is None:
        echo(packaged().rstrip("\n"))
        return
    from pathlib import Path

    _write_new(Path(out), packaged(), 0o644)
    echo(f"wrote {out}")


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--plan", "plan_file", type=click.Path(dir_okay=False), default=None,
              help="Apply this saved plan (from 'plan --out') instead of planning from files; refused if stale. "
                   "With --all-targets, {target} in the name becomes each target's name.")
@click.option("--auto-approve", is_flag=True, help="Apply without asking for confirmation.")
@click.option("--dry-run", is_flag=True, help="Print the plan and change nothing.")
@prune_option
@click.option("--allow-replace", is_flag=True,
              help="Allow deleting and re-declaring objects the broker cannot change in place (never queues holding messages).")
@click.option("--migrate-messages", is_flag=True,
              help="Replace queues by moving their messages to a temporary queue and back, bindings included.")
@click.option("--allow-data-loss", is_flag=True, help="With --prune, also delete queues that hold messages.")
@click.option("--lock-timeout", type=float, default=0.0, show_default=True, callback=_within(0, 86400, "seconds"),
              help="Seconds to wait for other applies to release the locks this apply needs (0 to 86400; those of "
                   "the vhosts it changes); says every 10 s who holds them.")
@click.option("--amqp-url", envvar="TOPOLOGY_AMQP_URL", default=None,
              help="AMQP URL for the apply locks, emptiness checks and message migration [env TOPOLOGY_AMQP_URL; "
                   "default: the management host, port 5672, same credentials]. Its path names the vhost of the lock "
                   "queues (default /).")
@values_option
@target_options
@connection_options
@click.pass_context
def apply(ctx: click.Context, paths: tuple[str, ...], plan_file: str | None, auto_approve: bool, dry_run: bool,
          prune: bool, allow_replace: bool, migrate_messages: bool, allow_data_loss: bool, lock_timeout: float,
          amqp_url: str | None, values: tuple[str, ...], selection: Any, connection: Any) -> None:
    """Change the broker to match the files (or a saved plan), then check that nothing is left to do.

    Takes the apply locks of the vhosts it may change first (and the cluster-wide one when it
    changes users or global parameters): applies that touch the same ones take turns."""
    if bool(paths) == bool(plan_file) and not (selection.uses_project and not plan_file):
        raise click.UsageError("give either PATHS or --plan FILE" + ("" if paths else " (or --target NAME)"))
    if plan_file and prune:
        raise click.UsageError("--prune is decided when the plan is made: use 'plan --prune --out FILE'")
    if plan_file and values:
        raise click.UsageError("--values is used when the plan is made: use 'plan --values FILE --out PLAN'")
    if selection.all_targets and not (auto_approve or dry_run):
        raise click.UsageError("--all-targets applies without asking: add --auto-approve (or use --dry-run)")
    _check_per_target(plan_file, "--plan", selection)
    _check_target_options(ctx, selection)
    from topology import redact
    from topology.locks import EarlyLocks, keys_for_plan, keys_for_topology, lock_groups, plan_under_locks
    from topology.targets import resolve_jobs

    redact.register_url(amqp_url)

    checked: dict[int, Any] = {}
    """With --all-targets, the plan each target's preflight made: applied as a saved plan."""

    def work(job: Any) -> tuple[int, Any]:
        target_plan = _per_target(plan_file, job, selection)
        saved = checked.get(id(job)) or (_read_saved_plan(target_plan) if target_plan else None)
        lock, gate = None, None
        if saved is not None:
            topology, client = None, job.client()
        elif dry_run:
            topology, client = _load_reading(job)
        else:
            # the lock's connection opens while the files load, and takes each vhost's lock as the
            # files name it (never waiting): a vhost is read once its lock is held, the rest once all are
            client = _client(job)
            gate = threading.Event()
            problem, early = None, None
            try:
                lock = _apply_lock(job.amqp(), client)
                lock.open()
                early = EarlyLocks(lock.try_take, read_now=lambda vhost: client.read_ahead_vhost(vhost, gated=False),
                                   read_later=client.read_ahead_vhost)
            except TopologyError as error:  # reported after any problem in the files
                problem = error
            try:
                topology, client = _load_reading(job, gate, client, on_vhost=early.named if early else None)
                if early is not None:
                    early.finish()
                if problem is not None:
                    raise problem
            except BaseException:
                client.cancelled = True
                gate.set()
                if early is not None:
                    early.finish(wait=False)
                if lock is not None:
                    lock.release()
                client.close()  # its reading threads and sessions (closing twice is harmless)
                raise
        try:
            if dry_run:
                the_plan = _current_plan(topology, saved, client, prune)
                echo(_render(the_plan), styled=True)
                echo("\nDry run: nothing was changed.")
                return EXIT_OK, the_plan
            from topology.apply import ApplyOptions, ChecksAhead  # after the files: the broker is read meanwhile
            from topology.broker.amqp import MessageMover

            lock = lock or _apply_lock(job.amqp(), client)
            mover = MessageMover(lock.amqp, guard=lock.check)  # a lost lock stops a migration within a message
            # asking no one, the checks before the first write begin with the plan (not after its printing);
            # not where they are the only check of each deletion
            ahead = ChecksAhead(mover) if auto_approve and saved is None and not allow_data_loss else None

            def make() -> Any:
                if gate is not None:
                    gate.set()
                return _current_plan(topology, saved, client, prune, checks_ahead=ahead)

            try:
                first = keys_for_plan(saved) if saved is not None else keys_for_topology(topology)
                the_plan = plan_under_locks(lock, first, make, lock_timeout)
                options = ApplyOptions(
                    allow_replace=allow_replace, migrate_messages=migrate_messages, allow_data_loss=allow_data_loss,
                    mover=mover, lock=lock, amqp_user=lock.amqp.user, checks_ahead=ahead,
                )
                applied = _apply(topology, the_plan, client, options, auto_approve)
            finally:
                if ahead is not None:
                    ahead.finish()  # before its connections close
                lock.release()
                mover.close()
            return EXIT_OK, applied
        finally:
            client.cancelled = True
            if gate is not None:
                gate.set()
            client.close()

    jobs = resolve_jobs(selection, paths, values, connection, amqp_url=amqp_url, needs_paths=not plan_file)
    _warn_insecure(jobs)
    failed: list[TargetResult] = []
    if selection.all_targets and not dry_run:
        jobs, failed, plans = _ready_to_apply(jobs, selection, prune, allow_replace, migrate_messages, allow_data_loss,
                                              plan_file)
        checked.update({id(job): plans[id(job)] for job in jobs})

    def locks_of(job: Any) -> tuple[Any, Any]:
        """The lock scope of a job's apply (cluster, lock vhost) and the locks it takes: those of its
        checked plan, or ``None`` when there is none (a dry run: grouped by broker all the same)."""
        try:
            amqp = job.amqp()
        except TopologyError:
            return id(job), frozenset()  # alone: its apply fails with this error, as its own result
        the_plan = checked.get(id(job))
        cluster = the_plan.broker.cluster_name if the_plan is not None and the_plan.broker else ""
        return (cluster or amqp.display, amqp.lock_vhost), (keys_for_plan(the_plan) if the_plan is not None else None)

    # applies of this run whose locks meet take turns (else the second would find the first's lock held)
    groups = lock_groups({id(job): locks_of(job) for job in jobs})
    results = _run_jobs(jobs, selection, work, one_at_a_time=lambda job: groups[id(job)]) if jobs else []
    if selection.all_targets:
        results = sorted(results + failed, key=lambda r: r.name)
        ctx.exit(_print_results(results, lambda r: "dry run" if dry_run else f"{len(r.value)} change(s) applied"))


def _apply_lock(amqp: Any, client: Any) -> Any:
    """An apply's locks (:class:`topology.broker.amqp.ApplyLock`): who holds a lock is read through
    the management API, and a wait is told on stderr as it starts and every 10 s."""
    from topology.broker.amqp import ApplyLock

    return ApplyLock(amqp, whois=lambda vhost, queue: (client.queue_details(vhost, queue) or {}).get("arguments"),
                     on_wait=lambda line: echo(line, err=True), on_stale=client.drop_ungated_reads)

def _ready_to_apply(jobs: list[Any], selection: Any, prune: bool, allow_replace: bool, migrate_messages: bool,
                    allow_data_loss: bool, plan_file: str | None) -> tuple[list[Any], list[TargetResult], dict[int, Any]]:
    """With --all-targets, plan every target first: without --continue-on-error, nothing is
    applied anywhere unless every target planned cleanly (and the options allow its plan);
    with it, the targets that did are applied. Returns the jobs to apply, the failures, and
    each job's plan (by ``id(job)``), which is then applied as a saved plan: refused if the
    broker changed since, so what is applied is exactly what was checked."""

    def preflight(job: Any) -> tuple[int, Any]:
        target_plan = _per_target(plan_file, job, selection)
        topology = _load(job) if not target_plan else None
        saved = _read_saved_plan(target_plan) if target_plan else None
        client = job.client()
        try:
            the_plan = _current_plan(topology, saved, client, prune)
        finally:
            client.close()
        the_plan.check_allowed(allow_replace=allow_replace, migrate_messages=migrate_messages,
                               allow_data_loss=allow_data_loss)
        return EXIT_OK, the_plan

    checked = _run_jobs(jobs, selection, preflight, stop_on_error=False)
    failed = [r for r in checked if r.error]
    if failed and not selection.continue_on_error:
        for result in failed:
            for text, err in result.output:
                echo(text, err=err)
            for line in result.details:
                echo(line, err=True)
            echo(f"target {result.name}: {result.error}", err=True)
        names = ", ".join(r.name for r in failed)
        raise TopologyError(f"nothing was applied to any target: planning failed on {names} "
                            "(--continue-on-error applies the targets that planned cleanly)")
    for result in failed:
        result.error = f"not applied: {result.error}"
    return [r.job for r in checked if not r.error], failed, {id(r.job): r.value for r in checked if not r.error}


def _warn_insecure(jobs: list[Any]) -> None:
    for job in jobs:
        if job.insecure:
            warn(f"TLS certificate verification is off for {job.url}"
                 + (f" (target {job.target})" if job.target else "")
                 + ": anyone on the way can read the credentials and change what is sent")


def _current_plan(topology: Any, saved: Any, client: Any, prune: bool, checks_ahead: Any = None) -> Any:
    from topology.engine import check_saved_plan, make_plan

    if saved is not None:
        check_saved_plan(saved, client)
        return saved
    progress = _progress("plan")
    try:
        return make_plan(topology, client, prune=prune, stage=progress.stage, checks_ahead=checks_ahead)
    finally:
        progress.close()


def _render(the_plan: Any) -> str:
    from topology.render.text import render_plan

    return render_plan(the_plan, colour=_colour())


def _apply(topology: Any, the_plan: Any, client: Any, options: Any, auto_approve: bool) -> list[Any]:
    from topology.diff import Change
    from topology.engine import apply_plan
    from topology.render.text import SYMBOLS

    echo(_render(the_plan), styled=True)
    if the_plan.empty:
        return []
    # refuse before asking anyone to type yes
    the_plan.check_allowed(allow_replace=options.allow_replace, migrate_messages=options.migrate_messages,
                           allow_data_loss=options.allow_data_loss)
    if not auto_approve:
        if not sys.stdin.isatty():
            raise TopologyError("not applied: no terminal to confirm on; pass --auto-approve to apply without asking")
        answer = click.prompt("\nApply these changes? Only 'yes' will be accepted", default="", show_default=False)
        if answer.strip() != "yes":
            raise TopologyError("not applied: cancelled")
    echo("")

    progress = _progress("apply", len(the_plan.changes))
    # the lines of applied changes are written a block at a time (at most LOG_EVERY seconds late):
    # a line each was a write each, which at thousands of changes a second kept the main thread
    # waiting on the pool's threads for the interpreter
    held: list[str] = []
    written = [time.monotonic()]
    holding = threading.Lock()
    timer: list[threading.Timer] = []

    def write_held() -> None:
        with holding:
            if held:
                with progress.paused():
                    echo_lines(held, painted=True)
                held.clear()
            written[0] = time.monotonic()

    def report(change: Change, event: str) -> None:
        if event == "done":
            moved = options.messages_moved.get((change.vhost, change.name)) if change.kind == "queue" else None
            also = "" if moved is None else f", {moved:,} message(s) moved into it"
            with holding:
                held.append(f"{SYMBOLS[change.action]} {change.kind} {change.where}: {_past(change.action)}{also}")
                due = len(held) >= LOG_BLOCK or time.monotonic() - written[0] >= LOG_EVERY
                if not due and not (timer and timer[0].is_alive()):  # written by then, even if no line follows
                    timer[:] = [threading.Timer(LOG_EVERY, write_held)]
                    timer[0].daemon = True
                    timer[0].start()
            if due:
                write_held()
            progress.advance()

    try:
        applied = apply_plan(the_plan, client, topology=topology, options=options, report=report, stage=progress.stage)
    finally:
        if timer:
            timer[0].cancel()
        write_held()
        progress.close()
    matches = "the files" if topology is not None else "the plan"
    echo(f"\nApply complete: {len(applied)} change(s) applied; the broker now matches {matches}.", painted=True)
    return applied


def _past(action: str) -> str:
    return {"resume": "migration finished"}.get(action, f"{action}d")


def _show_warning(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
    warn(str(message).strip().splitlines()[0] if str(message).strip() else "a library gave an empty warning")


EXAMPLES: dict[str, tuple[str, ...]] = {
    "validate": ("topology validate examples/shop",
                 "topology validate topology/ --values prod.yaml --broker-version 4.0"),
    "plan": ("topology plan examples/shop --url http://rabbit:15672 --user admin",
             "topology plan topology/ --format markdown --out plan.json   # for a pull request"),
    "apply": ("topology apply examples/shop",
              "topology apply --plan plan.json --auto-approve              # what the pull request showed"),
    "drift": ("topology drift examples/shop",
              "topology drift topology/ --format junit --fail-on-orphans > drift.xml"),
    "export": ("topology export --out adopted/ --vhost shop",
               "topology export --out adopted/ --from-definitions definitions.json --transform quorum"),
    "render": ("topology render examples/shop --format definitions --out definitions.json",
               "topology render examples/shop --format k8s --cluster-name rabbit --namespace messaging"),
    "route": ("topology route examples/shop --vhost shop --exchange orders --routing-key order.created.eu",
              "topology route examples/shop --vhost shop --exchange audit --header format=pdf"),
    "explain": ("topology explain examples/shop --vhost shop --queue orders.created",),
    "lint": ("topology lint examples/shop",
             "topology lint examples/shop --strict --ignore TOP009 --broker-version 4.0"),
    "graph": ("topology graph examples/shop --format mermaid",),
    "test": ("topology test examples/shop",
             "topology test examples/shop --live                       # on the broker, in throw-away vhosts"),
    "schema": ("topology schema --out topology.schema.json",),
    "help": ("topology help plan",),
}
"""One or two examples per command, shown at the end of its --help (the suite parses every one,
and runs those that need no broker, from the project's root)."""

for _name, _lines in EXAMPLES.items():
    cli.commands[_name].epilog = "\b\nExamples:\n" + "\n".join(f"  {line}" for line in _lines)


SWITCH_INTERVAL = 0.0005
"""Seconds a thread runs before another one that waits for the interpreter gets it (Python's
default is 0.005). A thread that reads the broker or takes the apply lock while the files load
waits for the interpreter after each of its many network steps; at the default, each such wait
can last 5 ms, and the read of a vhost started 0.05-0.1 s late. It costs nothing measurable when
one thread runs alone."""


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``topology`` console script."""
    from topology import collector

    interval = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        with collector.command():
            _main(argv)
    finally:
        sys.setswitchinterval(interval)  # the tests run many commands in one process


def _main(argv: list[str] | None = None) -> None:
    from topology import redact

    redact.forget_all()  # one command, one set of secrets (the tests run many in one process)
    import warnings

    warnings.showwarning = _show_warning  # library warnings go through the redaction too
    try:
        code = cli.main(args=argv, prog_name="topology", standalone_mode=False)
    except click.exceptions.Abort:
        echo("error: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as error:
        hint = ""
        if isinstance(error, click.UsageError) and error.ctx is not None:
            path = error.ctx.command_path
            hint = " (see 'topology help')" if path == "topology help" else f" (see '{path} --help')"
        echo(f"error: {error.format_message()}{hint}", err=True)
        sys.exit(EXIT_ERROR)
    except ConfigError as error:
        for problem in error.warnings:
            warn(str(problem))
        for problem in error.problems:
            echo(str(problem), err=True)
        echo(f"error: {error}", err=True)
        sys.exit(error.exit_code)
    except TopologyError as error:
        for line in error.details:
            echo(line, err=True)
        echo(f"error: {error}", err=True)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        echo("error: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except Exception:  # a bug in the tool: show the traceback, never a secret in it
        import traceback

        echo(traceback.format_exc().rstrip(), err=True)
        echo("error: internal error in topology (a bug: please report it with the traceback above)", err=True)
        sys.exit(EXIT_ERROR)
    sys.exit(code if isinstance(code, int) else EXIT_OK)
