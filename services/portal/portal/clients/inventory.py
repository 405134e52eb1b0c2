"""Inventory: the unit search, units and sites."""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import Any

import httpx

from portal.clients.base import (
    API_PAGE_MAX,
    Params,
    UpstreamRefused,
    Upstreams,
    document,
    get,
    request,
    segment,
)
from portal.schemas import (
    Compensation,
    ImportReport,
    OpenDataCatalogue,
    OwnSite,
    OwnSitePage,
    OwnUnit,
    OwnUnitPage,
    Project,
    ProjectPage,
    SitePage,
    SurfaceBalance,
    SurfaceFlags,
    SurfaceHistory,
    SurfaceReport,
    Unit,
    UnitPage,
)

log = logging.getLogger(__name__)


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
#: For this long after the window a view is given the previous list at once while one listing
#: runs in the background (stale-while-revalidate): no view waits for the refresh, so the map
#: is at most MAP_SITES_TTL_S + MAP_SITES_GRACE_S old. Past that a view waits for a listing.
MAP_SITES_GRACE_S = 2.0
# One entry per inventory client (i.e. per app): (monotonic expiry, sites), a lock so that
# concurrent views wait for one listing rather than each starting its own, and the background
# refresh in flight (kept here so that it is not collected before it ends).
_map_sites: weakref.WeakKeyDictionary[httpx.AsyncClient, tuple[float, SitePage]] = (
    weakref.WeakKeyDictionary()
)
_map_locks: weakref.WeakKeyDictionary[httpx.AsyncClient, asyncio.Lock] = weakref.WeakKeyDictionary()
_refreshing: weakref.WeakKeyDictionary[httpx.AsyncClient, asyncio.Task[SitePage | None]] = (
    weakref.WeakKeyDictionary()
)


async def map_sites(upstreams: Upstreams) -> SitePage:
    """`list_sites()` for the board's map, reused for `MAP_SITES_TTL_S` seconds, then served
    while it is refreshed for up to `MAP_SITES_GRACE_S` more. A failed listing is not kept:
    the next view asks again (and, once the list is too old, the page says the service is
    down)."""
    client = upstreams.inventory
    cached = _map_sites.get(client)
    now = time.monotonic()
    if cached is not None and cached[0] > now:
        return cached[1]
    if cached is not None and cached[0] + MAP_SITES_GRACE_S > now:
        if client not in _refreshing:
            _refreshing[client] = asyncio.ensure_future(_refresh(upstreams))
        return cached[1]
    lock = _map_locks.setdefault(client, asyncio.Lock())
    async with lock:
        cached = _map_sites.get(client)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        return await _list_and_keep(upstreams)


async def _list_and_keep(upstreams: Upstreams) -> SitePage:
    sites = await list_sites(upstreams)
    _map_sites[upstreams.inventory] = (time.monotonic() + MAP_SITES_TTL_S, sites)
    return sites


async def _refresh(upstreams: Upstreams) -> SitePage | None:
    """The background listing of the grace period; a failure is logged (no task is left with
    an exception nobody reads) and never kept: the next view past the window tries again."""
    client = upstreams.inventory
    try:
        async with _map_locks.setdefault(client, asyncio.Lock()):
            return await _list_and_keep(upstreams)
    except Exception as exc:  # the API's refusals, and a client closed by the app's shutdown
        log.warning("the map's sites could not be refreshed: %s", type(exc).__name__)
        return None
    finally:
        _refreshing.pop(client, None)


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


# No net loss: the balance (public), the flags and the officers' writes (their own token) ---


async def surface_balance(upstreams: Upstreams) -> SurfaceBalance:
    """Losses, gains and compensations by arrondissement, month by month, over the whole
    ledger (public)."""
    return await get("inventory", upstreams.inventory, "/v1/surface/balance", SurfaceBalance)


async def surface_flags(upstreams: Upstreams, token: str) -> SurfaceFlags:
    """Uncompensated losses and late compensations (officers and admins)."""
    return await get(
        "inventory", upstreams.inventory, "/v1/surface/flags", SurfaceFlags, token=token
    )


async def list_projects(upstreams: Upstreams, limit: int = 500) -> list[Project]:
    """Every development project, up to `limit` (paged through the API)."""
    items: list[Project] = []
    offset = 0
    while offset < limit:
        page = await get(
            "inventory", upstreams.inventory, "/v1/projects", ProjectPage,
            [("limit", API_PAGE_MAX), ("offset", offset)],
        )  # fmt: skip
        items.extend(page.items)
        offset += API_PAGE_MAX
        if offset >= page.total:
            break
    return items


async def create_project(
    upstreams: Upstreams, token: str, body: dict[str, Any], key: str
) -> Project:
    project = await request(
        "inventory", upstreams.inventory, "POST", "/v1/projects", Project,
        token=token, json=body, headers={"Idempotency-Key": key},
    )  # fmt: skip
    assert project is not None
    return project


