"""Inventory: the unit search, units and sites."""

from __future__ import annotations

import asyncio
import time
import weakref

import httpx

from portal.clients.base import API_PAGE_MAX, Params, Upstreams, get, segment
from portal.schemas import SitePage, SurfaceHistory, SurfaceReport, Unit, UnitPage


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


#: How long the board's map reuses the sites list: a landlord's new coordinates show within
#: this many seconds, and under load one listing serves every board view of that window
#: instead of two more inventory calls per view (docs/benchmarks.md, section 8).
MAP_SITES_TTL_S = 2.0
# One entry per inventory client (i.e. per app): (monotonic expiry, sites), and a lock so that
# concurrent board views wait for one listing rather than each starting its own.
_map_sites: weakref.WeakKeyDictionary[httpx.AsyncClient, tuple[float, SitePage]] = (
    weakref.WeakKeyDictionary()
)
_map_locks: weakref.WeakKeyDictionary[httpx.AsyncClient, asyncio.Lock] = weakref.WeakKeyDictionary()


async def map_sites(upstreams: Upstreams) -> SitePage:
    """`list_sites()` for the board's map, reused for `MAP_SITES_TTL_S` seconds. A failed
    listing is not kept: the next view asks again (and the page says the service is down)."""
    client = upstreams.inventory
    cached = _map_sites.get(client)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    lock = _map_locks.setdefault(client, asyncio.Lock())
    async with lock:
        cached = _map_sites.get(client)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        sites = await list_sites(upstreams)
        _map_sites[client] = (time.monotonic() + MAP_SITES_TTL_S, sites)
        return sites


async def surface_report(upstreams: Upstreams) -> SurfaceReport:
    """Production m² by arrondissement now (public)."""
    return await get(
        "inventory",
        upstreams.inventory,
        "/v1/production-surface",
        SurfaceReport,
        [("by", "arrondissement")],
    )


async def surface_history(upstreams: Upstreams, arrondissement: int | None) -> SurfaceHistory:
    """Production m² day by day, of one arrondissement or of Paris (public): the whole ledger,
    so that the value in force when a period starts is known."""
    params = [("arrondissement", arrondissement)] if arrondissement is not None else []
    return await get(
        "inventory", upstreams.inventory, "/v1/production-surface/history", SurfaceHistory, params
    )
