"""Applications: artisans apply and withdraw; the unit's landlord rejects or makes an offer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from fabkit.auth import Principal, Role, require_roles
from leasing import service
from leasing.api.deps import (
    CatalogueDep,
    IdempotencyKey,
    SessionsDep,
    SettingsDep,
    idempotency,
    respond,
)
from leasing.domain import ApplicationStatus
from leasing.schemas import (
    ApplicationCreate,
    ApplicationOut,
    LeaseOut,
    OfferCreate,
    Page,
    ReasonIn,
    RejectIn,
)

router = APIRouter(prefix="/v1/applications", tags=["applications"])

ArtisanOnly = require_roles(Role.ARTISAN)
OwnerOrAdmin = require_roles(Role.LANDLORD, Role.ADMIN)
Anyone = require_roles(Role.ARTISAN, Role.LANDLORD, Role.ADMIN)


@router.post(
    "",
    status_code=201,
    response_model=ApplicationOut,
    summary="Apply to a unit's open vacancy (422 lists every eligibility rule you fail)",
)
async def submit(
    payload: ApplicationCreate,
    request: Request,
    sessions: SessionsDep,
    settings: SettingsDep,
    catalogue: CatalogueDep,
    idempotency_key: IdempotencyKey = None,
    principal: Principal = ArtisanOnly,
) -> JSONResponse:
    idem = idempotency(principal, idempotency_key, request, payload.model_dump(mode="json"))
    return respond(
        await service.submit_application(sessions, settings, catalogue, principal, payload, idem)
    )


@router.get(
    "",
    response_model=Page[ApplicationOut],
    summary="Your applications (artisan) or those to your units (landlord)",
)
async def list_applications(
    sessions: SessionsDep,
    unit_id: str | None = None,
    status: Annotated[list[ApplicationStatus] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    principal: Principal = Anyone,
) -> Page[ApplicationOut]:
    items, total = await service.list_applications(
        sessions,
        principal,
        unit_id=unit_id,
        statuses=[s.value for s in status or ()],
        limit=limit,
        offset=offset,
    )
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get(
    "/{application_id}",
    response_model=ApplicationOut,
    summary="One application with every decision taken on it",
)
async def get_application(
    application_id: str, sessions: SessionsDep, principal: Principal = Anyone
) -> ApplicationOut:
    return await service.get_application(sessions, principal, application_id)


@router.post(
    "/{application_id}/withdraw", response_model=ApplicationOut, summary="Withdraw your application"
)
async def withdraw(
    application_id: str,
    sessions: SessionsDep,
    settings: SettingsDep,
    payload: ReasonIn | None = None,
    principal: Principal = ArtisanOnly,
) -> ApplicationOut:
    reason = payload.reason if payload else None
    return await service.withdraw_application(sessions, settings, principal, application_id, reason)


@router.post(
    "/{application_id}/reject", response_model=ApplicationOut, summary="Turn an application down"
)
async def reject(
    application_id: str,
    payload: RejectIn,
    sessions: SessionsDep,
    settings: SettingsDep,
    principal: Principal = OwnerOrAdmin,
) -> ApplicationOut:
    return await service.reject_application(
        sessions, settings, principal, application_id, payload.reason
    )


@router.post(
    "/{application_id}/offer",
    status_code=201,
    response_model=LeaseOut,
    summary="Offer a lease to the applicant (rent within the programme's cap)",
)
async def offer(
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
        await service.make_offer(
            sessions, settings, catalogue, principal, application_id, payload, idem
        )
    )
