"""The command line: parse options, call the engine, render, choose the exit code.

This is the only module that prints or exits. Exit codes: 0 success (and, with
``plan --detailed-exitcode``, no changes), 1 any error, 2 changes present (``plan
--detailed-exitcode`` only), 130 interrupted.
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

EXIT_OK, EXIT_ERROR, EXIT_CHANGES, EXIT_INTERRUPTED = 0, 1, 2, 130


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
        from topology.broker.client import ManagementClient

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


def _colour() -> bool:
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="topology", message="%(prog)s %(version)s")
def cli() -> None:
    """Topology as code for RabbitMQ: validate, plan and apply YAML topology files."""


@cli.command()
@paths_argument
def validate(paths: tuple[str, ...]) -> None:
    """Check topology files (and directories of them) without a broker.

    Exit 0 when valid, 1 with every problem listed as file:line: location: message.
    """
    from topology.engine import load_valid

    topology = load_valid(paths)
    objects = sum(
        len(v.exchanges) + len(v.queues) + len(v.bindings) + len(v.policies) for v in topology.vhosts.values()
    )
    click.echo(f"Valid: {len(topology.vhosts)} vhost(s), {objects} object(s) in {len(topology.lines)} file(s).")


@cli.command()
@paths_argument
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text for people, json for programs (see the README for the JSON plan format).")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 0 with no changes, 2 with changes, 1 on error.")
@connection_options
@click.pass_context
def plan(ctx: click.Context, paths: tuple[str, ...], output_format: str, detailed_exitcode: bool, client: Any) -> None:
    """Show what apply would change on the broker to match the files. Changes nothing."""
    from topology.engine import load_valid, make_plan

    topology = load_valid(paths)
    the_plan = make_plan(topology, client)
    if output_format == "json":
        from topology.render.json import render_plan

        click.echo(render_plan(the_plan))
    else:
        from topology.render.text import render_plan

        click.echo(render_plan(the_plan, colour=_colour()))
    if detailed_exitcode and not the_plan.empty:
        ctx.exit(EXIT_CHANGES)


@cli.command()
@paths_argument
@click.option("--auto-approve", is_flag=True, help="Apply without asking for confirmation.")
@click.option("--allow-replace", is_flag=True,
              help="Allow deleting and re-declaring objects the broker cannot change in place (never queues holding messages).")
@click.option("--amqp-url", envvar="TOPOLOGY_AMQP_URL", default=None,
              help="AMQP URL used to check queues before deleting them [env TOPOLOGY_AMQP_URL; default: the management "
                   "host, port 5672, same credentials].")
@connection_options
def apply(paths: tuple[str, ...], auto_approve: bool, allow_replace: bool, amqp_url: str | None, client: Any) -> None:
    """Change the broker to match the files, then check that nothing is left to do."""
    from topology.diff import Change
    from topology.engine import apply_plan, load_valid, make_plan
    from topology.render.text import SYMBOLS, render_plan

    topology = load_valid(paths)
    the_plan = make_plan(topology, client)
    click.echo(render_plan(the_plan, colour=_colour()))
    if the_plan.empty:
        return
    the_plan.check_allowed(allow_replace=allow_replace)  # refuse before asking anyone to type yes
    if not auto_approve:
        if not sys.stdin.isatty():
            raise TopologyError("not applied: no terminal to confirm on; pass --auto-approve to apply without asking")
        answer = click.prompt("\nApply these changes? Only 'yes' will be accepted", default="", show_default=False)
        if answer.strip() != "yes":
            raise TopologyError("not applied: cancelled")
    click.echo("")

    def report(change: Change, event: str) -> None:
        if event == "done":
            where = change.vhost if change.kind == "vhost" else f"{change.vhost}/{change.name}"
            click.echo(f"{SYMBOLS[change.action]} {change.kind} {where}: {change.action}d")

    from topology.broker.amqp import QueueInspector, default_amqp_url

    inspector = QueueInspector(
        amqp_url or default_amqp_url(client.url), client.user, client.password, timeout=client.timeout
    )
    try:
        applied, _ = apply_plan(
            topology, the_plan, client, inspector=inspector, allow_replace=allow_replace, report=report
        )
    finally:
        inspector.close()
    click.echo(f"\nApply complete: {len(applied)} change(s) applied; the broker now matches the files.")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``topology`` console script."""
    try:
        code = cli.main(args=argv, prog_name="topology", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("error: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as error:
        hint = ""
        if isinstance(error, click.UsageError) and error.ctx is not None:
            hint = f" (see '{error.ctx.command_path} --help')"
        click.echo(f"error: {error.format_message()}{hint}", err=True)
        sys.exit(EXIT_ERROR)
    except ConfigError as error:
        for problem in error.problems:
            click.echo(str(problem), err=True)
        click.echo(f"error: {error}", err=True)
        sys.exit(error.exit_code)
    except TopologyError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(code if isinstance(code, int) else EXIT_OK)
