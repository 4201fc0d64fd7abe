"""Health, event schemas and the event stream for clients that cannot speak Kafka."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import JSONResponse, StreamingResponse

from api.deps import PrincipalDep, RuntimeDep
from engine.app.permissions import may_read_raw_stream
from engine.stores.jsonschema import all_schemas
from engine.stores.kafka.errors import CacheDivergedError

router = APIRouter(tags=["system"])


@router.get(
    "/health",
    response_model=dict[str, Any],
    responses={
        503: {
            "description": "diverged: the event store stopped serving its history (the "
            "Kafka topic no longer holds what this server cached); `diverged` names the "
            "offsets, the cause and the fix",
            "content": {"application/problem+json": {}},
        }
    },
)
def health(runtime: RuntimeDep) -> Any:
    """Liveness, the log's head position, and each view's position and lag."""
    store = "kafka" if runtime.settings.uses_kafka else "sqlite"
    diverged = runtime.store_diverged()
    if isinstance(diverged, CacheDivergedError):
        # A problem (RFC 9457) like every error answer, with the health as members.
        body: dict[str, Any] = {
            "type": "about:blank",
            "title": "Service Unavailable",
            "status": 503,
            "detail": str(diverged),
            "health": "diverged",
            "store": store,
            "position": getattr(runtime.app.recorder, "head", 0),
            "diverged": diverged.divergence.as_dict(),
        }
        return JSONResponse(body, status_code=503, media_type="application/problem+json")
    head = runtime.app.recorder.max_notification_id() or 0
    body = {"status": "ok", "store": store, "position": head}
    if runtime.views is not None:
        body["views"] = runtime.views.health()
    return body


@router.get("/schemas")
def list_schemas() -> dict[str, Any]:
    """The JSON Schema of every event type's envelope, by type name."""
    return all_schemas()


@router.get("/schemas/{type_name}")
def get_schema(type_name: Annotated[str, Path(max_length=100)]) -> dict[str, Any]:
    """The JSON Schema of one event type's envelope."""
    schemas = all_schemas()
    if type_name not in schemas:
        raise HTTPException(404, f"no event type named {type_name!r}")
    return schemas[type_name]


@router.get("/events", response_class=StreamingResponse)
def events(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
) -> StreamingResponse:
    """Notifications after a position, as JSON lines: the Kafka envelope, one per line."""
    runtime.refuse_if_diverged()
    may_read_raw_stream(principal)
    notifications = runtime.app.recorder.select_notifications(
        after, limit, inclusive_of_start=False
    )

    def lines() -> Iterator[bytes]:
        for n in notifications:
            yield b'{"position":%d,"event":' % n.id + n.state + b"}\n"

    return StreamingResponse(lines(), media_type="application/x-ndjson")
