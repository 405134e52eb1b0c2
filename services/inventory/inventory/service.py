"""Inventory use cases. Each one is a single transaction that it commits itself."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.auth import Principal, Role, TokenService
from fabkit.db import on_commit
from fabkit.errors import ProblemError
from fabkit.events import CloudEvent, EventPayload
from fabkit.http import check_if_match, etag_of
from fabkit.idempotency import Idempotency, Written, run_idempotent
from fabkit.outbox import add_to_outbox
from inventory import repository as repo
from inventory.domain import (
    TransitionError,
    UnitStatus,
    UseClass,
    check_transition,
    postcode_matches_arrondissement,
    production_surface,
    protected_change,
    vacancy_change,
)
from inventory.events.published import (
    SITE_TOPIC,
    SURFACE_TOPIC,
    UNIT_TOPIC,
    ProductionSurfaceChanged,
    SiteRegistered,
    SiteSnapshot,
    SiteUpdated,
    UnitRegistered,
    UnitSnapshot,
    UnitUpdated,
    UnitWithdrawn,
    VacancyClosed,
    VacancyOpened,
)
from inventory.metrics import VACANCIES_OPENED
from inventory.models import Landlord, Site, SurfaceLedgerEntry, Unit
from inventory.schemas import (
    LandlordCreate,
    LandlordOut,
    LedgerEntryOut,
    SiteCreate,
    SiteOut,
    SitePatch,
    SiteSummary,
    SurfaceHistory,
    SurfacePoint,
    SurfaceReport,
    SurfaceTotal,
    TokenOut,
    UnitCreate,
    UnitOut,
    UnitPatch,
)
from inventory.settings import InventorySettings

Sessions = async_sessionmaker[AsyncSession]


def _new_id() -> str:
    return str(uuid.uuid4())


def _emit(
    session: AsyncSession,
    settings: InventorySettings,
    topic: str,
    key: str,
    payload: EventPayload,
) -> None:
    event = CloudEvent.of(payload, source=settings.event_source, subject=key)
    add_to_outbox(session, topic=topic, key=key, event=event)


# Landlords -------------------------------------------------------------------------------


def landlord_out(landlord: Landlord) -> LandlordOut:
    return LandlordOut.model_validate(landlord, from_attributes=True)


async def create_landlord(
    sessions: Sessions, data: LandlordCreate, idem: Idempotency | None
) -> Written:
    async def create(session: AsyncSession) -> Written:
        if await repo.get_landlord_by_name(session, data.name) is not None:
            raise ProblemError(409, f"A landlord named {data.name!r} already exists.")
        landlord = Landlord(
            id=_new_id(), name=data.name, kind=data.kind.value, contact_email=data.contact_email
        )
        session.add(landlord)
        await session.flush()
        return Written(
            201,
            landlord_out(landlord).model_dump(mode="json"),
            location=f"/v1/landlords/{landlord.id}",
        )

    return await run_idempotent(sessions, idem, create)


async def issue_landlord_token(
    sessions: Sessions, tokens: TokenService, landlord_id: str, ttl_days: int
) -> TokenOut:
    async with sessions() as session:
        if await repo.get_landlord(session, landlord_id) is None:
            raise ProblemError(404, f"No landlord with id {landlord_id}.")
    ttl = ttl_days * 24 * 3600
    return TokenOut(
        token=tokens.issue(landlord_id, Role.LANDLORD, ttl),
        role=Role.LANDLORD.value,
        subject=landlord_id,
        expires_in_seconds=ttl,
    )


# Sites -----------------------------------------------------------------------------------


def site_out(site: Site) -> SiteOut:
    return SiteOut.model_validate(site, from_attributes=True)


def site_snapshot(site: Site) -> SiteSnapshot:
    return SiteSnapshot(
        site_id=site.id,
        landlord_id=site.landlord_id,
        name=site.name,
        kind=site.kind,
        address=site.address,
        postcode=site.postcode,
        arrondissement=site.arrondissement,
        latitude=site.latitude,
        longitude=site.longitude,
        opens_for_visits=site.opens_for_visits,
        version=site.version,
    )


def _owner_check(principal: Principal, landlord_id: str, what: str) -> None:
    if principal.is_admin:
        return
    if principal.role is not Role.LANDLORD or principal.subject != landlord_id:
        raise ProblemError(403, f"This {what} belongs to another landlord; you cannot change it.")


async def create_site(
    sessions: Sessions,
    settings: InventorySettings,
    principal: Principal,
    data: SiteCreate,
    idem: Idempotency | None,
) -> Written:
    if principal.is_admin:
        if not data.landlord_id:
            raise ProblemError(422, "An admin creating a site must give landlord_id.")
        landlord_id = data.landlord_id
    else:
        if data.landlord_id and data.landlord_id != principal.subject:
            raise ProblemError(403, "A landlord can only create sites of its own.")
        landlord_id = principal.subject

    async def create(session: AsyncSession) -> Written:
        if await repo.get_landlord(session, landlord_id) is None:
            raise ProblemError(422, f"No landlord with id {landlord_id}.")
        fields = data.model_dump(exclude={"landlord_id"})
        site = Site(id=_new_id(), landlord_id=landlord_id, **fields)
        site.kind = data.kind.value
        session.add(site)
        await session.flush()
        _emit(session, settings, SITE_TOPIC, site.id, SiteRegistered(site=site_snapshot(site)))
        return Written(
            201,
            site_out(site).model_dump(mode="json"),
            etag=etag_of(site.version),
            location=f"/v1/sites/{site.id}",
        )

    return await run_idempotent(sessions, idem, create)


async def get_site(sessions: Sessions, site_id: str) -> Site:
    async with sessions() as session:
        site = await repo.get_site(session, site_id)
    if site is None:
        raise ProblemError(404, f"No site with id {site_id}.")
    return site


async def update_site(
    sessions: Sessions,
    settings: InventorySettings,
    principal: Principal,
    site_id: str,
    patch: SitePatch,
    if_match: str | None,
) -> Written:
    changes = patch.model_dump(exclude_unset=True)
    async with sessions() as session, session.begin():
        site = await repo.get_site(session, site_id, for_update=True)
        if site is None:
            raise ProblemError(404, f"No site with id {site_id}.")
        _owner_check(principal, site.landlord_id, "site")
        check_if_match(if_match, site.version)
        for name in ("name", "kind", "address", "postcode", "arrondissement", "opens_for_visits"):
            if name in changes and changes[name] is None:
                raise ProblemError(422, f"{name} cannot be null.")
        changed = [k for k, v in changes.items() if getattr(site, k) != v]
        if not changed:
            return Written(200, site_out(site).model_dump(mode="json"), etag=etag_of(site.version))
        for key in changed:
            value = changes[key]
            setattr(site, key, value.value if hasattr(value, "value") else value)
        if not postcode_matches_arrondissement(site.postcode, site.arrondissement):
            raise ProblemError(
                422, f"postcode {site.postcode} is not in arrondissement {site.arrondissement}."
            )
        if (site.latitude is None) != (site.longitude is None):
            raise ProblemError(422, "Give both latitude and longitude, or neither.")
        site.version += 1
        site.updated_at = datetime.now(UTC)
        if "arrondissement" in changed or "kind" in changed:
            await _propagate_site_change(session, settings, principal, site)
            await _publish_ledger(session, settings)
        _emit(
            session,
            settings,
            SITE_TOPIC,
            site.id,
            SiteUpdated(site=site_snapshot(site), changed=changed),
        )
        return Written(200, site_out(site).model_dump(mode="json"), etag=etag_of(site.version))


async def _propagate_site_change(
    session: AsyncSession, settings: InventorySettings, principal: Principal, site: Site
) -> None:
    """Units carry their site's arrondissement and kind; a correction moves their surface too."""
    landlord = await repo.get_landlord(session, site.landlord_id)
    assert landlord is not None
    for unit in await repo.units_of_site(session, site.id, for_update=True):
        old_arrondissement = unit.arrondissement
        moved = old_arrondissement != site.arrondissement
        unit.arrondissement = site.arrondissement
        unit.site_kind = site.kind
        unit.version += 1
        unit.updated_at = datetime.now(UTC)
        snapshot = unit_snapshot(unit, site, landlord)
        _emit(session, settings, UNIT_TOPIC, unit.id, UnitUpdated(unit=snapshot, changed=["site"]))
        prod = production_surface(
            UseClass(unit.use_class), unit.surface_m2, UnitStatus(unit.status)
        )
        if moved and prod > 0:
            # Two entries keep per-arrondissement sums of delta_m2 right; the last one of a
            # unit still says where it stands now.
            unit.arrondissement = old_arrondissement
            _record_surface(session, settings, principal, unit, "relocated_out", -prod, 0.0, None)
            unit.arrondissement = site.arrondissement
            _record_surface(session, settings, principal, unit, "relocated_in", prod, prod, None)


