"""Human output in the spirit of ``terraform plan``."""

from __future__ import annotations

import json
import re
from typing import Any

from topology.diff import AT_STAKE, CREATE, DELETE, REPLACE, RESUME, UPDATE, Change
from topology.kinds.base import PASSWORD_CHANGED, PASSWORD_SET
from topology.kinds.parameter import PARAMETER_KINDS
from topology.kinds.user import UserState
from topology.markup import markdown_cell, markdown_code
from topology.plan import Plan

SYMBOLS = {CREATE: "+", UPDATE: "~", REPLACE: "-/+", RESUME: ">>", DELETE: "-"}
COLOURS = {CREATE: "green", UPDATE: "yellow", REPLACE: "magenta", RESUME: "cyan", DELETE: "red"}


def value(v: Any) -> str:
    """A value as it is written in a file: strings quoted only when needed."""
    if v is None:
        return "(none)"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False) if (v == "" or v.strip() != v or any(c in v for c in ",:{}[]#\"'")) else v
    return json.dumps(v, ensure_ascii=False, sort_keys=True)


def parameter_summary(parameter: Any) -> str:
    """A shovel's or upstream's value on one line (URIs are already masked); an upstream set's upstreams."""
    if isinstance(parameter, dict):
        return ", ".join(f"{k}={value(v)}" for k, v in sorted(parameter.items()))
    if isinstance(parameter, list):
        return "upstreams: " + ", ".join(str(m.get("upstream")) if isinstance(m, dict) else value(m) for m in parameter)
    return value(parameter)


def summary_line(plan: Plan) -> str:
    counts = plan.summary()
    resume = f", {counts[RESUME]} migration(s) to finish" if counts[RESUME] else ""
    return (
        f"Plan: {counts[CREATE]} to create, {counts[UPDATE]} to update, "
        f"{counts[REPLACE]} to replace{resume}, {counts[DELETE]} to delete."
    )


INLINE_KINDS = ("exchange", "queue", "binding", *PARAMETER_KINDS)
"""Kinds whose creation is told on its first line; the others list their settings below it."""

_FLAG_DEFAULTS = {"durable": True, "auto_delete": False, "internal": False}


def _flat(prefix: str, item: Any) -> list[tuple[str, Any]]:
    if isinstance(item, dict) and item:
        return [pair for key in sorted(item) for pair in _flat(f"{prefix}.{key}" if prefix else str(key), item[key])]
    return [(prefix, item)]


def created_settings(change: Change) -> list[tuple[str, str]]:
    """A created object's settings as ``(name, value)``, nested maps as dotted names, empty ones left
    out; a password only as whether one is set (its value is never in a plan)."""
    props = change.after.props() if change.after else {}
    settings = []
    for key, item in props.items():
        if item is None or item == {} or item == [] or item == "":
            continue
        if key == "password" and change.kind == "user":
            settings.append(("password", "set from the files (never shown)" if item in (PASSWORD_SET, PASSWORD_CHANGED)
                             else value(item)))
            continue
        settings.extend((name, value(v)) for name, v in _flat(key, item))
    return settings


def render_change(change: Change) -> list[str]:
    """The lines for one change (its first names the action, kind and object)."""
    symbol = SYMBOLS[change.action]
    head = f"  {symbol} {change.kind} {change.name}"
    if change.action == CREATE and change.kind in ("exchange", "queue"):
        props = change.after.props() if change.after else {}
        extras = [str(props.get("type"))] + [f"{k}={value(v)}" for k, v in sorted(props.get("arguments", {}).items())]
        extras += [f"{flag}={value(props[flag])}" for flag, default in _FLAG_DEFAULTS.items()
                   if flag in props and props[flag] != default]
        head += f"  ({', '.join(extras)})"
    elif change.action == CREATE and change.kind in PARAMETER_KINDS:
        head += f"  ({parameter_summary(change.after.props().get('value') if change.after else None)})"
    lines = [head]
    if change.action == CREATE and change.kind not in INLINE_KINDS:
        lines.extend(f"        {name}: {setting}" for name, setting in created_settings(change))
    if change.action in (UPDATE, REPLACE, RESUME):
        for name, field in change.fields.items():
            lines.append(f"        {name}: {value(field.before)} -> {value(field.after)}")
    if isinstance(change.after, UserState) and change.action in (CREATE, UPDATE):  # a password the files do not declare
        note = change.after.password_note(created=change.action == CREATE)
        if note:
            lines.append(f"        {note}")
    if change.action in AT_STAKE and change.reason:
        lines.append(f"        why: {change.reason}")
    if change.kind == "queue" and change.action in AT_STAKE:
        held = "unknown (no statistics yet)" if change.messages is None else str(change.messages)
        where = "waiting to be moved back" if change.action == RESUME else "in the queue now"
        lines.append(f"        messages {where}: {held}")
        if change.messages and change.action == REPLACE:
            lines.append(
                f"        DESTRUCTIVE: it holds {change.messages} message(s); apply refuses unless "
                "--migrate-messages moves them into the new queue"
            )
        if change.messages and change.action == DELETE:
            lines.append(
                f"        DESTRUCTIVE: deletes {change.messages} message(s); apply refuses unless --allow-data-loss"
            )
    for hazard in change.hazards:
        lines.append(f"        REFUSED: {hazard}")
    if change.action == REPLACE:
        if change.rebind:
            lines.append(f"        re-creates {len(change.rebind)} binding(s) the broker drops with it:")
            lines.extend(f"          {b.name}" for b in change.rebind)
    return lines


