"""Priority from impact x urgency: the ITIL matrix, configurable per deployment."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class Level(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class Priority(StrEnum):
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"


def _default_cells() -> dict[str, Priority]:
    high, medium, low = Level.HIGH, Level.MEDIUM, Level.LOW
    table = {
        (high, high): Priority.P1,
        (high, medium): Priority.P2,
        (medium, high): Priority.P2,
        (high, low): Priority.P3,
        (medium, medium): Priority.P3,
        (low, high): Priority.P3,
        (medium, low): Priority.P4,
        (low, medium): Priority.P4,
        (low, low): Priority.P4,
    }
    return {f"{impact.value}/{urgency.value}": p for (impact, urgency), p in table.items()}


class PriorityMatrix(BaseModel):
    """Maps ``"impact/urgency"`` to a priority; every combination must be present."""

    model_config = ConfigDict(frozen=True)

    cells: dict[str, Priority] = {}

    def model_post_init(self, __context: object) -> None:
        if not self.cells:
            object.__setattr__(self, "cells", _default_cells())
        expected = {f"{i.value}/{u.value}" for i in Level for u in Level}
        missing = expected - set(self.cells)
        if missing:
            raise ValueError(f"priority matrix misses {', '.join(sorted(missing))}")

    def priority(self, impact: Level, urgency: Level) -> Priority:
        return self.cells[f"{impact.value}/{urgency.value}"]
