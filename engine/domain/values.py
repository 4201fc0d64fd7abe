"""Validated text values that commands carry: names, titles, free text, reasons and
queue names, each with its length bounds, and refused when not valid Unicode."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, StringConstraints


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
