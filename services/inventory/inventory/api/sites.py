"""Site endpoints: public reads, landlord-scoped writes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from fabkit.auth import Principal, Role, require_roles
from inventory import repository as repo
from inventory import service
from inventory.api.deps import (
    IdempotencyKey,
    IfMatch,
    SessionsDep,
    SettingsDep,
    idempotency,
    respond,
)
from inventory.domain import SiteKind
from inventory.schemas import Page, SiteCreate, SiteOut, SitePatch

router = APIRouter(prefix="/v1/sites", tags=["sites"])

Writer = require_roles(Role.LANDLORD, Role.ADMIN)


@router.post("", status_code=201, response_model=SiteOut, summary="Register a site")
async def create_site(
    payload: SiteCreate,
    request: Request,
    sessions: SessionsDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
    principal: Principal = Writer,
) -> JSONResponse:
    idem = idempotency(principal, idempotency_key, request, payload.model_dump(mode="json"))
    return respond(await service.create_site(sessions, settings, principal, payload, idem))


@router.get("", response_model=Page[SiteOut], summary="List sites")
async def list_sites(
    sessions: SessionsDep,
    landlord_id: str | None = None,
    arrondissement: Annotated[int | None, Query(ge=1, le=20)] = None,
    kind: SiteKind | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Page[SiteOut]:
    async with sessions() as session:
        sites, total = await repo.list_sites(
            session,
            landlord_id=landlord_id,
            arrondissement=arrondissement,
            kind=kind.value if kind else None,
            limit=limit,
            offset=offset,
        )
    return Page(items=[service.site_out(s) for s in sites], total=total, limit=limit, offset=offset)


@router.get("/{site_id}", response_model=SiteOut, summary="One site")
async def get_site(site_id: str, sessions: SessionsDep, response: Response) -> SiteOut:
    site = await service.get_site(sessions, site_id)
    response.headers["ETag"] = service.etag_of(site.version)
    return service.site_out(site)


@router.patch("/{site_id}", response_model=SiteOut, summary="Update a site")
async def update_site(
    site_id: str,
    payload: SitePatch,
    sessions: SessionsDep,
    settings: SettingsDep,
    if_match: IfMatch = None,
    principal: Principal = Writer,
) -> JSONResponse:
    return respond(
        await service.update_site(sessions, settings, principal, site_id, payload, if_match)
    )
