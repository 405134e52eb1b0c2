"""Every leasing query. Repositories flush; the use cases in the service package commit.

SQLModel types a column attribute as its Python value (`Lease.status` is a `str` to mypy), so
query expressions go through `col()`, which gives SQLAlchemy's column type back.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import ColumnElement, and_, case, delete, func, or_, select, update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.models import OutboxMessage
from fabkit.pagination import PageParams, paginate
from leasing.domain import OPEN_APPLICATION_STATUSES, ApplicationStatus, LeaseStatus
from leasing.eligibility import Catalogue
from leasing.models import (
    AccountDeletion,
    Appeal,
    Application,
    ApplicationDecision,
    ArtisanProfile,
    Call,
    CallRanking,
    JuryMember,
    JurySession,
    Lease,
    PrivacyRequest,
    ProgrammePublication,
    ProgrammeVersion,
    UnitListing,
)

# Artisans ------------------------------------------------------------------------------------


async def get_artisan(
    session: AsyncSession, artisan_id: str, *, for_update: bool = False
) -> ArtisanProfile | None:
    """One artisan by id, row-locked when `for_update`."""
    stmt = select(ArtisanProfile).where(col(ArtisanProfile.id) == artisan_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalars().first()


async def get_artisan_by_siret(session: AsyncSession, siret: str) -> ArtisanProfile | None:
    """The artisan registered with this SIRET."""
    stmt = select(ArtisanProfile).where(col(ArtisanProfile.siret) == siret)
    return (await session.execute(stmt)).scalars().first()


async def siret_taken(session: AsyncSession, siret: str, *, other_than: str | None = None) -> bool:
    """Whether an artisan (other than `other_than`) holds this SIRET."""
    stmt = select(col(ArtisanProfile.id)).where(col(ArtisanProfile.siret) == siret)
    if other_than:
        stmt = stmt.where(col(ArtisanProfile.id) != other_than)
    return (await session.execute(stmt)).first() is not None


async def artisans_by_id(session: AsyncSession, ids: set[str]) -> dict[str, ArtisanProfile]:
    """The artisans of these ids, by id."""
    if not ids:
        return {}
    rows = await session.execute(select(ArtisanProfile).where(col(ArtisanProfile.id).in_(ids)))
    return {a.id: a for a in rows.scalars()}


# Unit listings -------------------------------------------------------------------------------


async def get_listing(
    session: AsyncSession, unit_id: str, *, for_update: bool = False
) -> UnitListing | None:
    """The read model of one unit, row-locked when `for_update`."""
    stmt = select(UnitListing).where(col(UnitListing.unit_id) == unit_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalars().first()


@dataclass(frozen=True)
class ListingSearch:
    """Filters of the unit search; an empty filter does not restrict."""

    statuses: Sequence[str] = ()
    site_kinds: Sequence[str] = ()
    arrondissements: Sequence[int] = ()
    landlord_id: str | None = None


async def search_listings(
    session: AsyncSession, q: ListingSearch, page: PageParams
) -> tuple[Sequence[UnitListing], int]:
    """One page of the matching units, cheapest rent first, and how many match."""
    stmt = select(UnitListing)
    if q.statuses:
        stmt = stmt.where(col(UnitListing.status).in_(q.statuses))
    if q.site_kinds:
        stmt = stmt.where(col(UnitListing.site_kind).in_(q.site_kinds))
    if q.arrondissements:
        stmt = stmt.where(col(UnitListing.arrondissement).in_(q.arrondissements))
    if q.landlord_id:
        stmt = stmt.where(col(UnitListing.landlord_id) == q.landlord_id)
    ordered = stmt.order_by(col(UnitListing.rent_eur_m2_year), col(UnitListing.unit_id))
    return await paginate(session, ordered, page)


# Applications --------------------------------------------------------------------------------


async def get_application(
    session: AsyncSession, application_id: str, *, for_update: bool = False
) -> Application | None:
    """One application by id, row-locked when `for_update`."""
    stmt = select(Application).where(col(Application.id) == application_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalars().first()


async def list_applications(
    session: AsyncSession,
    *,
    artisan_id: str | None,
    landlord_id: str | None,
    unit_id: str | None,
    statuses: Sequence[str],
    page: PageParams,
) -> tuple[Sequence[Application], int]:
    """One page of the matching applications, newest first, and how many match."""
    stmt = select(Application)
    if artisan_id:
        stmt = stmt.where(col(Application.artisan_id) == artisan_id)
    if landlord_id:
        stmt = stmt.where(col(Application.landlord_id) == landlord_id)
    if unit_id:
        stmt = stmt.where(col(Application.unit_id) == unit_id)
    if statuses:
        stmt = stmt.where(col(Application.status).in_(statuses))
    ordered = stmt.order_by(col(Application.submitted_at).desc(), col(Application.id))
    return await paginate(session, ordered, page)


async def open_applications_of_vacancy(
    session: AsyncSession, vacancy_id: str
) -> Sequence[Application]:
    """The applications still open on a vacancy (drafts included), row-locked, in id order."""
    statuses = [s.value for s in OPEN_APPLICATION_STATUSES | {ApplicationStatus.DRAFT}]
    stmt = (
        select(Application)
        .where(
            col(Application.vacancy_id) == vacancy_id,
            col(Application.status).in_(statuses),
        )
        .order_by(col(Application.id))
        .with_for_update()
    )
    return (await session.execute(stmt)).scalars().all()


async def ranked_applications(
    session: AsyncSession, vacancy_id: str, statuses: Sequence[str]
) -> Sequence[Application]:
    """Applications of one vacancy in ranking order: score, then first come, then id."""
    stmt = select(Application).where(col(Application.vacancy_id) == vacancy_id)
    if statuses:
        stmt = stmt.where(col(Application.status).in_(statuses))
    stmt = stmt.order_by(
        col(Application.score).desc(), col(Application.submitted_at), col(Application.id)
    )
    return (await session.execute(stmt)).scalars().all()


async def open_ranks(
    session: AsyncSession, vacancy_ids: Sequence[str]
) -> dict[str, tuple[int, int]]:
    """(rank, how many) of every open application of these vacancies, in the ranking order of
    `ranked_applications`, by application id."""
    if not vacancy_ids:
        return {}
    rows = await session.execute(
        select(col(Application.id), col(Application.vacancy_id))
        .where(
            col(Application.vacancy_id).in_(sorted(set(vacancy_ids))),
            col(Application.status).in_([s.value for s in OPEN_APPLICATION_STATUSES]),
        )
        .order_by(
            col(Application.vacancy_id),
            col(Application.score).desc(),
            col(Application.submitted_at),
            col(Application.id),
        )
    )
    by_vacancy: dict[str, list[str]] = defaultdict(list)
    for app_id, vacancy_id in rows.all():
        by_vacancy[vacancy_id].append(app_id)
    return {
        app_id: (rank, len(ids))
        for ids in by_vacancy.values()
        for rank, app_id in enumerate(ids, start=1)
    }


async def decisions_of(
    session: AsyncSession, application_ids: Sequence[str]
) -> dict[str, list[ApplicationDecision]]:
    """The decisions taken on these applications, oldest first, by application id."""
    if not application_ids:
        return {}
    rows = await session.execute(
        select(ApplicationDecision)
        .where(col(ApplicationDecision.application_id).in_(application_ids))
        .order_by(col(ApplicationDecision.id))
    )
    out: dict[str, list[ApplicationDecision]] = defaultdict(list)
    for d in rows.scalars():
        out[d.application_id].append(d)
    return out


async def count_applications_by_status(session: AsyncSession) -> dict[str, int]:
    """How many applications are in each status (for the gauges)."""
    rows = await session.execute(
        select(col(Application.status), func.count()).group_by(col(Application.status))
    )
    return {status: count for status, count in rows.all()}


# Leases ------------------------------------------------------------------------------------


async def get_lease(
    session: AsyncSession, lease_id: str, *, for_update: bool = False
) -> Lease | None:
    """One lease (or offer) by id, row-locked when `for_update`."""
    stmt = select(Lease).where(col(Lease.id) == lease_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalars().first()


async def open_lease_of_unit(session: AsyncSession, unit_id: str) -> Lease | None:
    """The offered or signed lease of a unit, if it has one."""
    stmt = select(Lease).where(
        col(Lease.unit_id) == unit_id,
        col(Lease.status).in_([LeaseStatus.OFFERED.value, LeaseStatus.ACTIVE.value]),
    )
    return (await session.execute(stmt)).scalars().first()


async def lease_of_application(
    session: AsyncSession, application_id: str, *, for_update: bool = False
) -> Lease | None:
    """The lease offered on an application, row-locked when `for_update`."""
    stmt = select(Lease).where(col(Lease.application_id) == application_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalars().first()


async def lease_ids_of_applications(
    session: AsyncSession, application_ids: Sequence[str]
) -> dict[str, str]:
    """The lease id of each of these applications that got an offer."""
    if not application_ids:
        return {}
    rows = await session.execute(
        select(col(Lease.application_id), col(Lease.id)).where(
            col(Lease.application_id).in_(application_ids)
        )
    )
    return {app_id: lease_id for app_id, lease_id in rows.all()}


async def list_leases(
    session: AsyncSession,
    *,
    artisan_id: str | None,
    landlord_id: str | None,
    unit_id: str | None,
    statuses: Sequence[str],
    page: PageParams,
) -> tuple[Sequence[Lease], int]:
    """One page of the matching offers and leases, newest offer first, and how many match."""
    stmt = select(Lease)
    if artisan_id:
        stmt = stmt.where(col(Lease.artisan_id) == artisan_id)
    if landlord_id:
        stmt = stmt.where(col(Lease.landlord_id) == landlord_id)
    if unit_id:
        stmt = stmt.where(col(Lease.unit_id) == unit_id)
    if statuses:
        stmt = stmt.where(col(Lease.status).in_(statuses))
    ordered = stmt.order_by(col(Lease.offered_at).desc(), col(Lease.id))
    return await paginate(session, ordered, page)


async def expired_offer_ids(session: AsyncSession, now: datetime, limit: int) -> list[str]:
    """Open offers past their deadline, the oldest deadline first."""
    stmt = (
        select(col(Lease.id))
        .where(col(Lease.status) == LeaseStatus.OFFERED.value, col(Lease.offer_expires_at) <= now)
        .order_by(col(Lease.offer_expires_at))
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars().all())


async def due_lease_ids(session: AsyncSession, today: date, limit: int) -> list[str]:
    """Active leases whose end date has passed."""
    stmt = (
        select(col(Lease.id))
        .where(col(Lease.status) == LeaseStatus.ACTIVE.value, col(Lease.end_date) < today)
        .order_by(col(Lease.end_date))
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars().all())


async def count_pending_offers(session: AsyncSession) -> int:
    """How many offers wait for the artisan's answer (for the gauges)."""
    stmt = select(func.count()).where(col(Lease.status) == LeaseStatus.OFFERED.value)
    return int((await session.execute(stmt)).scalar_one())


