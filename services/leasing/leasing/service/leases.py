"""Offers and leases: once a call closed, the landlord offers to the first in its frozen
ranking (or, on a published ground, to another) within the programme's rent cap; the artisan
accepts (the call is decided) or declines (the next in rank gets the same terms); a signed
lease ends or is renewed, and the sweeper closes what time ran out on."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.auth import Principal, Role
from fabkit.db import on_commit
from fabkit.errors import ProblemError
from fabkit.idempotency import Idempotency, Written, run_idempotent
from fabkit.pagination import Page, PageParams
from leasing import repository as repo
from leasing.domain import (
    CALL_OFFERABLE,
    OPEN_APPLICATION_STATUSES,
    ApplicationStatus,
    Decision,
    LeaseStatus,
)
from leasing.eligibility import (
    Catalogue,
    Programme,
    failed_rules,
    latest_end_date,
    monthly_rent_cap_eur,
)
from leasing.events.published import (
    LeaseEnded,
    LeaseOffered,
    LeaseRenewed,
    LeaseSigned,
    LeaseSnapshot,
    emit,
)
from leasing.metrics import OFFERS_MADE, VACANCY_TO_SIGNED_LEASE, offer_ranking
from leasing.models import Application, Call, Lease, UnitListing
from leasing.schemas import LeaseEndIn, LeaseOut, LeaseRenewIn, OfferCreate
from leasing.service import calls
from leasing.service.common import (
    SYSTEM,
    Actor,
    Sessions,
    applicant_of,
    can_see,
    check_landlord,
    facts_of,
    new_id,
    scope,
    utcnow,
)
from leasing.service.decisions import decide, set_lease_status
from leasing.settings import LeasingSettings

log = logging.getLogger(__name__)


# Offers --------------------------------------------------------------------------------------


def _offer_terms_problem(
    programme: Programme,
    listing: UnitListing,
    monthly_rent_eur: Decimal,
    start_date: date,
    end_date: date,
    today: date,
) -> str | None:
    cap = monthly_rent_cap_eur(programme.rules, listing.surface_m2)
    if monthly_rent_eur > cap:
        return (
            f"A monthly rent of {monthly_rent_eur} € is over the cap of programme "
            f"{programme.name!r}: {cap} € for this unit ({programme.rules.rent_cap_eur_m2_year} "
            f"€/m²/year × {listing.surface_m2} m² ÷ 12)."
        )
    if start_date < today:
        return "start_date cannot be in the past."
    if start_date > today + timedelta(days=366):
        return "start_date must be within a year."
    latest = latest_end_date(programme.rules, start_date)
    if end_date <= start_date:
        return "end_date must be after start_date."
    if end_date > latest:
        return (
            f"Programme {programme.name!r} allows a residency of at most "
            f"{programme.rules.max_residency_months} months: end_date must be on or before "
            f"{latest.isoformat()}."
        )
    return None


def _open_lease_conflict(status: str | None) -> str:
    what = {"offered": "an open offer", "active": "a signed lease"}.get(status or "", "an offer")
    return (
        f"This unit already has {what}: a unit never has two offered or signed leases at once. "
        "Wait for the answer (or the expiry) of the current offer."
    )


@dataclass(frozen=True)
class _Offerable:
    app: Application
    listing: UnitListing
    programme: Programme
    call: Call | None
    ground: str | None  # the published ground of an offer out of rank


async def _check_rank(
    session: AsyncSession, call: Call, app: Application, programme: Programme, data: OfferCreate
) -> str | None:
    """The out-of-rank ground the offer needs (None for the first in rank), or a 422."""
    place = await calls.standing(session, call, app)
    if place.first is not None and place.first.id == app.id:
        if data.out_of_rank is not None:
            raise ProblemError(
                422,
                "This applicant is the first in rank still in the running; an offer to them "
                "needs no out_of_rank reason: leave it out.",
            )
        return None
    if data.out_of_rank is None:
        first = place.first
        assert first is not None  # this application is submitted and ranked, so one is first
        artisan = await repo.get_artisan(session, first.artisan_id)
        name = artisan.display_name if artisan else first.artisan_id
        raise ProblemError(
            422,
            f"{name} (application {first.id}, rank {place.first_rank}) comes first in the "
            f"call's frozen ranking and is still in the running; this applicant is rank "
            f"{place.rank}. Offer to them first, or send out_of_rank with one of the "
            "programme's published grounds and your explanation.",
        )
    calls.check_ground(programme, data.out_of_rank.ground)
    return data.out_of_rank.ground


async def _offerable(
    session: AsyncSession,
    catalogue: Catalogue,
    principal: Principal,
    application_id: str,
    data: OfferCreate,
    today: date,
) -> _Offerable:
    """The application, its unit and its programme, once every check of an offer passed."""
    found = await repo.get_application(session, application_id)
    if found is None:
        raise ProblemError(404, f"No application with id {application_id}.")
    check_landlord(principal, found.landlord_id)
    # The call's row lock first: offers (and passes to the next) on one call queue there.
    call = await calls.call_of(session, found)
    if call is not None:
        calls.check_judged(call, "offers are made")
    app = await repo.get_application(session, application_id, for_update=True)
    assert app is not None  # applications are never deleted
    listing = await repo.get_listing(session, app.unit_id)
    assert listing is not None  # an application is only made on a known unit
    programme = catalogue.get(app.programme_id)
    if programme is None:
        raise ProblemError(
            409, f"Programme {app.programme_id!r} is no longer published; no offer can be made."
        )
    problem = _offer_terms_problem(
        programme, listing, data.monthly_rent_eur, data.start_date, data.end_date, today
    )
    if problem:
        raise ProblemError(422, problem)
    if app.status != ApplicationStatus.SUBMITTED:
        raise ProblemError(
            409, f"This application is {app.status}; only a submitted one can get an offer."
        )
    if listing.vacancy_id != app.vacancy_id:
        raise ProblemError(409, "The vacancy this application was made for has closed.")
    existing = await repo.open_lease_of_unit(session, app.unit_id)
    if existing is not None:
        raise ProblemError(409, _open_lease_conflict(existing.status))
    artisan = await repo.get_artisan(session, app.artisan_id)
    assert artisan is not None  # artisans are never deleted while they have applications
    failures = failed_rules(programme, applicant_of(artisan), facts_of(listing), today)
    if failures:
        raise ProblemError(
            409,
            "The applicant is no longer eligible: " + " ".join(f.message for f in failures),
            errors=[f.as_dict() for f in failures],
        )
    ground = None
    if call is not None:
        ground = await _check_rank(session, call, app, programme, data)
    elif data.out_of_rank is not None:
        raise ProblemError(
            422, "This application was made before calls for applications; send no out_of_rank."
        )
    return _Offerable(app, listing, programme, call, ground)


async def make_offer(
    sessions: Sessions,
    settings: LeasingSettings,
    catalogue: Catalogue,
    principal: Principal,
    application_id: str,
    data: OfferCreate,
    idem: Idempotency | None,
) -> Written:
    """The landlord offers a lease within the programme's cap; it expires after the TTL."""

    async def create(session: AsyncSession) -> Written:
        now = utcnow()
        ok = await _offerable(session, catalogue, principal, application_id, data, now.date())
        app = ok.app
        lease = Lease(
            id=new_id(),
            unit_id=app.unit_id,
            vacancy_id=app.vacancy_id,
            application_id=app.id,
            artisan_id=app.artisan_id,
            landlord_id=app.landlord_id,
            programme_id=ok.programme.id,
            status=LeaseStatus.OFFERED.value,
            monthly_rent_cents=int(data.monthly_rent_eur * 100),
            start_date=data.start_date,
            end_date=data.end_date,
            message=data.message,
            offered_by=f"{principal.role.value}:{principal.subject}",
            offered_at=now,
            offer_expires_at=now + timedelta(hours=settings.offer_ttl_hours),
            updated_at=now,
        )
        session.add(lease)
        await session.flush()  # the partial unique index refuses a second open lease here
        ranking = offer_ranking(await _rank_among_open(session, app))
        reason = data.out_of_rank.explanation if data.out_of_rank else data.message
        decide(
            session,
            app,
            Decision.OFFERED,
            Actor.of(principal),
            reason,
            lease.id,
            now,
            ground=ok.ground,
        )
        if ok.call is not None:
            calls.start_review(session, ok.call, now)
        on_commit(session, lambda: OFFERS_MADE.labels(ranking).inc())
        snapshot = LeaseSnapshot.from_model(lease)
        emit(
            session,
            lease.unit_id,
            LeaseOffered(lease=snapshot, artisan_id=lease.artisan_id, offered_at=now),
        )
        body = LeaseOut.from_model(lease).model_dump(mode="json")
        return Written(201, body, location=f"/v1/leases/{lease.id}")

    return await run_idempotent(sessions, idem, create, conflict=_open_lease_conflict(None))


