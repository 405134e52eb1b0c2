"""A call's jury and its published results: the landlord records the jury, then publishes the
anonymised results of a decided call, which opens the appeal period."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.auth import Principal
from fabkit.errors import ProblemError
from fabkit.http import etag_of
from fabkit.idempotency import Written
from fabkit.pagination import Page, PageParams
from leasing import repository as repo
from leasing.domain import CallEvent, CallStatus, TransitionError, call_transition
from leasing.eligibility import Catalogue
from leasing.events.published import CallResultsPublished, CallSnapshot, ResultLine, emit
from leasing.models import Call, JuryMember, JurySession
from leasing.results import (
    DecisionFact as Fact,
)
from leasing.results import (
    Member,
    Outcome,
    RankedLine,
    ResultRow,
    appeal_days,
    appeals_close_at,
    jury_problem,
    results_table,
)
from leasing.schemas import (
    CallResultsOut,
    DepartureOut,
    JuryIn,
    JuryMemberOut,
    JuryOut,
    PublicJury,
    PublicJuryMember,
    ResultCriterionOut,
    ResultRowOut,
    ResultsSummaryOut,
)
from leasing.service.calls import catalogue_of_version
from leasing.service.common import Sessions, check_landlord, reads_everything, utcnow


def no_call(call_id: str) -> str:
    return f"No call for applications with id {call_id}; GET /v1/calls lists them."


async def _call(session: AsyncSession, call_id: str, *, for_update: bool = False) -> Call:
    call = await repo.get_call(session, call_id, for_update=for_update)
    if call is None:
        raise ProblemError(404, no_call(call_id))
    return call


# The jury ----------------------------------------------------------------------------------


def _jury_out(jury: JurySession, members: list[JuryMember]) -> JuryOut:
    return JuryOut(
        call_id=jury.call_id,
        members=[
            JuryMemberOut(
                name=m.name,
                organisation=m.organisation,
                role=m.role,
                conflict_of_interest=m.conflict_of_interest,
                recused=m.conflict_of_interest,
                declaration=m.declaration,
            )
            for m in members
        ],
        session_date=jury.session_date,
        minutes=jury.minutes,
        decision=jury.decision,
        recorded_by=jury.recorded_by,
        recorded_at=jury.recorded_at,
        version=jury.version,
    )


async def put_jury(sessions: Sessions, principal: Principal, call_id: str, data: JuryIn) -> Written:
    """Record (or correct) a call's jury: members, session date, minutes and decision; frozen
    once the results are published."""
    problem = jury_problem(
        [Member(m.name, m.conflict_of_interest, m.declaration) for m in data.members]
    )
    if problem:
        raise ProblemError(422, problem)
    async with sessions() as session, session.begin():
        call = await _call(session, call_id, for_update=True)
        check_landlord(principal, call.landlord_id)
        if call.status in (CallStatus.RESULTS_PUBLISHED, CallStatus.CANCELLED):
            raise ProblemError(
                409,
                f"This call is {call.status}; its jury can no longer change. An officer "
                "records any correction as the answer to an appeal.",
            )
        now = utcnow()
        jury, _ = await repo.jury_of(session, call.id, for_update=True)
        if jury is None:
            jury = JurySession(
                call_id=call.id,
                session_date=data.session_date,
                minutes=data.minutes,
                decision=data.decision,
                recorded_by=principal.subject,
                recorded_at=now,
            )
            session.add(jury)
        else:
            jury.session_date, jury.minutes, jury.decision = (
                data.session_date,
                data.minutes,
                data.decision,
            )
            jury.recorded_by, jury.recorded_at = principal.subject, now
            jury.version += 1
        members = [
            JuryMember(
                call_id=call.id,
                position=i,
                name=m.name.strip(),
                organisation=m.organisation.strip(),
                role=m.role.strip(),
                conflict_of_interest=m.conflict_of_interest,
                declaration=(m.declaration or "").strip() or None,
            )
            for i, m in enumerate(data.members, start=1)
        ]
        await repo.replace_jury_members(session, call.id, members)
        out = _jury_out(jury, members)
    return Written(200, out.model_dump(mode="json"), etag=etag_of(out.version))


async def get_jury(sessions: Sessions, principal: Principal, call_id: str) -> JuryOut:
    """A call's jury with the minutes and the conflict declarations (landlord, officer, admin)."""
    async with sessions() as session:
        call = await _call(session, call_id)
        if not reads_everything(principal):
            check_landlord(principal, call.landlord_id)
        jury, members = await repo.jury_of(session, call.id)
    if jury is None:
        raise ProblemError(
            404, f"No jury is recorded for call {call_id}; its landlord records one with PUT."
        )
    return _jury_out(jury, members)


# The results -------------------------------------------------------------------------------


async def _table(session: AsyncSession, call: Call, current: Catalogue) -> list[ResultRow]:
    lines = await repo.frozen_ranking(session, call.id)
    decisions = await repo.decisions_of(session, [a.id for _, a in lines])
    catalogue = await catalogue_of_version(session, call.catalogue_version, current)
    labels = {g.id: g.label for p in catalogue.programmes for g in p.out_of_rank_grounds}
    ranked = [
        RankedLine(
            rank=r.rank,
            score=r.score,
            max_score=r.max_score,
            criteria=r.score_breakdown,
            status=a.status,
            decisions=[Fact(d.decision, d.ground, d.reason) for d in decisions.get(a.id, [])],
        )
        for r, a in lines
    ]
    return results_table(ranked, labels)


