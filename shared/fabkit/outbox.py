"""Transactional outbox: events written with the business change, published by a relay."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from opentelemetry.trace import SpanKind
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit import tracing
from fabkit.db import on_commit
from fabkit.events import CloudEvent, EventPayload, encode_data, envelope_of, to_kafka_headers
from fabkit.kafka import start_with_retry
from fabkit.metrics import ServiceMetrics
from fabkit.models import OutboxMessage

log = logging.getLogger(__name__)

OUTBOX_SIGNAL = "fabkit_outbox_signal"
# Any constant works: it only has to be the same for every relay of one database.
_RELAY_LOCK_ID = 0x0FAB_0B0C


class OutboxSignal:
    """Wakes the relay when a transaction that wrote outbox rows commits."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self) -> None:
        self._loop = asyncio.get_running_loop()

    def notify(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._event.set)

    async def wait(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout)
        self._event.clear()


def add_to_outbox(session: AsyncSession, *, topic: str, key: str, event: CloudEvent) -> CloudEvent:
    """Stage an event in the caller's transaction; it is published only if that commits.

    When tracing is on, the current span's `traceparent` (and `tracestate`) are stored with
    the event (CloudEvents distributed tracing extension), so that its publication, its
    consumers and what they do belong to the trace of the request that caused it. Returns the
    envelope as stored.
    """
    if event.traceparent is None:
        trace_headers = tracing.current_trace_headers()
        if trace_headers:
            event = event.model_copy(update=trace_headers)
    session.add(
        OutboxMessage(
            event_id=event.id,
            topic=topic,
            key=key,
            event_type=event.type,
            envelope=envelope_of(event),
        )
    )
    signal = session.sync_session.info.get(OUTBOX_SIGNAL)
    if signal is not None:
        on_commit(session, signal.notify)
    return event


