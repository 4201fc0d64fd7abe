"""Signed checkpoints: the log's state at a position, signed by the engine's key."""

from __future__ import annotations

from engine.domain.base import DomainEvent, derived_id

CHECKPOINTS_ID = derived_id("system", "checkpoints")


class CheckpointRecorded(DomainEvent):
    """The Merkle root over every stream's head hash at ``position``, Ed25519-signed."""

    type_name = "CheckpointRecorded"
    aggregate_type = "Checkpoint"
    bookkeeping = True
    position: int
    stream_count: int
    merkle_root: str
    public_key: str
    signature: str
