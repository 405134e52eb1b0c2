"""Programmes, their eligibility rules and scoring grids: public, so allocation is auditable;
changed by city officers and admins, every change a new catalogue version."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import JSONResponse

from fabkit.auth import Principal, Role, require_roles
from fabkit.http import etag_of
from fabkit.openapi import ETAG_HEADER, LOCATION_HEADER
from fabkit.pagination import Page, PageDep
from leasing.api.deps import CataloguesDep, IfMatch, SessionsDep, respond
from leasing.schemas import (
    CatalogueOut,
    ProgrammeId,
    ProgrammeIn,
    ProgrammeOut,
    ProgrammeVersionOut,
    ProgrammeVersionSummary,
)
from leasing.service import programmes

router = APIRouter(prefix="/v1/programmes", tags=["programmes"])

# Programmes are the city's policy: its officers and admins change them, nobody else.
Editor = require_roles(Role.OFFICER, Role.ADMIN)
IF_MATCH_NEEDED = (
    'Send the catalogue version you read (the ETag of GET /v1/programmes, e.g. "3") in '
    "If-Match: 412 if another change came first, 428 without the header."
)


@router.get(
    "",
    response_model=CatalogueOut,
    summary="Every programme in force with its rules and grid",
    responses={200: {"headers": ETAG_HEADER}},
)
async def list_programmes(catalogues: CataloguesDep) -> JSONResponse:
    return respond(await programmes.catalogue_out(catalogues))


@router.post(
    "",
    status_code=201,
    response_model=ProgrammeOut,
    summary="Add a programme (officer, admin): a new catalogue version, published",
    description="The body is a whole programme in the rule language (see the service README); "
    "a rule that breaks it is a 422 naming the field. If-Match is optional here.",
    responses={201: {"headers": {**LOCATION_HEADER, **ETAG_HEADER}}},
)
async def add_programme(
    payload: ProgrammeIn,
    sessions: SessionsDep,
    catalogues: CataloguesDep,
    if_match: IfMatch = None,
    principal: Principal = Editor,
) -> JSONResponse:
    return respond(
        await programmes.add_programme(sessions, catalogues, principal, payload, if_match)
    )


@router.get(
    "/versions",
    response_model=Page[ProgrammeVersionSummary],
    summary="Every catalogue version stored, newest first",
)
async def list_programme_versions(
    sessions: SessionsDep, page: PageDep
) -> Page[ProgrammeVersionSummary]:
    return await programmes.list_versions(sessions, page)


@router.get(
    "/versions/{version}",
    response_model=ProgrammeVersionOut,
    summary="One catalogue version as it was published",
)
async def get_programme_version(
    version: Annotated[int, Path(ge=1, le=2**31 - 1)], sessions: SessionsDep
) -> ProgrammeVersionOut:
    return await programmes.get_version(sessions, version)


@router.get(
    "/{programme_id}",
    response_model=ProgrammeOut,
    summary="One programme in force",
    responses={200: {"headers": ETAG_HEADER}},
)
async def get_programme(programme_id: str, catalogues: CataloguesDep) -> JSONResponse:
    return respond(await programmes.programme_out(catalogues, programme_id))


@router.put(
    "/{programme_id}",
    response_model=ProgrammeOut,
    summary="Replace a programme (officer, admin; If-Match): a new catalogue version, published",
    description="The body is the whole programme (what GET answers may be sent back). "
    + IF_MATCH_NEEDED,
    responses={200: {"headers": {**LOCATION_HEADER, **ETAG_HEADER}}},
)
async def replace_programme(
    programme_id: ProgrammeId,
    payload: ProgrammeIn,
    sessions: SessionsDep,
    catalogues: CataloguesDep,
    if_match: IfMatch = None,
    principal: Principal = Editor,
) -> JSONResponse:
    return respond(
        await programmes.replace_programme(
            sessions, catalogues, principal, programme_id, payload, if_match
        )
    )


@router.delete(
    "/{programme_id}",
    status_code=204,
    summary="Retire a programme (officer, admin; If-Match): a new catalogue version without it",
    description="Signed leases under it run on; no new application, offer or renewal is made "
    "under it (the programme events list it no more), and calls keep the version they opened "
    "with. " + IF_MATCH_NEEDED,
    responses={204: {"headers": ETAG_HEADER}},
)
async def retire_programme(
    programme_id: ProgrammeId,
    sessions: SessionsDep,
    catalogues: CataloguesDep,
    note: Annotated[
        str | None,
        Query(
            min_length=3, max_length=500, description="Why it is retired (kept with the version)"
        ),
    ] = None,
    if_match: IfMatch = None,
    principal: Principal = Editor,
) -> Response:
    version = await programmes.retire_programme(
        sessions, catalogues, principal, programme_id, if_match, note
    )
    return Response(status_code=204, headers={"ETag": etag_of(version)})
