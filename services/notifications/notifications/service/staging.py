"""Writing the deliveries a message makes (one per channel) and its feed items, in bulk."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.db import on_commit
from fabkit.tracing import current_trace_headers
from notifications import repository as repo
from notifications.domain import Channel, DeliveryKind, DeliveryStatus
from notifications.metrics import observe_delivered
from notifications.service.common import new_id, now
from notifications.signals import Signals

# A row to insert, column name -> value.
Row = dict[str, Any]


@dataclass(frozen=True)
class Message:
    """One message to one recipient, before it is split into one delivery per channel."""

    event_id: str
    recipient_key: str
    artisan_id: str
    subscription_id: str | None
    kind: DeliveryKind
    payload: dict[str, Any]
    title: str
    vacancy_id: str | None = None
    occurred_at: datetime | None = None


def rows_for(
    message: Message, channels: Sequence[Channel], at: datetime, digest_at: datetime | None = None
) -> tuple[list[Row], list[Row]]:
    """One delivery per channel, as rows for `write`, and the feed items: the feed is written
    at once (its delivery is born delivered), the others wait for the worker; with `digest_at`
    the e-mail and webhook wait for the day's digest.

    Every row names every column, so that rows of one batch insert together (an executemany
    takes its columns from the rows) and so that a row reads like the Delivery it becomes.
    """
    deliveries: list[Row] = []
    feed: list[Row] = []
    traceparent = current_trace_headers().get("traceparent")
    for channel in channels:
        digest = digest_at is not None and channel is not Channel.FEED
        delivered = channel is Channel.FEED
        delivery: Row = {
            "id": new_id(),
            "event_id": message.event_id,
            "recipient_key": message.recipient_key,
            "channel": channel.value,
            "kind": message.kind.value,
            "artisan_id": message.artisan_id,
            "subscription_id": message.subscription_id,
            "vacancy_id": message.vacancy_id,
            "payload": message.payload,
            "status": (DeliveryStatus.DELIVERED if delivered else DeliveryStatus.PENDING).value,
            "digest": digest,
            "batch_id": None,
            "attempts": 0,
            "next_attempt_at": digest_at if digest and digest_at else at,
            "claimed_until": None,
            "last_error": None,
            "last_status_code": None,
            "occurred_at": message.occurred_at,
            "traceparent": traceparent,
            "created_at": at,
            "delivered_at": at if delivered else None,
        }
        if delivered:
            feed.append(
                {
                    "artisan_id": message.artisan_id,
                    "delivery_id": delivery["id"],
                    "subscription_id": message.subscription_id,
                    "kind": message.kind.value,
                    "title": message.title[:300],
                    "body": message.payload,
                    "created_at": at,
                    "read_at": None,
                }
            )
        deliveries.append(delivery)
    return deliveries, feed


async def write(session: AsyncSession, deliveries: list[Row], feed: list[Row]) -> None:
    """Write the rows of `rows_for` in bulk (see `repository.insert_deliveries`)."""
    await repo.insert_deliveries(session, deliveries, feed)


def after_commit(session: AsyncSession, signals: Signals, rows: list[Row]) -> None:
    """Once committed: wake the worker, tell the feed streams, count the feed as delivered."""
    feed = [r for r in rows if r["channel"] == Channel.FEED.value]
    signals.after_commit(
        session,
        wake_worker=len(feed) < len(rows),
        feed_for={r["artisan_id"] for r in feed},
    )
    if feed:

        def count() -> None:
            at = now()
            for r in feed:
                observe_delivered(r["channel"], r["occurred_at"], at)

        on_commit(session, count)
