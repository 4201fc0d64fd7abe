"""What every command is: a frozen, validated value that names its target.

A command's fields are the one place its inputs, types and bounds are written. Some
fields are not sent by the caller: the ``address`` (the target, taken from the URL) and
the ids the engine ``makes`` (a new ticket's or comment's id). The API derives each
request body from the command without them (``api.schemas.request_body``).
"""

from __future__ import annotations

from typing import ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict


class Command(BaseModel):
    """A request to change the desk. Unknown fields are refused: in particular an
    ``actor``, which is always the authenticated caller and never part of a command."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    address: ClassVar[tuple[str, ...]] = ()
    makes: ClassVar[tuple[str, ...]] = ()


class TicketCommand(Command):
    """A command on one ticket (its Ticket and Assignment streams, and what they touch)."""

    address = ("ticket_id",)
    ticket_id: UUID


class EscalationCommand(Command):
    """A command on one escalation of a ticket."""

    address = ("escalation_id",)
    escalation_id: UUID


class AgentCommand(Command):
    """A command on one agent's stream."""

    address = ("agent_id",)
    agent_id: UUID


class QueueCommand(Command):
    """A command on one queue's configuration."""

    address = ("queue",)
    queue: str