async def prune_published(session: AsyncSession, published_before: datetime) -> int:
    """Delete outbox rows published before `published_before`; how many went.

    A published row has done its work (the broker holds the event), yet it keeps the event's
    data, personal data included: each service's retention job removes the rows once the
    topic's own retention has passed. Pending rows are never touched."""
    result = await session.execute(
        delete(OutboxMessage).where(
            OutboxMessage.published_at.is_not(None),  # type: ignore[union-attr]
            OutboxMessage.published_at < published_before,  # type: ignore[operator]
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


class Emitter:
    """Stages one service's events in the caller's transaction, each on its payload's topic.

    Each service keeps one, next to its published contracts; the CloudEvents `source` is bound
    once at start-up (`bind_source`) so use cases never carry settings just to reach it.
    """

    def __init__(self, source: str, topic_of: Mapping[str, str]) -> None:
        self._source = source
        self._topic_of = dict(topic_of)

    def bind_source(self, source: str) -> None:
        self._source = source

    def topic_of(self, payload: EventPayload) -> str:
        try:
            return self._topic_of[payload.event_type]
        except KeyError:
            raise LookupError(
                f"no topic is declared for {payload.event_type}: add it to the service's TOPIC_OF"
            ) from None

    def __call__(self, session: AsyncSession, key: str, payload: EventPayload) -> CloudEvent:
        """Stage `payload` keyed by its aggregate id; returns the envelope written."""
        event = CloudEvent.of(payload, source=self._source, subject=key)
        return add_to_outbox(session, topic=self.topic_of(payload), key=key, event=event)


@dataclass(frozen=True)
class _Pending:
    """A pending row read as plain values, usable after its transaction ends."""

    id: int
    topic: str
    key: str
    event_type: str
    envelope: dict[str, Any]


class PublishError(RuntimeError):
    """Some rows of a batch were not acknowledged by the broker."""


class OutboxRelay:
    """Publishes pending outbox rows in id order; marks a row only after the broker's ack.

    PostgreSQL: rows are claimed with FOR UPDATE SKIP LOCKED under a transaction-level advisory
    lock, so extra replicas stand by instead of publishing one aggregate's events out of order.
    SQLite: one relay per database (the service process), rows read and marked in short
    transactions so API writers are never blocked behind a slow broker.
    """

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        producer_factory: Callable[[], AIOKafkaProducer],
        metrics: ServiceMetrics,
        signal: OutboxSignal,
        *,
        is_postgres: bool,
        batch_size: int = 200,
        poll_interval: float = 1.0,
        read_session_factory: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        self._sessions = session_factory
        # The SQLite look-ahead and the gauges only read: they need not wait for API writers.
        self._read_sessions = read_session_factory or session_factory
        self._producer_factory = producer_factory
        self._metrics = metrics
        self._signal = signal
        self._is_postgres = is_postgres
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._gauges_at = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until `stop` is set, retrying forever through broker outages."""
        self._signal.bind()
        producer = await start_with_retry(self._producer_factory, "outbox relay", stop)
        if producer is None:
            return
        backoff = 0.0
        watcher = asyncio.ensure_future(self._watch_backlog(stop))
        try:
            while not stop.is_set():
                try:
                    # After a failure, send one row at a time until the broker acks again:
                    # a single message in flight cannot overtake an earlier one of its key.
                    limit = 1 if backoff else self._batch_size
                    sent = await self.publish_once(producer, limit=limit)
                    backoff = 0.0
                except Exception as exc:
                    self._metrics.publish_failures.inc()
                    backoff = min(max(backoff * 2, 0.2), 5.0)
                    log.warning(
                        "outbox relay: publish failed (%s); retrying in %.1fs", exc, backoff
                    )
                    await self._refresh_gauges(force=True)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), backoff)
                    continue
                await self._refresh_gauges()
                if sent < limit:
                    await self._wait(stop)
        finally:
            watcher.cancel()
            with contextlib.suppress(Exception):
                await producer.stop()

    async def _watch_backlog(self, stop: asyncio.Event) -> None:
        """Refresh the backlog gauges every second on their own.

        The idempotent producer never gives up on a refused batch (NOT_ENOUGH_REPLICAS, no
        leader): a send can wait for the whole outage, and a gauge refreshed only between sends
        would hold its last value exactly while the backlog grows.
        """
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
            await self._refresh_gauges()

    async def _wait(self, stop: asyncio.Event) -> None:
        stopper = asyncio.ensure_future(stop.wait())
        waker = asyncio.ensure_future(self._signal.wait(self._poll_interval))
        try:
            await asyncio.wait({stopper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            waker.cancel()

    async def publish_once(self, producer: AIOKafkaProducer, *, limit: int | None = None) -> int:
        """Publish one batch of pending rows; return how many the broker acknowledged."""
        limit = limit or self._batch_size
        if self._is_postgres:
            return await self._publish_postgres(producer, limit)
        return await self._publish_sqlite(producer, limit)

    def _pending(self, limit: int):  # type: ignore[no-untyped-def]
        m = OutboxMessage
        return (
            select(m.id, m.topic, m.key, m.event_type, m.envelope)  # type: ignore[call-overload]
            .where(OutboxMessage.published_at.is_(None))  # type: ignore[union-attr]
            .order_by(OutboxMessage.id)  # type: ignore[arg-type]
            .limit(limit)
        )

    async def _publish_postgres(self, producer: AIOKafkaProducer, limit: int) -> int:
        async with self._sessions() as session, session.begin():
            locked = await session.execute(
                text("SELECT pg_try_advisory_xact_lock(:id)"), {"id": _RELAY_LOCK_ID}
            )
            if not locked.scalar_one():
                return 0
            result = await session.execute(self._pending(limit).with_for_update(skip_locked=True))
            rows = [_Pending(*row) for row in result.all()]
            acked, error = await self._send(producer, rows)
            await self._mark(session, acked, rows, error)
        if error is not None:
            raise PublishError(error)
        return len(acked)

    async def _publish_sqlite(self, producer: AIOKafkaProducer, limit: int) -> int:
        async with self._read_sessions() as session:
            rows = [_Pending(*row) for row in (await session.execute(self._pending(limit))).all()]
            await session.rollback()
        if not rows:
            return 0
        acked, error = await self._send(producer, rows)
        async with self._sessions() as session, session.begin():
            await self._mark(session, acked, rows, error)
        if error is not None:
            raise PublishError(error)
        return len(acked)

    async def _send(
        self, producer: AIOKafkaProducer, rows: list[_Pending]
    ) -> tuple[list[_Pending], str | None]:
        futures = []
        error: str | None = None
        for row in rows:
            event = CloudEvent.model_validate(row.envelope)
            try:
                futures.append(await self._send_one(producer, row, event))
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                break
        results = await asyncio.gather(*futures, return_exceptions=True)
        acked: list[_Pending] = []
        for row, result in zip(rows, results, strict=False):
            if isinstance(result, BaseException):
                error = error or f"{type(result).__name__}: {result}"
            else:
                acked.append(row)
                self._metrics.events_published.labels(row.topic, row.event_type).inc()
        return acked, error

    async def _send_one(
        self, producer: AIOKafkaProducer, row: _Pending, event: CloudEvent
    ) -> asyncio.Future[Any]:
        """Hand one row to the producer; with tracing on, in a span of the staging trace (the
        aiokafka instrumentation's send span, and its `traceparent` header, nest in it)."""

        def send() -> Any:
            return producer.send(
                row.topic,
                value=encode_data(event),
                key=row.key.encode(),
                headers=to_kafka_headers(event),
            )

        if not tracing.tracing_enabled():
            return await send()  # type: ignore[no-any-return]
        parent = tracing.context_from(event.traceparent, event.tracestate)
        with tracing.start_span(
            f"outbox publish {row.event_type}",
            parent=parent,
            kind=SpanKind.INTERNAL,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": row.topic,
                "messaging.message.id": event.id,
                "cloudevents.event_id": event.id,
                "cloudevents.event_type": row.event_type,
                "fabrique.outbox.id": row.id,
            },
        ):
            return await send()  # type: ignore[no-any-return]

    async def _mark(
        self,
        session: AsyncSession,
        acked: list[_Pending],
        rows: list[_Pending],
        error: str | None,
    ) -> None:
        now = datetime.now(UTC)
        if acked:
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_([r.id for r in acked]))  # type: ignore[union-attr]
                .values(published_at=now)
            )
        if error is None:
            return
        acked_ids = {r.id for r in acked}
        failed = [r.id for r in rows if r.id not in acked_ids]
        if failed:
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(failed[:1]))  # type: ignore[union-attr]
                .values(attempts=OutboxMessage.attempts + 1, last_error=error[:2000])
            )

    async def _refresh_gauges(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._gauges_at < 1.0:
            return
        self._gauges_at = now
        try:
            async with self._read_sessions() as session:
                count, oldest = (
                    await session.execute(
                        select(func.count(), func.min(OutboxMessage.created_at)).where(
                            OutboxMessage.published_at.is_(None)  # type: ignore[union-attr]
                        )
                    )
                ).one()
                await session.rollback()
        except Exception as exc:
            log.warning("outbox relay: could not read the backlog (%s)", exc)
            return
        self._metrics.outbox_pending.set(count)
        if oldest is None:
            self._metrics.outbox_oldest_age.set(0)
        else:
            if oldest.tzinfo is None:
                oldest = oldest.replace(tzinfo=UTC)
            self._metrics.outbox_oldest_age.set((datetime.now(UTC) - oldest).total_seconds())
