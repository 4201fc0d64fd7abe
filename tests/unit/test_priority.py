"""Priority from impact x urgency: the issue's default matrix, custom ones, bad ones."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import pytest
from pydantic import ValidationError

from engine.domain import ticket as tk
from engine.domain.base import CommandMeta
from engine.domain.priority import Level, Priority, PriorityMatrix

H, M, L = Level.HIGH, Level.MEDIUM, Level.LOW

# The issue's words: high/high P1; high/medium and medium/high P2; high/low,
# medium/medium, low/high P3; the rest P4.
ISSUE_TABLE = {
    (H, H): Priority.P1,
    (H, M): Priority.P2,
    (M, H): Priority.P2,
    (H, L): Priority.P3,
    (M, M): Priority.P3,
    (L, H): Priority.P3,
    (M, L): Priority.P4,
    (L, M): Priority.P4,
    (L, L): Priority.P4,
}
CELLS = [f"{i.value}/{u.value}" for i in Level for u in Level]


@pytest.mark.parametrize(("impact", "urgency"), list(ISSUE_TABLE))
def test_the_default_matrix_is_the_issues(impact: Level, urgency: Level) -> None:
    assert PriorityMatrix().priority(impact, urgency) == ISSUE_TABLE[(impact, urgency)]


def test_the_issue_table_covers_every_combination() -> None:
    assert len(ISSUE_TABLE) == len(Level) ** 2


def test_a_custom_matrix_drives_triage() -> None:
    # A desk where urgency alone decides.
    by_urgency = {H: Priority.P1, M: Priority.P2, L: Priority.P3}
    matrix = PriorityMatrix(
        cells={f"{i.value}/{u.value}": by_urgency[u] for i in Level for u in Level}
    )
    assert matrix.priority(L, H) == Priority.P1
    assert matrix.priority(H, L) == Priority.P3

    cmd = tk.OpenTicket(
        ticket_id=UUID("00000000-0000-4000-8000-000000000001"),
        title="t",
        description="d",
        requester_id="requester:rita",
        channel=tk.Channel.WEB,
        category="c",
        impact=L,
        urgency=H,
    )
    meta = CommandMeta(
        actor="requester:rita",
        occurred_at=datetime(2026, 3, 2, tzinfo=UTC),
        correlation_id=UUID("00000000-0000-4000-8000-0000000000aa"),
    )
    triaged = tk.open_ticket(cmd, meta, matrix)[1]
    assert isinstance(triaged, tk.TicketTriaged)
    assert (triaged.matrix_priority, triaged.priority) == (Priority.P1, Priority.P1)


@pytest.mark.parametrize("missing", CELLS)
def test_a_matrix_missing_a_cell_is_refused(missing: str) -> None:
    cells = {cell: Priority.P4 for cell in CELLS if cell != missing}
    with pytest.raises(ValueError, match=f"priority matrix misses {missing}"):
        PriorityMatrix(cells=cells)


def test_a_matrix_with_an_unknown_priority_is_refused() -> None:
    cells: dict[str, str] = dict.fromkeys(CELLS, "P4")
    cells["high/high"] = "P0"
    with pytest.raises(ValidationError):
        PriorityMatrix.model_validate({"cells": cells})


def test_the_matrix_is_frozen() -> None:
    matrix = PriorityMatrix()
    with pytest.raises(ValidationError):
        matrix.cells = {}  # type: ignore[misc]