async def _pass_to_next(
    session: AsyncSession, app: Application, ended: Lease, now: datetime
) -> None:
    """A declined or expired offer in a call goes, on the same terms, to the next in rank still
    in the running; when none is left the call waits for its landlord."""
    call = await calls.call_of(session, app)
    if call is None or call.status not in CALL_OFFERABLE:
        return
    following = await calls.next_in_rank(session, call)
    if following is None:
        return
    unfit = await _terms_unfit_for(session, call, following, ended, now.date())
    if unfit is not None:
        # The landlord offers to them with terms that fit (the rank still points to them).
        log.info("call %s: the ended offer's terms do not pass on (%s)", call.id, unfit)
        return
    await session.flush()  # the ended offer leaves the unit's one open lease first
    lease = Lease(
        id=new_id(),
        unit_id=following.unit_id,
        vacancy_id=following.vacancy_id,
        application_id=following.id,
        artisan_id=following.artisan_id,
        landlord_id=following.landlord_id,
        programme_id=following.programme_id,
        status=LeaseStatus.OFFERED.value,
        monthly_rent_cents=ended.monthly_rent_cents,
        start_date=ended.start_date,
        end_date=ended.end_date,
        message=ended.message,
        offered_by=f"{SYSTEM.role}:{SYSTEM.id}",
        offered_at=now,
        offer_expires_at=now + (ended.offer_expires_at - ended.offered_at),
        updated_at=now,
    )
    session.add(lease)
    await session.flush()
    reason = (
        f"The offer to the applicant before you in rank was {ended.status}; it passes to you "
        "on the same terms."
    )
    decide(session, following, Decision.OFFERED, SYSTEM, reason, lease.id, now)
    ranking = offer_ranking(await _rank_among_open(session, following))
    on_commit(session, lambda: OFFERS_MADE.labels(ranking).inc())
    emit(
        session,
        lease.unit_id,
        LeaseOffered(
            lease=LeaseSnapshot.from_model(lease), artisan_id=lease.artisan_id, offered_at=now
        ),
    )


