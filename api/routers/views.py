"""The read side: queues, workload, search, audit history and export, reports.

Every query accepts ``min_position``: it waits (bounded by TICKETING_WAIT_TIMEOUT_S,
504 on timeout) until the views have applied that log position, so a client reads its
own writes by passing the ``position`` a command returned.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from api.deps import TIME_PARAMETER, PrincipalDep, RuntimeDep, invalid
from engine.app.audit import digest_trailer
from engine.app.permissions import (
    authorize,
    fields_shown,
    history_scope,
    may_read_workload,
    search_scope,
    shown_to,
)
from engine.bootstrap import Runtime
from engine.domain.base import NotFoundError
from engine.domain.values import Instant
from engine.projections.kit.models import (
    AgentReport,
    AgentWorkload,
    HistoryEntry,
    QueueSummary,
    QueueTicket,
    ServiceReport,
)

router = APIRouter(tags=["views"])

Position = Annotated[int | None, Query(ge=0, le=2**63 - 1, description="wait for this position")]
Limit = Annotated[int, Query(ge=1, le=500)]
Cursor = Annotated[str | None, Query(max_length=500)]
Since = Annotated[Instant | None, Query(description=TIME_PARAMETER)]
Time = Annotated[Instant, Query(description=TIME_PARAMETER)]


def _views(runtime: Runtime, min_position: int | None) -> Any:
    views = runtime.views
    if views is None:
        raise HTTPException(
            503, "the views are not running in this process (TICKETING_PROJECTIONS)"
        )
    if min_position is not None and not runtime.settings.uses_kafka:
        # The embedded store's head is the truth: a later position was never recorded.
        # (On Kafka this process's cache may trail another process's writes: wait.)
        head = runtime.app.recorder.max_notification_id() or 0
        if min_position > head:
            raise HTTPException(
                422, f"min_position: position {min_position} has not been recorded (head {head})"
            )
    if min_position is not None:
        try:
            views.wait(min_position, runtime.settings.wait_timeout_s)
        except TimeoutError:
            raise TimeoutError(
                f"the views did not reach position {min_position} within "
                f"{runtime.settings.wait_timeout_s:g} s; retry later"
            ) from None
    return views


def views_at(runtime: RuntimeDep, principal: PrincipalDep, min_position: Position = None) -> Any:
    # The principal comes first: an unknown key gets its 401 without any wait.
    return _views(runtime, min_position)


ViewsDep = Annotated[Any, Depends(views_at)]


class Page(BaseModel):
    items: list[QueueTicket]
    next_cursor: str | None


@router.get("/queues", response_model=list[QueueSummary])
def list_queues(views: ViewsDep, principal: PrincipalDep) -> list[QueueSummary]:
    """Every queue with its active tickets counted by status and priority."""
    authorize(principal, "read_queues")
    result: list[QueueSummary] = views.queues()
    return result


@router.get("/queues/{queue}", response_model=Page)
def queue_page(
    queue: Annotated[str, Path(min_length=1, max_length=64)],
    views: ViewsDep,
    principal: PrincipalDep,
    status: Annotated[str | None, Query(max_length=20)] = None,
    priority: Annotated[Literal["P1", "P2", "P3", "P4"] | None, Query()] = None,
    assignee: UUID | None = None,
    unassigned: bool | None = None,
    escalated: bool | None = None,
    sla: Annotated[Literal["at_risk", "breached"] | None, Query()] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page:
    """The queue's active tickets in work order, filtered, one page at a time."""
    authorize(principal, "read_queues")
    items, next_cursor = _paged(
        lambda: views.queue_tickets(
            queue,
            status=status,
            priority=priority,
            assignee=assignee,
            unassigned=unassigned,
            escalated=escalated,
            sla=sla,
            limit=limit,
            cursor=cursor,
        )
    )
    return Page(items=[shown_to(principal, item) for item in items], next_cursor=next_cursor)


@router.get("/agents/{agent_id}/workload", response_model=AgentWorkload)
def workload(agent_id: UUID, views: ViewsDep, principal: PrincipalDep) -> AgentWorkload:
    """An agent's active tickets, counted by priority, against their capacity."""
    may_read_workload(principal, agent_id)
    found: AgentWorkload | None = views.agent_workload(agent_id)
    if found is None:
        raise NotFoundError(f"agent {agent_id} not found")
    return found.model_copy(update={"tickets": [shown_to(principal, t) for t in found.tickets]})


