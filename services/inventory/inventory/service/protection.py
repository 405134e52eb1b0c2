"""No net loss of production surface: a change that removes production m² names the
compensation that makes it good, or an officer records it as uncompensated; late
compensations and uncompensated losses are flagged, and the balance reads them all.

The rule runs inside the unit change's transaction (`cover_loss`), so the change, its ledger
entry, its compensation and its event are written together or not at all.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.auth import Principal, Role
from fabkit.db import on_commit
from fabkit.errors import ProblemError
from inventory import repository as repo
from inventory.domain import SpaceKind, UnitStatus, UseClass, production_surface
from inventory.metrics import UNCOMPENSATED_M2
from inventory.models import SurfaceCompensation, SurfaceLedgerEntry, Unit
from inventory.schemas import (
    ArrondissementBalance,
    BalanceMonth,
    CompensationDelivery,
    CompensationIn,
    CompensationOut,
    CompensationStatus,
    SurfaceBalance,
    SurfaceFlag,
    SurfaceFlags,
    UncompensatedIn,
)
from inventory.service.common import Sessions, actor, new_id

# Moving a site between arrondissements is a correction, not a loss: its two entries count in
# the net balance of each arrondissement but are not losses the rule asks to make good.
RELOCATIONS = frozenset({"relocated_out", "relocated_in"})
COVER_ROLES = frozenset({Role.OFFICER, Role.ADMIN})


def today() -> date:
    """The day lateness is judged on, in UTC like the ledger's timestamps."""
    return datetime.now(UTC).date()


def is_late(compensation: SurfaceCompensation, on: date) -> bool:
    """A compensation still planned after its due day is late."""
    return compensation.status == CompensationStatus.PLANNED.value and compensation.due_on < on


def compensation_out(compensation: SurfaceCompensation, on: date | None = None) -> CompensationOut:
    return CompensationOut(
        id=compensation.id,
        arrondissement=compensation.arrondissement,
        m2=compensation.m2,
        status=CompensationStatus(compensation.status),
        due_on=compensation.due_on,
        description=compensation.description,
        project_id=compensation.project_id,
        unit_id=compensation.unit_id,
        delivered_on=compensation.delivered_on,
        late=is_late(compensation, on or today()),
        version=compensation.version,
        created_at=compensation.created_at,
        updated_at=compensation.updated_at,
    )


# The rule --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LossCover:
    """What a loss of production m² carries into the ledger: its compensation, or why none."""

    compensation: SurfaceCompensation | None = None
    uncompensated_reason: str | None = None


async def cover_loss(
    session: AsyncSession,
    principal: Principal,
    unit: Unit,
    *,
    loss_m2: float,
    why: str,
    compensation: CompensationIn | None,
    uncompensated: UncompensatedIn | None,
    min_reason_chars: int,
) -> LossCover:
    """Check what makes this loss good and stage its compensation (422/403 otherwise)."""
    loss = round(loss_m2, 2)
    if compensation is None and uncompensated is None:
        raise ProblemError(
            422,
            f"No net loss of production surface: {why} removes {loss:g} m² in the "
            f"{_ordinal(unit.arrondissement)} arrondissement, so the request must name its "
            "compensation (new production m² in the same arrondissement, planned or delivered, "
            "with a due date) in the field 'compensation', or a city officer must record it "
            "with 'uncompensated': {\"reason\": …}.",
            # A machine-readable code, so that a form (the portal's) can say it by the field.
            errors=[
                {
                    "field": "body.compensation",
                    "message": "a change that removes production m² needs a compensation",
                    "type": "compensation_required",
                }
            ],
        )
    if uncompensated is not None:
        if principal.role not in COVER_ROLES:
            raise ProblemError(
                403,
                "Only a city officer or an admin can record a loss of production surface as "
                "uncompensated; name its compensation in 'compensation' instead, or ask a "
                "city officer to record the change.",
            )
        if len(uncompensated.reason.strip()) < min_reason_chars:
            raise ProblemError(
                422,
                f"An uncompensated loss needs a reason of at least {min_reason_chars} "
                "characters in 'uncompensated.reason'; say why the m² cannot be made good.",
            )
        on_commit(session, lambda: UNCOMPENSATED_M2.labels(str(unit.arrondissement)).inc(loss))
        return LossCover(uncompensated_reason=uncompensated.reason.strip())
    assert compensation is not None
    return LossCover(
        compensation=await _stage_compensation(session, principal, unit, loss, compensation)
    )