async def _terms_unfit_for(
    session: AsyncSession, call: Call, following: Application, ended: Lease, today: date
) -> str | None:
    """Why the ended offer's terms cannot go to the next in rank as they are (None when they
    can): the same checks as a landlord's offer — the next applicant's programme, as the call
    opened under it, its rent cap and residency, dates still ahead, eligibility today."""
    catalogue = await repo.get_catalogue_version(session, call.catalogue_version)
    programme = catalogue.get(following.programme_id) if catalogue is not None else None
    if programme is None:
        return f"programme {following.programme_id!r} is not in catalogue {call.catalogue_version}"
    listing = await repo.get_listing(session, following.unit_id)
    artisan = await repo.get_artisan(session, following.artisan_id)
    if listing is None or artisan is None:
        return "the unit or the applicant is unknown"
    problem = _offer_terms_problem(
        programme,
        listing,
        Decimal(ended.monthly_rent_cents) / 100,
        ended.start_date,
        ended.end_date,
        today,
    )
    if problem is not None:
        return problem
    failures = failed_rules(programme, applicant_of(artisan), facts_of(listing), today)
    if failures:
        return "the applicant is no longer eligible: " + ", ".join(f.rule for f in failures)
    return None


async def _lock_call_of_lease(session: AsyncSession, lease_id: str) -> None:
    """Take the row lock of the lease's call before any other, in the order offers take them."""
    lease = await repo.get_lease(session, lease_id)
    if lease is None:
        return
    app = await repo.get_application(session, lease.application_id)
    if app is not None:
        await calls.call_of(session, app)


