"""Topics with personal data, on the real broker: a dead letter holds a pointer, never the
person's data (nor does its reason or any log line), the replay tool reads the record back from
its source, and compaction removes a person's records once a later record of their key (the
erasure marker) has left the active segment."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pydantic import BaseModel
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.consumer import ConsumerRunner, TopicHandlers, describe_error
from fabkit.db import make_engine, make_session_factory
from fabkit.events import CloudEvent, encode_data, to_kafka_headers
from fabkit.kafka import make_consumer, make_producer
from fabkit.localstack.kafka import TopicSpec, ensure_topics, load_topic_specs, repo_root
from fabkit.metrics import ServiceMetrics
from fabkit.models import ProcessedEvent

NAME, EMAIL, SIRET = "Camille Rouxel", "camille.rouxel@example.org", "73282932000074"


class Profile(BaseModel):
    display_name: str
    siret: int  # the poison: a SIRET with a letter in it cannot be read as a number


def profile_event(siret: str) -> CloudEvent:
    return CloudEvent(
        id=str(uuid.uuid4()),
        source="/test",
        type="test.artisan.updated.v1",
        subject="artisan-1",
        data={"display_name": NAME, "contact_email": EMAIL, "siret": siret},
    )


async def read_all(bootstrap: str, topic: str) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    try:
        got = await consumer.getmany(timeout_ms=3000)
        return sorted((r for rs in got.values() for r in rs), key=lambda r: r.offset)
    finally:
        await consumer.stop()


def test_the_artisan_topic_is_declared_personal_and_compacted() -> None:
    spec = next(s for s in load_topic_specs() if s.name == "leasing.artisan.events")
    configs = dict(spec.configs)
    assert spec.personal_data
    assert configs["cleanup.policy"] == "compact"
    assert int(configs["max.compaction.lag.ms"]) <= 3_600_000
    others = [s.name for s in load_topic_specs() if s.personal_data]
    assert others == ["leasing.artisan.events"]


def test_describe_error_never_quotes_the_input() -> None:
    try:
        Profile.model_validate({"display_name": NAME, "siret": "7328X"})
    except Exception as exc:
        text = describe_error(exc)
    assert text == "ValidationError: siret: int_parsing"
    secret = RuntimeError(f"UNIQUE constraint failed: {EMAIL}")
    assert EMAIL not in describe_error(secret, personal_data=True)
    assert describe_error(secret, personal_data=True).startswith("RuntimeError")
    assert EMAIL in describe_error(secret)  # other topics keep the message for operators


async def test_a_dead_letter_of_a_personal_topic_holds_a_pointer(
    kafka_broker: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bootstrap = kafka_broker.bootstrap
    topic, dlq = f"test.{uuid.uuid4().hex[:8]}.people", f"test.{uuid.uuid4().hex[:8]}.dlq"
    await ensure_topics(bootstrap, [TopicSpec(topic, 1, 3_600_000), TopicSpec(dlq, 1, 3_600_000)])
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/c.db")
    async with engine.begin() as conn:
        await conn.run_sync(
            SQLModel.metadata.create_all,
            tables=[ProcessedEvent.__table__],  # type: ignore[attr-defined]
        )
    applied: list[str] = []

    async def apply(session: AsyncSession, ev: CloudEvent) -> None:
        applied.append(Profile.model_validate(ev.data).display_name)

    poison = profile_event("7328293200007X")
    good = profile_event(SIRET)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for ev in (poison, good):
            await producer.send_and_wait(
                topic, value=encode_data(ev), key=b"artisan-1", headers=to_kafka_headers(ev)
            )
    finally:
        await producer.stop()

    group = f"group-{uuid.uuid4().hex[:8]}"
    runner = ConsumerRunner(
        group_id=group,
        topics={
            topic: TopicHandlers(handlers={"test.artisan.updated.v1": apply}, personal_data=True)
        },
        session_factory=make_session_factory(engine),
        consumer_factory=lambda: make_consumer(bootstrap, group, "test", topic),
        producer_factory=lambda: make_producer(bootstrap, "test"),
        dlq_topic=dlq,
        metrics=ServiceMetrics.for_service("fabkit_personal_test"),
        max_attempts=2,
        retry_backoff=0.01,
    )
    stop = asyncio.Event()
    caplog.set_level(logging.INFO)  # what the services log (aiokafka's DEBUG dumps raw records)
    caplog.set_level(logging.DEBUG, logger="fabkit")
    task = asyncio.create_task(runner.run(stop))
    try:
        for _ in range(100):
            if applied:
                break
            await asyncio.sleep(0.2)
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
    await engine.dispose()
    assert applied == [NAME]

    (letter,) = await read_all(bootstrap, dlq)
    headers = {k: v.decode() for k, v in letter.headers}
    raw = letter.value + b"".join(v for _, v in letter.headers)
    for value in (NAME, EMAIL, "7328293200007X"):
        assert value.encode() not in raw, value
        assert value not in caplog.text, value
    assert headers["dlq_value"] == "withheld"
    assert headers["dlq_reason"] == "ValidationError: siret: int_parsing"
    assert b'"offset":0' in letter.value and poison.id.encode() in letter.value

    # The replay tool reads the record back from the source topic at its offset.
    spec = importlib.util.spec_from_file_location(
        "dlq_replay", repo_root() / "deploy" / "tools" / "dlq_replay.py"
    )
    assert spec and spec.loader
    tool = importlib.util.module_from_spec(spec)
    sys.modules["dlq_replay"] = tool
    spec.loader.exec_module(tool)
    letters = await tool.read_dead_letters(bootstrap, dlq)
    ready, gone = await tool.resolve_withheld(bootstrap, letters)
    assert not gone and len(ready) == 1
    assert NAME.encode() in ready[0].value and ready[0].value == encode_data(poison)


async def test_compaction_leaves_only_the_erasure_marker(kafka_broker: Any) -> None:
    """The platform's topic settings, with the lag shortened: the marker must leave the active
    segment (an append after the roll time rolls it), then the cleaner drops what it
    supersedes. Measured here: from the marker to the personal record gone."""
    bootstrap = kafka_broker.bootstrap
    topic = f"test.{uuid.uuid4().hex[:8]}.people"
    declared = dict(
        next(s for s in load_topic_specs() if s.name == "leasing.artisan.events").configs
    )
    configs = {**declared, "max.compaction.lag.ms": "1000", "segment.ms": "1000"}
    await ensure_topics(bootstrap, [TopicSpec(topic, 1, 3_600_000, tuple(configs.items()))])
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        profile = profile_event(SIRET)
        await producer.send_and_wait(
            topic, value=encode_data(profile), key=b"a-1", headers=to_kafka_headers(profile)
        )
        await producer.send_and_wait(topic, value=b'{"name": "someone else"}', key=b"a-2")
        erased = time.monotonic()
        await producer.send_and_wait(topic, value=b'{"erased": true}', key=b"a-1")
        await asyncio.sleep(1.5)
        # Any later append rolls the segment that holds the marker (its roll time is past).
        await producer.send_and_wait(topic, value=b'{"roll": true}', key=b"roll")
        deadline = time.monotonic() + 90
        while True:
            records = await read_all(bootstrap, topic)
            if not any(NAME.encode() in (r.value or b"") for r in records):
                break
            assert time.monotonic() < deadline, "the cleaner did not compact within 90 s"
            await asyncio.sleep(1)
            await producer.send_and_wait(topic, value=b'{"roll": true}', key=b"roll")
        took = time.monotonic() - erased
    finally:
        await producer.stop()
    keys = [r.key for r in records]
    assert b"a-1" in keys and keys.count(b"a-1") == 1  # the marker stays, alone
    assert b"a-2" in keys  # the other person's record is intact
    print(f"personal record compacted away {took:.1f} s after the marker")


async def test_an_existing_topic_is_brought_to_its_declared_configs(kafka_broker: Any) -> None:
    """A broker that had the topic on `delete` before (an older deployment) gets it compacted
    by the next topic creation run; topics that declare nothing are left alone."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    bootstrap = kafka_broker.bootstrap
    topic = f"test.{uuid.uuid4().hex[:8]}.people"
    await ensure_topics(bootstrap, [TopicSpec(topic, 1, 3_600_000)])
    declared = (("cleanup.policy", "compact"), ("min.cleanable.dirty.ratio", "0.01"))
    assert await ensure_topics(bootstrap, [TopicSpec(topic, 1, 3_600_000, declared)]) == []
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (response,) = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic)]
        )
    finally:
        await admin.close()
    configs = {entry[0]: entry[1] for entry in response.resources[0][4]}
    assert configs["cleanup.policy"] == "compact"
    assert configs["min.cleanable.dirty.ratio"] == "0.01"
    assert configs["retention.ms"] == "3600000"
