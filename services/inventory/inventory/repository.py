"""Every inventory query. Repositories flush; the use cases in the service package commit.

Columns are named through `col()` (or the table's columns): SQLModel types `Unit.status` as a
plain `str`, so `Unit.status == x` would read as a bool to mypy.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, delete, func, select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.pagination import PageParams, paginate
from inventory.domain import Feature, SpaceKind, UnitStatus, UseClass
from inventory.models import (
    DevelopmentProject,
    Landlord,
    OpenDataFile,
    Site,
    SurfaceCompensation,
    SurfaceLedgerEntry,
    Unit,
    UnitTrade,
)

# Landlords -------------------------------------------------------------------------------


async def get_landlord(session: AsyncSession, landlord_id: str) -> Landlord | None:
    return await session.get(Landlord, landlord_id)


async def get_landlord_by_name(session: AsyncSession, name: str) -> Landlord | None:
    result = await session.execute(select(Landlord).where(col(Landlord.name) == name))
    return result.scalars().first()


async def list_landlords(session: AsyncSession) -> Sequence[Landlord]:
    stmt = select(Landlord).order_by(col(Landlord.name))
    return (await session.execute(stmt)).scalars().all()


# Sites -----------------------------------------------------------------------------------


async def get_site(session: AsyncSession, site_id: str, *, for_update: bool = False) -> Site | None:
    stmt = select(Site).where(col(Site.id) == site_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalars().first()


async def list_sites(
    session: AsyncSession,
    *,
    landlord_id: str | None,
    arrondissement: int | None,
    kind: str | None,
    page: PageParams,
) -> tuple[Sequence[Site], int]:
    """One page of sites by name (id breaks ties), and how many match."""
    stmt = select(Site)
    if landlord_id:
        stmt = stmt.where(col(Site.landlord_id) == landlord_id)
    if arrondissement:
        stmt = stmt.where(col(Site.arrondissement) == arrondissement)
    if kind:
        stmt = stmt.where(col(Site.kind) == kind)
    return await paginate(session, stmt.order_by(col(Site.name), col(Site.id)), page)


async def sites_by_id(session: AsyncSession, ids: set[str]) -> dict[str, Site]:
    if not ids:
        return {}
    rows = (await session.execute(select(Site).where(col(Site.id).in_(ids)))).scalars()
    return {s.id: s for s in rows}


async def units_of_site(
    session: AsyncSession, site_id: str, *, for_update: bool = False
) -> Sequence[Unit]:
    stmt = select(Unit).where(col(Unit.site_id) == site_id).order_by(col(Unit.id))
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalars().all()


# Units -----------------------------------------------------------------------------------


async def get_unit(session: AsyncSession, unit_id: str, *, for_update: bool = False) -> Unit | None:
    stmt = select(Unit).where(col(Unit.id) == unit_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalars().first()


async def unit_reference_taken(session: AsyncSession, site_id: str, reference: str) -> bool:
    stmt = select(col(Unit.id)).where(
        col(Unit.site_id) == site_id, col(Unit.reference) == reference
    )
    return (await session.execute(stmt)).first() is not None


async def replace_trades(session: AsyncSession, unit_id: str, trades: list[str]) -> None:
    """The unit's trade rows (searched by index) follow its allowed_trades."""
    await session.execute(delete(UnitTrade).where(col(UnitTrade.unit_id) == unit_id))
    session.add_all([UnitTrade(unit_id=unit_id, trade=t) for t in trades])
    await session.flush()


@dataclass(frozen=True)
class UnitSearch:
    """The filters of a unit search; every one given must match."""

    arrondissements: Sequence[int] = ()
    min_surface: float | None = None
    max_surface: float | None = None
    max_rent: float | None = None
    min_ceiling_height_m: float | None = None
    min_floor_load_kg_m2: float | None = None
    min_power_kva: float | None = None
    trade: str | None = None
    features: Sequence[Feature] = ()
    statuses: Sequence[UnitStatus] = ()
    site_kinds: Sequence[str] = ()
    use_class: UseClass | None = None
    site_id: str | None = None
    landlord_id: str | None = None
    rail_siding: bool | None = None
    river_quay_within_m: int | None = None
    petite_ceinture: bool | None = None
    min_freight_weight_t: float | None = None
    min_freight_height_m: float | None = None
    cargo_bike_parking: bool | None = None
    space_kind: SpaceKind | None = None
    sort: str = "rent"
    page: PageParams = field(default_factory=PageParams)


