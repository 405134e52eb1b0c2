"""Retention in inventory (docs/privacy.md): published outbox rows are deleted 8 days after
publication (the topics keep 7), daily, in the process that runs the relay; and the gauge of the
oldest personal record per table (the outbox's events, landlords' contact e-mail). Landlords
themselves stay while they take part (their name is on the public units).

One run is `apply_retention(sessions, now)`, as in the other services; logs carry counts only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.models import OutboxMessage
from fabkit.outbox import prune_published
from inventory.metrics import PERSONAL_DATA_OLDEST
from inventory.models import Landlord

log = logging.getLogger(__name__)

Sessions = async_sessionmaker[AsyncSession]

# The topics keep 7 days (deploy/topics.json); a day more, so the relay's row outlives the event.
OUTBOX_DAYS = 8
#: The first run waits this long after start-up: a process restarted often (deploys) still runs
#: the job, and one started briefly (a test, a migration check) does not.
FIRST_RUN_S = 600.0


@dataclass
class RetentionReport:
    """One run: the instant it applied the rules as of, and the rows each rule deleted."""

    now: datetime
    counts: dict[str, int]
    errors: dict[str, str]

    @property
    def ok(self) -> bool:
        return not self.errors


async def apply_retention(sessions: Sessions, now: datetime) -> RetentionReport:
    """Prune the outbox's published rows older than OUTBOX_DAYS as of `now`; refresh the gauge."""
    report = RetentionReport(now=now, counts={"outbox": 0}, errors={})
    try:
        async with sessions() as session, session.begin():
            report.counts["outbox"] = await prune_published(
                session, now - timedelta(days=OUTBOX_DAYS)
            )
    except Exception as exc:
        # The type only: a database error can quote the row.
        report.errors["outbox"] = type(exc).__name__
        log.warning("retention rule outbox failed (%s)", report.errors["outbox"])
    log.info("retention applied", extra={"counts": report.counts, "ok": report.ok})
    try:
        await refresh_oldest(sessions, now)
    except Exception as exc:
        log.warning("could not refresh the oldest personal record gauge (%s)", type(exc).__name__)
    return report


def start_retention(runtime: Any, interval_s: float) -> None:
    """Run the daily job as one of the runtime's background tasks (stopped with it)."""
    runtime.tasks.append(
        asyncio.create_task(
            run_retention_loop(runtime.sessions, interval_s, runtime.stop), name="retention"
        )
    )


async def run_retention_loop(sessions: Sessions, interval_s: float, stop: asyncio.Event) -> None:
    """Apply retention every `interval_s` (the first run FIRST_RUN_S after start) until `stop`."""
    wait = min(FIRST_RUN_S, interval_s)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), wait)
        if stop.is_set():
            return
        await apply_retention(sessions, datetime.now(UTC))
        wait = interval_s


async def oldest_personal(session: AsyncSession, now: datetime) -> dict[str, float]:
    """Per table, the age in seconds of its oldest personal record (0: none)."""
    dated = {
        "outbox_messages": select(func.min(col(OutboxMessage.created_at))),
        "landlords": select(func.min(col(Landlord.created_at))).where(
            col(Landlord.contact_email).is_not(None)
        ),
    }
    ages: dict[str, float] = {}
    for table, stmt in dated.items():
        oldest = (await session.execute(stmt)).scalar()
        if oldest is not None and oldest.tzinfo is None:  # SQLite gives naive UTC back
            oldest = oldest.replace(tzinfo=UTC)
        ages[table] = max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
    return ages


async def refresh_oldest(sessions: Sessions, now: datetime | None = None) -> dict[str, float]:
    """Set `fabrique_personal_data_oldest_seconds{table}` for inventory's tables."""
    async with sessions() as session:
        ages = await oldest_personal(session, now or datetime.now(UTC))
    for table, age in ages.items():
        PERSONAL_DATA_OLDEST.labels(table).set(age)
    return ages
