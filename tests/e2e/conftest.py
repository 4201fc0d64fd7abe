"""Fixtures for the end-to-end tests: a real ``ticketing serve`` per test module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.server import ADMIN_KEY, Cast, ServerProcess, make_cast, start_server


@pytest.fixture(scope="module")
def e2e_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh directory per module: ``data/`` for the store, ``logs/`` for the output."""
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="module")
def server(e2e_dir: Path) -> Iterator[ServerProcess]:
    """One server per test module, on a fresh data directory."""
    srv = start_server(e2e_dir / "data", e2e_dir / "logs", ADMIN_KEY)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def cast(server: ServerProcess) -> Iterator[Cast]:
    """A queue, a lead, two agents, two requesters and an auditor on the module's server."""
    people = make_cast(server, ADMIN_KEY)
    yield people
    people.close()
