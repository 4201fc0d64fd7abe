"""A real ticketing server in a child process, for the fault and fuzz tests.

Small on purpose: start on a data directory, wait until healthy, SIGKILL or stop it,
and restart on the same directory. Seeding helpers give each test an agent, a
requester and a queue through the public API only.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ADMIN_KEY = "e2e-admin-key-0123456789abcdefghij"
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class Server:
    """One `python -m cli.main serve` process on a data directory."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    admin_key: str = ADMIN_KEY
    env: dict[str, str] = field(default_factory=dict)
    preexec: Callable[[], None] | None = None
    log: Path | None = None  # default: beside the data directory
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.log or self.data_dir.parent / f"{self.data_dir.name}-server.log"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "cli.main",
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]

    def spawn(self) -> subprocess.Popen[bytes]:
        """Start the process without waiting for it (see ``start``)."""
        # A clean environment: no inherited engine or Kafka settings (these tests are
        # about the embedded SQLite store), plus what the test sets.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TICKETING_", "KAFKA_"))}
        env.update(
            TICKETING_BOOTSTRAP_ADMIN_KEY=self.admin_key,
            PYTHONUNBUFFERED="1",
            PYTHONPATH=str(ROOT),
            **self.env,
        )
        self.starts += 1
        # The server's output goes through a pipe that a thread of ours copies to the
        # log, so limits put on the server's own file writes (RLIMIT_FSIZE) or a full
        # data disk never block or break its logging.
        self.proc = subprocess.Popen(
            self.command(),
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=self.preexec,
        )
        threading.Thread(
            target=_copy, args=(self.proc, self.log_path, self.starts), daemon=True
        ).start()
        return self.proc

    def start(self, timeout: float = 30.0) -> Server:
        proc = self.spawn()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"server exited with {proc.returncode} during start-up:\n{self.log_tail()}"
                )
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"server not healthy after {timeout}s:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, as in a power cut of the process."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def client(self, key: str | None = None, timeout: float = 10.0) -> httpx.Client:
        headers = auth(key or self.admin_key)
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def events(self, key: str | None = None) -> list[dict[str, Any]]:
        """Every event in the log, in notification order, via GET /events."""
        return list(iter_events(self.url, key or self.admin_key))

    def client_events(self) -> list[dict[str, Any]]:
        """The events that clients' commands caused: without the engine's own
        processes (the SLA clock and routing record as ``system:...`` on their own)."""
        return [e for e in self.events() if not e["actor"].startswith("system")]


def start_all(servers: list[Server], timeout: float = 60.0) -> None:
    """Start the servers side by side (faster than one after another); return once
    every one answers /health, or stop them all and raise."""
    for server in servers:
        server.spawn()
    deadline = time.monotonic() + timeout
    waiting = list(servers)
    try:
        while waiting:
            server = waiting[0]
            assert server.proc is not None
            if server.proc.poll() is not None:
                raise RuntimeError(f"server exited during start-up:\n{server.log_tail()}")
            try:
                if httpx.get(f"{server.url}/health", timeout=1.0).status_code == 200:
                    waiting.pop(0)
                    continue
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not healthy after {timeout}s:\n{server.log_tail()}")
            time.sleep(0.05)
    except BaseException:
        for server in servers:
            server.kill()
        raise


def _copy(proc: subprocess.Popen[bytes], log_path: Path, start: int) -> None:
    assert proc.stdout is not None
    with log_path.open("ab") as log:
        log.write(f"\n----- start {start} (pid {proc.pid}) -----\n".encode())
        for line in proc.stdout:
            log.write(line)
            log.flush()
    proc.stdout.close()


def iter_events(url: str, key: str, page: int = 10000) -> Iterator[dict[str, Any]]:
    import json

    after = 0
    with httpx.Client(base_url=url, headers=auth(key), timeout=60) as c:
        while True:
            r = c.get("/events", params={"after": after, "limit": page})
            r.raise_for_status()
            lines = [json.loads(line) for line in r.text.splitlines() if line]
            for line in lines:
                yield {"position": line["position"], **line["event"]}
            if len(lines) < page:
                return
            after = lines[-1]["position"]


@dataclass
class Seed:
    """What the seeding created: a queue, an agent (with key), a requester (with key)."""

    queue: str
    agent_id: str
    agent_key: str
    requester_id: str
    requester_key: str
    lead_key: str


def seed(server: Server, capacity: int = 1000) -> Seed:
    queue = f"q-{uuid.uuid4().hex[:8]}"
    with server.client() as c:
        c.post("/queues", json={"name": queue}).raise_for_status()
        r = c.post(
            "/agents", json={"name": "Ann", "queues": [queue], "capacity": capacity}
        ).raise_for_status()
        agent = r.json()
        r = c.post(
            "/agents",
            json={"name": "Lee", "role": "lead", "queues": [queue], "capacity": capacity},
        ).raise_for_status()
        lead = r.json()
        r = c.post("/api-keys", json={"name": "bob", "role": "requester"}).raise_for_status()
        requester = r.json()
    return Seed(
        queue=queue,
        agent_id=agent["aggregate_id"],
        agent_key=agent["extra"]["api_key"],
        requester_id=requester["extra"]["principal_id"],
        requester_key=requester["extra"]["api_key"],
        lead_key=lead["extra"]["api_key"],
    )


def ticket_body(queue: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "VPN down",
        "description": "cannot connect from home",
        "category": "network",
        "impact": "medium",
        "urgency": "high",
        **extra,
    }
    if queue is not None:
        body["queue"] = queue
    return body
