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
from collections.abc import Callable
from typing import Any

import click

from topology import __version__
from topology.errors import ConfigError, TopologyError

EXIT_OK, EXIT_ERROR, EXIT_CHANGES, EXIT_INTERRUPTED = 0, 1, 2, 130  # 3: LockHeld.exit_code
EXIT_DRIFT = 2


def echo(message: Any = "", err: bool = False) -> None:
    """Print a line, with every secret redacted: all output goes through here."""
    from topology.redact import redact

    click.echo(redact(str(message)), err=err)


def connection_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--url, --user, --password (and their environment variables) for commands that talk to the broker."""

    @click.option("--url", envvar="TOPOLOGY_URL", default="http://127.0.0.1:15672", show_default=True,
                  help="Management API URL [env TOPOLOGY_URL].")
    @click.option("--user", envvar="TOPOLOGY_USER", default="guest", show_default=True,
                  help="Management user [env TOPOLOGY_USER].")
    @click.option("--password", envvar="TOPOLOGY_PASSWORD", default="guest", show_default=False,
                  help="Management password [env TOPOLOGY_PASSWORD; default guest]. Prefer the environment variable.")
    @click.option("--timeout", type=click.FloatRange(min=0.1, max=3600), default=30.0, show_default=True,
                  callback=_finite, help="Seconds to wait for each request.")
    @functools.wraps(command)
    def wrapper(*args: Any, url: str, user: str, password: str, timeout: float, **kwargs: Any) -> Any:
        from topology import redact
        from topology.broker.client import ManagementClient

        if click.get_current_context().get_parameter_source("password") != click.core.ParameterSource.DEFAULT:
            redact.register(password)  # the well-known default "guest" is no secret
        redact.register_url(url)

        client = ManagementClient(url, user, password, timeout=timeout)
        try:
            return command(*args, client=client, **kwargs)
        finally:
            client.close()

    return wrapper


def _finite(ctx: click.Context, param: click.Parameter, value: float) -> float:
    if not math.isfinite(value):
        raise click.BadParameter("must be a number of seconds", ctx=ctx, param=param)
    return value


paths_argument = click.argument("paths", nargs=-1, required=True, type=click.Path())
values_option = click.option(
    "--values", "values", multiple=True, type=click.Path(dir_okay=False),
    help="A YAML map of variable names to values for ${VAR} in the files; repeatable, the later file wins; "
         "the environment wins over all (see the README, Variables).",
)


def _colour() -> bool:
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="topology", message="%(prog)s %(version)s")
def cli() -> None:
    """Topology as code for RabbitMQ: validate, plan and apply YAML topology files."""


@cli.command()
@paths_argument
@values_option
def validate(paths: tuple[str, ...], values: tuple[str, ...]) -> None:
    """Check topology files (and directories of them) without a broker.

    Exit 0 when valid, 1 with every problem listed as file:line: location: message.
    """
    from topology.engine import load_valid

    topology = load_valid(paths, values)
    objects = sum(
        len(v.exchanges) + len(v.queues) + len(v.bindings) + len(v.policies) for v in topology.vhosts.values()
    )
    echo(f"Valid: {len(topology.vhosts)} vhost(s), {objects} object(s) in {len(topology.lines)} file(s).")


prune_option = click.option(
    "--prune", is_flag=True,
    help="Also delete objects in managed vhosts that no file declares (protected objects excepted; see the README).",
)


@cli.command()
@paths_argument
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text for people, json for programs (see the README for the JSON plan format).")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 0 with no changes, 2 with changes, 1 on error.")
@click.option("--out", "out", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Also save the plan to this file, for 'apply --plan FILE' (it holds no secret).")
@prune_option
@values_option
@connection_options
@click.pass_context
def plan(ctx: click.Context, paths: tuple[str, ...], output_format: str, detailed_exitcode: bool, out: str | None,
         prune: bool, values: tuple[str, ...], client: Any) -> None:
    """Show what apply would change on the broker to match the files. Changes nothing."""
    from topology.engine import load_valid, make_plan

    topology = load_valid(paths, values)
    the_plan = make_plan(topology, client, prune=prune)
    if out is not None:
        _write_plan(the_plan, out)
    if output_format == "json":
        from topology.render.json import render_plan

        echo(render_plan(the_plan))
    else:
        from topology.render.text import render_plan

        echo(render_plan(the_plan, colour=_colour()))
        if out is not None:
            echo(f"\nSaved the plan to {out}. Apply exactly this plan with: topology apply --plan {out}")
    if detailed_exitcode and not the_plan.empty:
        ctx.exit(EXIT_CHANGES)


@cli.command()
@paths_argument
@click.option("--format", "output_format", type=click.Choice(["text", "json", "markdown", "junit"]), default="text",
              show_default=True, help="text for people, json for programs, markdown for a pull-request comment, "
                                      "junit for CI test reports (see the README, Drift).")
@click.option("--fail-on-orphans", is_flag=True,
              help="Count objects in the managed vhosts that no file declares as drift (they are always listed).")
@values_option
@connection_options
@click.pass_context
def drift(ctx: click.Context, paths: tuple[str, ...], output_format: str, fail_on_orphans: bool,
          values: tuple[str, ...], client: Any) -> None:
    """Compare the broker with the files, high availability included. Changes nothing.

    Exit 0 in sync, 2 when drift is found, 1 on error."""
    from topology.engine import check_drift, load_valid
    from topology.render.drift import render

    topology = load_valid(paths, values)
    report = check_drift(topology, client, fail_on_orphans=fail_on_orphans)
    echo(render(report, output_format).rstrip("\n"))
    if report.drifted:
        ctx.exit(EXIT_DRIFT)


def _write_plan(the_plan: Any, path: str) -> None:
    """Write the saved plan atomically (a reader never sees half a file)."""
    import json

    from topology.plan import saved_plan

    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(saved_plan(the_plan), handle, indent=2, ensure_ascii=False)
            handle.write("\n")
        os.replace(temporary, path)
    except OSError as error:
        raise TopologyError(f"cannot write the plan to {path}: {error.strerror or error}") from None


def _read_plan(path: str) -> Any:
    import json

    from topology.plan import load_saved_plan

    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except OSError as error:
        raise TopologyError(f"cannot read the plan {path}: {error.strerror or error}") from None
    except ValueError:
        raise TopologyError(f"{path} is not a plan file written by 'topology plan --out' (not JSON)") from None
    return load_saved_plan(document, path)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--plan", "plan_file", type=click.Path(dir_okay=False), default=None,
              help="Apply this saved plan (from 'plan --out') instead of planning from files; refused if stale.")
@click.option("--auto-approve", is_flag=True, help="Apply without asking for confirmation.")
@click.option("--dry-run", is_flag=True, help="Print the plan and change nothing.")
@prune_option
@click.option("--allow-replace", is_flag=True,
              help="Allow deleting and re-declaring objects the broker cannot change in place (never queues holding messages).")
@click.option("--migrate-messages", is_flag=True,
              help="Replace queues by moving their messages to a temporary queue and back, bindings included.")
@click.option("--allow-data-loss", is_flag=True, help="With --prune, also delete queues that hold messages.")
@click.option("--lock-timeout", type=click.FloatRange(min=0, max=86400), default=0.0, show_default=True,
              callback=_finite, help="Seconds to wait for another apply to release the apply lock.")
@click.option("--amqp-url", envvar="TOPOLOGY_AMQP_URL", default=None,
              help="AMQP URL for the apply lock, emptiness checks and message migration [env TOPOLOGY_AMQP_URL; "
                   "default: the management host, port 5672, same credentials]. Its path names the lock's vhost (default /).")
@values_option
@connection_options
def apply(paths: tuple[str, ...], plan_file: str | None, auto_approve: bool, dry_run: bool, prune: bool,
          allow_replace: bool, migrate_messages: bool, allow_data_loss: bool, lock_timeout: float,
          amqp_url: str | None, values: tuple[str, ...], client: Any) -> None:
    """Change the broker to match the files (or a saved plan), then check that nothing is left to do.

    Takes the broker's apply lock first: one apply at a time."""
    if bool(paths) == bool(plan_file):
        raise click.UsageError("give either PATHS or --plan FILE")
    if plan_file and prune:
        raise click.UsageError("--prune is decided when the plan is made: use 'plan --prune --out FILE'")
    if plan_file and values:
        raise click.UsageError("--values is used when the plan is made: use 'plan --values FILE --out PLAN'")
    from topology.apply import ApplyOptions
    from topology.broker.amqp import Amqp, ApplyLock, MessageMover, default_amqp_url
    from topology.engine import load_valid

    from topology import redact

    redact.register_url(amqp_url)
    topology = load_valid(paths, values) if paths else None
    saved = _read_plan(plan_file) if plan_file else None
    amqp = Amqp(amqp_url or default_amqp_url(client.url), client.user, client.password, timeout=client.timeout)
    if dry_run:
        the_plan = _current_plan(topology, saved, client, prune)
        echo(_render(the_plan))
        echo("\nDry run: nothing was changed.")
        return
    lock = ApplyLock(amqp, whois=lambda vhost, queue: (client.queue_details(vhost, queue) or {}).get("arguments"))
    lock.acquire(lock_timeout)
    mover = MessageMover(amqp)
    options = ApplyOptions(
        allow_replace=allow_replace, migrate_messages=migrate_messages, allow_data_loss=allow_data_loss,
        mover=mover, lock=lock,
    )
    try:
        _apply(topology, _current_plan(topology, saved, client, prune), client, options, auto_approve)
    finally:
        lock.release()
        mover.close()


