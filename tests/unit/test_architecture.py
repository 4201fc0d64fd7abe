"""The layout's rules that import-linter does not check (it holds the layers, see
pyproject.toml): no module uses another module's private names, modules stay small,
and the engine's root holds only the composition root and the settings."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("engine", "api", "cli")
MAX_LINES = 600
# Private hooks of kafka-python the Kafka store relies on, each explained where used:
# the fetcher's parse step gives the last stable offset of read_committed fetches, its
# response handler tells when the broker last answered (a consumer's health), and a
# client's closed flag tells a wedged client from a closed one.
THIRD_PARTY_HOOKS = {
    ("engine/stores/kafka/clients.py", "fetcher._parse_fetched_data"),
    ("engine/stores/kafka/clients.py", "fetcher._handle_fetch_response"),
    ("engine/stores/kafka/clients.py", "client._closed"),
}


def modules() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def private_reach_ins(path: Path, relative: str | None = None) -> list[str]:
    """``from ours import _name`` and ``something._name`` on anything but self or cls."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PACKAGES:
            found += [f"import {a.name}" for a in node.names if a.name.startswith("_")]
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            if node.attr.startswith("__") or (
                isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
            ):
                continue
            found.append(ast.unparse(node))
    relative = relative or path.relative_to(ROOT).as_posix()
    return [f for f in found if (relative, f) not in THIRD_PARTY_HOOKS]


@pytest.mark.parametrize("path", modules(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_module_uses_another_modules_private_names(path: Path) -> None:
    assert private_reach_ins(path) == [], "use or add a public function instead"


@pytest.mark.parametrize("path", modules(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_modules_stay_small(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{lines} lines: split it by concept (docs/architecture.md)"


def test_the_engine_root_holds_only_the_composition_root_and_settings() -> None:
    root_modules = sorted(p.name for p in (ROOT / "engine").glob("*.py"))
    assert root_modules == ["__init__.py", "bootstrap.py", "settings.py"]


def test_the_checker_finds_a_reach_in(tmp_path: Path) -> None:
    # The check itself can fail: a module that reaches into another is caught.
    probe = tmp_path / "probe.py"
    probe.write_text("from engine.app.repository import _require_kind\nx = app._events\n")
    found = private_reach_ins(probe, "engine/probe.py")
    assert found == ["import _require_kind", "app._events"]


def test_the_image_copies_every_package_of_the_wheel() -> None:
    # The Dockerfile installs from the copied sources: a package left out breaks the image.
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    for package in PACKAGES:
        assert f"COPY {package} ./{package}" in dockerfile, package
