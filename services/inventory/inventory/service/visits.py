"""Workshop visits: the tenants of units, kept from leasing's lease events, who may open their
workshop for visits (issue 18)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from inventory import repository as repo


async def record_tenant(session: AsyncSession, unit_id: str, artisan_id: str | None) -> None:
    """A signed lease names the unit's tenant (in the lease event's transaction); a unit this
    inventory does not have, or an event without the artisan, changes nothing."""
    if artisan_id is None:
        return
    unit = await repo.get_unit(session, unit_id, for_update=True)
    if unit is None or unit.tenant_artisan_id == artisan_id:
        return
    unit.tenant_artisan_id = artisan_id
    unit.updated_at = datetime.now(UTC)
    await session.flush()


async def clear_tenant(session: AsyncSession, unit_id: str, artisan_id: str | None) -> None:
    """An ended lease clears the unit's tenant, unless the unit has another tenant since (a
    later lease signed before this end was read)."""
    unit = await repo.get_unit(session, unit_id, for_update=True)
    if unit is None or unit.tenant_artisan_id is None:
        return
    if artisan_id is not None and unit.tenant_artisan_id != artisan_id:
        return
    unit.tenant_artisan_id = None
    unit.updated_at = datetime.now(UTC)
    await session.flush()
