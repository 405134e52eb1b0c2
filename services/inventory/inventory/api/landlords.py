"""Landlord endpoints (admin only)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from fabkit.auth import Principal, Role, require_roles
from fabkit.errors import ProblemError
from inventory import repository as repo
from inventory import service
from inventory.api.deps import IdempotencyKey, SessionsDep, idempotency, respond
from inventory.schemas import LandlordCreate, LandlordOut, TokenOut, TokenRequest

router = APIRouter(prefix="/v1/landlords", tags=["landlords"])

AdminOnly = require_roles(Role.ADMIN)


@router.post("", status_code=201, response_model=LandlordOut, summary="Register a landlord")
async def create_landlord(
    payload: LandlordCreate,
    request: Request,
    sessions: SessionsDep,
    idempotency_key: IdempotencyKey = None,
    principal: Principal = AdminOnly,
) -> JSONResponse:
    idem = idempotency(principal, idempotency_key, request, payload.model_dump(mode="json"))
    return respond(await service.create_landlord(sessions, payload, idem))


@router.get("", response_model=list[LandlordOut], summary="List landlords (admin)")
async def list_landlords(
    sessions: SessionsDep, principal: Principal = AdminOnly
) -> list[LandlordOut]:
    async with sessions() as session:
        return [service.landlord_out(x) for x in await repo.list_landlords(session)]


@router.get("/{landlord_id}", response_model=LandlordOut, summary="One landlord (admin or itself)")
async def get_landlord(
    landlord_id: str,
    sessions: SessionsDep,
    principal: Principal = require_roles(Role.ADMIN, Role.LANDLORD),
) -> LandlordOut:
    if not principal.is_admin and principal.subject != landlord_id:
        raise ProblemError(403, "A landlord can only read its own record.")
    async with sessions() as session:
        landlord = await repo.get_landlord(session, landlord_id)
    if landlord is None:
        raise ProblemError(404, f"No landlord with id {landlord_id}.")
    return service.landlord_out(landlord)


@router.post(
    "/{landlord_id}/tokens",
    status_code=201,
    response_model=TokenOut,
    summary="Issue an API token for a landlord",
)
async def issue_token(
    landlord_id: str,
    request: Request,
    sessions: SessionsDep,
    payload: TokenRequest | None = None,
    principal: Principal = AdminOnly,
) -> TokenOut:
    ttl = (payload or TokenRequest()).ttl_days
    return await service.issue_landlord_token(sessions, request.app.state.tokens, landlord_id, ttl)
