"""Crash safety: SIGKILL the server at random moments under concurrent load.

Several client threads send commands (open, comment, triage, assign, start), each with
a unique Idempotency-Key, while the main thread SIGKILLs the server at seeded random
moments and restarts it on the same data directory. Afterwards the log must show:

- every command that got a 2xx, exactly once, at the aggregate version it answered;
- no command that got an error recorded anything;
- no command half-recorded: each command's events (one correlation id) are all there;
- versions per aggregate contiguous from 1, positions strictly increasing;
- retrying every command that got no answer, with its Idempotency-Key, returns the
  recorded result, or records it once (or is refused, recording nothing);
- every view, caught up from where the kills left it, equals a fresh rebuild (but for
  the queue view's SLA columns, which differ from a rebuild without kills too: the
  xfail test at the end).
"""

from __future__ import annotations

import bisect
import json
import os
import random
import shutil
import sqlite3
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

from engine.projections import VIEW_NAMES, Views
from tests.e2e.proc import Seed, Server, seed, ticket_body

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(180)]

SEED = int(os.environ.get("CRASH_SEED", "20261124"))
KILLS = int(os.environ.get("CRASH_KILLS", "12"))
WORKERS = 6
# How long the load runs between two kills (seconds, drawn uniformly).
UP_TIME = (0.4, 1.6)

# The events each command records, by the CommandProcessed path's last segment: a
# correlation id with anything else (or less) is a half-recorded command.
EXPECTED = {
    "tickets": Counter(["TicketOpened", "TicketTriaged", "AssignedToQueue", "CommandProcessed"]),
    "comments": Counter(["TicketCommented", "CommandProcessed"]),
    "triage": Counter(["TicketTriaged", "CommandProcessed"]),
    "assign": Counter(["AssignedToAgent", "AgentTookTicket", "CommandProcessed"]),
    "start": Counter(["TicketWorkStarted", "CommandProcessed"]),
}
LEVELS = ("low", "medium", "high")


@dataclass
class Attempt:
    """One command as a client sent it, and what (if anything) came back."""

    key: str
    api_key: str
    path: str
    body: bytes
    status: int | None = None  # None: no answer (refused, reset or timed out)
    response: dict[str, Any] | None = None

    def send(self, client: httpx.Client) -> httpx.Response:
        return client.post(
            self.path,
            content=self.body,
            headers={
                "Authorization": f"Bearer {self.api_key}",
                "Idempotency-Key": self.key,
                "content-type": "application/json",
            },
        )


@dataclass
class TicketState:
    id: str
    assigned: bool = False
    started: bool = False


