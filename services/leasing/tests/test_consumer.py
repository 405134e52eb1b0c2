"""Leasing's consumer of inventory.unit.events: the same event twice has one effect, over the
runner directly and over the real broker; poison goes to leasing.dlq and the rest goes on."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import func, select

from fabkit.events import encode_data, to_kafka_headers
from fabkit.models import ProcessedEvent
from leasing.models import ApplicationDecision

from .conftest import (
    UNIT_TOPIC,
    Api,
    FakeUnit,
    eventually,
    make_settings,
    read_events,
    start_group_at_end,
    started_app,
)


async def decisions(api: Api) -> list[str]:
    async with api.sessions() as session:
        rows = await session.execute(
            select(ApplicationDecision.decision).order_by(ApplicationDecision.id)
        )
        return list(rows.scalars().all())


async def test_the_same_event_twice_has_one_effect(api: Api) -> None:
    landlord_id, _ = api.landlord()
    unit = FakeUnit(landlord_id=landlord_id)
    registered = unit.registered()
    opened = unit.open()
    await api.feed(registered, registered, *opened, *opened)
    _, token = await api.register()
    app = await api.apply(token, unit.unit_id)

    closed = unit.close("leased")
    await api.feed(*closed, *closed, closed[1])

    assert await decisions(api) == ["closed"]
    decided = [e for e in await api.outbox(key=app["id"]) if e.event_type.endswith("decided.v1")]
    assert len(decided) == 1
    async with api.sessions() as session:
        processed = (
            await session.execute(select(func.count()).select_from(ProcessedEvent))
        ).scalar_one()
    assert processed == 5  # registered, updated, opened, updated, closed
    listing = (await api.client.get(f"/v1/units/{unit.unit_id}")).json()
    assert listing["status"] == "leased" and listing["version"] == 3


async def test_a_vacancy_closing_twice_under_new_ids_closes_once(api: Api) -> None:
    """Redelivery under a new event id (a producer retry upstream) is still harmless."""
    landlord_id, _ = api.landlord()
    unit = await api.vacant_unit(landlord_id)
    _, token = await api.register()
    await api.apply(token, unit.unit_id)
    vacancy = unit.vacancy_id
    closed = unit.close("unavailable")
    again = closed[1].model_copy(update={"id": str(uuid.uuid4())})
    await api.feed(*closed, again)

    assert await decisions(api) == ["closed"]
    assert (await api.client.get(f"/v1/units/{unit.unit_id}")).json()["vacancy_id"] is None
    assert vacancy is not None


@pytest.fixture
async def consuming(database_url: str, kafka_broker: Any) -> AsyncIterator[Api]:
    settings = make_settings(database_url, kafka_broker.bootstrap, run_consumers=True)
    await start_group_at_end(kafka_broker.bootstrap, settings.consumer_group, UNIT_TOPIC)
    async with started_app(settings) as ready:
        yield ready


async def test_over_the_broker_duplicates_are_no_ops_and_poison_is_dead_lettered(
    consuming: Api,
) -> None:
    api = consuming
    landlord_id, _ = api.landlord()
    unit = FakeUnit(landlord_id=landlord_id)
    events = [unit.registered(), *unit.open()]
    producer = AIOKafkaProducer(bootstrap_servers=api.settings.kafka_bootstrap)
    await producer.start()
    try:
        key = unit.unit_id.encode()
        await producer.send_and_wait(UNIT_TOPIC, value=b"\x00 not json", key=key)
        for event in events + events:  # everything delivered twice
            await producer.send_and_wait(
                UNIT_TOPIC, value=encode_data(event), key=key, headers=to_kafka_headers(event)
            )
    finally:
        await producer.stop()

    async def listed() -> dict[str, Any] | None:
        r = await api.client.get(f"/v1/units/{unit.unit_id}")
        return r.json() if r.status_code == 200 and r.json()["vacancy_id"] else None

    listing = await eventually(listed)
    assert listing["vacancy_id"] == unit.vacancy_id

    async def all_processed() -> int | None:
        async with api.sessions() as session:
            n = (
                await session.execute(select(func.count()).select_from(ProcessedEvent))
            ).scalar_one()
        return n if n >= 3 else None

    assert await eventually(all_processed) == 3
    dead = await read_events(api.settings.kafka_bootstrap, "leasing.dlq", unit.unit_id, expect=1)
    assert len(dead) == 1
    assert dict(dead[0].headers)["dlq_consumer"] == api.settings.consumer_group.encode()