def render_plan(plan: Plan, colour: bool = False) -> str:
    """The whole plan as text, ending with the summary line, control characters in names made
    visible (:func:`topology.terminal.visible`); with ``colour``, each change's first line is then
    coloured by its action. The result is printed as it is."""
    from topology.terminal import visible

    if not colour:
        return visible(_plan_text(plan))
    import click

    heads = {f"  {symbol} ": action for action, symbol in SYMBOLS.items()}
    lines = []
    for line in visible(_plan_text(plan)).split("\n"):
        action = next((a for prefix, a in heads.items() if line.startswith(prefix)), None)
        lines.append(click.style(line, fg=COLOURS[action]) if action else line)
    return "\n".join(lines)


def _plan_text(plan: Plan) -> str:

    sections: list[list[str]] = []
    header: list[str] = []
    if plan.broker:
        cluster = f", cluster {plan.broker.cluster_name}" if plan.broker.cluster_name else ""
        header.append(f"Broker: {plan.broker.url} (RabbitMQ {plan.broker.version}{cluster})")
    header.extend(f"Note: {note}" for note in plan.notes)
    sections.append(header)
    body: list[str] = []
    current = None
    for change in plan.changes:
        if change.vhost != current:
            current = change.vhost
            body.append(f"vhost {current}:" if current else "cluster-wide:")
        body.extend(render_change(change))
    sections.append(body)
    if plan.unmanaged:
        unmanaged = [f"Unmanaged: {len(plan.unmanaged)} object(s) in managed vhosts that no file declares (left alone):"]
        for r in plan.unmanaged:
            why = plan.protected.get(r.key)
            unmanaged.append(f"  ? {r.kind} {r.where}" + (f"  (never pruned: {why})" if why else ""))
        sections.append(unmanaged)
    if plan.replacements:
        sections.append([
            "Replacing deletes and re-declares the object: apply needs --allow-replace; queues holding "
            "messages need --migrate-messages, which moves their messages into the new queue."
        ])
    sections.append(["No changes. The broker matches the files." if plan.empty else summary_line(plan)])
    return "\n\n".join("\n".join(section) for section in sections if section)


def render_plan_markdown(plan: Plan, target: str | None = None) -> str:
    """The plan as a pull-request comment: a summary, a table of the changes, the full plan folded."""
    title = f" for {target}" if target else ""
    if plan.empty:
        head = f"### :white_check_mark: topology plan{title}: no changes"
    else:
        head = f"### :memo: topology plan{title}: {summary_line(plan).removeprefix('Plan: ').rstrip('.')}"
    lines = [head, ""]
    if plan.broker:
        cluster = f", cluster {plan.broker.cluster_name}" if plan.broker.cluster_name else ""
        lines += [f"Broker: `{plan.broker.url}` (RabbitMQ {plan.broker.version}{cluster})", ""]
    if plan.changes:
        lines += ["| | Kind | Object | What changes |", "|---|---|---|---|"]
        for change in plan.changes:
            what = "; ".join(f"{markdown_code(n)}: {markdown_code(value(f.before))} -> {markdown_code(value(f.after))}"
                             for n, f in change.fields.items())
            if change.action == "create" and change.kind in INLINE_KINDS:
                props = change.after.props() if change.after else {}
                details = [str(props["type"])] if "type" in props else []
                details += [f"{k}={value(v)}" for k, v in sorted(props.get("arguments", {}).items())]
                details += [f"{flag}={value(props[flag])}" for flag, default in _FLAG_DEFAULTS.items()
                            if flag in props and props[flag] != default]
                what = "new" + (f" ({', '.join(markdown_code(d) for d in details)})" if details else "")
            elif change.action == "create":
                settings = created_settings(change)
                what = "new" + (f" ({', '.join(markdown_code(f'{n}: {v}') for n, v in settings)})" if settings else "")
            elif change.action == "delete":
                what = markdown_cell(change.reason)
            if change.hazards:
                what += " **REFUSED: " + markdown_cell("; ".join(change.hazards)) + "**"
            elif change.kind == "queue" and change.messages and change.action in ("replace", "delete"):
                what += f" **DESTRUCTIVE: holds {change.messages} message(s)**"
            lines.append(f"| `{SYMBOLS[change.action]}` {change.action} | {change.kind} | {markdown_code(change.where)} | "
                         f"{what} |")
        lines.append("")
    if plan.unmanaged:
        lines += [f"{len(plan.unmanaged)} object(s) in the managed vhosts are declared in no file (left alone).", ""]
    full = render_plan(plan)
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", full)), default=0))  # longer than any in names
    lines += ["<details><summary>Full plan</summary>", "", fence, full, fence, "", "</details>"]
    return "\n".join(lines) + "\n"