# Programme publication ---------------------------------------------------------------------


async def get_publication(
    session: AsyncSession, *, for_update: bool = False
) -> ProgrammePublication | None:
    """The single row recording the last catalogue published, row-locked when `for_update`."""
    stmt = select(ProgrammePublication).where(col(ProgrammePublication.id) == 1)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalars().first()


async def current_catalogue_version(session: AsyncSession) -> int | None:
    """The catalogue version in force (one primary-key read: the catalogue caches' check)."""
    stmt = select(col(ProgrammePublication.catalogue_version)).where(
        col(ProgrammePublication.id) == 1
    )
    return (await session.execute(stmt)).scalars().first()


async def get_programme_version(session: AsyncSession, version: int) -> ProgrammeVersion | None:
    """One stored catalogue version, body included."""
    stmt = select(ProgrammeVersion).where(col(ProgrammeVersion.version) == version)
    return (await session.execute(stmt)).scalars().first()


async def get_catalogue_version(session: AsyncSession, version: int) -> Catalogue | None:
    """The programme catalogue as it was at `version` (a call ranks under the one it opened
    with); None when no such version is stored."""
    row = await get_programme_version(session, version)
    return Catalogue.model_validate(row.body) if row is not None else None


async def list_programme_versions(
    session: AsyncSession, page: PageParams
) -> tuple[Sequence[ProgrammeVersion], int]:
    """Stored catalogue versions, newest first."""
    stmt = select(ProgrammeVersion).order_by(col(ProgrammeVersion.version).desc())
    return await paginate(session, stmt, page)


