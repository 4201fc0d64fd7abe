"""Group commit on the embedded store: appends per second with 1, 4 and 16 callers.

Ours: ``engine.stores.sqlite.SQLiteConditionalRecorder`` (appends that arrive together
share one transaction, each in its own savepoint). Baseline, in the same run, on the same
kind of file (WAL, the library's defaults): eventsourcing's own
``SQLiteApplicationRecorder``, one transaction per append. Each append is one event of a
new stream (the cost is the commit, not the statement). Each side runs several rounds,
alternating; the best round counts; every round and the batch sizes seen are in the
JSON. Aim (issue #14): 16 callers at least 2x the baseline; 1 caller at least 0.9x (no
cost when alone).

    .venv/bin/python -m bench.bench_commit [--appends 4000] [--rounds 3] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from uuid import uuid4

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

from bench import Progress, machine, note, write_result
from engine.stores.sqlite import SQLiteConditionalRecorder

CALLERS = (1, 4, 16)
AIM_16 = 2.0
AIM_1 = 0.9
STATE = b'{"type":"TicketOpened","data":{"title":"Printer on fire"}}'


def run(kind: str, callers: int, appends: int, workdir: Path) -> dict[str, Any]:
    path = workdir / f"{kind}-{callers}-{uuid4().hex[:6]}.sqlite"
    datastore = SQLiteDatastore(str(path), lock_timeout=30)
    recorder: SQLiteApplicationRecorder = (
        SQLiteConditionalRecorder(datastore)
        if kind == "ours"
        else SQLiteApplicationRecorder(datastore)
    )
    recorder.create_table()
    sizes: list[int] = []
    if isinstance(recorder, SQLiteConditionalRecorder):
        recorder.batches.observe = sizes.append
    per_caller = appends // callers
    progress = Progress(f"{kind}, {callers} callers", per_caller * callers)
    done = [0]
    lock = threading.Lock()
    start = threading.Barrier(callers + 1)

    def caller() -> None:
        start.wait()
        for _ in range(per_caller):
            recorder.insert_events([StoredEvent(uuid4(), 1, "TicketOpened", STATE)])
            with lock:
                done[0] += 1
                progress(done[0])

    threads = [threading.Thread(target=caller) for _ in range(callers)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    progress(per_caller * callers)
    datastore.close()
    result: dict[str, Any] = {"appends_per_s": round(per_caller * callers / seconds, 1)}
    if sizes:
        result["batches"] = len(sizes)
        result["mean_batch"] = round(statistics.mean(sizes), 2)
        result["max_batch"] = max(sizes)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    appends, rounds = (800, 2) if args.quick else (args.appends, args.rounds)
    rows: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for callers in CALLERS:
            runs: dict[str, list[dict[str, Any]]] = {"ours": [], "baseline": []}
            for _ in range(rounds):
                for kind in ("baseline", "ours"):
                    runs[kind].append(run(kind, callers, appends, Path(tmp)))
            best = {k: max(v, key=lambda r: r["appends_per_s"]) for k, v in runs.items()}
            ratio = best["ours"]["appends_per_s"] / best["baseline"]["appends_per_s"]
            aim = AIM_16 if callers == 16 else AIM_1 if callers == 1 else None
            rows[str(callers)] = {
                "ours": best["ours"],
                "baseline": best["baseline"],
                "ratio": round(ratio, 2),
                "aim": aim,
                "met": None if aim is None else ratio >= aim,
                "runs": runs,
            }
            note(
                f"{callers:>2} callers: ours {best['ours']['appends_per_s']:,.0f}/s "
                f"(mean batch {best['ours'].get('mean_batch', 1)}), baseline "
                f"{best['baseline']['appends_per_s']:,.0f}/s, ratio {ratio:.2f}"
            )
    write_result("commit", {"machine": machine(), "appends": appends, "callers": rows})


if __name__ == "__main__":
    main()
