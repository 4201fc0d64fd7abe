"""The stream contract, read as an analytics engineer reads it: without our code.

A scripted desk day (tests/golden/events.jsonl) is recorded on a Kafka topic; then kcat,
kafka-python, the CloudEvents SDK and DuckDB read it, and docs/examples/verify_chain.py
(standard library and rfc8785 only) recomputes every hash chain from kcat's raw output.
The kcat, kafka-python and DuckDB snippets are the ones in docs/kafka.md ("Consume it"),
extracted from the page and run with the broker address and topic replaced.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary_event
from eventsourcing.persistence import InfrastructureFactory, StoredEvent
from eventsourcing.utils import Environment
from kafka import KafkaConsumer, TopicPartition

from tests.golden.scenario import GOLDEN
from tests.support.kafka_broker import recorder_env

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).parents[2]
DOC = ROOT / "docs" / "kafka.md"
SCRIPT = ROOT / "docs" / "examples" / "verify_chain.py"
GOLDEN_EVENTS = GOLDEN / "events.jsonl"
BOOKKEEPING = {"CommandProcessed", "CheckpointRecorded"}


def snippet(name: str) -> str:
    """The fenced block after ``<!-- tested: name -->`` in docs/kafka.md."""
    found = re.search(
        rf"<!-- tested: {re.escape(name)} -->\n```\w+\n(.*?)```", DOC.read_text(), re.S
    )
    assert found, f"docs/kafka.md has no tested {name} snippet"
    return found.group(1)


@dataclass
class Stream:
    bootstrap: str
    topic: str
    states: list[bytes]  # every envelope the engine recorded, in notification order
    workdir: Path

    def run(self, name: str) -> str:
        """Run the doc's snippet on this topic in ``workdir``; its standard output."""
        code = snippet(name).replace("localhost:9092", self.bootstrap)
        code = code.replace("ticketing.events", self.topic)
        if name == "kcat":
            code = code.replace(
                "python3 docs/examples/verify_chain.py", f"{sys.executable} -I {SCRIPT}"
            )
            argv = ["sh", "-ec", code]
        else:
            argv = [sys.executable, "-c", code]
        done = subprocess.run(argv, capture_output=True, text=True, cwd=self.workdir, timeout=120)
        assert done.returncode == 0, f"the {name} snippet failed: {done.stderr}"
        return done.stdout

    def envelopes(self) -> list[dict[str, Any]]:
        return [json.loads(state) for state in self.states]


@pytest.fixture
def stream(kcat_bootstrap: str, tmp_path: Path) -> Stream:
    """The scripted desk day's envelopes (tests/golden/events.jsonl: floats, an
    Idempotency-Key, sealed personal data) recorded by the Kafka store on a fresh topic,
    one transaction per command as the engine wrote them."""
    states = [line.encode() for line in GOLDEN_EVENTS.read_text("utf-8").splitlines()]
    commands: list[list[StoredEvent]] = []
    last = None
    for state in states:
        e = json.loads(state)
        event = StoredEvent(UUID(e["aggregate_id"]), e["aggregate_version"], e["type"], state)
        if e["correlation_id"] != last:
            commands.append([])
        commands[-1].append(event)
        last = e["correlation_id"]
    env = recorder_env(kcat_bootstrap, tmp_path / "cache")
    factory = InfrastructureFactory.construct(Environment(env=env))
    try:
        recorder = factory.application_recorder()
        for events in commands:
            recorder.insert_events(events)
        topic = recorder.log.settings.topic
    finally:
        factory.close()
    workdir = tmp_path / "work"
    workdir.mkdir()
    return Stream(kcat_bootstrap, topic, states, workdir)


def raw_records(stream: Stream) -> list[Any]:
    """Every committed record of the topic, read with kafka-python (bytes as they are)."""
    consumer = KafkaConsumer(
        bootstrap_servers=stream.bootstrap,
        isolation_level="read_committed",
        enable_auto_commit=False,
    )
    try:
        partition = TopicPartition(stream.topic, 0)
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        records: list[Any] = []
        deadline = time.monotonic() + 60
        while len(records) < len(stream.states) and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def test_every_chain_recomputes_from_kcat_output_without_our_code(stream: Stream) -> None:
    # When: the doc's kcat command dumps the topic and the standalone script checks it.
    report = json.loads(stream.run("kcat"))
    lines = (stream.workdir / "events.jsonl").read_text("utf-8").splitlines()

    # Then: kcat saw every envelope byte for byte, and every chain holds.
    assert [json.loads(line)["payload"].encode() for line in lines] == stream.states
    streams = {e["aggregate_id"] for e in stream.envelopes()}
    assert report == {
        "ok": True,
        "events": len(stream.states),
        "streams": len(streams),
        "first_break": None,
    }
    assert all(e["envelope_version"] == 2 for e in stream.envelopes())

    # And: the script is no rubber stamp: one changed byte in a value breaks its chain.
    record = json.loads(lines[40])
    record["payload"] = record["payload"].replace('"actor":"', '"actor":"x', 1)
    lines[40] = json.dumps(record)
    done = subprocess.run(
        [sys.executable, "-I", str(SCRIPT)],
        input="\n".join(lines), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1 and json.loads(done.stdout)["first_break"]["line"] == 41


def test_the_cloudevents_sdk_reads_every_record_as_its_envelope(stream: Stream) -> None:
    records = raw_records(stream)
    assert len(records) == len(stream.states)
    for record, envelope in zip(records, stream.envelopes(), strict=True):
        message = KafkaMessage(headers=dict(record.headers), key=record.key, value=record.value)
        event = from_binary_event(message)
        assert event.get_specversion() == "1.0"
        assert event.get_id() == envelope["event_id"]
        assert event.get_type() == envelope["type"]
        source = f"/ticketing/{envelope['aggregate_type']}/{envelope['aggregate_id']}"
        assert event.get_source() == source
        assert event.get_time() == datetime.fromisoformat(envelope["occurred_at"])
        assert event.get_datacontenttype() == "application/json"
        schema = f"urn:ticketing:event:{envelope['type']}:v{envelope['schema_version']}"
        assert event.get_dataschema() == schema
        assert event.get_extension("partitionkey") == envelope["aggregate_id"]
        assert event.get_data() == envelope


def test_bookkeeping_records_are_named_by_a_header(stream: Stream) -> None:
    records = raw_records(stream)
    kinds = Counter()
    for record, envelope in zip(records, stream.envelopes(), strict=True):
        kind = dict(record.headers)["record_kind"]
        assert kind == (b"bookkeeping" if envelope["type"] in BOOKKEEPING else b"domain")
        kinds[kind] += 1
    assert kinds[b"bookkeeping"] >= 1 and kinds[b"domain"] > 100


def domain_counts(stream: Stream) -> Counter[str]:
    return Counter(e["type"] for e in stream.envelopes() if e["type"] not in BOOKKEEPING)


def test_the_kafka_python_snippet_counts_the_desks_events(stream: Stream) -> None:
    assert json.loads(stream.run("kafka-python")) == domain_counts(stream)


def test_the_duckdb_snippet_counts_kcat_output_by_type(stream: Stream) -> None:
    stream.run("kcat")
    printed = stream.run("duckdb").splitlines()
    counts = {name: int(n) for name, n in (line.split() for line in printed)}
    assert counts == domain_counts(stream)
    # Ordered as the query says: most events first, then by name.
    assert printed == [f"{t} {n}" for t, n in sorted(counts.items(), key=lambda i: (-i[1], i[0]))]
