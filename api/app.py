"""The FastAPI application: routers, error handling and body guards; no business rules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import errors
from api.deps import ServingDep
from api.guards import BodyGuard
from api.metrics import RequestTimer
from api.metrics import router as metrics_router
from api.routers import directory, escalations, integrity, sla, system, tickets, views
from engine.bootstrap import Runtime


def create_app(runtime: Runtime) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Close the stores on a graceful shutdown (uvicorn re-raises SIGTERM after it).
        yield
        runtime.close()

    app = FastAPI(
        lifespan=lifespan,
        title="ticketing",
        version="0.1.0",
        summary="Event-sourced ticket lifecycle engine for service desks",
    )
    app.state.runtime = runtime
    errors.install(app)
    # Every route that serves the history is refused while the store does not serve it
    # (GET /events says so itself; health and schemas answer regardless).
    for router in (views, tickets, escalations, directory, integrity, sla):
        app.include_router(
            router.router, responses=errors.PROBLEM_RESPONSES, dependencies=[ServingDep]
        )
    app.include_router(system.router, responses=errors.PROBLEM_RESPONSES)
    app.include_router(metrics_router, responses=errors.PROBLEM_RESPONSES)
    app.add_middleware(BodyGuard, max_bytes=runtime.settings.max_body_bytes)
    # Outermost: a request refused by the body guard is timed too.
    app.add_middleware(RequestTimer, metrics=runtime.app.metrics)
    return app
