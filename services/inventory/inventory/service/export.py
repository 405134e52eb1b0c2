"""What inventory holds about the caller, as one JSON-ready document (GDPR access, portability).

Inventory keeps no artisan's data: an artisan's document has its kinds, all empty. A landlord's
account (its token's subject is the landlord's id) gets its landlord record, its sites and units,
and the ledger entries recorded with it as the actor; any other account gets the ledger entries
recorded with it as the actor (an admin's or an officer's changes)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlmodel import col, select

from fabkit.auth import Principal, Role
from fabkit.events import utcnow
from inventory.models import Landlord, Site, SurfaceLedgerEntry, Unit
from inventory.service.common import Sessions, actor

SERVICE = "inventory"
KINDS = ("landlord", "sites", "units", "ledger_entries")


def _plain(row: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.model_dump().items():
        out[key] = value.isoformat() if isinstance(value, (datetime, date)) else value
    return out


async def export_for(sessions: Sessions, principal: Principal) -> dict[str, Any]:
    records: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
    async with sessions() as session:
        if principal.role is Role.LANDLORD:
            landlord = await session.get(Landlord, principal.subject)
            if landlord is not None:
                records["landlord"] = [_plain(landlord)]
            sites = await session.exec(
                select(Site).where(Site.landlord_id == principal.subject).order_by(col(Site.id))
            )
            records["sites"] = [_plain(s) for s in sites]
            units = await session.exec(
                select(Unit).where(Unit.landlord_id == principal.subject).order_by(col(Unit.id))
            )
            records["units"] = [_plain(u) for u in units]
        ledger = await session.exec(
            select(SurfaceLedgerEntry)
            .where(SurfaceLedgerEntry.actor == actor(principal))
            .order_by(col(SurfaceLedgerEntry.id))
        )
        records["ledger_entries"] = [_plain(e) for e in ledger]
    return {
        "service": SERVICE,
        "subject": principal.subject,
        "generated_at": utcnow().isoformat(),
        "records": records,
    }
