"""Peak memory of the server on a large log, and ticket query latency as the log grows.

For each size (tickets) a log is written straight through the recorder, the way the
application writes it (domain deciders, ``EnvelopeMapper`` with the data directory's
key store sealing personal fields, the per-aggregate hash chain), about 10 events per
ticket: 100,000 tickets make about 1,000,000 events. Then ``ticketing serve`` starts on
it (views in process, as operators run it) and, once the views have caught up:

- ticket queries over HTTP, one client, p50/p99 (best of 3 passes): state now
  (GET /tickets/{id}), at a version (?version=), as it stood at a past moment
  (?as_of=); baseline in the same run: GET /health (the HTTP floor); growth from the
  smallest to the largest size;
- memory: VmHWM (peak RSS) and VmRSS from /proc/PID/status, against the same server
  started on an empty data directory in the same run. Aim: < 500 MB at 1M events.

    .venv/bin/python -m bench.bench_memory [--tickets 10000,100000] [--quick]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

from bench import ROOT, Progress, machine, note, percentiles, write_result
from engine.domain.base import DomainEvent
from engine.domain.priority import Level
from engine.domain.ticket import Channel
from engine.integrity.keystore import SQLiteKeyStore
from engine.stores.envelope import EnvelopeMapper
from tests.support.simulation import Desk

ADMIN_KEY = "bench-admin-key-0123456789abcdefghij"
AIM_MB = 500.0
AIM_P99_MS = 20.0
START = datetime(2025, 1, 1, tzinfo=UTC)
QUEUES = ("service-desk", "network", "hardware", "access", "applications")
LEVELS = (Level.HIGH, Level.MEDIUM, Level.LOW)


class ChainedDesk(Desk):
    """The simulation desk, recording exactly as the application does: personal fields
    sealed with the data directory's key store, each event chained to its aggregate's
    previous one. Keeps no list of recorded events (a million would not fit lightly)."""

    def __init__(self, recorder: SQLiteApplicationRecorder, keys: SQLiteKeyStore) -> None:
        super().__init__(recorder, START, seed=7, buffer=200)
        self.mapper = EnvelopeMapper(keys)
        self.heads: dict[UUID, str] = {}
        self.events = 0

    def record(self, events: Sequence[DomainEvent]) -> None:
        for event in events:
            self._fold(event)
            stored, self.heads[event.originator_id] = self.mapper.stored(
                event, self.heads.get(event.originator_id)
            )
            self._pending.append(stored)
        self.events += len(events)
        self._commands += 1
        if self._commands % self.buffer == 0:
            self.flush()

    def forget(self, ticket_id: UUID) -> None:
        """A finished ticket's folded state is no longer needed to decide."""
        self.tickets.pop(ticket_id, None)
        self.assignments.pop(ticket_id, None)


def generate(data_dir: Path, tickets: int, seed: int) -> dict[str, Any]:
    """A log of ``tickets`` tickets (about 10 events each) in ``data_dir``; returns the
    counts and, for the queries, a sample of tickets with their open/close times."""
    data_dir.mkdir(parents=True, exist_ok=True)
    datastore = SQLiteDatastore(str(data_dir / "events.sqlite"))
    recorder = SQLiteApplicationRecorder(datastore)
    recorder.create_table()
    keys = SQLiteKeyStore(data_dir / "keys.sqlite")
    desk = ChainedDesk(recorder, keys)
    rng = random.Random(seed)
    for name in QUEUES:
        desk.create_queue(name)
    agents = {
        q: [desk.register_agent(f"{q} agent {n}", [q], 10**6) for n in range(6)] for q in QUEUES
    }
    minutes = 365 * 24 * 60 / tickets  # a year of tickets
    sample: list[dict[str, Any]] = []
    progress = Progress(f"generate {tickets:,} tickets", tickets)
    t0 = time.perf_counter()
    for i in range(tickets):
        desk.clock = START + timedelta(minutes=i * minutes)
        queue = rng.choice(QUEUES)
        opened_at = desk.clock
        tid = desk.open(
            f"Printer {i} jams",
            f"user{rng.randrange(max(10, tickets // 20))}",
            queue,
            rng.choice(LEVELS),
            rng.choice(LEVELS),
            Channel.EMAIL,
        )
        # The last tenth of tickets is still being worked on: they stop part way.
        steps = rng.randrange(1, 5) if i >= tickets * 0.9 else 99
        for step, action in enumerate(("assign", "start", "comment", "comment", "resolve")):
            if step >= steps:
                break
            desk.advance(rng.uniform(1, 60))
            if action == "assign":
                desk.assign(tid, rng.choice(agents[queue]))
            elif action == "start":
                desk.start(tid)
            elif action == "comment" and (step == 2 or rng.random() < 0.5):
                desk.comment(tid, "looked at it", internal=rng.random() < 0.3)
            elif action == "resolve":
                desk.resolve(tid)
                desk.advance(rng.uniform(60, 600))
                desk.close(tid)
        if rng.random() < 2000 / tickets:
            sample.append({"id": str(tid), "opened_at": opened_at, "until": desk.clock})
        if steps == 99:
            desk.forget(tid)
        progress(i + 1)
    desk.flush()
    elapsed = time.perf_counter() - t0
    datastore.close()
    return {
        "tickets": tickets,
        "events": desk.events,
        "generate_seconds": round(elapsed, 1),
        "generate_events_per_s": round(desk.events / elapsed),
        "db_mb": round((data_dir / "events.sqlite").stat().st_size / 2**20, 1),
        "sample": sample,
    }