# Letting statistics (officers) -------------------------------------------------------------


async def open_vacancies(session: AsyncSession) -> list[tuple[int, str, datetime | None]]:
    """(arrondissement, site kind, opened at) of every vacancy open now."""
    stmt = select(
        col(UnitListing.arrondissement),
        col(UnitListing.site_kind),
        col(UnitListing.vacancy_opened_at),
    ).where(
        col(UnitListing.vacancy_id).is_not(None),
        col(UnitListing.status) == "available",
        # A vacancy whose lease is signed is let, though inventory has not closed it yet.
        ~select(col(Lease.id))
        .where(
            col(Lease.vacancy_id) == col(UnitListing.vacancy_id),
            col(Lease.signed_at).is_not(None),
        )
        .exists(),
    )
    return [(a, k, o) for a, k, o in (await session.execute(stmt)).all()]


async def signed_leases(
    session: AsyncSession, start: datetime, end: datetime
) -> list[tuple[str, int, str, datetime]]:
    """(vacancy id, arrondissement, site kind, signed at) of the leases signed in [start, end),
    whatever became of them since."""
    stmt = (
        select(
            col(Lease.vacancy_id),
            col(UnitListing.arrondissement),
            col(UnitListing.site_kind),
            col(Lease.signed_at),
        )
        .join(UnitListing, col(UnitListing.unit_id) == col(Lease.unit_id))
        .where(col(Lease.signed_at) >= start, col(Lease.signed_at) < end)
    )
    return [(v, a, k, s) for v, a, k, s in (await session.execute(stmt)).all()]


