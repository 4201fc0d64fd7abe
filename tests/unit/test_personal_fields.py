"""Which event fields are personal data (#15 items 4 and 10): every text field of every
event type is either sealed (``personal_fields``, the one declaration the README and the
visibility table read) or named below with the reason it carries no personal data. A new
text field fails here until someone decides.

Then the class: for every event type with personal fields, an instance with a unique
string in each of them is sealed on the way to the store (no byte of it in the
envelope), read back in clear with the key, and as ``[erased]`` once the key is gone."""

from __future__ import annotations

import types
from typing import Any, Literal, Union, get_args, get_origin

import pytest
from test_envelope import sample_value

from engine.domain.base import EVENT_TYPES, DomainEvent
from engine.integrity.keystore import MemoryKeyStore
from engine.integrity.personal import ERASED, is_encrypted
from engine.stores.envelope import decode_envelope, encode_envelope, from_envelope, to_envelope

IDS = "an id, a code or a name from the desk's configuration, never free text"
ENGINE = "written by the engine, not by a person (a code or an explanation)"
CONFIG = "about the desk's configuration, not about a person"

NOT_PERSONAL: dict[tuple[str, str], str] = {
    ("AgentDroppedTicket", "why"): ENGINE,
    ("AgentRegistered", "subject_id"): IDS,
    ("AgentAvailabilitySet", "subject_id"): IDS,
    ("AgentScheduleSet", "subject_id"): IDS,
    ("AgentUpdated", "subject_id"): IDS,
    ("AssignedToAgent", "queue"): IDS,
    ("AssignedToAgent", "subject_id"): IDS,
    ("AssignedToQueue", "queue"): IDS,
    ("AssignedToQueue", "previous_queue"): IDS,
    ("AssignedToQueue", "subject_id"): IDS,
    ("AssignmentReleased", "subject_id"): IDS,
    ("Reassigned", "queue"): IDS,
    ("Reassigned", "subject_id"): IDS,
    ("RoutingDecided", "queue"): IDS,
    ("RoutingDecided", "tie_break"): ENGINE + "; agents named by principal id",
    ("RoutingDecided", "explanation"): ENGINE + "; agents named by principal id",
    ("RoutingDeferred", "queue"): IDS,
    ("RoutingDeferred", "reason"): ENGINE + "; agents named by principal id",
    ("RoutingPolicySet", "queue"): IDS,
    ("RoutingPolicySet", "reason"): CONFIG,
    ("RoutingTurnTaken", "queue"): IDS,
    ("CheckpointRecorded", "merkle_root"): "a digest",
    ("CheckpointRecorded", "public_key"): "the engine's signing key",
    ("CheckpointRecorded", "signature"): "a signature",
    ("CommandProcessed", "key"): "the client's Idempotency-Key, an opaque token",
    ("CommandProcessed", "method"): IDS,
    ("CommandProcessed", "path"): "the route, with ids only (principal ids are opaque)",
    ("CommandProcessed", "request_hash"): "a digest",
    ("CredentialIssued", "principal_id"): "the holder's opaque id (the subject)",
    ("CredentialRevoked", "subject_id"): IDS,
    ("EscalationAcknowledged", "subject_id"): IDS,
    ("EscalationRaised", "target"): "a queue, department, vendor or role to escalate to",
    ("EscalationRaised", "subject_id"): IDS,
    ("EscalationResolved", "subject_id"): IDS,
    ("EscalationWithdrawn", "subject_id"): IDS,
    ("EscalationRulesSet", "queue"): IDS,
    ("EscalationRulesSet", "lead"): "a lead's principal id",
    ("EscalationRulesSet", "reason"): CONFIG,
    ("VendorReferenceRecorded", "vendor"): "an organisation",
    ("VendorReferenceRecorded", "reference"): "the vendor's ticket number",
    ("QueueCreated", "name"): IDS,
    ("QueueCreated", "description"): CONFIG,
    ("SlaCalendarSet", "reason"): CONFIG,
    ("SlaClockPaused", "reason"): ENGINE + " (what the ticket waits on)",
    ("SlaClockStopped", "reason"): ENGINE,
    ("SlaPolicySet", "reason"): CONFIG,
    ("SubjectErased", "subject_id"): "the erased subject's opaque id",
    ("SubjectErased", "legal_basis"): "the erasure's own record (a legal basis and reference)",
    ("SystemBootstrapped", "admin_principal_id"): IDS,
    ("SatisfactionRated", "subject_id"): IDS,
    ("TicketCancelled", "subject_id"): IDS,
    ("TicketClosed", "subject_id"): IDS,
    ("TicketCommented", "author_role"): IDS,
    ("TicketCommented", "subject_id"): IDS,
    ("TicketMerged", "subject_id"): IDS,
    ("TicketOpened", "requester_id"): "the requester's opaque principal id (the subject)",
    ("TicketOpened", "category"): IDS,
    ("TicketPended", "subject_id"): IDS,
    ("TicketReopened", "subject_id"): IDS,
    ("TicketResolved", "resolution_code"): IDS,
    ("TicketResolved", "subject_id"): IDS,
    ("TicketResumed", "subject_id"): IDS,
    ("TicketTriaged", "subject_id"): IDS,
}