# --- the server ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Serve:
    """``python -m cli.main serve`` on a data directory, stopped by its pid."""

    def __init__(self, data_dir: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TICKETING_", "KAFKA_"))}
        env.update(PYTHONPATH=str(ROOT), TICKETING_BOOTSTRAP_ADMIN_KEY=ADMIN_KEY)
        command = [
            sys.executable,
            "-m",
            "cli.main",
            "serve",
            "--data-dir",
            str(data_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        t0 = time.perf_counter()
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"server exited {self.proc.returncode}: {log.read_text()[-3000:]}"
                )
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        self.startup_seconds = round(time.perf_counter() - t0, 2)
        self.http = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=60
        )

    def memory(self) -> dict[str, float]:
        fields = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmHWM", "VmRSS"):
                fields[name] = round(int(value.split()[0]) / 1024, 1)
        return {"peak_rss_mb": fields["VmHWM"], "rss_mb": fields["VmRSS"]}

    def wait_for_views(self, timeout: float) -> dict[str, Any]:
        """Until every view has caught up with the log (or an error, or the timeout)."""
        t0 = time.perf_counter()
        health: dict[str, Any] = {}
        progress: Progress | None = None
        while time.perf_counter() - t0 < timeout:
            health = self.http.get("/health").json()
            views = health.get("views")
            if not views:
                return {"views": "not running", "seconds": 0.0}
            head = int(views.get("head", health.get("position", 0)))
            lags = [int(v.get("lag", 0)) for v in views.get("views", {}).values()]
            done = head - max(lags, default=0)
            progress = progress or Progress("views catching up", head)
            progress(done)
            if not any(lags):
                progress(head)
                return {"views": "caught up", "seconds": round(time.perf_counter() - t0, 1)}
            if views.get("error"):
                note(f"views report an error: {str(views['error'])[:200]}")
                return {"views": f"error: {views['error']}", "seconds": None, "health": health}
            time.sleep(0.5)
        return {"views": "timed out", "seconds": None, "health": health}

    def stop(self) -> None:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def timed(label: str, runs: int, call: Callable[[int], httpx.Response]) -> dict[str, float]:
    samples: list[float] = []
    progress = Progress(label, runs)
    for n in range(runs):
        t0 = time.perf_counter()
        r = call(n)
        samples.append(time.perf_counter() - t0)
        if r.status_code != 200:
            raise RuntimeError(f"{label}: {r.status_code} {r.text[:300]}")
        progress(n + 1)
    return percentiles(samples)


def queries(server: Serve, sample: list[dict[str, Any]], runs: int, passes: int) -> dict[str, Any]:
    """Each kind ``passes`` times; the pass with the lowest p99 counts (other work on a
    shared machine only adds latency), every pass's p99 is kept beside it."""
    rng = random.Random(11)

    def one_pass(n_pass: int) -> dict[str, Any]:
        picks = [rng.choice(sample) for _ in range(runs)]

        def as_of(n: int) -> httpx.Response:
            t = picks[n]
            moment = t["opened_at"] + (t["until"] - t["opened_at"]) * rng.random()
            return server.http.get(f"/tickets/{t['id']}", params={"as_of": moment.isoformat()})

        tag = f" {n_pass + 1}/{passes}"
        return {
            "health_floor": timed(
                "GET /health (floor)" + tag, runs, lambda n: server.http.get("/health")
            ),
            "ticket_state": timed(
                "GET /tickets/{id}" + tag,
                runs,
                lambda n: server.http.get(f"/tickets/{picks[n]['id']}"),
            ),
            "ticket_version": timed(
                "GET /tickets/{id}?version=2" + tag,
                runs,
                lambda n: server.http.get(f"/tickets/{picks[n]['id']}", params={"version": 2}),
            ),
            "ticket_as_of": timed("GET /tickets/{id}?as_of=" + tag, runs, as_of),
        }

    results = [one_pass(n) for n in range(passes)]
    best: dict[str, Any] = {}
    for kind in results[0]:
        chosen = min((r[kind] for r in results), key=lambda q: q["p99_ms"])
        best[kind] = {**chosen, "p99_ms_every_pass": [r[kind]["p99_ms"] for r in results]}
    return best


def run_size(
    tickets: int, runs: int, passes: int, views_timeout: float, workdir: Path
) -> dict[str, Any]:
    data_dir = workdir / f"data-{tickets}"
    log = generate(data_dir, tickets, seed=tickets)
    sample = log.pop("sample")
    server = Serve(data_dir, workdir / f"server-{tickets}.log")
    try:
        note(f"server up in {server.startup_seconds} s on {log['events']:,} events")
        views = server.wait_for_views(views_timeout)
        result = {**log, "startup_seconds": server.startup_seconds, "views": views}
        result["queries"] = queries(server, sample, runs, passes)
        result["memory"] = server.memory()
        note(
            f"{tickets:,} tickets / {log['events']:,} events: peak RSS "
            f"{result['memory']['peak_rss_mb']} MB; ticket state p99 "
            f"{result['queries']['ticket_state']['p99_ms']} ms"
        )
        return result
    finally:
        server.stop()


def empty_baseline(runs: int, passes: int, workdir: Path) -> dict[str, Any]:
    """The same server on an empty data directory: the memory and latency floor."""
    server = Serve(workdir / "data-empty", workdir / "server-empty.log")
    try:
        ids = []
        for _ in range(20):
            body = {
                "title": "t",
                "description": "d",
                "category": "c",
                "impact": "low",
                "urgency": "low",
            }
            ids.append(server.http.post("/tickets", json=body).json()["aggregate_id"])
        now = datetime.now(UTC)
        sample = [{"id": i, "opened_at": now - timedelta(seconds=1), "until": now} for i in ids]
        sample = [dict(s, opened_at=now, until=now + timedelta(seconds=1)) for s in sample]
        return {
            "startup_seconds": server.startup_seconds,
            "queries": queries(server, sample, runs, passes),
            "memory": server.memory(),
        }
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tickets", default="10000,100000", help="sizes, comma separated")
    parser.add_argument("--runs", type=int, default=500, help="samples per query kind")
    parser.add_argument("--passes", type=int, default=3, help="passes (lowest p99 counts)")
    parser.add_argument("--views-timeout", type=float, default=600.0, help="seconds")
    parser.add_argument("--quick", action="store_true", help="sizes 500 and 5,000 tickets")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temp directory")
    args = parser.parse_args(argv)
    if args.quick:
        args.tickets, args.runs, args.passes, args.views_timeout = "500,5000", 200, 2, 120.0
    sizes = [int(s) for s in args.tickets.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-memory-", dir=args.workdir) as name:
        workdir = Path(name)
        baseline = empty_baseline(args.runs, args.passes, workdir)
        runs = [run_size(n, args.runs, args.passes, args.views_timeout, workdir) for n in sizes]
    largest, smallest = runs[-1], runs[0]
    growth = {
        kind: round(largest["queries"][kind]["p99_ms"] / smallest["queries"][kind]["p99_ms"], 2)
        for kind in ("ticket_state", "ticket_version", "ticket_as_of")
    }
    peak = largest["memory"]["peak_rss_mb"]
    result = {
        "benchmark": "memory",
        "title": "server peak RSS on a large log; ticket query latency as the log grows",
        "machine": machine(),
        "args": {k: str(v) for k, v in vars(args).items()},
        "empty": baseline,
        "sizes": runs,
        "peak_rss_ratio_to_empty": round(peak / baseline["memory"]["peak_rss_mb"], 2),
        "p99_growth_smallest_to_largest": growth,
        "aim": {"peak_rss_mb": AIM_MB, "query_p99_ms": AIM_P99_MS},
        "met": {
            "memory": peak < AIM_MB and largest["events"] >= 1_000_000,
            "queries": all(
                largest["queries"][k]["p99_ms"] < AIM_P99_MS
                for k in ("ticket_state", "ticket_version", "ticket_as_of")
            ),
        },
    }
    write_result("memory", result)
    return result


if __name__ == "__main__":
    main()
