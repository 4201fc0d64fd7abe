"""Audit integrity over the whole log: verify chains and checkpoints, and build and
check offline replay bundles (checkpoints are recorded by engine.processes.checkpoints)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder

from engine.integrity.chain import Break, ChainVerifier
from engine.integrity.checkpoint import (
    inclusion_proof,
    leaf,
    merkle_root,
    root_from_proof,
    signed_message,
    verify_signature,
)
from engine.stores.envelope import EnvelopeError, decode_envelope

Progress = Callable[[int, int], None]
BATCH = 2000
BUNDLE_FORMAT = "ticketing-bundle/1"


def scan(
    recorder: ApplicationRecorder, progress: Progress | None = None, stop: int | None = None
) -> Iterator[tuple[int, bytes]]:
    """Every notification (position, envelope bytes) in order, with progress."""
    total = recorder.max_notification_id() or 0
    if stop is not None:
        total = min(total, stop)
    start, done = 1, 0
    while True:
        batch = recorder.select_notifications(start, BATCH, stop=stop)
        for n in batch:
            done += 1
            yield n.id, n.state
        if progress is not None:
            progress(done, total)
        if len(batch) < BATCH:
            return
        start = batch[-1].id + 1


@dataclass
class Report:
    events: int = 0
    streams: int = 0
    checkpoints_verified: int = 0
    broken: Break | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.broken is None and not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events": self.events,
            "streams": self.streams,
            "checkpoints_verified": self.checkpoints_verified,
            "first_break": self.broken.__dict__ if self.broken else None,
            "problems": self.problems,
        }


def _checkpoints(recorder: ApplicationRecorder) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    start = 1
    while True:
        batch = recorder.select_notifications(start, BATCH, topics=["CheckpointRecorded"])
        found += [decode_envelope(n.state) for n in batch]
        if len(batch) < BATCH:
            return sorted(found, key=lambda e: int(e["data"]["position"]))
        start = batch[-1].id + 1


def check_checkpoint(
    checkpoint: dict[str, Any], heads: dict[str, tuple[int, str]], trusted_key: str | None
) -> str | None:
    """None if the checkpoint matches the heads and its signature verifies."""
    data = checkpoint["data"]
    position = int(data["position"])
    if trusted_key is not None and data["public_key"] != trusted_key:
        return f"checkpoint at position {position} is signed by an untrusted key"
    message = signed_message(position, int(data["stream_count"]), str(data["merkle_root"]))
    if not verify_signature(str(data["public_key"]), message, str(data["signature"])):
        return f"checkpoint at position {position}: the signature does not verify"
    root = merkle_root(heads)
    if root != data["merkle_root"] or len(heads) != int(data["stream_count"]):
        return (
            f"checkpoint at position {position}: stream heads do not match the signed root "
            f"(expected {data['merkle_root']} over {data['stream_count']} streams, found "
            f"{root} over {len(heads)}): events were changed, deleted or inserted"
        )
    return None


def verify_log(
    recorder: ApplicationRecorder, progress: Progress | None = None, trusted_key: str | None = None
) -> Report:
    """Recompute every stream's chain and check every checkpoint in the log."""
    report = Report()
    pending = _checkpoints(recorder)
    verifier = ChainVerifier()

    def heads() -> dict[str, tuple[int, str]]:
        return {a: (h.version, h.hash) for a, h in verifier.heads.items()}

    def settle(upto: int) -> None:
        while pending and int(pending[0]["data"]["position"]) < upto:
            problem = check_checkpoint(pending.pop(0), heads(), trusted_key)
            if problem:
                report.problems.append(problem)
            else:
                report.checkpoints_verified += 1

    for position, state in scan(recorder, progress):
        settle(position)
        try:
            envelope = decode_envelope(state)
        except EnvelopeError as e:
            report.broken = Break(position, "?", -1, f"unreadable record: {e}", None, None)
            break
        if verifier.feed(envelope, position) is not None:
            report.broken = verifier.broken
            break
    else:
        settle(1 << 62)
    report.events = verifier.count
    report.streams = len(verifier.heads)
    return report


def verify_streams(streams: dict[str, list[dict[str, Any]]]) -> Report:
    """Verify given streams' envelopes (one ticket's), each from its version 1."""
    report = Report(streams=len(streams))
    verifier = ChainVerifier()
    for envelopes in streams.values():
        for envelope in envelopes:
            report.events += 1
            if verifier.feed(envelope, envelope.get("position")) is not None:
                report.broken = verifier.broken
                return report
    return report


