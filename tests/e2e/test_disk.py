"""Disk faults: an unwritable data directory, a full disk, a file size limit.

At start-up the server must refuse with one clear line and a non-zero exit, no
traceback. Mid-run, a store that cannot be written must answer 503 problem+json and
record nothing; once space is back, the store passes ``PRAGMA integrity_check`` and
holds every acknowledged command exactly once.

We run as root, where permission bits do not stop writes, so the faults are made with
the file system itself: a path under a regular file, a read-only or full tmpfs mount
(needs CAP_SYS_ADMIN; skipped without it), and RLIMIT_FSIZE on the server process
(works for anyone: writes past the limit fail with EFBIG, which Python's default
SIGXFSZ handling turns into an error instead of a kill).
"""

from __future__ import annotations

import os
import resource
import sqlite3
import subprocess
import sys
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.proc import ADMIN_KEY, ROOT, Server, free_port, seed, ticket_body

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

IS_ROOT = os.geteuid() == 0


def serve_to_exit(data_dir: Path, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run ``ticketing serve`` that should refuse to start; its exit code and output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TICKETING_", "KAFKA_"))}
    env.update(TICKETING_BOOTSTRAP_ADMIN_KEY=ADMIN_KEY, PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "cli.main", "serve", "--data-dir", str(data_dir)]
    command += ["--host", "127.0.0.1", "--port", str(free_port())]
    proc = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()  # it started after all: the assertions below say so
        out, err = proc.communicate()
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


def assert_clear_refusal(result: subprocess.CompletedProcess[str], *words: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode not in (0, None, -9), output
    assert "Traceback" not in output, output
    assert result.stderr.startswith("ticketing: "), output
    for word in words:
        assert word in result.stderr, (word, result.stderr)


class Mount:
    """A tmpfs of a given size, unmounted at the end (needs CAP_SYS_ADMIN)."""

    def __init__(self, path: Path, size: str, options: str = "") -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        opts = f"size={size},mode=0755" + (f",{options}" if options else "")
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")

    def remount(self, options: str) -> None:
        subprocess.run(["mount", "-o", f"remount,{options}", str(self.path)], check=True)

    def fill(self) -> None:
        """Take every free byte, so the next write gets ENOSPC."""
        fd = os.open(self.path / f"filler-{uuid.uuid4().hex}", os.O_WRONLY | os.O_CREAT)
        try:
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError:
            pass  # ENOSPC: full
        finally:
            os.close(fd)

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], check=False)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[..., Mount]]:
    mounts: list[Mount] = []

    def make(size: str = "16m", options: str = "") -> Mount:
        mount = Mount(tmp_path / f"mnt{len(mounts)}", size, options)
        mounts.append(mount)
        return mount

    yield make
    for mount in reversed(mounts):
        mount.unmount()


# --- at start-up ---------------------------------------------------------------------


def test_data_dir_under_a_regular_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    data_dir = tmp_path / "file" / "data"
    result = serve_to_exit(data_dir)
    assert_clear_refusal(result, str(data_dir), "Not a directory")


def test_data_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.write_text("a file where the data directory should be")
    assert_clear_refusal(serve_to_exit(data_dir), str(data_dir))


def test_read_only_data_dir_is_refused(tmp_path: Path, tmpfs: Callable[..., Mount]) -> None:
    if IS_ROOT:
        # Root writes through permission bits: a read-only mount stops it.
        data_dir = tmpfs("1m", "ro").path
    else:
        data_dir = tmp_path / "data"
        data_dir.mkdir(mode=0o500)
    assert_clear_refusal(serve_to_exit(data_dir), str(data_dir), "not writable")


def test_read_only_file_system_below_the_data_dir_is_refused(
    tmpfs: Callable[..., Mount],
) -> None:
    data_dir = tmpfs("1m", "ro").path / "data"
    assert_clear_refusal(serve_to_exit(data_dir), str(data_dir), "Read-only file system")


def test_full_disk_at_start_is_refused_clearly(tmp_path: Path, tmpfs: Callable[..., Mount]) -> None:
    # Keys and signing key exist (a server ran here before); the event store is new.
    mount = tmpfs("4m")
    data_dir = mount.path / "data"
    server = Server(data_dir, log=tmp_path / "server.log").start()
    server.stop()
    for path in data_dir.glob("events.sqlite*"):
        path.unlink()
    mount.fill()
    assert_clear_refusal(serve_to_exit(data_dir), "full")