def _outcome(rows: list[ResultRow]) -> str:
    return "leased" if any(r.outcome is Outcome.LEASED for r in rows) else "unawarded"


async def _results_out(session: AsyncSession, call: Call, rows: list[ResultRow]) -> CallResultsOut:
    assert call.results_published_at is not None and call.appeals_close_at is not None
    jury, members = await repo.jury_of(session, call.id)
    return CallResultsOut(
        call_id=call.id,
        unit_id=call.unit_id,
        status=CallStatus(call.status),
        catalogue_version=call.catalogue_version,
        closes_at=call.closes_at,
        ranking_frozen_at=call.ranking_frozen_at,
        decided_at=call.decided_at,
        results_published_at=call.results_published_at,
        appeals_close_at=call.appeals_close_at,
        outcome=_outcome(rows),
        ranked=len(rows),
        rows=[
            ResultRowOut(
                candidate=r.candidate,
                rank=r.rank,
                score=r.score,
                max_score=r.max_score,
                criteria=[ResultCriterionOut(**vars(c)) for c in r.criteria],
                outcome=r.outcome.value,
                order_followed=r.order_followed,
                departures=[DepartureOut(**vars(d)) for d in r.departures],
            )
            for r in rows
        ],
        jury=(
            PublicJury(
                members=[
                    PublicJuryMember(
                        name=m.name,
                        organisation=m.organisation,
                        role=m.role,
                        recused=m.conflict_of_interest,
                    )
                    for m in members
                ],
                session_date=jury.session_date,
                decision=jury.decision,
            )
            if jury is not None
            else None
        ),
    )


async def publish_results(
    sessions: Sessions, principal: Principal, call_id: str, current: Catalogue
) -> Written:
    """Publish a decided call's anonymised results; the appeal period starts now and lasts the
    longest `appeal_days` of its applicants' programmes."""
    async with sessions() as session, session.begin():
        call = await _call(session, call_id, for_update=True)
        check_landlord(principal, call.landlord_id)
        if call.status == CallStatus.RESULTS_PUBLISHED:
            raise ProblemError(
                409,
                f"The results of this call were published at "
                f"{call.results_published_at.isoformat() if call.results_published_at else ''}; "
                f"GET /v1/calls/{call.id}/results shows them.",
            )
        try:
            status = call_transition(CallStatus(call.status), CallEvent.PUBLISH)
        except TransitionError as exc:
            raise ProblemError(
                409,
                f"This call is {call.status}; results are published once it is decided (a "
                f"lease signed, or POST /v1/calls/{call.id}/decide when nobody is chosen).",
            ) from exc
        lines = await repo.frozen_ranking(session, call.id)
        catalogue = await catalogue_of_version(session, call.catalogue_version, current)
        programmes = {r.programme_id for r, _ in lines}
        days = appeal_days(p.appeal_days for p in catalogue.programmes if p.id in programmes)
        now = utcnow()
        call.status = status.value
        call.results_published_at = now
        call.appeals_close_at = appeals_close_at(now, days)
        call.version += 1
        call.updated_at = now
        await session.flush()
        rows = await _table(session, call, current)
        by_rank = {r.rank: r for r in rows}
        emit(
            session,
            call.id,
            CallResultsPublished(
                call=CallSnapshot.from_model(call),
                published_at=now,
                appeals_close_at=call.appeals_close_at,
                outcome=_outcome(rows),
                results=[
                    ResultLine(
                        application_id=a.id,
                        artisan_id=a.artisan_id,
                        rank=r.rank,
                        score=r.score,
                        max_score=r.max_score,
                        outcome=by_rank[r.rank].outcome.value,
                    )
                    for r, a in lines
                ],
            ),
        )
        out = await _results_out(session, call, rows)
    return Written(
        200,
        out.model_dump(mode="json"),
        etag=etag_of(call.version),
        location=f"/v1/calls/{call.id}/results",
    )


async def get_results(sessions: Sessions, call_id: str, current: Catalogue) -> CallResultsOut:
    """A call's published results (public, anonymised)."""
    async with sessions() as session:
        call = await _call(session, call_id)
        if call.results_published_at is None:
            raise ProblemError(
                404,
                f"The results of call {call_id} are not published yet (the call is "
                f"{call.status}); they appear here once its landlord publishes them.",
            )
        rows = await _table(session, call, current)
        return await _results_out(session, call, rows)


async def list_results(sessions: Sessions, page: PageParams) -> Page[ResultsSummaryOut]:
    """The calls whose results are published, the latest first (public)."""
    async with sessions() as session:
        calls, total = await repo.list_published_results(session, page)
    return Page.of(
        calls,
        total,
        page,
        lambda c: ResultsSummaryOut(
            call_id=c.id,
            unit_id=c.unit_id,
            results_published_at=c.results_published_at,
            appeals_close_at=c.appeals_close_at,
        ),
    )
