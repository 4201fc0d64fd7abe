"""Building blocks shared by every aggregate: the event base class, the command
metadata, the decider protocol and the domain error hierarchy.

The domain never reads the clock and never makes ids: both come in with the command
(``CommandMeta``), so tests pin them and a replay is deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, Protocol, TypeVar
from uuid import UUID, uuid5

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

# Namespace for deterministic ids (uuid5) of aggregates addressed by a natural key.
ID_NAMESPACE = UUID("6f1d7f3e-93a4-4c55-9d2e-5a4e0c1b7a10")


def derived_id(kind: str, key: str) -> UUID:
    """Deterministic id of an aggregate addressed by a natural key (queue name, ...)."""
    return uuid5(ID_NAMESPACE, f"{kind}:{key}")


class CommandMeta(BaseModel):
    """Who asked, when, and under which correlation: carried by every command."""

    model_config = ConfigDict(frozen=True)

    actor: str
    occurred_at: AwareDatetime
    correlation_id: UUID
    causation_id: UUID | None = None
    # The actor's role (``requester``, ``agent``, ...; None for the engine's own
    # processes): some decisions depend on who asks, none records it in the envelope.
    role: str | None = None
    # Event ids are made from the correlation id and a counter, so the domain needs
    # no random source: see ``EventFactory``.

    @field_validator("occurred_at")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)


class DomainEvent(BaseModel):
    """An immutable fact. Subclasses add the event's data fields.

    ``type_name`` and ``schema_version`` identify the event on the wire and in the
    store, independently of the Python module path, so the stream stays readable
    when code moves.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    type_name: ClassVar[str]
    schema_version: ClassVar[int] = 1
    aggregate_type: ClassVar[str]
    # Personal data of a data subject, encrypted in the stored payload with that
    # subject's key (crypto-shredding): the fields, and the field naming the subject.
    personal_fields: ClassVar[tuple[str, ...]] = ()
    subject_field: ClassVar[str | None] = None
    # The engine's own bookkeeping (an idempotency record, a checkpoint), not a fact of
    # the service desk: stream consumers can skip it by a header (docs/kafka.md).
    bookkeeping: ClassVar[bool] = False

    originator_id: UUID
    originator_version: int
    event_id: UUID
    occurred_at: AwareDatetime
    actor: str
    correlation_id: UUID
    causation_id: UUID | None = None

    ENVELOPE_FIELDS: ClassVar[frozenset[str]] = frozenset(
        {
            "originator_id",
            "originator_version",
            "event_id",
            "occurred_at",
            "actor",
            "correlation_id",
            "causation_id",
        }
    )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("type_name")
        if name is not None:
            if name in EVENT_TYPES and EVENT_TYPES[name] is not cls:
                raise TypeError(f"event type name {name!r} is used twice")
            EVENT_TYPES[name] = cls

    @classmethod
    def upcast(cls, data: dict[str, Any], from_version: int) -> dict[str, Any]:
        """Turn an older schema version's data into the current one.

        Subclasses that bump ``schema_version`` override this; the default accepts
        only the current version.
        """
        if from_version != cls.schema_version:
            raise ValueError(
                f"{cls.type_name} schema version {from_version} is not supported "
                f"(this engine reads version {cls.schema_version})"
            )
        return data

    def subject(self) -> str | None:
        """The data subject whose personal data this event carries, if any."""
        if self.subject_field is None:
            return None
        value = getattr(self, self.subject_field)
        return str(value) if value is not None else None

    def data(self) -> dict[str, Any]:
        """The event's own fields, without the envelope, JSON-ready."""
        return self.model_dump(mode="json", exclude=set(self.ENVELOPE_FIELDS))


def subject_id_field(whose: str = "the ticket's requester") -> Any:
    """The ``subject_id`` field of an event whose free text is personal data: the data
    subject it concerns, under whose key ``personal_fields`` are sealed. None (and in
    events recorded before the field existed) leaves them in clear."""
    return Field(default=None, description=f"{whose} (the data subject)")


# Every concrete event class, by its stable type name.
EVENT_TYPES: dict[str, type[DomainEvent]] = {}


class DomainError(Exception):
    """Base of every refusal by the domain. Nothing is recorded when one is raised."""


class InvalidTransitionError(DomainError):
    """The command is not allowed in the aggregate's current state."""

    def __init__(self, aggregate: str, state: str, action: str, allowed: Iterable[str]):
        self.aggregate = aggregate
        self.state = state
        self.action = action
        self.allowed = sorted(allowed)
        allowed_text = ", ".join(self.allowed) or "none"
        article = "an" if aggregate[:1] in "aeiou" else "a"
        super().__init__(
            f"cannot {action} {article} {aggregate} that is {state}; allowed now: {allowed_text}"
        )


class RuleViolationError(DomainError):
    """The command breaks a business rule (capacity, membership, window, ...)."""


class NotFoundError(DomainError):
    """The addressed aggregate does not exist."""


class PermissionDeniedError(DomainError):
    """The actor's role may not do this."""


E = TypeVar("E", bound=DomainEvent)


class EventFactory:
    """Stamps new events with the command's metadata and the next versions."""

    def __init__(self, meta: CommandMeta) -> None:
        self.meta = meta
        self._count = 0

    def make(self, cls: type[E], aggregate_id: UUID, version: int, **data: Any) -> E:
        self._count += 1
        event_id = uuid5(self.meta.correlation_id, f"{aggregate_id}:{version}:{self._count}")
        return cls(
            originator_id=aggregate_id,
            originator_version=version,
            event_id=event_id,
            occurred_at=self.meta.occurred_at,
            actor=self.meta.actor,
            correlation_id=self.meta.correlation_id,
            causation_id=self.meta.causation_id,
            **data,
        )


S = TypeVar("S", covariant=True)


class Evolver(Protocol[S]):
    def __call__(self, state: Any, event: DomainEvent) -> S: ...


St = TypeVar("St")


def _none(key: Any) -> None:
    return None


@dataclass(frozen=True, eq=False)  # one object per kind: compared and hashed as itself
class Kind(Generic[St]):
    """One kind of aggregate, as its streams are folded: the aggregate type its events
    record, its ``evolve``, and ``initial(key)``, its state before the first event. That
    is None for an aggregate that does not exist until then (a ticket, an agent); a value
    where one is in force before anyone records anything (a ticket's assignment is
    unassigned, a queue routes manually, the built-in SLA policy applies). Every stream is
    folded from its kind's initial state, and only events of its kind fold into it."""

    aggregate_type: str
    evolve: Callable[[Any, DomainEvent], St | None]
    initial: Callable[[Any], St | None] = _none
