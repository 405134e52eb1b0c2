"""Consumer runner: idempotent handlers, offsets committed after the DB commit, dead letters."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from opentelemetry.trace import SpanKind
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit import tracing
from fabkit.events import CloudEvent, InvalidEvent, from_kafka
from fabkit.kafka import start_with_retry
from fabkit.logging import event_context
from fabkit.metrics import ServiceMetrics
from fabkit.models import ProcessedEvent

log = logging.getLogger(__name__)

Handler = Callable[[AsyncSession, CloudEvent], Awaitable[None]]


class PermanentEventError(Exception):
    """Raised by a handler when retrying cannot help: the event is dead-lettered at once."""


def describe_error(exc: BaseException, *, personal_data: bool = False) -> str:
    """An error for a log line or a dead letter's reason.

    A validation error names the fields and what was wrong with each, never the input (pydantic
    puts the offending values in its message). On a topic with personal data every other error
    is reduced to its type: a database error's message can quote the row's values.
    """
    name = type(exc).__name__
    if isinstance(exc, ValidationError):
        fields = "; ".join(
            f"{'.'.join(str(part) for part in e['loc']) or '(root)'}: {e['type']}"
            for e in exc.errors(include_url=False, include_context=False, include_input=False)
        )
        return f"{name}: {fields}"
    if personal_data:
        return f"{name} (message withheld: the topic carries personal data)"
    return f"{name}: {exc}"


def dead_letter_pointer(record: ConsumerRecord[Any, Any], event: CloudEvent | None) -> bytes:
    """What a dead letter of a personal-data topic holds instead of the record's value: where
    the record is (its compacted topic keeps the key's latest value until erasure), its id and
    type. Nothing of the person."""
    return json.dumps(
        {
            "withheld": "personal data: read the record from its source topic",
            "source": {
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
            },
            "event_id": event.id if event is not None else None,
            "event_type": event.type if event is not None else None,
        },
        separators=(",", ":"),
    ).encode()


@dataclass(frozen=True)
class TopicHandlers:
    """What one consumer does with each event type of a topic.

    Types in `ignored` are known parts of the producer's contract this consumer does not act
    on; any other type without a handler is treated as poison and dead-lettered.
    """

    handlers: Mapping[str, Handler]
    ignored: frozenset[str] = field(default_factory=frozenset)
    # Namespaces a consumer does not act on (e.g. "leasing.lease."): new types there are not
    # poison, so a producer may add types without breaking this consumer.
    ignored_prefixes: tuple[str, ...] = ()
    # The topic carries personal data (deploy/topics.json `personal_data`, a compacted topic
    # that erasure cleans): a dead letter holds a pointer to the record, never its value, and
    # errors are described without the values that caused them (logs and DLQ headers alike).
    personal_data: bool = False

    def ignores(self, event_type: str) -> bool:
        return event_type in self.ignored or event_type.startswith(self.ignored_prefixes)


class ConsumerRunner:
    """Runs one consumer group until stopped, surviving broker outages and poison events."""

    def __init__(
        self,
        *,
        group_id: str,
        topics: Mapping[str, TopicHandlers],
        session_factory: async_sessionmaker[AsyncSession],
        consumer_factory: Callable[[], AIOKafkaConsumer],
        producer_factory: Callable[[], AIOKafkaProducer],
        dlq_topic: str,
        metrics: ServiceMetrics,
        max_attempts: int = 5,
        retry_backoff: float = 0.2,
    ) -> None:
        self.group_id = group_id
        self._topics = topics
        self._sessions = session_factory
        self._consumer_factory = consumer_factory
        self._producer_factory = producer_factory
        self._dlq_topic = dlq_topic
        self._metrics = metrics
        self._max_attempts = max_attempts
        self._retry_backoff = retry_backoff
        self.connected = False
        self._lag_labels: set[tuple[str, str]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set; any broker failure restarts the clients."""
        while not stop.is_set():
            consumer = await start_with_retry(self._consumer_factory, self.group_id, stop)
            if consumer is None:
                return
            producer = await start_with_retry(self._producer_factory, f"{self.group_id} dlq", stop)
            if producer is None:
                await consumer.stop()
                return
            try:
                self.connected = True
                await self._poll(consumer, producer, stop)
            except KafkaError as exc:
                log.warning("%s: broker error (%s); reconnecting", self.group_id, exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)
            finally:
                self.connected = False
                with contextlib.suppress(Exception):
                    await consumer.stop()
                with contextlib.suppress(Exception):
                    await producer.stop()

    async def _poll(
        self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, stop: asyncio.Event
    ) -> None:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=500, max_records=200)
            for tp, records in batches.items():
                await self.process_batch(records, producer)
                try:
                    await consumer.commit({tp: records[-1].offset + 1})
                except CommitFailedError as exc:
                    # A rebalance took the partition; its new owner re-reads these records
                    # and the processed-events table turns them into no-ops.
                    log.info("%s: commit refused after rebalance (%s)", self.group_id, exc)
            await self._observe_lag(consumer)

    async def _observe_lag(self, consumer: AIOKafkaConsumer) -> None:
        assigned = {(tp.topic, str(tp.partition)) for tp in consumer.assignment()}
        for labels in self._lag_labels - assigned:
            # A partition taken away by a rebalance is another replica's to report now.
            with contextlib.suppress(KeyError):
                self._metrics.consumer_lag.remove(*labels)
        self._lag_labels = assigned
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            if high is None:
                continue
            position = await consumer.position(tp)
            self._metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(
                max(high - position, 0)
            )

    async def process_batch(
        self, records: list[ConsumerRecord[Any, Any]], producer: AIOKafkaProducer
    ) -> None:
        """Apply one partition's records in a single transaction when all of them are healthy;
        otherwise (a poison record, a failing handler) go one record at a time."""
        if len(records) > 1:
            try:
                outcomes = await self._apply_batch(records)
            except Exception as exc:
                personal = any(
                    (routes := self._topics.get(r.topic)) is not None and routes.personal_data
                    for r in records
                )
                log.info(
                    "%s: batch of %d fell back to one by one (%s)",
                    self.group_id,
                    len(records),
                    describe_error(exc, personal_data=personal),
                )
            else:
                for topic, event_type, outcome in outcomes:
                    self._metrics.events_consumed.labels(topic, event_type, outcome).inc()
                return
        for record in records:
            await self.process(record, producer)

    async def _apply_batch(
        self, records: list[ConsumerRecord[Any, Any]]
    ) -> list[tuple[str, str, str]]:
        items: list[tuple[ConsumerRecord[Any, Any], CloudEvent, Handler | None]] = []
        for record in records:
            event = from_kafka(record.headers, record.value)  # InvalidEvent -> slow path
            routes = self._topics.get(record.topic)
            handler = routes.handlers.get(event.type) if routes else None
            if handler is None and not (routes is not None and routes.ignores(event.type)):
                raise LookupError(f"unknown event type {event.type!r}")
            items.append((record, event, handler))
        outcomes: list[tuple[str, str, str]] = []
        async with self._sessions() as session, session.begin():
            ids = [event.id for _, event, handler in items if handler is not None]
            seen = set(
                (
                    await session.execute(
                        select(ProcessedEvent.event_id).where(
                            ProcessedEvent.consumer == self.group_id,
                            ProcessedEvent.event_id.in_(ids),
                        )
                    )
                )
                .scalars()
                .all()
            )
            for record, event, handler in items:
                if handler is None:
                    outcomes.append((record.topic, event.type, "ignored"))
                    continue
                if event.id in seen:
                    outcomes.append((record.topic, event.type, "duplicate"))
                    continue
                seen.add(event.id)
                with self._handling(record, event):
                    await handler(session, event)
                session.add(
                    ProcessedEvent(
                        consumer=self.group_id,
                        event_id=event.id,
                        event_type=event.type,
                        outcome="applied",
                    )
                )
                outcomes.append((record.topic, event.type, "applied"))
        return outcomes

    async def process(self, record: ConsumerRecord[Any, Any], producer: AIOKafkaProducer) -> None:
        """Apply one record exactly once, or dead-letter it; raise only if the DLQ is down."""
        topic = record.topic
        try:
            event = from_kafka(record.headers, record.value)
        except InvalidEvent as exc:
            routes = self._topics.get(topic)
            personal = routes is not None and routes.personal_data
            reason = f"invalid CloudEvent: {describe_error(exc, personal_data=personal)}"
            await self._dead_letter(record, producer, reason, None)
            return
        routes = self._topics.get(topic)
        handler = routes.handlers.get(event.type) if routes else None
        if handler is None:
            if routes is not None and routes.ignores(event.type):
                self._metrics.events_consumed.labels(topic, event.type, "ignored").inc()
                return
            await self._dead_letter(record, producer, f"unknown event type {event.type!r}", event)
            return
        with self._handling(record, event):
            await self._process(record, producer, handler, event)

    @contextlib.contextmanager
    def _handling(self, record: ConsumerRecord[Any, Any], event: CloudEvent) -> Iterator[None]:
        """Log records carry the event id; with tracing on, a CONSUMER span in the event's
        trace (the record's `traceparent`, else its `ce_traceparent`) is current."""
        with contextlib.ExitStack() as stack:
            stack.enter_context(event_context(event.id))
            if tracing.tracing_enabled():
                stack.enter_context(
                    tracing.start_span(
                        f"consume {event.type}",
                        parent=tracing.context_from_headers(record.headers),
                        kind=SpanKind.CONSUMER,
                        attributes={
                            "messaging.system": "kafka",
                            "messaging.operation.type": "process",
                            "messaging.destination.name": record.topic,
                            "messaging.consumer.group.name": self.group_id,
                            "messaging.destination.partition.id": str(record.partition),
                            "messaging.kafka.offset": record.offset,
                            "messaging.message.id": event.id,
                            "cloudevents.event_id": event.id,
                            "cloudevents.event_type": event.type,
                        },
                    )
                )
            yield

    async def _process(
        self,
        record: ConsumerRecord[Any, Any],
        producer: AIOKafkaProducer,
        handler: Handler,
        event: CloudEvent,
    ) -> None:
        topic = record.topic
        routes = self._topics.get(topic)
        personal = routes is not None and routes.personal_data
        last_error = ""
        for attempt in range(1, self._max_attempts + 1):
            try:
                outcome = await self._apply(handler, event)
                self._metrics.events_consumed.labels(topic, event.type, outcome).inc()
                return
            except PermanentEventError as exc:
                last_error = describe_error(exc, personal_data=personal)
                self._metrics.events_failed.labels(topic, event.type).inc()
                break
            except Exception as exc:
                last_error = describe_error(exc, personal_data=personal)
                self._metrics.events_failed.labels(topic, event.type).inc()
                log.warning(
                    "%s: event %s (%s) failed, attempt %d/%d: %s",
                    self.group_id,
                    event.id,
                    event.type,
                    attempt,
                    self._max_attempts,
                    last_error,
                )
                if attempt < self._max_attempts:
                    await asyncio.sleep(self._retry_backoff * 2 ** (attempt - 1))
        await self._dead_letter(record, producer, last_error, event)

    async def _apply(self, handler: Handler, event: CloudEvent) -> str:
        try:
            async with self._sessions() as session, session.begin():
                if await session.get(ProcessedEvent, (self.group_id, event.id)) is not None:
                    return "duplicate"
                await handler(session, event)
                session.add(
                    ProcessedEvent(
                        consumer=self.group_id,
                        event_id=event.id,
                        event_type=event.type,
                        outcome="applied",
                    )
                )
        except IntegrityError:
            # Another replica recorded the same event id first: its effect already stands.
            async with self._sessions() as session:
                if await session.get(ProcessedEvent, (self.group_id, event.id)) is not None:
                    return "duplicate"
            raise
        return "applied"

    async def _dead_letter(
        self,
        record: ConsumerRecord[Any, Any],
        producer: AIOKafkaProducer,
        reason: str,
        event: CloudEvent | None,
    ) -> None:
        headers = list(record.headers or ()) + [
            ("dlq_reason", reason[:1000].encode()),
            ("dlq_consumer", self.group_id.encode()),
            ("dlq_source_topic", record.topic.encode()),
            ("dlq_source_partition", str(record.partition).encode()),
            ("dlq_source_offset", str(record.offset).encode()),
        ]
        routes = self._topics.get(record.topic)
        value = record.value
        if routes is not None and routes.personal_data:
            value = dead_letter_pointer(record, event)
            headers.append(("dlq_value", b"withheld"))
        await producer.send_and_wait(self._dlq_topic, value=value, key=record.key, headers=headers)
        self._metrics.events_dead_lettered.labels(record.topic).inc()
        log.error(
            "%s: dead-lettered %s[%d]@%d: %s",
            self.group_id,
            record.topic,
            record.partition,
            record.offset,
            reason,
        )
        if event is not None:
            with contextlib.suppress(IntegrityError):
                async with self._sessions() as session, session.begin():
                    if await session.get(ProcessedEvent, (self.group_id, event.id)) is None:
                        session.add(
                            ProcessedEvent(
                                consumer=self.group_id,
                                event_id=event.id,
                                event_type=event.type,
                                outcome="dead_lettered",
                            )
                        )


__all__ = ["ConsumerRunner", "Handler", "PermanentEventError", "TopicHandlers", "TopicPartition"]
