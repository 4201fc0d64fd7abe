"""``ticketing serve`` and the data directory's modes (#15 item 11): a data directory
other users can read is named at start with its mode and the fix, and what the server
creates is its user's only, whatever umask it was started with."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.e2e.server import start_server

pytestmark = pytest.mark.e2e

ADMIN_KEY = "modes-admin-key-0123456789abcdef"


def test_a_readable_data_directory_is_named_and_new_files_are_private(tmp_path: Path) -> None:
    data, logs = tmp_path / "data", tmp_path / "logs"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    previous = os.umask(0o022)  # the server inherits the most common umask
    try:
        server = start_server(data, logs, ADMIN_KEY)
    finally:
        os.umask(previous)
    try:
        with server.client(ADMIN_KEY) as admin:
            assert admin.post("/queues", json={"name": "desk"}).status_code == 201
        stderr = server.stderr()
    finally:
        server.stop_gracefully()
    assert f"data directory {data} has mode 0755" in stderr
    assert f"fix: chmod 700 {data}" in stderr
    created = list(data.rglob("*"))
    assert any(p.name == "events.sqlite" for p in created)
    wider = {
        p.name: f"{stat.S_IMODE(p.stat().st_mode):04o}"
        for p in created
        if stat.S_IMODE(p.stat().st_mode) & 0o077
    }
    assert wider == {}
