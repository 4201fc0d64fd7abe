"""The service desk's use cases, one method per command.

Each method loads what it needs, asks the domain to decide, and commits the events
in one atomic append through ``TicketingApp.run`` (which also makes commands with an
Idempotency-Key exactly-once). Time comes from the injected clock, never the domain.
The methods live in ``engine.app.usecases``, one module per aggregate.
"""

from __future__ import annotations

from engine.app.usecases.directory import DirectoryUseCases
from engine.app.usecases.escalations import EscalationUseCases
from engine.app.usecases.tickets import TicketUseCases


class Desk(TicketUseCases, EscalationUseCases, DirectoryUseCases):
    """Commands and ticket queries for the API and the CLI."""