@router.get("/tickets", response_model=Page)
def search(
    views: ViewsDep,
    principal: PrincipalDep,
    requester: Annotated[str | None, Query(max_length=100)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    queue: Annotated[str | None, Query(max_length=64)] = None,
    priority: Annotated[Literal["P1", "P2", "P3", "P4"] | None, Query()] = None,
    text: Annotated[str | None, Query(max_length=200, description="words in the title")] = None,
    created_from: Since = None,
    created_to: Since = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page:
    """Search tickets; requesters see only their own."""
    requester = search_scope(principal, requester)
    items, next_cursor = _paged(
        lambda: views.search_tickets(
            requester=requester,
            status=status,
            queue=queue,
            priority=priority,
            text=text,
            created_from=created_from,
            created_to=created_to,
            limit=limit,
            cursor=cursor,
        )
    )
    return Page(items=[shown_to(principal, item) for item in items], next_cursor=next_cursor)


@router.get("/tickets/{ticket_id}/history", response_model=list[HistoryEntry])
def history(
    ticket_id: UUID, runtime: RuntimeDep, views: ViewsDep, principal: PrincipalDep
) -> list[HistoryEntry]:
    """Every change to the ticket across its Ticket, Assignment and Escalation events."""
    internal = history_scope(
        principal, lambda: runtime.app.aggregates.ticket(ticket_id).requester_id
    )
    entries: list[HistoryEntry] = views.history(
        ticket_id, include_internal=internal, shown=fields_shown(principal)
    )
    if not entries:
        raise NotFoundError(f"ticket {ticket_id} not found")
    return entries


@router.get("/audit/export", response_class=StreamingResponse)
def export(
    views: ViewsDep,
    principal: PrincipalDep,
    from_: Annotated[Instant | None, Query(alias="from", description=TIME_PARAMETER)] = None,
    to: Since = None,
    ticket: UUID | None = None,
    format: Literal["jsonl", "csv"] = "jsonl",
) -> StreamingResponse:
    """The audit history as JSON lines or CSV; the last line carries the SHA-256 of
    every byte before it."""
    authorize(principal, "read_audit")
    lines = views.export(from_, to, ticket, format, shown=fields_shown(principal))

    def body() -> Iterator[bytes]:
        for line in lines:
            yield line.encode("utf-8")
        yield digest_trailer(format, lines.digest).encode("utf-8")

    return StreamingResponse(
        body(), media_type=lines.media_type, headers={"X-Export-Position": str(lines.position)}
    )


@router.get("/reports/service", response_model=ServiceReport)
def service_report(
    views: ViewsDep,
    principal: PrincipalDep,
    from_: Annotated[Instant, Query(alias="from", description=TIME_PARAMETER)],
    to: Time,
    queue: Annotated[str | None, Query(max_length=64)] = None,
) -> ServiceReport:
    """Volumes, response and resolution times, reopen and escalation rates, CSAT."""
    authorize(principal, "read_reports")
    _window(from_, to)
    report: ServiceReport = views.service_report(from_, to, queue)
    return report


@router.get("/reports/agents", response_model=AgentReport)
def agent_report(
    views: ViewsDep,
    principal: PrincipalDep,
    from_: Annotated[Instant, Query(alias="from", description=TIME_PARAMETER)],
    to: Time,
) -> AgentReport:
    """Per agent: resolved count, median handle time, reopen rate, CSAT."""
    authorize(principal, "read_reports")
    _window(from_, to)
    report: AgentReport = views.agent_report(from_, to)
    return report


def _window(from_: datetime, to: datetime) -> None:
    if to <= from_:
        raise invalid("query", "to", "must be after from")


def _paged(query: Any) -> tuple[list[QueueTicket], str | None]:
    try:
        result: tuple[list[QueueTicket], str | None] = query()
    except ValueError as e:  # a cursor that is not ours
        raise HTTPException(422, f"cursor: {e}") from None
    return result
