"""Concurrent command load and the checks the fault tests make afterwards.

Shared by the crash tests on SQLite (``test_crash.py``) and on Kafka
(``test_kafka_crash.py``): client threads send commands (open, comment, triage,
assign, start), each with a unique Idempotency-Key, and remember every try and its
answer; the checks then read the log (GET /events) and the views.

What an outcome means, and what the checks demand of it:

- a 2xx: the command is in the log exactly once, whole, at the version it answered;
- a 4xx (a refusal): the command recorded nothing;
- a 503 (the store unavailable, only where the test allows it): nothing recorded, or
  (when the store committed but could not confirm in time) the whole command, once;
- no answer (the server died, or the client gave up): either, as for a 503.

"Whole" is checked for every command in the log, answered or not: its correlation id
carries exactly the events that command records, one CommandProcessed included.
"""

from __future__ import annotations

import bisect
import json
import random
import shutil
import sqlite3
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

from engine.projections import VIEW_NAMES, Views
from tests.e2e.proc import Seed, Server, ticket_body

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
PROBLEM_JSON = "application/problem+json"


@dataclass
class Try:
    """One HTTP request of an attempt: when it left, how long it took, what came back."""

    sent_at: float  # monotonic
    seconds: float
    status: int | None  # None: no answer (reset, or the client's timeout)
    content_type: str = ""
    replayed: bool = False
    detail: str = ""  # a problem's detail


@dataclass
class Attempt:
    """One command as a client sent it (perhaps several times, with the same
    Idempotency-Key), and what (if anything) came back last."""

    key: str
    api_key: str
    path: str
    body: bytes
    status: int | None = None  # None: no answer (refused, reset or timed out)
    response: dict[str, Any] | None = None
    tries: list[Try] = field(default_factory=list)

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
    """Client threads that keep sending commands until told to stop.

    Each worker owns the tickets it opened, so workers never race each other.
    Workers whose number is in ``retrying`` send a command refused with 503 again,
    with the same Idempotency-Key, until it is answered otherwise or the load stops;
    the others move on to a new command.
    """

    server: Server
    people: Seed
    seed: int
    workers: int = 6
    client_timeout: float = 5.0
    retrying: frozenset[int] = frozenset()
    retry_wait: float = 0.2
    attempts: list[Attempt] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Load:
        self._threads = [
            threading.Thread(target=self.worker, args=(n,), name=f"load-{n}", daemon=True)
            for n in range(self.workers)
        ]
        for t in self._threads:
            t.start()
        return self

    def finish(self, timeout: float = 60.0) -> None:
        """Stop the workers and wait for them; raise if one is stuck."""
        self.stop.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        stuck = [t.name for t in self._threads if t.is_alive()]
        assert not stuck, f"load workers still waiting for an answer: {stuck}"

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
        rnd = random.Random(self.seed * 1000 + n)
        tickets: list[TicketState] = []
        with httpx.Client(base_url=self.server.url, timeout=self.client_timeout) as client:
            while not self.stop.is_set():
                attempt, ticket, kind = self.next_command(rnd, tickets, n)
                with self.lock:
                    self.attempts.append(attempt)
                while True:
                    r = self.deliver(client, attempt)
                    if r is None:
                        break
                    attempt.status = r.status_code
                    if r.status_code != 503 or n not in self.retrying or self.stop.is_set():
                        break
                    self.stop.wait(self.retry_wait)  # unavailable: the same command again
                if r is None or r.status_code >= 300:
                    continue
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
            sent_at = time.monotonic()
            try:
                r = attempt.send(client)
            except httpx.ConnectError:
                time.sleep(0.02)  # not sent: the server is down, send it again soon
                continue
            except httpx.HTTPError:
                # Sent, and the server died (or the client gave up) before it answered.
                attempt.tries.append(Try(sent_at, time.monotonic() - sent_at, None))
                attempt.status = None
                return None
            replayed = r.status_code < 300 and bool(r.json().get("replayed"))
            detail = "" if r.status_code < 300 else r.text[:300]
            attempt.tries.append(
                Try(
                    sent_at,
                    time.monotonic() - sent_at,
                    r.status_code,
                    r.headers.get("content-type", ""),
                    replayed,
                    detail,
                )
            )
            return r
        return None

    @property
    def answered(self) -> list[Attempt]:
        return [a for a in self.attempts if a.status is not None]

    @property
    def acknowledged(self) -> list[Attempt]:
        return [a for a in self.attempts if a.status is not None and a.status < 300]

    @property
    def unanswered(self) -> list[Attempt]:
        return [a for a in self.attempts if a.status is None and a.tries]

    def tries(self) -> list[tuple[Attempt, Try]]:
        return [(a, t) for a in list(self.attempts) for t in a.tries]

    def summary(self) -> str:
        statuses = Counter(a.status for a in self.attempts)
        tries = Counter(t.status for _, t in self.tries())
        return f"{len(self.attempts)} commands, final {dict(statuses)}; tries {dict(tries)}"


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