SORTS: dict[str, ColumnElement[Any]] = {
    "rent": col(Unit.rent_eur_m2_year).asc(),
    "-rent": col(Unit.rent_eur_m2_year).desc(),
    "surface": col(Unit.surface_m2).asc(),
    "-surface": col(Unit.surface_m2).desc(),
    "available_from": col(Unit.available_from).asc(),
    "updated": col(Unit.updated_at).desc(),
}
FEATURE_COLUMNS = {
    Feature.GOODS_LIFT: col(Unit.goods_lift),
    Feature.LOADING_DOCK: col(Unit.loading_dock),
    Feature.EXTRACTION: col(Unit.extraction),
    Feature.STEP_FREE_ACCESS: col(Unit.step_free_access),
}


@dataclass(frozen=True)
class _Shape:
    """Which filters a search uses: searches of one shape share one statement."""

    arrondissements: bool
    min_surface: bool
    max_surface: bool
    max_rent: bool
    min_ceiling_height_m: bool
    min_floor_load_kg_m2: bool
    min_power_kva: bool
    trade: bool
    features: tuple[Feature, ...]
    statuses: bool
    site_kinds: bool
    use_class: bool
    site_id: bool
    landlord_id: bool
    # None when not filtered on, else the flag asked (true or false): each flag's own SQL.
    rail_siding: bool | None
    river_quay_within_m: bool
    petite_ceinture: bool | None
    min_freight_weight_t: bool
    min_freight_height_m: bool
    cargo_bike_parking: bool | None
    space_kind: bool
    sort: str

    @classmethod
    def of(cls, q: UnitSearch) -> _Shape:
        return cls(
            arrondissements=bool(q.arrondissements),
            min_surface=q.min_surface is not None,
            max_surface=q.max_surface is not None,
            max_rent=q.max_rent is not None,
            min_ceiling_height_m=q.min_ceiling_height_m is not None,
            min_floor_load_kg_m2=q.min_floor_load_kg_m2 is not None,
            min_power_kva=q.min_power_kva is not None,
            trade=bool(q.trade),
            features=tuple(sorted(set(q.features))),
            statuses=bool(q.statuses),
            site_kinds=bool(q.site_kinds),
            use_class=q.use_class is not None,
            site_id=bool(q.site_id),
            landlord_id=bool(q.landlord_id),
            rail_siding=q.rail_siding,
            river_quay_within_m=q.river_quay_within_m is not None,
            petite_ceinture=q.petite_ceinture,
            min_freight_weight_t=q.min_freight_weight_t is not None,
            min_freight_height_m=q.min_freight_height_m is not None,
            cargo_bike_parking=q.cargo_bike_parking,
            space_kind=q.space_kind is not None,
            sort=q.sort,
        )


