"""The production-surface ledger: entries written with each change, published once flushed,
and the reports read from it (now, at an instant, day by day, one unit's entries)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.auth import Principal
from fabkit.errors import ProblemError
from inventory import repository as repo
from inventory.events.published import ProductionSurfaceChanged, emit
from inventory.models import SurfaceCompensation, SurfaceLedgerEntry, Unit
from inventory.schemas import (
    LedgerEntryOut,
    SurfaceHistory,
    SurfacePoint,
    SurfaceReport,
    SurfaceTotal,
)
from inventory.service.common import Sessions, actor

# Entries staged in a session until publish_ledger flushes them (the events need their ids).
_PENDING = "inventory_pending_ledger"


def record_surface(
    session: AsyncSession,
    principal: Principal,
    unit: Unit,
    change: str,
    delta: float,
    after: float,
    reason: str | None,
    *,
    compensation: SurfaceCompensation | None = None,
    uncompensated_reason: str | None = None,
) -> None:
    """Stage a ledger entry for `unit` as it stands now; publish_ledger publishes it. A loss
    carries the compensation that makes it good, or the reason it is uncompensated."""
    entry = SurfaceLedgerEntry(
        unit_id=unit.id,
        site_id=unit.site_id,
        arrondissement=unit.arrondissement,
        change=change,
        delta_m2=delta,
        production_m2_after=after,
        reason=reason,
        actor=actor(principal),
        compensation_id=compensation.id if compensation else None,
        uncompensated=uncompensated_reason is not None,
        uncompensated_reason=uncompensated_reason,
    )
    repo.add_ledger_entry(session, entry)
    session.info.setdefault(_PENDING, []).append((entry, compensation))


async def publish_ledger(session: AsyncSession) -> None:
    """Publish the entries this transaction recorded, as production_surface.changed events."""
    entries: list[tuple[SurfaceLedgerEntry, SurfaceCompensation | None]] = session.info.pop(
        _PENDING, []
    )
    if not entries:
        return
    await session.flush()  # assigns the ledger ids the events carry
    for entry, compensation in entries:
        emit(session, entry.unit_id, ProductionSurfaceChanged.of(entry, compensation))


async def surface_report(sessions: Sessions, by: str, at: datetime | None) -> SurfaceReport:
    """Production m² by arrondissement or site, now or as the ledger stood at `at`."""
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=UTC)  # a date-time without offset is read as UTC
    async with sessions() as session:
        if at is None:
            rows = await repo.production_totals_now(session, by)
        else:
            rows = _totals_from_ledger(await repo.ledger_until(session, at), by)
        labels: dict[str, str] = {}
        if by == "site":
            sites = await repo.sites_by_id(session, {key for key, _, _ in rows})
            labels = {sid: s.name for sid, s in sites.items()}
    totals = [
        SurfaceTotal(
            key=key,
            label=labels.get(key, key) if by == "site" else f"Paris {int(key)}e",
            production_m2=round(m2, 2),
            units=count,
        )
        for key, m2, count in rows
    ]
    return SurfaceReport(
        by=by,
        at=at,
        total_production_m2=round(sum(t.production_m2 for t in totals), 2),
        rows=totals,
    )


def _totals_from_ledger(
    entries: Iterable[SurfaceLedgerEntry], by: str
) -> list[tuple[str, float, int]]:
    """Replay the ledger: the last entry of each unit says where it stood and its m²."""
    last: dict[str, SurfaceLedgerEntry] = {}
    for entry in entries:
        last[entry.unit_id] = entry
    sums: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for entry in last.values():
        if entry.production_m2_after <= 0:
            continue
        key = str(entry.arrondissement) if by == "arrondissement" else entry.site_id
        sums[key] += entry.production_m2_after
        counts[key] += 1
    order = sorted(sums, key=lambda k: int(k) if by == "arrondissement" else k)
    return [(k, sums[k], counts[k]) for k in order]


async def surface_history(
    sessions: Sessions,
    *,
    arrondissement: int | None,
    site_id: str | None,
    since: date | None,
    until: date | None,
) -> SurfaceHistory:
    """Production m² at the end of each day on which it changed (a step series)."""
    async with sessions() as session:
        entries = await repo.ledger_until(session, None)
    state: dict[str, SurfaceLedgerEntry] = {}
    points: dict[date, float] = {}

    def total() -> float:
        return sum(
            e.production_m2_after
            for e in state.values()
            if (arrondissement is None or e.arrondissement == arrondissement)
            and (site_id is None or e.site_id == site_id)
        )

    for entry in entries:
        state[entry.unit_id] = entry
        points[entry.recorded_at.date()] = total()
    series = [
        SurfacePoint(day=day, production_m2=round(m2, 2))
        for day, m2 in sorted(points.items())
        if (since is None or day >= since) and (until is None or day <= until)
    ]
    return SurfaceHistory(arrondissement=arrondissement, site_id=site_id, points=series)


async def unit_ledger(sessions: Sessions, unit_id: str) -> list[LedgerEntryOut]:
    """Every ledger entry of one unit, oldest first."""
    async with sessions() as session:
        if await repo.get_unit(session, unit_id) is None:
            raise ProblemError(404, f"No unit with id {unit_id}.")
        entries = await repo.ledger_of_unit(session, unit_id)
    return [LedgerEntryOut.model_validate(e, from_attributes=True) for e in entries]