async def get_compensation(upstreams: Upstreams, compensation_id: str) -> Compensation:
    path = f"/v1/surface/compensations/{segment(compensation_id)}"
    return await get("inventory", upstreams.inventory, path, Compensation)


async def deliver_compensation(
    upstreams: Upstreams, token: str, compensation_id: str, body: dict[str, Any]
) -> Compensation:
    path = f"/v1/surface/compensations/{segment(compensation_id)}/delivery"
    compensation = await request(
        "inventory", upstreams.inventory, "POST", path, Compensation, token=token, json=body
    )
    assert compensation is not None
    return compensation


async def open_data_catalogue(upstreams: Upstreams) -> OpenDataCatalogue:
    """The open-data files inventory publishes (public)."""
    return await get("inventory", upstreams.inventory, "/v1/open-data", OpenDataCatalogue)


# A landlord's back office: their sites and units, written with their own token -----------


async def list_own_sites(upstreams: Upstreams, landlord_id: str) -> OwnSitePage:
    """The landlord's sites (up to 100: the largest landlord has a few dozen)."""
    params: Params = [("landlord_id", landlord_id), ("limit", API_PAGE_MAX)]
    return await get("inventory", upstreams.inventory, "/v1/sites", OwnSitePage, params)


async def get_own_site(upstreams: Upstreams, site_id: str) -> tuple[OwnSite, str]:
    """A site and its ETag (sent back in If-Match)."""
    seen: dict[str, str] = {}
    site = await request(
        "inventory", upstreams.inventory, "GET", f"/v1/sites/{segment(site_id)}", OwnSite,
        answer_headers=seen,
    )  # fmt: skip
    assert site is not None
    return site, seen.get("etag", "")


async def update_site(
    upstreams: Upstreams, token: str, site_id: str, body: dict[str, Any], etag: str
) -> OwnSite:
    site = await request(
        "inventory", upstreams.inventory, "PATCH", f"/v1/sites/{segment(site_id)}", OwnSite,
        token=token, json=body, headers={"If-Match": etag} if etag else None,
    )  # fmt: skip
    assert site is not None
    return site


async def list_site_units(upstreams: Upstreams, site_id: str) -> OwnUnitPage:
    """Every unit of a site, whatever its status (up to 100), by reference."""
    params: Params = [("site_id", site_id), ("limit", API_PAGE_MAX)]
    page = await get("inventory", upstreams.inventory, "/v1/units", OwnUnitPage, params)
    return OwnUnitPage(items=sorted(page.items, key=lambda u: u.reference), total=page.total)


async def get_own_unit(upstreams: Upstreams, unit_id: str) -> tuple[OwnUnit, str]:
    """A unit and its ETag."""
    seen: dict[str, str] = {}
    unit = await request(
        "inventory", upstreams.inventory, "GET", f"/v1/units/{segment(unit_id)}", OwnUnit,
        answer_headers=seen,
    )  # fmt: skip
    assert unit is not None
    return unit, seen.get("etag", "")


async def create_unit(
    upstreams: Upstreams, token: str, site_id: str, body: dict[str, Any], key: str
) -> OwnUnit:
    unit = await request(
        "inventory", upstreams.inventory, "POST", f"/v1/sites/{segment(site_id)}/units", OwnUnit,
        token=token, json=body, headers={"Idempotency-Key": key},
    )  # fmt: skip
    assert unit is not None
    return unit


async def update_unit(
    upstreams: Upstreams, token: str, unit_id: str, body: dict[str, Any], etag: str
) -> OwnUnit:
    """PATCH with If-Match: a stale ETag is an UpstreamRefused with status 412."""
    unit = await request(
        "inventory", upstreams.inventory, "PATCH", f"/v1/units/{segment(unit_id)}", OwnUnit,
        token=token, json=body, headers={"If-Match": etag} if etag else None,
    )  # fmt: skip
    assert unit is not None
    return unit


async def import_units(
    upstreams: Upstreams, token: str, site_id: str, csv: bytes, *, dry_run: bool, atomic: bool
) -> ImportReport:
    """The import's report; with atomic, a refused file's report comes in the 422 too."""
    params: Params = [("dry_run", str(dry_run).lower()), ("atomic", str(atomic).lower())]
    try:
        report = await request(
            "inventory", upstreams.inventory, "POST",
            f"/v1/sites/{segment(site_id)}/units/import", ImportReport,
            token=token, params=params, content=csv, headers={"Content-Type": "text/csv"},
        )  # fmt: skip
    except UpstreamRefused as exc:
        if exc.status == 422 and "refused" in exc.body and "accepted" in exc.body:
            return ImportReport.model_validate(exc.body)
        raise
    assert report is not None
    return report


# Personal data (GDPR) ------------------------------------------------------------------------


async def export_me(upstreams: Upstreams, token: str) -> dict[str, Any]:
    """GET /v1/me/export: everything inventory holds about the caller, as it sent it."""
    return await document("inventory", upstreams.inventory, "GET", "/v1/me/export", token=token)