async def _rank_among_open(session: AsyncSession, app: Application) -> int:
    """The application's place in its vacancy's ranking among the applications still open."""
    open_statuses = [s.value for s in OPEN_APPLICATION_STATUSES]
    ranked = await repo.ranked_applications(session, app.vacancy_id, open_statuses)
    return next((i for i, a in enumerate(ranked, start=1) if a.id == app.id), 1)


async def _own_offer(session: AsyncSession, principal: Principal, lease_id: str) -> Lease:
    lease = await repo.get_lease(session, lease_id, for_update=True)
    if lease is None or lease.artisan_id != principal.subject:
        raise ProblemError(404, f"No lease with id {lease_id}.")
    if lease.status != LeaseStatus.OFFERED:
        raise ProblemError(409, f"This offer is {lease.status}; it can no longer be answered.")
    return lease


async def _application_of(session: AsyncSession, lease: Lease) -> Application:
    app = await repo.get_application(session, lease.application_id, for_update=True)
    assert app is not None  # a lease is only made on an application, never deleted
    return app


async def accept_offer(sessions: Sessions, principal: Principal, lease_id: str) -> LeaseOut:
    """The artisan signs: the lease becomes active and inventory will mark the unit leased."""
    now = utcnow()
    async with sessions() as session, session.begin():
        await _lock_call_of_lease(session, lease_id)
        lease = await _own_offer(session, principal, lease_id)
        expired = lease.offer_expires_at <= now
        if not expired:
            listing = await repo.get_listing(session, lease.unit_id)
            assert listing is not None  # a lease is only offered on a known unit
            if listing.vacancy_id != lease.vacancy_id:
                raise ProblemError(409, "The vacancy of this offer has closed.")
            app = await _application_of(session, lease)
            set_lease_status(lease, LeaseStatus.ACTIVE, now)
            lease.signed_at = now
            decide(session, app, Decision.OFFER_ACCEPTED, Actor.of(principal), None, lease.id, now)
            call = await calls.call_of(session, app)
            if call is not None and call.status in CALL_OFFERABLE:
                await calls.decide_call(
                    session,
                    call,
                    now,
                    outcome="leased",
                    application_id=app.id,
                    lease_id=lease.id,
                    reason=None,
                )
            emit(
                session,
                lease.unit_id,
                LeaseSigned(lease=LeaseSnapshot.from_model(lease), signed_at=now),
            )
            if listing.vacancy_opened_at is not None:
                waited = (now - listing.vacancy_opened_at).total_seconds()
                where = (str(listing.arrondissement), listing.site_kind)
                on_commit(
                    session,
                    lambda: VACANCY_TO_SIGNED_LEASE.labels(*where).observe(max(waited, 0.0)),
                )
            return LeaseOut.from_model(lease)
    await expire_offer(sessions, lease_id, now)
    raise ProblemError(
        409,
        f"This offer expired at {lease.offer_expires_at.isoformat()}; "
        "it can no longer be accepted.",
    )