@functools.lru_cache(maxsize=512)
def _search_statement(shape: _Shape) -> Select[Unit, Site, int]:
    """The page of units with their sites and the total, in one query, with bound parameters.

    Built once per shape: constructing the statement and its cache key costs more than running
    it on SQLite, so the parameters are bound at execution instead of inlined per request.
    """
    total = func.count().over().label("total")
    stmt = select(Unit, Site, total).join(Site, col(Site.id) == col(Unit.site_id))
    if shape.arrondissements:
        stmt = stmt.where(col(Unit.arrondissement).in_(bindparam("arrs", expanding=True)))
    if shape.min_surface:
        stmt = stmt.where(col(Unit.surface_m2) >= bindparam("min_surface"))
    if shape.max_surface:
        stmt = stmt.where(col(Unit.surface_m2) <= bindparam("max_surface"))
    if shape.max_rent:
        stmt = stmt.where(col(Unit.rent_eur_m2_year) <= bindparam("max_rent"))
    # A unit whose figure is unknown (NULL) does not meet a minimum: SQL's NULL >= x is not true.
    if shape.min_ceiling_height_m:
        stmt = stmt.where(col(Unit.ceiling_height_m) >= bindparam("min_ceiling"))
    if shape.min_floor_load_kg_m2:
        stmt = stmt.where(col(Unit.floor_load_kg_m2) >= bindparam("min_floor_load"))
    if shape.min_power_kva:
        stmt = stmt.where(col(Unit.power_kva) >= bindparam("min_power"))
    if shape.trade:
        trade_units = select(col(UnitTrade.unit_id)).where(
            col(UnitTrade.trade) == bindparam("trade")
        )
        stmt = stmt.where(col(Unit.id).in_(trade_units))
    for feature in shape.features:
        stmt = stmt.where(FEATURE_COLUMNS[feature].is_(True))
    if shape.statuses:
        stmt = stmt.where(col(Unit.status).in_(bindparam("statuses", expanding=True)))
    if shape.site_kinds:
        stmt = stmt.where(col(Unit.site_kind).in_(bindparam("kinds", expanding=True)))
    if shape.use_class:
        stmt = stmt.where(col(Unit.use_class) == bindparam("use_class"))
    if shape.site_id:
        stmt = stmt.where(col(Unit.site_id) == bindparam("site_id"))
    if shape.landlord_id:
        stmt = stmt.where(col(Unit.landlord_id) == bindparam("landlord_id"))
    stmt = _logistics_filters(stmt, shape)
    if shape.space_kind:
        stmt = stmt.where(col(Unit.space_kind) == bindparam("space_kind"))
    # The id tie-breaker makes the order total, so pages never repeat or skip a unit.
    return (
        stmt.order_by(SORTS[shape.sort], col(Unit.id))
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
    )


def _logistics_filters(stmt: Select[Unit, Site, int], shape: _Shape) -> Select[Unit, Site, int]:
    """The logistics filters, on the attributes units copy from their site (indexed)."""
    if shape.rail_siding is not None:
        stmt = stmt.where(col(Unit.rail_siding).is_(shape.rail_siding))
    # An unknown distance or limit (NULL) meets no bound, as for the other minimums.
    if shape.river_quay_within_m:
        stmt = stmt.where(col(Unit.river_quay_distance_m) <= bindparam("river_quay_within_m"))
    if shape.petite_ceinture is True:
        stmt = stmt.where(col(Unit.petite_ceinture_station).is_not(None))
    elif shape.petite_ceinture is False:
        stmt = stmt.where(col(Unit.petite_ceinture_station).is_(None))
    if shape.min_freight_weight_t:
        stmt = stmt.where(col(Unit.freight_max_weight_t) >= bindparam("min_freight_weight"))
    if shape.min_freight_height_m:
        stmt = stmt.where(col(Unit.freight_max_height_m) >= bindparam("min_freight_height"))
    if shape.cargo_bike_parking is True:
        stmt = stmt.where(col(Unit.cargo_bike_spaces) > 0)
    elif shape.cargo_bike_parking is False:
        stmt = stmt.where(col(Unit.cargo_bike_spaces) == 0)
    return stmt


@functools.lru_cache(maxsize=512)
def _count_statement(shape: _Shape) -> Select[int]:
    matching = _search_statement(shape).with_only_columns(col(Unit.id))
    return select(func.count()).select_from(
        matching.limit(None).offset(None).order_by(None).subquery()
    )


