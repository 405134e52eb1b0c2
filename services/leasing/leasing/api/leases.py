"""Leases: the artisan accepts or declines an offer; a signed lease ends or is renewed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from fabkit.auth import Principal, Role, require_roles
from fabkit.pagination import Page, PageDep
from leasing.api.deps import CatalogueDep, SessionsDep, links
from leasing.domain import LeaseStatus
from leasing.schemas import LeaseEndIn, LeaseOut, LeaseRenewIn, ReasonIn
from leasing.service import leases

router = APIRouter(prefix="/v1/leases", tags=["leases"])

ArtisanOnly = require_roles(Role.ARTISAN)
OwnerOrAdmin = require_roles(Role.LANDLORD, Role.ADMIN)
Anyone = require_roles(Role.ARTISAN, Role.LANDLORD, Role.ADMIN)
# Reads: the parties, admins and city officers.
Reader = require_roles(Role.ARTISAN, Role.LANDLORD, Role.ADMIN, Role.OFFICER)


@router.get("", response_model=Page[LeaseOut], summary="Your offers and leases")
async def list_leases(
    sessions: SessionsDep,
    page: PageDep,
    unit_id: str | None = None,
    status: Annotated[list[LeaseStatus] | None, Query()] = None,
    principal: Principal = Reader,
) -> Page[LeaseOut]:
    return await leases.list_leases(
        sessions,
        principal,
        unit_id=unit_id,
        statuses=[s.value for s in status or ()],
        page=page,
    )


@router.get("/{lease_id}", response_model=LeaseOut, summary="One offer or lease")
async def get_lease(
    lease_id: str, sessions: SessionsDep, principal: Principal = Reader
) -> LeaseOut:
    return await leases.get_lease(sessions, principal, lease_id)


@router.post(
    "/{lease_id}/accept",
    response_model=LeaseOut,
    summary="Accept the offer: sign",
    responses={200: {"links": links("lease_id", "getLease", "endLease", "renewLease")}},
)
async def accept_offer(
    lease_id: str, sessions: SessionsDep, principal: Principal = ArtisanOnly
) -> LeaseOut:
    return await leases.accept_offer(sessions, principal, lease_id)


@router.post("/{lease_id}/decline", response_model=LeaseOut, summary="Decline the offer")
async def decline_offer(
    lease_id: str,
    sessions: SessionsDep,
    payload: ReasonIn | None = None,
    principal: Principal = ArtisanOnly,
) -> LeaseOut:
    reason = payload.reason if payload else None
    return await leases.decline_offer(sessions, principal, lease_id, reason)


@router.post(
    "/{lease_id}/end",
    response_model=LeaseOut,
    summary="Record that a signed lease ended or was terminated (the unit reopens)",
)
async def end_lease(
    lease_id: str,
    payload: LeaseEndIn,
    sessions: SessionsDep,
    principal: Principal = Anyone,
) -> LeaseOut:
    return await leases.end_lease(sessions, principal, lease_id, payload)


@router.post(
    "/{lease_id}/renew",
    response_model=LeaseOut,
    summary="Renew a signed lease (as often as its programme allows)",
)
async def renew_lease(
    lease_id: str,
    payload: LeaseRenewIn,
    sessions: SessionsDep,
    catalogue: CatalogueDep,
    principal: Principal = OwnerOrAdmin,
) -> LeaseOut:
    return await leases.renew_lease(sessions, catalogue, principal, lease_id, payload)
