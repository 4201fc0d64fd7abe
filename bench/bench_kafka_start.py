"""Benchmark of a Kafka-mode start: how long the event store takes to serve when its
cache is current (a restart), against a cold start that rebuilds the cache from the
topic, at the same topic size, in the same run (issue #13, "Past one writer").

- fill: the topic gets ``--events`` event records (default 1,000,000; ``--quick``
  100,000), produced in transactions of 5,000 as the writer would write them.
- cold: a recorder with an empty data directory starts: it reads the whole topic
  into its cache before serving.
- warm: the same recorder's data directory, started again: the cache is current, so
  it checks the topic still holds what it cached, reads nothing more, and serves.
- warm, behind: as warm, after 10,000 more events were produced while it was down.

The headline ratio is warm / cold start time; the aim is a warm start within 5 s
whatever the topic's size (and so a ratio far below 1).

    .venv/bin/python bench/bench_kafka_start.py            # 1,000,000 events
    .venv/bin/python bench/bench_kafka_start.py --quick    # 100,000

The broker is KAFKA_BOOTSTRAP_SERVERS, else a Tansu broker started for the run.
Results go to bench/results/kafka_start.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eventsourcing.persistence import InfrastructureFactory  # noqa: E402
from eventsourcing.utils import Environment  # noqa: E402
from kafka import KafkaProducer  # noqa: E402

from bench import Progress, machine, note, write_result  # noqa: E402
from bench.bench_kafka import ticket_opened  # noqa: E402
from engine.stores.kafka.codec import EventRow, event_record  # noqa: E402
from tests.support.kafka_broker import TansuBroker, start_tansu  # noqa: E402

AIM_WARM_S = 5.0
PER_TRANSACTION = 5000
BEHIND = 10_000


def env_for(bootstrap: str, topic: str, directory: Path) -> dict[str, str]:
    return {
        "PERSISTENCE_MODULE": "engine.stores.kafka.recorder",
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_TOPIC": topic,
        "KAFKA_DATA_DIR": str(directory),
        "KAFKA_STARTUP_TIMEOUT_MS": "3600000",
    }


def start(bootstrap: str, topic: str, directory: Path) -> tuple[float, int]:
    """Seconds until a recorder on ``directory`` serves, and the events it holds."""
    started = time.perf_counter()
    factory = InfrastructureFactory.construct(Environment(env=env_for(bootstrap, topic, directory)))
    try:
        recorder = factory.application_recorder()
        seconds = time.perf_counter() - started
        return seconds, recorder.max_notification_id() or 0
    finally:
        factory.close()


def fill(bootstrap: str, topic: str, events: int, label: str) -> float:
    """Produce ``events`` event records in transactions; returns events per second."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        transactional_id=f"{topic}.bench-fill",
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        batch_size=512 * 1024,
    )
    producer.init_transactions()
    template = ticket_opened(0)
    show = Progress(label, events)
    started = time.perf_counter()
    for first in range(0, events, PER_TRANSACTION):
        producer.begin_transaction()
        for _ in range(first, min(events, first + PER_TRANSACTION)):
            row = EventRow(str(uuid.uuid4()), 1, template.topic, template.state)
            key, value, headers = event_record(row)
            producer.send(topic, key=key, value=value, headers=headers, partition=0)
        producer.commit_transaction()
        show(min(events, first + PER_TRANSACTION))
    seconds = time.perf_counter() - started
    producer.close()
    return events / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100,000 events")
    parser.add_argument("--events", type=int, default=None, help="events in the topic")
    parser.add_argument("--out", type=Path, default=None, help="result file (JSON)")
    args = parser.parse_args()
    events = args.events or (100_000 if args.quick else 1_000_000)

    broker: TansuBroker | None = None
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "")
    if not bootstrap:
        broker = start_tansu()
        bootstrap = broker.bootstrap
        note(f"started Tansu at {bootstrap} (pid {broker.pid})")
    topic = f"bench-start-{uuid.uuid4().hex[:8]}"
    try:
        with tempfile.TemporaryDirectory(prefix="bench-kafka-start-") as tmp:
            # The engine creates its topics (an empty start), then the topic is filled.
            empty, _ = start(bootstrap, topic, Path(tmp) / "creator")
            produce_rate = fill(bootstrap, topic, events, f"fill {events:,}")
            cold, cold_held = start(bootstrap, topic, Path(tmp) / "server")
            warm, warm_held = start(bootstrap, topic, Path(tmp) / "server")
            fill(bootstrap, topic, BEHIND, f"fill {BEHIND:,} more")
            behind, behind_held = start(bootstrap, topic, Path(tmp) / "server")
            again, _ = start(bootstrap, topic, Path(tmp) / "server")
    finally:
        if broker is not None:
            broker.stop()
    assert cold_held == warm_held == events, (cold_held, warm_held, events)
    assert behind_held == events + BEHIND, behind_held

    ratio = warm / cold
    result = {
        "what": "seconds until a Kafka-mode event store serves: current cache (restart) vs "
        f"empty cache (rebuild from the topic), topic of {events:,} events (~420 bytes)",
        "broker": "external (KAFKA_BOOTSTRAP_SERVERS)" if broker is None else "Tansu 0.6.0",
        "machine": machine(),
        "events": events,
        "produce_events_per_s": round(produce_rate),
        "start_empty_topic_s": round(empty, 3),
        "cold_start_s": round(cold, 3),
        "cold_events_per_s": round(events / cold),
        "warm_start_s": round(warm, 3),
        f"warm_start_{BEHIND}_behind_s": round(behind, 3),
        "warm_start_again_s": round(again, 3),
        "ratio": round(ratio, 4),
        "aim": f"warm start <= {AIM_WARM_S} s",
        "met": warm <= AIM_WARM_S and behind <= AIM_WARM_S,
    }
    note(
        f"{events:,} events: cold start {cold:.1f} s ({events / cold:,.0f} events/s), "
        f"warm start {warm:.2f} s (again {again:.2f} s; {BEHIND:,} behind {behind:.2f} s): "
        f"ratio {ratio:.4f}"
    )
    if args.out is None:
        write_result("kafka_start", result)
    else:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
