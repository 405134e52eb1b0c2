"""Site endpoints: public reads, landlord-scoped writes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from fabkit.auth import Principal
from fabkit.http import etag_of
from fabkit.openapi import CREATED_HEADERS, ETAG_HEADER
from fabkit.pagination import Page, PageDep
from inventory.api.deps import IdempotencyKey, IfMatch, SessionsDep, Writer, idempotency, respond
from inventory.domain import SiteKind
from inventory.geocoding import Geocoder
from inventory.schemas import SiteCreate, SiteOut, SitePatch
from inventory.service import sites
from inventory.service.sites import SiteWritten

# How geocoding the address went: located, no-match, failed, off (no geocoder), given.
GEOCODING_HEADER = {
    "Fabrique-Geocoding": {
        "description": "What geocoding the site's address gave: located, no-match, failed, "
        "off (no geocoder configured) or given (coordinates sent, or the address unchanged). "
        "Without a match the site is kept without coordinates.",
        "schema": {"type": "string", "enum": ["located", "no-match", "failed", "off", "given"]},
    }
}


def _respond(result: SiteWritten) -> JSONResponse:
    response = respond(result.written)
    response.headers["Fabrique-Geocoding"] = result.geocoding.value
    return response


def _geocoder(request: Request) -> Geocoder | None:
    return getattr(request.app.state, "geocoder", None)


router = APIRouter(prefix="/v1/sites", tags=["sites"])


@router.post(
    "",
    status_code=201,
    response_model=SiteOut,
    summary="Register a site",
    responses={201: {"headers": {**CREATED_HEADERS, **GEOCODING_HEADER}}},
)
async def create_site(
    payload: SiteCreate,
    request: Request,
    sessions: SessionsDep,
    idempotency_key: IdempotencyKey = None,
    principal: Principal = Writer,
) -> JSONResponse:
    idem = idempotency(principal, idempotency_key, request, payload.model_dump(mode="json"))
    return _respond(await sites.create_site(sessions, principal, payload, idem, _geocoder(request)))


@router.get("", response_model=Page[SiteOut], summary="List sites")
async def list_sites(
    sessions: SessionsDep,
    page: PageDep,
    landlord_id: str | None = None,
    arrondissement: Annotated[int | None, Query(ge=1, le=20)] = None,
    kind: SiteKind | None = None,
) -> Page[SiteOut]:
    return await sites.list_sites(
        sessions,
        landlord_id=landlord_id,
        arrondissement=arrondissement,
        kind=kind.value if kind else None,
        page=page,
    )


@router.get(
    "/{site_id}",
    response_model=SiteOut,
    summary="One site",
    responses={200: {"headers": ETAG_HEADER}},
)
async def get_site(site_id: str, sessions: SessionsDep, response: Response) -> SiteOut:
    site = await sites.get_site(sessions, site_id)
    response.headers["ETag"] = etag_of(site.version)
    return site


@router.patch(
    "/{site_id}",
    response_model=SiteOut,
    summary="Update a site",
    responses={200: {"headers": {**ETAG_HEADER, **GEOCODING_HEADER}}},
)
async def update_site(
    site_id: str,
    payload: SitePatch,
    request: Request,
    sessions: SessionsDep,
    if_match: IfMatch = None,
    principal: Principal = Writer,
) -> JSONResponse:
    return _respond(
        await sites.update_site(sessions, principal, site_id, payload, if_match, _geocoder(request))
    )
