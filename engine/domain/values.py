"""Validated text values that commands carry: names, titles, free text, reasons and
queue names, each with its length bounds, and refused when not valid Unicode."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints


def _encodable(value: str) -> str:
    """Refuse text that is not valid Unicode (e.g. a lone surrogate sent as \\ud800)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text contains an unpaired surrogate; send valid UTF-8") from None
    return value


Encodable = AfterValidator(_encodable)
_Strip = {"strip_whitespace": True, "min_length": 1}
Name = Annotated[str, StringConstraints(**_Strip, max_length=100), Encodable]
Title = Annotated[str, StringConstraints(**_Strip, max_length=200), Encodable]
Text = Annotated[str, StringConstraints(**_Strip, max_length=10000), Encodable]
Reason = Annotated[str, StringConstraints(**_Strip, max_length=2000), Encodable]
QueueName = Annotated[
    str, StringConstraints(**_Strip, max_length=64, pattern=r"^[\w.\- ]+$"), Encodable
]

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
PrincipalId = Annotated[
    str,
    StringConstraints(pattern=rf"^(agent:)?{_UUID}$"),
    Field(
        description="an opaque principal id: a key holder's UUID (lower case), or "
        "agent:UUID for an agent; never a name or an email, which are personal data"
    ),
]
"""A principal's id as commands name it: opaque, so that it may stay in clear in every
event (``actor``, ``requester_id``, a sealed field's subject) after an erasure."""
