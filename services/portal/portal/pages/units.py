"""A unit's page: what it is, where, who lets it, what it costs, and the programmes it falls
under with their rules and scoring grid."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from portal.clients import inventory, leasing
from portal.pages.deps import UpstreamsDep
from portal.rendering import render
from portal.schemas import Catalogue, Listing

router = APIRouter(include_in_schema=False)


@router.get("/units/{unit_id}", response_class=HTMLResponse)
async def unit_page(unit_id: str, request: Request, upstreams: UpstreamsDep) -> HTMLResponse:
    # Leasing answers the programmes; a leasing outage leaves the rest of the page readable.
    answers = asyncio.gather(
        leasing.get_listing(upstreams, unit_id),
        leasing.get_catalogue(upstreams),
        return_exceptions=True,
    )
    try:
        unit = await inventory.get_unit(upstreams, unit_id)
    except BaseException:
        answers.cancel()
        raise
    listing, catalogue = await answers
    leasing_down = isinstance(listing, Exception) or isinstance(catalogue, Exception)
    programmes = []
    if isinstance(catalogue, Catalogue):
        ids = listing.programme_ids if isinstance(listing, Listing) else None
        programmes = catalogue.covering(unit.site.kind, ids)
    return render(
        request,
        "unit.html",
        {
            "unit": unit,
            "listing": listing if isinstance(listing, Listing) else None,
            "programmes": programmes,
            "leasing_down": leasing_down,
        },
    )
