"""Retention: how long notifications keeps each kind of personal data, and the job that applies
it (docs/privacy.md, the register). One run is `apply_retention(sessions, now)`: every rule in
turn, each in short transactions of at most `BATCH` rows (a big table never holds a long lock;
PostgreSQL replicas skip each other's locked rows), a rule's failure reported without stopping
the others. The process that runs the delivery worker calls it every
NOTIFICATIONS_RETENTION_INTERVAL_S; an admin runs it on demand (POST /v1/privacy/retention/run).

Queries live here rather than in `repository.py`, as for erasure (`service/privacy.py`): they
are this job's alone. Logs carry counts only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, exists, func, literal, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.models import OutboxMessage, ProcessedEvent
from fabkit.outbox import prune_published
from notifications.clock import retention_now
from notifications.domain import CLEARED_PAYLOAD, DeliveryStatus, SubscriptionStatus
from notifications.metrics import PERSONAL_DATA_OLDEST
from notifications.models import (
    GUEST_OWNER_PREFIX,
    Artisan,
    Delivery,
    FeedItem,
    GuestConfirmation,
    GuestSubscriber,
    Subscription,
    SubscriptionTerm,
    VisitBooking,
    VisitSlot,
)
from notifications.service.privacy import ERASED_PAYLOAD

log = logging.getLogger(__name__)

Sessions = async_sessionmaker[AsyncSession]

#: Rows changed per transaction (also keeps `IN` lists under SQLite's 999 parameters).
BATCH = 500
#: The name a deleted search keeps once cleared (the column is required).
CLEARED_NAME = "—"
PENDING_GUEST = "pending"
CONFIRMED_GUEST = "confirmed"

DELIVERY_CONTENT_DAYS = 90
FEED_DAYS = 365
GUEST_REQUEST_DAYS = 7
UNSUBSCRIBED_GUEST_DAYS = 30
DELETED_SEARCH_DAYS = 90
VISIT_BOOKING_DAYS = 30
PROCESSED_EVENT_DAYS = 60
# The topics keep 7 days (deploy/topics.json); a day more, so the relay's row outlives the event.
OUTBOX_DAYS = 8

FINAL = (
    DeliveryStatus.DELIVERED.value,
    DeliveryStatus.DEAD.value,
    DeliveryStatus.CANCELLED.value,
    DeliveryStatus.BATCHED.value,
)

CONSENT = "consent (GDPR art. 6(1)(a)): the person asked for these alerts and can stop them"
PUBLIC_TASK = (
    "public-interest task (art. 6(1)(e)): the programme's allocation of premises and its "
    "notices to applicants"
)
INTEREST = "legitimate interest (art. 6(1)(f)): delivering each message exactly once"


@dataclass(frozen=True)
class Rule:
    """One retention rule: what it keeps, for how long, on which legal basis."""

    name: str
    table: str
    data: str
    retention: str
    legal_basis: str
    days: int | None = None

    def out(self) -> dict[str, Any]:
        return {
            "rule": self.name,
            "table": self.table,
            "data": self.data,
            "retention": self.retention,
            "legal_basis": self.legal_basis,
            "period_days": self.days,
            "applied_by_job": self.name in _APPLY,
        }


RULES: tuple[Rule, ...] = (
    Rule(
        "delivery_content",
        "deliveries",
        "what was sent (the message: search name, unit, decision or answer texts), the last "
        "error or response text (it may quote a receiver's body), the trace id",
        f"cleared {DELIVERY_CONTENT_DAYS} days after the delivery reached its final state "
        "(delivered, dead, cancelled or folded into a digest); the row stays with its ids, "
        "channel, kind, status, attempt count and times, the exactly-once record of each "
        "message and the delivery counts. Addresses and URLs are never copied into a delivery: "
        "they stay on the search",
        f"{CONSENT}; {PUBLIC_TASK} for messages to applicants",
        DELIVERY_CONTENT_DAYS,
    ),
    Rule(
        "feed",
        "feed_items",
        "alert titles and bodies, read/unread",
        f"deleted {FEED_DAYS} days after creation",
        CONSENT,
        FEED_DAYS,
    ),
    Rule(
        "unconfirmed_guests",
        "guest_subscribers",
        "the e-mail address and language of someone who asked for alerts without an account "
        "and never confirmed",
        f"deleted with their requests {GUEST_REQUEST_DAYS} days after the last request; "
        "confirmed guests stay until they unsubscribe, or an account with the same verified "
        "address takes their searches over",
        "consent, double opt-in: without a confirmation there is no consent to keep them for",
        GUEST_REQUEST_DAYS,
    ),
    Rule(
        "unsubscribed_guests",
        "guest_subscribers",
        "the e-mail address of a confirmed guest none of whose searches still sends e-mail "
        "(every one unsubscribed, or deleted)",
        f"deleted {UNSUBSCRIBED_GUEST_DAYS} days after the last change to their searches, with "
        "their requests; their searches are deleted and cleared (address, name), their "
        "deliveries follow the delivery rule",
        "consent: withdrawn by unsubscribing (art. 7(3)); the days let a mistaken click be "
        "undone by asking again",
        UNSUBSCRIBED_GUEST_DAYS,
    ),
    Rule(
        "guest_requests",
        "guest_confirmations",
        "a request's search name and criteria, the SHA-256 of its confirmation token (the token "
        "itself is kept nowhere)",
        f"deleted {GUEST_REQUEST_DAYS} days after the request once expired or used (the rate "
        "limits look back one hour). Unsubscribe links are signed, never stored",
        "consent, double opt-in",
        GUEST_REQUEST_DAYS,
    ),
    Rule(
        "deleted_searches",
        "subscriptions",
        "the e-mail address, webhook URL and secret, name and disabled reason of a deleted "
        "saved search",
        f"cleared {DELETED_SEARCH_DAYS} days after the deletion (the row stays, id and "
        "criteria, for its deliveries); a live search stays until deleted, paused or erased",
        CONSENT,
        DELETED_SEARCH_DAYS,
    ),
    Rule(
        "visit_bookings",
        "visit_bookings",
        "the e-mail address, language and places of someone who booked a workshop visit, the "
        "SHA-256 of their cancellation token",
        f"deleted {VISIT_BOOKING_DAYS} days after the visit ended (cancelled bookings too); "
        "the slot keeps its count of places booked, with no address",
        "contract-like request (art. 6(1)(b)): the person booked the visit and is sent its "
        "confirmation, reminder and any cancellation",
        VISIT_BOOKING_DAYS,
    ),
    Rule(
        "processed_events",
        "processed_events",
        "ids of the events applied (ids only, but they grow for ever)",
        f"deleted {PROCESSED_EVENT_DAYS} days after processing: longer than any topic's "
        "retention (7 days; dead letters 30), so a redelivered event is still recognised",
        INTEREST,
        PROCESSED_EVENT_DAYS,
    ),
    Rule(
        "outbox",
        "outbox_messages",
        "events this service published, with their data",
        f"published rows deleted {OUTBOX_DAYS} days after publication (the topics keep 7 days); "
        "rows not published yet never",
        INTEREST,
        OUTBOX_DAYS,
    ),
    Rule(
        "artisan_copy",
        "artisans",
        "the copy of leasing's profile: names, contact e-mail, trades, legal form, labels",
        "follows the profile: deleted when leasing erases it (leasing.artisan.erased.v1, "
        "leasing's own retention included); no job here",
        PUBLIC_TASK,
    ),
    Rule(
        "tombstones",
        "erased_artisans, erasures",
        "ids and dates of each erasure (no name, no address)",
        "kept: they keep a replayed old profile event from bringing an erased person back, and "
        "record that the erasure was done",
        "legal obligation (art. 6(1)(c), art. 17 and 5(2)): showing the erasure holds",
    ),
)


@dataclass
class RuleResult:
    rule: str
    table: str
    count: int = 0
    error: str | None = None


@dataclass
class RetentionReport:
    """One run: the instant it applied the rules as of, and what each rule did."""

    now: datetime
    results: list[RuleResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.error is None for r in self.results)

    def count(self, rule: str) -> int:
        return next(r.count for r in self.results if r.rule == rule)

    def out(self) -> dict[str, Any]:
        return {
            "now": self.now.isoformat(),
            "ok": self.ok,
            "rules": [
                {"rule": r.rule, "table": r.table, "count": r.count, "error": r.error}
                for r in self.results
            ],
        }


def rules() -> list[dict[str, Any]]:
    """The rules, as `GET /v1/privacy/retention` lists them (the register's text)."""
    return [rule.out() for rule in RULES]


def _lock(stmt: Any, session: AsyncSession) -> Any:
    # PostgreSQL: replicas running the job at once take different rows (SQLite: one writer).
    bind = session.get_bind()
    return stmt if bind.dialect.name == "sqlite" else stmt.with_for_update(skip_locked=True)


async def _batches(sessions: Sessions, step: Callable[[AsyncSession], Awaitable[int]]) -> int:
    """Run `step` in its own transaction until it changes fewer than BATCH rows."""
    total = 0
    while True:
        async with sessions() as session, session.begin():
            done = await step(session)
        total += done
        if done < BATCH:
            return total


async def clear_delivery_content(sessions: Sessions, now: datetime) -> int:
    cut = now - timedelta(days=DELIVERY_CONTENT_DAYS)
    # The final state's instant: delivered_at, else when its last attempt was due (an attempt,
    # or the cancellation of a row waiting for one, comes at or just after that).
    finished = func.coalesce(col(Delivery.delivered_at), col(Delivery.next_attempt_at))

    async def step(session: AsyncSession) -> int:
        stmt = (
            select(col(Delivery.id), col(Delivery.payload))
            .where(
                col(Delivery.cleared_at).is_(None),
                col(Delivery.created_at) < cut,
                col(Delivery.status).in_(FINAL),
                finished < cut,
            )
            .order_by(col(Delivery.created_at))
            .limit(BATCH)
        )
        rows = list((await session.execute(_lock(stmt, session))).all())
        # An erased delivery keeps its erasure marker. Two statements per batch, not one per
        # row: 500 single-row UPDATEs held SQLite's write lock for 0.4 s (bench/retention.py).
        erased = [r.id for r in rows if r.payload == ERASED_PAYLOAD]
        others = [r.id for r in rows if r.payload != ERASED_PAYLOAD]
        cleared = {"last_error": None, "traceparent": None, "cleared_at": now}
        for ids, values in ((others, {"payload": CLEARED_PAYLOAD}), (erased, {})):
            if ids:
                await session.execute(
                    update(Delivery).where(col(Delivery.id).in_(ids)).values(**values, **cleared)
                )
        return len(rows)

    return await _batches(sessions, step)


async def delete_old_feed(sessions: Sessions, now: datetime) -> int:
    cut = now - timedelta(days=FEED_DAYS)

    async def step(session: AsyncSession) -> int:
        stmt = select(col(FeedItem.id)).where(col(FeedItem.created_at) < cut).limit(BATCH)
        ids = list((await session.execute(_lock(stmt, session))).scalars())
        if ids:
            await session.execute(delete(FeedItem).where(col(FeedItem.id).in_(ids)))
        return len(ids)

    return await _batches(sessions, step)


async def delete_unconfirmed_guests(sessions: Sessions, now: datetime) -> int:
    cut = now - timedelta(days=GUEST_REQUEST_DAYS)

    async def step(session: AsyncSession) -> int:
        # updated_at moves with each new request of the address: 7 days after the last one.
        stmt = (
            select(col(GuestSubscriber.id))
            .where(
                col(GuestSubscriber.status) == PENDING_GUEST,
                col(GuestSubscriber.updated_at) < cut,
            )
            .limit(BATCH)
        )
        ids = list((await session.execute(_lock(stmt, session))).scalars())
        if ids:
            # Explicitly: SQLite enforces the foreign key's cascade only with a pragma.
            await session.execute(
                delete(GuestConfirmation).where(col(GuestConfirmation.guest_id).in_(ids))
            )
            await session.execute(delete(GuestSubscriber).where(col(GuestSubscriber.id).in_(ids)))
        return len(ids)

    return await _batches(sessions, step)


async def delete_unsubscribed_guests(sessions: Sessions, now: datetime) -> int:
    cut = now - timedelta(days=UNSUBSCRIBED_GUEST_DAYS)
    owner = literal(GUEST_OWNER_PREFIX) + col(GuestSubscriber.id)
    owned = col(Subscription.artisan_id) == owner
    live = exists().where(
        owned,
        col(Subscription.status) != SubscriptionStatus.DELETED.value,
        col(Subscription.email_enabled).is_(True),
    )
    recent = exists().where(owned, col(Subscription.updated_at) >= cut)

    async def step(session: AsyncSession) -> int:
        stmt = (
            select(col(GuestSubscriber.id))
            .where(
                col(GuestSubscriber.status) == CONFIRMED_GUEST,
                col(GuestSubscriber.updated_at) < cut,
                ~live,
                ~recent,
            )
            .limit(BATCH)
        )
        ids = list((await session.execute(_lock(stmt, session))).scalars())
        if not ids:
            return 0
        owners = [GUEST_OWNER_PREFIX + guest_id for guest_id in ids]
        subs = select(col(Subscription.id)).where(col(Subscription.artisan_id).in_(owners))
        await session.execute(
            delete(SubscriptionTerm).where(col(SubscriptionTerm.subscription_id).in_(subs))
        )
        await session.execute(
            update(Subscription)
            .where(col(Subscription.artisan_id).in_(owners))
            .values(status=SubscriptionStatus.DELETED.value, **_CLEARED_SEARCH)
        )
        await session.execute(
            delete(GuestConfirmation).where(col(GuestConfirmation.guest_id).in_(ids))
        )
        await session.execute(delete(GuestSubscriber).where(col(GuestSubscriber.id).in_(ids)))
        return len(ids)

    return await _batches(sessions, step)


async def delete_old_guest_requests(sessions: Sessions, now: datetime) -> int:
    cut = now - timedelta(days=GUEST_REQUEST_DAYS)

    async def step(session: AsyncSession) -> int:
        stmt = (
            select(col(GuestConfirmation.token_hash))
            .where(
                col(GuestConfirmation.created_at) < cut,
                or_(
                    col(GuestConfirmation.expires_at) < now,
                    col(GuestConfirmation.used_at).is_not(None),
                ),
            )
            .limit(BATCH)
        )
        hashes = list((await session.execute(_lock(stmt, session))).scalars())
        if hashes:
            await session.execute(
                delete(GuestConfirmation).where(col(GuestConfirmation.token_hash).in_(hashes))
            )
        return len(hashes)

    return await _batches(sessions, step)


#: What a deleted search keeps of its personal fields.
_CLEARED_SEARCH: dict[str, Any] = {
    "email_address": None,
    "webhook_url": None,
    "webhook_secret": None,
    "disabled_reason": None,
    "name": CLEARED_NAME,
    "email_enabled": False,
    "webhook_enabled": False,
}


async def clear_deleted_searches(sessions: Sessions, now: datetime) -> int:
    cut = now - timedelta(days=DELETED_SEARCH_DAYS)

    async def step(session: AsyncSession) -> int:
        stmt = (
            select(col(Subscription.id))
            .where(
                col(Subscription.status) == SubscriptionStatus.DELETED.value,
                # updated_at is the deletion: a deleted search changes no more.
                col(Subscription.updated_at) < cut,
                or_(
                    col(Subscription.email_address).is_not(None),
                    col(Subscription.webhook_url).is_not(None),
                    col(Subscription.webhook_secret).is_not(None),
                    col(Subscription.disabled_reason).is_not(None),
                    col(Subscription.name) != CLEARED_NAME,
                ),
            )
            .limit(BATCH)
        )
        ids = list((await session.execute(_lock(stmt, session))).scalars())
        if ids:
            await session.execute(
                update(Subscription).where(col(Subscription.id).in_(ids)).values(**_CLEARED_SEARCH)
            )
        return len(ids)

    return await _batches(sessions, step)


async def delete_old_visit_bookings(sessions: Sessions, now: datetime) -> int:
    cut = now - timedelta(days=VISIT_BOOKING_DAYS)
    ended = select(col(VisitSlot.slot_id)).where(col(VisitSlot.ends_at) < cut)

    async def step(session: AsyncSession) -> int:
        stmt = select(col(VisitBooking.id)).where(col(VisitBooking.slot_id).in_(ended)).limit(BATCH)
        ids = list((await session.execute(_lock(stmt, session))).scalars())
        if ids:
            await session.execute(delete(VisitBooking).where(col(VisitBooking.id).in_(ids)))
        return len(ids)

    return await _batches(sessions, step)


async def delete_old_processed_events(sessions: Sessions, now: datetime) -> int:
    cut = now - timedelta(days=PROCESSED_EVENT_DAYS)

    async def step(session: AsyncSession) -> int:
        stmt = (
            select(col(ProcessedEvent.consumer), col(ProcessedEvent.event_id))
            .where(col(ProcessedEvent.processed_at) < cut)
            .limit(BATCH)
        )
        keys = [tuple(k) for k in (await session.execute(_lock(stmt, session))).all()]
        if keys:
            pair = tuple_(col(ProcessedEvent.consumer), col(ProcessedEvent.event_id))
            await session.execute(delete(ProcessedEvent).where(pair.in_(keys)))
        return len(keys)

    return await _batches(sessions, step)


async def prune_outbox(sessions: Sessions, now: datetime) -> int:
    # Notifications publishes little (nothing yet): one statement is short enough.
    async with sessions() as session, session.begin():
        return await prune_published(session, now - timedelta(days=OUTBOX_DAYS))


_APPLY: dict[str, Callable[[Sessions, datetime], Awaitable[int]]] = {
    "delivery_content": clear_delivery_content,
    "feed": delete_old_feed,
    "unconfirmed_guests": delete_unconfirmed_guests,
    "unsubscribed_guests": delete_unsubscribed_guests,
    "guest_requests": delete_old_guest_requests,
    "deleted_searches": clear_deleted_searches,
    "visit_bookings": delete_old_visit_bookings,
    "processed_events": delete_old_processed_events,
    "outbox": prune_outbox,
}


async def apply_retention(sessions: Sessions, now: datetime) -> RetentionReport:
    """Apply every rule as of `now`; a rule that fails is reported and the others still run."""
    report = RetentionReport(now=now)
    for rule in RULES:
        apply = _APPLY.get(rule.name)
        if apply is None:
            continue
        result = RuleResult(rule.name, rule.table)
        try:
            result.count = await apply(sessions, now)
        except Exception as exc:
            # The type only: a database error can quote the row.
            result.error = type(exc).__name__
            log.warning("retention rule %s failed (%s)", rule.name, result.error)
        report.results.append(result)
    log.info(
        "retention applied",
        extra={"counts": {r.rule: r.count for r in report.results}, "ok": report.ok},
    )
    try:
        await refresh_oldest(sessions, now)
    except Exception as exc:
        log.warning("could not refresh the oldest personal record gauge (%s)", type(exc).__name__)
    return report


#: The first run waits this long after start-up: a process restarted often (deploys) still runs
#: the job, and one started briefly (a test, a migration check) does not.
FIRST_RUN_S = 600.0


async def run_retention_loop(sessions: Sessions, interval_s: float, stop: asyncio.Event) -> None:
    """Apply retention every `interval_s` (first FIRST_RUN_S after start) until `stop`."""
    wait = min(FIRST_RUN_S, interval_s)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), wait)
        if stop.is_set():
            return
        try:
            await apply_retention(sessions, retention_now())
        except Exception as exc:
            log.warning("retention run failed (%s)", type(exc).__name__)
        wait = interval_s