def instance(type_name: str, values: dict[str, Any]) -> DomainEvent:
    """A valid event of the type, with ``values`` in those fields."""
    cls = EVENT_TYPES[type_name]
    fields = {n: sample_value(i.annotation, list(i.metadata)) for n, i in cls.model_fields.items()}
    return cls(**{**fields, **values})


def _is_text(annotation: Any) -> bool:
    """A field a person could write free text into: str or str | None (not a Literal)."""
    if annotation is str:
        return True
    if get_origin(annotation) in (Union, types.UnionType):
        return any(_is_text(a) for a in get_args(annotation) if a is not type(None))
    return False


def text_fields(cls: type[DomainEvent]) -> list[str]:
    return [
        name
        for name, info in cls.model_fields.items()
        if name not in DomainEvent.ENVELOPE_FIELDS
        and get_origin(info.annotation) is not Literal
        and _is_text(info.annotation)
    ]


def test_every_text_field_of_every_event_type_is_sealed_or_known_to_carry_no_person() -> None:
    undecided = {
        (name, field)
        for name, cls in EVENT_TYPES.items()
        for field in text_fields(cls)
        if field not in cls.personal_fields
    }
    assert undecided - set(NOT_PERSONAL) == set(), "seal them or say why they are not personal"
    assert set(NOT_PERSONAL) - undecided == set(), "stale entries (sealed or gone)"


@pytest.mark.parametrize("name", sorted(n for n, c in EVENT_TYPES.items() if c.personal_fields))
def test_personal_fields_are_text_fields_with_a_subject(name: str) -> None:
    cls = EVENT_TYPES[name]
    assert set(cls.personal_fields) <= set(text_fields(cls))
    assert cls.subject_field in cls.model_fields


@pytest.mark.parametrize("name", sorted(n for n, c in EVENT_TYPES.items() if c.personal_fields))
def test_every_personal_field_is_sealed_and_erased(name: str) -> None:
    cls = EVENT_TYPES[name]
    assert cls.subject_field is not None
    markers = {field: f"pii~{name}~{field}" for field in cls.personal_fields}
    subject = "0a0a0a0a-0000-4000-8000-000000000001"
    event = instance(name, {**markers, cls.subject_field: subject})
    keys = MemoryKeyStore()
    stored = encode_envelope(to_envelope(event, keys))
    # Step: nothing personal in the stored bytes, each field sealed under the subject.
    assert [m for m in markers.values() if m.encode() in stored] == []
    data = decode_envelope(stored)["data"]
    assert all(is_encrypted(data[f]) and data[f]["subject"] == subject for f in markers)
    # Step: read back in clear with the key...
    back = from_envelope(decode_envelope(stored), keys)
    assert {f: getattr(back, f) for f in markers} == markers
    # ...and as erased once the key is destroyed.
    keys.destroy(subject)
    erased = from_envelope(decode_envelope(stored), keys)
    assert {f: getattr(erased, f) for f in markers} == dict.fromkeys(markers, ERASED)


@pytest.mark.parametrize("name", sorted(n for n, c in EVENT_TYPES.items() if c.personal_fields))
def test_an_event_recorded_before_its_field_was_sealed_still_reads(name: str) -> None:
    """Older stores hold these fields in clear and no subject_id: they read as written."""
    cls = EVENT_TYPES[name]
    markers = {field: f"old~{field}" for field in cls.personal_fields}
    envelope = to_envelope(instance(name, markers), None)
    if cls.subject_field == "subject_id":
        del envelope["data"]["subject_id"]  # the field did not exist then
    back = from_envelope(decode_envelope(encode_envelope(envelope)), MemoryKeyStore())
    assert {f: getattr(back, f) for f in markers} == markers