async def decline_offer(
    sessions: Sessions, principal: Principal, lease_id: str, reason: str | None
) -> LeaseOut:
    """The artisan declines the offer; the application records why."""
    now = utcnow()
    async with sessions() as session, session.begin():
        await _lock_call_of_lease(session, lease_id)
        lease = await _own_offer(session, principal, lease_id)
        app = await _application_of(session, lease)
        set_lease_status(lease, LeaseStatus.DECLINED, now)
        lease.end_reason = reason
        decide(session, app, Decision.OFFER_DECLINED, Actor.of(principal), reason, lease.id, now)
        await _pass_to_next(session, app, lease, now)
        return LeaseOut.from_model(lease)


async def expire_offer(sessions: Sessions, lease_id: str, now: datetime | None = None) -> bool:
    """Expire one offer if it is still open and past its deadline."""
    now = now or utcnow()
    async with sessions() as session, session.begin():
        await _lock_call_of_lease(session, lease_id)
        lease = await repo.get_lease(session, lease_id, for_update=True)
        if lease is None or lease.status != LeaseStatus.OFFERED:
            return False
        if lease.offer_expires_at > now:
            return False
        app = await _application_of(session, lease)
        set_lease_status(lease, LeaseStatus.EXPIRED, now)
        reason = "The offer was not answered in time."
        lease.end_reason = reason
        decide(session, app, Decision.OFFER_EXPIRED, SYSTEM, reason, lease.id, now)
        await _pass_to_next(session, app, lease, now)
    return True


# Leases --------------------------------------------------------------------------------------


async def get_lease(sessions: Sessions, principal: Principal, lease_id: str) -> LeaseOut:
    """One offer or lease, for its parties and admins."""
    async with sessions() as session:
        lease = await repo.get_lease(session, lease_id)
    if lease is None or not can_see(principal, lease.artisan_id, lease.landlord_id):
        raise ProblemError(404, f"No lease with id {lease_id}.")
    return LeaseOut.from_model(lease)


async def list_leases(
    sessions: Sessions,
    principal: Principal,
    *,
    unit_id: str | None,
    statuses: Sequence[str],
    page: PageParams,
) -> Page[LeaseOut]:
    """The principal's offers and leases, newest offer first."""
    artisan_id, landlord_id = scope(principal)
    async with sessions() as session:
        leases, total = await repo.list_leases(
            session,
            artisan_id=artisan_id,
            landlord_id=landlord_id,
            unit_id=unit_id,
            statuses=statuses,
            page=page,
        )
    return Page.of(leases, total, page, LeaseOut.from_model)


def _check_party(principal: Principal, lease: Lease, lease_id: str) -> None:
    if not can_see(principal, lease.artisan_id, lease.landlord_id):
        if principal.role is Role.LANDLORD:
            check_landlord(principal, lease.landlord_id)
        raise ProblemError(404, f"No lease with id {lease_id}.")


async def end_lease(
    sessions: Sessions, principal: Principal, lease_id: str, data: LeaseEndIn
) -> LeaseOut:
    """Record that a signed lease ended (or was terminated); inventory reopens the unit."""
    now = utcnow()
    ended_on = data.ended_on or now.date()
    async with sessions() as session, session.begin():
        lease = await repo.get_lease(session, lease_id, for_update=True)
        if lease is None:
            raise ProblemError(404, f"No lease with id {lease_id}.")
        _check_party(principal, lease, lease_id)
        if lease.status != LeaseStatus.ACTIVE:
            raise ProblemError(409, f"This lease is {lease.status}; only a signed lease can end.")
        signed_on = (lease.signed_at or now).date()
        if not signed_on <= ended_on <= now.date():
            raise ProblemError(
                422,
                f"ended_on must be between the signature ({signed_on.isoformat()}) and today; "
                "a lease ends on its own at its end date.",
            )
        status = LeaseStatus.TERMINATED if data.terminate else LeaseStatus.ENDED
        _finish(session, lease, status, ended_on, data.reason, now)
        return LeaseOut.from_model(lease)