def test_unopenable_event_store_is_refused_clearly(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    (data_dir / "events.sqlite").mkdir(parents=True)
    assert_clear_refusal(serve_to_exit(data_dir), "events.sqlite")


# --- mid-run -----------------------------------------------------------------------


@dataclass
class Command:
    key: str
    path: str
    body: dict[str, Any]
    status: int = 0

    def send(self, client: httpx.Client) -> httpx.Response:
        r = client.post(self.path, json=self.body, headers={"Idempotency-Key": self.key})
        self.status = r.status_code
        return r


def load_until_refused(server: Server, queue: str, refusals: int = 5) -> list[Command]:
    """Open tickets and comment on them until the store refuses ``refusals`` times."""
    commands: list[Command] = []
    tickets: list[str] = []
    with server.client(timeout=30) as c:
        for i in range(20_000):
            key = f"disk-{i}-{uuid.uuid4()}"
            if tickets and i % 3:
                command = Command(key, f"/tickets/{tickets[-1]}/comments", {"body": "x" * 3000})
            else:
                command = Command(key, "/tickets", ticket_body(queue, description="y" * 3000))
            commands.append(command)
            r = command.send(c)
            if r.status_code == 503:
                assert r.headers["content-type"].startswith("application/problem+json")
                problem = r.json()
                assert problem["status"] == 503 and "not confirmed" in problem["detail"]
                if sum(sent.status == 503 for sent in commands) >= refusals:
                    return commands
                continue
            assert r.status_code in (200, 201), (r.status_code, r.text)
            if command.path == "/tickets":
                tickets.append(r.json()["aggregate_id"])
    raise AssertionError("the store never refused a write")


def check_store(data_dir: Path) -> None:
    """SQLite's own verdict on every database file in the data directory."""
    for path in [data_dir / "events.sqlite", data_dir / "keys.sqlite"]:
        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)], path


def check_log(server: Server, commands: list[Command]) -> None:
    """Acknowledged commands are there once; refused ones are not; no half command."""
    events = server.events()
    processed = Counter(e["data"]["key"] for e in events if e["type"] == "CommandProcessed")
    for c in commands:
        assert processed[c.key] == (1 if c.status < 300 else 0), (c, processed[c.key])
    versions: dict[str, list[int]] = defaultdict(list)
    by_correlation: dict[str, list[str]] = defaultdict(list)
    for e in events:
        versions[e["aggregate_id"]].append(e["aggregate_version"])
        by_correlation[e["correlation_id"]].append(e["type"])
    for aggregate_id, seen in versions.items():
        assert seen == list(range(1, len(seen) + 1)), aggregate_id
    for types in by_correlation.values():
        if "CommandProcessed" in types and "TicketOpened" in types:
            assert sorted(types) == sorted(
                ["TicketOpened", "TicketTriaged", "AssignedToQueue", "CommandProcessed"]
            ), types
        elif "CommandProcessed" in types and "TicketCommented" in types:
            assert sorted(types) == ["CommandProcessed", "TicketCommented"], types


def retry_refused(server: Server, commands: list[Command]) -> None:
    """Once space is back, every refused command goes through, once."""
    with server.client(timeout=30) as client:
        for c in commands:
            if c.status == 503:
                r = c.send(client)
                assert r.status_code in (200, 201), (r.status_code, r.text)
                assert r.json()["replayed"] is False


def test_full_disk_mid_run_answers_503_and_keeps_the_store_whole(
    tmp_path: Path, tmpfs: Callable[..., Mount]
) -> None:
    mount = tmpfs("8m")
    server = Server(mount.path / "data", log=tmp_path / "server.log").start()
    try:
        people = seed(server)
        # The requester's personal-data key exists before the disk fills (a new data
        # subject on a full disk is the next test).
        with server.client() as c:
            c.post("/tickets", json=ticket_body(people.queue)).raise_for_status()
        mount.fill()
        # Check writes are refused with 503 and nothing recorded.
        commands = load_until_refused(server, people.queue)
        assert httpx.get(f"{server.url}/health").status_code == 200
        # Give the disk room again: the same server records the refused commands.
        mount.remount("size=64m")
        retry_refused(server, commands)
        check_log(server, commands)
    finally:
        server.stop()
    check_store(server.data_dir)
    # Check a restart finds every acknowledged command.
    server.start()
    try:
        check_log(server, commands)
    finally:
        server.stop()


def test_full_disk_with_a_new_data_subject_answers_503(
    tmp_path: Path, tmpfs: Callable[..., Mount]
) -> None:
    mount = tmpfs("8m")
    server = Server(mount.path / "data", log=tmp_path / "server.log").start()
    try:
        people = seed(server)
        mount.fill()
        with server.client() as c:
            before = len(server.client_events())
            r = c.post(
                "/tickets",
                json=ticket_body(people.queue, requester_id="0a0a0a0a-0000-4000-8000-00000000bee5"),
            )
            assert len(server.client_events()) == before
        assert r.status_code == 503, r.text
    finally:
        server.stop()


def test_file_size_limit_mid_run_answers_503_and_keeps_the_store_whole(tmp_path: Path) -> None:
    limit = 2 * 1024 * 1024

    def small_files() -> None:
        # The soft limit only: lifting it later needs no privilege.
        hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))

    server = Server(tmp_path / "data", preexec=small_files).start()
    try:
        people = seed(server)
        # Check writes past the limit are refused with 503 and nothing recorded.
        commands = load_until_refused(server, people.queue)
        assert httpx.get(f"{server.url}/health").status_code == 200
        # Lift the limit on the running server: it records the refused commands.
        assert server.proc is not None
        hard = resource.prlimit(server.proc.pid, resource.RLIMIT_FSIZE)[1]
        resource.prlimit(server.proc.pid, resource.RLIMIT_FSIZE, (hard, hard))
        retry_refused(server, commands)
        check_log(server, commands)
    finally:
        server.stop()
    check_store(server.data_dir)
    server.preexec = None
    server.start()
    try:
        check_log(server, commands)
    finally:
        server.stop()
