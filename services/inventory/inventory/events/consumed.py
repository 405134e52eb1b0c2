"""What inventory consumes: leasing's lease events (a signed lease closes the vacancy, an
ended lease reopens it)."""

from __future__ import annotations

from fabkit.consumer import TopicHandlers
from fabkit.runtime import ConsumerSpec
from inventory.events.handlers import lease_handlers
from inventory.events.published import DLQ_TOPIC
from inventory.settings import InventorySettings

LEASE_TOPIC = "leasing.lease.events"
# Parts of leasing's lease contract inventory has no use for.
IGNORED_LEASE_TYPES = frozenset({"leasing.lease.offered.v1", "leasing.lease.renewed.v1"})


def consumer_specs(settings: InventorySettings) -> list[ConsumerSpec]:
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
