"""The bootstrap marker: the first start's admin credential, recorded once at a fixed id."""

from __future__ import annotations

from engine.domain.base import DomainEvent, derived_id

BOOTSTRAP_ID = derived_id("system", "bootstrap")


class SystemBootstrapped(DomainEvent):
    """The first start created the admin credential (recorded once, at a fixed id)."""

    type_name = "SystemBootstrapped"
    aggregate_type = "System"
    admin_principal_id: str
