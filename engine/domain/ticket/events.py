"""The Ticket's events and the values they carry (channel, relations, visibility)."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal
from uuid import UUID

from pydantic import Field

from engine.domain.base import DomainEvent, subject_id_field
from engine.domain.priority import Level, Priority


class Channel(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    CHAT = "chat"
    WEB = "web"
    API = "api"


class Relation(StrEnum):
    PARENT = "parent"
    CHILD = "child"
    RELATED = "related"
    DUPLICATE_OF = "duplicate_of"
    DUPLICATED_BY = "duplicated_by"
    MERGED_FROM = "merged_from"


INVERSE_RELATION = {
    Relation.PARENT: Relation.CHILD,
    Relation.CHILD: Relation.PARENT,
    Relation.RELATED: Relation.RELATED,
    Relation.DUPLICATE_OF: Relation.DUPLICATED_BY,
    Relation.DUPLICATED_BY: Relation.DUPLICATE_OF,
}

Visibility = Literal["public", "internal"]
WaitingOn = Literal["customer", "vendor", "other"]
ShortText = Field(min_length=1, max_length=2000)


class TicketEvent(DomainEvent):
    aggregate_type = "Ticket"


class TicketOpened(TicketEvent):
    type_name = "TicketOpened"
    personal_fields = ("title", "description", "requester_name", "requester_email")
    subject_field = "requester_id"
    title: str
    description: str
    requester_id: str
    requester_name: str | None = None
    requester_email: str | None = None
    channel: Channel
    category: str
    impact: Level
    urgency: Level


class TicketTriaged(TicketEvent):
    type_name = "TicketTriaged"
    personal_fields = ("override_reason",)
    subject_field = "subject_id"
    impact: Level
    urgency: Level
    matrix_priority: Priority
    priority: Priority
    override_reason: str | None = None
    subject_id: str | None = subject_id_field()


class TicketCommented(TicketEvent):
    type_name = "TicketCommented"
    personal_fields = ("body",)
    subject_field = "subject_id"
    comment_id: UUID
    body: str
    visibility: Visibility
    author_role: str
    subject_id: str | None = subject_id_field()


class TicketWorkStarted(TicketEvent):
    type_name = "TicketWorkStarted"


class TicketPended(TicketEvent):
    type_name = "TicketPended"
    personal_fields = ("reason",)
    subject_field = "subject_id"
    reason: str
    waiting_on: WaitingOn
    subject_id: str | None = subject_id_field()


class TicketResumed(TicketEvent):
    type_name = "TicketResumed"
    personal_fields = ("note",)
    subject_field = "subject_id"
    note: str | None = None
    subject_id: str | None = subject_id_field()


class TicketResolved(TicketEvent):
    type_name = "TicketResolved"
    personal_fields = ("note",)
    subject_field = "subject_id"
    resolution_code: str
    note: str
    subject_id: str | None = subject_id_field()


class TicketReopened(TicketEvent):
    type_name = "TicketReopened"
    personal_fields = ("reason",)
    subject_field = "subject_id"
    reason: str
    subject_id: str | None = subject_id_field()


class TicketClosed(TicketEvent):
    type_name = "TicketClosed"
    personal_fields = ("reason",)
    subject_field = "subject_id"
    reason: str | None = None
    subject_id: str | None = subject_id_field()


class TicketCancelled(TicketEvent):
    type_name = "TicketCancelled"
    personal_fields = ("reason",)
    subject_field = "subject_id"
    reason: str
    subject_id: str | None = subject_id_field()


class TicketLinked(TicketEvent):
    type_name = "TicketLinked"
    relation: Relation
    other_ticket_id: UUID


class TicketMerged(TicketEvent):
    type_name = "TicketMerged"
    personal_fields = ("reason",)
    subject_field = "subject_id"
    into_ticket_id: UUID
    reason: str | None = None
    subject_id: str | None = subject_id_field()


class SatisfactionRated(TicketEvent):
    type_name = "SatisfactionRated"
    personal_fields = ("comment",)
    subject_field = "subject_id"
    score: int = Field(ge=1, le=5)
    comment: str | None = None
    subject_id: str | None = subject_id_field()


class TicketEscalated(TicketEvent):
    type_name = "TicketEscalated"
    escalation_id: UUID
    level: int
    escalation_level: int


class TicketEscalationClosed(TicketEvent):
    type_name = "TicketEscalationClosed"
    escalation_id: UUID
    escalation_level: int
