"""Kafka entry points: each handler runs in the consumer's transaction, which also records the
event id, so its deliveries and read-model changes commit exactly once with it."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.consumer import Handler, TopicHandlers
from fabkit.events import CloudEvent
from fabkit.runtime import ConsumerSpec
from notifications import service
from notifications.events.consumed import (
    APPLICATION_DECIDED,
    ARTISAN_REGISTERED,
    ARTISAN_UPDATED,
    LEASE_OFFERED,
    PROGRAMME_PUBLISHED,
    UNIT_TYPES_IGNORED,
    VACANCY_OPENED,
    ArtisanEventIn,
    VacancyOpenedIn,
    programme_published_of,
)
from notifications.settings import NotificationsSettings
from notifications.signals import Signals


def consumer_specs(settings: NotificationsSettings, signals: Signals) -> list[ConsumerSpec]:
    async def vacancy_opened(session: AsyncSession, event: CloudEvent) -> None:
        vacancy = VacancyOpenedIn.model_validate(event.data)
        await service.record_vacancy(session, settings, signals, event, vacancy)

    async def artisan_changed(session: AsyncSession, event: CloudEvent) -> None:
        await service.apply_artisan(session, ArtisanEventIn.model_validate(event.data).artisan)

    async def programme_published(session: AsyncSession, event: CloudEvent) -> None:
        await service.apply_programme(session, programme_published_of(event.data))

    async def applicant_message(session: AsyncSession, event: CloudEvent) -> None:
        await service.record_applicant_message(session, signals, event)

    def only(type_: str, handler: Handler, namespace: str) -> TopicHandlers:
        return TopicHandlers(handlers={type_: handler}, ignored_prefixes=(namespace,))

    topics = {
        settings.unit_topic: TopicHandlers(
            handlers={VACANCY_OPENED: vacancy_opened}, ignored=UNIT_TYPES_IGNORED
        ),
        settings.artisan_topic: TopicHandlers(
            handlers={ARTISAN_REGISTERED: artisan_changed, ARTISAN_UPDATED: artisan_changed},
            ignored_prefixes=("leasing.artisan.",),
        ),
        settings.programme_topic: only(
            PROGRAMME_PUBLISHED, programme_published, "leasing.programme."
        ),
        settings.application_topic: only(
            APPLICATION_DECIDED, applicant_message, "leasing.application."
        ),
        settings.lease_topic: only(LEASE_OFFERED, applicant_message, "leasing.lease."),
    }
    return [
        ConsumerSpec(group_id=settings.consumer_group, topics=topics, dlq_topic=settings.dlq_topic)
    ]
