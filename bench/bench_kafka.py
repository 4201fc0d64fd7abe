"""Benchmark of the Kafka event store: appends per second through the recorder against
raw kafka-python transactional produce, with the same records, broker and run.

- raw: one Kafka transaction per append (begin, send the event record, commit), which
  is what a writer that commits each command on its own achieves; also raw batched
  (100 appends per transaction), a ceiling no per-command writer reaches.
- ours: ``KafkaApplicationRecorder.insert_events`` of one event (a new ticket) per
  append, from ``--callers`` concurrent callers (the elected writer batches appends
  that arrive together into one transaction), and from one caller (latency, including
  the wait until the recorder's own cache has read the events back).

The headline ratio is ours (concurrent callers) / raw (one transaction per append);
the aim is >= 0.5.

    .venv/bin/python bench/bench_kafka.py            # 10,000 appends per measurement
    .venv/bin/python bench/bench_kafka.py --quick    # 2,000

The broker is KAFKA_BOOTSTRAP_SERVERS, else a Tansu broker started for the run.
Results go to bench/results/kafka.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eventsourcing.persistence import InfrastructureFactory, StoredEvent  # noqa: E402
from eventsourcing.utils import Environment  # noqa: E402
from kafka import KafkaAdminClient, KafkaProducer  # noqa: E402

from bench import Progress, machine, note, percentiles, write_result  # noqa: E402
from engine.stores.kafka.codec import EventRow, event_record  # noqa: E402
from engine.stores.kafka.topic import EVENT_TOPIC_CONFIGS  # noqa: E402
from tests.support.kafka_broker import TansuBroker, start_tansu  # noqa: E402

AIM = 0.5


def ticket_opened(n: int) -> StoredEvent:
    """A TicketOpened envelope of the engine's shape (about 420 bytes)."""
    ticket = uuid.uuid4()
    envelope = {
        "event_id": str(uuid.uuid4()),
        "type": "TicketOpened",
        "schema_version": 1,
        "aggregate_type": "Ticket",
        "aggregate_id": str(ticket),
        "aggregate_version": 1,
        "occurred_at": "2026-11-24T09:00:00Z",
        "actor": "agent-7",
        "correlation_id": str(uuid.uuid4()),
        "causation_id": None,
        "data": {
            "title": f"Printer on floor 3 jams #{n}",
            "description": "Paper jams on every second page since this morning.",
            "requester": "user-42",
            "channel": "email",
            "category": "hardware",
            "impact": "medium",
            "urgency": "high",
        },
    }
    state = json.dumps(envelope, separators=(",", ":")).encode()
    return StoredEvent(ticket, 1, "TicketOpened", state)


def create_topic(bootstrap: str) -> str:
    topic = f"bench-raw-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    try:
        admin.create_topics(
            {
                topic: {
                    "num_partitions": 1,
                    "replication_factor": -1,
                    "configs": EVENT_TOPIC_CONFIGS,
                }
            },
            wait_for_metadata=True,
        )
    finally:
        admin.close()
    return topic


def raw(bootstrap: str, appends: int, per_transaction: int) -> dict[str, Any]:
    """Raw transactional produce of the same records, ``per_transaction`` per commit."""
    topic = create_topic(bootstrap)
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        transactional_id=f"{topic}.tx",
        acks="all",
        enable_idempotence=True,
        linger_ms=0,
        batch_size=256 * 1024,
    )
    producer.init_transactions()
    records = [
        event_record(EventRow(str(e.originator_id), 1, e.topic, e.state))
        for e in map(ticket_opened, range(appends))
    ]
    label = "raw, 1 append per txn" if per_transaction == 1 else f"raw, {per_transaction} per txn"
    show = Progress(label, appends)
    started = time.perf_counter()
    for first in range(0, appends, per_transaction):
        producer.begin_transaction()
        for key, value, headers in records[first : first + per_transaction]:
            producer.send(topic, key=key, value=value, headers=headers, partition=0)
        producer.commit_transaction()
        show(min(appends, first + per_transaction))
    seconds = time.perf_counter() - started
    producer.close()
    return {"appends": appends, "seconds": round(seconds, 3), "appends_per_s": appends / seconds}


