"""The vacancy board: every open vacancy, filtered from the URL, with a map of the sites."""

from __future__ import annotations

import asyncio
import math

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from portal import clients, formatting
from portal.clients import Upstreams, inventory
from portal.filters import (
    ARRONDISSEMENTS,
    FEATURES,
    PAGE_SIZE,
    SITE_KINDS,
    SORTS,
    parse_filters,
)
from portal.formatting import KNOWN_TRADES
from portal.i18n import gettext
from portal.rendering import render
from portal.schemas import Site, Unit

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
async def board(request: Request) -> HTMLResponse:
    # The app's clients read here rather than through `UpstreamsDep`: a plain `def` dependency
    # runs in FastAPI's thread pool, a hand-off to a worker thread and back on every view
    # (about a tenth of the board's CPU under load; docs/benchmarks.md, section 8).
    upstreams: Upstreams = request.app.state.upstreams
    filters = parse_filters(request.query_params.multi_items(), gettext, formatting.number)
    units: list[Unit] = []
    total = 0
    refused: str | None = None
    sites_task = asyncio.ensure_future(inventory.map_sites(upstreams))
    try:
        if filters.valid:
            try:
                found = await inventory.search_units(
                    upstreams, filters.api_params(), PAGE_SIZE, filters.offset
                )
                units, total = found.items, found.total
            except clients.UpstreamRefused as exc:
                refused = exc.detail
        sites = (await sites_task).items
    finally:
        sites_task.cancel()
    mapped = [s for s in sites if s.latitude is not None and s.longitude is not None]
    pages = max(1, math.ceil(total / PAGE_SIZE))
    chosen_site: Site | None = next((s for s in sites if s.id == filters.site_id), None)
    trades = list(KNOWN_TRADES)
    if filters.trade and filters.trade not in trades:
        trades.append(filters.trade)
    return render(
        request,
        "board.html",
        {
            "filters": filters,
            "units": units,
            "total": total,
            "refused": refused,
            "page": filters.page,
            "pages": pages,
            "page_size": PAGE_SIZE,
            "mapped_sites": mapped,
            "chosen_site": chosen_site,
            "arrondissements": ARRONDISSEMENTS,
            "site_kinds": SITE_KINDS,
            "features": FEATURES,
            "sorts": SORTS,
            "trades": trades,
        },
        # A search that cannot run is the visitor's to fix: 400, with the messages.
        status=200 if filters.valid else 400,
    )