async def vacancy_openings(session: AsyncSession, vacancy_ids: set[str]) -> dict[str, datetime]:
    """When each of these vacancies opened, where leasing knows it: its call was made when
    the vacancy opened (`created_at`; `opens_at` when the call opened with the vacancy, which
    is earlier than leasing hearing of it), else the listing, which keeps the opening of its
    vacancy until inventory closes it."""
    if not vacancy_ids:
        return {}
    wanted = sorted(vacancy_ids)
    calls = select(col(Call.vacancy_id), col(Call.opens_at), col(Call.created_at)).where(
        col(Call.vacancy_id).in_(wanted)
    )
    found = {v: min(o, c) for v, o, c in (await session.execute(calls)).all()}
    listed = select(col(UnitListing.vacancy_id), col(UnitListing.vacancy_opened_at)).where(
        col(UnitListing.vacancy_id).in_(wanted),
        col(UnitListing.vacancy_opened_at).is_not(None),
    )
    for v, o in (await session.execute(listed)).all():
        found.setdefault(v, o)
    return found


# Calls for applications --------------------------------------------------------------------


async def get_call(
    session: AsyncSession, call_id: str, *, for_update: bool = False, skip_locked: bool = False
) -> Call | None:
    """One call by id, row-locked when `for_update` (skipped when another holds it and
    `skip_locked`: the worker of another replica is on it)."""
    stmt = select(Call).where(col(Call.id) == call_id)
    if for_update:
        stmt = stmt.with_for_update(skip_locked=skip_locked)
    return (await session.execute(stmt)).scalars().first()


