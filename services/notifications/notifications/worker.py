"""The delivery worker: claims due deliveries and sends them, out of the Kafka poll loop.

Deliveries are claimed in short transactions (PostgreSQL: FOR UPDATE SKIP LOCKED, so replicas
share the work; SQLite: one worker per database), sent with at most `delivery_concurrency` in
flight, and their outcome written afterwards. A claim carries a lease: a worker that dies
mid-send leaves a row that becomes due again, and is resent with the same webhook-id.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiosmtplib
import httpx
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from notifications import mailer
from notifications import repository as repo
from notifications.domain import (
    Channel,
    DeliveryKind,
    DeliveryStatus,
    SubscriptionStatus,
    retry_delay,
)
from notifications.metrics import DELIVERIES, observe_delivered
from notifications.models import Artisan, Delivery, Subscription
from notifications.settings import NotificationsSettings
from notifications.signals import Signals
from notifications.webhooks import UnsafeUrl, post, resolve_target, signed_headers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to: delivered, retry, dead, gone (410), refused or cancelled."""

    kind: str
    error: str | None = None
    status_code: int | None = None
    retry_after_s: float | None = None


class DeliveryWorker:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: NotificationsSettings,
        signals: Signals,
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._signals = signals
        self._concurrency = settings.delivery_concurrency
        self._slots = asyncio.Semaphore(settings.delivery_concurrency)
        self._skip_locked = not settings.is_sqlite
        self._client: httpx.AsyncClient | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set; in-flight sends get a short grace period."""
        if self._settings.is_sqlite:
            await self._release_own_claims()
        inflight: set[asyncio.Task[None]] = set()
        async with httpx.AsyncClient(
            timeout=self._settings.webhook_timeout_s, follow_redirects=False, trust_env=False
        ) as client:
            self._client = client
            try:
                while not stop.is_set():
                    free = self._concurrency - len(inflight)
                    claimed: list[Delivery] = []
                    if free > 0:
                        try:
                            claimed = await self._claim(free)
                        except Exception as exc:
                            log.warning("delivery worker: cannot claim deliveries (%s)", exc)
                    for delivery in claimed:
                        task = asyncio.create_task(self._deliver(delivery), name="delivery")
                        inflight.add(task)
                        task.add_done_callback(inflight.discard)
                    if free > 0 and len(claimed) == free:
                        continue  # more may be due right now
                    await self._wait(stop, inflight)
            finally:
                await self._drain(inflight)
                self._client = None

    async def _release_own_claims(self) -> None:
        try:
            async with self._sessions() as session, session.begin():
                released = await repo.release_claims(session)
            if released:
                log.info("delivery worker: took back %d interrupted deliveries", released)
        except Exception as exc:
            log.warning("delivery worker: could not take back claims (%s)", exc)

    async def _wait(self, stop: asyncio.Event, inflight: set[asyncio.Task[None]]) -> None:
        waiters = {
            asyncio.ensure_future(stop.wait()),
            asyncio.ensure_future(
                self._signals.deliveries.wait(self._settings.delivery_poll_interval_s)
            ),
        }
        try:
            # A full worker also wakes when a send finishes and frees a slot.
            pending = waiters | (inflight if len(inflight) >= self._concurrency else set())
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def _drain(self, inflight: set[asyncio.Task[None]]) -> None:
        if not inflight:
            return
        _, unfinished = await asyncio.wait(
            set(inflight), timeout=self._settings.delivery_shutdown_grace_s
        )
        for task in unfinished:
            task.cancel()
        if unfinished:
            # Their rows stay claimed: the lease (or the next start on SQLite) brings them back.
            await asyncio.gather(*unfinished, return_exceptions=True)
            log.info("delivery worker: %d sends interrupted by shutdown", len(unfinished))

    # Claiming ---------------------------------------------------------------------------------

    async def _claim(self, limit: int) -> list[Delivery]:
        now = datetime.now(UTC)
        async with self._sessions() as session, session.begin():
            rows = await repo.claim_due(
                session,
                now=now,
                lease=timedelta(seconds=self._settings.delivery_claim_lease_s),
                limit=limit,
                skip_locked=self._skip_locked,
            )
            return await self._fold_digests(session, list(rows), now)

    async def _fold_digests(
        self, session: AsyncSession, rows: list[Delivery], now: datetime
    ) -> list[Delivery]:
        """Turn the due daily-digest entries of each (subscription, channel) into one message."""
        leads: dict[tuple[str | None, str], Delivery] = {}
        folded: dict[str, list[Delivery]] = defaultdict(list)
        to_send = []
        for row in rows:
            if row.digest and row.batch_id is None:
                key = (row.subscription_id, row.channel)
                if key in leads:
                    folded[leads[key].id].append(row)
                    continue
                leads[key] = row
            to_send.append(row)
        for (subscription_id, channel), lead in leads.items():
            assert subscription_id is not None
            children = folded[lead.id]
            for child in children:
                child.attempts -= 1
            children += await repo.due_digest_rows(
                session,
                subscription_id=subscription_id,
                channel=channel,
                now=now,
                exclude=lead.id,
                skip_locked=self._skip_locked,
            )
            for child in children:
                child.status = DeliveryStatus.BATCHED.value
                child.batch_id = lead.id
                child.claimed_until = None
            lead.batch_id = lead.id
            lead.payload = {
                "type": "vacancy.digest",
                "timestamp": now.isoformat(),
                "data": {
                    "subscription": lead.payload["data"]["subscription"],
                    "alerts": [lead.payload["data"]] + [c.payload["data"] for c in children],
                },
            }
        await session.flush()
        return to_send

    # Sending ----------------------------------------------------------------------------------

    async def _deliver(self, delivery: Delivery) -> None:
        async with self._slots:
            try:
                outcome = await self._attempt(delivery)
            except Exception as exc:
                log.exception("delivery %s failed unexpectedly", delivery.id)
                outcome = Outcome("retry", f"{type(exc).__name__}: {exc}"[:500])
            try:
                await self._finish(delivery, outcome)
            except Exception as exc:
                # The claim's lease expires and the delivery is tried again.
                log.warning("delivery %s: could not record the outcome (%s)", delivery.id, exc)

    async def _attempt(self, delivery: Delivery) -> Outcome:
        async with self._sessions() as session:
            sub = (
                await repo.get_subscription(session, delivery.subscription_id)
                if delivery.subscription_id
                else None
            )
            artisan = await repo.get_artisan(session, delivery.artisan_id)
        if delivery.subscription_id:
            cancelled = self._cancel_reason(delivery, sub)
            if cancelled:
                return Outcome("cancelled", cancelled)
        if delivery.channel == Channel.WEBHOOK.value:
            assert sub is not None
            return await self._send_webhook(delivery, sub)
        if delivery.channel == Channel.EMAIL.value:
            return await self._send_email(delivery, sub, artisan)
        return Outcome("dead", f"channel {delivery.channel} is not sent by the worker")

    @staticmethod
    def _cancel_reason(delivery: Delivery, sub: Subscription | None) -> str | None:
        if sub is None or sub.status == SubscriptionStatus.DELETED.value:
            return "subscription deleted"
        # A test message goes out even while the subscription is paused.
        if (
            delivery.kind != DeliveryKind.TEST.value
            and sub.status != SubscriptionStatus.ACTIVE.value
        ):
            return f"subscription {sub.status}"
        if delivery.channel == Channel.WEBHOOK.value and not (
            sub.webhook_enabled and sub.webhook_url
        ):
            return "webhook channel removed"
        if delivery.channel == Channel.EMAIL.value and not sub.email_enabled:
            return "e-mail channel removed"
        return None

    async def _send_webhook(self, delivery: Delivery, sub: Subscription) -> Outcome:
        assert self._client is not None and sub.webhook_url and sub.webhook_secret
        try:
            # Resolved again at send time: the name may point elsewhere since it was checked.
            target = await resolve_target(
                sub.webhook_url,
                self._settings.webhook_allowed_networks,
                require_https=self._settings.webhook_require_https,
            )
        except UnsafeUrl as exc:
            return Outcome("refused", f"webhook URL refused: {exc}")
        body = json.dumps(delivery.payload, ensure_ascii=False, separators=(",", ":")).encode()
        headers = signed_headers(sub.webhook_secret, delivery.id, body)
        result = await post(
            self._client, target, headers, body, timeout_s=self._settings.webhook_timeout_s
        )
        if result.ok:
            return Outcome("delivered", status_code=result.status_code)
        if result.status_code == 410:
            return Outcome("gone", "the endpoint answered 410 Gone", 410)
        return Outcome("retry", result.error, result.status_code, result.retry_after_s)

    async def _send_email(
        self, delivery: Delivery, sub: Subscription | None, artisan: Artisan | None
    ) -> Outcome:
        to = (sub.email_address if sub else None) or (artisan.contact_email if artisan else None)
        if not to:
            return Outcome("retry", "no e-mail address known for this artisan yet")
        unsubscribe = mailer.unsubscribe_url(self._settings, sub.id) if sub is not None else None
        message = mailer.build_message(
            self._settings,
            to,
            mailer.render(delivery.payload, unsubscribe),
            message_id=delivery.id,
            unsubscribe=unsubscribe,
        )
        try:
            await mailer.send(self._settings, message)
        except mailer.PermanentMailError as exc:
            return Outcome("dead", str(exc)[:500])
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return Outcome("retry", f"{type(exc).__name__}: {exc}"[:500])
        return Outcome("delivered")

    # Recording --------------------------------------------------------------------------------

    async def _finish(self, delivery: Delivery, outcome: Outcome) -> None:
        now = datetime.now(UTC)
        occurred_at = None
        async with self._sessions() as session, session.begin():
            row = await repo.get_delivery(session, delivery.id, for_update=True)
            # Our claim is the attempt we made; if the lease ran out and another worker took the
            # row since, its outcome is the one that counts.
            if (
                row is None
                or row.status != DeliveryStatus.SENDING.value
                or row.attempts != delivery.attempts
            ):
                return
            row.claimed_until = None
            row.last_status_code = outcome.status_code
            row.last_error = outcome.error
            kind = outcome.kind
            if kind == "delivered":
                row.status = DeliveryStatus.DELIVERED.value
                row.delivered_at = now
                occurred_at = row.occurred_at
                if row.batch_id == row.id:
                    for child in await repo.batched_under(session, row.id):
                        child.status = DeliveryStatus.DELIVERED.value
                        child.delivered_at = now
            elif kind == "retry" and row.attempts < self._settings.delivery_max_attempts:
                delay = retry_delay(
                    row.attempts,
                    self._settings.delivery_backoff_base_s,
                    self._settings.delivery_backoff_max_s,
                )
                delay = max(
                    delay, min(outcome.retry_after_s or 0, self._settings.delivery_backoff_max_s)
                )
                row.status = DeliveryStatus.PENDING.value
                row.next_attempt_at = now + timedelta(seconds=delay)
            elif kind in ("retry", "dead", "refused"):
                kind = "dead" if kind == "retry" else kind
                row.status = DeliveryStatus.DEAD.value
            else:  # gone or cancelled
                row.status = DeliveryStatus.CANCELLED.value
                if kind == "gone":
                    await self._disable(session, row.subscription_id, now)
                if row.batch_id == row.id:
                    for child in await repo.batched_under(session, row.id):
                        child.status = DeliveryStatus.CANCELLED.value
        if kind == "delivered":
            # Digests wait for their hour on purpose: only instant alerts measure latency.
            observe_delivered(delivery.channel, None if delivery.digest else occurred_at, now)
        else:
            DELIVERIES.labels(delivery.channel, kind).inc()
        if kind in ("dead", "refused", "gone"):
            log.warning(
                "delivery %s (%s): %s — %s", delivery.id, delivery.channel, kind, outcome.error
            )

    async def _disable(
        self, session: AsyncSession, subscription_id: str | None, now: datetime
    ) -> None:
        if subscription_id is None:
            return
        sub = await repo.get_subscription(session, subscription_id, for_update=True)
        if sub is None or sub.status != SubscriptionStatus.ACTIVE.value:
            return
        sub.status = SubscriptionStatus.DISABLED.value
        sub.disabled_reason = (
            "Your webhook answered 410 Gone, so alerts were switched off. Fix the endpoint, "
            "then resume the subscription."
        )
        sub.version += 1
        sub.updated_at = now
        await repo.replace_terms(session, sub.id, [])
