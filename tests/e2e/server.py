"""Start and stop a real ``ticketing serve`` process for the end-to-end tests.

The server runs as ``python -m cli.main serve`` on a free loopback port with its
own data directory and a clean environment (no inherited ``TICKETING_*`` or Kafka
settings). Its stdout and stderr go to files, so reading them never blocks the
server, and the tests can look for the admin key banner afterwards. It is stopped by
its pid: SIGTERM, then SIGKILL after a deadline.

Below the process handling sit the small HTTP helpers the e2e modules share: problem
assertions, reading GET /events, people with API keys (``Actor``, ``Cast``) and
``at_once`` for racing requests.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"
# The bootstrap admin key the module servers start with (>= 24 characters).
ADMIN_KEY = "e2e-bootstrap-admin-key-0123456789"
STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
POLL_INTERVAL_S = 0.05
# The banner ``ticketing serve`` prints once when it creates the admin key.
ADMIN_KEY_BANNER = re.compile(r"admin API key was created.*?\n\s+(\S+)\n", re.DOTALL)


class ServerStartError(RuntimeError):
    """The server process exited or did not answer /health before the deadline."""


def free_port() -> int:
    """A loopback port that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        port: int = s.getsockname()[1]
        return port


def server_env(admin_key: str | None, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The process environment: ours minus engine settings, plus what the test sets."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TICKETING_", "KAFKA_")) and k != "PYTHONPATH"
    }
    env["PYTHONPATH"] = str(REPO_ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    # No background writers (SLA clock, periodic checkpoints) unless a test asks for
    # them, so "records nothing" means exactly that.
    env["TICKETING_CLOCK"] = "off"
    env["TICKETING_CHECKPOINT_INTERVAL_S"] = "0"
    if admin_key is not None:
        env["TICKETING_BOOTSTRAP_ADMIN_KEY"] = admin_key
    env.update(extra or {})
    return env


def serve_command(data_dir: Path, port: int, host: str = LOOPBACK) -> list[str]:
    return [
        sys.executable,
        "-m",
        "cli.main",
        "serve",
        "--data-dir",
        str(data_dir),
        "--host",
        host,
        "--port",
        str(port),
    ]


@dataclass
class ServerProcess:
    """One running ``ticketing serve``; ``stop()`` ends it by its pid."""

    data_dir: Path
    port: int
    proc: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path
    _files: list[IO[bytes]] = field(default_factory=list, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def admin_key_printed(self) -> str | None:
        """The admin key from the first-start banner on stdout, if one was printed."""
        match = ADMIN_KEY_BANNER.search(self.stdout())
        return match.group(1) if match else None

    def client(self, api_key: str | None = None, timeout: float = 15.0) -> httpx.Client:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM by pid, wait up to ``timeout``, then SIGKILL; return the exit code."""
        try:
            if self.proc.poll() is None:
                os.kill(self.proc.pid, signal.SIGTERM)
                try:
                    return self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    os.kill(self.proc.pid, signal.SIGKILL)
                    return self.proc.wait(timeout=timeout)
            return self.proc.returncode
        finally:
            for f in self._files:
                f.close()
            self._files.clear()

    def stop_gracefully(self) -> None:
        """Stop by SIGTERM and check uvicorn shut down in order (not by the SIGKILL).

        uvicorn re-raises the captured SIGTERM after its graceful shutdown, so the
        exit code is 0 or -SIGTERM; the log shows whether the shutdown completed.
        """
        code = self.stop()
        assert code in (0, -signal.SIGTERM), (code, self.stderr())
        assert "Application shutdown complete" in self.stderr(), self.stderr()
        assert f"Finished server process [{self.pid}]" in self.stderr(), self.stderr()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _wait_healthy(server: ServerProcess, deadline: float) -> None:
    with httpx.Client(base_url=server.base_url, timeout=2.0) as http:
        while True:
            code = server.proc.poll()
            if code is not None:
                raise ServerStartError(
                    f"ticketing serve exited with {code} before answering /health\n"
                    f"stdout:\n{server.stdout()}\nstderr:\n{server.stderr()}"
                )
            try:
                if http.get("/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                server.stop()
                raise ServerStartError(
                    f"ticketing serve did not answer /health in time\nstderr:\n{server.stderr()}"
                )
            time.sleep(POLL_INTERVAL_S)


def start_server(
    data_dir: Path,
    log_dir: Path,
    admin_key: str | None,
    extra_env: dict[str, str] | None = None,
    timeout: float = STARTUP_TIMEOUT_S,
    attempts: int = 3,
) -> ServerProcess:
    """Start ``ticketing serve`` and return once GET /health answers 200.

    Another process may take the free port between our probe and the server's bind;
    then the server exits with "address already in use" and we try another port.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    last_error: ServerStartError | None = None
    for attempt in range(attempts):
        port = free_port()
        stem = f"serve-{port}-{time.monotonic_ns()}"
        out = (log_dir / f"{stem}.out").open("wb")
        err = (log_dir / f"{stem}.err").open("wb")
        proc = subprocess.Popen(
            serve_command(data_dir, port),
            cwd=REPO_ROOT,
            env=server_env(admin_key, extra_env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
        server = ServerProcess(
            data_dir=data_dir,
            port=port,
            proc=proc,
            stdout_path=Path(out.name),
            stderr_path=Path(err.name),
            _files=[out, err],
        )
        try:
            _wait_healthy(server, time.monotonic() + timeout)
        except ServerStartError as e:
            server.stop()
            last_error = e
            if "address already in use" in server.stderr() and attempt + 1 < attempts:
                continue
            raise
        return server
    assert last_error is not None
    raise last_error


def run_serve_to_exit(
    data_dir: Path,
    admin_key: str | None,
    extra_env: dict[str, str] | None = None,
    timeout: float = 15.0,
) -> subprocess.CompletedProcess[str]:
    """Run a ``ticketing serve`` that is expected to refuse to start; return its outcome.

    Should it start after all, it is stopped by pid at the deadline (SIGTERM, then
    SIGKILL), and the caller sees that exit code and the output.
    """
    proc = subprocess.Popen(
        serve_command(data_dir, free_port()),
        cwd=REPO_ROOT,
        env=server_env(admin_key, extra_env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            stdout, stderr = proc.communicate(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


# --- talking to it ---------------------------------------------------------------

PROBLEM_JSON = "application/problem+json"


def assert_problem(
    response: httpx.Response,
    status: int,
    *,
    field: str | None = None,
    detail: str | None = None,
) -> dict[str, Any]:
    """An RFC 9457 problem with ``status``; optionally naming ``field`` or saying ``detail``."""
    assert response.status_code == status, (response.status_code, response.text)
    ctype = response.headers.get("content-type", "")
    assert ctype.split(";")[0].strip() == PROBLEM_JSON, (ctype, response.text)
    body: dict[str, Any] = response.json()
    assert body["status"] == status, body
    assert isinstance(body["title"], str) and body["title"], body
    assert isinstance(body["detail"], str) and body["detail"], body
    if field is not None:
        fields = [e["field"] for e in body.get("errors", [])]
        assert field in fields or field in body["detail"], body
    if detail is not None:
        assert detail in body["detail"], body
    return body


def assert_not_5xx(response: httpx.Response) -> None:
    """Accepted, or refused with a problem: never a server error."""
    assert response.status_code < 500, (response.status_code, response.text)
    if response.status_code >= 400:
        assert_problem(response, response.status_code)


def read_events(admin: httpx.Client) -> list[dict[str, Any]]:
    """Every notification from GET /events (JSON lines), paging with ``after``."""
    lines: list[dict[str, Any]] = []
    after = 0
    while True:
        r = admin.get("/events", params={"after": after, "limit": 1000})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/x-ndjson")
        batch = [json.loads(line) for line in r.text.splitlines() if line.strip()]
        lines += batch
        if len(batch) < 1000:
            return lines
        after = batch[-1]["position"]


def ticket_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "VPN drops every few minutes",
        "description": "Since this morning the VPN disconnects every 5 minutes.",
        "category": "network",
        "impact": "medium",
        "urgency": "low",
        "channel": "web",
    }
    body.update(overrides)
    return body


@dataclass
class Actor:
    """A person with an API key and an HTTP client that sends it."""

    name: str
    role: str
    key: str
    principal_id: str
    http: httpx.Client
    agent_id: str | None = None

    def post(self, path: str, json: Any = None, **kwargs: Any) -> httpx.Response:
        return self.http.post(path, json=json, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(path, **kwargs)

    def on(self, server: ServerProcess) -> Actor:
        """The same person talking to another (e.g. restarted) server."""
        return Actor(
            self.name,
            self.role,
            self.key,
            self.principal_id,
            server.client(self.key),
            self.agent_id,
        )

    def open_ticket(self, **overrides: Any) -> str:
        r = self.post("/tickets", ticket_body(**overrides))
        assert r.status_code == 201, r.text
        ticket_id: str = r.json()["aggregate_id"]
        return ticket_id


@dataclass
class Cast:
    """Everyone a test needs: an admin, a lead and two agents of one queue, requesters."""

    queue: str
    admin: Actor
    lead: Actor
    agent: Actor
    agent2: Actor
    requester: Actor
    other_requester: Actor
    auditor: Actor

    def everyone(self) -> list[Actor]:
        return [
            self.admin,
            self.lead,
            self.agent,
            self.agent2,
            self.requester,
            self.other_requester,
            self.auditor,
        ]

    def on(self, server: ServerProcess) -> Cast:
        return Cast(self.queue, *(a.on(server) for a in self.everyone()))

    def close(self) -> None:
        for actor in self.everyone():
            actor.http.close()


def create_queue(admin: Actor, name: str) -> None:
    r = admin.post("/queues", {"name": name, "description": f"{name} team"})
    assert r.status_code == 201, r.text


def register_agent(
    server: ServerProcess, admin: Actor, name: str, role: str, queues: list[str], capacity: int = 10
) -> Actor:
    r = admin.post("/agents", {"name": name, "role": role, "queues": queues, "capacity": capacity})
    assert r.status_code == 201, r.text
    body = r.json()
    key = body["extra"]["api_key"]
    return Actor(
        name, role, key, body["extra"]["principal_id"], server.client(key), body["aggregate_id"]
    )


def issue_key(server: ServerProcess, admin: Actor, name: str, role: str) -> Actor:
    r = admin.post("/api-keys", {"name": name, "role": role})
    assert r.status_code == 201, r.text
    extra = r.json()["extra"]
    return Actor(
        name, role, extra["api_key"], extra["principal_id"], server.client(extra["api_key"])
    )


def make_cast(server: ServerProcess, admin_key: str, queue: str = "service-desk") -> Cast:
    admin = Actor("admin", "admin", admin_key, "admin", server.client(admin_key))
    create_queue(admin, queue)
    return Cast(
        queue=queue,
        admin=admin,
        lead=register_agent(server, admin, "Lena Lead", "lead", [queue]),
        agent=register_agent(server, admin, "Ari Agent", "agent", [queue]),
        agent2=register_agent(server, admin, "Bo Agent", "agent", [queue]),
        requester=issue_key(server, admin, "Rita", "requester"),
        other_requester=issue_key(server, admin, "Omar", "requester"),
        auditor=issue_key(server, admin, "Audrey", "auditor"),
    )


def at_once(
    calls: list[Callable[[], httpx.Response]], timeout: float = 30.0
) -> list[httpx.Response]:
    """Send the requests from one thread each, released together by a barrier.

    Give each call its own client (its own connection), opened beforehand, so the
    requests really overlap on the server.
    """
    barrier = threading.Barrier(len(calls))
    results: list[httpx.Response | BaseException | None] = [None] * len(calls)

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=timeout)
            results[i] = calls[i]()
        except BaseException as e:  # re-raised in the caller's thread below
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
    responses: list[httpx.Response] = []
    for result in results:
        if isinstance(result, BaseException):
            raise result
        assert result is not None, "a racing request did not finish in time"
        responses.append(result)
    return responses
