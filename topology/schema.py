"""The JSON Schema of the file format, generated from the models.

The schema ships inside the package (``topology/topology.schema.json``): ``topology schema``
prints it, and ``export`` writes it beside the files it makes, which name it in a
``yaml-language-server`` modeline. ``python -m topology.schema`` regenerates the packaged file
from the models; a test fails when it is stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

SCHEMA_ID = "urn:rabbitmq-topology:topology-file:1"
"""The schema's ``$id``: the same for every release that reads the same format (a change that
makes valid files invalid gives it a new number)."""

SCHEMA_PATH = Path(__file__).resolve().parent / "topology.schema.json"
SCHEMA_FILE_NAME = "topology.schema.json"
"""The name ``export`` gives the schema it writes beside the files."""


VARIABLE = {"type": "string", "pattern": r"^\$\{[^}:]*(:-[^}]*)?\}$",
            "description": "one ${VARIABLE} (or ${VARIABLE:-default}): typed as the field expects once substituted"}
"""What the files may hold in place of any value: one reference, which the tool types by the field."""

YAML_1_1_BOOLEANS = ("yes", "Yes", "YES", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF")
"""Words the tool reads as booleans (YAML 1.1, as PyYAML does) that an editor's YAML 1.2 reads as text."""

_ANNOTATIONS = ("title", "description", "default", "examples")
_CONSTRAINTS = ("enum", "const", "pattern", "format", "minLength", "maxLength")


def _widen(node: Any) -> Any:
    """A value's schema that also takes what the tool takes there before typing it: a ``${VARIABLE}``
    wherever the value is not free text, and YAML 1.1's boolean words wherever a boolean goes.
    Models (``$ref``) are left alone: a variable never stands for a whole map."""
    if not isinstance(node, dict) or "$ref" in node:
        return node
    if "anyOf" in node:
        branches = [_widen(b) for b in node["anyOf"]]
        return {**node, "anyOf": branches}
    kind = node.get("type")
    if kind == "object":
        extra = node.get("additionalProperties")
        return {**node, "additionalProperties": _widen(extra)} if isinstance(extra, dict) else node
    if kind == "array":
        return {**node, "items": _widen(node["items"])} if isinstance(node.get("items"), dict) else node
    if kind in (None, "null") or (kind == "string" and not any(k in node for k in _CONSTRAINTS)):
        return node
    alternatives = [{k: v for k, v in node.items() if k not in _ANNOTATIONS}]
    if kind == "boolean":
        alternatives.append({"$ref": "#/$defs/Yaml11Boolean"})
    alternatives.append({"$ref": "#/$defs/Variable"})
    return {**{k: v for k, v in node.items() if k in _ANNOTATIONS}, "anyOf": alternatives}


def json_schema() -> dict[str, Any]:
    """The schema, made from the models now, widened where the tool reads more than the models'
    types say (:func:`_widen`)."""
    from topology.model.format import TopologyFile

    from topology.kinds.parameter import MODEL_KEYS

    schema = TopologyFile.model_json_schema(mode="validation")
    for name, keys in MODEL_KEYS.items():  # an editor shows the broker's key of a shovel's or upstream's field
        for field, key in keys.items():
            found = schema["$defs"][name]["properties"].get(field)
            if found is not None:
                found["description"] = f"{key}: {found.get('description', '')}".rstrip()
    for model in [schema, *schema.get("$defs", {}).values()]:
        for name, property_schema in (model.get("properties") or {}).items():
            model["properties"][name] = _widen(property_schema)
    schema.setdefault("$defs", {}).update({
        "Variable": VARIABLE,
        "Yaml11Boolean": {"type": "string", "enum": list(YAML_1_1_BOOLEANS),
                          "description": "YAML 1.1's words for true and false, which the tool reads as booleans"},
    })
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def render() -> str:
    """The schema as the packaged file holds it."""
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


def packaged() -> str:
    """The schema shipped with this release (what ``topology schema`` prints: no models loaded)."""
    return SCHEMA_PATH.read_text(encoding="utf-8")


def modeline(schema_path: str) -> str:
    """The first line that points the YAML language server (VS Code, Neovim, JetBrains...) at the schema."""
    return f"# yaml-language-server: $schema={schema_path}\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m topology.schema``: regenerate the packaged schema (``--check``: only say whether it is stale)."""
    args = sys.argv[1:] if argv is None else argv
    if args not in ([], ["--check"]):
        print("usage: python -m topology.schema [--check]\n"
              "  regenerates topology/topology.schema.json from the models; --check exits 1 when it is stale",
              file=sys.stderr)
        return 2
    fresh = render()
    if args == ["--check"]:
        stale = SCHEMA_PATH.read_text(encoding="utf-8") != fresh
        print(f"{SCHEMA_PATH} is {'stale' if stale else 'up to date'}")
        return 1 if stale else 0
    SCHEMA_PATH.write_text(fresh, encoding="utf-8")
    print(f"wrote {SCHEMA_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
