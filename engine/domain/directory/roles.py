"""The roles a principal (a person or an API key) acts in."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    REQUESTER = "requester"
    AGENT = "agent"
    LEAD = "lead"
    AUDITOR = "auditor"
    ADMIN = "admin"
