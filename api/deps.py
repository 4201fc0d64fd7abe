"""Dependencies shared by every router, as Annotated aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.responses import command_response
from engine.app.desk import Desk
from engine.app.permissions import Principal
from engine.app.runner import Idempotency
from engine.bootstrap import Runtime
from engine.domain.commands.base import Command

MAX_IDEMPOTENCY_KEY = 200
MAX_AUTHORIZATION = 500  # "Bearer " and a key: ours are far shorter
TIME_PARAMETER = (
    "ISO 8601 date and time with its UTC offset (e.g. 2026-11-24T09:00:00Z),"
    " between 0001-01-02 and 9999-12-30 UTC"
)


def invalid(where: str, name: str, reason: str) -> RequestValidationError:
    """A refused parameter (``where``: query, path or header), answered as every 422 is."""
    return RequestValidationError([{"loc": (where, name), "msg": reason, "type": "value_error"}])


async def get_runtime(request: Request) -> Runtime:
    # async: no I/O here, so no hop through the thread pool.
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_desk(request: Request) -> Desk:
    # The request itself, not RuntimeDep: each sub-dependency costs every request.
    runtime: Runtime = request.app.state.runtime
    return runtime.desk


DeskDep = Annotated[Desk, Depends(get_desk)]


async def require_serving(request: Request) -> None:
    """Refuse (503, naming the cause and the fix) while the event store does not serve
    its history: a Kafka cache that diverged from its topic answers nothing, so that
    no command and no read ever sees a mixture of two histories."""
    runtime: Runtime = request.app.state.runtime
    runtime.refuse_if_diverged()


ServingDep = Depends(require_serving)


async def get_principal(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
) -> Principal:
    if not authorization:
        raise HTTPException(401, "missing Authorization: Bearer <api key>")
    if len(authorization) > MAX_AUTHORIZATION:  # a credential that cannot be one: 401, not 422
        raise HTTPException(401, "unknown or revoked API key")
    scheme, _, key = authorization.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise HTTPException(401, "Authorization must be 'Bearer <api key>'")
    runtime: Runtime = request.app.state.runtime
    # A remembered key needs no I/O; only a look-up in the store goes to the thread pool.
    principal = runtime.known_principal(key.strip())
    if principal is None:
        principal = await run_in_threadpool(runtime.principal_for, key.strip())
    if principal is None:
        raise HTTPException(401, "unknown or revoked API key")
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_idempotency(
    request: Request,
    idempotency_key: Annotated[str | None, Header(max_length=MAX_IDEMPOTENCY_KEY)] = None,
) -> Idempotency | None:
    if idempotency_key is None:
        return None
    key = idempotency_key.strip()
    if not key or not key.isprintable():
        raise HTTPException(422, "Idempotency-Key must be 1-200 printable characters")
    body = await request.body()
    return Idempotency(key, request.method, request.url.path, body)


IdempotencyDep = Annotated[Idempotency | None, Depends(get_idempotency)]
IfMatch = Annotated[str | None, Header(max_length=100)]


class Sender:
    """Sends one request's command as its caller, with the request's Idempotency-Key and
    If-Match, and answers it: a route is then one line."""

    def __init__(
        self, desk: Desk, principal: Principal, idem: Idempotency | None, if_match: str | None
    ) -> None:
        self.desk, self.principal, self.idem, self.if_match = desk, principal, idem, if_match

    def __call__(self, command: Command) -> JSONResponse:
        result = self.desk.send(self.principal, command, idem=self.idem, if_match=self.if_match)
        return command_response(result)


async def get_sender(
    desk: DeskDep, principal: PrincipalDep, idem: IdempotencyDep, if_match: IfMatch = None
) -> Sender:
    return Sender(desk, principal, idem, if_match)


async def get_unconditional_sender(
    desk: DeskDep, principal: PrincipalDep, idem: IdempotencyDep
) -> Sender:
    return Sender(desk, principal, idem, None)


SendDep = Annotated[Sender, Depends(get_sender)]
"""For commands on a resource with an ETag (If-Match makes them conditional)."""
SendNewDep = Annotated[Sender, Depends(get_unconditional_sender)]
"""For commands that create or configure (no If-Match)."""
