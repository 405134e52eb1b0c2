"""Applicants told about their call's published results (their rank, points and outcome) and
about the answer to their appeal, by e-mail and in their feed. These run inside the consumer's
transaction, which also records the event id, so the deliveries commit exactly once with it."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.events import CloudEvent
from notifications.contracts import (
    AppealAnswered,
    AppealAnsweredMessage,
    CallResults,
    CallResultsMessage,
)
from notifications.domain import Channel, DeliveryKind
from notifications.events.consumed import AppealAnsweredIn, CallResultsPublishedIn
from notifications.service import staging
from notifications.service.common import now
from notifications.service.staging import Row
from notifications.signals import Signals

CHANNELS = [Channel.EMAIL, Channel.FEED]


async def record_results(
    session: AsyncSession, signals: Signals, event: CloudEvent, data: CallResultsPublishedIn
) -> list[Row]:
    """One message per ranked applicant: their own rank among how many, points and outcome
    (never another applicant's). Returns the delivery rows written."""
    at = now()
    rows: list[Row] = []
    feed: list[Row] = []
    for line in data.results:
        results = CallResults(
            call_id=data.call.call_id,
            unit_id=data.call.unit_id,
            application_id=line.application_id,
            rank=line.rank,
            ranked_among=len(data.results),
            score=line.score,
            max_score=line.max_score,
            outcome=line.outcome,
            appeals_close_at=data.appeals_close_at,
        )
        message = staging.Message(
            event_id=event.id,
            recipient_key=f"artisan:{line.artisan_id}",
            artisan_id=line.artisan_id,
            subscription_id=None,
            kind=DeliveryKind.CALL_RESULTS,
            payload=CallResultsMessage(timestamp=event.time, data=results).body(),
            title=f"Résultats de l'appel : vous êtes classé(e) {line.rank} sur {len(data.results)}",
        )
        deliveries, items = staging.rows_for(message, CHANNELS, at)
        rows += deliveries
        feed += items
    await staging.write(session, rows, feed)
    staging.after_commit(session, signals, rows)
    return rows


async def record_appeal_answer(
    session: AsyncSession, signals: Signals, event: CloudEvent, data: AppealAnsweredIn
) -> list[Row]:
    """The appellant is told the answer to their appeal. Returns the delivery rows written."""
    appeal = data.appeal
    answered = AppealAnswered(
        appeal_id=appeal.appeal_id,
        call_id=appeal.call_id,
        application_id=appeal.application_id,
        outcome=appeal.outcome,
        answer=data.answer,
        answered_at=data.answered_at,
    )
    message = staging.Message(
        event_id=event.id,
        recipient_key=f"artisan:{appeal.artisan_id}",
        artisan_id=appeal.artisan_id,
        subscription_id=None,
        kind=DeliveryKind.APPEAL_ANSWERED,
        payload=AppealAnsweredMessage(timestamp=event.time, data=answered).body(),
        title="Réponse à votre recours",
    )
    rows, feed = staging.rows_for(message, CHANNELS, now())
    await staging.write(session, rows, feed)
    staging.after_commit(session, signals, rows)
    return rows