# Units -----------------------------------------------------------------------------------


def unit_snapshot(unit: Unit, site: Site, landlord: Landlord) -> UnitSnapshot:
    return UnitSnapshot(
        unit_id=unit.id,
        site_id=unit.site_id,
        landlord_id=unit.landlord_id,
        landlord_name=landlord.name,
        reference=unit.reference,
        floor=unit.floor,
        surface_m2=unit.surface_m2,
        ceiling_height_m=unit.ceiling_height_m,
        floor_load_kg_m2=unit.floor_load_kg_m2,
        power_kva=unit.power_kva,
        goods_lift=unit.goods_lift,
        loading_dock=unit.loading_dock,
        extraction=unit.extraction,
        step_free_access=unit.step_free_access,
        allowed_trades=list(unit.allowed_trades),
        use_class=unit.use_class,
        rent_eur_m2_year=unit.rent_eur_m2_year,
        charges_eur_m2_year=unit.charges_eur_m2_year,
        status=unit.status,
        available_from=unit.available_from,
        site_name=site.name,
        site_kind=site.kind,
        address=site.address,
        postcode=site.postcode,
        arrondissement=site.arrondissement,
        latitude=site.latitude,
        longitude=site.longitude,
        opens_for_visits=site.opens_for_visits,
        version=unit.version,
    )