def _finish(
    session: AsyncSession,
    lease: Lease,
    status: LeaseStatus,
    ended_on: date,
    reason: str,
    now: datetime,
) -> None:
    set_lease_status(lease, status, now)
    lease.ended_on = ended_on
    lease.end_reason = reason
    emit(
        session,
        lease.unit_id,
        LeaseEnded(
            lease=LeaseSnapshot.from_model(lease),
            ending=status.value,
            ended_on=ended_on,
            reason=reason,
        ),
    )


async def renew_lease(
    sessions: Sessions,
    catalogue: Catalogue,
    principal: Principal,
    lease_id: str,
    data: LeaseRenewIn,
) -> LeaseOut:
    """Extend a signed lease, as often and as far as its programme allows."""
    now = utcnow()
    async with sessions() as session, session.begin():
        lease = await repo.get_lease(session, lease_id, for_update=True)
        if lease is None:
            raise ProblemError(404, f"No lease with id {lease_id}.")
        check_landlord(principal, lease.landlord_id)
        if lease.status != LeaseStatus.ACTIVE:
            raise ProblemError(
                409, f"This lease is {lease.status}; only a signed lease is renewed."
            )
        programme = catalogue.get(lease.programme_id)
        if programme is None:
            raise ProblemError(409, f"Programme {lease.programme_id!r} is no longer published.")
        rules = programme.rules
        if lease.renewals >= rules.renewable_times:
            raise ProblemError(
                409,
                f"Programme {programme.name!r} allows {rules.renewable_times} renewal(s); "
                f"this lease has had {lease.renewals}.",
            )
        latest = latest_end_date(rules, lease.end_date)
        if not lease.end_date < data.end_date <= latest:
            raise ProblemError(
                422,
                f"The new end_date must be after {lease.end_date.isoformat()} and on or before "
                f"{latest.isoformat()} ({rules.max_residency_months} months more at most).",
            )
        previous = lease.end_date
        lease.end_date = data.end_date
        lease.renewals += 1
        lease.version += 1
        lease.updated_at = now
        emit(
            session,
            lease.unit_id,
            LeaseRenewed(lease=LeaseSnapshot.from_model(lease), previous_end_date=previous),
        )
        return LeaseOut.from_model(lease)


# Sweeper -------------------------------------------------------------------------------------


async def end_due_lease(sessions: Sessions, lease_id: str, today: date) -> bool:
    """End one signed lease whose end date has passed."""
    async with sessions() as session, session.begin():
        lease = await repo.get_lease(session, lease_id, for_update=True)
        if lease is None or lease.status != LeaseStatus.ACTIVE or lease.end_date >= today:
            return False
        reason = "The lease reached its end date."
        _finish(session, lease, LeaseStatus.ENDED, lease.end_date, reason, utcnow())
    return True


async def sweep(sessions: Sessions, batch: int = 200) -> int:
    """Expire unanswered offers and end leases past their end date; how many changed."""
    now = utcnow()
    async with sessions() as session:
        offers = await repo.expired_offer_ids(session, now, batch)
        due = await repo.due_lease_ids(session, now.date(), batch)
    changed = 0
    for lease_id in offers:
        changed += await expire_offer(sessions, lease_id, now)
    for lease_id in due:
        changed += await end_due_lease(sessions, lease_id, now.date())
    return changed


async def run_sweeper(sessions: Sessions, stop: asyncio.Event, every: float) -> None:
    """Background task of the lifespan; accepting an expired offer also expires it on the spot."""
    while not stop.is_set():
        try:
            changed = await sweep(sessions)
            if changed:
                log.info("sweeper closed %d expired offers or ended leases", changed)
        except Exception as exc:
            log.warning("sweeper failed: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