def ours(bootstrap: str, appends: int, callers: int, directory: Path) -> dict[str, Any]:
    """Appends through the recorder from ``callers`` threads."""
    env = {
        "PERSISTENCE_MODULE": "engine.stores.kafka.recorder",
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_TOPIC": f"bench-ours-{uuid.uuid4().hex[:8]}",
        "KAFKA_DATA_DIR": str(directory / f"callers{callers}"),
    }
    factory = InfrastructureFactory.construct(Environment(env=env))
    try:
        recorder = factory.application_recorder()
        for n in range(20):  # warm up
            recorder.insert_events([ticket_opened(n)])
        events = [ticket_opened(n) for n in range(appends)]
        latencies: list[float] = []
        lock = threading.Lock()
        next_index = iter(range(appends))
        done = [0]
        show = Progress(f"ours, {callers} caller{'s' * (callers > 1)}", appends)

        def caller() -> None:
            while True:
                with lock:
                    i = next(next_index, None)
                if i is None:
                    return
                t0 = time.perf_counter()
                recorder.insert_events([events[i]])
                elapsed = time.perf_counter() - t0
                with lock:
                    latencies.append(elapsed)
                    done[0] += 1
                    show(done[0])

        threads = [threading.Thread(target=caller) for _ in range(callers)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - started
        assert recorder.max_notification_id() == appends + 20
        return {
            "appends": appends,
            "callers": callers,
            "seconds": round(seconds, 3),
            "appends_per_s": appends / seconds,
            "latency": percentiles(latencies),
        }
    finally:
        factory.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 appends per measurement")
    parser.add_argument("--appends", type=int, default=None, help="appends per measurement")
    parser.add_argument("--callers", type=int, default=16, help="concurrent callers of ours")
    parser.add_argument("--out", type=Path, default=None, help="result file (JSON)")
    args = parser.parse_args()
    appends = args.appends or (2000 if args.quick else 10000)

    broker: TansuBroker | None = None
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "")
    if not bootstrap:
        broker = start_tansu()
        bootstrap = broker.bootstrap
        note(f"started Tansu at {bootstrap} (pid {broker.pid})")
    try:
        with tempfile.TemporaryDirectory(prefix="bench-kafka-") as tmp:
            raw_single = raw(bootstrap, appends, per_transaction=1)
            raw_batched = raw(bootstrap, appends, per_transaction=100)
            concurrent = ours(bootstrap, appends, args.callers, Path(tmp))
            sequential = ours(bootstrap, max(200, appends // 10), 1, Path(tmp))
    finally:
        if broker is not None:
            broker.stop()

    ratio = concurrent["appends_per_s"] / raw_single["appends_per_s"]
    result = {
        "what": "appends/s through KafkaApplicationRecorder vs raw kafka-python "
        "transactional produce, same records (one ~420-byte event per append)",
        "broker": "external (KAFKA_BOOTSTRAP_SERVERS)" if broker is None else "Tansu 0.6.0",
        "machine": machine(),
        "raw_one_per_transaction": raw_single,
        "raw_100_per_transaction": raw_batched,
        "ours_concurrent": concurrent,
        "ours_sequential": sequential,
        "ratio": round(ratio, 3),
        "ratio_sequential": round(sequential["appends_per_s"] / raw_single["appends_per_s"], 3),
        "ratio_to_batched_ceiling": round(
            concurrent["appends_per_s"] / raw_batched["appends_per_s"], 3
        ),
        "aim": f">= {AIM}",
        "met": ratio >= AIM,
    }
    note(
        f"ours {concurrent['appends_per_s']:,.0f}/s ({args.callers} callers), "
        f"raw {raw_single['appends_per_s']:,.0f}/s (1 per txn): ratio {ratio:.2f} "
        f"(aim >= {AIM}); one caller {sequential['appends_per_s']:,.0f}/s, "
        f"p50 {sequential['latency']['p50_ms']:.1f} ms"
    )
    path = args.out or Path(__file__).resolve().parent / "results" / "kafka.json"
    if args.out is None:
        write_result("kafka", result)
    else:
        path.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
