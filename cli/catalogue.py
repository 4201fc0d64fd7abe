"""The README's generated tables: the event catalogue, the role table and the field
visibility table.

`ticketing docs README.md` rewrites the text between the markers; a test checks that
the committed README matches the code.
"""

from __future__ import annotations

import re
from pathlib import Path

from engine.app.permissions import PERMISSIONS, readers
from engine.domain.base import EVENT_TYPES, DomainEvent
from engine.domain.directory import Role
from engine.stores.envelope import EnvelopeMapper  # noqa: F401  (registers every event type)


def events_table() -> str:
    lines = [
        "| type | aggregate | data fields (personal data in *italics*) |",
        "| --- | --- | --- |",
    ]
    for name, cls in sorted(EVENT_TYPES.items(), key=lambda kv: (kv[1].aggregate_type, kv[0])):
        fields = [
            f"*{f}*" if f in cls.personal_fields else f
            for f in cls.model_fields
            if f not in DomainEvent.ENVELOPE_FIELDS
        ]
        data = ", ".join(fields) or "-"
        lines.append(f"| `{name}` v{cls.schema_version} | {cls.aggregate_type} | {data} |")
    return "\n".join(lines)


def roles_table() -> str:
    roles = list(Role)
    lines = [
        "| action | " + " | ".join(r.value for r in roles) + " |",
        "| --- |" + " :-: |" * len(roles),
    ]
    for action, allowed in PERMISSIONS.items():
        cells = " | ".join("yes" if r in allowed else "" for r in roles)
        lines.append(f"| {action.replace('_', ' ')} | {cells} |")
    return "\n".join(lines)


def visibility_table() -> str:
    """Who may read each data field of each event type, on every read path: one row per
    event type and audience (the fields that the same roles may read)."""
    roles = list(Role)
    lines = [
        "| type | fields (personal data in *italics*) | "
        + " | ".join(r.value for r in roles)
        + " |",
        "| --- | --- |" + " :-: |" * len(roles),
    ]
    for name, cls in sorted(EVENT_TYPES.items(), key=lambda kv: (kv[1].aggregate_type, kv[0])):
        groups: dict[frozenset[Role], list[str]] = {}
        for f in cls.model_fields:
            if f not in DomainEvent.ENVELOPE_FIELDS:
                groups.setdefault(readers(name, f), []).append(
                    f"*{f}*" if f in cls.personal_fields else f
                )
        for who, fields in sorted(groups.items(), key=lambda kv: -len(kv[0])):
            cells = " | ".join("yes" if r in who else "" for r in roles)
            lines.append(f"| `{name}` | {', '.join(fields)} | {cells} |")
    return "\n".join(lines)


TABLES = {"events": events_table, "roles": roles_table, "visibility": visibility_table}


def _escape(replacement: str) -> str:
    return replacement.replace("\\", "\\\\")


def render(text: str) -> str:
    for name, make in TABLES.items():
        pattern = re.compile(rf"(<!-- {name}:begin -->\n).*?(\n<!-- {name}:end -->)", re.S)
        text = pattern.sub(rf"\g<1>{_escape(make())}\g<2>", text)
    return text


def rewrite(path: Path) -> bool:
    text = path.read_text(encoding="utf-8")
    new = render(text)
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text
