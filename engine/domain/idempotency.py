"""Exactly-once commands: the first result of a command sent with an Idempotency-Key.

The record is an event on an aggregate whose id is derived from the principal and the
key, appended in the same atomic append as the command's own events. A retry finds it
(and records nothing); two concurrent first tries conflict on its version 1, so only
one of them is ever recorded.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from engine.domain.base import DomainEvent, EventFactory, derived_id


def idempotency_id(principal_id: str, key: str) -> UUID:
    return derived_id("idempotency", f"{principal_id}\n{key}")


class CommandProcessed(DomainEvent):
    type_name = "CommandProcessed"
    aggregate_type = "IdempotencyKey"
    bookkeeping = True
    key: str
    method: str
    path: str
    request_hash: str
    status_code: int
    response: dict[str, Any]


def command_processed(
    make: EventFactory,
    principal_id: str,
    key: str,
    method: str,
    path: str,
    request_hash: str,
    status_code: int,
    response: dict[str, Any],
) -> list[DomainEvent]:
    return [
        make.make(
            CommandProcessed,
            idempotency_id(principal_id, key),
            1,
            key=key,
            method=method,
            path=path,
            request_hash=request_hash,
            status_code=status_code,
            response=response,
        )
    ]
