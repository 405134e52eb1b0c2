"""Units: added and changed by their landlord (or an admin), searched and read by anyone.

Every change of a unit, from a landlord's PATCH or from a lease event, goes through
`apply_unit_changes`: the status move and the no-net-loss rule (a loss of production m² names
its compensation, or an officer records it as uncompensated: `service.protection`), then the
write, the events and the ledger, in the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.auth import Principal, Role
from fabkit.db import on_commit
from fabkit.errors import ProblemError
from fabkit.http import check_if_match, etag_of
from fabkit.idempotency import Idempotency, Written, run_idempotent
from fabkit.pagination import Page
from inventory import repository as repo
from inventory.domain import (
    SpaceKind,
    TransitionError,
    UnitStatus,
    UseClass,
    check_transition,
    period_problem,
    production_surface,
    protected_change,
    vacancy_change,
)
from inventory.events.published import (
    UnitRegistered,
    UnitSnapshot,
    UnitUpdated,
    UnitWithdrawn,
    VacancyClosed,
    VacancyOpened,
    emit,
)
from inventory.metrics import VACANCIES_OPENED
from inventory.models import LOGISTICS_COLUMNS, Landlord, Site, Unit
from inventory.schemas import CompensationIn, UncompensatedIn, UnitCreate, UnitOut, UnitPatch
from inventory.service.common import Sessions, check_owner, new_id, stored
from inventory.service.protection import (
    LossCover,
    check_officer_change,
    check_project_link,
    cover_loss,
    refuse_cover_without_loss,
)
from inventory.service.surface import publish_ledger, record_surface
from inventory.settings import InventorySettings

# Creating --------------------------------------------------------------------------------


async def create_unit(
    sessions: Sessions,
    principal: Principal,
    site_id: str,
    data: UnitCreate,
    idem: Idempotency | None,
) -> Written:
    """Add a unit to a site; one created available opens a vacancy at once."""

    async def create(session: AsyncSession) -> Written:
        return await insert_unit(session, principal, site_id, data)

    return await run_idempotent(sessions, idem, create)


async def insert_unit(
    session: AsyncSession, principal: Principal, site_id: str, data: UnitCreate
) -> Written:
    """Check and write one new unit with its events in the caller's transaction (POST and
    the CSV import share it, so a row is checked exactly as one unit sent alone)."""
    site = await repo.get_site(session, site_id)
    if site is None:
        raise ProblemError(404, f"No site with id {site_id}.")
    check_owner(principal, site.landlord_id, "site")
    if await repo.unit_reference_taken(session, site.id, data.reference):
        raise ProblemError(
            409, f"Site {site.name!r} already has a unit with reference {data.reference!r}."
        )
    _check_period(data.space_kind, site, data.period_start, data.period_end)
    if data.project_id is not None:
        await check_project_link(session, data.project_id, site.arrondissement)
    landlord = await _landlord_of(session, site.landlord_id)
    status = UnitStatus(data.status)
    unit = Unit(
        id=new_id(),
        site_id=site.id,
        landlord_id=site.landlord_id,
        arrondissement=site.arrondissement,
        site_kind=site.kind,
        **{column: getattr(site, column) for column in LOGISTICS_COLUMNS},
        **data.model_dump(exclude={"use_class", "status", "space_kind"}),
        use_class=data.use_class.value,
        space_kind=data.space_kind.value,
        status=status.value,
        current_vacancy_id=new_id() if status is UnitStatus.AVAILABLE else None,
    )
    session.add(unit)
    await session.flush()
    await repo.replace_trades(session, unit.id, data.allowed_trades)
    snapshot = UnitSnapshot.of(unit, site, landlord)
    emit(session, unit.id, UnitRegistered(unit=snapshot))
    if unit.current_vacancy_id:
        _open_vacancy(session, unit, snapshot)
    prod = production_surface(data.use_class, unit.surface_m2, status, data.space_kind)
    if prod > 0:
        record_surface(session, principal, unit, "registered", prod, prod, None)
    await publish_ledger(session)
    return Written(
        201,
        UnitOut.of(unit, site).model_dump(mode="json"),
        etag=etag_of(unit.version),
        location=f"/v1/units/{unit.id}",
    )


def _check_period(
    space_kind: SpaceKind, site: Site, period_start: date | None, period_end: date | None
) -> None:
    """422 or 409 when a unit's kind and period do not fit (domain.period_problem)."""
    problem = period_problem(space_kind, site.kind, period_start, period_end)
    if problem is not None:
        raise ProblemError(*problem)


# Reading ---------------------------------------------------------------------------------


