"""The handler table: every command type and its row (engine.app.runner.Handler).

Adding a command adds a model and a decider (engine.domain.commands), one row here and
one route line in api/ (see docs/architecture.md).
"""

from __future__ import annotations

from typing import Any

from engine.app.handlers import directory, escalations, service_levels, tickets
from engine.app.runner import Handler
from engine.domain.commands.base import Command

HANDLERS: dict[type[Command], Handler[Any, Any]] = {
    **tickets.HANDLERS,
    **escalations.HANDLERS,
    **directory.HANDLERS,
    **service_levels.HANDLERS,
}
