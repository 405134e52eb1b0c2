"""Applications: an artisan applies (under the best programme it qualifies for) while the
vacancy's call is open, or saves a draft and submits it later, or withdraws; the unit's landlord
sees them ranked by the published grid and, once the call closed, rejects them on a published
ground."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.auth import Principal
from fabkit.errors import ProblemError
from fabkit.idempotency import Idempotency, Written, run_idempotent
from fabkit.pagination import Page, PageParams
from leasing import repository as repo
from leasing.domain import OPEN_APPLICATION_STATUSES, ApplicationStatus, CallStatus, Decision
from leasing.eligibility import (
    Catalogue,
    Programme,
    best_programme,
    failed_rules,
    programmes_for,
    score,
)
from leasing.events.published import ApplicationSnapshot, ApplicationSubmitted, emit
from leasing.models import Application, UnitListing
from leasing.schemas import (
    ApplicationCallOut,
    ApplicationCreate,
    ApplicationOut,
    ApplicationSubmitIn,
    RankingEntry,
    RankingOut,
)
from leasing.service import calls
from leasing.service.common import (
    AVAILABLE,
    Actor,
    Sessions,
    applicant_of,
    can_see,
    check_landlord,
    facts_of,
    new_id,
    no_unit,
    reads_everything,
    scope,
    utcnow,
)
from leasing.service.decisions import decide, withdraw_offer


async def _open_listing(session: AsyncSession, unit_id: str) -> UnitListing:
    listing = await repo.get_listing(session, unit_id)
    if listing is None:
        raise ProblemError(404, no_unit(unit_id))
    if listing.status != AVAILABLE or listing.vacancy_id is None:
        raise ProblemError(
            409,
            f"Unit {listing.reference} at {listing.site_name} is not open for applications "
            f"(it is {listing.status}).",
        )
    return listing


def _candidates(
    catalogue: Catalogue, programme_id: str | None, listing: UnitListing
) -> list[Programme]:
    """The programme asked for, or every programme covering the unit's site kind."""
    if programme_id is not None:
        chosen = catalogue.get(programme_id)
        if chosen is None:
            # 404 like an unknown unit_id: the body names a resource that does not exist.
            raise ProblemError(
                404, f"No programme with id {programme_id!r}; GET /v1/programmes lists them."
            )
        return [chosen]
    candidates = programmes_for(catalogue.programmes, listing.site_kind)
    if not candidates:
        raise ProblemError(
            422,
            f"No programme covers units in a {listing.site_kind} site; "
            "this unit cannot be applied for.",
        )
    return candidates


async def submit_application(
    sessions: Sessions,
    catalogue: Catalogue,
    principal: Principal,
    data: ApplicationCreate,
    idem: Idempotency | None,
) -> Written:
    """Apply to the unit's open vacancy; 422 with every rule failed when not eligible."""

    async def create(session: AsyncSession) -> Written:
        now = utcnow()
        artisan = await repo.get_artisan(session, principal.subject)
        if artisan is None:
            raise ProblemError(404, "No artisan profile for this token; register first.")
        listing = await _open_listing(session, data.unit_id)
        assert listing.vacancy_id is not None  # _open_listing refuses a unit without one
        call = await repo.get_call_of_vacancy(session, listing.vacancy_id)
        if call is not None:
            if not data.draft:
                calls.check_open(call, now)
            elif call.status not in (CallStatus.SCHEDULED, CallStatus.OPEN) or (
                now >= call.closes_at
            ):
                calls.check_open(call, now)  # closed: says so, with the closing date
        applicant, facts = applicant_of(artisan), facts_of(listing)
        candidates = _candidates(catalogue, data.programme_id, listing)
        programme, failures = best_programme(candidates, applicant, facts, now.date())
        if programme is None:
            raise ProblemError(
                422,
                "You are not eligible for this unit: "
                + " ".join(f"[{f.programme_id}] {f.message}" for f in failures),
                title="Not eligible",
                errors=[f.as_dict() for f in failures],
            )
        points = score(programme, applicant, facts, now.date())
        app = Application(
            id=new_id(),
            artisan_id=artisan.id,
            unit_id=listing.unit_id,
            vacancy_id=listing.vacancy_id,
            landlord_id=listing.landlord_id,
            programme_id=programme.id,
            project=data.project,
            status=(ApplicationStatus.DRAFT if data.draft else ApplicationStatus.SUBMITTED).value,
            score=points.total,
            max_score=points.max_total,
            score_breakdown=[c.as_dict() for c in points.criteria],
            submitted_at=now,
            updated_at=now,
            call_id=call.id if call is not None else None,
        )
        session.add(app)
        await session.flush()
        if not data.draft:  # a draft is the applicant's own until submitted
            emit(
                session,
                app.id,
                ApplicationSubmitted(application=ApplicationSnapshot.from_model(app)),
            )
        ranks = await repo.open_ranks(session, [app.vacancy_id])
        place = ApplicationCallOut.of(call, None) if call is not None else None
        out = ApplicationOut.from_model(app, rank=ranks.get(app.id), call=place)
        return Written(201, out.model_dump(mode="json"), location=f"/v1/applications/{app.id}")

    return await run_idempotent(
        sessions,
        idem,
        create,
        conflict="You already applied to this vacancy (one application each).",
    )