async def _stage_compensation(
    session: AsyncSession, principal: Principal, unit: Unit, loss: float, data: CompensationIn
) -> SurfaceCompensation:
    if data.arrondissement != unit.arrondissement:
        raise ProblemError(
            422,
            f"The compensation is in the {_ordinal(data.arrondissement)} arrondissement but the "
            f"loss is in the {_ordinal(unit.arrondissement)}; 'compensation.arrondissement' must "
            "be the loss's, since production m² are made good where they are lost.",
        )
    if data.m2 + 1e-9 < loss:
        raise ProblemError(
            422,
            f"The compensation offers {data.m2:g} m² but the change removes {loss:g} m²; "
            f"set 'compensation.m2' to at least {loss:g}, or have a city officer record the "
            "loss as uncompensated.",
        )
    if data.status is CompensationStatus.DELIVERED and data.due_on > today():
        raise ProblemError(
            422,
            "A delivered compensation cannot be due in the future; give the day it was "
            "delivered in 'compensation.due_on', or make it 'planned'.",
        )
    if data.project_id is not None:
        await check_project_link(session, data.project_id, unit.arrondissement, "compensation.")
    if data.unit_id is not None:
        if data.unit_id == unit.id:
            raise ProblemError(
                422,
                "A unit cannot compensate its own loss; name another unit in "
                "'compensation.unit_id', or leave it out.",
            )
        await _check_delivering_unit(session, data.unit_id, unit.arrondissement, "compensation.")
    delivered = data.status is CompensationStatus.DELIVERED
    row = SurfaceCompensation(
        id=new_id(),
        arrondissement=data.arrondissement,
        m2=data.m2,
        status=data.status.value,
        due_on=data.due_on,
        description=data.description.strip(),
        project_id=data.project_id,
        unit_id=data.unit_id,
        delivered_on=data.due_on if delivered else None,
        created_by=actor(principal),
        delivered_by=actor(principal) if delivered else None,
    )
    session.add(row)
    await session.flush()
    return row


def refuse_cover_without_loss(
    compensation: CompensationIn | None, uncompensated: UncompensatedIn | None
) -> None:
    """422 when a change that removes no production m² carries what only a loss needs."""
    if compensation is not None or uncompensated is not None:
        field = "compensation" if compensation is not None else "uncompensated"
        raise ProblemError(
            422,
            f"This change removes no production m², so it takes no '{field}'; leave the field out.",
        )


def check_officer_change(principal: Principal, changed: Iterable[str], covered: bool) -> None:
    """A city officer changes a unit only to record a loss of production surface."""
    if principal.role is not Role.OFFICER:
        return
    extra = sorted(set(changed) - {"surface_m2", "use_class", "status"})
    if not covered or extra:
        raise ProblemError(
            403,
            "This change needs one of these roles: landlord, admin; a city officer may change "
            "a unit only to record a loss of production surface (surface_m2, use_class or "
            "status, with 'compensation' or 'uncompensated').",
        )


async def check_project_link(
    session: AsyncSession, project_id: str, arrondissement: int, prefix: str = ""
) -> None:
    """422 unless the project exists and lies in `arrondissement`."""
    project = await repo.get_project(session, project_id)
    if project is None:
        raise ProblemError(
            422,
            f"No development project with id {project_id}; check '{prefix}project_id' "
            "against GET /v1/projects, or leave it out.",
        )
    if project.arrondissement != arrondissement:
        raise ProblemError(
            422,
            f"Development project {project.name!r} is in the "
            f"{_ordinal(project.arrondissement)} arrondissement, not the "
            f"{_ordinal(arrondissement)}; link it only to units and compensations there.",
        )


