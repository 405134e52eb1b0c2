"""The consumer runner on the real broker and real databases: duplicates have one effect,
poison and failing events go to the dead-letter topic, the runner keeps going, offsets are
committed only after the database commit."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import Column, Integer, String, func, select
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.consumer import ConsumerRunner, TopicHandlers
from fabkit.db import make_engine, make_session_factory
from fabkit.events import CloudEvent, encode_data, to_kafka_headers
from fabkit.kafka import make_consumer, make_producer
from fabkit.localstack.kafka import TopicSpec, ensure_topics
from fabkit.metrics import ServiceMetrics
from fabkit.models import ProcessedEvent


class Effect(SQLModel, table=True):
    __tablename__ = "fabkit_test_effects"

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    event_id: str = Field(sa_column=Column(String(64), nullable=False))
    label: str = Field(sa_column=Column(String(64), nullable=False))


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/consumer.db"
    server = request.getfixturevalue("postgres_server")
    name = f"fk_{uuid.uuid4().hex[:12]}"
    server.create_database(name)
    return str(server.url(name))


def event(type_: str, label: str, event_id: str | None = None) -> CloudEvent:
    return CloudEvent(
        id=event_id or str(uuid.uuid4()),
        source="/test",
        type=type_,
        subject=label,
        data={"label": label},
    )


async def test_duplicates_poison_and_failures(database_url: str, kafka_broker: Any) -> None:
    bootstrap = kafka_broker.bootstrap
    topic, dlq = f"test.{uuid.uuid4().hex[:8]}.events", f"test.{uuid.uuid4().hex[:8]}.dlq"
    await ensure_topics(bootstrap, [TopicSpec(topic, 2, 3_600_000), TopicSpec(dlq, 1, 3_600_000)])
    engine = make_engine(database_url)
    async with engine.begin() as conn:
        await conn.run_sync(
            SQLModel.metadata.create_all,
            tables=[ProcessedEvent.__table__, Effect.__table__],  # type: ignore[attr-defined]
        )
    sessions = make_session_factory(engine)
    flaky_calls: dict[str, int] = {}

    async def record(session: AsyncSession, ev: CloudEvent) -> None:
        session.add(Effect(event_id=ev.id, label=ev.data["label"]))

    async def flaky(session: AsyncSession, ev: CloudEvent) -> None:
        flaky_calls[ev.id] = flaky_calls.get(ev.id, 0) + 1
        if flaky_calls[ev.id] <= 2:
            raise RuntimeError("transient failure")
        await record(session, ev)

    async def broken(session: AsyncSession, ev: CloudEvent) -> None:
        session.add(Effect(event_id=ev.id, label="half-written"))
        await session.flush()
        raise ValueError("this event can never be applied")

    a = event("test.recorded.v1", "A")
    records: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]] = []
    for ev in (
        a,
        a,
        event("test.flaky.v1", "B"),
        event("test.broken.v1", "C"),
        event("test.unknown.v1", "U"),
        event("test.ignored.v1", "I"),
        event("test.recorded.v1", "D"),
    ):
        records.append((b"k1", encode_data(ev), to_kafka_headers(ev)))
    records.insert(3, (b"k1", b"\xff not json", []))  # poison: not a CloudEvent at all

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    for key, value, headers in records:
        await producer.send_and_wait(topic, value=value, key=key, headers=headers)
    await producer.stop()

    group = f"group-{uuid.uuid4().hex[:8]}"
    runner = ConsumerRunner(
        group_id=group,
        topics={
            topic: TopicHandlers(
                handlers={
                    "test.recorded.v1": record,
                    "test.flaky.v1": flaky,
                    "test.broken.v1": broken,
                },
                ignored=frozenset({"test.ignored.v1"}),
            )
        },
        session_factory=sessions,
        consumer_factory=lambda: make_consumer(bootstrap, group, "test", topic),
        producer_factory=lambda: make_producer(bootstrap, "test"),
        dlq_topic=dlq,
        metrics=ServiceMetrics.for_service("fabkit_test"),
        max_attempts=3,
        retry_backoff=0.01,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:

        async def labels() -> list[str]:
            async with sessions() as session:
                return sorted((await session.execute(select(Effect.label))).scalars().all())

        for _ in range(100):
            if "D" in await labels():
                break
            await asyncio.sleep(0.2)
        assert await labels() == ["A", "B", "D"]
        # the last record's offset is committed once its transaction is in the database
        check = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
        )
        await check.start()
        try:
            tp = TopicPartition(topic, 0), TopicPartition(topic, 1)
            committed = [await check.committed(p) or 0 for p in tp]
            ends = await check.end_offsets(list(tp))
            for _ in range(20):
                if committed == [ends[p] for p in tp]:
                    break
                await asyncio.sleep(0.2)
                committed = [await check.committed(p) or 0 for p in tp]
            assert committed == [ends[p] for p in tp]
        finally:
            await check.stop()
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)

    assert flaky_calls and list(flaky_calls.values()) == [3]
    dead = AIOKafkaConsumer(
        dlq, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await dead.start()
    try:
        got = await dead.getmany(timeout_ms=3000)
        dead_records = [r for rs in got.values() for r in rs]
    finally:
        await dead.stop()
    reasons = sorted(dict(r.headers)["dlq_reason"].decode().split(":")[0] for r in dead_records)
    assert reasons == ["ValueError", "invalid CloudEvent", "unknown event type 'test.unknown.v1'"]
    assert all(dict(r.headers)["dlq_source_topic"].decode() == topic for r in dead_records)
    async with sessions() as session:
        outcomes = sorted((await session.execute(select(ProcessedEvent.outcome))).scalars().all())
    assert outcomes == ["applied", "applied", "applied", "dead_lettered", "dead_lettered"]
    await engine.dispose()


async def test_batches_apply_each_event_once(database_url: str, kafka_broker: Any) -> None:
    """Healthy batches go through one transaction; duplicates inside and across batches are
    recognised, so 250 records carrying 200 distinct events leave exactly 200 effects."""
    bootstrap = kafka_broker.bootstrap
    topic, dlq = f"test.{uuid.uuid4().hex[:8]}.events", f"test.{uuid.uuid4().hex[:8]}.dlq"
    await ensure_topics(bootstrap, [TopicSpec(topic, 1, 3_600_000), TopicSpec(dlq, 1, 3_600_000)])
    engine = make_engine(database_url)
    async with engine.begin() as conn:
        await conn.run_sync(
            SQLModel.metadata.create_all,
            tables=[ProcessedEvent.__table__, Effect.__table__],  # type: ignore[attr-defined]
        )
    sessions = make_session_factory(engine)

    async def record(session: AsyncSession, ev: CloudEvent) -> None:
        session.add(Effect(event_id=ev.id, label=ev.data["label"]))

    events = [event("test.recorded.v1", f"e{i}") for i in range(200)]
    stream = events[:100] + events[:25] + events[100:] + events[150:175]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    for ev in stream:
        await producer.send(topic, value=encode_data(ev), key=b"k", headers=to_kafka_headers(ev))
    await producer.flush()
    await producer.stop()

    group = f"group-{uuid.uuid4().hex[:8]}"
    runner = ConsumerRunner(
        group_id=group,
        topics={topic: TopicHandlers(handlers={"test.recorded.v1": record})},
        session_factory=sessions,
        consumer_factory=lambda: make_consumer(bootstrap, group, "test", topic),
        producer_factory=lambda: make_producer(bootstrap, "test"),
        dlq_topic=dlq,
        metrics=ServiceMetrics.for_service("fabkit_test"),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        for _ in range(100):
            async with sessions() as session:
                done = (
                    await session.execute(
                        select(func.count()).where(ProcessedEvent.consumer == group)
                    )
                ).scalar_one()
            if done >= 200:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # let any wrongly repeated effect land before counting
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
    async with sessions() as session:
        labels = (await session.execute(select(Effect.label))).scalars().all()
    assert len(labels) == 200
    assert sorted(labels) == sorted(f"e{i}" for i in range(200))
    await engine.dispose()
