"""Tolerant views of leasing's lease events and what inventory does with them: a signed lease
makes the unit leased, an ended lease makes it available again."""

from __future__ import annotations

import logging

from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.consumer import Handler
from fabkit.events import CloudEvent, ConsumedPayload
from fabkit.metrics import counter
from inventory import service
from inventory.settings import InventorySettings

log = logging.getLogger(__name__)

UNMATCHED = counter(
    "inventory_lease_events_unmatched_total",
    "Lease events about a unit this inventory does not have (nothing to apply)",
    ("type",),
)


class LeaseView(ConsumedPayload):
    lease_id: str
    unit_id: str


class LeaseChanged(ConsumedPayload):
    """leasing.lease.signed.v1 and leasing.lease.ended.v1: only the lease's ids matter here."""

    lease: LeaseView


def lease_handlers(settings: InventorySettings) -> dict[str, Handler]:
    async def on_signed(session: AsyncSession, event: CloudEvent) -> None:
        lease = LeaseChanged.model_validate(event.data).lease
        outcome = await service.apply_lease_signed(session, settings, lease.unit_id, lease.lease_id)
        _report(outcome, event, lease)

    async def on_ended(session: AsyncSession, event: CloudEvent) -> None:
        lease = LeaseChanged.model_validate(event.data).lease
        outcome = await service.apply_lease_ended(session, settings, lease.unit_id, lease.lease_id)
        _report(outcome, event, lease)

    return {
        "leasing.lease.signed.v1": on_signed,
        "leasing.lease.ended.v1": on_ended,
    }


def _report(outcome: str, event: CloudEvent, lease: LeaseView) -> None:
    if outcome == "unknown":
        # Retrying cannot make the unit appear (units are never deleted): counted and logged
        # for an operator rather than retried into the dead-letter topic.
        UNMATCHED.labels(event.type).inc()
        log.warning("%s %s: unit %s is not in inventory", event.type, event.id, lease.unit_id)
    elif outcome == "unchanged":
        log.info("%s %s: unit %s already as the lease says", event.type, event.id, lease.unit_id)
