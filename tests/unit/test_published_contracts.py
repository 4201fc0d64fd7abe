"""What we publish must match the code: JSON Schemas, the README's role table and
event catalogue, and the CI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.catalogue import render
from engine.app.permissions import PERMISSIONS
from engine.domain.base import EVENT_TYPES
from engine.stores.jsonschema import SCHEMA_DIR, all_schemas

ROOT = Path(__file__).resolve().parents[2]


def test_committed_schemas_match_the_models() -> None:
    # A changed event model must come with regenerated schemas (`make schemas`).
    for name, schema in all_schemas().items():
        committed = json.loads((SCHEMA_DIR / f"{name}.json").read_text(encoding="utf-8"))
        assert committed == schema, f"engine/stores/schemas/{name}.json is stale: run make schemas"
    assert {p.stem for p in SCHEMA_DIR.glob("*.json")} == set(EVENT_TYPES)


def test_readme_tables_match_the_code() -> None:
    # Role table and event catalogue are generated: `ticketing docs README.md`.
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert render(readme) == readme, "README tables are stale: run `ticketing docs`"
    for name, cls in EVENT_TYPES.items():
        assert f"`{name}` v{cls.schema_version}" in readme
    for action in PERMISSIONS:
        assert f"| {action.replace('_', ' ')} |" in readme


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    head = readme.split("```")[1]
    assert "make run" in head and "make test" in head
    ci = [
        line
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.startswith(("#", "set ", "cd "))
    ]
    assert ci[-1].strip() == "make test"


def test_ticketing_schemas_writes_where_the_engine_reads_them(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # `make schemas` once wrote to cli/schemas, where nothing reads them.
    import engine.stores.jsonschema as jsonschema
    from cli.main import main

    written: list[tuple[Path, ...]] = []
    monkeypatch.setattr(jsonschema, "write_schemas", lambda *d: written.append(d) or [])
    assert main(["schemas"]) == 0
    assert written == [()]  # the default: SCHEMA_DIR, engine/stores/schemas
    assert main(["schemas", "--out", "elsewhere"]) == 0
    assert written[-1] == (Path("elsewhere"),)
