"""JSON Schemas of the event envelope, one per event type, generated from the models.

The generated files live in ``engine/stores/schemas/`` (committed, so analytics teams can
read them without running anything); a test checks they match the models.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.domain.base import EVENT_TYPES, DomainEvent
from engine.integrity.chain import ENVELOPE_VERSION
from engine.stores.envelope import ENVELOPE_KEYS

SCHEMA_DIR = Path(__file__).parent / "schemas"
UUID_SCHEMA = {"type": "string", "format": "uuid"}
SEALED_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "a personal data field sealed with the data subject's key (AES-256-GCM)",
    "required": ["$enc", "subject", "iv", "ct"],
    "properties": {
        "$enc": {"const": "A256GCM"},
        "subject": {"type": "string"},
        "iv": {"type": "string", "contentEncoding": "base64"},
        "ct": {"type": "string", "contentEncoding": "base64"},
    },
    "additionalProperties": False,
}


def event_schema(cls: type[DomainEvent]) -> dict[str, Any]:
    data = cls.model_json_schema(mode="serialization")
    defs = data.pop("$defs", {})
    for name in DomainEvent.ENVELOPE_FIELDS:
        data.get("properties", {}).pop(name, None)
    data["required"] = [r for r in data.get("required", []) if r not in DomainEvent.ENVELOPE_FIELDS]
    data["additionalProperties"] = False
    for name in cls.personal_fields:
        # Personal data travels sealed (see README, "Audit integrity and privacy").
        data["properties"][name] = {"anyOf": [data["properties"][name], SEALED_SCHEMA]}
    data.pop("title", None)
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:ticketing:event:{cls.type_name}:v{cls.schema_version}",
        "title": cls.type_name,
        "description": (cls.__doc__ or f"{cls.type_name} event").strip().splitlines()[0],
        "type": "object",
        "required": list(ENVELOPE_KEYS),
        "additionalProperties": True,
        "properties": {
            "event_id": UUID_SCHEMA,
            "type": {"const": cls.type_name},
            "schema_version": {"const": cls.schema_version},
            "aggregate_type": {"const": cls.aggregate_type},
            "aggregate_id": UUID_SCHEMA,
            "aggregate_version": {"type": "integer", "minimum": 1},
            "occurred_at": {"type": "string", "format": "date-time"},
            "actor": {"type": "string"},
            "correlation_id": UUID_SCHEMA,
            "causation_id": {"anyOf": [UUID_SCHEMA, {"type": "null"}]},
            "data": data,
            "prev_hash": {
                "anyOf": [{"type": "string", "pattern": "^[0-9a-f]{64}$"}, {"type": "null"}],
                "description": "SHA-256 of the aggregate's previous event (null at version 1)",
            },
            "hash": {
                "type": "string",
                "pattern": "^[0-9a-f]{64}$",
                "description": (
                    "SHA-256 of this envelope without hash, as RFC 8785 canonical JSON "
                    "(without envelope_version: as Python's json.dumps with sort_keys, "
                    "separators (',', ':') and ensure_ascii off writes it, in UTF-8)"
                ),
            },
            "envelope_version": {
                "const": ENVELOPE_VERSION,
                "description": (
                    "the rule the hash was computed by; absent in envelopes written "
                    "before version 2"
                ),
            },
        },
    }
    if defs:
        schema["$defs"] = defs
    return schema


def all_schemas() -> dict[str, dict[str, Any]]:
    return {name: event_schema(cls) for name, cls in sorted(EVENT_TYPES.items())}


def write_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in all_schemas().items():
        path = directory / f"{name}.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written
