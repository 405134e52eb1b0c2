"""Published outbox rows are pruned after their topic's retention; pending rows never are."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from fabkit.db import make_engine, make_session_factory
from fabkit.models import OutboxMessage
from fabkit.outbox import prune_published
from inventory.cli import migrate
from inventory.settings import InventorySettings

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _row(n: int, published_at: datetime | None) -> OutboxMessage:
    return OutboxMessage(
        event_id=f"evt-{n}",
        topic="inventory.unit.events",
        key=f"unit-{n}",
        event_type="inventory.unit.updated.v1",
        envelope={"id": f"evt-{n}", "data": {"n": n}},
        created_at=NOW - timedelta(days=30),
        published_at=published_at,
    )


async def test_prune_deletes_only_rows_published_before_the_cut(database_url: str) -> None:
    await asyncio.to_thread(
        migrate, InventorySettings(environment="test", database_url=database_url)
    )
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    try:
        async with sessions() as session, session.begin():
            session.add(_row(1, NOW - timedelta(days=9)))  # published long ago: goes
            session.add(_row(2, NOW - timedelta(days=8)))  # goes
            session.add(_row(3, NOW - timedelta(days=6)))  # within retention: stays
            session.add(_row(4, None))  # never published: stays, whatever its age
        async with sessions() as session, session.begin():
            pruned = await prune_published(session, NOW - timedelta(days=7))
        assert pruned == 2
        async with sessions() as session:
            left = (await session.execute(select(OutboxMessage.event_id))).scalars().all()
        assert sorted(left) == ["evt-3", "evt-4"]
        async with sessions() as session, session.begin():
            assert await prune_published(session, NOW - timedelta(days=7)) == 0
    finally:
        await engine.dispose()
