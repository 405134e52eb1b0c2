"""Inventory reacts to leasing's lease events: a signed lease lets the unit (closing its
vacancy), an ended lease makes it available again (a new vacancy), through the landlord's
PATCH path; the same event twice has one effect; other lease types are ignored."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import select

from fabkit.events import CloudEvent, encode_data, to_kafka_headers
from fabkit.models import OutboxMessage, ProcessedEvent
from inventory.cli import migrate
from inventory.main import create_app
from inventory.settings import InventorySettings

from .conftest import Api, make_settings, read_events

LEASE_TOPIC = "leasing.lease.events"


@dataclass
class Record:
    """Just what the consumer runner reads of a Kafka record."""

    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]
    partition: int = 0
    offset: int = 0


def lease_event(kind: str, unit: dict[str, Any], lease_id: str | None = None) -> CloudEvent:
    """A lease event as leasing publishes it (leasing.lease.<kind>.v1, key = unit id)."""
    now = datetime.now(UTC)
    lease = {
        "lease_id": lease_id or str(uuid.uuid4()),
        "unit_id": unit["id"],
        "vacancy_id": unit["vacancy_id"] or str(uuid.uuid4()),
        "application_id": str(uuid.uuid4()),
        "artisan_id": str(uuid.uuid4()),
        "landlord_id": unit["landlord_id"],
        "programme_id": "hotels-industriels-jeunes-artisans",
        "status": {"signed": "active", "ended": "ended"}.get(kind, "offered"),
        "monthly_rent_eur": 1500.0,
        "start_date": date.today().isoformat(),
        "end_date": (date.today() + timedelta(days=365)).isoformat(),
        "offer_expires_at": now.isoformat(),
        "signed_at": now.isoformat(),
        "ended_on": None,
        "renewals": 0,
        "version": 2,
    }
    extra: dict[str, Any] = {
        "offered": {"artisan_id": lease["artisan_id"], "offered_at": now.isoformat()},
        "signed": {"signed_at": now.isoformat()},
        "ended": {"ending": "ended", "ended_on": date.today().isoformat(), "reason": "moved"},
        "renewed": {"previous_end_date": lease["end_date"]},
    }[kind]
    return CloudEvent(
        source="/fabrique/leasing",
        type=f"leasing.lease.{kind}.v1",
        subject=unit["id"],
        data={"lease": lease, **extra},
    )


def record_of(event: CloudEvent) -> Record:
    return Record(
        topic=LEASE_TOPIC,
        key=(event.subject or "").encode(),
        value=encode_data(event),
        headers=to_kafka_headers(event),
    )


@contextlib.asynccontextmanager
async def running(settings: InventorySettings) -> AsyncIterator[tuple[Api, Any]]:
    await asyncio.to_thread(migrate, settings)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://inventory") as client:
            yield Api(client, settings), app


@pytest.fixture
async def inventory(database_url: str, kafka_broker: Any) -> AsyncIterator[tuple[Api, Any]]:
    # Lease events are applied through the runner here; a consumer group of this test's own
    # would read every lease event earlier tests left on the shared broker.
    settings = make_settings(
        database_url,
        kafka_broker.bootstrap,
        consumer_group=f"inventory-test-{uuid.uuid4().hex[:8]}",
        run_consumers=False,
    )
    async with running(settings) as ready:
        yield ready


async def vacant_unit(api: Api) -> tuple[dict[str, Any], dict[str, str]]:
    _, owner = await api.new_landlord()
    site = await api.new_site(owner)
    unit = await api.new_unit(site["id"], owner, status="available")
    return unit, owner


async def feed(app: Any, *events: CloudEvent) -> None:
    runner = app.state.runtime.consumers[0]
    for event in events:
        await runner.process(record_of(event), None)


async def unit_events(app: Any, unit_id: str) -> list[str]:
    async with app.state.runtime.sessions() as session:
        rows = await session.execute(
            select(OutboxMessage.event_type)
            .where(OutboxMessage.key == unit_id, OutboxMessage.topic == "inventory.unit.events")
            .order_by(OutboxMessage.id)
        )
        return [t.rsplit(".", 2)[1] for t in rows.scalars().all()]


async def test_a_signed_lease_lets_the_unit_and_an_ended_one_reopens_it(
    inventory: tuple[Api, Any],
) -> None:
    api, app = inventory
    unit, _ = await vacant_unit(api)
    first_vacancy = unit["vacancy_id"]
    lease_id = str(uuid.uuid4())

    await feed(app, lease_event("signed", unit, lease_id))
    r = await api.client.get(f"/v1/units/{unit['id']}")
    assert r.json()["status"] == "leased" and r.json()["vacancy_id"] is None
    assert await unit_events(app, unit["id"]) == [
        "registered",
        "vacancy_opened",
        "updated",
        "vacancy_closed",
    ]

    await feed(app, lease_event("ended", unit, lease_id))
    reopened = (await api.client.get(f"/v1/units/{unit['id']}")).json()
    assert reopened["status"] == "available"
    assert reopened["vacancy_id"] not in (None, first_vacancy)
    assert (await unit_events(app, unit["id"]))[-2:] == ["updated", "vacancy_opened"]
    ledger = (await api.client.get(f"/v1/units/{unit['id']}/surface-ledger")).json()
    assert [e["change"] for e in ledger] == ["registered"]


async def test_the_same_lease_event_twice_has_one_effect(inventory: tuple[Api, Any]) -> None:
    api, app = inventory
    unit, _ = await vacant_unit(api)
    signed = lease_event("signed", unit)

    await feed(app, signed, signed)
    # redelivered under a new id (a retry upstream): the unit is already leased, nothing moves
    await feed(app, signed.model_copy(update={"id": str(uuid.uuid4())}))

    assert await unit_events(app, unit["id"]) == [
        "registered",
        "vacancy_opened",
        "updated",
        "vacancy_closed",
    ]
    r = await api.client.get(f"/v1/units/{unit['id']}")
    assert r.json()["version"] == 2
    async with app.state.runtime.sessions() as session:
        outcomes = (
            (
                await session.execute(
                    select(ProcessedEvent.event_id).order_by(ProcessedEvent.event_id)
                )
            )
            .scalars()
            .all()
        )
    assert len(outcomes) == 2  # the original id once, and the redelivery


async def test_other_lease_events_unknown_units_and_unleased_units_change_nothing(
    inventory: tuple[Api, Any],
) -> None:
    api, app = inventory
    unit, _ = await vacant_unit(api)
    ghost = {**unit, "id": str(uuid.uuid4())}

    await feed(
        app,
        lease_event("offered", unit),
        lease_event("renewed", unit),
        lease_event("ended", unit),  # the unit is not leased: it stays available
        lease_event("signed", ghost),  # a unit this inventory never had
    )

    r = await api.client.get(f"/v1/units/{unit['id']}")
    assert r.json()["status"] == "available" and r.json()["vacancy_id"] == unit["vacancy_id"]
    assert await unit_events(app, unit["id"]) == ["registered", "vacancy_opened"]
    assert (await api.client.get(f"/v1/units/{ghost['id']}")).status_code == 404
    metrics = (await api.client.get("/metrics")).text
    assert 'inventory_lease_events_unmatched_total{type="leasing.lease.signed.v1"}' in metrics


async def start_group_at_end(bootstrap: str, group: str, topic: str) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        await consumer.commit(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()


async def test_over_the_broker_and_a_lease_inventory_cannot_apply_is_dead_lettered(
    database_url: str, kafka_broker: Any
) -> None:
    settings = make_settings(
        database_url,
        kafka_broker.bootstrap,
        consumer_group=f"inventory-test-{uuid.uuid4().hex[:8]}",
        consumer_max_attempts=1,
    )
    await start_group_at_end(kafka_broker.bootstrap, settings.consumer_group, LEASE_TOPIC)
    async with running(settings) as (api, app):
        unit, _ = await vacant_unit(api)
        closed, owner = await vacant_unit(api)
        # the landlord took this one off the market: a lease on it cannot be applied
        r = await api.client.patch(
            f"/v1/units/{closed['id']}", json={"status": "unavailable"}, headers=owner
        )
        assert r.status_code == 200, r.text
        signed, impossible = lease_event("signed", unit), lease_event("signed", closed)
        producer = AIOKafkaProducer(bootstrap_servers=kafka_broker.bootstrap)
        await producer.start()
        try:
            for event in (impossible, signed, signed):
                await producer.send_and_wait(
                    LEASE_TOPIC,
                    value=encode_data(event),
                    key=(event.subject or "").encode(),
                    headers=to_kafka_headers(event),
                )
        finally:
            await producer.stop()

        for _ in range(100):
            if (await api.client.get(f"/v1/units/{unit['id']}")).json()["status"] == "leased":
                break
            await asyncio.sleep(0.2)
        assert (await api.client.get(f"/v1/units/{unit['id']}")).json()["status"] == "leased"
        assert (await unit_events(app, unit["id"])).count("vacancy_closed") == 1
        assert (await api.client.get(f"/v1/units/{closed['id']}")).json()["status"] == (
            "unavailable"
        )
    dead = await read_events(kafka_broker.bootstrap, "inventory.dlq", closed["id"], expect=1)
    assert len(dead) == 1
    assert b"cannot go from 'unavailable' to 'leased'" in dict(dead[0].headers)["dlq_reason"]
