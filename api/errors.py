"""One place that turns every error into application/problem+json (RFC 9457)."""

from __future__ import annotations

import logging
from typing import Any

from eventsourcing.persistence import OperationalError, PersistenceError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine.app.errors import (
    ConflictError,
    IdempotencyKeyReusedError,
    PreconditionFailedError,
)
from engine.domain.base import (
    DomainError,
    InvalidTransitionError,
    NotFoundError,
    PermissionDeniedError,
    RuleViolationError,
)
from engine.stores.kafka.errors import CacheDivergedError

PROBLEM = "application/problem+json"
log = logging.getLogger("ticketing.api")
# On SQLite a failed commit records nothing; with Kafka, a broker may commit a
# transaction whose confirmation never arrives. Either way a retry with the same key is safe.
_NOT_CONFIRMED = (
    "the command was not confirmed (retry it with the same Idempotency-Key: it is recorded"
    " at most once)"
)

TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    412: "Precondition failed",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    500: "Internal server error",
    503: "Service unavailable",
    504: "Gateway timeout",
}


class FieldError(BaseModel):
    field: str
    reason: str


class Problem(BaseModel):
    """RFC 9457 problem details, the body of every error."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = None
    allowed: list[str] | None = Field(default=None, description="actions allowed now (409)")
    state: str | None = None


def _documented(description: str) -> dict[str, Any]:
    return {
        "model": Problem,
        "description": description,
        "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


# Every route documents its errors as problem+json (FastAPI's own 422 is replaced).
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: _documented("invalid input, naming the field and the reason"),
    "4XX": _documented("a client error"),
    "5XX": _documented(
        "the server could not confirm the command: retry it with the same Idempotency-Key,"
        " which records it at most once"
    ),
}


def _unconfirmed(request: Request) -> str:
    """What is true of a request that failed on the server: a command may or may not
    have been recorded; a query recorded nothing and may simply be asked again."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return "the query was not answered and changed nothing; ask again"
    return _NOT_CONFIRMED


def problem(
    status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {
        "type": "about:blank",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        **extra,
    }
    if status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _field(loc: tuple[Any, ...]) -> str:
    if len(loc) >= 1 and loc[0] == "body" and all(isinstance(p, int) for p in loc[1:]):
        return "body"  # a JSON syntax error: the location is a character offset
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _field(tuple(e.get("loc", ()))), "reason": str(e.get("msg", "invalid"))}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['reason']}" for e in errors)
        return problem(422, detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Starlette's own headers (a 405's Allow, say) are kept.
        return problem(exc.status_code, str(exc.detail), dict(exc.headers or {}))

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        match exc:
            case InvalidTransitionError():
                return problem(409, str(exc), state=exc.state, allowed=exc.allowed)
            case NotFoundError():
                return problem(404, str(exc))
            case PermissionDeniedError():
                return problem(403, str(exc))
            case ConflictError():
                return problem(409, str(exc))
            case PreconditionFailedError():
                return problem(412, str(exc))
            case IdempotencyKeyReusedError():
                return problem(
                    422, str(exc), errors=[{"field": "Idempotency-Key", "reason": str(exc)}]
                )
            case RuleViolationError():
                return problem(409, str(exc))
        return problem(400, str(exc))

    @app.exception_handler(CacheDivergedError)
    async def _diverged(request: Request, exc: CacheDivergedError) -> JSONResponse:
        # Nothing of that history is served: the cause, the offsets and the fix.
        return problem(503, str(exc), diverged=exc.divergence.as_dict())

    @app.exception_handler(OperationalError)
    async def _unavailable(request: Request, exc: OperationalError) -> JSONResponse:
        return problem(503, f"the event store is unavailable; {_unconfirmed(request)}: {exc}")

    @app.exception_handler(PersistenceError)
    async def _persistence(request: Request, exc: PersistenceError) -> JSONResponse:
        reason = _unconfirmed(request)
        return problem(503, f"the event store refused the operation; {reason}: {exc}")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem(500, f"internal error; {_unconfirmed(request)}")

    @app.exception_handler(TimeoutError)
    async def _timeout(request: Request, exc: TimeoutError) -> JSONResponse:
        return problem(504, str(exc) or "timed out")
