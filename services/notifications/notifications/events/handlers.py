"""Kafka entry points: each handler runs in the consumer's transaction, which also records the
event id, so its deliveries and read-model changes commit exactly once with it."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.consumer import Handler, TopicHandlers
from fabkit.events import CloudEvent
from fabkit.runtime import ConsumerSpec
from notifications.events.consumed import (
    APPEAL_ANSWERED,
    APPLICATION_DECIDED,
    ARTISAN_ERASED,
    ARTISAN_REGISTERED,
    ARTISAN_UPDATED,
    CALL_CLOSED,
    CALL_DECIDED,
    CALL_RESULTS_PUBLISHED,
    INACTIVITY_WARNED,
    LEASE_OFFERED,
    PROGRAMME_PUBLISHED,
    UNIT_TYPES_IGNORED,
    VACANCY_OPENED,
    VISIT_SLOT_CANCELLED,
    VISIT_SLOT_PUBLISHED,
    VISIT_SLOT_UPDATED,
    AppealAnsweredIn,
    ApplicationDecidedIn,
    ArtisanErasedIn,
    ArtisanEventIn,
    CallClosedIn,
    CallDecidedIn,
    CallResultsPublishedIn,
    InactivityWarnedIn,
    LeaseOfferedIn,
    ProgrammePublishedIn,
    VacancyOpenedIn,
    VisitSlotEventIn,
)
from notifications.service import (
    alerts,
    calls,
    guests,
    inactivity,
    privacy,
    read_models,
    results,
    visits,
)
from notifications.settings import NotificationsSettings
from notifications.signals import Signals


def consumer_specs(settings: NotificationsSettings, signals: Signals) -> list[ConsumerSpec]:
    """The one consumer group of notifications: which handler each topic and type goes to."""

    async def vacancy_opened(session: AsyncSession, event: CloudEvent) -> None:
        vacancy = VacancyOpenedIn.model_validate(event.data)
        await alerts.record_vacancy(session, settings, signals, event, vacancy)

    async def artisan_changed(session: AsyncSession, event: CloudEvent) -> None:
        artisan = ArtisanEventIn.model_validate(event.data).artisan
        # An erased artisan's old event (replayed) is ignored: the copy stays gone.
        if not await privacy.apply_artisan_event(session, artisan):
            return
        # An account with a guest's address: it takes the guest's searches over.
        await guests.take_over(session, artisan)

    async def artisan_erased(session: AsyncSession, event: CloudEvent) -> None:
        await privacy.apply_erased(session, ArtisanErasedIn.model_validate(event.data))

    async def programme_published(session: AsyncSession, event: CloudEvent) -> None:
        await read_models.apply_programme(session, ProgrammePublishedIn.of(event.data))

    async def application_decided(session: AsyncSession, event: CloudEvent) -> None:
        decided = ApplicationDecidedIn.model_validate(event.data)
        await alerts.record_applicant_message(session, signals, event, decided)

    async def lease_offered(session: AsyncSession, event: CloudEvent) -> None:
        offered = LeaseOfferedIn.model_validate(event.data)
        await alerts.record_applicant_message(session, signals, event, offered)

    async def call_results_published(session: AsyncSession, event: CloudEvent) -> None:
        published = CallResultsPublishedIn.model_validate(event.data)
        await results.record_results(session, signals, event, published)

    async def appeal_answered(session: AsyncSession, event: CloudEvent) -> None:
        answered = AppealAnsweredIn.model_validate(event.data)
        await results.record_appeal_answer(session, signals, event, answered)

    async def call_closed(session: AsyncSession, event: CloudEvent) -> None:
        await calls.record_closing(session, signals, event, CallClosedIn.model_validate(event.data))

    async def call_decided(session: AsyncSession, event: CloudEvent) -> None:
        decided = CallDecidedIn.model_validate(event.data)
        await calls.record_decision(session, signals, event, decided)

    async def inactivity_warned(session: AsyncSession, event: CloudEvent) -> None:
        warned = InactivityWarnedIn.model_validate(event.data)
        await inactivity.record_warning(session, settings, signals, event, warned)

    async def visit_slot(session: AsyncSession, event: CloudEvent) -> None:
        await visits.apply_slot_event(
            session, event.type, VisitSlotEventIn.model_validate(event.data)
        )

    def only(type_: str, handler: Handler, namespace: str) -> TopicHandlers:
        return TopicHandlers(handlers={type_: handler}, ignored_prefixes=(namespace,))

    topics = {
        settings.unit_topic: TopicHandlers(
            handlers={VACANCY_OPENED: vacancy_opened}, ignored=UNIT_TYPES_IGNORED
        ),
        settings.artisan_topic: TopicHandlers(
            handlers={
                ARTISAN_REGISTERED: artisan_changed,
                ARTISAN_UPDATED: artisan_changed,
                ARTISAN_ERASED: artisan_erased,
            },
            ignored_prefixes=("leasing.artisan.",),
            # Names and e-mail addresses: a dead letter points at the record (deploy/topics.json
            # `personal_data`; docs/privacy.md "Kafka").
            personal_data=True,
        ),
        settings.programme_topic: only(
            PROGRAMME_PUBLISHED, programme_published, "leasing.programme."
        ),
        settings.application_topic: only(
            APPLICATION_DECIDED, application_decided, "leasing.application."
        ),
        settings.lease_topic: only(LEASE_OFFERED, lease_offered, "leasing.lease."),
        # A call's life and its appeals share one topic (key: call id); what is not handled
        # here is skipped, never dead-lettered.
        settings.call_topic: TopicHandlers(
            handlers={
                CALL_CLOSED: call_closed,
                CALL_DECIDED: call_decided,
                CALL_RESULTS_PUBLISHED: call_results_published,
                APPEAL_ANSWERED: appeal_answered,
            },
            ignored_prefixes=("leasing.call.", "leasing.appeal."),
        ),
        # Ids and dates only (not a personal-data topic); other privacy events are skipped.
        settings.privacy_topic: TopicHandlers(
            handlers={INACTIVITY_WARNED: inactivity_warned},
            ignored_prefixes=("leasing.artisan.", "leasing.privacy."),
        ),
    }
    if settings.visit_slot_topic:
        # Inventory's visit slots (key: slot id); other slot events are skipped.
        topics[settings.visit_slot_topic] = TopicHandlers(
            handlers={
                VISIT_SLOT_PUBLISHED: visit_slot,
                VISIT_SLOT_UPDATED: visit_slot,
                VISIT_SLOT_CANCELLED: visit_slot,
            },
            ignored_prefixes=("inventory.visit_slot.",),
        )
    return [
        ConsumerSpec(group_id=settings.consumer_group, topics=topics, dlq_topic=settings.dlq_topic)
    ]
