"""Leases signed and ended in leasing, applied to the unit they let."""

from __future__ import annotations

from typing import Literal

from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.auth import Principal, Role
from inventory import repository as repo
from inventory.domain import UnitStatus
from inventory.service.units import apply_unit_changes
from inventory.settings import InventorySettings

Outcome = Literal["applied", "unchanged", "unknown"]

# Lease events act with an admin's rights (a signed lease is not the landlord's PATCH to
# check); the ledger and events name "admin:leasing" as the actor.
LEASING = Principal(subject="leasing", role=Role.ADMIN)


async def apply_lease_signed(
    session: AsyncSession, settings: InventorySettings, unit_id: str, lease_id: str
) -> Outcome:
    """A signed lease lets the unit: status leased, through the same path as a landlord's
    PATCH (vacancy closed, events, ledger). 'unknown' or 'unchanged' when nothing to do."""
    unit = await repo.get_unit(session, unit_id, for_update=True)
    if unit is None:
        return "unknown"
    if unit.status == UnitStatus.LEASED:
        return "unchanged"
    changes = {"status": UnitStatus.LEASED}
    await apply_unit_changes(session, settings, LEASING, unit, changes, f"lease {lease_id} signed")
    return "applied"


async def apply_lease_ended(
    session: AsyncSession, settings: InventorySettings, unit_id: str, lease_id: str
) -> Outcome:
    """An ended lease makes a leased unit available again, which opens a new vacancy.

    A unit no longer leased (the landlord took it off the market meanwhile) stays as it is.
    """
    unit = await repo.get_unit(session, unit_id, for_update=True)
    if unit is None:
        return "unknown"
    if unit.status != UnitStatus.LEASED:
        return "unchanged"
    changes = {"status": UnitStatus.AVAILABLE}
    await apply_unit_changes(session, settings, LEASING, unit, changes, f"lease {lease_id} ended")
    return "applied"
