"""Calls for applications: a vacancy is let through a call that opens (with the vacancy, or at
the date its landlord sets), closes at its closing date with the ranking frozen from the
published grid, is reviewed and decided. The worker moves calls as the clock passes their dates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.auth import Principal
from fabkit.errors import ProblemError
from fabkit.http import check_if_match, etag_of
from fabkit.idempotency import Written
from fabkit.pagination import Page, PageParams
from leasing import repository as repo
from leasing.domain import (
    CALL_DATES_EDITABLE,
    CALL_OFFERABLE,
    CALL_UNDECIDED,
    ApplicationStatus,
    CallEvent,
    CallStatus,
    Decision,
    LeaseStatus,
    Ranked,
    TransitionError,
    call_transition,
    frozen_order,
    status_at,
)
from leasing.eligibility import Catalogue, Programme, programmes_for, score
from leasing.events.published import (
    CallCancelled,
    CallClosed,
    CallDecided,
    CallOpened,
    CallSnapshot,
    RankedApplication,
    emit,
)
from leasing.models import Application, Call, CallRanking, UnitListing
from leasing.schemas import (
    ApplicantSummary,
    CallDecideIn,
    CallOut,
    CallPatch,
    CallRankingEntry,
    CallRankingOut,
    CriterionPoints,
    DecisionOut,
)
from leasing.service.common import (
    SYSTEM,
    Actor,
    Sessions,
    applicant_of,
    check_landlord,
    facts_of,
    new_id,
    reads_everything,
    utcnow,
)
from leasing.service.decisions import decide

log = logging.getLogger(__name__)

DEFAULT_CALL_DAYS = 21  # when no programme covers the unit's site kind


def _no_call(call_id: str) -> str:
    return f"No call for applications with id {call_id}; GET /v1/calls lists them."


# The catalogue a call is judged by ----------------------------------------------------------


async def catalogue_in_force(session: AsyncSession, current: Catalogue) -> tuple[int, Catalogue]:
    """The version number of the catalogue in force and the catalogue itself."""
    version = await repo.current_catalogue_version(session) or 1
    return version, await catalogue_of_version(session, version, current)


async def catalogue_of_version(
    session: AsyncSession, version: int, current: Catalogue
) -> Catalogue:
    """The catalogue a call opened under; the current one when that version is not stored."""
    return await repo.get_catalogue_version(session, version) or current


def call_days(catalogue: Catalogue, listing: UnitListing) -> int:
    """How long a call on this unit stays open: the longest of its programmes' periods, so no
    programme's period is cut short."""
    programmes = programmes_for(catalogue.programmes, listing.site_kind)
    return max((p.call_days for p in programmes), default=DEFAULT_CALL_DAYS)


# Fed by inventory's unit events (the consumer's transaction) ----------------------------------


async def open_for_vacancy(
    session: AsyncSession, current: Catalogue, unit_id: str, vacancy_id: str
) -> Call | None:
    """The call of a vacancy that just opened; None when it exists already (a redelivery) or
    the listing is on another vacancy (a stale event)."""
    listing = await repo.get_listing(session, unit_id)
    if listing is None or listing.vacancy_id != vacancy_id:
        return None
    if await repo.get_call_of_vacancy(session, vacancy_id) is not None:
        return None
    now = utcnow()
    version, catalogue = await catalogue_in_force(session, current)
    call = Call(
        id=new_id(),
        vacancy_id=vacancy_id,
        unit_id=listing.unit_id,
        landlord_id=listing.landlord_id,
        status=CallStatus.OPEN.value,
        opens_at=now,
        closes_at=now + timedelta(days=call_days(catalogue, listing)),
        catalogue_version=version,
        created_at=now,
        updated_at=now,
    )
    session.add(call)
    await session.flush()
    emit(session, call.id, CallOpened(call=CallSnapshot.from_model(call), opened_at=now))
    return call