async def search_units(session: AsyncSession, q: UnitSearch) -> tuple[list[tuple[Unit, Site]], int]:
    """One page of matching units with their sites, and how many match in all."""
    params: dict[str, object] = {
        "arrs": list(q.arrondissements),
        "min_surface": q.min_surface,
        "max_surface": q.max_surface,
        "max_rent": q.max_rent,
        "min_ceiling": q.min_ceiling_height_m,
        "min_floor_load": q.min_floor_load_kg_m2,
        "min_power": q.min_power_kva,
        "trade": q.trade,
        "statuses": [s.value for s in q.statuses],
        "kinds": list(q.site_kinds),
        "use_class": q.use_class.value if q.use_class else None,
        "site_id": q.site_id,
        "landlord_id": q.landlord_id,
        "river_quay_within_m": q.river_quay_within_m,
        "min_freight_weight": q.min_freight_weight_t,
        "min_freight_height": q.min_freight_height_m,
        "space_kind": q.space_kind.value if q.space_kind else None,
        "limit": q.page.limit,
        "offset": q.page.offset,
    }
    shape = _Shape.of(q)
    rows = (await session.execute(_search_statement(shape), params)).all()
    if rows:
        return [(unit, site) for unit, site, _ in rows], int(rows[0].total)
    # A page past the end carries no total: count separately (rare).
    total = (await session.execute(_count_statement(shape), params)).scalar_one()
    return [], int(total)


async def count_units_by_status(session: AsyncSession) -> dict[str, int]:
    stmt = select(col(Unit.status), func.count()).group_by(col(Unit.status))
    return {status: count for status, count in (await session.execute(stmt)).all()}


async def vacant_production_m2_by_arrondissement(session: AsyncSession) -> dict[int, float]:
    stmt = (
        select(col(Unit.arrondissement), func.sum(col(Unit.surface_m2)))
        .where(
            col(Unit.status) == UnitStatus.AVAILABLE.value,
            col(Unit.use_class) == UseClass.PRODUCTION.value,
            col(Unit.space_kind) == SpaceKind.WORKSHOP.value,  # stalls are no production
        )
        .group_by(col(Unit.arrondissement))
    )
    return {arr: float(total or 0) for arr, total in (await session.execute(stmt)).all()}


# Production-surface ledger ---------------------------------------------------------------


def add_ledger_entry(session: AsyncSession, entry: SurfaceLedgerEntry) -> None:
    session.add(entry)


async def production_totals_now(session: AsyncSession, by: str) -> list[tuple[str, float, int]]:
    """(key, production m², unit count) for current production units, by arrondissement or site."""
    column = col(Unit.arrondissement) if by == "arrondissement" else col(Unit.site_id)
    stmt = (
        select(column, func.sum(col(Unit.surface_m2)), func.count())
        .where(
            col(Unit.use_class) == UseClass.PRODUCTION.value,
            col(Unit.space_kind) == SpaceKind.WORKSHOP.value,  # stalls are no production
            col(Unit.status) != UnitStatus.WITHDRAWN.value,
        )
        .group_by(column)
        .order_by(column)
    )
    rows = (await session.execute(stmt)).all()
    return [(str(key), float(total or 0), int(count)) for key, total, count in rows]


async def ledger_until(session: AsyncSession, at: datetime | None) -> Sequence[SurfaceLedgerEntry]:
    """The ledger in the order it was written, up to `at` (everything when None)."""
    stmt = select(SurfaceLedgerEntry)
    if at is not None:
        stmt = stmt.where(col(SurfaceLedgerEntry.recorded_at) <= at)
    stmt = stmt.order_by(col(SurfaceLedgerEntry.id))
    return (await session.execute(stmt)).scalars().all()


async def ledger_of_unit(session: AsyncSession, unit_id: str) -> Sequence[SurfaceLedgerEntry]:
    stmt = (
        select(SurfaceLedgerEntry)
        .where(col(SurfaceLedgerEntry.unit_id) == unit_id)
        .order_by(col(SurfaceLedgerEntry.id))
    )
    return (await session.execute(stmt)).scalars().all()


