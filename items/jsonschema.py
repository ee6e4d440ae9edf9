"""Publish the JSON Schemas of the data contract.

`python -m items.jsonschema` rewrites `items/schema/*.json`; a test fails when
the checked-in files differ from the models, so consumers never read a stale
schema.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from items.records import SourceRecord, Trial

SCHEMA_DIR = Path(__file__).parent / "schema"
MODELS = {"source_record.schema.json": SourceRecord, "trial.schema.json": Trial}


def render(model) -> str:
    schema = model.model_json_schema(by_alias=True, mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> int:
    SCHEMA_DIR.mkdir(exist_ok=True)
    for name, model in MODELS.items():
        (SCHEMA_DIR / name).write_text(render(model), encoding="utf-8")
        print(SCHEMA_DIR / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
