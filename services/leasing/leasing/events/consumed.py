"""What leasing consumes: inventory's unit events, the only source of its read model of units."""

from __future__ import annotations

from fabkit.consumer import TopicHandlers
from fabkit.runtime import ConsumerSpec
from leasing.events.handlers import unit_handlers
from leasing.events.published import DLQ_TOPIC
from leasing.settings import LeasingSettings

UNIT_TOPIC = "inventory.unit.events"


def consumer_specs(settings: LeasingSettings) -> list[ConsumerSpec]:
    return [
        ConsumerSpec(
            group_id=settings.consumer_group,
            topics={UNIT_TOPIC: TopicHandlers(handlers=unit_handlers(settings))},
            dlq_topic=DLQ_TOPIC,
        )
    ]
