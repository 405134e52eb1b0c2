"""The delivery worker: claims due deliveries, has them sent, records what came of each, out of
the Kafka poll loop. Sending itself (webhook, e-mail) is `notifications.sending`.

Deliveries are claimed in short transactions (PostgreSQL: FOR UPDATE SKIP LOCKED, so replicas
share the work; SQLite: one worker per database), sent with at most `delivery_concurrency` in
flight, and their outcome written afterwards. A claim carries a lease: a worker that dies
mid-send leaves a row that becomes due again, and is resent with the same webhook-id.

Database work is batched so that a fan-out (one vacancy, thousands of saved searches) goes at
the speed of HTTP rather than of transactions. On SQLite every transaction takes the database's
one write lock, so a transaction or two per delivery made 16 concurrent sends queue behind each
other (benchmarks, fan-out). Hence:

- a claim takes a batch of due rows *and* the subscriptions and artisans they need (one `IN`
  query each) in its one transaction, and hands the sends plain snapshots (`Job`): a send itself
  touches no database;
- a claim takes more rows than there are free slots (up to a few rounds of sends, see
  `_hold`); the extra rows wait in a local queue, so one claim transaction serves many sends;
- sends put their outcomes on a queue, and one recorder writes everything waiting there in one
  transaction, with the same per-row rules as a single outcome (`_apply`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit import tracing
from notifications import repository as repo
from notifications.contracts import digest_body
from notifications.disabled_email import webhook_disabled_email
from notifications.domain import (
    Channel,
    DeliveryKind,
    DeliveryStatus,
    SubscriptionStatus,
    duration_words,
    retry_wait,
)
from notifications.metrics import (
    DELIVERIES,
    RETRIES_SCHEDULED,
    RETRY_WAIT,
    WEBHOOKS_DISABLED,
    observe_delivered,
)
from notifications.models import Delivery, Subscription
from notifications.sending import RELEASED, Job, Outcome, Senders
from notifications.settings import NotificationsSettings
from notifications.signals import Signals

log = logging.getLogger(__name__)

# At most this many outcomes are written in one transaction (also keeps the `IN` list of the
# rows' ids under SQLite's historical limit of 999 bound parameters).
RECORD_BATCH = 500
# A worker holds (in flight + waiting locally) at most this many rounds of sends.
MAX_ROUNDS = 4
# Outcomes of a webhook attempt that count as the endpoint failing (the failure clock).
FAILED = frozenset({"retry", "dead", "aborted", "refused"})


class DeliveryWorker:
    """Claims due deliveries in batches, hands them to the senders, records the outcomes."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: NotificationsSettings,
        signals: Signals,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._signals = signals
        # What time it is for due rows, waits and the failure clock (tests move it ahead).
        self._now = clock or (lambda: datetime.now(UTC))
        self._counts: list[Callable[[], None]] = []
        self._concurrency = settings.delivery_concurrency
        self._skip_locked = not settings.is_sqlite
        self.senders = Senders(settings)
        # Local queueing against the lease. A claimed row must be sent and its outcome recorded
        # before its lease (`delivery_claim_lease_s`) runs out, or it becomes due again and is
        # sent twice. So a row may wait locally for a slot at most a quarter of the lease
        # (`_start` gives back any that waited longer, unsent); the other three quarters cover
        # the send, bounded by its timeout, and the recording. The number of rows held (in
        # flight + queued) is sized so that this bound holds even if every send runs into its
        # timeout: a row waits at most (rounds - 1) sends, each at most `send_bound`. With the
        # defaults (lease 120 s, timeouts 10 s and 15 s) that is 3 rounds: 48 rows for 16
        # slots. A lease too short for local queueing (under 4 timeouts) gives 1 round: claims
        # of free slots only, as without local queueing.
        lease = settings.delivery_claim_lease_s
        send_bound = max(settings.webhook_timeout_s, settings.smtp_timeout_s)
        self._max_wait = lease / 4
        rounds = min(MAX_ROUNDS, 1 + int(self._max_wait // send_bound))
        self._hold = self._concurrency * rounds
        # A claim is made once this many rows fit: at least a round's worth when queueing, so
        # that one claim transaction serves many sends.
        self._claim_min = self._concurrency if rounds > 1 else 1
        # Outcomes sent but not yet written. Their rows' leases run too, so no new claims while
        # a full recording batch of them is waiting (the database is slow or unavailable).
        self._outcomes: asyncio.Queue[tuple[Job, Outcome] | None] = asyncio.Queue()
        self._unrecorded = 0
        self._recorded = asyncio.Event()
        # On SQLite the worker's two writers (claims, the recorder) take turns in-process, so
        # the one waiting is woken as soon as the other commits instead of sleeping in SQLite's
        # busy handler (which backs off up to 100 ms between tries).
        self._turn = asyncio.Lock() if settings.is_sqlite else None

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set; in-flight sends get a short grace period."""
        if self._settings.is_sqlite:
            await self._release_own_claims()
        self._outcomes, self._unrecorded = asyncio.Queue(), 0
        recorder = asyncio.create_task(self._record_loop(), name="delivery-recorder")
        queue: deque[Job] = deque()
        inflight: set[asyncio.Task[None]] = set()
        try:
            async with self.senders.webhook.open():
                try:
                    await self._loop(stop, queue, inflight)
                finally:
                    # Claimed but never started: given back now rather than left to the lease
                    # (if that write fails, the lease or, on SQLite, the next start does it).
                    for job in queue:
                        self._record_later(job, RELEASED)
                    queue.clear()
                    await self._drain(inflight)
        finally:
            # Every finished send has its outcome queued by now (interrupted sends have none:
            # their rows stay claimed); the recorder writes them all, then stops.
            self._outcomes.put_nowait(None)
            await recorder

    async def _loop(
        self, stop: asyncio.Event, queue: deque[Job], inflight: set[asyncio.Task[None]]
    ) -> None:
        """Keep the slots busy from the local queue, and the queue filled by claims made in the
        background (a claim transaction under load takes tens of milliseconds, during which
        queued rows keep going out)."""
        claim: asyncio.Task[tuple[list[Job], int]] | None = None
        asked = 0
        # Whether rows may be due now. A claim that comes back short means no more are until
        # the wake-up signal (deliveries committed) or the poll interval: no claim till then.
        due = True
        wakeups = wakeups_at_claim = 0
        woken: asyncio.Future[None] | None = None
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                if claim is not None and claim.done():
                    due = self._take_claim(claim, asked, wakeups != wakeups_at_claim, queue)
                    claim = None
                self._start(queue, inflight)
                room = self._hold - len(queue) - len(inflight)
                backlog = self._unrecorded >= RECORD_BATCH
                if claim is None and due and room >= self._claim_min and not backlog:
                    asked, wakeups_at_claim = room, wakeups
                    claim = asyncio.create_task(self._claim(room), name="delivery-claim")
                if woken is None:
                    woken = asyncio.ensure_future(
                        self._signals.deliveries.wait(self._settings.delivery_poll_interval_s)
                    )
                watch: set[asyncio.Future[Any]] = {woken, stopping}
                if claim is not None:
                    watch.add(claim)
                # A send finishing frees a slot for a queued row, or room for a claim.
                if queue or (due and claim is None):
                    watch |= inflight
                recorded = None
                if due and claim is None and backlog:
                    self._recorded.clear()
                    recorded = asyncio.ensure_future(self._recorded.wait())
                    watch.add(recorded)
                await asyncio.wait(watch, return_when=asyncio.FIRST_COMPLETED)
                if recorded is not None:
                    recorded.cancel()
                if woken.done():
                    woken, due, wakeups = None, True, wakeups + 1
        finally:
            for waiter in (woken, stopping):
                if waiter is not None:
                    waiter.cancel()
            if claim is not None:
                # Its rows may be claimed already: let it finish, then give them back too.
                try:
                    jobs, _ = await claim
                except Exception:
                    jobs = []
                queue.extend(jobs)

    @staticmethod
    def _take_claim(
        claim: asyncio.Task[tuple[list[Job], int]], asked: int, woken: bool, queue: deque[Job]
    ) -> bool:
        """Queue a finished claim's jobs; return whether more rows may be due now."""
        try:
            jobs, claimed = claim.result()
        except Exception as exc:
            log.warning("delivery worker: cannot claim deliveries (%s)", exc)
            return False
        queue.extend(jobs)
        # All that was asked for: more may be due. Otherwise only what was committed or became
        # due since the claim began (a wake-up meanwhile).
        return claimed == asked or woken

    def _start(self, queue: deque[Job], inflight: set[asyncio.Task[None]]) -> None:
        """Start queued jobs in the free slots; give back those that waited too long."""
        now = asyncio.get_running_loop().time()
        released = 0
        while queue and len(inflight) < self._concurrency:
            job = queue.popleft()
            if now - job.claimed_at > self._max_wait:
                # Too little of its lease may be left to send it and record the outcome.
                self._record_later(job, RELEASED)
                released += 1
                continue
            task = asyncio.create_task(self._deliver(job), name="delivery")
            inflight.add(task)
            task.add_done_callback(inflight.discard)
        if released:
            log.info("delivery worker: gave back %d deliveries that waited too long", released)

    async def _release_own_claims(self) -> None:
        try:
            async with self._sessions() as session, session.begin():
                released = await repo.release_claims(session)
            if released:
                log.info("delivery worker: took back %d interrupted deliveries", released)
        except Exception as exc:
            log.warning("delivery worker: could not take back claims (%s)", exc)

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

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncSession]:
        """A write transaction of the worker (taking the in-process turn first on SQLite)."""
        async with contextlib.AsyncExitStack() as stack:
            if self._turn is not None:
                await stack.enter_async_context(self._turn)
            session = await stack.enter_async_context(self._sessions())
            await stack.enter_async_context(session.begin())
            yield session

    # Claiming ---------------------------------------------------------------------------------

    async def _claim(self, limit: int) -> tuple[list[Job], int]:
        """Claim up to `limit` due rows; return the jobs to send and the number of rows claimed
        (more than the jobs when digest entries were folded into one message)."""
        now = self._now()
        claimed_at = asyncio.get_running_loop().time()
        async with self._transaction() as session:
            rows = await repo.claim_due(
                session,
                now=now,
                lease=timedelta(seconds=self._settings.delivery_claim_lease_s),
                limit=limit,
                skip_locked=self._skip_locked,
            )
            to_send = await self._fold_digests(session, list(rows), now)
            # What the sends need, read here once for the batch rather than per send.
            subs = await repo.subscriptions_by_id(
                session, {r.subscription_id for r in to_send if r.subscription_id}
            )
            artisans = await repo.artisans_by_id(
                session, {r.artisan_id for r in to_send if r.channel == Channel.EMAIL.value}
            )
        jobs = [
            Job.of(
                row,
                subs.get(row.subscription_id) if row.subscription_id else None,
                artisans.get(row.artisan_id),
                claimed_at,
            )
            for row in to_send
        ]
        return jobs, len(rows)

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
            lead.payload = digest_body(now, [lead.payload] + [c.payload for c in children])
        await session.flush()
        return to_send

    # Sending ----------------------------------------------------------------------------------

    async def _deliver(self, job: Job) -> None:
        try:
            if tracing.tracing_enabled():
                outcome = await self._traced_attempt(job)
            else:
                outcome = await self.senders.attempt(job)
        except Exception as exc:
            log.exception("delivery %s failed unexpectedly", job.id)
            outcome = Outcome("retry", f"{type(exc).__name__}: {exc}"[:500])
        self._record_later(job, outcome)

    async def _traced_attempt(self, job: Job) -> Outcome:
        """The attempt in a span of the trace that created the delivery (its webhook POST, with
        its own traceparent, or its SMTP send nest in it)."""
        with tracing.start_span(
            f"deliver {job.channel}",
            parent=tracing.context_from(job.traceparent),
            attributes={
                "fabrique.delivery.id": job.id,
                "fabrique.delivery.channel": job.channel,
                "fabrique.delivery.kind": job.kind,
                "fabrique.delivery.attempt": job.attempts,
            },
        ) as span:
            outcome = await self.senders.attempt(job)
            span.set_attribute("fabrique.delivery.outcome", outcome.kind)
            if outcome.status_code is not None:
                span.set_attribute("http.response.status_code", outcome.status_code)
            return outcome

    # Recording ------------------------------------------------------------------------------

    def _record_later(self, job: Job, outcome: Outcome) -> None:
        self._unrecorded += 1
        self._outcomes.put_nowait((job, outcome))

    async def _record_loop(self) -> None:
        """Write outcomes as they come: all those waiting (up to RECORD_BATCH) in one
        transaction. Returns once it has written everything queued before `None`."""
        closing = False
        while not closing:
            item = await self._outcomes.get()
            batch: list[tuple[Job, Outcome]] = []
            while True:
                if item is None:
                    closing = True
                else:
                    batch.append(item)
                if closing or len(batch) >= RECORD_BATCH or self._outcomes.empty():
                    break
                item = self._outcomes.get_nowait()
            if not batch:
                continue
            try:
                await self._record(batch)
            except Exception as exc:
                # The rows stay claimed: their leases expire and they are tried again.
                log.warning(
                    "delivery worker: could not record the outcomes of %d deliveries (%s)",
                    len(batch),
                    exc,
                )
            finally:
                self._unrecorded -= len(batch)
                self._recorded.set()

    async def _record(self, batch: list[tuple[Job, Outcome]]) -> None:
        now = self._now()
        disabled: list[str] = []
        # Counted once the transaction has committed (an outcome not written is not counted).
        self._counts = []
        recorded: list[tuple[Job, Outcome, str, datetime | None]] = []
        async with self._transaction() as session:
            rows = await repo.deliveries_to_record(
                session, {job.id for job, _ in batch}, for_update=True
            )
            # Digest leads whose batched entries follow them: lead id -> the entries' status.
            leads: dict[str, str] = {}
            for job, outcome in batch:
                row = rows.get(job.id)
                # Our claim is the attempt we made; if the lease ran out and another worker took
                # the row since, its outcome is the one that counts.
                if (
                    row is None
                    or row.status != DeliveryStatus.SENDING.value
                    or row.attempts != job.attempts
                ):
                    continue
                kind = await self._apply(session, row, outcome, now)
                if row.batch_id == row.id and kind in ("delivered", "gone", "cancelled"):
                    leads[row.id] = row.status
                recorded.append((job, outcome, kind, row.occurred_at))
            if leads:
                for lead_id, entries in (await repo.batched_under_leads(session, leads)).items():
                    for entry in entries:
                        entry.status = leads[lead_id]
                        if entry.status == DeliveryStatus.DELIVERED.value:
                            entry.delivered_at = now
            disabled = await self._track_failures(session, recorded, now)
        for count in self._counts:
            count()
        released = 0
        for job, outcome, kind, occurred_at in recorded:
            if kind == "released":
                released += 1
            elif kind == "delivered":
                # Digests wait for their hour on purpose: only instant alerts measure latency.
                observe_delivered(job.channel, None if job.digest else occurred_at, now)
            else:
                DELIVERIES.labels(job.channel, kind).inc()
            if kind in ("dead", "aborted", "refused", "gone"):
                log.warning("delivery %s (%s): %s — %s", job.id, job.channel, kind, outcome.error)
        for subscription_id in disabled:
            log.warning(
                "subscription %s disabled: its webhook failed every attempt for %s",
                subscription_id,
                duration_words(self._settings.delivery_disable_after_failing_s),
            )
        if released:
            log.info("delivery worker: gave back %d claimed deliveries, unsent", released)

    async def _apply(
        self, session: AsyncSession, row: Delivery, outcome: Outcome, now: datetime
    ) -> str:
        """Write one outcome on its (still claimed) row; return the outcome as counted."""
        row.claimed_until = None
        kind = outcome.kind
        if kind == "released":
            # Never attempted: due again at once, without the attempt the claim counted.
            row.status = DeliveryStatus.PENDING.value
            row.attempts -= 1
            return kind
        row.last_status_code = outcome.status_code
        row.last_error = outcome.error
        if kind == "delivered":
            row.status = DeliveryStatus.DELIVERED.value
            row.delivered_at = now
        elif kind == "retry" and row.attempts < self._settings.delivery_max_attempts:
            settings = self._settings
            wait = retry_wait(
                row.attempts,
                settings.delivery_retry_schedule_s,
                settings.delivery_retry_jitter,
                settings.delivery_backoff_max_s,
            )
            # A receiver's Retry-After (429, 503) is honoured up to the longest wait.
            wait = max(wait, min(outcome.retry_after_s or 0, settings.delivery_backoff_max_s))
            row.status = DeliveryStatus.PENDING.value
            row.next_attempt_at = now + timedelta(seconds=wait)
            channel = row.channel
            self._counts.append(lambda: RETRIES_SCHEDULED.labels(channel).inc())
            self._counts.append(lambda: RETRY_WAIT.labels(channel).observe(wait))
        elif kind in ("retry", "dead", "aborted", "refused"):
            kind = "dead" if kind == "retry" else kind
            row.status = DeliveryStatus.DEAD.value
        else:  # gone or cancelled
            row.status = DeliveryStatus.CANCELLED.value
            if kind == "gone":
                if outcome.status_code == 410:
                    reason, why = "gone", "Your webhook answered 410 Gone"
                else:
                    reason = "receiver"
                    why = "Your webhook asked for no more deliveries (webhook-delivery: disable)"
                await self._disable(
                    session,
                    row.subscription_id,
                    now,
                    f"{why}, so alerts were switched off. Fix the endpoint, then resume the "
                    "subscription.",
                    reason,
                )
        return kind

    async def _disable(
        self,
        session: AsyncSession,
        subscription_id: str | None,
        now: datetime,
        why: str,
        reason: str,
    ) -> None:
        if subscription_id is None:
            return
        sub = await repo.get_subscription(session, subscription_id, for_update=True)
        if sub is None or sub.status != SubscriptionStatus.ACTIVE.value:
            return
        await self._switch_off(session, sub, now, why)
        self._counts.append(lambda: WEBHOOKS_DISABLED.labels(reason).inc())

    @staticmethod
    async def _switch_off(
        session: AsyncSession, sub: Subscription, now: datetime, why: str
    ) -> None:
        sub.status = SubscriptionStatus.DISABLED.value
        sub.disabled_reason = why
        # Resuming starts a new failure clock.
        sub.webhook_failing_since = None
        sub.version += 1
        sub.updated_at = now
        await repo.replace_terms(session, sub.id, [])

    # The failure clock ---------------------------------------------------------------------

    async def _track_failures(
        self,
        session: AsyncSession,
        recorded: list[tuple[Job, Outcome, str, datetime | None]],
        now: datetime,
    ) -> list[str]:
        """Start, reset or check each search's webhook failure clock from this batch's
        outcomes; switch off (and e-mail the artisan) those failing for too long. Returns
        the ids of the searches switched off.

        A delivered webhook resets its search's clock, even if another attempt of the same
        batch failed (the endpoint works); a failed one starts it if it is not running. Only
        the rows that change are read, locked in id order: a batch of successes to healthy
        endpoints (the usual fan-out) reads and locks nothing.
        """
        webhook = [
            (job, kind, outcome)
            for job, outcome, kind, _ in recorded
            if job.channel == Channel.WEBHOOK.value and job.subscription_id
        ]
        worked = {job.subscription_id for job, kind, _ in webhook if kind == "delivered"}
        failed = {
            job.subscription_id: outcome
            for job, kind, outcome in webhook
            if kind in FAILED and job.subscription_id not in worked
        }
        if not worked and not failed:
            return []
        stmt = (
            select(Subscription)
            .where(
                col(Subscription.id).in_(worked | set(failed)),
                or_(
                    col(Subscription.id).in_(set(failed)),
                    col(Subscription.webhook_failing_since).is_not(None),
                ),
            )
            .order_by(col(Subscription.id))
        )
        if self._skip_locked:  # PostgreSQL: lock the rows changed (SQLite: one writer anyway)
            stmt = stmt.with_for_update()
        limit = timedelta(seconds=self._settings.delivery_disable_after_failing_s)
        disabled = []
        for sub in (await session.execute(stmt)).scalars():
            if sub.id in worked:
                sub.webhook_failing_since = None
                continue
            since = sub.webhook_failing_since
            if since is None:
                sub.webhook_failing_since = now
                continue
            if since.tzinfo is None:  # SQLite gives naive UTC back
                since = since.replace(tzinfo=UTC)
            if now - since < limit or sub.status != SubscriptionStatus.ACTIVE.value:
                continue
            await self._disable_failing(session, sub, since, now, failed[sub.id])
            disabled.append(sub.id)
        return disabled

    async def _disable_failing(
        self,
        session: AsyncSession,
        sub: Subscription,
        since: datetime,
        now: datetime,
        last: Outcome,
    ) -> None:
        """Switch off a search whose webhook failed every attempt since `since`, and queue
        the e-mail that tells its artisan why and how to resume."""
        settings = self._settings
        why = (
            f"Your webhook failed every delivery attempt for more than "
            f"{duration_words(settings.delivery_disable_after_failing_s)} (since "
            f"{since:%Y-%m-%d %H:%M} UTC; last error: {last.error or 'none given'}), so alerts "
            "were switched off. Fix the endpoint, then resume the subscription."
        )
        await self._switch_off(session, sub, now, why)
        self._counts.append(lambda: WEBHOOKS_DISABLED.labels("failing").inc())
        base = settings.public_base_url.rstrip("/")
        email = webhook_disabled_email(
            language=sub.language,
            subscription_id=sub.id,
            name=sub.name,
            webhook_host=urlsplit(sub.webhook_url or "").hostname or "?",
            failing_since=since,
            disabled_at=now,
            last_error=last.error,
            resume_url=f"{base}/v1/subscriptions/{sub.id}/resume",
        )
        session.add(
            Delivery(
                id=str(uuid.uuid4()),
                # One notice per switch-off: the version the switch-off gave the search.
                event_id=f"webhook-disabled:{sub.id}:{sub.version}",
                recipient_key=sub.id,
                channel=Channel.EMAIL.value,
                kind=DeliveryKind.WEBHOOK_DISABLED.value,
                artisan_id=sub.artisan_id,
                subscription_id=sub.id,
                payload=email.model_dump(mode="json"),
                status=DeliveryStatus.PENDING.value,
                next_attempt_at=now,
                created_at=now,
            )
        )
        self._signals.after_commit(session, wake_worker=True)
