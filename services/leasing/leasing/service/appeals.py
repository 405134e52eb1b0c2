"""Appeals against a call's published results: a ranked applicant files one within the appeal
period; a city officer (or an admin) answers it; both are recorded and told."""

from __future__ import annotations

from fabkit.auth import Principal, Role
from fabkit.errors import ProblemError
from fabkit.http import etag_of
from fabkit.idempotency import Written
from fabkit.pagination import Page, PageParams
from leasing import repository as repo
from leasing.events.published import AppealAnswered, AppealFiled, AppealSnapshot, emit
from leasing.models import Appeal
from leasing.results import appeal_refusal
from leasing.schemas import AppealAnswerIn, AppealIn, AppealOut
from leasing.service.common import Sessions, new_id, reads_everything, scope, utcnow

FILED = "filed"
ANSWERED = "answered"


def _out(appeal: Appeal) -> AppealOut:
    return AppealOut.model_validate(appeal, from_attributes=True)


def _written(appeal: Appeal, status: int = 200) -> Written:
    return Written(
        status,
        _out(appeal).model_dump(mode="json"),
        etag=etag_of(appeal.version),
        location=f"/v1/appeals/{appeal.id}",
    )


def _no_appeal(appeal_id: str) -> str:
    return f"No appeal with id {appeal_id}; GET /v1/appeals lists the appeals you may see."


async def file_appeal(
    sessions: Sessions, principal: Principal, application_id: str, data: AppealIn
) -> Written:
    """The applicant appeals against their call's published results (one per application)."""
    async with sessions() as session, session.begin():
        app = await repo.get_application(session, application_id, for_update=True)
        if app is None or app.artisan_id != principal.subject:
            raise ProblemError(
                404,
                f"You have no application with id {application_id}; GET /v1/applications "
                "lists yours.",
            )
        call = await repo.get_call(session, app.call_id) if app.call_id else None
        if call is None:
            raise ProblemError(
                409,
                "This application was not made through a call for applications, so it has no "
                "published results to appeal against.",
            )
        refusal = appeal_refusal(call.appeals_close_at, utcnow())
        if refusal:
            raise ProblemError(409, refusal)
        if app.id not in await repo.rankings_of_applications(session, [app.id]):
            raise ProblemError(
                409,
                "This application was not in the call's ranking (it was not submitted before "
                "the call closed), so there is no result of yours to appeal against.",
            )
        existing = await repo.appeal_of_application(session, app.id)
        if existing is not None:
            raise ProblemError(
                409,
                f"You already appealed on {existing.filed_at.isoformat()} (appeal "
                f"{existing.id}); one appeal per application is taken.",
            )
        now = utcnow()
        appeal = Appeal(
            id=new_id(),
            application_id=app.id,
            call_id=call.id,
            artisan_id=app.artisan_id,
            landlord_id=call.landlord_id,
            status=FILED,
            grounds=data.grounds.strip(),
            filed_at=now,
        )
        session.add(appeal)
        await session.flush()
        emit(session, call.id, AppealFiled(appeal=AppealSnapshot.from_model(appeal)))
    return _written(appeal, 201)


async def answer_appeal(
    sessions: Sessions, principal: Principal, appeal_id: str, data: AppealAnswerIn
) -> Written:
    """An officer or admin answers an appeal, once; the appellant is told."""
    async with sessions() as session, session.begin():
        appeal = await repo.get_appeal(session, appeal_id, for_update=True)
        if appeal is None:
            raise ProblemError(404, _no_appeal(appeal_id))
        if appeal.status == ANSWERED:
            raise ProblemError(
                409,
                f"This appeal was answered on "
                f"{appeal.answered_at.isoformat() if appeal.answered_at else ''}; an answer "
                "is given once.",
            )
        now = utcnow()
        appeal.status, appeal.outcome, appeal.answer = ANSWERED, data.outcome, data.answer.strip()
        appeal.answered_by, appeal.answered_at = principal.subject, now
        appeal.version += 1
        await session.flush()
        emit(
            session,
            appeal.call_id,
            AppealAnswered(
                appeal=AppealSnapshot.from_model(appeal),
                answer=appeal.answer,
                answered_by_role=principal.role.value,
                answered_at=now,
            ),
        )
    return _written(appeal)


def _may_see(principal: Principal, appeal: Appeal) -> bool:
    if reads_everything(principal):
        return True
    if principal.role is Role.ARTISAN:
        return appeal.artisan_id == principal.subject
    return principal.role is Role.LANDLORD and appeal.landlord_id == principal.subject


async def get_appeal(sessions: Sessions, principal: Principal, appeal_id: str) -> AppealOut:
    """One appeal: its appellant, the call's landlord, officers and admins."""
    async with sessions() as session:
        appeal = await repo.get_appeal(session, appeal_id)
    if appeal is None or not _may_see(principal, appeal):
        raise ProblemError(404, _no_appeal(appeal_id))
    return _out(appeal)


async def list_appeals(
    sessions: Sessions,
    principal: Principal,
    page: PageParams,
    call_id: str | None,
    status: str | None,
) -> Page[AppealOut]:
    """Appeals, the latest first: all for officers and admins, a landlord's calls', an
    artisan's own."""
    artisan_id, landlord_id = scope(principal)
    query = repo.AppealSearch(
        artisan_id=artisan_id, landlord_id=landlord_id, call_id=call_id, status=status
    )
    async with sessions() as session:
        rows, total = await repo.list_appeals(session, query, page)
    return Page.of(rows, total, page, _out)