# The metric ---------------------------------------------------------------------------------

#: Per table: the rows that hold personal data, and the column that dates them.
_PERSONAL: dict[str, tuple[Any, Any]] = {
    "subscriptions": (
        col(Subscription.created_at),
        or_(
            col(Subscription.email_address).is_not(None),
            col(Subscription.webhook_url).is_not(None),
        ),
    ),
    "deliveries": (col(Delivery.created_at), col(Delivery.cleared_at).is_(None)),
    "feed_items": (col(FeedItem.created_at), None),
    "guest_subscribers": (col(GuestSubscriber.created_at), None),
    "guest_confirmations": (col(GuestConfirmation.created_at), None),
    # The copy is as old as its last update from leasing.
    "artisans": (col(Artisan.updated_at), None),
    "visit_bookings": (col(VisitBooking.created_at), None),
    "outbox_messages": (col(OutboxMessage.created_at), None),
}


async def oldest_personal(session: AsyncSession, now: datetime) -> dict[str, float]:
    """Per table, the age in seconds of its oldest personal record (0: none)."""
    ages: dict[str, float] = {}
    for table, (dated, where) in _PERSONAL.items():
        stmt = select(func.min(dated))
        if where is not None:
            stmt = stmt.where(where)
        oldest = (await session.execute(stmt)).scalar()
        if oldest is not None and oldest.tzinfo is None:  # SQLite in aggregates: naive UTC
            oldest = oldest.replace(tzinfo=UTC)
        ages[table] = max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
    return ages


async def refresh_oldest(sessions: Sessions, now: datetime | None = None) -> dict[str, float]:
    """Set `fabrique_personal_data_oldest_seconds{table}` for notifications' tables."""
    async with sessions() as session:
        ages = await oldest_personal(session, now or retention_now())
    for table, age in ages.items():
        PERSONAL_DATA_OLDEST.labels(table).set(age)
    return ages