def unit_out(unit: Unit, site: Site) -> UnitOut:
    return UnitOut(
        id=unit.id,
        site_id=unit.site_id,
        landlord_id=unit.landlord_id,
        reference=unit.reference,
        floor=unit.floor,
        surface_m2=unit.surface_m2,
        ceiling_height_m=unit.ceiling_height_m,
        floor_load_kg_m2=unit.floor_load_kg_m2,
        power_kva=unit.power_kva,
        goods_lift=unit.goods_lift,
        loading_dock=unit.loading_dock,
        extraction=unit.extraction,
        step_free_access=unit.step_free_access,
        allowed_trades=list(unit.allowed_trades),
        use_class=UseClass(unit.use_class),
        rent_eur_m2_year=unit.rent_eur_m2_year,
        charges_eur_m2_year=unit.charges_eur_m2_year,
        status=UnitStatus(unit.status),
        available_from=unit.available_from,
        vacancy_id=unit.current_vacancy_id,
        version=unit.version,
        created_at=unit.created_at,
        updated_at=unit.updated_at,
        site=SiteSummary.model_validate(site, from_attributes=True),
    )


def _record_surface(
    session: AsyncSession,
    settings: InventorySettings,
    principal: Principal,
    unit: Unit,
    change: str,
    delta: float,
    after: float,
    reason: str | None,
) -> None:
    entry = SurfaceLedgerEntry(
        unit_id=unit.id,
        site_id=unit.site_id,
        arrondissement=unit.arrondissement,
        change=change,
        delta_m2=delta,
        production_m2_after=after,
        reason=reason,
        actor=f"{principal.role.value}:{principal.subject}",
    )
    repo.add_ledger_entry(session, entry)
    session.info.setdefault("pending_ledger", []).append(entry)


async def _publish_ledger(session: AsyncSession, settings: InventorySettings) -> None:
    entries: list[SurfaceLedgerEntry] = session.info.pop("pending_ledger", [])
    if not entries:
        return
    await session.flush()  # assigns the ledger ids the events carry
    for entry in entries:
        assert entry.id is not None
        _emit(
            session,
            settings,
            SURFACE_TOPIC,
            entry.unit_id,
            ProductionSurfaceChanged(
                ledger_id=entry.id,
                unit_id=entry.unit_id,
                site_id=entry.site_id,
                arrondissement=entry.arrondissement,
                change=entry.change,
                delta_m2=entry.delta_m2,
                production_m2_after=entry.production_m2_after,
                reason=entry.reason,
                recorded_at=entry.recorded_at,
            ),
        )


async def create_unit(
    sessions: Sessions,
    settings: InventorySettings,
    principal: Principal,
    site_id: str,
    data: UnitCreate,
    idem: Idempotency | None,
) -> Written:
    async def create(session: AsyncSession) -> Written:
        site = await repo.get_site(session, site_id)
        if site is None:
            raise ProblemError(404, f"No site with id {site_id}.")
        _owner_check(principal, site.landlord_id, "site")
        if await repo.unit_reference_taken(session, site.id, data.reference):
            raise ProblemError(
                409, f"Site {site.name!r} already has a unit with reference {data.reference!r}."
            )
        landlord = await repo.get_landlord(session, site.landlord_id)
        assert landlord is not None
        unit = Unit(
            id=_new_id(),
            site_id=site.id,
            landlord_id=site.landlord_id,
            arrondissement=site.arrondissement,
            site_kind=site.kind,
            **data.model_dump(exclude={"use_class", "status"}),
            use_class=data.use_class.value,
            status=data.status.value,
        )
        if data.status == UnitStatus.AVAILABLE:
            unit.current_vacancy_id = _new_id()
        session.add(unit)
        await session.flush()
        await repo.replace_trades(session, unit.id, data.allowed_trades)
        snapshot = unit_snapshot(unit, site, landlord)
        _emit(session, settings, UNIT_TOPIC, unit.id, UnitRegistered(unit=snapshot))
        if unit.current_vacancy_id:
            _open_vacancy(session, settings, unit, snapshot)
        prod = production_surface(data.use_class, unit.surface_m2, data.status)
        if prod > 0:
            _record_surface(session, settings, principal, unit, "registered", prod, prod, None)
        await _publish_ledger(session, settings)
        return Written(
            201,
            unit_out(unit, site).model_dump(mode="json"),
            etag=etag_of(unit.version),
            location=f"/v1/units/{unit.id}",
        )

    return await run_idempotent(sessions, idem, create)


