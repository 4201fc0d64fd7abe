"""What in-process API tests share: a ticket body every role may open."""

from __future__ import annotations

from typing import Any

TICKET: dict[str, Any] = {
    "title": "VPN",
    "description": "down",
    "category": "network",
    "impact": "low",
    "urgency": "low",
}
