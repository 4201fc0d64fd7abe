"""Benchmarks of ticketing, each against a baseline measured in the same run.

    .venv/bin/python -m bench            # everything, full sizes (about 30 minutes)
    .venv/bin/python -m bench --quick    # everything, small sizes (a few minutes)

Each benchmark writes ``bench/results/<name>.json``; ``python -m bench`` runs them all
and prints one table. Latest figures and the machine they ran on: ``bench/RESULTS.md``.
Shared here: the machine description, a progress bar, percentiles, result files.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gb = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    try:
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        load = "unknown"
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        # Other work on the machine skews absolute figures; ratios much less.
        "load_average_1_5_15_min": load,
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gb": ram_gb,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


class Progress:
    """A one-line progress bar on stderr: label, bar, count, rate, elapsed."""

    def __init__(self, label: str, total: int, width: int = 28) -> None:
        self.label, self.total, self.width = label, max(1, total), width
        self.started = time.perf_counter()
        self.last = 0.0

    def __call__(self, done: int) -> None:
        now = time.perf_counter()
        if done < self.total and now - self.last < 0.2:
            return
        self.last = now
        elapsed = now - self.started
        share = min(1.0, done / self.total)
        filled = int(share * self.width)
        rate = done / elapsed if elapsed > 0 else 0.0
        sys.stderr.write(
            f"\r  {self.label:<28} [{'#' * filled}{'.' * (self.width - filled)}] "
            f"{done:>9,}/{self.total:,} {rate:>9,.0f}/s {elapsed:6.1f}s "
        )
        if done >= self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def note(text: str) -> None:
    sys.stderr.write(f"  {text}\n")
    sys.stderr.flush()


def percentiles(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p99 and max in milliseconds (nearest-rank p99)."""
    ordered = sorted(seconds)
    if not ordered:
        return {"p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0, "n": 0}
    rank = max(0, min(len(ordered) - 1, int(round(0.99 * len(ordered))) - 1))
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(ordered[rank] * 1000, 3),
        "max_ms": round(ordered[-1] * 1000, 3),
        "n": len(ordered),
    }


def write_result(name: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    note(f"wrote {path.relative_to(ROOT)}")
    return path
