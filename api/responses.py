"""How command results become HTTP responses."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from api.schemas import CommandPublic
from engine.app.results import CommandResult


def command_response(result: CommandResult) -> JSONResponse:
    if result.extra:
        content = CommandPublic(
            aggregate_id=result.aggregate_id,
            version=result.version,
            position=result.position,
            replayed=result.replayed,
            extra=result.extra,
        ).model_dump(mode="json")
    else:
        # The same JSON as CommandPublic's, without validating what was just made.
        content = {
            "aggregate_id": str(result.aggregate_id),
            "version": result.version,
            "position": result.position,
            "replayed": result.replayed,
            "extra": {},
        }
    return JSONResponse(
        content,
        status_code=result.status_code,
        headers={"ETag": result.etag, "X-Position": str(result.position)},
    )


COMMAND_RESPONSES: dict[int | str, dict[str, object]] = {
    401: {"description": "missing or unknown API key"},
    403: {"description": "the caller's role may not do this"},
    404: {"description": "unknown ticket, escalation, queue or agent"},
    409: {"description": "illegal transition (allowed actions named) or version conflict"},
    412: {"description": "If-Match does not match the current ETag"},
    422: {"description": "invalid body, naming the field and the reason"},
    503: {"description": "the event store is unavailable; nothing was recorded"},
}
