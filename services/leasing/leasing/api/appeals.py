"""Appeals against published results: the applicant files one within the appeal period; an
officer or admin answers it."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from fabkit.auth import Principal, Role, require_roles
from fabkit.openapi import ETAG_HEADER, LOCATION_HEADER
from fabkit.pagination import Page, PageDep
from leasing.api.deps import SessionsDep, respond
from leasing.schemas import AppealAnswerIn, AppealIn, AppealOut
from leasing.service import appeals

router = APIRouter(tags=["results"])

Artisan = require_roles(Role.ARTISAN)
OfficerOrAdmin = require_roles(Role.OFFICER, Role.ADMIN)
Anyone = require_roles(Role.ARTISAN, Role.LANDLORD, Role.OFFICER, Role.ADMIN)


@router.post(
    "/v1/applications/{application_id}/appeal",
    response_model=AppealOut,
    status_code=201,
    summary="Appeal against your call's published results (once, within the appeal period)",
    responses={201: {"headers": {**ETAG_HEADER, **LOCATION_HEADER}}},
)
async def file_appeal(
    application_id: str, payload: AppealIn, sessions: SessionsDep, principal: Principal = Artisan
) -> JSONResponse:
    return respond(await appeals.file_appeal(sessions, principal, application_id, payload))


@router.post(
    "/v1/appeals/{appeal_id}/answer",
    response_model=AppealOut,
    summary="Answer an appeal (officer, admin; once): the appellant is told",
    responses={200: {"headers": ETAG_HEADER}},
)
async def answer_appeal(
    appeal_id: str,
    payload: AppealAnswerIn,
    sessions: SessionsDep,
    principal: Principal = OfficerOrAdmin,
) -> JSONResponse:
    return respond(await appeals.answer_appeal(sessions, principal, appeal_id, payload))


@router.get(
    "/v1/appeals",
    response_model=Page[AppealOut],
    summary="Appeals: all for officers and admins, a landlord's calls', an artisan's own",
)
async def list_appeals(
    sessions: SessionsDep,
    page: PageDep,
    call_id: str | None = None,
    status: Literal["filed", "answered"] | None = None,
    principal: Principal = Anyone,
) -> Page[AppealOut]:
    return await appeals.list_appeals(sessions, principal, page, call_id, status)


@router.get(
    "/v1/appeals/{appeal_id}",
    response_model=AppealOut,
    summary="One appeal: its appellant, the call's landlord, officers and admins",
)
async def get_appeal(
    appeal_id: str, sessions: SessionsDep, principal: Principal = Anyone
) -> AppealOut:
    return await appeals.get_appeal(sessions, principal, appeal_id)