async def get_unit(sessions: Sessions, unit_id: str) -> UnitOut:
    """One unit with its site, or 404."""
    async with sessions() as session:
        unit = await repo.get_unit(session, unit_id)
        if unit is None:
            raise ProblemError(404, f"No unit with id {unit_id}.")
        site = await repo.get_site(session, unit.site_id)
    assert site is not None
    return UnitOut.of(unit, site)


async def search_units(sessions: Sessions, query: repo.UnitSearch) -> Page[UnitOut]:
    """One page of the units that match every filter, and how many match in all."""
    async with sessions() as session:
        rows, total = await repo.search_units(session, query)
    return Page[UnitOut](
        items=[UnitOut.of(unit, site) for unit, site in rows],
        total=total,
        limit=query.page.limit,
        offset=query.page.offset,
    )


# Changing --------------------------------------------------------------------------------


async def update_unit(
    sessions: Sessions,
    settings: InventorySettings,
    principal: Principal,
    unit_id: str,
    patch: UnitPatch,
    if_match: str | None,
) -> Written:
    """A landlord's PATCH: status (opening or closing a vacancy) and attributes; a city
    officer's PATCH records a loss of production surface."""
    changes = patch.model_dump(
        exclude_unset=True, exclude={"reason", "compensation", "uncompensated"}
    )
    async with sessions() as session, session.begin():
        unit = await repo.get_unit(session, unit_id, for_update=True)
        if unit is None:
            raise ProblemError(404, f"No unit with id {unit_id}.")
        if principal.role is not Role.OFFICER:  # an officer's patch is bounded by the rule
            check_owner(principal, unit.landlord_id, "unit")
        check_if_match(if_match, unit.version)
        out = await apply_unit_changes(
            session,
            settings,
            principal,
            unit,
            changes,
            patch.reason,
            compensation=patch.compensation,
            uncompensated=patch.uncompensated,
        )
        return Written(200, out.model_dump(mode="json"), etag=etag_of(out.version))


@dataclass(frozen=True)
class _Move:
    """A unit's status, use and surface before and after a change: what the rules compare."""

    before_status: UnitStatus
    after_status: UnitStatus
    before_use: UseClass
    after_use: UseClass
    before_surface: float
    after_surface: float
    space_kind: SpaceKind = SpaceKind.WORKSHOP  # never changes: a stall counts for nothing

    @classmethod
    def of(cls, unit: Unit, changes: dict[str, Any]) -> _Move:
        before_status, before_use = UnitStatus(unit.status), UseClass(unit.use_class)
        return cls(
            space_kind=SpaceKind(unit.space_kind),
            before_status=before_status,
            after_status=UnitStatus(changes.get("status", before_status)),
            before_use=before_use,
            after_use=UseClass(changes.get("use_class", before_use)),
            before_surface=unit.surface_m2,
            after_surface=float(changes.get("surface_m2", unit.surface_m2)),
        )

    @property
    def withdraws(self) -> bool:
        w = UnitStatus.WITHDRAWN
        return self.after_status is w and self.before_status is not w

    @property
    def restores(self) -> bool:
        w = UnitStatus.WITHDRAWN
        return self.before_status is w and self.after_status is not w

    @property
    def production_before(self) -> float:
        return production_surface(
            self.before_use, self.before_surface, self.before_status, self.space_kind
        )

    @property
    def production_after(self) -> float:
        return production_surface(
            self.after_use, self.after_surface, self.after_status, self.space_kind
        )

    @property
    def ledger_change(self) -> str:
        """How the ledger names this change of production surface."""
        if self.withdraws:
            return "withdrawn"
        if self.restores:
            return "restored"
        if self.before_use != self.after_use:
            return "use_changed"
        return "resized"


