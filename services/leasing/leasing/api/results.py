"""A call's jury and published results: the landlord records the jury and publishes the
results of a decided call; anyone reads the anonymised results."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from fabkit.auth import Principal, Role, require_roles
from fabkit.openapi import ETAG_HEADER, LOCATION_HEADER
from fabkit.pagination import Page, PageDep
from leasing.api.deps import CatalogueDep, SessionsDep, respond
from leasing.schemas import CallResultsOut, JuryIn, JuryOut, ResultsSummaryOut
from leasing.service import results

router = APIRouter(tags=["results"])

OwnerOrAdmin = require_roles(Role.LANDLORD, Role.ADMIN)
OwnerAdminOrOfficer = require_roles(Role.LANDLORD, Role.ADMIN, Role.OFFICER)


@router.put(
    "/v1/calls/{call_id}/jury",
    response_model=JuryOut,
    summary="Record a call's jury: members (a declared conflict recuses), session, minutes, "
    "decision",
    responses={200: {"headers": ETAG_HEADER}},
)
async def put_jury(
    call_id: str, payload: JuryIn, sessions: SessionsDep, principal: Principal = OwnerOrAdmin
) -> JSONResponse:
    return respond(await results.put_jury(sessions, principal, call_id, payload))


@router.get(
    "/v1/calls/{call_id}/jury",
    response_model=JuryOut,
    summary="A call's jury with its minutes and the conflict declarations",
)
async def get_jury(
    call_id: str, sessions: SessionsDep, principal: Principal = OwnerAdminOrOfficer
) -> JuryOut:
    return await results.get_jury(sessions, principal, call_id)


@router.post(
    "/v1/calls/{call_id}/results",
    response_model=CallResultsOut,
    summary="Publish a decided call's anonymised results; the appeal period starts",
    responses={200: {"headers": {**ETAG_HEADER, **LOCATION_HEADER}}},
)
async def publish_results(
    call_id: str,
    sessions: SessionsDep,
    catalogue: CatalogueDep,
    principal: Principal = OwnerOrAdmin,
) -> JSONResponse:
    return respond(await results.publish_results(sessions, principal, call_id, catalogue))


@router.get(
    "/v1/calls/{call_id}/results",
    response_model=CallResultsOut,
    summary="A call's published results (public; candidates by rank, never a name)",
)
async def get_results(
    call_id: str, sessions: SessionsDep, catalogue: CatalogueDep
) -> CallResultsOut:
    return await results.get_results(sessions, call_id, catalogue)


@router.get(
    "/v1/results",
    response_model=Page[ResultsSummaryOut],
    summary="Calls whose results are published, the latest first (public)",
)
async def list_results(sessions: SessionsDep, page: PageDep) -> Page[ResultsSummaryOut]:
    return await results.list_results(sessions, page)
