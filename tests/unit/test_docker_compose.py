"""docker-compose.yml is valid for Compose (no Docker engine is needed to check it):
Apache Kafka in KRaft mode with an audit-safe log policy, and the engine on it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="needs Debian's docker-compose")
def test_compose_file_is_valid_and_keeps_events_forever() -> None:
    done = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    config = done.stdout
    assert "KAFKA_PROCESS_ROLES: broker,controller" in config
    assert "KAFKA_LOG_RETENTION_MS: '-1'" in config
    assert "KAFKA_LOG_CLEANUP_POLICY: delete" in config
    assert "KAFKA_BOOTSTRAP_SERVERS: kafka:9092" in config