async def ledger_between(
    session: AsyncSession, start: datetime | None, end: datetime | None, arrondissement: int | None
) -> list[tuple[SurfaceLedgerEntry, SurfaceCompensation | None]]:
    """The ledger from `start` (included) to `end` (excluded), in the order it was written,
    each entry with the compensation it names (None for gains and uncompensated losses)."""
    stmt = select(SurfaceLedgerEntry, SurfaceCompensation).outerjoin(
        SurfaceCompensation,
        col(SurfaceCompensation.id) == col(SurfaceLedgerEntry.compensation_id),
    )
    if start is not None:
        stmt = stmt.where(col(SurfaceLedgerEntry.recorded_at) >= start)
    if end is not None:
        stmt = stmt.where(col(SurfaceLedgerEntry.recorded_at) < end)
    if arrondissement is not None:
        stmt = stmt.where(col(SurfaceLedgerEntry.arrondissement) == arrondissement)
    rows = (await session.execute(stmt.order_by(col(SurfaceLedgerEntry.id)))).all()
    return [(entry, compensation) for entry, compensation in rows]


async def uncompensated_losses(session: AsyncSession) -> Sequence[SurfaceLedgerEntry]:
    stmt = (
        select(SurfaceLedgerEntry)
        .where(col(SurfaceLedgerEntry.uncompensated).is_(True))
        .order_by(col(SurfaceLedgerEntry.id))
    )
    return (await session.execute(stmt)).scalars().all()


async def losses_of_compensations(
    session: AsyncSession, ids: set[str]
) -> dict[str, SurfaceLedgerEntry]:
    """The ledger entry (the loss) each of these compensations makes good."""
    if not ids:
        return {}
    stmt = select(SurfaceLedgerEntry).where(col(SurfaceLedgerEntry.compensation_id).in_(ids))
    rows = (await session.execute(stmt)).scalars()
    return {e.compensation_id: e for e in rows if e.compensation_id is not None}


async def ledger_net_by_arrondissement(session: AsyncSession) -> dict[int, float]:
    stmt = select(
        col(SurfaceLedgerEntry.arrondissement), func.sum(col(SurfaceLedgerEntry.delta_m2))
    ).group_by(col(SurfaceLedgerEntry.arrondissement))
    return {arr: float(net or 0) for arr, net in (await session.execute(stmt)).all()}


# Compensations and development projects -------------------------------------------------