async def apply_unit_changes(
    session: AsyncSession,
    settings: InventorySettings,
    principal: Principal,
    unit: Unit,
    changes: dict[str, Any],
    reason: str | None,
    *,
    compensation: CompensationIn | None = None,
    uncompensated: UncompensatedIn | None = None,
) -> UnitOut:
    """Check, write and publish a change of `unit` (locked by the caller) in its transaction."""
    site = await repo.get_site(session, unit.site_id)
    assert site is not None
    changed = [k for k, v in changes.items() if stored(v) != getattr(unit, k)]
    if not changed:
        refuse_cover_without_loss(compensation, uncompensated)
        check_officer_change(principal, changed, covered=False)
        return UnitOut.of(unit, site)
    if {"period_start", "period_end"} & set(changed):
        _check_period(
            SpaceKind(unit.space_kind),
            site,
            changes.get("period_start", unit.period_start),
            changes.get("period_end", unit.period_end),
        )
    move = _Move.of(unit, changes)
    _check_transition(move)
    loss = move.production_before - move.production_after
    covered = loss > 0 and (compensation is not None or uncompensated is not None)
    check_officer_change(principal, changed, covered)
    if loss > 0:
        cover = await cover_loss(
            session,
            principal,
            unit,
            loss_m2=loss,
            why=_why(move),
            compensation=compensation,
            uncompensated=uncompensated,
            min_reason_chars=settings.protected_change_reason_min_chars,
        )
    else:
        refuse_cover_without_loss(compensation, uncompensated)
        cover = LossCover()
    if "project_id" in changed and changes["project_id"] is not None:
        await check_project_link(session, changes["project_id"], unit.arrondissement)
    if "reference" in changed and await repo.unit_reference_taken(
        session, unit.site_id, changes["reference"]
    ):
        raise ProblemError(
            409, f"This site already has a unit with reference {changes['reference']!r}."
        )
    closed_vacancy = await _write(session, unit, changes, changed, move)
    landlord = await _landlord_of(session, unit.landlord_id)
    _publish_unit_events(session, unit, site, landlord, changed, move, closed_vacancy, reason)
    if move.production_after != move.production_before:
        delta = move.production_after - move.production_before
        record_surface(
            session,
            principal,
            unit,
            move.ledger_change,
            delta,
            move.production_after,
            reason,
            compensation=cover.compensation,
            uncompensated_reason=cover.uncompensated_reason,
        )
    await publish_ledger(session)
    return UnitOut.of(unit, site)


def _check_transition(move: _Move) -> None:
    """409 for a status the life cycle forbids."""
    try:
        check_transition(move.before_status, move.after_status)
    except TransitionError as exc:
        raise ProblemError(409, str(exc)) from exc


def _why(move: _Move) -> str:
    """What removes production m², in the words of the rule's answers."""
    why = protected_change(
        before_use=move.before_use,
        after_use=move.after_use,
        before_surface=move.before_surface,
        after_surface=move.after_surface,
        before_status=move.before_status,
        after_status=move.after_status,
    )
    return why or "this change"


async def _write(
    session: AsyncSession, unit: Unit, changes: dict[str, Any], changed: list[str], move: _Move
) -> str | None:
    """Apply the changed fields and the vacancy they open or close; the closed vacancy's id."""
    for key in changed:
        setattr(unit, key, stored(changes[key]))
    unit.version += 1
    unit.updated_at = datetime.now(UTC)
    if "allowed_trades" in changed:
        await repo.replace_trades(session, unit.id, list(unit.allowed_trades))
    closed_vacancy = None
    vacancy = vacancy_change(move.before_status, move.after_status)
    if vacancy == "opened":
        unit.current_vacancy_id = new_id()
    elif vacancy == "closed":
        closed_vacancy, unit.current_vacancy_id = unit.current_vacancy_id, None
    await session.flush()
    return closed_vacancy


def _publish_unit_events(
    session: AsyncSession,
    unit: Unit,
    site: Site,
    landlord: Landlord,
    changed: list[str],
    move: _Move,
    closed_vacancy: str | None,
    reason: str | None,
) -> None:
    """updated, then vacancy_closed / withdrawn / vacancy_opened as the move calls for."""
    snapshot = UnitSnapshot.of(unit, site, landlord)
    emit(session, unit.id, UnitUpdated(unit=snapshot, changed=changed))
    if closed_vacancy:
        emit(
            session,
            unit.id,
            VacancyClosed(
                vacancy_id=closed_vacancy,
                unit_id=unit.id,
                site_id=unit.site_id,
                status=unit.status,
                closed_at=datetime.now(UTC),
                version=unit.version,
            ),
        )
    if move.withdraws:
        emit(
            session,
            unit.id,
            UnitWithdrawn(
                unit_id=unit.id, site_id=unit.site_id, reason=reason, version=unit.version
            ),
        )
    if vacancy_change(move.before_status, move.after_status) == "opened":
        _open_vacancy(session, unit, snapshot)


def _open_vacancy(session: AsyncSession, unit: Unit, snapshot: UnitSnapshot) -> None:
    assert unit.current_vacancy_id is not None
    emit(
        session,
        unit.id,
        VacancyOpened(
            vacancy_id=unit.current_vacancy_id, opened_at=datetime.now(UTC), unit=snapshot
        ),
    )
    on_commit(session, VACANCIES_OPENED.inc)


async def _landlord_of(session: AsyncSession, landlord_id: str) -> Landlord:
    landlord = await repo.get_landlord(session, landlord_id)
    assert landlord is not None, "a unit's landlord is never deleted"
    return landlord