@dataclass
class Load:
    """Client threads that keep sending commands until told to stop."""

    server: Server
    people: Seed
    attempts: list[Attempt] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_command(
        self, rnd: random.Random, tickets: list[TicketState], n: int
    ) -> tuple[Attempt, TicketState | None, str]:
        admin, p = self.server.admin_key, self.people
        key = f"crash-{n}-{uuid.uuid4()}"
        if not tickets or rnd.random() < 0.3:
            who = rnd.choice([admin, p.requester_key])
            body = ticket_body(p.queue, title=f"crash test {key}")
            return Attempt(key, who, "/tickets", _json(body)), None, "open"
        t = rnd.choice(tickets[-20:])
        choices = ["comment", "triage"]
        if not t.assigned:
            choices.append("assign")
        elif not t.started:
            choices.append("start")
        kind = rnd.choice(choices)
        if kind == "comment":
            body = {"body": f"note {key}", "internal": rnd.random() < 0.5}
        elif kind == "triage":
            body = {"impact": rnd.choice(LEVELS), "urgency": rnd.choice(LEVELS)}
        elif kind == "assign":
            body = {"agent_id": p.agent_id}
        else:
            body = {}
        who = p.agent_key if kind == "start" else admin
        segment = {"comment": "comments"}.get(kind, kind)
        return Attempt(key, who, f"/tickets/{t.id}/{segment}", _json(body)), t, kind

    def worker(self, n: int) -> None:
        rnd = random.Random(SEED * 1000 + n)
        tickets: list[TicketState] = []
        with httpx.Client(base_url=self.server.url, timeout=5.0) as client:
            while not self.stop.is_set():
                attempt, ticket, kind = self.next_command(rnd, tickets, n)
                with self.lock:
                    self.attempts.append(attempt)
                r = self.deliver(client, attempt)
                if r is None:
                    continue
                attempt.status = r.status_code
                if r.status_code < 300:
                    attempt.response = r.json()
                    if kind == "open":
                        tickets.append(TicketState(attempt.response["aggregate_id"]))
                    elif kind == "assign" and ticket is not None:
                        ticket.assigned = True
                    elif kind == "start" and ticket is not None:
                        ticket.started = True

    def deliver(self, client: httpx.Client, attempt: Attempt) -> httpx.Response | None:
        """Send until the request leaves (the server may be restarting); None: no answer."""
        while not self.stop.is_set():
            try:
                return attempt.send(client)
            except httpx.ConnectError:
                time.sleep(0.02)  # not sent: the server is down, send it again soon
            except httpx.HTTPError:
                return None  # sent, and the server died before it answered
        return None

    @property
    def answered(self) -> list[Attempt]:
        return [a for a in self.attempts if a.status is not None]


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


