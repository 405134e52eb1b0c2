"""Calls for applications: public dates and counts; the landlord moves the dates, reads the
frozen ranking, starts the review and records that nobody is chosen."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from fabkit.auth import Principal, Role, require_roles
from fabkit.openapi import ETAG_HEADER
from fabkit.pagination import Page, PageDep
from leasing.api.deps import IfMatch, SessionsDep, respond
from leasing.domain import CallStatus
from leasing.repository import CallSearch
from leasing.schemas import CallDecideIn, CallOut, CallPatch, CallRankingOut
from leasing.service import calls

router = APIRouter(prefix="/v1/calls", tags=["calls"])

OwnerOrAdmin = require_roles(Role.LANDLORD, Role.ADMIN)
OwnerAdminOrOfficer = require_roles(Role.LANDLORD, Role.ADMIN, Role.OFFICER)


@router.get("", response_model=Page[CallOut], summary="Calls for applications (public)")
async def list_calls(
    sessions: SessionsDep,
    page: PageDep,
    status: Annotated[list[CallStatus] | None, Query()] = None,
    unit_id: str | None = None,
    landlord_id: str | None = None,
) -> Page[CallOut]:
    query = CallSearch(
        statuses=[s.value for s in status or ()], unit_id=unit_id, landlord_id=landlord_id
    )
    return await calls.list_calls(sessions, query, page)


@router.get(
    "/{call_id}",
    response_model=CallOut,
    summary="One call: dates, status, catalogue version, counts (public; never a name)",
    responses={200: {"headers": ETAG_HEADER}},
)
async def get_call(call_id: str, sessions: SessionsDep) -> JSONResponse:
    return respond(await calls.get_call(sessions, call_id))


@router.patch(
    "/{call_id}",
    response_model=CallOut,
    summary="Move the opening (while scheduled) or the closing date (while scheduled or open); "
    "send If-Match",
    responses={200: {"headers": ETAG_HEADER}},
)
async def update_call(
    call_id: str,
    payload: CallPatch,
    sessions: SessionsDep,
    if_match: IfMatch = None,
    principal: Principal = OwnerOrAdmin,
) -> JSONResponse:
    return respond(await calls.patch_call(sessions, principal, call_id, payload, if_match))


@router.get(
    "/{call_id}/ranking",
    response_model=CallRankingOut,
    summary="The ranking frozen at closing, with names, points per criterion and decisions",
)
async def get_call_ranking(
    call_id: str, sessions: SessionsDep, principal: Principal = OwnerAdminOrOfficer
) -> CallRankingOut:
    return await calls.get_ranking(sessions, principal, call_id)


@router.post(
    "/{call_id}/review",
    response_model=CallOut,
    summary="Start the review of a closed call",
    responses={200: {"headers": ETAG_HEADER}},
)
async def review_call(
    call_id: str, sessions: SessionsDep, principal: Principal = OwnerOrAdmin
) -> JSONResponse:
    return respond(await calls.review_call(sessions, principal, call_id))


@router.post(
    "/{call_id}/decide",
    response_model=CallOut,
    summary="Record that nobody is chosen (a signed lease decides a call by itself)",
    responses={200: {"headers": ETAG_HEADER}},
)
async def decide_call(
    call_id: str,
    payload: CallDecideIn,
    sessions: SessionsDep,
    principal: Principal = OwnerOrAdmin,
) -> JSONResponse:
    return respond(await calls.decide_unawarded(sessions, principal, call_id, payload))
