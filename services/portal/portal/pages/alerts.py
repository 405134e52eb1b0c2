"""Alerts and login: the places where the logged-in part of the portal will slot in.

Guest e-mail alerts need a guest subscriber in notifications (double opt-in), and login needs
the identity provider: until they exist these pages say so instead of pretending."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from portal.filters import parse_filters
from portal.i18n import gettext
from portal.rendering import render

router = APIRouter(include_in_schema=False)


@router.get("/alerts", response_class=HTMLResponse)
async def alerts_page(request: Request) -> HTMLResponse:
    filters = parse_filters(request.query_params.multi_items(), gettext)
    return render(request, "alerts.html", {"filters": filters})
