"""What inventory does with the events it consumes, and the consumer that binds them to topics:
a signed lease makes the unit leased, an ended lease makes it available again."""

from __future__ import annotations

import logging

from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.consumer import Handler, TopicHandlers
from fabkit.events import CloudEvent
from fabkit.metrics import counter
from fabkit.runtime import ConsumerSpec
from inventory.events.consumed import (
    ENDED,
    IGNORED_LEASE_TYPES,
    LEASE_TOPIC,
    SIGNED,
    LeaseChanged,
    LeaseView,
)
from inventory.events.published import DLQ_TOPIC
from inventory.service import leases, visits
from inventory.settings import InventorySettings

log = logging.getLogger(__name__)

UNMATCHED = counter(
    "inventory_lease_events_unmatched_total",
    "Lease events about a unit this inventory does not have (nothing to apply)",
    ("type",),
)


def lease_handlers(settings: InventorySettings) -> dict[str, Handler]:
    """Handlers of leasing's lease events, by event type."""

    async def on_signed(session: AsyncSession, event: CloudEvent) -> None:
        lease = LeaseChanged.model_validate(event.data).lease
        outcome = await leases.apply_lease_signed(session, settings, lease.unit_id, lease.lease_id)
        await visits.record_tenant(session, lease.unit_id, lease.artisan_id)
        _report(outcome, event, lease)

    async def on_ended(session: AsyncSession, event: CloudEvent) -> None:
        lease = LeaseChanged.model_validate(event.data).lease
        outcome = await leases.apply_lease_ended(session, settings, lease.unit_id, lease.lease_id)
        await visits.clear_tenant(session, lease.unit_id, lease.artisan_id)
        _report(outcome, event, lease)

    return {SIGNED: on_signed, ENDED: on_ended}


def consumer_specs(settings: InventorySettings) -> list[ConsumerSpec]:
    """Inventory's one consumer group: lease events, poison to inventory's dead-letter topic."""
    return [
        ConsumerSpec(
            group_id=settings.consumer_group,
            topics={
                LEASE_TOPIC: TopicHandlers(
                    handlers=lease_handlers(settings), ignored=IGNORED_LEASE_TYPES
                )
            },
            dlq_topic=DLQ_TOPIC,
        )
    ]


def _report(outcome: str, event: CloudEvent, lease: LeaseView) -> None:
    if outcome == "unknown":
        # Retrying cannot make the unit appear (units are never deleted): counted and logged
        # for an operator rather than retried into the dead-letter topic.
        UNMATCHED.labels(event.type).inc()
        log.warning("%s %s: unit %s is not in inventory", event.type, event.id, lease.unit_id)
    elif outcome == "unchanged":
        log.info("%s %s: unit %s already as the lease says", event.type, event.id, lease.unit_id)