async def cancel_for_vacancy(session: AsyncSession, vacancy_id: str, reason: str) -> None:
    """The vacancy closed: its call, if still undecided, is cancelled."""
    call = await repo.get_call_of_vacancy(session, vacancy_id, for_update=True)
    if call is None or CallStatus(call.status) not in CALL_UNDECIDED:
        return
    now = utcnow()
    _move(call, CallEvent.CANCEL, now)
    emit(
        session,
        call.id,
        CallCancelled(call=CallSnapshot.from_model(call), cancelled_at=now, reason=reason),
    )


def _move(call: Call, event: CallEvent, now: datetime) -> None:
    try:
        call.status = call_transition(CallStatus(call.status), event).value
    except TransitionError as exc:
        raise ProblemError(409, str(exc)) from exc
    call.version += 1
    call.updated_at = now


# The worker: scheduled -> open -> closed (ranking frozen) as the clock passes ----------------


async def open_due_call(sessions: Sessions, call_id: str, now: datetime) -> bool:
    """Open one scheduled call whose opening passed (skipped if another replica holds it)."""
    async with sessions() as session, session.begin():
        call = await repo.get_call(session, call_id, for_update=True, skip_locked=True)
        if call is None or call.status != CallStatus.SCHEDULED or call.opens_at > now:
            return False
        _move(call, CallEvent.OPEN, now)
        emit(session, call.id, CallOpened(call=CallSnapshot.from_model(call), opened_at=now))
    return True


async def close_due_call(
    sessions: Sessions, current: Catalogue, call_id: str, now: datetime
) -> bool:
    """Close one open call whose closing passed and freeze its ranking, in one transaction."""
    async with sessions() as session, session.begin():
        call = await repo.get_call(session, call_id, for_update=True, skip_locked=True)
        if call is None or call.status != CallStatus.OPEN or call.closes_at > now:
            return False
        catalogue = await catalogue_of_version(session, call.catalogue_version, current)
        ranking = await _freeze(session, call, catalogue, now)
        _move(call, CallEvent.CLOSE, now)
        call.ranking_frozen_at = now
        emit(
            session,
            call.id,
            CallClosed(call=CallSnapshot.from_model(call), closed_at=now, ranking=ranking),
        )
    return True


@dataclass(frozen=True)
class _Points:
    score: int
    max_score: int
    breakdown: list[dict[str, object]]


async def _freeze(
    session: AsyncSession, call: Call, catalogue: Catalogue, now: datetime
) -> list[RankedApplication]:
    """Rank the call's submitted applications by its catalogue's grid; drafts never submitted
    close."""
    apps = await repo.applications_of_call(session, call.id, [], for_update=True)
    reason = "The call closed before this draft was submitted."
    for draft in (a for a in apps if a.status == ApplicationStatus.DRAFT):
        decide(session, draft, Decision.CLOSED, SYSTEM, reason, None, now)
    submitted = [a for a in apps if a.status == ApplicationStatus.SUBMITTED]
    listing = await repo.get_listing(session, call.unit_id)
    artisans = await repo.artisans_by_id(session, {a.artisan_id for a in submitted})
    points: dict[str, _Points] = {}
    for app in submitted:
        programme = catalogue.get(app.programme_id)
        if programme is None or listing is None:
            # A programme the call's catalogue does not have: the points given at submission.
            points[app.id] = _Points(app.score, app.max_score, list(app.score_breakdown))
            continue
        graded = score(
            programme, applicant_of(artisans[app.artisan_id]), facts_of(listing), now.date()
        )
        points[app.id] = _Points(
            graded.total, graded.max_total, [c.as_dict() for c in graded.criteria]
        )
    order = frozen_order([Ranked(a.id, points[a.id].score, a.submitted_at) for a in submitted])
    by_id = {a.id: a for a in submitted}
    out: list[RankedApplication] = []
    for rank, line in enumerate(order, start=1):
        app, p = by_id[line.application_id], points[line.application_id]
        session.add(
            CallRanking(
                call_id=call.id,
                application_id=app.id,
                rank=rank,
                score=p.score,
                max_score=p.max_score,
                score_breakdown=p.breakdown,
                programme_id=app.programme_id,
            )
        )
        out.append(
            RankedApplication(
                application_id=app.id,
                artisan_id=app.artisan_id,
                rank=rank,
                score=p.score,
                max_score=p.max_score,
            )
        )
    await session.flush()
    return out