async def get_compensation(
    session: AsyncSession, compensation_id: str, *, for_update: bool = False
) -> SurfaceCompensation | None:
    stmt = select(SurfaceCompensation).where(col(SurfaceCompensation.id) == compensation_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalars().first()


def _late(today: date) -> tuple[ColumnElement[bool], ...]:
    return (
        col(SurfaceCompensation.status) == "planned",
        col(SurfaceCompensation.due_on) < today,
    )


async def late_compensations(session: AsyncSession, today: date) -> Sequence[SurfaceCompensation]:
    """Compensations still planned after their due day, oldest due first."""
    stmt = (
        select(SurfaceCompensation)
        .where(*_late(today))
        .order_by(col(SurfaceCompensation.due_on), col(SurfaceCompensation.id))
    )
    return (await session.execute(stmt)).scalars().all()


async def late_compensations_by_arrondissement(
    session: AsyncSession, today: date
) -> dict[int, int]:
    stmt = (
        select(col(SurfaceCompensation.arrondissement), func.count())
        .where(*_late(today))
        .group_by(col(SurfaceCompensation.arrondissement))
    )
    return {arr: int(n) for arr, n in (await session.execute(stmt)).all()}


async def get_project(
    session: AsyncSession, project_id: str, *, for_update: bool = False
) -> DevelopmentProject | None:
    stmt = select(DevelopmentProject).where(col(DevelopmentProject.id) == project_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalars().first()


async def project_name_taken(session: AsyncSession, name: str, but: str | None = None) -> bool:
    stmt = select(col(DevelopmentProject.id)).where(col(DevelopmentProject.name) == name)
    if but is not None:
        stmt = stmt.where(col(DevelopmentProject.id) != but)
    return (await session.execute(stmt)).first() is not None


async def list_projects(
    session: AsyncSession, *, arrondissement: int | None, page: PageParams
) -> tuple[Sequence[DevelopmentProject], int]:
    """One page of projects by delivery date (id breaks ties), and how many match."""
    stmt = select(DevelopmentProject)
    if arrondissement:
        stmt = stmt.where(col(DevelopmentProject.arrondissement) == arrondissement)
    order = (col(DevelopmentProject.delivery_on), col(DevelopmentProject.id))
    return await paginate(session, stmt.order_by(*order), page)


async def project_is_linked(session: AsyncSession, project_id: str) -> bool:
    """Whether any unit (withdrawn ones too) or compensation names this project."""
    units = select(col(Unit.id)).where(col(Unit.project_id) == project_id)
    compensations = select(col(SurfaceCompensation.id)).where(
        col(SurfaceCompensation.project_id) == project_id
    )
    for stmt in (units, compensations):
        if (await session.execute(stmt.limit(1))).first() is not None:
            return True
    return False


async def production_of_projects(
    session: AsyncSession, ids: set[str]
) -> dict[str, tuple[float, int]]:
    """(production m², unit count) of the production units linked to each project."""
    if not ids:
        return {}
    stmt = (
        select(col(Unit.project_id), func.sum(col(Unit.surface_m2)), func.count())
        .where(
            col(Unit.project_id).in_(ids),
            col(Unit.use_class) == UseClass.PRODUCTION.value,
            col(Unit.space_kind) == SpaceKind.WORKSHOP.value,  # stalls are no production
            col(Unit.status) != UnitStatus.WITHDRAWN.value,
        )
        .group_by(col(Unit.project_id))
    )
    rows = (await session.execute(stmt)).all()
    return {pid: (float(m2 or 0), int(n)) for pid, m2, n in rows}


# Open data -------------------------------------------------------------------------------


async def open_vacancies(session: AsyncSession) -> Sequence[tuple[Unit, Site]]:
    """Every available unit with its site, by arrondissement, site and reference."""
    stmt = (
        select(Unit, Site)
        .join(Site, col(Site.id) == col(Unit.site_id))
        .where(col(Unit.status) == UnitStatus.AVAILABLE.value)
        .order_by(col(Unit.arrondissement), col(Site.name), col(Unit.reference), col(Unit.id))
    )
    return [(u, s) for u, s in (await session.execute(stmt)).all()]


async def sites_with_landlords(session: AsyncSession) -> Sequence[tuple[Site, Landlord]]:
    """Every site with its landlord, by arrondissement and name."""
    stmt = (
        select(Site, Landlord)
        .join(Landlord, col(Landlord.id) == col(Site.landlord_id))
        .order_by(col(Site.arrondissement), col(Site.name), col(Site.id))
    )
    return [(s, landlord) for s, landlord in (await session.execute(stmt)).all()]


async def compensations_by_id(
    session: AsyncSession, ids: set[str]
) -> dict[str, SurfaceCompensation]:
    if not ids:
        return {}
    stmt = select(SurfaceCompensation).where(col(SurfaceCompensation.id).in_(ids))
    return {c.id: c for c in (await session.execute(stmt)).scalars().all()}


async def ledger_page(
    session: AsyncSession, after_id: int, limit: int
) -> Sequence[SurfaceLedgerEntry]:
    """Up to `limit` ledger entries after `after_id`, in the order they were written."""
    stmt = (
        select(SurfaceLedgerEntry)
        .where(col(SurfaceLedgerEntry.id) > after_id)
        .order_by(col(SurfaceLedgerEntry.id))
        .limit(limit)
    )
    return (await session.execute(stmt)).scalars().all()


async def list_open_data_files(session: AsyncSession) -> Sequence[OpenDataFile]:
    stmt = select(OpenDataFile).order_by(col(OpenDataFile.name))
    return (await session.execute(stmt)).scalars().all()


async def get_open_data_file(session: AsyncSession, name: str) -> OpenDataFile | None:
    return await session.get(OpenDataFile, name)


async def oldest_open_data_generation(session: AsyncSession) -> datetime | None:
    stmt = select(func.min(col(OpenDataFile.generated_at)))
    return (await session.execute(stmt)).scalar_one_or_none()


async def replace_open_data_files(session: AsyncSession, files: Sequence[OpenDataFile]) -> None:
    """Replace every stored file by `files` (one regeneration, in the caller's transaction)."""
    await session.execute(delete(OpenDataFile))
    session.add_all(files)
    await session.flush()