async def _check_delivering_unit(
    session: AsyncSession, unit_id: str, arrondissement: int, prefix: str = ""
) -> Unit:
    unit = await repo.get_unit(session, unit_id)
    if unit is None:
        raise ProblemError(
            422, f"No unit with id {unit_id}; check '{prefix}unit_id' or leave it out."
        )
    surface = production_surface(
        UseClass(unit.use_class),
        unit.surface_m2,
        UnitStatus(unit.status),
        SpaceKind(unit.space_kind),
    )
    if surface <= 0:
        raise ProblemError(
            422,
            f"Unit {unit_id} adds no production surface (it is not a production unit, it is a "
            f"stall, or it is withdrawn); '{prefix}unit_id' must name a production unit.",
        )
    if unit.arrondissement != arrondissement:
        raise ProblemError(
            422,
            f"Unit {unit_id} is in the {_ordinal(unit.arrondissement)} arrondissement; "
            f"'{prefix}unit_id' must name a unit in the {_ordinal(arrondissement)}.",
        )
    return unit


# Compensations ---------------------------------------------------------------------------


async def get_compensation(sessions: Sessions, compensation_id: str) -> CompensationOut:
    async with sessions() as session:
        compensation = await repo.get_compensation(session, compensation_id)
    if compensation is None:
        raise ProblemError(404, f"No compensation with id {compensation_id}.")
    return compensation_out(compensation)


async def deliver_compensation(
    sessions: Sessions, principal: Principal, compensation_id: str, data: CompensationDelivery
) -> CompensationOut:
    """Mark a planned compensation delivered by a production unit of its arrondissement."""
    delivered_on = data.delivered_on or today()
    if delivered_on > today():
        raise ProblemError(
            422, "'delivered_on' is in the future; mark a compensation delivered once it is."
        )
    async with sessions() as session, session.begin():
        compensation = await repo.get_compensation(session, compensation_id, for_update=True)
        if compensation is None:
            raise ProblemError(404, f"No compensation with id {compensation_id}.")
        if compensation.status == CompensationStatus.DELIVERED.value:
            raise ProblemError(
                409,
                f"Compensation {compensation_id} was already delivered on "
                f"{compensation.delivered_on}; nothing to do.",
            )
        await _check_delivering_unit(session, data.unit_id, compensation.arrondissement)
        compensation.status = CompensationStatus.DELIVERED.value
        compensation.unit_id = data.unit_id
        compensation.delivered_on = delivered_on
        compensation.delivered_by = actor(principal)
        compensation.version += 1
        compensation.updated_at = datetime.now(UTC)
        await session.flush()
        return compensation_out(compensation)


# Flags -----------------------------------------------------------------------------------

_DO_UNCOMPENSATED = (
    "Find new production m² in this arrondissement (a development project, a vacant ground "
    "floor) and agree them with the landlord; until then the loss counts against the "
    "arrondissement's balance."
)
_DO_LATE = (
    "Ask the landlord or the project's developer where the promised m² stand; once a unit "
    "delivers them, mark the compensation delivered (POST /v1/surface/compensations/{id}/"
    "delivery with the unit's id)."
)


async def surface_flags(sessions: Sessions) -> SurfaceFlags:
    """Uncompensated losses and late compensations, with what an officer does about each."""
    on = today()
    async with sessions() as session:
        losses = await repo.uncompensated_losses(session)
        late = await repo.late_compensations(session, on)
        made_good = await repo.losses_of_compensations(session, {c.id for c in late})
    flags = [
        SurfaceFlag(
            kind="uncompensated_loss",
            arrondissement=e.arrondissement,
            m2=round(-e.delta_m2, 2),
            unit_id=e.unit_id,
            ledger_id=e.id,
            compensation_id=None,
            project_id=None,
            recorded_at=e.recorded_at,
            due_on=None,
            reason=e.uncompensated_reason,
            what_to_do=_DO_UNCOMPENSATED,
        )
        for e in losses
    ]
    for c in late:
        loss = made_good.get(c.id)
        flags.append(
            SurfaceFlag(
                kind="late_compensation",
                arrondissement=c.arrondissement,
                m2=c.m2,
                unit_id=loss.unit_id if loss else None,
                ledger_id=loss.id if loss else None,
                compensation_id=c.id,
                project_id=c.project_id,
                recorded_at=loss.recorded_at if loss else None,
                due_on=c.due_on,
                reason=c.description,
                what_to_do=_DO_LATE.replace("{id}", c.id),
            )
        )
    return SurfaceFlags(
        as_of=on, uncompensated_losses=len(losses), late_compensations=len(late), flags=flags
    )


