"""Benchmark of the read side: rebuild speed against raw log reading, query latency.

For each size (tickets) it writes a synthetic log through the domain deciders into an
eventsourcing SQLite ApplicationRecorder (our envelope mapper), then measures:

- raw: ``select_notifications`` over the whole log (events/s), the same batch size
  the rebuild reads with;
- rebuild: ``Views.rebuild()`` of all three views from zero (events/s), and the ratio
  rebuild / raw measured in the same run (aim: >= 0.3): raw reads and rebuilds
  alternate (``--rounds``), the best run of each side counts, every run is kept;
- queries: queue pages (random queue, filters and next pages), ticket histories,
  searches, workloads, p50/p99 in ms (aim at 100k tickets: queue page p99 < 20 ms);
  one service and one agent report over the whole period.

    .venv/bin/python bench/bench_views.py                       # 10k and 100k tickets
    .venv/bin/python bench/bench_views.py --sizes 2000 --queries 200

Results go to bench/results/views.json (``--out``).
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore  # noqa: E402

from engine.domain.priority import Level  # noqa: E402
from engine.domain.ticket import Channel  # noqa: E402
from engine.integrity.keystore import MemoryKeyStore  # noqa: E402
from engine.projections import Views  # noqa: E402
from engine.projections.kit import records  # noqa: E402
from tests.support.simulation import Desk  # noqa: E402

START = datetime(2025, 1, 1, tzinfo=UTC)
QUEUES = ("service-desk", "network", "hardware", "access", "applications")
TITLES = (
    "Printer jam on floor 3", "VPN drops every hour", "Cannot log in to payroll",
    "Laptop battery swollen", "Mailbox full", "Wi-Fi slow in room 12",
    "Request: new monitor", "Password reset", "ERP report fails", "Phone not ringing",
)  # fmt: skip
LEVELS = (Level.HIGH, Level.MEDIUM, Level.LOW)


# --- progress display --------------------------------------------------------------------


def bar(label: str) -> Callable[[int, int, float], None]:
    started = time.perf_counter()

    def show(done: int, total: int, rate: float) -> None:
        share = done / total if total else 1.0
        left = (total - done) / rate if rate > 0 else 0.0
        filled = int(share * 30)
        sys.stderr.write(
            f"\r  {label:<10} [{'#' * filled}{'.' * (30 - filled)}] {done:>9,}/{total:,} "
            f"{rate:>9,.0f}/s  {time.perf_counter() - started:6.1f}s  left {left:5.1f}s "
        )
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


# --- synthetic log --------------------------------------------------------------------------


def lifecycle(desk: Desk, rng: random.Random, agents: dict[str, list[UUID]],
              i: int, n: int) -> Iterator[float]:  # fmt: skip
    """One ticket's commands; yields the minutes to wait before the next one. The most
    recent tickets stop part way, so the queues hold active work at the end."""
    queue = QUEUES[rng.randrange(len(QUEUES)) if rng.random() < 0.8 else 0]
    tid = desk.open(
        TITLES[rng.randrange(len(TITLES))] + f" #{i}",
        f"user{rng.randrange(max(10, n // 5))}",
        queue,
        LEVELS[rng.randrange(3)],
        LEVELS[rng.randrange(3)],
        Channel.EMAIL if rng.random() < 0.6 else Channel.WEB,
    )
    recent = i > n * 0.85
    stop = rng.randrange(1, 9) if recent and rng.random() < 0.8 else 99
    steps = 0

    def more() -> bool:
        nonlocal steps
        steps += 1
        return steps < stop

    yield rng.expovariate(1 / 90)
    if not more():
        return
    desk.assign(tid, rng.choice(agents[queue]))
    yield rng.expovariate(1 / 30)
    if not more():
        return
    desk.accept(tid)
    desk.start(tid)
    yield rng.expovariate(1 / 60)
    for _ in range(rng.randrange(1, 4)):
        if not more():
            return
        desk.comment(tid, "working on it", internal=rng.random() < 0.3)
        yield rng.expovariate(1 / 240)
    if rng.random() < 0.15 and more():
        desk.pend(tid)
        yield rng.expovariate(1 / 1440)
        desk.resume(tid)
        yield 30
    if rng.random() < 0.08 and more():
        escalation = desk.escalate(tid, vendor=rng.random() < 0.3)
        yield 60
        desk.acknowledge(escalation)
        yield rng.expovariate(1 / 600)
        desk.end_escalation(escalation)
        yield 10
    if not more():
        return
    desk.resolve(tid)
    yield rng.expovariate(1 / 600)
    if rng.random() < 0.06:
        desk.reopen(tid)
        yield 120
        desk.resolve(tid)
        yield 60
    if rng.random() < 0.5:
        desk.rate(tid, rng.choice((5, 5, 4, 4, 3, 2, 1)))
        yield 1440
    desk.close(tid)


def generate(
    path: Path, tickets: int, seed: int, keys: MemoryKeyStore
) -> SQLiteApplicationRecorder:
    """The log, personal data sealed as the application does."""
    datastore = SQLiteDatastore(str(path))
    recorder = SQLiteApplicationRecorder(datastore)
    recorder.create_table()
    rng = random.Random(seed)
    desk = Desk(recorder, START, seed=seed, buffer=500, keys=keys)
    for name in QUEUES:
        desk.create_queue(name)
    agents: dict[str, list[UUID]] = {q: [] for q in QUEUES}
    for a in range(30):
        queue = QUEUES[a % len(QUEUES)]
        agents[queue].append(desk.register_agent(f"Agent {a:02d}", [queue], 100_000))
    span = timedelta(days=365).total_seconds() / 60 / tickets  # minutes between openings
    heap: list[tuple[datetime, int, Iterator[float]]] = []
    show = bar("generate")
    gen_t0 = time.perf_counter()
    opened = 0
    while opened < tickets or heap:
        next_open = START + timedelta(minutes=opened * span)
        if opened < tickets and (not heap or next_open <= heap[0][0]):
            desk.clock = max(desk.clock, next_open)
            steps = lifecycle(desk, rng, agents, opened, tickets)
            opened += 1
            if opened % 1000 == 0 or opened == tickets:
                show(opened, tickets, opened / max(1e-9, time.perf_counter() - gen_t0))
        else:
            when, _, steps = heapq.heappop(heap)
            desk.clock = max(desk.clock, when)
        try:
            wait = next(steps)
        except StopIteration:
            continue
        heapq.heappush(heap, (desk.clock + timedelta(minutes=wait), id(steps), steps))
    desk.flush()
    desk.tickets.clear()
    return recorder


# --- measurements -----------------------------------------------------------------------------


def raw_read(recorder: SQLiteApplicationRecorder, batch: int) -> tuple[int, float]:
    t0 = time.perf_counter()
    position, count = 0, 0
    while notifications := recorder.select_notifications(
        start=position, limit=batch, inclusive_of_start=False
    ):
        position = notifications[-1].id
        count += len(notifications)
    return count, time.perf_counter() - t0


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000, 3),
        "max_ms": round(ordered[-1] * 1000, 3),
        "n": len(ordered),
    }


def timed(fn: Callable[[], Any], runs: int) -> dict[str, float]:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return percentiles(samples)


def queries(views: Views, runs: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    ticket_ids: list[str] = views._read(  # noqa: SLF001 (bench only)
        "queue", lambda conn: [r[0] for r in conn.execute("SELECT ticket_id FROM tickets")]
    )
    agents = [a.agent_id for a in views.agent_report(START, START + timedelta(days=1)).agents]
    filters: list[dict[str, Any]] = [
        {}, {"priority": "P1"}, {"priority": "P3"}, {"unassigned": True},
        {"escalated": True}, {"status": "in_progress"}, {"status": "pending"},
    ]  # fmt: skip

    def queue_page() -> None:
        queue = rng.choice(QUEUES)
        chosen = dict(rng.choice(filters))
        if rng.random() < 0.2:
            chosen["assignee"] = rng.choice(agents)
        rows, cursor = views.queue_tickets(queue, limit=50, **chosen)
        for _ in range(rng.randrange(3)):  # next pages too
            if cursor is None:
                break
            rows, cursor = views.queue_tickets(queue, limit=50, cursor=cursor, **chosen)

    def first_page() -> None:
        views.queue_tickets(rng.choice(QUEUES), limit=50)

    def history() -> None:
        views.history(rng.choice(ticket_ids))

    def search() -> None:
        views.search_tickets(requester=f"user{rng.randrange(20)}", limit=50)

    def workload() -> None:
        views.agent_workload(rng.choice(agents))

    end = START + timedelta(days=400)
    return {
        "queue_first_page": timed(first_page, runs),
        "queue_page_filtered_and_next": timed(queue_page, runs),
        "queues": timed(views.queues, max(10, runs // 10)),
        "history": timed(history, runs),
        "search_by_requester": timed(search, runs),
        "agent_workload": timed(workload, max(10, runs // 5)),
        "search_text": timed(lambda: views.search_tickets(text="vpn", limit=50), 20),
        "service_report_year": timed(lambda: views.service_report(START, end), 5),
        "agent_report_year": timed(lambda: views.agent_report(START, end), 5),
    }


def run_size(tickets: int, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    print(f"\n== {tickets:,} tickets", file=sys.stderr)
    base = workdir / f"t{tickets}"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    t0 = time.perf_counter()
    keys = MemoryKeyStore()
    recorder = generate(base / "log.sqlite", tickets, args.seed, keys)
    generate_s = time.perf_counter() - t0
    events = recorder.max_notification_id() or 0
    log_mb = os.path.getsize(base / "log.sqlite") / 1e6

    # Warm the OS cache the same way for both: one raw pass first. Then raw reads and
    # rebuilds alternate (a raw read last too); the best run of each side counts.
    raw_read(recorder, args.batch)
    views = Views(recorder, base / "data", bulk_batch_size=args.batch, keys=keys)
    views.catch_up(bar("first"))
    raw_runs: list[dict[str, float]] = []
    rebuild_runs: list[dict[str, float]] = []

    def measure_raw() -> None:
        c0 = time.process_time()
        count, seconds = raw_read(recorder, args.batch)
        cpu = time.process_time() - c0
        raw_runs.append({"events_per_s": count / seconds, "s": seconds, "cpu_s": cpu})

    for _ in range(args.rounds):
        measure_raw()
        c0, t0 = time.process_time(), time.perf_counter()
        views.rebuild(progress=bar("rebuild"))
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        rebuild_runs.append({"events_per_s": events / seconds, "s": seconds, "cpu_s": cpu})
    measure_raw()
    raw_eps = max(r["events_per_s"] for r in raw_runs)
    best = max(rebuild_runs, key=lambda r: r["events_per_s"])
    rebuild_s, rebuild_eps = best["s"], best["events_per_s"]
    sizes = {
        p.name: round(p.stat().st_size / 1e6, 1) for p in (base / "data" / "views").glob("*.sqlite")
    }
    cpu_ratio = min(r["cpu_s"] for r in raw_runs) / min(r["cpu_s"] for r in rebuild_runs)
    print(
        f"  raw {raw_eps:,.0f}/s  rebuild {rebuild_eps:,.0f}/s ({rebuild_s:.1f} s)  "
        f"ratio {rebuild_eps / raw_eps:.2f}  (CPU time ratio {cpu_ratio:.2f})",
        file=sys.stderr,
    )
    per_view: dict[str, dict[str, float]] = {}
    if args.per_view:
        for name in ("queue", "audit", "reports"):
            t0 = time.perf_counter()
            views.rebuild(name, progress=bar(name))
            eps = events / (time.perf_counter() - t0)
            per_view[name] = {"events_per_s": round(eps), "ratio": round(eps / raw_eps, 3)}
    result = {
        "tickets": tickets,
        "events": events,
        "log_mb": round(log_mb, 1),
        "view_files_mb": sizes,
        "generate_s": round(generate_s, 1),
        "raw_read_events_per_s": round(raw_eps),
        "rebuild_events_per_s": round(rebuild_eps),
        "rebuild_s": round(rebuild_s, 2),
        "rebuild_ratio": round(rebuild_eps / raw_eps, 3),
        # CPU seconds (all threads) of the best runs: less sensitive to other load.
        "rebuild_cpu_ratio": round(cpu_ratio, 3),
        "raw_runs": [{k: round(v, 3) for k, v in r.items()} for r in raw_runs],
        "rebuild_runs": [{k: round(v, 3) for k, v in r.items()} for r in rebuild_runs],
        "rebuild_one_view": per_view,
        "queries": queries(views, args.queries, args.seed),
    }
    q = result["queries"]
    print(
        f"  queue page p50 {q['queue_first_page']['p50_ms']} ms p99 "
        f"{q['queue_first_page']['p99_ms']} ms; filtered+next p99 "
        f"{q['queue_page_filtered_and_next']['p99_ms']} ms; "
        f"history p99 {q['history']['p99_ms']} ms",
        file=sys.stderr,
    )
    views.close()
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="tickets per run, comma separated")
    parser.add_argument("--queries", type=int, default=500, help="samples per query kind")
    parser.add_argument("--batch", type=int, default=2000, help="notifications per read batch")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--rounds", type=int, default=2, help="raw reads and rebuilds, alternating (best counts)"
    )
    parser.add_argument(
        "--no-per-view",
        dest="per_view",
        action="store_false",
        help="skip rebuilding each view alone",
    )
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temp directory")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results/views.json")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-views-"))
    runs = [run_size(int(s), args, workdir) for s in args.sizes.split(",")]
    report = {
        "benchmark": "views",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "batch": args.batch,
        "json_parser": "orjson" if records._orjson_loads is not None else "json (stdlib)",
        "aims": {"rebuild_ratio_min": 0.3, "queue_page_p99_ms_max_at_100k": 20},
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
