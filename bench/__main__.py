"""Run every benchmark and print one table of figures, baselines and ratios.

    .venv/bin/python -m bench              # full sizes (about 30 minutes on 2 cores)
    .venv/bin/python -m bench --quick      # small sizes (about 5 minutes)
    .venv/bin/python -m bench --only app,http
    .venv/bin/python -m bench --report     # only the table, from bench/results/*.json

Each benchmark runs in its own process (a fresh interpreter, its own progress display)
and writes bench/results/<name>.json; the table is built from those files, so the
projections' (bench_views.py) and the Kafka store's (bench_kafka.py) figures sit beside
ours. The table is also written to bench/results/summary.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import RESULTS, ROOT, machine, note

HERE = Path(__file__).resolve().parent
Row = tuple[str, str, str, str, str, str]  # what, ours, baseline, ratio, aim, met


def plan(quick: bool) -> list[tuple[str, list[str]]]:
    """(name, command) for every benchmark present, in the order they run."""
    q = ["--quick"] if quick else []
    steps: list[tuple[str, list[str]]] = [
        ("app", [sys.executable, "-m", "bench.bench_app", *q]),
        ("http", [sys.executable, "-m", "bench.bench_http", *q]),
        ("memory", [sys.executable, "-m", "bench.bench_memory", *q]),
        ("commit", [sys.executable, "-m", "bench.bench_commit", *q]),
    ]
    if (HERE / "bench_views.py").exists():
        sizes = ["--sizes", "1000,5000", "--queries", "100"] if quick else []
        steps.append(("views", [sys.executable, str(HERE / "bench_views.py"), *sizes]))
    if (HERE / "bench_kafka.py").exists():
        steps.append(("kafka", [sys.executable, str(HERE / "bench_kafka.py"), *own_quick(quick)]))
    return steps


def own_quick(quick: bool) -> list[str]:
    """bench_kafka.py's own quick flag, if it has one."""
    if not quick:
        return []
    helped = subprocess.run(
        [sys.executable, str(HERE / "bench_kafka.py"), "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return ["--quick"] if "--quick" in helped.stdout else []


def run(quick: bool, only: set[str] | None) -> dict[str, Any]:
    outcomes: dict[str, Any] = {}
    for name, command in plan(quick):
        if only and name not in only:
            continue
        note(f"== {name}: {' '.join(Path(c).name if '/' in c else c for c in command)}")
        t0 = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, timeout=3600)
        outcomes[name] = {"exit": done.returncode, "seconds": round(time.perf_counter() - t0, 1)}
        if done.returncode != 0:
            note(f"!! {name} failed with exit code {done.returncode}")
    return outcomes


# --- the table ---------------------------------------------------------------------------------


def load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def yes(ok: bool | None) -> str:
    return "n/a" if ok is None else ("yes" if ok else "**no**")


def rows_app(r: dict[str, Any]) -> list[Row]:
    out: list[Row] = []
    for part in (r.get("sqlite", r), r.get("kafka")):
        if not part:
            continue
        store = part.get("store", "sqlite")
        raw = part["raw"]["commands_per_s"]
        for key, ratio, label in (
            ("ours", "ratio", "app layer"),
            ("ours_idempotent", "ratio_idempotent", "app layer + Idempotency-Key"),
        ):
            out.append(
                (
                    f"{label} on {store}, commands/s (6 per ticket, 10 events)",
                    f"{part[key]['commands_per_s']:,.0f}",
                    f"raw eventsourcing on {store} {raw:,.0f}",
                    f"{part[ratio]:.2f}",
                    f">= {r['aim']}",
                    yes(part[ratio] >= r["aim"]),
                )
            )
    return out


def rows_http(r: dict[str, Any]) -> list[Row]:
    floor = r["floor"]["per_s"]
    aim = r["aim"]
    out: list[Row] = []
    for key, label in (
        ("ours", "views+clock in process"),
        ("ours_views_off", "views off"),
        ("ours_bare", "views+clock off"),
        ("ours_kafka", "Kafka, views+clock in process"),
    ):
        if not r.get(key):
            continue
        for scenario in ("open", "open+key", "comment"):
            m = r[key][scenario]
            out.append(
                (
                    f"HTTP {scenario}, 16 conns ({label}): /s, p50/p99 ms",
                    f"{m['per_s']:,.0f}/s, {m['p50_ms']:.1f}/{m['p99_ms']:.1f}",
                    f"FastAPI floor {floor:,.0f}/s, {r['floor']['p99_ms']:.1f} p99",
                    f"{m['per_s'] / floor:.2f}",
                    f">= {aim['per_s']:,.0f}/s, p99 < {aim['p99_ms']:.0f}",
                    yes(m["per_s"] >= aim["per_s"] and m["p99_ms"] < aim["p99_ms"]),
                )
            )
    return out


def rows_memory(r: dict[str, Any]) -> list[Row]:
    empty = r["empty"]
    out: list[Row] = []
    for size in r["sizes"]:
        mem = size["memory"]["peak_rss_mb"]
        out.append(
            (
                f"peak RSS, {size['events']:,} events ({size['tickets']:,} tickets)",
                f"{mem:,.0f} MB",
                f"empty server {empty['memory']['peak_rss_mb']:,.0f} MB",
                f"{mem / empty['memory']['peak_rss_mb']:.2f}",
                f"< {r['aim']['peak_rss_mb']:.0f} MB at 1M events",
                yes(mem < r["aim"]["peak_rss_mb"]) if size["events"] >= 1e6 else "n/a",
            )
        )
    smallest = r["sizes"][0]
    for kind, label in (
        ("ticket_state", "GET /tickets/{id}"),
        ("ticket_version", "GET /tickets/{id}?version="),
        ("ticket_as_of", "GET /tickets/{id}?as_of="),
    ):
        for size in r["sizes"]:
            q = size["queries"][kind]
            floor = size["queries"]["health_floor"]["p99_ms"]
            growth = q["p99_ms"] / smallest["queries"][kind]["p99_ms"]
            out.append(
                (
                    f"{label} p50/p99 ms, {size['tickets']:,} tickets",
                    f"{q['p50_ms']:.1f}/{q['p99_ms']:.1f}",
                    f"GET /health p99 {floor:.1f}; p99 x{growth:.2f} vs "
                    f"{smallest['tickets']:,} tickets",
                    f"{q['p99_ms'] / floor:.1f}",
                    f"p99 < {r['aim']['query_p99_ms']:.0f}, flat",
                    yes(q["p99_ms"] < r["aim"]["query_p99_ms"]),
                )
            )
    return out


def rows_views(r: dict[str, Any]) -> list[Row]:
    out: list[Row] = []
    aims = r.get("aims", {})
    runs = r.get("runs", [])
    for run_ in runs:
        out.append(
            (
                f"views rebuild, {run_['events']:,} events: events/s ({run_['rebuild_s']} s)",
                f"{run_['rebuild_events_per_s']:,.0f}",
                f"raw log read {run_['raw_read_events_per_s']:,.0f}",
                f"{run_['rebuild_ratio']:.2f}",
                f">= {aims.get('rebuild_ratio_min', 0.3)}, < 60 s at 1M",
                yes(run_["rebuild_ratio"] >= aims.get("rebuild_ratio_min", 0.3)),
            )
        )
    first = runs[0]["queries"] if runs else {}
    for run_ in runs:
        for kind in (
            "queue_first_page",
            "queue_page_filtered_and_next",
            "history",
            "search_by_requester",
        ):
            q = run_["queries"].get(kind)
            if not q:
                continue
            growth = q["p99_ms"] / first[kind]["p99_ms"] if first.get(kind) else 1.0
            out.append(
                (
                    f"view query {kind} p50/p99 ms, {run_['tickets']:,} tickets",
                    f"{q['p50_ms']:.1f}/{q['p99_ms']:.1f}",
                    f"p99 x{growth:.2f} vs {runs[0]['tickets']:,} tickets",
                    f"{growth:.2f}",
                    "p99 < 20, flat",
                    yes(q["p99_ms"] < 20),
                )
            )
    return out


def rows_kafka(r: dict[str, Any]) -> list[Row]:
    raw = r["raw_one_per_transaction"]["appends_per_s"]
    ceiling = r["raw_100_per_transaction"]["appends_per_s"]
    conc, seq = r["ours_concurrent"], r["ours_sequential"]
    aim = r.get("aim", ">= 0.5")
    return [
        (
            f"Kafka recorder appends/s, {conc['callers']} callers ({r.get('broker', '')})",
            f"{conc['appends_per_s']:,.0f}",
            f"raw kafka-python, 1 per transaction {raw:,.0f}",
            f"{r['ratio']:.2f}",
            str(aim),
            yes(r.get("met")),
        ),
        (
            "Kafka recorder appends/s, 1 caller (p50/p99 ms)",
            f"{seq['appends_per_s']:,.0f} ({seq['latency']['p50_ms']:.1f}/"
            f"{seq['latency']['p99_ms']:.1f})",
            f"raw kafka-python, 1 per transaction {raw:,.0f}",
            f"{r['ratio_sequential']:.2f}",
            "",
            "n/a",
        ),
        (
            "Kafka recorder appends/s vs batched ceiling",
            f"{conc['appends_per_s']:,.0f}",
            f"raw kafka-python, 100 per transaction {ceiling:,.0f}",
            f"{r['ratio_to_batched_ceiling']:.2f}",
            "",
            "n/a",
        ),
    ]


def rows_commit(r: dict[str, Any]) -> list[Row]:
    out: list[Row] = []
    for callers, row in r["callers"].items():
        ours, base = row["ours"], row["baseline"]
        out.append(
            (
                f"SQLite group commit, {callers} callers: appends/s (mean batch)",
                f"{ours['appends_per_s']:,.0f} ({ours.get('mean_batch', 1)})",
                f"one transaction per append {base['appends_per_s']:,.0f}",
                f"{row['ratio']:.2f}",
                "n/a" if row["aim"] is None else f">= {row['aim']}",
                yes(row["met"]),
            )
        )
    return out


def rows_generic(name: str, r: dict[str, Any]) -> list[Row]:
    """Any other benchmark: every top-level ratio with its aim, as it reports them."""
    out: list[Row] = []
    for key, value in r.items():
        if "ratio" in key and isinstance(value, int | float):
            aim = r.get("aim", r.get("aims", ""))
            met = r.get("met")
            out.append(
                (
                    f"{name}: {key}",
                    "see JSON",
                    "see JSON",
                    f"{value:.2f}",
                    json.dumps(aim) if not isinstance(aim, str) else aim,
                    yes(met if isinstance(met, bool) else None),
                )
            )
    if not out:
        out.append((name, "see JSON", "", "", "", "n/a"))
    return out


RENDER: dict[str, Callable[[dict[str, Any]], list[Row]]] = {
    "app": rows_app,
    "http": rows_http,
    "memory": rows_memory,
    "commit": rows_commit,
    "views": rows_views,
    "kafka": rows_kafka,
}


def table() -> str:
    lines = [
        "| what | ours | baseline (same run) | ratio | aim | met |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name in ("app", "http", "memory", "views", "kafka"):
        result = load(name)
        if result is None:
            lines.append(f"| {name} | not run | | | | |")
            continue
        try:
            rows = RENDER.get(name, lambda r, n=name: rows_generic(n, r))(result)
        except (KeyError, TypeError, ZeroDivisionError) as e:
            rows = [(name, f"unreadable result ({e!r})", "", "", "", "n/a")]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a few minutes")
    parser.add_argument("--only", default="", help="comma separated: app,http,memory,views,kafka")
    parser.add_argument("--report", action="store_true", help="print the table only")
    args = parser.parse_args()
    outcomes: dict[str, Any] = {}
    t0 = time.perf_counter()
    if not args.report:
        outcomes = run(args.quick, set(filter(None, args.only.split(","))) or None)
    text = table()
    RESULTS.mkdir(parents=True, exist_ok=True)
    header = (
        f"Rendered from bench/results/*.json on {json.dumps(machine())}.\n"
        "Each result file records the machine, date and load average of its own run.\n\n"
    )
    (RESULTS / "summary.md").write_text(header + text + "\n")
    print()
    print(text)
    if outcomes:
        ran = ", ".join(f"{name} {o['seconds']} s" for name, o in outcomes.items())
        print(f"\nran {ran}; {time.perf_counter() - t0:.0f} s in all")
        if any(v["exit"] != 0 for v in outcomes.values()):
            sys.exit(1)


if __name__ == "__main__":
    main()
