"""The Queue aggregate (a team), addressed by its name."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, ConfigDict

from engine.domain.base import CommandMeta, DomainEvent, EventFactory, Kind, derived_id


def queue_id(name: str) -> UUID:
    return derived_id("queue", name)


class QueueCreated(DomainEvent):
    type_name = "QueueCreated"
    aggregate_type = "Queue"
    name: str
    description: str | None = None


class Queue(BaseModel):
    model_config = ConfigDict(frozen=True)
    id: UUID
    version: int
    name: str
    description: str | None


def evolve_queue(state: Queue | None, event: DomainEvent) -> Queue:
    if isinstance(event, QueueCreated):
        return Queue(
            id=event.originator_id,
            version=event.originator_version,
            name=event.name,
            description=event.description,
        )
    assert state is not None
    return state.model_copy(update={"version": event.originator_version})


def create_queue(meta: CommandMeta, name: str, description: str | None) -> list[DomainEvent]:
    return [
        EventFactory(meta).make(QueueCreated, queue_id(name), 1, name=name, description=description)
    ]


KIND = Kind("Queue", evolve_queue)
