"""With the broker killed the API keeps accepting writes; once it is back every event is
published exactly once, in per-unit order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from fabkit.localstack.kafka import KafkaBroker, ensure_topics, load_topic_specs
from fabkit.models import OutboxMessage
from inventory.cli import migrate
from inventory.main import create_app

from .conftest import Api, headers_of, make_settings, read_events


@pytest.fixture
async def own_broker(tmp_path: Path) -> AsyncIterator[KafkaBroker]:
    broker = KafkaBroker(tmp_path / "kafka")
    await asyncio.to_thread(broker.start)
    await ensure_topics(broker.bootstrap, load_topic_specs())
    yield broker
    await asyncio.to_thread(broker.stop)


async def pending(app: Any) -> int:
    async with app.state.runtime.sessions() as session:
        rows = await session.execute(
            select(OutboxMessage.id).where(OutboxMessage.published_at.is_(None))  # type: ignore[union-attr]
        )
        return len(rows.all())


async def test_writes_survive_a_killed_broker_and_publish_once_in_order(
    database_url: str, own_broker: KafkaBroker
) -> None:
    settings = make_settings(database_url, own_broker.bootstrap)
    await asyncio.to_thread(migrate, settings)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://inventory") as client:
            api = Api(client, settings)
            _, owner = await api.new_landlord()
            site = await api.new_site(owner)
            units = [await api.new_unit(site["id"], owner) for _ in range(4)]

            await asyncio.to_thread(own_broker.kill)
            acknowledged = 0
            for round_ in range(6):
                status = "available" if round_ % 2 == 0 else "unavailable"
                for unit in units:
                    r = await client.patch(
                        f"/v1/units/{unit['id']}", json={"status": status}, headers=owner
                    )
                    assert r.status_code == 200, r.text
                    acknowledged += 1
            assert acknowledged == 24
            assert await pending(app) > 0, "events were published while the broker was dead"

            await asyncio.to_thread(own_broker.restart)
            for _ in range(120):
                if await pending(app) == 0:
                    break
                await asyncio.sleep(0.5)
            assert await pending(app) == 0, "outbox not drained after the broker came back"

            async with app.state.runtime.sessions() as session:
                rows = (
                    (
                        await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))  # type: ignore[arg-type]
                    )
                    .scalars()
                    .all()
                )
    for unit in units:
        expected = [
            r.event_id for r in rows if r.key == unit["id"] and r.topic == "inventory.unit.events"
        ]
        # registered, then 6 x (updated + vacancy opened/closed)
        assert len(expected) == 13
        records = await read_events(
            own_broker.bootstrap, "inventory.unit.events", unit["id"], expect=13
        )
        published = [headers_of(r)["ce_id"] for r in records]
        assert published == expected, "lost, duplicated or reordered events"