def _current_plan(topology: Any, saved: Any, client: Any, prune: bool) -> Any:
    from topology.engine import check_saved_plan, make_plan

    if saved is not None:
        check_saved_plan(saved, client)
        return saved
    return make_plan(topology, client, prune=prune)


def _render(the_plan: Any) -> str:
    from topology.render.text import render_plan

    return render_plan(the_plan, colour=_colour())


def _apply(topology: Any, the_plan: Any, client: Any, options: Any, auto_approve: bool) -> None:
    from topology.diff import Change
    from topology.engine import apply_plan
    from topology.render.text import SYMBOLS

    echo(_render(the_plan))
    if the_plan.empty:
        return
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

    def report(change: Change, event: str) -> None:
        if event == "done":
            where = change.vhost if change.kind == "vhost" else f"{change.vhost}/{change.name}"
            echo(f"{SYMBOLS[change.action]} {change.kind} {where}: {_past(change.action)}")

    applied = apply_plan(the_plan, client, topology=topology, options=options, report=report)
    matches = "the files" if topology is not None else "the plan"
    echo(f"\nApply complete: {len(applied)} change(s) applied; the broker now matches {matches}.")


def _past(action: str) -> str:
    return {"resume": "migration finished"}.get(action, f"{action}d")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``topology`` console script."""
    from topology import redact

    redact.forget_all()  # one command, one set of secrets (the tests run many in one process)
    try:
        code = cli.main(args=argv, prog_name="topology", standalone_mode=False)
    except click.exceptions.Abort:
        echo("error: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as error:
        hint = ""
        if isinstance(error, click.UsageError) and error.ctx is not None:
            hint = f" (see '{error.ctx.command_path} --help')"
        echo(f"error: {error.format_message()}{hint}", err=True)
        sys.exit(EXIT_ERROR)
    except ConfigError as error:
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
