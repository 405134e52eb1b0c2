"""Applications: artisans apply and withdraw; the unit's landlord rejects or makes an offer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from fabkit.auth import Principal, Role, require_roles
from fabkit.openapi import LOCATION_HEADER, REPLAYED_HEADER
from fabkit.pagination import Page, PageDep
from leasing.api.deps import (
    CatalogueDep,
    IdempotencyKey,
    SessionsDep,
    SettingsDep,
    idempotency,
    links,
    respond,
)
from leasing.domain import ApplicationStatus
from leasing.schemas import (
    ApplicationCreate,
    ApplicationOut,
    ApplicationSubmitIn,
    LeaseOut,
    OfferCreate,
    ReasonIn,
    RejectIn,
)
from leasing.service import applications, leases

router = APIRouter(prefix="/v1/applications", tags=["applications"])

ArtisanOnly = require_roles(Role.ARTISAN)
OwnerOrAdmin = require_roles(Role.LANDLORD, Role.ADMIN)
# Reads: the parties, admins and city officers (allocation records are public to the city).
Reader = require_roles(Role.ARTISAN, Role.LANDLORD, Role.ADMIN, Role.OFFICER)
# Created with an optional Idempotency-Key: no ETag, a replay says so.
_CREATED_HEADERS = {**LOCATION_HEADER, **REPLAYED_HEADER}
APPLICATION_LINKS = links(
    "application_id", "getApplication", "withdrawApplication", "rejectApplication", "makeOffer"
)
LEASE_LINKS = links("lease_id", "getLease", "acceptOffer", "declineOffer")


@router.post(
    "",
    status_code=201,
    response_model=ApplicationOut,
    summary="Apply to a unit's open vacancy while its call is open, or save a draft (422 lists "
    "every eligibility rule you fail)",
    responses={201: {"headers": _CREATED_HEADERS, "links": APPLICATION_LINKS}},
)
async def submit_application(
    payload: ApplicationCreate,
    request: Request,
    sessions: SessionsDep,
    catalogue: CatalogueDep,
    idempotency_key: IdempotencyKey = None,
    principal: Principal = ArtisanOnly,
) -> JSONResponse:
    idem = idempotency(principal, idempotency_key, request, payload.model_dump(mode="json"))
    return respond(
        await applications.submit_application(sessions, catalogue, principal, payload, idem)
    )


@router.get(
    "",
    response_model=Page[ApplicationOut],
    summary="Your applications (artisan) or those to your units (landlord)",
)
async def list_applications(
    sessions: SessionsDep,
    page: PageDep,
    unit_id: str | None = None,
    status: Annotated[list[ApplicationStatus] | None, Query()] = None,
    principal: Principal = Reader,
) -> Page[ApplicationOut]:
    return await applications.list_applications(
        sessions,
        principal,
        unit_id=unit_id,
        statuses=[s.value for s in status or ()],
        page=page,
    )


@router.get(
    "/{application_id}",
    response_model=ApplicationOut,
    summary="One application with every decision taken on it",
)
async def get_application(
    application_id: str, sessions: SessionsDep, principal: Principal = Reader
) -> ApplicationOut:
    return await applications.get_application(sessions, principal, application_id)


@router.post(
    "/{application_id}/submit",
    response_model=ApplicationOut,
    summary="Submit your draft while the call is open (409 says when it opens or closed)",
)
async def submit_draft(
    application_id: str,
    sessions: SessionsDep,
    catalogue: CatalogueDep,
    payload: ApplicationSubmitIn | None = None,
    principal: Principal = ArtisanOnly,
) -> ApplicationOut:
    data = payload or ApplicationSubmitIn()
    return await applications.submit_draft(sessions, catalogue, principal, application_id, data)


@router.post(
    "/{application_id}/withdraw", response_model=ApplicationOut, summary="Withdraw your application"
)
async def withdraw_application(
    application_id: str,
    sessions: SessionsDep,
    payload: ReasonIn | None = None,
    principal: Principal = ArtisanOnly,
) -> ApplicationOut:
    reason = payload.reason if payload else None
    return await applications.withdraw_application(sessions, principal, application_id, reason)


@router.post(
    "/{application_id}/reject", response_model=ApplicationOut, summary="Turn an application down"
)
async def reject_application(
    application_id: str,
    payload: RejectIn,
    sessions: SessionsDep,
    catalogue: CatalogueDep,
    principal: Principal = OwnerOrAdmin,
) -> ApplicationOut:
    return await applications.reject_application(
        sessions, catalogue, principal, application_id, payload.reason, payload.ground
    )


@router.post(
    "/{application_id}/offer",
    status_code=201,
    response_model=LeaseOut,
    summary="Offer a lease once the call closed: to the first in rank still in the running, or "
    "to another with out_of_rank (rent within the programme's cap)",
    responses={201: {"headers": _CREATED_HEADERS, "links": LEASE_LINKS}},
)
async def make_offer(
    application_id: str,
    payload: OfferCreate,
    request: Request,
    sessions: SessionsDep,
    settings: SettingsDep,
    catalogue: CatalogueDep,
    idempotency_key: IdempotencyKey = None,
    principal: Principal = OwnerOrAdmin,
) -> JSONResponse:
    idem = idempotency(principal, idempotency_key, request, payload.model_dump(mode="json"))
    return respond(
        await leases.make_offer(
            sessions, settings, catalogue, principal, application_id, payload, idem
        )
    )
