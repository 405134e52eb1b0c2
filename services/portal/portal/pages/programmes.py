"""Every allocation programme with its rules and scoring grid, as leasing publishes them."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from portal.clients import leasing
from portal.pages.deps import UpstreamsDep
from portal.rendering import render

router = APIRouter(include_in_schema=False)


@router.get("/programmes", response_class=HTMLResponse)
async def programmes_page(request: Request, upstreams: UpstreamsDep) -> HTMLResponse:
    catalogue = await leasing.get_catalogue(upstreams)
    return render(request, "programmes.html", {"programmes": catalogue.programmes})
