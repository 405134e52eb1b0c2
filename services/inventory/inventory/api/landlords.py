"""Landlord endpoints (admin writes; admins and city officers read them all, a landlord its own).

Landlord integrations get their tokens from the identity provider (a Keycloak client per
landlord, client-credentials grant; see docs/identity.md), never from this API."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from fabkit.auth import Principal, Role, require_roles
from fabkit.openapi import LOCATION_HEADER, REPLAYED_HEADER
from inventory.api.deps import AdminOnly, IdempotencyKey, SessionsDep, idempotency, respond
from inventory.schemas import LandlordCreate, LandlordOut
from inventory.service import landlords

router = APIRouter(prefix="/v1/landlords", tags=["landlords"])


@router.post(
    "",
    status_code=201,
    response_model=LandlordOut,
    summary="Register a landlord",
    responses={201: {"headers": {**LOCATION_HEADER, **REPLAYED_HEADER}}},
)
async def create_landlord(
    payload: LandlordCreate,
    request: Request,
    sessions: SessionsDep,
    idempotency_key: IdempotencyKey = None,
    principal: Principal = AdminOnly,
) -> JSONResponse:
    idem = idempotency(principal, idempotency_key, request, payload.model_dump(mode="json"))
    return respond(await landlords.create_landlord(sessions, payload, idem))


@router.get("", response_model=list[LandlordOut], summary="List landlords (admin, officer)")
async def list_landlords(
    sessions: SessionsDep, principal: Principal = require_roles(Role.ADMIN, Role.OFFICER)
) -> list[LandlordOut]:
    return await landlords.list_landlords(sessions)


@router.get(
    "/{landlord_id}", response_model=LandlordOut, summary="One landlord (admin, officer or itself)"
)
async def get_landlord(
    landlord_id: str,
    sessions: SessionsDep,
    principal: Principal = require_roles(Role.ADMIN, Role.OFFICER, Role.LANDLORD),
) -> LandlordOut:
    return await landlords.get_landlord(sessions, principal, landlord_id)