# Balance ---------------------------------------------------------------------------------


@dataclass
class _Sums:
    net: float = 0.0
    gains: float = 0.0
    losses: float = 0.0
    compensated: float = 0.0
    uncompensated: float = 0.0
    uncompensated_losses: int = 0
    delivered: float = 0.0
    planned: float = 0.0
    late: float = 0.0
    late_count: int = 0

    def add(self, entry: SurfaceLedgerEntry, compensation: SurfaceCompensation | None) -> None:
        self.net += entry.delta_m2
        if entry.change in RELOCATIONS:
            return
        if entry.delta_m2 >= 0:
            self.gains += entry.delta_m2
            return
        self.losses += -entry.delta_m2
        if entry.uncompensated:
            self.uncompensated += -entry.delta_m2
            self.uncompensated_losses += 1
        elif compensation is not None:
            self.compensated += -entry.delta_m2


async def surface_balance(
    sessions: Sessions, *, since: date | None, until: date | None, arrondissement: int | None
) -> SurfaceBalance:
    """Per arrondissement: gains, losses and how they are made good, with a monthly series."""
    if since is not None and until is not None and until < since:
        raise ProblemError(422, "'to' is before 'from'; give a period that ends after it starts.")
    start = datetime.combine(since, time.min, UTC) if since else None
    end = datetime.combine(until + timedelta(days=1), time.min, UTC) if until else None
    on = today()
    async with sessions() as session:
        entries = await repo.ledger_between(session, start, end, arrondissement)
    totals: dict[int, _Sums] = defaultdict(_Sums)
    months: dict[int, dict[str, _Sums]] = defaultdict(lambda: defaultdict(_Sums))
    for entry, compensation in entries:
        totals[entry.arrondissement].add(entry, compensation)
        months[entry.arrondissement][entry.recorded_at.strftime("%Y-%m")].add(entry, compensation)
        if compensation is None:
            continue
        sums = totals[entry.arrondissement]
        if compensation.status == CompensationStatus.DELIVERED.value:
            sums.delivered += compensation.m2
        else:
            sums.planned += compensation.m2
            if is_late(compensation, on):
                sums.late += compensation.m2
                sums.late_count += 1
    rows = [_balance_row(arr, totals[arr], months[arr]) for arr in sorted(totals)]
    return SurfaceBalance(period_from=since, period_to=until, as_of=on, rows=rows)


def _balance_row(arr: int, sums: _Sums, months: dict[str, _Sums]) -> ArrondissementBalance:
    series, running = [], 0.0
    for month in sorted(months):
        m = months[month]
        running += m.net
        series.append(
            BalanceMonth(
                month=month,
                gains_m2=round(m.gains, 2),
                losses_m2=round(m.losses, 2),
                net_m2=round(m.net, 2),
                compensated_m2=round(m.compensated, 2),
                uncompensated_m2=round(m.uncompensated, 2),
                cumulative_net_m2=round(running, 2),
            )
        )
    return ArrondissementBalance(
        arrondissement=arr,
        label=f"Paris {arr}e",
        gains_m2=round(sums.gains, 2),
        losses_m2=round(sums.losses, 2),
        net_m2=round(sums.net, 2),
        compensated_m2=round(sums.compensated, 2),
        uncompensated_m2=round(sums.uncompensated, 2),
        uncompensated_losses=sums.uncompensated_losses,
        compensations_delivered_m2=round(sums.delivered, 2),
        compensations_planned_m2=round(sums.planned, 2),
        late_m2=round(sums.late, 2),
        late_compensations=sums.late_count,
        series=series,
    )


def _ordinal(arrondissement: int) -> str:
    return "1st" if arrondissement == 1 else f"{arrondissement}th"
