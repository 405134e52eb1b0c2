"""Landlords: registered by an admin, each with API tokens for its own sites and units."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.auth import Principal, Role, TokenService
from fabkit.errors import ProblemError
from fabkit.idempotency import Idempotency, Written, run_idempotent
from inventory import repository as repo
from inventory.models import Landlord
from inventory.schemas import LandlordCreate, LandlordOut, TokenOut
from inventory.service.common import Sessions, new_id


async def create_landlord(
    sessions: Sessions, data: LandlordCreate, idem: Idempotency | None
) -> Written:
    """Register a landlord (names are unique); 201 with its Location."""

    async def create(session: AsyncSession) -> Written:
        if await repo.get_landlord_by_name(session, data.name) is not None:
            raise ProblemError(409, f"A landlord named {data.name!r} already exists.")
        landlord = Landlord(
            id=new_id(), name=data.name, kind=data.kind.value, contact_email=data.contact_email
        )
        session.add(landlord)
        await session.flush()
        return Written(
            201,
            LandlordOut.model_validate(landlord, from_attributes=True).model_dump(mode="json"),
            location=f"/v1/landlords/{landlord.id}",
        )

    return await run_idempotent(sessions, idem, create)


async def list_landlords(sessions: Sessions) -> list[LandlordOut]:
    """Every landlord, by name."""
    async with sessions() as session:
        landlords = await repo.list_landlords(session)
    return [LandlordOut.model_validate(x, from_attributes=True) for x in landlords]


async def get_landlord(sessions: Sessions, principal: Principal, landlord_id: str) -> LandlordOut:
    """One landlord, for an admin or for that landlord itself."""
    if not principal.is_admin and principal.subject != landlord_id:
        raise ProblemError(403, "A landlord can only read its own record.")
    async with sessions() as session:
        landlord = await repo.get_landlord(session, landlord_id)
    if landlord is None:
        raise ProblemError(404, f"No landlord with id {landlord_id}.")
    return LandlordOut.model_validate(landlord, from_attributes=True)


async def issue_landlord_token(
    sessions: Sessions, tokens: TokenService, landlord_id: str, ttl_days: int
) -> TokenOut:
    """A landlord token valid `ttl_days` days, for an existing landlord."""
    async with sessions() as session:
        if await repo.get_landlord(session, landlord_id) is None:
            raise ProblemError(404, f"No landlord with id {landlord_id}.")
    ttl = ttl_days * 24 * 3600
    return TokenOut(
        token=tokens.issue(landlord_id, Role.LANDLORD, ttl),
        role=Role.LANDLORD.value,
        subject=landlord_id,
        expires_in_seconds=ttl,
    )
