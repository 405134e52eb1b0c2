"""Kafka entry points: each handler runs in the consumer's transaction, which also records the
event id, so its deliveries and read-model changes commit exactly once with it."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.consumer import Handler, TopicHandlers
from fabkit.events import CloudEvent
from fabkit.runtime import ConsumerSpec
from notifications.events.consumed import (
    APPLICATION_DECIDED,
    ARTISAN_REGISTERED,
    ARTISAN_UPDATED,
    LEASE_OFFERED,
    PROGRAMME_PUBLISHED,
    UNIT_TYPES_IGNORED,
    VACANCY_OPENED,
    ApplicationDecidedIn,
    ArtisanEventIn,
    LeaseOfferedIn,
    ProgrammePublishedIn,
    VacancyOpenedIn,
)
from notifications.service import alerts, guests, read_models
from notifications.settings import NotificationsSettings
from notifications.signals import Signals


def consumer_specs(settings: NotificationsSettings, signals: Signals) -> list[ConsumerSpec]:
    """The one consumer group of notifications: which handler each topic and type goes to."""

    async def vacancy_opened(session: AsyncSession, event: CloudEvent) -> None:
        vacancy = VacancyOpenedIn.model_validate(event.data)
        await alerts.record_vacancy(session, settings, signals, event, vacancy)

    async def artisan_changed(session: AsyncSession, event: CloudEvent) -> None:
        artisan = ArtisanEventIn.model_validate(event.data).artisan
        await read_models.apply_artisan(session, artisan)
        # An account with a guest's address: it takes the guest's searches over.
        await guests.take_over(session, artisan)

    async def programme_published(session: AsyncSession, event: CloudEvent) -> None:
        await read_models.apply_programme(session, ProgrammePublishedIn.of(event.data))

    async def application_decided(session: AsyncSession, event: CloudEvent) -> None:
        decided = ApplicationDecidedIn.model_validate(event.data)
        await alerts.record_applicant_message(session, signals, event, decided)

    async def lease_offered(session: AsyncSession, event: CloudEvent) -> None:
        offered = LeaseOfferedIn.model_validate(event.data)
        await alerts.record_applicant_message(session, signals, event, offered)

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
            APPLICATION_DECIDED, application_decided, "leasing.application."
        ),
        settings.lease_topic: only(LEASE_OFFERED, lease_offered, "leasing.lease."),
    }
    return [
        ConsumerSpec(group_id=settings.consumer_group, topics=topics, dlq_topic=settings.dlq_topic)
    ]
