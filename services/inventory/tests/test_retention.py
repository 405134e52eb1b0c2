"""Inventory's retention job prunes the outbox's published rows 8 days after publication (never
pending ones), runs on its own as a background loop, and sets the gauge of the oldest personal
record per table; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from prometheus_client import REGISTRY
from sqlalchemy import select

from fabkit.db import make_engine, make_session_factory
from fabkit.models import OutboxMessage
from inventory.cli import migrate
from inventory.models import Landlord
from inventory.service.retention import apply_retention, run_retention_loop
from inventory.settings import InventorySettings

NOW = datetime.now(UTC).replace(microsecond=0)


def _row(published_days_ago: float | None, created_days_ago: float = 30) -> OutboxMessage:
    event_id = f"evt-{uuid.uuid4()}"
    return OutboxMessage(
        event_id=event_id,
        topic="inventory.unit.events",
        key="unit-1",
        event_type="inventory.unit.updated.v1",
        envelope={"id": event_id},
        created_at=NOW - timedelta(days=created_days_ago),
        published_at=None
        if published_days_ago is None
        else NOW - timedelta(days=published_days_ago),
    )


def gauge(table: str) -> float | None:
    return REGISTRY.get_sample_value("fabrique_personal_data_oldest_seconds", {"table": table})


async def test_the_job_prunes_the_published_outbox_and_sets_the_gauge(database_url: str) -> None:
    await asyncio.to_thread(
        migrate, InventorySettings(environment="test", database_url=database_url)
    )
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    rows = {
        "old": _row(9, created_days_ago=40),  # published 9 days ago: goes
        "recent": _row(7),  # within the topics' retention and a day: stays
        "pending": _row(None, created_days_ago=50),  # never published: stays
    }
    try:
        async with sessions() as session, session.begin():
            session.add_all(rows.values())
            session.add(
                Landlord(
                    id=str(uuid.uuid4()),
                    name=f"Bailleur {uuid.uuid4().hex[:6]}",
                    kind="social_landlord",
                    contact_email="contact@bailleur.example",
                    created_at=NOW - timedelta(days=100),
                )
            )
            session.add(
                Landlord(
                    id=str(uuid.uuid4()),
                    name=f"Bailleur {uuid.uuid4().hex[:6]}",
                    kind="social_landlord",
                    contact_email=None,  # no personal data: not counted
                    created_at=NOW - timedelta(days=300),
                )
            )
        report = await apply_retention(sessions, NOW)
        assert report.ok and report.counts == {"outbox": 1}
        async with sessions() as session:
            left = set((await session.execute(select(OutboxMessage.event_id))).scalars())
        assert left == {rows["recent"].event_id, rows["pending"].event_id}
        # The oldest left: the pending row (50 days); the landlord with an e-mail (100 days).
        assert gauge("outbox_messages") == 50 * 86_400
        assert gauge("landlords") == 100 * 86_400
        again = await apply_retention(sessions, NOW)
        assert again.counts == {"outbox": 0}
    finally:
        await engine.dispose()


async def test_the_background_loop_runs_the_job_until_stopped(database_url: str) -> None:
    await asyncio.to_thread(
        migrate, InventorySettings(environment="test", database_url=database_url)
    )
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    old = _row(9)
    try:
        async with sessions() as session, session.begin():
            session.add(old)
        stop = asyncio.Event()
        loop = asyncio.create_task(run_retention_loop(sessions, 0.2, stop))

        async def gone() -> bool:
            async with sessions() as session:
                found = await session.execute(
                    select(OutboxMessage).where(OutboxMessage.event_id == old.event_id)
                )
                return found.first() is None

        for _ in range(100):
            if await gone():
                break
            await asyncio.sleep(0.1)
        assert await gone(), "the loop did not prune the published row"
        stop.set()
        await asyncio.wait_for(loop, 5)
    finally:
        await engine.dispose()
