"""``GET /metrics`` (Prometheus' text format) and the middleware that times every
request by its route template (``/tickets/{ticket_id}``, never the id itself)."""

from __future__ import annotations

import hmac
import time
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import get_principal
from engine.app.metrics import CONTENT_TYPE, Metrics
from engine.app.permissions import authorize
from engine.bootstrap import Runtime

router = APIRouter(tags=["metrics"])


class RequestTimer:
    """Observes each HTTP request's latency, labelled by method, route and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.requests.labels(scope["method"], route, str(status)).observe(
                time.perf_counter() - started
            )


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format"}},
)
async def metrics(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Response:
    """The engine's metrics for Prometheus: for auditors and admins, or a scraper that
    presents the configured ``TICKETING_METRICS_TOKEN`` as its bearer token."""
    runtime: Runtime = request.app.state.runtime
    token = runtime.settings.metrics_token
    scheme, _, presented = (authorization or "").partition(" ")
    scraper = (
        token is not None
        and scheme.lower() == "bearer"
        and hmac.compare_digest(presented.strip().encode(), token.encode())
    )
    if not scraper:
        authorize(await get_principal(request, authorization), "read_metrics")
    body = await run_in_threadpool(runtime.app.metrics.render)
    return Response(body, media_type=CONTENT_TYPE)