def by_key(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    records: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        if e["type"] == "CommandProcessed":
            records[e["data"]["key"]].append(e)
    return records


def check_log(
    events: list[dict[str, Any]], after_position: int, *, aborted_leak: bool = False
) -> list[str]:
    """The log's own invariants: order, contiguous versions, whole commands.

    With ``aborted_leak`` (the Tansu test broker shows an aborted transaction's
    records to read_committed readers), a command whose records the broker took in
    only in part before its transaction was aborted is let through: only then can a
    command's events appear without its CommandProcessed (which is appended last),
    and never for a command that was acknowledged (its CommandProcessed is in the
    log, so it is checked whole). Returns the commands so let through."""
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
    leaked: list[str] = []
    for correlation_id, group in commands.items():
        processed = [e for e in group if e["type"] == "CommandProcessed"]
        if not processed and all(e["actor"].startswith("system") for e in group):
            continue  # the engine's own processes (SLA clock, routing): not a client's
        got = Counter(e["type"] for e in group)
        if not processed and aborted_leak and _aborted_part(group):
            leaked.append(f"{correlation_id}: {dict(got)}")
            continue
        assert len(processed) == 1, f"command {correlation_id}: {[e['type'] for e in group]}"
        segment = processed[0]["data"]["path"].rsplit("/", 1)[-1]
        assert got == EXPECTED[segment], f"half-recorded {segment} {correlation_id}: {got}"
    return leaked


def _aborted_part(group: list[dict[str, Any]]) -> bool:
    """Whether ``group`` can be the front part of one command's append: consecutive
    positions, and a part of some command's events."""
    positions = [e["position"] for e in group]
    got = Counter(e["type"] for e in group)
    return positions == list(range(positions[0], positions[0] + len(group))) and any(
        got <= expected for expected in EXPECTED.values()
    )


def check_acknowledged(
    events: list[dict[str, Any]], attempts: list[Attempt], *, unavailable_ok: bool = False
) -> None:
    """Every 2xx is in the log once, as answered; every refusal recorded nothing; a
    503 (if ``unavailable_ok``) recorded nothing or the whole command once."""
    records = by_key(events)
    positions: dict[str, list[int]] = defaultdict(list)  # per aggregate, in version order
    last_position: dict[str, int] = {}
    for e in events:
        positions[e["aggregate_id"]].append(e["position"])
        last_position[e["correlation_id"]] = e["position"]
    for a in attempts:
        if a.status is None:
            assert len(records.get(a.key, ())) <= 1, f"unanswered {a.path} recorded twice"
            continue
        if a.status == 503 and unavailable_ok:
            # Not confirmed in time: absent, or (committed after all) once and whole
            # (check_log checks whole).
            assert len(records.get(a.key, ())) <= 1, f"503 {a.path} recorded twice"
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


def check_exactly_once(events: list[dict[str, Any]], attempts: list[Attempt]) -> None:
    """No key recorded twice, and every recorded command is one a client sent."""
    records = by_key(events)
    twice = [k for k, r in records.items() if len(r) != 1]
    assert not twice, f"commands recorded more than once: {twice[:5]}"
    sent = {a.key for a in attempts}
    unknown = [k for k in records if k.startswith("crash-") and k not in sent]
    assert not unknown, f"recorded commands no client sent: {unknown[:5]}"


def retry_unanswered(
    server: Server, attempts: list[Attempt], *, also: Callable[[Attempt], bool] | None = None
) -> list[Attempt]:
    """Send every unanswered command (and those ``also`` picks) again with its key;
    return the ones now recorded."""
    before = by_key(server.events())
    recorded: list[Attempt] = []
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        for a in attempts:
            if a.status is not None and not (also is not None and also(a)):
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
                assert r.headers["content-type"].startswith(PROBLEM_JSON)
                a.status = r.status_code
                continue
            assert r.json()["replayed"] is False
            again = a.send(client)
            assert again.status_code == r.status_code, again.text
            assert again.json()["replayed"] is True
            assert again.json()["aggregate_id"] == r.json()["aggregate_id"]
            a.status, a.response = r.status_code, r.json()
            recorded.append(a)
    return recorded


def wait_views_caught_up(server: Server, timeout: float = 90.0) -> None:
    """Wait until the running ``server``'s views have applied its whole log."""
    deadline = time.monotonic() + timeout
    while True:
        health = httpx.get(f"{server.url}/health", timeout=10).json()
        views = health["views"]
        assert not views.get("error"), views["error"]
        if all(v["lag"] == 0 for v in views["views"].values()):
            return
        assert time.monotonic() < deadline, f"views still lag: {views}"
        time.sleep(0.2)


def views_caught_up(
    data_dir: Path, env: dict[str, str] | None = None, timeout: float = 90.0
) -> list[dict[str, Any]]:
    """Run the server on ``data_dir`` until its views have applied the whole log;
    return the log as that server serves it.

    The SLA clock is off, so that nothing new is recorded meanwhile."""
    server = Server(data_dir, env={**(env or {}), "TICKETING_CLOCK": "off"}).start(timeout=60)
    try:
        wait_views_caught_up(server, timeout)
        return server.events()
    finally:
        server.stop()


def dump_views(data_dir: Path, mask: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Every view's tables, sorted (ViewStore.dump: the projections' own comparison),
    with the ``mask``ed columns blanked."""
    # Only the view files are read: any recorder will do (the Kafka mode has no
    # events.sqlite), so an empty one in memory stands in.
    recorder = SQLiteApplicationRecorder(SQLiteDatastore(":memory:"))
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


def compare_with_a_rebuild(
    data_dir: Path,
    mask: frozenset[str] = frozenset(),
    env: dict[str, str] | None = None,
    ignore: tuple[str, ...] = (),
) -> None:
    """The views of ``data_dir``, caught up, equal a rebuild of the same log by a server
    of its own (same log and keys, no views, nor the ``ignore``d files), which serves
    the same log."""
    log = views_caught_up(data_dir, env)
    fresh = data_dir.parent / f"{data_dir.name}-rebuilt"
    shutil.copytree(data_dir, fresh, ignore=shutil.ignore_patterns("views", "clock*", *ignore))
    assert views_caught_up(fresh, env) == log, "the rebuilt server serves another log"
    survived, rebuilt = dump_views(data_dir, mask), dump_views(fresh, mask)
    assert survived.keys() == rebuilt.keys() == set(VIEW_NAMES)
    rows_seen = 0
    for name in VIEW_NAMES:
        assert survived[name].keys() == rebuilt[name].keys(), name
        for table, rows in survived[name].items():
            differ = set(rows) ^ set(rebuilt[name][table])
            assert not differ, f"view {name}.{table}: {len(differ)} rows differ from a rebuild"
            rows_seen += len(rows)
    assert rows_seen > 0, "the views are empty"