def _open_vacancy(
    session: AsyncSession, settings: InventorySettings, unit: Unit, snapshot: UnitSnapshot
) -> None:
    assert unit.current_vacancy_id is not None
    _emit(
        session,
        settings,
        UNIT_TOPIC,
        unit.id,
        VacancyOpened(
            vacancy_id=unit.current_vacancy_id, opened_at=datetime.now(UTC), unit=snapshot
        ),
    )
    on_commit(session, VACANCIES_OPENED.inc)


async def get_unit(sessions: Sessions, unit_id: str) -> tuple[Unit, Site]:
    async with sessions() as session:
        unit = await repo.get_unit(session, unit_id)
        if unit is None:
            raise ProblemError(404, f"No unit with id {unit_id}.")
        site = await repo.get_site(session, unit.site_id)
    assert site is not None
    return unit, site


async def update_unit(
    sessions: Sessions,
    settings: InventorySettings,
    principal: Principal,
    unit_id: str,
    patch: UnitPatch,
    if_match: str | None,
) -> Written:
    changes = patch.model_dump(exclude_unset=True, exclude={"reason"})
    for name in ("reference", "floor", "surface_m2", "use_class", "rent_eur_m2_year", "status"):
        if name in changes and changes[name] is None:
            raise ProblemError(422, f"{name} cannot be null.")
    async with sessions() as session, session.begin():
        unit = await repo.get_unit(session, unit_id, for_update=True)
        if unit is None:
            raise ProblemError(404, f"No unit with id {unit_id}.")
        _owner_check(principal, unit.landlord_id, "unit")
        check_if_match(if_match, unit.version)
        return await _apply_unit_changes(session, settings, principal, unit, changes, patch.reason)


