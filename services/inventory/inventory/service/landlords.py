"""Landlords: registered by an admin; each acts on its own sites and units with the tokens of
its identity-provider client (the landlord_id claim)."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.auth import Principal, Role
from fabkit.errors import ProblemError
from fabkit.idempotency import Idempotency, Written, run_idempotent
from inventory import repository as repo
from inventory.models import Landlord
from inventory.schemas import LandlordCreate, LandlordOut
from inventory.service.common import Sessions, new_id


async def create_landlord(
    sessions: Sessions,
    data: LandlordCreate,
    idem: Idempotency | None,
    landlord_id: str | None = None,
) -> Written:
    """Register a landlord (names are unique); 201 with its Location. ``landlord_id`` (the
    demo seed's fixed ids, which the demo realm's clients carry) defaults to a new UUID."""

    async def create(session: AsyncSession) -> Written:
        if await repo.get_landlord_by_name(session, data.name) is not None:
            raise ProblemError(409, f"A landlord named {data.name!r} already exists.")
        landlord = Landlord(
            id=landlord_id or new_id(),
            name=data.name,
            kind=data.kind.value,
            contact_email=data.contact_email,
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
    """One landlord, for an admin, a city officer or that landlord itself."""
    if principal.role is Role.LANDLORD and principal.subject != landlord_id:
        raise ProblemError(403, "A landlord can only read its own record.")
    async with sessions() as session:
        landlord = await repo.get_landlord(session, landlord_id)
    if landlord is None:
        raise ProblemError(404, f"No landlord with id {landlord_id}.")
    return LandlordOut.model_validate(landlord, from_attributes=True)
