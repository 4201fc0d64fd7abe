"""The application's refusals (beside the domain's own, in engine.domain.base)."""

from __future__ import annotations

from engine.domain.base import DomainError


class ConflictError(DomainError):
    """Another command changed the same aggregate first; retry with fresh state."""


class PreconditionFailedError(DomainError):
    """The client's If-Match does not match the resource's current ETag."""


class IdempotencyKeyReusedError(DomainError):
    """The Idempotency-Key was used before for a different request."""
