"""The JSON Schema of the file format, generated from the models.

``python -m topology.schema`` writes ``schemas/topology.schema.json``; a test fails when
the committed file is stale. Editors using the YAML language server autocomplete with it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from topology.model import TopologyFile

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "topology.schema.json"


def json_schema() -> dict[str, Any]:
    schema = TopologyFile.model_json_schema(mode="validation")
    return schema


def render() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


def main() -> None:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else SCHEMA_PATH
    target.write_text(render(), encoding="utf-8")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