def ticket_streams(app: Any, ticket_id: UUID) -> list[UUID]:
    """The aggregates that make up one ticket: Ticket, Assignment, its Escalations."""
    from engine.domain.assignment import assignment_id
    from engine.domain.ticket import TicketEscalated

    ids = [ticket_id, assignment_id(ticket_id)]
    for event in app.events.get(ticket_id):
        if isinstance(event, TicketEscalated):
            ids.append(event.escalation_id)
    return ids


def build_bundle(app: Any, ticket_id: UUID, progress: Progress | None = None) -> dict[str, Any]:
    """One ticket's events, chains, the latest checkpoint and inclusion proofs."""
    wanted = {str(s) for s in ticket_streams(app, ticket_id)}
    checkpoints = _checkpoints(app.recorder)
    checkpoint = checkpoints[-1] if checkpoints else None
    cp_position = int(checkpoint["data"]["position"]) if checkpoint else 0
    heads_at_cp: dict[str, tuple[int, str]] = {}
    events: list[dict[str, Any]] = []
    for position, state in scan(app.recorder, progress):
        envelope = decode_envelope(state)
        aggregate = str(envelope["aggregate_id"])
        if position <= cp_position:
            heads_at_cp[aggregate] = (int(envelope["aggregate_version"]), str(envelope["hash"]))
        if aggregate in wanted:
            events.append({"position": position, "envelope": envelope})
    proofs = {a: inclusion_proof(heads_at_cp, a) for a in sorted(wanted) if a in heads_at_cp}
    return {
        "format": BUNDLE_FORMAT,
        "ticket_id": str(ticket_id),
        "streams": sorted(wanted),
        "events": events,
        "checkpoint": checkpoint,
        "proofs": proofs,
    }


def verify_bundle(bundle: dict[str, Any], trusted_key: str | None = None) -> Report:
    """Check a bundle offline: chains, the checkpoint's signature and inclusion proofs."""
    if bundle.get("format") != BUNDLE_FORMAT:
        return Report(problems=[f"not a {BUNDLE_FORMAT} file"])
    streams: dict[str, list[dict[str, Any]]] = {s: [] for s in bundle["streams"]}
    for item in bundle["events"]:
        envelope = dict(item["envelope"])
        streams.setdefault(str(envelope["aggregate_id"]), []).append(envelope)
    report = verify_streams(streams)
    positions = {
        (str(i["envelope"]["aggregate_id"]), int(i["envelope"]["aggregate_version"])): int(
            i["position"]
        )
        for i in bundle["events"]
    }
    if report.broken is not None:
        return report
    checkpoint = bundle.get("checkpoint")
    if checkpoint is None:
        report.problems.append("no checkpoint covers this ticket yet: only the chains are checked")
        return report
    data = checkpoint["data"]
    cp_position = int(data["position"])
    message = signed_message(cp_position, int(data["stream_count"]), str(data["merkle_root"]))
    if trusted_key is not None and data["public_key"] != trusted_key:
        report.problems.append("the checkpoint is signed by an untrusted key")
    if not verify_signature(str(data["public_key"]), message, str(data["signature"])):
        report.problems.append("the checkpoint's signature does not verify")
    for stream, envelopes in streams.items():
        covered = [
            e for e in envelopes if positions[(stream, int(e["aggregate_version"]))] <= cp_position
        ]
        proof = bundle["proofs"].get(stream)
        if not covered and proof is None:
            continue
        if not covered or proof is None:
            report.problems.append(f"stream {stream}: events and checkpoint proof disagree")
            continue
        head = covered[-1]
        computed = root_from_proof(
            leaf(stream, int(head["aggregate_version"]), str(head["hash"])),
            [(side, h) for side, h in proof],
        )
        if computed != data["merkle_root"]:
            report.problems.append(
                f"stream {stream}: its head at the checkpoint (version "
                f"{head['aggregate_version']}) is not the one signed: events were removed "
                "or changed"
            )
    if not report.problems:
        report.checkpoints_verified = 1
    return report


def dump_bundle(bundle: dict[str, Any]) -> str:
    return json.dumps(bundle, indent=1, sort_keys=True)


def digest_trailer(fmt: str, digest: str) -> str:
    """An audit export's last line: the SHA-256 of every byte before it."""
    if fmt == "csv":
        return f"# sha256={digest}\n"
    return json.dumps({"sha256": digest}) + "\n"