async def submit_draft(
    sessions: Sessions,
    catalogue: Catalogue,
    principal: Principal,
    application_id: str,
    data: ApplicationSubmitIn,
) -> ApplicationOut:
    """Submit a saved draft while its call is open; eligibility and points are checked anew."""
    async with sessions() as session, session.begin():
        now = utcnow()
        app = await repo.get_application(session, application_id, for_update=True)
        if app is None or app.artisan_id != principal.subject:
            raise ProblemError(404, f"No application with id {application_id}.")
        if app.status != ApplicationStatus.DRAFT:
            raise ProblemError(
                409, f"This application is {app.status}; only a draft can be submitted."
            )
        call = await calls.call_of(session, app, lock=False)
        if call is not None:
            calls.check_open(call, now)
        listing = await _open_listing(session, app.unit_id)
        if listing.vacancy_id != app.vacancy_id:
            raise ProblemError(409, "The vacancy this draft was saved for has closed.")
        programme = catalogue.get(app.programme_id)
        if programme is None:
            raise ProblemError(
                409,
                f"Programme {app.programme_id!r} is no longer published; withdraw this draft "
                "and apply again.",
            )
        artisan = await repo.get_artisan(session, app.artisan_id)
        assert artisan is not None  # artisans are never deleted while they have applications
        applicant, facts = applicant_of(artisan), facts_of(listing)
        failures = failed_rules(programme, applicant, facts, now.date())
        if failures:
            raise ProblemError(
                422,
                "You are no longer eligible: " + " ".join(f.message for f in failures),
                title="Not eligible",
                errors=[f.as_dict() for f in failures],
            )
        points = score(programme, applicant, facts, now.date())
        if data.project is not None:
            app.project = data.project
        app.status = ApplicationStatus.SUBMITTED.value
        app.score, app.max_score = points.total, points.max_total
        app.score_breakdown = [c.as_dict() for c in points.criteria]
        app.submitted_at = app.updated_at = now
        await session.flush()
        emit(session, app.id, ApplicationSubmitted(application=ApplicationSnapshot.from_model(app)))
        ranks = await repo.open_ranks(session, [app.vacancy_id])
        place = ApplicationCallOut.of(call, None) if call is not None else None
    return ApplicationOut.from_model(app, rank=ranks.get(app.id), call=place)


async def _call_places(
    session: AsyncSession, apps: Sequence[Application]
) -> dict[str, ApplicationCallOut]:
    """Each application's call and frozen place, by application id."""
    found = await repo.calls_by_id(session, {a.call_id for a in apps if a.call_id})
    lines = await repo.rankings_of_applications(session, [a.id for a in apps if a.call_id])
    return {
        a.id: ApplicationCallOut.of(found[a.call_id], lines.get(a.id))
        for a in apps
        if a.call_id and a.call_id in found
    }


async def get_application(
    sessions: Sessions, principal: Principal, application_id: str
) -> ApplicationOut:
    """One application with its decisions, for its parties and admins."""
    async with sessions() as session:
        app = await repo.get_application(session, application_id)
        if app is None or not can_see(principal, app.artisan_id, app.landlord_id):
            raise ProblemError(404, f"No application with id {application_id}.")
        decisions = await repo.decisions_of(session, [app.id])
        leases = await repo.lease_ids_of_applications(session, [app.id])
        ranks = await repo.open_ranks(session, [app.vacancy_id])
        places = await _call_places(session, [app])
    return ApplicationOut.from_model(
        app, decisions.get(app.id, []), leases.get(app.id), ranks.get(app.id), places.get(app.id)
    )


