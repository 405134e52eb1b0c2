"""Notifications' retention job on a big table: how long one run takes and how long its longest
transaction holds the database (the job works in batches of `BATCH` rows so that the delivery
worker and the consumer, which write the same tables, never wait long behind it).

    uv run python -m bench.retention [--deliveries 100000] [--database postgresql+asyncpg://…]

Fills a fresh migrated notifications database (SQLite by default) with N deliveries whose final
state is past the 90 days (half delivered, half dead, each with its message and error text),
N/10 feed items past their year, N/10 processed events past 60 days, and as many rows of each
within their period, then times `apply_retention` as of now. Every transaction's time from BEGIN
to COMMIT is recorded from the engine's own events.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, insert, select

from fabkit.db import make_engine, make_session_factory
from fabkit.models import ProcessedEvent
from notifications.cli import migrate
from notifications.models import Delivery, FeedItem
from notifications.service.retention import BATCH, apply_retention
from notifications.settings import NotificationsSettings

CHUNK = 5_000


def _delivery(i: int, now: datetime, days: int) -> dict[str, Any]:
    at = now - timedelta(days=days)
    delivered = i % 2 == 0
    return {
        "id": str(uuid.uuid4()),
        "event_id": f"ev-{i}-{days}",
        "recipient_key": f"sub-{i % 997}",
        "channel": "email" if delivered else "webhook",
        "kind": "vacancy_alert",
        "artisan_id": f"art-{i % 5000}",
        "subscription_id": None,
        "vacancy_id": None,
        "payload": {"type": "vacancy.opened", "data": {"subscription": {"name": f"Atelier {i}"}}},
        "status": "delivered" if delivered else "dead",
        "digest": False,
        "batch_id": None,
        "attempts": 1 if delivered else 8,
        "next_attempt_at": at,
        "claimed_until": None,
        "last_error": None if delivered else f"HTTP 500: body of receiver {i}",
        "last_status_code": 200 if delivered else 500,
        "occurred_at": at,
        "traceparent": None,
        "created_at": at,
        "delivered_at": at if delivered else None,
        "cleared_at": None,
    }


async def _fill(sessions: Any, n: int, now: datetime) -> None:
    for days in (100, 30):  # past the 90 days, then within them
        for start in range(0, n, CHUNK):
            rows = [_delivery(i, now, days) for i in range(start, min(n, start + CHUNK))]
            async with sessions() as session, session.begin():
                await session.execute(insert(Delivery), rows)
    for days in (400, 200):
        feed = [
            {
                "artisan_id": f"art-{i % 5000}",
                "delivery_id": str(uuid.uuid4()),
                "subscription_id": None,
                "kind": "vacancy_alert",
                "title": f"Atelier {i}",
                "body": {"i": i},
                "created_at": now - timedelta(days=days),
                "read_at": None,
            }
            for i in range(n // 10)
        ]
        processed = [
            {
                "consumer": "notifications",
                "event_id": f"ev-{days}-{i}",
                "event_type": "inventory.unit.vacancy_opened.v1",
                "outcome": "applied",
                "processed_at": now - timedelta(days=days // 4),
            }
            for i in range(n // 10)
        ]
        async with sessions() as session, session.begin():
            await session.execute(insert(FeedItem), feed)
            await session.execute(insert(ProcessedEvent), processed)


async def run(n: int, database_url: str) -> dict[str, Any]:
    """Fill, run the job once, return the figures."""
    await asyncio.to_thread(
        migrate, NotificationsSettings(environment="test", database_url=database_url)
    )
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    now = datetime.now(UTC)
    try:
        await _fill(sessions, n, now)
        began: list[float] = []
        held: list[float] = []
        event.listen(engine.sync_engine, "begin", lambda conn: began.append(time.perf_counter()))
        event.listen(
            engine.sync_engine,
            "commit",
            lambda conn: held.append(time.perf_counter() - began[-1]) if began else None,
        )
        started = time.perf_counter()
        report = await apply_retention(sessions, now)
        total = time.perf_counter() - started
        async with sessions() as session:
            left = (
                await session.execute(
                    select(func.count()).select_from(Delivery).where(Delivery.cleared_at.is_(None))  # type: ignore[union-attr]
                )
            ).scalar_one()
    finally:
        await engine.dispose()
    assert left == n, f"{left} deliveries still hold their content, {n} expected"
    counts = {r.rule: r.count for r in report.results}
    return {
        "deliveries_cleared": counts["delivery_content"],
        "feed_deleted": counts["feed"],
        "processed_deleted": counts["processed_events"],
        "run_s": total,
        "transactions": len(held),
        "longest_transaction_ms": max(held) * 1000,
        "median_transaction_ms": statistics.median(held) * 1000,
        "rows_per_s": (counts["delivery_content"] + counts["feed"] + counts["processed_events"])
        / total,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=100_000)
    parser.add_argument("--database", default=None, help="a database URL (default: SQLite)")
    args = parser.parse_args()
    # sqlmodel's advice to prefer `exec()` for ORM selects; these are Core statements.
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database or f"sqlite+aiosqlite:///{Path(tmp) / 'notifications.db'}"
        figures = asyncio.run(run(args.deliveries, url))
    print(f"batch {BATCH} rows; {args.deliveries:,} deliveries past the period and as many within")
    for name, value in figures.items():
        print(f"{name}: {value:,.1f}" if isinstance(value, float) else f"{name}: {value:,}")


if __name__ == "__main__":
    main()