def by_key(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    records: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        if e["type"] == "CommandProcessed":
            records[e["data"]["key"]].append(e)
    return records


def check_log(events: list[dict[str, Any]], after_position: int) -> None:
    """The log's own invariants: order, contiguous versions, whole commands."""
    # Check positions strictly increase and no event appears twice.
    positions = [e["position"] for e in events]
    assert positions == sorted(set(positions)), "positions are not strictly increasing"
    assert len({e["event_id"] for e in events}) == len(events), "an event id appears twice"
    # Check every aggregate's versions run 1, 2, 3, ... without gap or repeat.
    versions: dict[str, list[int]] = defaultdict(list)
    for e in events:
        versions[e["aggregate_id"]].append(e["aggregate_version"])
    for aggregate_id, seen in versions.items():
        assert seen == list(range(1, len(seen) + 1)), f"{aggregate_id} versions {seen}"
    # Check every client command since the seed is whole: its correlation id carries
    # exactly the events that command records, one CommandProcessed included.
    commands: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        if e["position"] > after_position:
            commands[e["correlation_id"]].append(e)
    for correlation_id, group in commands.items():
        processed = [e for e in group if e["type"] == "CommandProcessed"]
        if not processed and all(e["actor"].startswith("system") for e in group):
            continue  # the engine's own processes (SLA clock, routing): not a client's
        assert len(processed) == 1, f"command {correlation_id}: {[e['type'] for e in group]}"
        segment = processed[0]["data"]["path"].rsplit("/", 1)[-1]
        got = Counter(e["type"] for e in group)
        assert got == EXPECTED[segment], f"half-recorded {segment} {correlation_id}: {got}"


def check_acknowledged(events: list[dict[str, Any]], attempts: list[Attempt]) -> None:
    """Every 2xx is in the log once, as answered; every refusal recorded nothing."""
    records = by_key(events)
    positions: dict[str, list[int]] = defaultdict(list)  # per aggregate, in version order
    last_position: dict[str, int] = {}
    for e in events:
        positions[e["aggregate_id"]].append(e["position"])
        last_position[e["correlation_id"]] = e["position"]
    for a in attempts:
        if a.status is None:
            continue
        assert a.status < 500, f"{a.path} answered {a.status}"
        if a.status >= 300:
            assert a.key not in records, f"refused {a.path} ({a.status}) was recorded"
            continue
        assert a.response is not None
        assert len(records[a.key]) == 1, f"{a.path} {a.key}: {len(records[a.key])} records"
        record = records[a.key][0]
        assert record["data"]["response"]["aggregate_id"] == a.response["aggregate_id"]
        assert record["data"]["response"]["version"] == a.response["version"]
        # The answered version is the aggregate's version right after the command.
        aggregate = positions[a.response["aggregate_id"]]
        version_then = bisect.bisect_right(aggregate, record["position"])
        assert version_then == a.response["version"], f"{a.path}: {a.response}"
        if not a.response["replayed"]:
            # The answered position is the command's last event in the log.
            assert last_position[record["correlation_id"]] == a.response["position"]


def retry_unanswered(server: Server, attempts: list[Attempt]) -> list[Attempt]:
    """Send every unanswered command again with its key; return the ones now recorded."""
    before = by_key(server.events())
    recorded: list[Attempt] = []
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        for a in attempts:
            if a.status is not None:
                continue
            r = a.send(client)
            assert r.status_code < 500, (a.path, r.status_code, r.text)
            if a.key in before:
                # Check a recorded command answers its first result and records nothing.
                assert r.status_code < 300, (a.path, r.status_code, r.text)
                body = r.json()
                first = before[a.key][0]["data"]
                assert body["replayed"] is True
                assert body["aggregate_id"] == first["response"]["aggregate_id"]
                assert body["version"] == first["response"]["version"]
                assert r.status_code == first["status_code"]
                a.status, a.response = r.status_code, body
                continue
            if r.status_code >= 300:
                # Refused now (the ticket moved on): a problem, and nothing recorded.
                assert r.headers["content-type"].startswith("application/problem+json")
                continue
            assert r.json()["replayed"] is False
            again = a.send(client)
            assert again.status_code == r.status_code, again.text
            assert again.json()["replayed"] is True
            assert again.json()["aggregate_id"] == r.json()["aggregate_id"]
            a.status, a.response = r.status_code, r.json()
            recorded.append(a)
    return recorded


def views_caught_up(data_dir: Path, timeout: float = 90.0) -> None:
    """Run the server on ``data_dir`` until its views have applied the whole log.

    The SLA clock is off, so that nothing new is recorded meanwhile."""
    server = Server(data_dir, env={"TICKETING_CLOCK": "off"}).start()
    try:
        deadline = time.monotonic() + timeout
        while True:
            health = httpx.get(f"{server.url}/health", timeout=10).json()
            views = health["views"]
            assert not views.get("error"), views["error"]
            if all(v["lag"] == 0 for v in views["views"].values()):
                return
            assert time.monotonic() < deadline, f"views still lag: {views}"
            time.sleep(0.2)
    finally:
        server.stop()


def dump_views(data_dir: Path, mask: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Every view's tables, sorted (ViewStore.dump: the projections' own comparison),
    with the ``mask``ed columns blanked."""
    recorder = SQLiteApplicationRecorder(SQLiteDatastore(str(data_dir / "events.sqlite")))
    views = Views(recorder, data_dir)
    try:
        dumps: dict[str, Any] = {}
        for name in VIEW_NAMES:
            store = views._live[name].view
            tables = store.dump()
            with sqlite3.connect(f"file:{store.path}?mode=ro", uri=True) as db:
                for table, rows in tables.items():
                    columns = [c[1] for c in db.execute(f"PRAGMA table_info({table})")]
                    hidden = {i for i, column in enumerate(columns) if column in mask}
                    if hidden:
                        tables[table] = sorted(
                            (tuple(None if i in hidden else v for i, v in enumerate(row))
                             for row in rows),
                            key=repr,
                        )  # fmt: skip
            dumps[name] = tables
        return dumps
    finally:
        views.close()
        recorder.datastore.close()


def compare_with_a_rebuild(data_dir: Path, mask: frozenset[str] = frozenset()) -> None:
    """The views of ``data_dir``, caught up, equal a rebuild of the same log by a server
    of its own (same log and keys, no views)."""
    views_caught_up(data_dir)
    fresh = data_dir.parent / f"{data_dir.name}-rebuilt"
    shutil.copytree(data_dir, fresh, ignore=shutil.ignore_patterns("views", "clock*"))
    views_caught_up(fresh)
    survived, rebuilt = dump_views(data_dir, mask), dump_views(fresh, mask)
    assert survived.keys() == rebuilt.keys() == set(VIEW_NAMES)
    for name in VIEW_NAMES:
        for table, rows in survived[name].items():
            differ = set(rows) ^ set(rebuilt[name][table])
            assert not differ, f"view {name}.{table}: {len(differ)} rows differ from a rebuild"


@pytest.fixture(scope="module")
def crashed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Load, int]]:
    """A server that was SIGKILLed KILLS times under load, restarted after each kill."""
    server = Server(tmp_path_factory.mktemp("crash") / "data").start()
    try:
        people = seed(server)
        seeded = server.events()[-1]["position"]
        load = Load(server, people)
        threads = [threading.Thread(target=load.worker, args=(n,)) for n in range(WORKERS)]
        for t in threads:
            t.start()
        rnd = random.Random(SEED)
        try:
            for _ in range(KILLS):
                time.sleep(rnd.uniform(*UP_TIME))
                server.kill()
                time.sleep(rnd.uniform(0.0, 0.2))
                server.start()
            time.sleep(rnd.uniform(*UP_TIME))
        finally:
            load.stop.set()
            for t in threads:
                t.join(30)
        yield server, load, seeded
    finally:
        server.stop()


def test_sigkill_under_load_keeps_every_acknowledged_command_once(
    crashed: tuple[Server, Load, int],
) -> None:
    server, load, seeded = crashed
    assert server.starts == KILLS + 1
    # Check the load was real: commands acknowledged, and commands cut off by kills.
    ok = [a for a in load.answered if a.status is not None and a.status < 300]
    unanswered = [a for a in load.attempts if a.status is None]
    assert len(ok) >= 10 * KILLS, f"only {len(ok)} commands acknowledged"
    assert unanswered, "no command was cut off by a kill"

    # Check the log after the last restart.
    events = server.events()
    check_log(events, seeded)
    check_acknowledged(events, load.attempts)

    # Retry every command that got no answer; the log stays whole and exactly-once.
    committed_unanswered = len(set(by_key(events)) & {a.key for a in unanswered})
    recorded = retry_unanswered(server, load.attempts)
    events = server.events()
    check_log(events, seeded)
    check_acknowledged(events, load.attempts)
    records = by_key(events)
    assert all(len(r) == 1 for r in records.values())
    acknowledged = {a.key for a in load.attempts if a.status is not None and a.status < 300}
    assert set(records) == acknowledged, "a recorded command is unknown to its client"
    statuses = Counter(a.status for a in load.attempts)
    print(
        f"\n{len(load.attempts)} commands {dict(statuses)}; {len(ok)} acknowledged; "
        f"{len(unanswered)} cut off by {KILLS} kills: {committed_unanswered} had committed, "
        f"{len(recorded)} recorded on retry; {len(events)} events"
    )


def test_views_after_the_kills_equal_a_fresh_rebuild(
    crashed: tuple[Server, Load, int],
) -> None:
    server, _, _ = crashed
    server.stop()
    # The views as the kills left them, caught up by a restarted server, against a
    # rebuild.
    compare_with_a_rebuild(server.data_dir)


def test_views_without_kills_equal_a_fresh_rebuild(tmp_path: Path) -> None:
    server = Server(tmp_path / "data").start()
    try:
        load = Load(server, seed(server))
        threads = [threading.Thread(target=load.worker, args=(n,)) for n in range(WORKERS)]
        for t in threads:
            t.start()
        time.sleep(8)
        load.stop.set()
        for t in threads:
            t.join(30)
    finally:
        server.stop()
    compare_with_a_rebuild(server.data_dir)
