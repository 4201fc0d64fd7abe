"""What an operator scrapes at ``GET /metrics`` (Prometheus' text format, with
``prometheus_client``): request latency per route, commands by outcome, append sizes
and commit latency, and, read at scrape time, how far each follower of the log (views,
SLA clock, Kafka tailer) is behind its head, in events and in seconds.

One registry per runtime (tests build many runtimes in one process); nothing here reads
the store on the request path.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


@dataclass(frozen=True)
class Lag:
    """A follower's position against the log's head; ``behind_since``: when the first
    event it has not yet taken was recorded (None when it is current)."""

    position: int
    head: int
    behind_since: datetime | None

    @property
    def events(self) -> int:
        return max(0, self.head - self.position)

    def seconds(self, now: datetime) -> float:
        if self.events == 0 or self.behind_since is None:
            return 0.0
        return max(0.0, (now - self.behind_since).total_seconds())


class Metrics:
    """The runtime's instruments; ``watch`` adds figures computed at scrape time."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Histogram(
            "ticketing_http_request_duration_seconds",
            "HTTP request latency, by method, route template and status code",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.commands = Counter(
            "ticketing_commands",
            "Commands sent, by command and outcome (recorded, replayed, or the refusal)",
            ["command", "outcome"],
            registry=self.registry,
        )
        self.append_events = Histogram(
            "ticketing_append_events",
            "Events written per atomic append (one commit)",
            buckets=SIZE_BUCKETS,
            registry=self.registry,
        )
        self.append_seconds = Histogram(
            "ticketing_append_seconds",
            "Time to commit one atomic append to the store",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.commit_appends = Histogram(
            "ticketing_commit_appends",
            "Appends committed together in one store transaction (group commit)",
            buckets=SIZE_BUCKETS,
            registry=self.registry,
        )

    def watch(self, figures: Callable[[], Iterable[Metric]]) -> None:
        """Register figures read when Prometheus scrapes (a broken source is skipped,
        so one failing figure never hides the others)."""
        self.registry.register(_Figures(figures))

    def observe_append(self, events: int, started: float) -> None:
        self.append_events.observe(events)
        self.append_seconds.observe(time.perf_counter() - started)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Figures(Collector):
    def __init__(self, figures: Callable[[], Iterable[Metric]]) -> None:
        self.figures = figures

    def collect(self) -> Iterator[Metric]:
        try:
            yield from list(self.figures())
        except Exception:  # noqa: BLE001 - a scrape must not fail on one source
            return

    def describe(self) -> Iterator[Metric]:
        return iter(())  # figures are read at scrape time only


def lag_figures(name: str, help_text: str, lags: dict[str, Lag], label: str) -> list[Metric]:
    """Two gauges (events, seconds) for each follower in ``lags``, labelled ``label``."""
    now = datetime.now(UTC)
    events = GaugeMetricFamily(f"{name}_events", f"{help_text}, in events", labels=[label])
    seconds = GaugeMetricFamily(f"{name}_seconds", f"{help_text}, in seconds", labels=[label])
    for key, lag in lags.items():
        events.add_metric([key], lag.events)
        seconds.add_metric([key], lag.seconds(now))
    return [events, seconds]


def gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help_text, value=value)


def recorded_at(state: bytes) -> datetime | None:
    """The time an envelope says its event occurred (the clock of the command that
    recorded it), or None if the record is not an envelope."""
    try:
        envelope: Any = json.loads(state)
        return datetime.fromisoformat(str(envelope["occurred_at"]).replace("Z", "+00:00"))
    except (ValueError, KeyError, TypeError):
        return None