async def get_call_of_vacancy(
    session: AsyncSession, vacancy_id: str, *, for_update: bool = False
) -> Call | None:
    """The call of a vacancy, row-locked when `for_update`."""
    stmt = select(Call).where(col(Call.vacancy_id) == vacancy_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalars().first()


async def calls_by_id(session: AsyncSession, ids: set[str]) -> dict[str, Call]:
    """The calls of these ids, by id."""
    if not ids:
        return {}
    rows = await session.execute(select(Call).where(col(Call.id).in_(sorted(ids))))
    return {c.id: c for c in rows.scalars()}


@dataclass(frozen=True)
class CallSearch:
    """Filters of the call list; an empty filter does not restrict."""

    statuses: Sequence[str] = ()
    unit_id: str | None = None
    landlord_id: str | None = None


async def list_calls(
    session: AsyncSession, q: CallSearch, page: PageParams
) -> tuple[Sequence[Call], int]:
    """One page of the matching calls, the latest closing date first, and how many match."""
    stmt = select(Call)
    if q.statuses:
        stmt = stmt.where(col(Call.status).in_(q.statuses))
    if q.unit_id:
        stmt = stmt.where(col(Call.unit_id) == q.unit_id)
    if q.landlord_id:
        stmt = stmt.where(col(Call.landlord_id) == q.landlord_id)
    ordered = stmt.order_by(col(Call.closes_at).desc(), col(Call.id))
    return await paginate(session, ordered, page)


async def due_call_ids(session: AsyncSession, status: str, now: datetime, limit: int) -> list[str]:
    """Scheduled calls whose opening passed, or open calls whose closing passed (by `status`),
    the earliest date first."""
    when = col(Call.opens_at) if status == "scheduled" else col(Call.closes_at)
    stmt = (
        select(col(Call.id))
        .where(col(Call.status) == status, when <= now)
        .order_by(when)
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars().all())


async def applications_of_call(
    session: AsyncSession, call_id: str, statuses: Sequence[str], *, for_update: bool = False
) -> Sequence[Application]:
    """The applications of a call in these statuses (all when empty), in id order."""
    stmt = select(Application).where(col(Application.call_id) == call_id)
    if statuses:
        stmt = stmt.where(col(Application.status).in_(statuses))
    stmt = stmt.order_by(col(Application.id))
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalars().all()


async def count_applications_of_calls(
    session: AsyncSession, call_ids: Sequence[str]
) -> dict[str, dict[str, int]]:
    """How many applications each call has in each status, by call id."""
    if not call_ids:
        return {}
    rows = await session.execute(
        select(col(Application.call_id), col(Application.status), func.count())
        .where(col(Application.call_id).in_(sorted(set(call_ids))))
        .group_by(col(Application.call_id), col(Application.status))
    )
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for call_id, status, count in rows.all():
        out[call_id][status] = count
    return out


async def frozen_ranking(
    session: AsyncSession, call_id: str
) -> list[tuple[CallRanking, Application]]:
    """A call's frozen ranking, first first, with each line's application as it is now."""
    rows = await session.execute(
        select(CallRanking, Application)
        .join(Application, col(Application.id) == col(CallRanking.application_id))
        .where(col(CallRanking.call_id) == call_id)
        .order_by(col(CallRanking.rank))
    )
    return [(r, a) for r, a in rows.tuples().all()]


async def rankings_of_applications(
    session: AsyncSession, application_ids: Sequence[str]
) -> dict[str, tuple[CallRanking, int]]:
    """The frozen ranking line of each of these applications, and how many its call ranked."""
    if not application_ids:
        return {}
    lines = (
        (
            await session.execute(
                select(CallRanking).where(col(CallRanking.application_id).in_(application_ids))
            )
        )
        .scalars()
        .all()
    )
    if not lines:
        return {}
    sizes = dict(
        (
            await session.execute(
                select(col(CallRanking.call_id), func.count())
                .where(col(CallRanking.call_id).in_({r.call_id for r in lines}))
                .group_by(col(CallRanking.call_id))
            )
        )
        .tuples()
        .all()
    )
    return {r.application_id: (r, sizes[r.call_id]) for r in lines}


# Juries, published results and appeals ------------------------------------------------------


async def jury_of(
    session: AsyncSession, call_id: str, *, for_update: bool = False
) -> tuple[JurySession | None, list[JuryMember]]:
    """A call's jury session (row-locked when `for_update`) and its members in order."""
    stmt = select(JurySession).where(col(JurySession.call_id) == call_id)
    if for_update:
        stmt = stmt.with_for_update()
    jury = (await session.execute(stmt)).scalars().first()
    members = await session.execute(
        select(JuryMember)
        .where(col(JuryMember.call_id) == call_id)
        .order_by(col(JuryMember.position))
    )
    return jury, list(members.scalars().all())


async def replace_jury_members(
    session: AsyncSession, call_id: str, members: Sequence[JuryMember]
) -> None:
    """The call's jury members become `members` (the previous list is dropped)."""
    await session.execute(delete(JuryMember).where(col(JuryMember.call_id) == call_id))
    await session.flush()
    session.add_all(members)
    await session.flush()


async def list_published_results(
    session: AsyncSession, page: PageParams
) -> tuple[Sequence[Call], int]:
    """One page of the calls whose results are published, the latest published first."""
    stmt = (
        select(Call)
        .where(col(Call.results_published_at).is_not(None))
        .order_by(col(Call.results_published_at).desc(), col(Call.id))
    )
    return await paginate(session, stmt, page)


async def get_appeal(
    session: AsyncSession, appeal_id: str, *, for_update: bool = False
) -> Appeal | None:
    """One appeal by id, row-locked when `for_update`."""
    stmt = select(Appeal).where(col(Appeal.id) == appeal_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalars().first()


async def appeal_of_application(session: AsyncSession, application_id: str) -> Appeal | None:
    """The appeal filed against an application's results, if any."""
    stmt = select(Appeal).where(col(Appeal.application_id) == application_id)
    return (await session.execute(stmt)).scalars().first()


@dataclass(frozen=True)
class AppealSearch:
    """Filters of the appeal list; None does not restrict."""

    artisan_id: str | None = None
    landlord_id: str | None = None
    call_id: str | None = None
    status: str | None = None


async def list_appeals(
    session: AsyncSession, q: AppealSearch, page: PageParams
) -> tuple[Sequence[Appeal], int]:
    """One page of the matching appeals, the latest filed first, and how many match."""
    stmt = select(Appeal)
    if q.artisan_id:
        stmt = stmt.where(col(Appeal.artisan_id) == q.artisan_id)
    if q.landlord_id:
        stmt = stmt.where(col(Appeal.landlord_id) == q.landlord_id)
    if q.call_id:
        stmt = stmt.where(col(Appeal.call_id) == q.call_id)
    if q.status:
        stmt = stmt.where(col(Appeal.status) == q.status)
    return await paginate(session, stmt.order_by(col(Appeal.filed_at).desc(), col(Appeal.id)), page)


# Privacy (export, erasure, audit log) ------------------------------------------------------


async def applications_of_artisan(
    session: AsyncSession, artisan_id: str, *, for_update: bool = False
) -> Sequence[Application]:
    """Every application of one artisan, oldest first."""
    stmt = select(Application).where(col(Application.artisan_id) == artisan_id)
    if for_update:
        stmt = stmt.with_for_update()
    order = (col(Application.submitted_at), col(Application.id))
    return (await session.execute(stmt.order_by(*order))).scalars().all()


async def decisions_of_applications(
    session: AsyncSession, application_ids: Sequence[str]
) -> Sequence[ApplicationDecision]:
    if not application_ids:
        return []
    stmt = select(ApplicationDecision).where(
        col(ApplicationDecision.application_id).in_(application_ids)
    )
    return (await session.execute(stmt.order_by(col(ApplicationDecision.id)))).scalars().all()


async def ranking_rows_of_applications(
    session: AsyncSession, application_ids: Sequence[str]
) -> Sequence[CallRanking]:
    if not application_ids:
        return []
    stmt = select(CallRanking).where(col(CallRanking.application_id).in_(application_ids))
    return (await session.execute(stmt.order_by(col(CallRanking.id)))).scalars().all()


async def leases_of_artisan(
    session: AsyncSession, artisan_id: str, *, for_update: bool = False
) -> Sequence[Lease]:
    stmt = select(Lease).where(col(Lease.artisan_id) == artisan_id)
    if for_update:
        stmt = stmt.with_for_update()
    order = (col(Lease.offered_at), col(Lease.id))
    return (await session.execute(stmt.order_by(*order))).scalars().all()


async def appeals_of_artisan(
    session: AsyncSession, artisan_id: str, *, for_update: bool = False
) -> Sequence[Appeal]:
    stmt = select(Appeal).where(col(Appeal.artisan_id) == artisan_id)
    if for_update:
        stmt = stmt.with_for_update()
    order = (col(Appeal.filed_at), col(Appeal.id))
    return (await session.execute(stmt.order_by(*order))).scalars().all()


async def privacy_requests_of(session: AsyncSession, artisan_id: str) -> Sequence[PrivacyRequest]:
    stmt = select(PrivacyRequest).where(col(PrivacyRequest.subject_artisan_id) == artisan_id)
    return (await session.execute(stmt.order_by(col(PrivacyRequest.created_at)))).scalars().all()


async def unsealed_erasure_ids(
    session: AsyncSession, completed_before: datetime, limit: int
) -> list[str]:
    """Erasures completed before `completed_before` whose second record is not written yet."""
    stmt = (
        select(col(PrivacyRequest.id))
        .where(
            col(PrivacyRequest.kind) == "erasure",
            col(PrivacyRequest.completed_at) <= completed_before,
            col(PrivacyRequest.sealed_at).is_(None),
        )
        .order_by(col(PrivacyRequest.completed_at))
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars().all())


async def get_privacy_request(
    session: AsyncSession, request_id: str, *, skip_locked: bool = False
) -> PrivacyRequest | None:
    """One privacy request, row-locked (skipped when another replica holds it)."""
    stmt = (
        select(PrivacyRequest)
        .where(col(PrivacyRequest.id) == request_id)
        .with_for_update(skip_locked=skip_locked)
    )
    return (await session.execute(stmt)).scalars().first()


async def erasure_of(session: AsyncSession, artisan_id: str) -> PrivacyRequest | None:
    """The completed erasure request of an artisan, if any."""
    stmt = select(PrivacyRequest).where(
        col(PrivacyRequest.subject_artisan_id) == artisan_id,
        col(PrivacyRequest.kind) == "erasure",
        col(PrivacyRequest.completed_at).is_not(None),
    )
    return (
        (await session.execute(stmt.order_by(col(PrivacyRequest.created_at)).limit(1)))
        .scalars()
        .first()
    )


async def list_privacy_requests(
    session: AsyncSession, page: PageParams, kind: str | None = None
) -> tuple[Sequence[PrivacyRequest], int]:
    """One page of the audit log, the latest first."""
    stmt = select(PrivacyRequest)
    if kind:
        stmt = stmt.where(col(PrivacyRequest.kind) == kind)
    order = (col(PrivacyRequest.created_at).desc(), col(PrivacyRequest.id))
    return await paginate(session, stmt.order_by(*order), page)


async def due_account_deletion_ids(session: AsyncSession, now: datetime, limit: int) -> list[str]:
    """Artisans whose identity-provider account is still to delete and due for an attempt."""
    stmt = (
        select(col(AccountDeletion.artisan_id))
        .where(
            col(AccountDeletion.deleted_at).is_(None),
            col(AccountDeletion.next_attempt_at) <= now,
        )
        .order_by(col(AccountDeletion.next_attempt_at))
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars().all())


async def get_account_deletion(
    session: AsyncSession, artisan_id: str, *, for_update: bool = False, skip_locked: bool = False
) -> AccountDeletion | None:
    """The account deletion of one artisan, row-locked when `for_update` (skipped when another
    replica's deleter holds it and `skip_locked`)."""
    stmt = select(AccountDeletion).where(col(AccountDeletion.artisan_id) == artisan_id)
    if for_update:
        stmt = stmt.with_for_update(skip_locked=skip_locked)
    return (await session.execute(stmt)).scalars().first()


async def account_deletions_of(
    session: AsyncSession, artisan_ids: Sequence[str]
) -> dict[str, AccountDeletion]:
    """The account deletions of these artisans, by artisan id."""
    if not artisan_ids:
        return {}
    stmt = select(AccountDeletion).where(col(AccountDeletion.artisan_id).in_(set(artisan_ids)))
    return {row.artisan_id: row for row in (await session.execute(stmt)).scalars().all()}


async def count_pending_account_deletions(session: AsyncSession) -> int:
    stmt = select(func.count()).where(col(AccountDeletion.deleted_at).is_(None))
    return int((await session.execute(stmt.select_from(AccountDeletion))).scalar_one())


# Retention (service/retention.py) ---------------------------------------------------------------

# Applications that ended without a lease: the retention rule pseudonymises them once old.
UNSELECTED_STATUSES = (
    ApplicationStatus.DECLINED.value,
    ApplicationStatus.EXPIRED.value,
    ApplicationStatus.REJECTED.value,
    ApplicationStatus.WITHDRAWN.value,
    ApplicationStatus.CLOSED.value,
)
WAITING_STATUSES = (ApplicationStatus.DRAFT.value, ApplicationStatus.SUBMITTED.value)


def _protecting_lease(ended_on_or_after: date) -> ColumnElement[bool]:
    """A signed lease of the artisan still running, or ended on or after the date."""
    return (
        select(col(Lease.id))
        .where(
            col(Lease.artisan_id) == col(ArtisanProfile.id),
            col(Lease.signed_at).is_not(None),
            or_(col(Lease.ended_on).is_(None), col(Lease.ended_on) >= ended_on_or_after),
        )
        .exists()
    )


async def artisans_to_warn(
    session: AsyncSession, active_before: datetime, lease_ended_after: date, limit: int
) -> list[str]:
    """Artisans inactive since before `active_before`, not warned since their last activity,
    without a signed lease running or ended after `lease_ended_after`."""
    stmt = (
        select(col(ArtisanProfile.id))
        .where(
            col(ArtisanProfile.erased_at).is_(None),
            col(ArtisanProfile.last_active_at) < active_before,
            or_(
                col(ArtisanProfile.inactivity_warned_at).is_(None),
                col(ArtisanProfile.inactivity_warned_at) < col(ArtisanProfile.last_active_at),
            ),
            ~_protecting_lease(lease_ended_after),
        )
        .order_by(col(ArtisanProfile.last_active_at))
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars().all())


async def count_inactive_kept_for_lease(
    session: AsyncSession, active_before: datetime, lease_ended_after: date
) -> int:
    """Artisans inactive since before `active_before` kept because of a signed lease."""
    stmt = select(func.count()).where(
        col(ArtisanProfile.erased_at).is_(None),
        col(ArtisanProfile.last_active_at) < active_before,
        _protecting_lease(lease_ended_after),
    )
    return int((await session.execute(stmt.select_from(ArtisanProfile))).scalar_one())


async def artisans_active_since_warning(session: AsyncSession, limit: int) -> list[str]:
    """Warned artisans who were active after their warning (the erasure is cancelled)."""
    stmt = (
        select(col(ArtisanProfile.id))
        .where(
            col(ArtisanProfile.erased_at).is_(None),
            col(ArtisanProfile.inactivity_warned_at).is_not(None),
            col(ArtisanProfile.last_active_at) > col(ArtisanProfile.inactivity_warned_at),
        )
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars().all())


async def artisans_due_for_erasure(session: AsyncSession, now: datetime, limit: int) -> list[str]:
    """Warned artisans, inactive since the warning, whose announced erasure date has passed."""
    stmt = (
        select(col(ArtisanProfile.id))
        .where(
            col(ArtisanProfile.erased_at).is_(None),
            col(ArtisanProfile.inactivity_warned_at).is_not(None),
            col(ArtisanProfile.last_active_at) <= col(ArtisanProfile.inactivity_warned_at),
            col(ArtisanProfile.inactivity_erasure_due_at) <= now,
        )
        .order_by(col(ArtisanProfile.inactivity_erasure_due_at))
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars().all())


async def lock_artisan(session: AsyncSession, artisan_id: str) -> ArtisanProfile | None:
    """One artisan, row-locked; None when another replica holds the lock (SKIP LOCKED)."""
    stmt = (
        select(ArtisanProfile)
        .where(col(ArtisanProfile.id) == artisan_id)
        .with_for_update(skip_locked=True)
    )
    return (await session.execute(stmt)).scalars().first()


async def has_protecting_lease(
    session: AsyncSession, artisan_id: str, lease_ended_after: date
) -> bool:
    """Whether the artisan has a signed lease running or ended after `lease_ended_after`."""
    stmt = select(col(ArtisanProfile.id)).where(
        col(ArtisanProfile.id) == artisan_id, _protecting_lease(lease_ended_after)
    )
    return (await session.execute(stmt)).first() is not None


async def touch_artisan(
    session: AsyncSession, artisan_id: str, now: datetime, *, unless_since: datetime | None = None
) -> bool:
    """Record the artisan's activity at `now` (not on an erased profile; not when already
    recorded at or after `unless_since`); whether the row changed."""
    stmt = update(ArtisanProfile).where(
        col(ArtisanProfile.id) == artisan_id,
        col(ArtisanProfile.erased_at).is_(None),
        col(ArtisanProfile.last_active_at) < (unless_since or now),
    )
    result = await session.execute(stmt.values(last_active_at=now))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _unselected(decided_before: datetime | None) -> list[ColumnElement[bool]]:
    """Applications not selected, not pseudonymised yet, with no lease signed and no appeal
    waiting for its answer; with a cut, only those whose call was decided and which last
    changed before it."""
    call_decided = (
        select(col(Call.id))
        .where(col(Call.id) == col(Application.call_id), col(Call.decided_at).is_not(None))
        .exists()
    )
    conditions: list[ColumnElement[bool]] = [
        col(Application.pseudonymised_at).is_(None),
        or_(
            col(Application.status).in_(UNSELECTED_STATUSES),
            # still waiting when its call was decided for someone else (or nobody)
            and_(col(Application.status).in_(WAITING_STATUSES), call_decided),
        ),
    ]
    if decided_before is not None:
        decided_later = (
            select(col(Call.id))
            .where(
                col(Call.id) == col(Application.call_id),
                col(Call.decided_at).is_not(None),
                col(Call.decided_at) >= decided_before,
            )
            .exists()
        )
        conditions += [col(Application.updated_at) < decided_before, ~decided_later]
    return [
        *conditions,
        ~select(col(Lease.id))
        .where(col(Lease.application_id) == col(Application.id), col(Lease.signed_at).is_not(None))
        .exists(),
        ~select(col(Appeal.id))
        .where(col(Appeal.application_id) == col(Application.id), col(Appeal.status) == "filed")
        .exists(),
    ]


async def unselected_application_ids(
    session: AsyncSession, decided_before: datetime, limit: int
) -> list[str]:
    """Applications the retention rule pseudonymises (see `_unselected`)."""
    stmt = (
        select(col(Application.id))
        .where(*_unselected(decided_before))
        .order_by(col(Application.updated_at))
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars().all())


async def lock_unselected_application(
    session: AsyncSession, application_id: str, decided_before: datetime
) -> Application | None:
    """The application if it is still to pseudonymise, row-locked (None when another replica
    holds it)."""
    stmt = (
        select(Application)
        .where(col(Application.id) == application_id, *_unselected(decided_before))
        .with_for_update(skip_locked=True)
    )
    return (await session.execute(stmt)).scalars().first()


async def any_published_before(session: AsyncSession, published_before: datetime) -> bool:
    """Whether an outbox row was published before the cut (the retention job writes only
    when there is something to delete: on SQLite every write takes the database's lock)."""
    stmt = select(col(OutboxMessage.id)).where(
        col(OutboxMessage.published_at).is_not(None),
        col(OutboxMessage.published_at) < published_before,
    )
    return (await session.execute(stmt.limit(1))).first() is not None


async def any_privacy_request_before(session: AsyncSession, created_before: datetime) -> bool:
    stmt = select(col(PrivacyRequest.id)).where(col(PrivacyRequest.created_at) < created_before)
    return (await session.execute(stmt.limit(1))).first() is not None


def _old_lease_texts(ended_before: date) -> list[ColumnElement[bool]]:
    return [
        col(Lease.ended_on) < ended_before,
        or_(col(Lease.message).is_not(None), col(Lease.end_reason).is_not(None)),
    ]


async def any_old_lease_texts(session: AsyncSession, ended_before: date) -> bool:
    stmt = select(col(Lease.id)).where(*_old_lease_texts(ended_before))
    return (await session.execute(stmt.limit(1))).first() is not None


async def delete_privacy_requests_before(session: AsyncSession, created_before: datetime) -> int:
    """Delete the audit log's rows created before the cut; how many went."""
    stmt = delete(PrivacyRequest).where(col(PrivacyRequest.created_at) < created_before)
    return int((await session.execute(stmt)).rowcount or 0)  # type: ignore[attr-defined]


async def clear_old_lease_texts(session: AsyncSession, ended_before: date, now: datetime) -> int:
    """Clear the free texts (message, end reason) of leases ended before the date; how many."""
    stmt = (
        update(Lease)
        .where(*_old_lease_texts(ended_before))
        .values(message=None, end_reason=None, version=col(Lease.version) + 1, updated_at=now)
    )
    return int((await session.execute(stmt)).rowcount or 0)  # type: ignore[attr-defined]


async def oldest_personal_records(session: AsyncSession) -> dict[str, datetime | None]:
    """The time the oldest personal record of each table counts from (None: no record):
    profiles by last activity, unselected applications by their call's decision or last
    change, the audit log and the outbox by creation."""
    decided = (
        select(col(Call.decided_at))
        .where(col(Call.id) == col(Application.call_id))
        .scalar_subquery()
    )
    since = case(
        (decided > col(Application.updated_at), decided), else_=col(Application.updated_at)
    )
    queries = {
        "artisan_profiles": select(func.min(col(ArtisanProfile.last_active_at))).where(
            col(ArtisanProfile.erased_at).is_(None)
        ),
        "applications": select(func.min(since)).where(*_unselected(None)),
        "privacy_requests": select(func.min(col(PrivacyRequest.created_at))),
        "outbox_messages": select(func.min(col(OutboxMessage.created_at))),
    }
    return {table: (await session.execute(q)).scalar_one() for table, q in queries.items()}


async def outbox_of(
    session: AsyncSession, topic: str, keys: Sequence[str]
) -> Sequence[OutboxMessage]:
    """The outbox rows of `topic` under these keys (published or not), for update."""
    if not keys:
        return []
    stmt = (
        select(OutboxMessage)
        .where(col(OutboxMessage.topic) == topic, col(OutboxMessage.key).in_(keys))
        .with_for_update()
    )
    return (await session.execute(stmt.order_by(col(OutboxMessage.id)))).scalars().all()
