"""The generated parts of the documentation site (docs/), made from the code.

    .venv/bin/python scripts/docs.py          rewrite them
    .venv/bin/python scripts/docs.py --check  exit 1 if one is stale (tests/unit/test_docs.py does the same)

- docs/reference/cli.md: every command's --help, as click prints it;
- docs/reference/lint.md, between its markers: the table of lint rules, from topology.lint.RULES.
- docs/guides/ci.md, between its markers: the rule ids of validate's SARIF and annotations, from
  topology.render.diagnostics.VALIDATE_RULES.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
BEGIN, END = "<!-- generated: {name} (scripts/docs.py) -->", "<!-- end of generated: {name} -->"


def cli_page() -> str:
    import click

    from topology.cli import cli

    settings = {**cli.context_settings, "terminal_width": 100}  # the width the tool's own help has on a terminal

    def help_of(command: click.Command, path: list[str], parent: click.Context | None) -> str:
        with click.Context(command, info_name=path[-1], parent=parent, **({} if parent else settings)) as ctx:
            return command.get_help(ctx)

    parts = ["# Command line", "",
             "Every command's `--help`, as the tool prints it (`topology help COMMAND` shows the same).",
             "This page is generated from the code by `scripts/docs.py`; a test fails when it is stale.", "",
             "```text", help_of(cli, ["topology"], None), "```", ""]
    with click.Context(cli, info_name="topology", **settings) as top:
        for name in sorted(cli.commands):
            parts += [f"## topology {name}", "", "```text", help_of(cli.commands[name], ["topology", name], top),
                      "```", ""]
    return "\n".join(parts)


def lint_table() -> str:
    from topology.lint import RULES

    rows = ["| rule | name | severity | why it matters |", "|---|---|---|---|"]
    rows += [f"| `{r.id}` | {r.name} | {r.severity} | {r.why.format(docs='../')} |" for r in RULES.values()]
    return "\n".join(rows)


def validate_rules_table() -> str:
    from topology.render.diagnostics import VALIDATE_RULES

    rows = ["| rule id | name | level | what it reports |", "|---|---|---|---|"]
    rows += [f"| `{r.id}` | {r.name} | {r.level} | {r.short} {r.help} |" for r in VALIDATE_RULES]
    return "\n".join(rows)


SECTIONS = {"vhost": "Vhost", "exchange": "Exchange", "queue": "Queue", "binding": "Binding", "policy": "Policy",
            "shovel": "Shovel", "federation upstream": "FederationUpstream", "upstream set member": "UpstreamSetMember",
            "user": "User", "permission": "Permission", "topic permission": "TopicPermission",
            "top-level": "TopologyFile", "routing test": "RoutingTest"}
"""The file format's field tables made from the models: marker name → model."""


@functools.cache
def _schema() -> dict:
    """The format's schema as the models make it (before it is widened for variables: every typed
    field also takes one ${VARIABLE})."""
    from topology.model.format import TopologyFile

    return TopologyFile.model_json_schema(mode="validation")


@functools.cache
def _units() -> dict[str, str]:
    """The schemas of a duration and a size (the models' own), as JSON text → how the page names them."""
    from pydantic import WithJsonSchema

    from topology.model.format import DurationField, SizeField

    def schema_of(field: object) -> dict:
        return next(m.json_schema for m in field.__metadata__ if isinstance(m, WithJsonSchema))  # type: ignore[attr-defined]

    return {json.dumps(schema_of(field), sort_keys=True): name
            for field, name in ((DurationField, "duration"), (SizeField, "size"))}


def _type(node: dict) -> str:
    """How the reference names a field's type, from its JSON Schema."""
    if "$ref" in node:
        return f"map ({node['$ref'].rsplit('/', 1)[-1]})"
    if "anyOf" in node:
        branches = [b for b in node["anyOf"] if b.get("type") != "null"]
        unit = next((_units()[k] for k in (json.dumps(b, sort_keys=True) for b in [node, *branches]) if k in _units()),
                    None)
        if unit is not None:
            return unit
        shown = " or ".join(_type(b) for b in branches)
        return "number" if shown == "integer or number" else shown
    if "enum" in node:
        values = [f"`{v}`" for v in node["enum"]]
        return values[0] if len(values) == 1 else ", ".join(values[:-1]) + " or " + values[-1]
    kind = node.get("type")
    if kind == "integer":
        low, high = node.get("minimum"), node.get("maximum")
        return f"integer, {low} to {high}" if low is not None and high is not None else (
            f"integer ≥ {low}" if low is not None else "integer")
    if kind == "array":
        return f"list of {_type(node.get('items', {}))}"
    if kind == "object":
        names = node.get("propertyNames", {}).get("enum")
        values = node.get("additionalProperties")
        inner = _type(values) if isinstance(values, dict) else "any value"
        return f"map of {', '.join(f'`{n}`' for n in names)} → {inner}" if names else f"map of {inner}"
    if kind == "string":
        return f"text matching `{node['pattern']}`" if "pattern" in node else "text"
    return {"boolean": "boolean", "number": "number"}.get(kind, "any")


