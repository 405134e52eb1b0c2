"""My delivery log: what was sent for my searches (all of them, or one), when, on which channel,
with its status in words, attempts, last error and next attempt; "send again" for a dead one
(notifications' redeliver: the same webhook-id, fresh attempts)."""

from __future__ import annotations

import math
from datetime import datetime
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from portal.clients import notifications
from portal.i18n import babel_locale, gettext
from portal.pages.deps import CsrfDep, UpstreamsDep, UserDep
from portal.rendering import render
from portal.schemas import DeliveryPage, Subscription

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 20
MAX_PAGE = 10_000 // PAGE_SIZE
PARIS = ZoneInfo("Europe/Paris")
STATUSES = ("pending", "sending", "delivered", "dead", "cancelled", "batched")


def delivery_status(code: str) -> str:
    """A delivery's status as a person reads it."""
    _ = gettext
    return {
        "pending": _("Waiting to be sent (or to be tried again)"),
        "sending": _("Being sent"),
        "delivered": _("Delivered"),
        "dead": _("Failed: no more attempts"),
        "cancelled": _("Not sent: the search was paused or deleted"),
        "batched": _("Sent in the daily digest"),
    }.get(code, code)


def channel_name(code: str) -> str:
    _ = gettext
    return {"feed": _("Alert feed"), "email": _("E-mail"), "webhook": _("Webhook")}.get(code, code)


def kind_name(code: str) -> str:
    _ = gettext
    return {
        "vacancy_alert": _("Vacancy alert"),
        "application_decided": _("Decision on an application"),
        "lease_offered": _("Lease offer"),
        "test": _("Test message"),
    }.get(code, code)


def search_status(sub: Subscription) -> str:
    """A saved search's status in words; a search the platform switched off says why."""
    _ = gettext
    if sub.status == "active":
        return _("Active")
    if sub.status == "paused":
        return _("Paused: no alerts until you resume it")
    if sub.status == "disabled":
        if sub.disabled_reason:
            return _("Switched off by the platform: %(reason)s") % {"reason": sub.disabled_reason}
        return _("Switched off by the platform")
    return sub.status


def moment(value: datetime | None) -> str:
    """A date and time in Paris, for the locale (1 déc. 2026, 23:40)."""
    if value is None:
        return "—"
    return format_datetime(value, "d MMM y, HH:mm", tzinfo=PARIS, locale=babel_locale())


def words() -> dict[str, object]:
    """The namers the delivery templates use."""
    return {
        "delivery_status": delivery_status,
        "channel_name": channel_name,
        "kind_name": kind_name,
        "search_status": search_status,
        "moment": moment,
    }


def _page_number(request: Request) -> int:
    text = request.query_params.get("page", "1")
    return int(text) if text.isdigit() and 1 <= int(text) <= MAX_PAGE else 1


@router.get("/me/deliveries", response_class=HTMLResponse)
async def my_deliveries(request: Request, user: UserDep, upstreams: UpstreamsDep) -> HTMLResponse:
    page = _page_number(request)
    status = request.query_params.get("status")
    status = status if status in STATUSES else None
    found = await notifications.my_deliveries(
        upstreams, user.access_token, PAGE_SIZE, (page - 1) * PAGE_SIZE, status
    )
    subs = {s.id: s for s in await notifications.list_subscriptions(upstreams, user.access_token)}
    return _log(request, found, page, subs, None, status)


@router.get("/me/searches/{subscription_id}/deliveries", response_class=HTMLResponse)
async def search_deliveries(
    request: Request, subscription_id: str, user: UserDep, upstreams: UpstreamsDep
) -> HTMLResponse:
    page = _page_number(request)
    sub = await notifications.get_subscription(upstreams, user.access_token, subscription_id)
    found = await notifications.subscription_deliveries(
        upstreams, user.access_token, sub.id, PAGE_SIZE, (page - 1) * PAGE_SIZE
    )
    return _log(request, found, page, {sub.id: sub}, sub, None)


def _log(
    request: Request,
    found: DeliveryPage,
    page: int,
    subs: dict[str, Subscription],
    sub: Subscription | None,
    status: str | None,
) -> HTMLResponse:
    pages = max(1, math.ceil(found.total / PAGE_SIZE))
    here = request.url.path

    def link(n: int) -> str:
        query = [("page", str(n))] + ([("status", status)] if status else [])
        return f"{here}?{urlencode(query)}"

    return render(
        request,
        "deliveries.html",
        {
            "deliveries": found.items,
            "total": found.total,
            "page": page,
            "pages": pages,
            "link": link,
            "subs": subs,
            "sub": sub,
            "status": status,
            "statuses": STATUSES,
            "here": here,
            "done": request.query_params.get("done"),
            **words(),
        },
    )


@router.post("/me/deliveries/{delivery_id}/redeliver")
async def send_again(
    request: Request, delivery_id: str, user: UserDep, upstreams: UpstreamsDep, _: CsrfDep
) -> Response:
    await notifications.redeliver(upstreams, user.access_token, delivery_id)
    form = await request.form()
    back = form.get("back")
    # Only back to one of the log's own pages (never an address from outside).
    if not isinstance(back, str) or not (
        back == "/me/deliveries"
        or (back.startswith("/me/searches/") and back.endswith("/deliveries") and ".." not in back)
    ):
        back = "/me/deliveries"
    return RedirectResponse(f"{back}?{urlencode({'done': 'redelivered'})}", status_code=303)
