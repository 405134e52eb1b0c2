"""My offers and leases: an offer (rent, charges, start, expiry) to accept — after a
confirmation, since accepting signs the lease — or to decline, and the leases signed."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from portal import formatting
from portal.clients import UpstreamRefused, leasing
from portal.i18n import babel_locale, gettext
from portal.pages.deps import CsrfDep, UpstreamsDep, UserDep
from portal.rendering import render
from portal.schemas import Lease, Listing, Programme

router = APIRouter(include_in_schema=False)
_ = gettext

PARIS = ZoneInfo("Europe/Paris")
REASON_MAX = 2000
SIGNED = ("active",)
PAST = ("declined", "expired", "withdrawn", "ended", "terminated")


def moment(value: datetime) -> str:
    """A date and time in Paris, for the visitor's locale: 3 décembre 2026, 18:00."""
    return format_datetime(value, "d MMMM y, HH:mm", tzinfo=PARIS, locale=babel_locale())


def lease_status_text(status: str) -> str:
    names = {
        "offered": _("Offer waiting for your answer"),
        "active": _("Signed: current lease"),
        "declined": _("Offer declined"),
        "expired": _("Offer expired unanswered"),
        "withdrawn": _("Offer withdrawn"),
        "ended": _("Lease ended"),
        "terminated": _("Lease terminated early"),
    }
    return names.get(status, status)


def split(leases: list[Lease]) -> tuple[list[Lease], list[Lease], list[Lease]]:
    """(open offers, signed leases, the rest) in the API's order."""
    offers = [x for x in leases if x.status == "offered"]
    signed = [x for x in leases if x.status in SIGNED]
    past = [x for x in leases if x.status not in SIGNED and x.status != "offered"]
    return offers, signed, past


async def _context(upstreams: Any, leases: list[Lease]) -> dict[str, Any]:
    ids = sorted({x.unit_id for x in leases})
    found, catalogue = await asyncio.gather(
        asyncio.gather(*(leasing.get_listing(upstreams, u) for u in ids), return_exceptions=True),
        leasing.get_catalogue(upstreams),
        return_exceptions=True,
    )
    listings: dict[str, Listing] = {}
    if isinstance(found, list):
        listings = {x.unit_id: x for x in found if isinstance(x, Listing)}
    programmes: dict[str, Programme] = {}
    if not isinstance(catalogue, BaseException):
        programmes = {p.id: p for p in catalogue.programmes}
    return {
        "listings": listings,
        "programmes": programmes,
        "moment": moment,
        "lease_status_text": lease_status_text,
    }


async def _offers_page(
    request: Request,
    user: Any,
    upstreams: Any,
    *,
    errors: dict[str, str] | None = None,
    reasons: dict[str, str] | None = None,
    refused: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    page = await leasing.list_leases(upstreams, user.access_token)
    offers, signed, past = split(page.items)
    return render(
        request,
        "offers.html",
        {
            "offers": offers,
            "signed": signed,
            "past": past,
            "errors": errors or {},
            "reasons": reasons or {},
            "refused": refused,
            "done": request.query_params.get("done", ""),
            **(await _context(upstreams, page.items)),
        },
        status=status,
    )


@router.get("/me/offers", response_class=HTMLResponse)
async def my_offers(request: Request, user: UserDep, upstreams: UpstreamsDep) -> HTMLResponse:
    return await _offers_page(request, user, upstreams)


@router.get("/me/offers/{lease_id}/accept", response_class=HTMLResponse)
async def confirm_acceptance(
    lease_id: str, request: Request, user: UserDep, upstreams: UpstreamsDep
) -> Response:
    lease = await leasing.get_lease(upstreams, user.access_token, lease_id)
    if lease.status != "offered":
        return RedirectResponse("/me/offers", status_code=303)
    return render(
        request,
        "offers_accept.html",
        {"lease": lease, **(await _context(upstreams, [lease]))},
    )


@router.post("/me/offers/{lease_id}/accept", response_model=None)
async def accept(
    lease_id: str, request: Request, user: UserDep, upstreams: UpstreamsDep, _csrf: CsrfDep
) -> Response:
    try:
        await leasing.answer_offer(upstreams, user.access_token, lease_id, accept=True)
    except UpstreamRefused as exc:
        if exc.status != 409:
            raise
        # Expired or withdrawn meanwhile: the list shows where it stands now.
        return await _offers_page(request, user, upstreams, refused="gone", status=409)
    return RedirectResponse("/me/offers?done=signed", status_code=303)


@router.post("/me/offers/{lease_id}/decline", response_model=None)
async def decline(
    lease_id: str, request: Request, user: UserDep, upstreams: UpstreamsDep, _csrf: CsrfDep
) -> Response:
    form = await request.form()
    reason = str(form.get("reason") or "").strip()
    message = formatting.too_long(reason, REASON_MAX)
    if message is not None:
        return await _offers_page(
            request, user, upstreams, errors={lease_id: message}, reasons={lease_id: reason},
            status=400,
        )  # fmt: skip
    try:
        await leasing.answer_offer(
            upstreams, user.access_token, lease_id, accept=False, reason=reason or None
        )
    except UpstreamRefused as exc:
        if exc.status != 409:
            raise
        return await _offers_page(request, user, upstreams, refused="gone", status=409)
    return RedirectResponse("/me/offers?done=declined", status_code=303)
