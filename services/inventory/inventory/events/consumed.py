"""Tolerant views of what inventory consumes: leasing's lease events (only the ids it needs)."""

from __future__ import annotations

from fabkit.events import ConsumedPayload

LEASE_TOPIC = "leasing.lease.events"
SIGNED = "leasing.lease.signed.v1"
ENDED = "leasing.lease.ended.v1"
# Parts of leasing's lease contract inventory has no use for.
IGNORED_LEASE_TYPES = frozenset({"leasing.lease.offered.v1", "leasing.lease.renewed.v1"})


class LeaseView(ConsumedPayload):
    lease_id: str
    unit_id: str
    # The tenant, kept on the unit (Unit.tenant_artisan_id) so that it may publish visit slots.
    artisan_id: str | None = None


class LeaseChanged(ConsumedPayload):
    """leasing.lease.signed.v1 and leasing.lease.ended.v1: only the lease's ids matter here."""

    lease: LeaseView
