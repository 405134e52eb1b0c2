"""Event pipeline: outbox -> relay -> Kafka -> consumer runner, against raw aiokafka on the same
broker in the same run (issue: benchmarks, row 5)."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import func, select

from fabkit.consumer import ConsumerRunner, TopicHandlers
from fabkit.db import make_engine, make_session_factory
from fabkit.events import CloudEvent, encode_data, to_kafka_headers
from fabkit.kafka import make_consumer, make_producer
from fabkit.localstack.kafka import KafkaBroker, TopicSpec, ensure_topics
from fabkit.metrics import ServiceMetrics
from fabkit.migrations import upgrade
from fabkit.models import OutboxMessage, ProcessedEvent
from fabkit.outbox import OUTBOX_SIGNAL, OutboxRelay, OutboxSignal, add_to_outbox

MIGRATIONS = Path(__file__).resolve().parents[1] / "services/inventory/inventory/migrations"
PAYLOAD = {"unit": {"unit_id": "x" * 36, "note": "y" * 900}, "vacancy_id": "z" * 36}


def _event(i: int) -> CloudEvent:
    return CloudEvent(source="/bench", type="bench.event.v1", subject=f"u{i % 500}", data=PAYLOAD)


async def raw_produce(bootstrap: str, topic: str, n: int) -> float:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=2
    )
    await producer.start()
    events = [_event(i) for i in range(n)]
    start = time.perf_counter()
    futures = [
        await producer.send(
            topic, value=encode_data(e), key=e.subject.encode(), headers=to_kafka_headers(e)
        )
        for e in events
    ]
    await asyncio.gather(*futures)
    elapsed = time.perf_counter() - start
    await producer.stop()
    return n / elapsed


async def raw_consume(bootstrap: str, topic: str, n: int) -> float:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    seen = 0
    start = time.perf_counter()
    while seen < n:
        batch = await consumer.getmany(timeout_ms=500, max_records=500)
        seen += sum(len(r) for r in batch.values())
    elapsed = time.perf_counter() - start
    await consumer.stop()
    return n / elapsed


async def outbox_drain(bootstrap: str, topic: str, n: int, db_url: str) -> tuple[float, Any]:
    """Rows committed before the relay starts; rate = rows published and marked per second."""
    engine = make_engine(db_url)
    signal = OutboxSignal()
    sessions = make_session_factory(engine, info={OUTBOX_SIGNAL: signal})
    for chunk in range(0, n, 500):
        async with sessions() as session, session.begin():
            for i in range(chunk, min(chunk + 500, n)):
                ev = _event(i)
                add_to_outbox(session, topic=topic, key=ev.subject or "", event=ev)
    relay = OutboxRelay(
        sessions,
        lambda: make_producer(bootstrap, "bench-relay"),
        ServiceMetrics.for_service("bench"),
        signal,
        is_postgres=not db_url.startswith("sqlite"),
        batch_size=500,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    start = time.perf_counter()
    while True:
        async with sessions() as session:
            left = (
                await session.execute(
                    select(func.count()).where(OutboxMessage.published_at.is_(None))  # type: ignore[union-attr]
                )
            ).scalar_one()
        if left == 0:
            break
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - start
    stop.set()
    await task
    return n / elapsed, (engine, sessions)


async def runner_consume(bootstrap: str, topic: str, n: int, sessions: Any) -> float:
    """Consumer runner applying each event (dedupe row + commit) before committing offsets."""

    async def handler(session: Any, event: CloudEvent) -> None:
        return None

    group = f"bench-{uuid.uuid4().hex[:6]}"
    runner = ConsumerRunner(
        group_id=group,
        topics={topic: TopicHandlers(handlers={"bench.event.v1": handler})},
        session_factory=sessions,
        consumer_factory=lambda: make_consumer(bootstrap, group, "bench", topic),
        producer_factory=lambda: make_producer(bootstrap, "bench-dlq"),
        dlq_topic="bench.dlq",
        metrics=ServiceMetrics.for_service("bench"),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    start = time.perf_counter()
    while True:
        async with sessions() as session:
            done = (
                await session.execute(select(func.count()).where(ProcessedEvent.consumer == group))
            ).scalar_one()
        if done >= n:
            break
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - start
    stop.set()
    await task
    return n / elapsed


async def run(
    work: Path, n: int = 5000, repeats: int = 3, sustained_seconds: float = 20.0
) -> dict[str, Any]:
    broker = KafkaBroker(work / "kafka")
    await asyncio.to_thread(broker.start)
    rows: dict[str, list[float]] = {k: [] for k in ("raw_p", "relay", "raw_c", "runner")}
    try:
        await ensure_topics(broker.bootstrap, [TopicSpec("bench.dlq", 1, 3_600_000)])
        for r in range(repeats):
            raw_topic, topic = f"bench.raw.{r}", f"bench.outbox.{r}"
            await ensure_topics(
                broker.bootstrap,
                [TopicSpec(raw_topic, 6, 3_600_000), TopicSpec(topic, 6, 3_600_000)],
            )
            db_url = f"sqlite+aiosqlite:///{work}/bench-{r}.db"
            await asyncio.to_thread(upgrade, MIGRATIONS, db_url)
            rows["raw_p"].append(await raw_produce(broker.bootstrap, raw_topic, n))
            rate, (engine, sessions) = await outbox_drain(broker.bootstrap, topic, n, db_url)
            rows["relay"].append(rate)
            rows["raw_c"].append(await raw_consume(broker.bootstrap, raw_topic, n))
            rows["runner"].append(await runner_consume(broker.bootstrap, topic, n, sessions))
            await engine.dispose()
        med = {k: statistics.median(v) for k, v in rows.items()}
        # 40% of the pipeline's measured capacity (its slower stage), sustained with the
        # writer, the relay and the runner sharing one process.
        steady = None
        if sustained_seconds > 0:
            rate = 0.4 * min(med["relay"], med["runner"])
            steady = await sustained(work, broker.bootstrap, rate, sustained_seconds)
    finally:
        await asyncio.to_thread(broker.stop)
    return {"n": n, "repeats": repeats, "raw": rows, "median": med, "sustained": steady}


async def sustained(work: Path, bootstrap: str, rate: float, seconds: float) -> dict[str, Any]:
    """Outbox writer at a steady `rate`, relay and consumer runner running at the same time in
    one process (as in a service): lag = events committed − events applied by the runner,
    sampled every 0.5 s. It must not grow: its Theil–Sen slope over the run (events/s), its
    median in the first and last quarters, the lag left when the writer stops and the time to
    drain it are reported."""
    topic = f"bench.sustained.{uuid.uuid4().hex[:6]}"
    await ensure_topics(bootstrap, [TopicSpec(topic, 6, 3_600_000)])
    # The producing service's database (outbox) and the consuming service's (processed
    # events) are separate files, as they are on the platform.
    tag = uuid.uuid4().hex[:6]
    db_url = f"sqlite+aiosqlite:///{work}/sustained-producer-{tag}.db"
    consumer_url = f"sqlite+aiosqlite:///{work}/sustained-consumer-{tag}.db"
    await asyncio.to_thread(upgrade, MIGRATIONS, db_url)
    await asyncio.to_thread(upgrade, MIGRATIONS, consumer_url)
    engine = make_engine(db_url)
    consumer_engine = make_engine(consumer_url)
    signal = OutboxSignal()
    sessions = make_session_factory(engine, info={OUTBOX_SIGNAL: signal})
    consumer_sessions = make_session_factory(consumer_engine)
    metrics = ServiceMetrics.for_service("bench")
    relay = OutboxRelay(
        sessions,
        lambda: make_producer(bootstrap, "bench-sustained"),
        metrics,
        signal,
        is_postgres=False,
        batch_size=500,
    )

    async def handler(session: Any, event: CloudEvent) -> None:
        return None

    group = f"bench-sustained-{uuid.uuid4().hex[:6]}"
    runner = ConsumerRunner(
        group_id=group,
        topics={topic: TopicHandlers(handlers={"bench.event.v1": handler})},
        session_factory=consumer_sessions,
        consumer_factory=lambda: make_consumer(bootstrap, group, "bench", topic),
        producer_factory=lambda: make_producer(bootstrap, "bench-dlq"),
        dlq_topic="bench.dlq",
        metrics=metrics,
    )
    stop = asyncio.Event()
    tasks = [asyncio.create_task(relay.run(stop)), asyncio.create_task(runner.run(stop))]

    async def applied() -> int:
        async with consumer_sessions() as session:
            return int(
                (
                    await session.execute(
                        select(func.count()).where(ProcessedEvent.consumer == group)
                    )
                ).scalar_one()
            )

    written = 0
    samples: list[tuple[float, int]] = []
    tick = 0.02
    per_tick = rate * tick
    try:
        # The runner joins its group before the clock starts.
        async with sessions() as session, session.begin():
            add_to_outbox(session, topic=topic, key="warm", event=_event(0))
        written = 1
        while True:
            if await applied() >= 1:
                break
            await asyncio.sleep(0.1)
        t0 = time.monotonic()
        next_sample = t0
        owed = 0.0
        step = 0
        while time.monotonic() - t0 < seconds:
            step += 1
            owed += per_tick
            batch = int(owed)
            owed -= batch
            if batch:
                async with sessions() as session, session.begin():
                    for i in range(written, written + batch):
                        ev = _event(i)
                        add_to_outbox(session, topic=topic, key=ev.subject or "", event=ev)
                written += batch
            now = time.monotonic()
            if now >= next_sample:
                samples.append((now - t0, written - await applied()))
                next_sample += 0.5
            delay = t0 + step * tick - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        writing = time.monotonic() - t0
        lag_at_end = written - await applied()
        drain_started = time.monotonic()
        while True:
            if await applied() >= written or time.monotonic() - drain_started > 60:
                break
            await asyncio.sleep(0.05)
        drained = time.monotonic() - drain_started
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await engine.dispose()
        await consumer_engine.dispose()
    slope = _slope(samples)
    quarter = max(1, len(samples) // 4)
    return {
        "offered_rate": rate,
        "written": written - 1,
        "achieved_rate": (written - 1) / writing,
        "seconds": seconds,
        "lag_samples": [(round(t, 1), lag) for t, lag in samples],
        "max_lag": max((lag for _, lag in samples), default=0),
        "median_lag_first_quarter": statistics.median(lag for _, lag in samples[:quarter]),
        "median_lag_last_quarter": statistics.median(lag for _, lag in samples[-quarter:]),
        "lag_slope_per_s": slope,
        "lag_at_end": lag_at_end,
        "drain_s": drained,
    }


def _slope(points: list[tuple[float, int]]) -> float:
    """Theil–Sen slope (median of pairwise slopes): one burst does not make a trend."""
    slopes = [
        (y2 - y1) / (t2 - t1)
        for i, (t1, y1) in enumerate(points)
        for t2, y2 in points[i + 1 :]
        if t2 > t1
    ]
    return statistics.median(slopes) if slopes else 0.0
