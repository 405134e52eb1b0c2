"""Applicants told about their call for applications: its closing (their rank in the frozen
ranking) and its decision, by e-mail and in their feed. These run inside the consumer's
transaction, which also records the event id, so the deliveries commit exactly once with it."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.events import CloudEvent
from notifications.contracts import (
    CallClosed,
    CallClosedMessage,
    CallDecided,
    CallDecidedMessage,
)
from notifications.domain import Channel, DeliveryKind
from notifications.events.consumed import CallClosedIn, CallDecidedIn
from notifications.service import staging
from notifications.service.common import now
from notifications.service.staging import Row
from notifications.signals import Signals

CHANNELS = [Channel.EMAIL, Channel.FEED]


async def _stage(
    session: AsyncSession, signals: Signals, messages: list[staging.Message]
) -> list[Row]:
    at = now()
    rows: list[Row] = []
    feed: list[Row] = []
    for message in messages:
        deliveries, items = staging.rows_for(message, CHANNELS, at)
        rows += deliveries
        feed += items
    await staging.write(session, rows, feed)
    staging.after_commit(session, signals, rows)
    return rows


async def record_closing(
    session: AsyncSession, signals: Signals, event: CloudEvent, data: CallClosedIn
) -> list[Row]:
    """One message per ranked applicant: their own rank among how many (never another's)."""
    among = len(data.ranking)
    messages = [
        staging.Message(
            event_id=event.id,
            recipient_key=f"artisan:{line.artisan_id}",
            artisan_id=line.artisan_id,
            subscription_id=None,
            kind=DeliveryKind.CALL_CLOSED,
            payload=CallClosedMessage(
                timestamp=event.time,
                data=CallClosed(
                    call_id=data.call.call_id,
                    unit_id=data.call.unit_id,
                    application_id=line.application_id,
                    rank=line.rank,
                    ranked_among=among,
                    score=line.score,
                    max_score=line.max_score,
                    closed_at=data.closed_at,
                ),
            ).body(),
            title=f"Appel à candidatures clos : vous êtes classé(e) {line.rank} sur {among}",
        )
        for line in data.ranking
    ]
    return await _stage(session, signals, messages)


async def record_decision(
    session: AsyncSession, signals: Signals, event: CloudEvent, data: CallDecidedIn
) -> list[Row]:
    """One message per ranked applicant: the unit leased (to them or another), or nobody
    chosen, with the reason."""
    messages = []
    for line in data.ranking:
        chosen = data.outcome == "leased" and line.application_id == data.application_id
        title = (
            "Appel à candidatures : le bail vous est attribué"
            if chosen
            else "Appel à candidatures : la décision est prise"
        )
        messages.append(
            staging.Message(
                event_id=event.id,
                recipient_key=f"artisan:{line.artisan_id}",
                artisan_id=line.artisan_id,
                subscription_id=None,
                kind=DeliveryKind.CALL_DECIDED,
                payload=CallDecidedMessage(
                    timestamp=event.time,
                    data=CallDecided(
                        call_id=data.call.call_id,
                        unit_id=data.call.unit_id,
                        application_id=line.application_id,
                        outcome=data.outcome,
                        chosen=chosen,
                        reason=data.reason,
                        decided_at=data.decided_at,
                    ),
                ).body(),
                title=title,
            )
        )
    return await _stage(session, signals, messages)
