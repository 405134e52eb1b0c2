"""Notifications business metrics: deliveries by outcome, vacancy-to-delivery latency, backlog."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.metrics import counter, gauge, histogram, personal_data_oldest
from notifications import repository as repo
from notifications.domain import DeliveryStatus

log = logging.getLogger(__name__)

DELIVERIES = counter(
    "notifications_deliveries_total",
    "Delivery attempts by channel and outcome (delivered, retry, dead, aborted, gone, refused, "
    "cancelled)",
    ("channel", "outcome"),
)
VACANCY_TO_DELIVERY = histogram(
    "notifications_vacancy_to_delivery_seconds",
    "From the vacancy opening (its opened_at) to the instant alert being delivered",
    ("channel",),
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0),
)
RETRIES_SCHEDULED = counter(
    "notifications_delivery_retries_scheduled_total",
    "Failed attempts given another one later, by channel (the wait comes from the retry schedule "
    "or a receiver's Retry-After)",
    ("channel",),
)
RETRY_WAIT = histogram(
    "notifications_delivery_retry_wait_seconds",
    "The wait scheduled before a delivery's next attempt",
    ("channel",),
    buckets=(1.0, 5.0, 30.0, 300.0, 1800.0, 7200.0, 18_000.0, 36_000.0, 86_400.0),
)
WEBHOOKS_DISABLED = counter(
    "notifications_webhooks_disabled_total",
    "Saved searches switched off by their webhook: gone (410), receiver (webhook-delivery: "
    "disable) or failing (every attempt failed for delivery_disable_after_failing_s)",
    ("reason",),
)
VISIT_BOOKINGS = counter(
    "notifications_visit_bookings_total",
    "Workshop visit bookings by outcome: booked, full (refused, no place left), cancelled (by "
    "the person's link)",
    ("outcome",),
)
VISIT_PLACES = gauge(
    "notifications_visit_places_booked",
    "Places booked on each site's upcoming visits (set on each booking and cancellation)",
    ("site_id",),
)
MATCH_DURATION = histogram(
    "notifications_match_duration_seconds", "Matching one vacancy against the saved searches"
)
PENDING = gauge("notifications_deliveries_pending", "Deliveries waiting to be sent or being sent")
DEAD = gauge("notifications_deliveries_dead", "Deliveries that failed their last attempt")
# One name across services (the job label tells them apart); refreshed by the retention job and
# on a timer (service/retention.py), from the retention clock.
PERSONAL_DATA_OLDEST = personal_data_oldest()


def observe_delivered(channel: str, occurred_at: datetime | None, now: datetime) -> None:
    DELIVERIES.labels(channel, "delivered").inc()
    if occurred_at is not None:
        if occurred_at.tzinfo is None:
            occurred_at = occurred_at.replace(tzinfo=UTC)
        VACANCY_TO_DELIVERY.labels(channel).observe(max((now - occurred_at).total_seconds(), 0))


async def refresh_gauges(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        counts = await repo.count_by_status(session)
    PENDING.set(
        counts.get(DeliveryStatus.PENDING.value, 0) + counts.get(DeliveryStatus.SENDING.value, 0)
    )
    DEAD.set(counts.get(DeliveryStatus.DEAD.value, 0))