def _default(field) -> str:
    from pydantic_core import PydanticUndefined

    if field.is_required():
        return "required"
    if field.default_factory is not None:
        return f"`{json.dumps(field.default_factory())}`"
    if field.default is None or field.default is PydanticUndefined:
        return ""
    return f"`{json.dumps(field.default)}`"


def field_table(model_name: str) -> str:
    """The table of a model's fields: name, type, default, and its description; for queues also
    the x-argument each sets and the queue types that take it (from topology.rules.queues)."""
    import topology.model.format as models
    from topology.rules.queues import ALL_TYPES, QUEUE_ARGUMENTS, QUEUE_TYPES

    from topology.kinds.parameter import MODEL_KEYS

    model = getattr(models, model_name)
    schema = _schema()
    properties = (schema if model_name == "TopologyFile" else schema["$defs"][model_name])["properties"]
    queue, keys = model_name == "Queue", MODEL_KEYS.get(model_name)
    if queue:
        rows = ["| field | x-argument | queue types | type | default | meaning |", "|---|---|---|---|---|---|"]
    elif keys is not None:
        rows = ["| field | broker key | type | default | meaning |", "|---|---|---|---|---|"]
    else:
        rows = ["| field | type | default | meaning |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        if field.exclude or name.startswith("_"):
            continue
        key = field.alias or name
        cells = [f"`{key}`"]
        if queue:
            arguments = [a for a in QUEUE_ARGUMENTS.values() if a.field == name] or (
                [a for a in QUEUE_ARGUMENTS.values() if a.name in ("x-quorum-initial-group-size", "x-initial-cluster-size")]
                if name == "initial_group_size" else [])
            names = ", ".join(f"`{a.name}`" for a in arguments) or ("`x-queue-type`" if name == "type" else "")
            types = set().union(*(a.queue_types for a in arguments)) if arguments else set()
            since = {t: v for a in arguments for t, v in a.types_since}
            if types == ALL_TYPES and not since:
                shown = "all"
            else:
                shown = ", ".join(t for t in QUEUE_TYPES if t in types and t not in since)
                shown += "".join(f"; {t} from {'.'.join(map(str, v))}" for t, v in since.items())
            cells += [names, shown]
        elif keys is not None:
            cells.append(f"`{keys[name]}`" if name in keys else ("any" if name == "parameters" else ""))
        description = (field.description or "").replace("|", "\\|")
        cells += [_type(properties[key]).replace("|", "\\|"), _default(field), description]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def with_block(text: str, name: str, block: str) -> str:
    """``text`` with the part between the markers of ``name`` replaced by ``block``."""
    begin, end = BEGIN.format(name=name), END.format(name=name)
    pattern = re.compile(re.escape(begin) + r"\n.*?\n" + re.escape(end), re.S)
    if not pattern.search(text):
        raise SystemExit(f"the markers of {name!r} are missing")
    return pattern.sub(lambda _: f"{begin}\n{block}\n{end}", text)


def pages() -> dict[Path, str]:
    """Each generated file and the text it should have."""
    lint, file_format = DOCS / "reference" / "lint.md", DOCS / "reference" / "file-format.md"
    ci = DOCS / "guides" / "ci.md"
    text = file_format.read_text(encoding="utf-8")
    for name, model in SECTIONS.items():
        text = with_block(text, f"{name} fields", field_table(model))
    return {DOCS / "reference" / "cli.md": cli_page(),
            lint: with_block(lint.read_text(encoding="utf-8"), "lint rules", lint_table()),
            file_format: text,
            ci: with_block(ci.read_text(encoding="utf-8"), "validate rule ids", validate_rules_table())}


def main(argv: list[str]) -> int:
    stale = [path for path, text in pages().items() if not path.exists() or path.read_text(encoding="utf-8") != text]
    if argv == ["--check"]:
        for path in stale:
            print(f"stale: {path.relative_to(ROOT)} (run scripts/docs.py)")
        return 1 if stale else 0
    for path, text in pages().items():
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