async def _apply_unit_changes(
    session: AsyncSession,
    settings: InventorySettings,
    principal: Principal,
    unit: Unit,
    changes: dict[str, Any],
    reason: str | None,
) -> Written:
    site = await repo.get_site(session, unit.site_id)
    landlord = await repo.get_landlord(session, unit.landlord_id)
    assert site is not None and landlord is not None
    changed = [k for k, v in changes.items() if _stored(v) != getattr(unit, k)]
    if not changed:
        return Written(
            200, unit_out(unit, site).model_dump(mode="json"), etag=etag_of(unit.version)
        )

    before_status = UnitStatus(unit.status)
    before_use = UseClass(unit.use_class)
    before_surface = unit.surface_m2
    after_status = UnitStatus(changes.get("status", before_status))
    after_use = UseClass(changes.get("use_class", before_use))
    after_surface = float(changes.get("surface_m2", before_surface))

    try:
        check_transition(before_status, after_status)
    except TransitionError as exc:
        raise ProblemError(409, str(exc)) from exc
    why = protected_change(
        before_use=before_use,
        after_use=after_use,
        before_surface=before_surface,
        after_surface=after_surface,
        before_status=before_status,
        after_status=after_status,
    )
    if why is not None:
        if not principal.is_admin:
            raise ProblemError(
                403,
                f"Production surface is protected: {why} needs an admin and a written reason.",
            )
        if not reason or len(reason.strip()) < settings.protected_change_reason_min_chars:
            raise ProblemError(
                422,
                f"Production surface is protected: {why} needs a reason of at least "
                f"{settings.protected_change_reason_min_chars} characters.",
            )
    if "reference" in changed and await repo.unit_reference_taken(
        session, unit.site_id, changes["reference"]
    ):
        raise ProblemError(
            409, f"This site already has a unit with reference {changes['reference']!r}."
        )

    for key in changed:
        setattr(unit, key, _stored(changes[key]))
    unit.version += 1
    unit.updated_at = datetime.now(UTC)
    if "allowed_trades" in changed:
        await repo.replace_trades(session, unit.id, list(unit.allowed_trades))

    vacancy = vacancy_change(before_status, after_status)
    closed_vacancy = unit.current_vacancy_id if vacancy == "closed" else None
    if vacancy == "opened":
        unit.current_vacancy_id = _new_id()
    elif vacancy == "closed":
        unit.current_vacancy_id = None
    await session.flush()

    snapshot = unit_snapshot(unit, site, landlord)
    _emit(session, settings, UNIT_TOPIC, unit.id, UnitUpdated(unit=snapshot, changed=changed))
    if closed_vacancy:
        _emit(
            session,
            settings,
            UNIT_TOPIC,
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
    if after_status == UnitStatus.WITHDRAWN and before_status != UnitStatus.WITHDRAWN:
        _emit(
            session,
            settings,
            UNIT_TOPIC,
            unit.id,
            UnitWithdrawn(
                unit_id=unit.id, site_id=unit.site_id, reason=reason, version=unit.version
            ),
        )
    if vacancy == "opened":
        _open_vacancy(session, settings, unit, snapshot)

    before_prod = production_surface(before_use, before_surface, before_status)
    after_prod = production_surface(after_use, unit.surface_m2, after_status)
    if after_prod != before_prod:
        _record_surface(
            session,
            settings,
            principal,
            unit,
            _surface_change_kind(before_use, after_use, before_status, after_status),
            after_prod - before_prod,
            after_prod,
            reason,
        )
    await _publish_ledger(session, settings)
    return Written(200, unit_out(unit, site).model_dump(mode="json"), etag=etag_of(unit.version))


def _stored(value: Any) -> Any:
    return value.value if hasattr(value, "value") else value


def _surface_change_kind(
    before_use: UseClass, after_use: UseClass, before: UnitStatus, after: UnitStatus
) -> str:
    if after == UnitStatus.WITHDRAWN and before != UnitStatus.WITHDRAWN:
        return "withdrawn"
    if before == UnitStatus.WITHDRAWN and after != UnitStatus.WITHDRAWN:
        return "restored"
    if before_use != after_use:
        return "use_changed"
    return "resized"


async def search_units(sessions: Sessions, query: repo.UnitSearch) -> tuple[list[UnitOut], int]:
    async with sessions() as session:
        rows, total = await repo.search_units(session, query)
    return [unit_out(unit, site) for unit, site in rows], total


# Production surface ----------------------------------------------------------------------


async def surface_report(sessions: Sessions, by: str, at: datetime | None) -> SurfaceReport:
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


def _totals_from_ledger(entries: Any, by: str) -> list[tuple[str, float, int]]:
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
    async with sessions() as session:
        if await repo.get_unit(session, unit_id) is None:
            raise ProblemError(404, f"No unit with id {unit_id}.")
        entries = await repo.ledger_of_unit(session, unit_id)
    return [LedgerEntryOut.model_validate(e, from_attributes=True) for e in entries]


# Leases signed and ended in leasing ------------------------------------------------------

# Lease events act with an admin's rights (a signed lease is not the landlord's PATCH to
# check); the ledger and events name "admin:leasing" as the actor.
LEASING = Principal(subject="leasing", role=Role.ADMIN)


async def apply_lease_signed(
    session: AsyncSession, settings: InventorySettings, unit_id: str, lease_id: str
) -> str:
    """A signed lease lets the unit: status leased, through the same path as a landlord's
    PATCH (vacancy closed, events, ledger). 'unknown' or 'unchanged' when nothing to do."""
    unit = await repo.get_unit(session, unit_id, for_update=True)
    if unit is None:
        return "unknown"
    if unit.status == UnitStatus.LEASED:
        return "unchanged"
    await _apply_unit_changes(
        session, settings, LEASING, unit, {"status": UnitStatus.LEASED}, f"lease {lease_id} signed"
    )
    return "applied"


async def apply_lease_ended(
    session: AsyncSession, settings: InventorySettings, unit_id: str, lease_id: str
) -> str:
    """An ended lease makes a leased unit available again, which opens a new vacancy.

    A unit no longer leased (the landlord took it off the market meanwhile) stays as it is.
    """
    unit = await repo.get_unit(session, unit_id, for_update=True)
    if unit is None:
        return "unknown"
    if unit.status != UnitStatus.LEASED:
        return "unchanged"
    await _apply_unit_changes(
        session,
        settings,
        LEASING,
        unit,
        {"status": UnitStatus.AVAILABLE},
        f"lease {lease_id} ended",
    )
    return "applied"