async def list_applications(
    sessions: Sessions,
    principal: Principal,
    *,
    unit_id: str | None,
    statuses: Sequence[str],
    page: PageParams,
) -> Page[ApplicationOut]:
    """The principal's applications (artisan) or those to its units (landlord), newest first."""
    artisan_id, landlord_id = scope(principal)
    async with sessions() as session:
        apps, total = await repo.list_applications(
            session,
            artisan_id=artisan_id,
            landlord_id=landlord_id,
            unit_id=unit_id,
            statuses=statuses,
            page=page,
        )
        ids = [a.id for a in apps]
        decisions = await repo.decisions_of(session, ids)
        leases = await repo.lease_ids_of_applications(session, ids)
        # One query for the ranks of the page's vacancies, however many the page has.
        ranks = await repo.open_ranks(session, [a.vacancy_id for a in apps])
        places = await _call_places(session, apps)
    return Page.of(
        apps,
        total,
        page,
        lambda a: ApplicationOut.from_model(
            a, decisions.get(a.id, []), leases.get(a.id), ranks.get(a.id), places.get(a.id)
        ),
    )


async def withdraw_application(
    sessions: Sessions, principal: Principal, application_id: str, reason: str | None
) -> ApplicationOut:
    """The artisan withdraws its application (and the offer it may have had)."""
    now = utcnow()
    async with sessions() as session, session.begin():
        app = await repo.get_application(session, application_id, for_update=True)
        if app is None or app.artisan_id != principal.subject:
            raise ProblemError(404, f"No application with id {application_id}.")
        lease_id = await withdraw_offer(session, app, reason, now)
        decide(session, app, Decision.WITHDRAWN, Actor.of(principal), reason, lease_id, now)
        await session.flush()
        decisions = await repo.decisions_of(session, [app.id])
    return ApplicationOut.from_model(app, decisions.get(app.id, []), lease_id)


async def reject_application(
    sessions: Sessions,
    catalogue: Catalogue,
    principal: Principal,
    application_id: str,
    reason: str,
    ground: str | None,
) -> ApplicationOut:
    """The unit's landlord turns an application down, saying why; in a call, once it closed
    and on one of the programme's published grounds."""
    now = utcnow()
    async with sessions() as session, session.begin():
        app = await repo.get_application(session, application_id, for_update=True)
        if app is None:
            raise ProblemError(404, f"No application with id {application_id}.")
        check_landlord(principal, app.landlord_id)
        call = await calls.call_of(session, app)
        if call is not None:
            calls.check_judged(call, "applications are rejected")
            programme = catalogue.get(app.programme_id)
            if ground is None:
                grounds = programme.out_of_rank_grounds if programme else []
                raise ProblemError(
                    422,
                    "A rejection in a call for applications needs a published ground: send "
                    "ground, one of: " + ", ".join(g.id for g in grounds) + ".",
                )
            if programme is not None:
                calls.check_ground(programme, ground)
            calls.start_review(session, call, now)
        lease_id = await withdraw_offer(session, app, reason, now)
        decide(
            session,
            app,
            Decision.REJECTED,
            Actor.of(principal),
            reason,
            lease_id,
            now,
            ground=ground,
        )
        await session.flush()
        decisions = await repo.decisions_of(session, [app.id])
    return ApplicationOut.from_model(app, decisions.get(app.id, []), lease_id)


async def ranking(
    sessions: Sessions,
    principal: Principal,
    unit_id: str,
    *,
    vacancy_id: str | None,
    include_closed: bool,
) -> RankingOut:
    """The applications of a vacancy ranked by the published grid, each line's points shown."""
    async with sessions() as session:
        listing = await repo.get_listing(session, unit_id)
        if listing is None:
            raise ProblemError(404, no_unit(unit_id))
        if not reads_everything(principal):
            check_landlord(principal, listing.landlord_id)
        vacancy = vacancy_id or listing.vacancy_id
        if vacancy is None:
            return RankingOut(unit_id=unit_id, vacancy_id=None, entries=[])
        statuses = [] if include_closed else [s.value for s in OPEN_APPLICATION_STATUSES]
        apps = await repo.ranked_applications(session, vacancy, statuses)
        artisans = await repo.artisans_by_id(session, {a.artisan_id for a in apps})
    entries = [
        RankingEntry.of(rank, app, artisans[app.artisan_id])
        for rank, app in enumerate(apps, start=1)
    ]
    return RankingOut(unit_id=unit_id, vacancy_id=vacancy, entries=entries)