async def tick(
    sessions: Sessions, current: Catalogue, now: datetime | None = None, batch: int = 100
) -> int:
    """Open the scheduled calls and close the open ones whose dates passed; how many moved."""
    now = now or utcnow()
    async with sessions() as session:
        opening = await repo.due_call_ids(session, CallStatus.SCHEDULED.value, now, batch)
        closing = await repo.due_call_ids(session, CallStatus.OPEN.value, now, batch)
    moved = 0
    for call_id in opening:
        moved += await open_due_call(sessions, call_id, now)
    for call_id in closing:
        moved += await close_due_call(sessions, current, call_id, now)
    return moved


async def run_call_worker(
    sessions: Sessions, current: Catalogue, stop: asyncio.Event, every: float
) -> None:
    """Background task of the lifespan; safe in several replicas (row locks, SKIP LOCKED)."""
    while not stop.is_set():
        try:
            moved = await tick(sessions, current)
            if moved:
                log.info("call worker opened or closed %d calls", moved)
        except Exception as exc:
            log.warning("call worker failed: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


# What applications, offers and leases ask of their call (their transaction) -------------------


async def call_of(session: AsyncSession, app: Application, *, lock: bool = True) -> Call | None:
    """The application's call, row-locked (offers on one call queue on it)."""
    if app.call_id is None:
        return None
    return await repo.get_call(session, app.call_id, for_update=lock)


def check_open(call: Call, now: datetime) -> None:
    """409 unless the call takes applications now."""
    if call.status == CallStatus.OPEN and call.opens_at <= now < call.closes_at:
        return
    if call.status == CallStatus.SCHEDULED or now < call.opens_at:
        raise ProblemError(
            409,
            f"The call for applications opens at {call.opens_at.isoformat()}; you can save a "
            "draft now and submit it once the call is open.",
        )
    raise ProblemError(
        409,
        f"The call for applications closed at {call.closes_at.isoformat()}; applications are "
        "no longer taken for this vacancy.",
    )


def check_judged(call: Call, what: str) -> None:
    """409 unless the call is closed (ranking frozen) or under review."""
    if CallStatus(call.status) in CALL_OFFERABLE:
        return
    if call.status in (CallStatus.SCHEDULED, CallStatus.OPEN):
        raise ProblemError(
            409,
            f"The call for applications is {call.status} until {call.closes_at.isoformat()}; "
            f"{what} once it has closed and its ranking is frozen.",
        )
    raise ProblemError(409, f"The call for applications is {call.status}; {what} no more.")


def start_review(session: AsyncSession, call: Call, now: datetime) -> None:
    """The first offer or rejection starts the review of a closed call."""
    if call.status == CallStatus.CLOSED:
        _move(call, CallEvent.REVIEW, now)


@dataclass(frozen=True)
class Standing:
    """Where an application stands in its call's frozen ranking."""

    rank: int | None  # None: not ranked
    first: Application | None  # the first still in the running (submitted)
    first_rank: int | None


async def standing(session: AsyncSession, call: Call, app: Application) -> Standing:
    """The application's rank and the first applicant still in the running."""
    lines = await repo.frozen_ranking(session, call.id)
    rank = next((r.rank for r, a in lines if a.id == app.id), None)
    first = next(((r, a) for r, a in lines if a.status == ApplicationStatus.SUBMITTED), None)
    return Standing(rank, first[1] if first else None, first[0].rank if first else None)


async def next_in_rank(session: AsyncSession, call: Call) -> Application | None:
    """The first application of the frozen ranking still in the running, row-locked."""
    for _, app in await repo.frozen_ranking(session, call.id):
        if app.status == ApplicationStatus.SUBMITTED:
            return await repo.get_application(session, app.id, for_update=True)
    return None


def check_ground(programme: Programme, ground: str) -> None:
    """422 unless `ground` is one of the programme's published grounds."""
    if programme.ground(ground) is None:
        ids = ", ".join(g.id for g in programme.out_of_rank_grounds)
        raise ProblemError(
            422,
            f"{ground!r} is not a published ground of programme {programme.name!r}; "
            f"use one of: {ids} (GET /v1/programmes describes them).",
        )


async def ranking_of(session: AsyncSession, call: Call) -> list[RankedApplication]:
    """The frozen ranking as the call events carry it."""
    return [
        RankedApplication(
            application_id=a.id,
            artisan_id=a.artisan_id,
            rank=r.rank,
            score=r.score,
            max_score=r.max_score,
        )
        for r, a in await repo.frozen_ranking(session, call.id)
    ]


async def decide_call(
    session: AsyncSession,
    call: Call,
    now: datetime,
    *,
    outcome: str,
    application_id: str | None,
    lease_id: str | None,
    reason: str | None,
) -> None:
    """Record the call's decision and tell every ranked applicant (an event)."""
    _move(call, CallEvent.DECIDE, now)
    call.decided_at = now
    emit(
        session,
        call.id,
        CallDecided(
            call=CallSnapshot.from_model(call),
            outcome=outcome,
            decided_at=now,
            application_id=application_id,
            lease_id=lease_id,
            reason=reason,
            ranking=await ranking_of(session, call),
        ),
    )


# The calls API -------------------------------------------------------------------------------


async def _out(session: AsyncSession, calls: Sequence[Call]) -> list[CallOut]:
    ids = [c.id for c in calls]
    counts = await repo.count_applications_of_calls(session, ids)
    ranked = {
        c.id: len(await repo.frozen_ranking(session, c.id)) if c.ranking_frozen_at else 0
        for c in calls
    }
    return [CallOut.of(c, counts.get(c.id, {}), ranked[c.id]) for c in calls]


def _written(out: CallOut, status: int = 200) -> Written:
    return Written(status, out.model_dump(mode="json"), etag=etag_of(out.version))


async def list_calls(sessions: Sessions, query: repo.CallSearch, page: PageParams) -> Page[CallOut]:
    """One page of the calls, the latest closing date first (public: no names)."""
    async with sessions() as session:
        rows, total = await repo.list_calls(session, query, page)
        outs = {o.id: o for o in await _out(session, rows)}
    return Page.of(rows, total, page, lambda c: outs[c.id])


async def get_call(sessions: Sessions, call_id: str) -> Written:
    """One call with its ETag (public)."""
    async with sessions() as session:
        call = await repo.get_call(session, call_id)
        if call is None:
            raise ProblemError(404, _no_call(call_id))
        (out,) = await _out(session, [call])
    return _written(out)


async def patch_call(
    sessions: Sessions, principal: Principal, call_id: str, patch: CallPatch, if_match: str | None
) -> Written:
    """Move a call's opening (while scheduled) or closing (while scheduled or open)."""
    async with sessions() as session, session.begin():
        call = await repo.get_call(session, call_id, for_update=True)
        if call is None:
            raise ProblemError(404, _no_call(call_id))
        check_landlord(principal, call.landlord_id)
        check_if_match(if_match, call.version)
        now = utcnow()
        status = CallStatus(call.status)
        if status not in CALL_DATES_EDITABLE:
            raise ProblemError(
                409,
                f"This call is {status}; its dates can change only while it is scheduled or open.",
            )
        opens_at, closes_at = patch.opens_at or call.opens_at, patch.closes_at or call.closes_at
        reschedule = status is CallStatus.OPEN and patch.opens_at is not None
        if reschedule:
            counts = (await repo.count_applications_of_calls(session, [call.id])).get(call.id)
            if counts or opens_at <= now:
                raise ProblemError(
                    409,
                    "This call is open and has applications (or the new opening is not in the "
                    "future); only its closing date (closes_at) can move now.",
                )
        if closes_at <= now:
            raise ProblemError(
                422,
                f"closes_at ({closes_at.isoformat()}) is in the past; choose a closing date "
                f"after now ({now.isoformat()}).",
            )
        if closes_at <= opens_at:
            raise ProblemError(
                422,
                f"closes_at ({closes_at.isoformat()}) must be after opens_at "
                f"({opens_at.isoformat()}).",
            )
        if patch.opens_at is None and patch.closes_at is None:
            (out,) = await _out(session, [call])
            return _written(out)
        call.opens_at, call.closes_at = opens_at, closes_at
        call.version += 1
        call.updated_at = now
        if reschedule:
            _move(call, CallEvent.RESCHEDULE, now)
        elif status is CallStatus.SCHEDULED and status_at(opens_at, now) is CallStatus.OPEN:
            _move(call, CallEvent.OPEN, now)
            emit(session, call.id, CallOpened(call=CallSnapshot.from_model(call), opened_at=now))
        await session.flush()
        (out,) = await _out(session, [call])
    return _written(out)


async def get_ranking(sessions: Sessions, principal: Principal, call_id: str) -> CallRankingOut:
    """The frozen ranking with names, points and decisions (landlord of the unit, officer,
    admin)."""
    async with sessions() as session:
        call = await repo.get_call(session, call_id)
        if call is None:
            raise ProblemError(404, _no_call(call_id))
        if not reads_everything(principal):
            check_landlord(principal, call.landlord_id)
        lines = await repo.frozen_ranking(session, call.id)
        artisans = await repo.artisans_by_id(session, {a.artisan_id for _, a in lines})
        decisions = await repo.decisions_of(session, [a.id for _, a in lines])
    entries = [
        CallRankingEntry(
            rank=r.rank,
            application_id=a.id,
            status=ApplicationStatus(a.status),
            in_the_running=a.status == ApplicationStatus.SUBMITTED,
            programme_id=r.programme_id,
            score=r.score,
            max_score=r.max_score,
            criteria=[CriterionPoints(**c) for c in r.score_breakdown],
            submitted_at=a.submitted_at,
            applicant=ApplicantSummary.from_model(artisans[a.artisan_id]),
            decisions=[
                DecisionOut.model_validate(d, from_attributes=True) for d in decisions.get(a.id, [])
            ],
        )
        for r, a in lines
    ]
    return CallRankingOut(
        call_id=call.id,
        status=CallStatus(call.status),
        ranking_frozen_at=call.ranking_frozen_at,
        entries=entries,
    )


async def review_call(sessions: Sessions, principal: Principal, call_id: str) -> Written:
    """The landlord starts the review of a closed call."""
    async with sessions() as session, session.begin():
        call = await repo.get_call(session, call_id, for_update=True)
        if call is None:
            raise ProblemError(404, _no_call(call_id))
        check_landlord(principal, call.landlord_id)
        if call.status != CallStatus.UNDER_REVIEW:
            _move(call, CallEvent.REVIEW, utcnow())
        await session.flush()
        (out,) = await _out(session, [call])
    return _written(out)


async def decide_unawarded(
    sessions: Sessions, principal: Principal, call_id: str, data: CallDecideIn
) -> Written:
    """The landlord records that nobody is chosen; the applications still open close."""
    async with sessions() as session, session.begin():
        call = await repo.get_call(session, call_id, for_update=True)
        if call is None:
            raise ProblemError(404, _no_call(call_id))
        check_landlord(principal, call.landlord_id)
        check_judged(call, "it can be decided")
        lease = await repo.open_lease_of_unit(session, call.unit_id)
        if lease is not None and lease.status == LeaseStatus.OFFERED:
            raise ProblemError(
                409,
                "An offer of this call waits for its answer; withdraw it (reject the "
                "application) or wait for the answer before deciding that nobody is chosen.",
            )
        now = utcnow()
        actor = Actor.of(principal)
        still = await repo.applications_of_call(
            session, call.id, [ApplicationStatus.SUBMITTED.value], for_update=True
        )
        for app in still:
            decide(session, app, Decision.CLOSED, actor, data.reason, None, now)
        await decide_call(
            session,
            call,
            now,
            outcome="unawarded",
            application_id=None,
            lease_id=None,
            reason=data.reason,
        )
        await session.flush()
        (out,) = await _out(session, [call])
    return _written(out)
