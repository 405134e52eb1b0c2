"""Inventory: the unit search, units and sites."""

from __future__ import annotations

from portal.clients.base import API_PAGE_MAX, Params, Upstreams, get, segment
from portal.schemas import SitePage, Unit, UnitPage


async def search_units(upstreams: Upstreams, params: Params, limit: int, offset: int) -> UnitPage:
    """One page of inventory's unit search."""
    query = [*params, ("limit", limit), ("offset", offset)]
    return await get("inventory", upstreams.inventory, "/v1/units", UnitPage, query)


async def get_unit(upstreams: Upstreams, unit_id: str) -> Unit:
    return await get("inventory", upstreams.inventory, f"/v1/units/{segment(unit_id)}", Unit)


async def list_sites(upstreams: Upstreams, limit: int = 500) -> SitePage:
    """The sites, up to `limit` (paged through the API)."""
    items = []
    total = 0
    offset = 0
    while offset < limit:
        page = await get(
            "inventory",
            upstreams.inventory,
            "/v1/sites",
            SitePage,
            [("limit", API_PAGE_MAX), ("offset", offset)],
        )
        items.extend(page.items)
        total = page.total
        offset += API_PAGE_MAX
        if offset >= total:
            break
    return SitePage(items=items, total=total)
