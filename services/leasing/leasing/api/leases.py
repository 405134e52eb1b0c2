"""Leases: the artisan accepts or declines an offer; a signed lease ends or is renewed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from fabkit.auth import Principal, Role, require_roles
from leasing import service
from leasing.api.deps import CatalogueDep, SessionsDep, SettingsDep
from leasing.domain import LeaseStatus
from leasing.schemas import LeaseEndIn, LeaseOut, LeaseRenewIn, Page, ReasonIn

router = APIRouter(prefix="/v1/leases", tags=["leases"])

ArtisanOnly = require_roles(Role.ARTISAN)
OwnerOrAdmin = require_roles(Role.LANDLORD, Role.ADMIN)
Anyone = require_roles(Role.ARTISAN, Role.LANDLORD, Role.ADMIN)


@router.get("", response_model=Page[LeaseOut], summary="Your offers and leases")
async def list_leases(
    sessions: SessionsDep,
    unit_id: str | None = None,
    status: Annotated[list[LeaseStatus] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    principal: Principal = Anyone,
) -> Page[LeaseOut]:
    items, total = await service.list_leases(
        sessions,
        principal,
        unit_id=unit_id,
        statuses=[s.value for s in status or ()],
        limit=limit,
        offset=offset,
    )
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/{lease_id}", response_model=LeaseOut, summary="One offer or lease")
async def get_lease(
    lease_id: str, sessions: SessionsDep, principal: Principal = Anyone
) -> LeaseOut:
    return await service.get_lease(sessions, principal, lease_id)


@router.post("/{lease_id}/accept", response_model=LeaseOut, summary="Accept the offer: sign")
async def accept(
    lease_id: str,
    sessions: SessionsDep,
    settings: SettingsDep,
    principal: Principal = ArtisanOnly,
) -> LeaseOut:
    return await service.accept_offer(sessions, settings, principal, lease_id)


@router.post("/{lease_id}/decline", response_model=LeaseOut, summary="Decline the offer")
async def decline(
    lease_id: str,
    sessions: SessionsDep,
    settings: SettingsDep,
    payload: ReasonIn | None = None,
    principal: Principal = ArtisanOnly,
) -> LeaseOut:
    reason = payload.reason if payload else None
    return await service.decline_offer(sessions, settings, principal, lease_id, reason)


@router.post(
    "/{lease_id}/end",
    response_model=LeaseOut,
    summary="Record that a signed lease ended or was terminated (the unit reopens)",
)
async def end(
    lease_id: str,
    payload: LeaseEndIn,
    sessions: SessionsDep,
    settings: SettingsDep,
    principal: Principal = Anyone,
) -> LeaseOut:
    return await service.end_lease(sessions, settings, principal, lease_id, payload)


@router.post(
    "/{lease_id}/renew",
    response_model=LeaseOut,
    summary="Renew a signed lease (as often as its programme allows)",
)
async def renew(
    lease_id: str,
    payload: LeaseRenewIn,
    sessions: SessionsDep,
    settings: SettingsDep,
    catalogue: CatalogueDep,
    principal: Principal = OwnerOrAdmin,
) -> LeaseOut:
    return await service.renew_lease(sessions, settings, catalogue, principal, lease_id, payload)
