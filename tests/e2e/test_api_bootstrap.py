"""First start, later starts and refused starts of ``ticketing serve``.

Without TICKETING_BOOTSTRAP_ADMIN_KEY the first start generates an admin key and prints
it once; later starts print none. A too short key or a data directory that cannot be
created stop ``serve`` with a non-zero exit code and a clear message, not a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.e2e.server import assert_problem, run_serve_to_exit, start_server

pytestmark = pytest.mark.e2e

KEY_ONE = "first-bootstrap-key-0123456789abcdef"
KEY_TWO = "second-bootstrap-key-0123456789abcdef"


def test_first_start_prints_a_generated_key_once(tmp_path: Path) -> None:
    data, logs = tmp_path / "data", tmp_path / "logs"
    first = start_server(data, logs, admin_key=None)
    try:
        key = first.admin_key_printed()
        assert key is not None, first.stdout()
        assert key.startswith("tk_") and len(key) >= 24
        assert first.stdout().count(key) == 1
        assert key not in first.stderr()
        # The printed key is the admin's.
        with first.client(key) as admin:
            assert admin.post("/queues", json={"name": "first"}).status_code == 201
            assert admin.get("/agents").status_code == 200
    finally:
        first.stop_gracefully()

    second = start_server(data, logs, admin_key=None)
    try:
        assert second.admin_key_printed() is None
        assert key not in second.stdout() and key not in second.stderr()
        assert "admin API key" not in second.stdout()
        with second.client(key) as admin:
            assert admin.get("/agents").status_code == 200
            assert admin.post("/queues", json={"name": "second"}).status_code == 201
    finally:
        second.stop()
    # The key is stored hashed, never in clear, in the data directory.
    for path in data.rglob("*"):
        if path.is_file():
            assert key.encode() not in path.read_bytes(), path


def test_bootstrap_key_counts_only_on_the_first_start(tmp_path: Path) -> None:
    data, logs = tmp_path / "data", tmp_path / "logs"
    start_server(data, logs, KEY_ONE).stop_gracefully()
    later = start_server(data, logs, KEY_TWO)
    try:
        with later.client(KEY_ONE) as admin:
            assert admin.get("/agents").status_code == 200
        with later.client(KEY_TWO) as impostor:
            assert_problem(impostor.get("/agents"), 401)
        assert later.admin_key_printed() is None
    finally:
        later.stop()


def test_too_short_bootstrap_key_refuses_to_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = run_serve_to_exit(data, admin_key="short-key-1234")
    assert result.returncode not in (0, None), result
    assert "TICKETING_BOOTSTRAP_ADMIN_KEY" in result.stderr
    assert "24" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "Uvicorn running" not in result.stderr
    assert not data.exists(), "nothing is created when the configuration is refused"


@pytest.mark.parametrize("kind", ["under-a-file", "is-a-file"])
def test_data_dir_that_cannot_be_created_refuses_to_start(tmp_path: Path, kind: str) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("I am a file")
    data = blocker / "data" if kind == "under-a-file" else blocker
    result = run_serve_to_exit(data, admin_key=KEY_ONE)
    assert result.returncode not in (0, None), result
    assert str(data) in result.stderr
    assert "data directory" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert blocker.read_text() == "I am a file"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write to any directory")
def test_read_only_data_dir_refuses_to_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o500)
    try:
        result = run_serve_to_exit(data, admin_key=KEY_ONE)
    finally:
        data.chmod(0o700)
    assert result.returncode not in (0, None), result
    assert "not writable" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_a_configured_bootstrap_key_is_not_echoed(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", tmp_path / "logs", KEY_ONE)
    server.stop()
    assert KEY_ONE not in server.stdout() + server.stderr()


def test_a_refused_bootstrap_key_is_not_echoed(tmp_path: Path) -> None:
    result = run_serve_to_exit(tmp_path / "data", admin_key="short-secret-1234")
    assert result.returncode not in (0, None)
    assert "short-secret-1234" not in result.stderr + result.stdout
