"""My saved searches: the list, a new search from the board's filters, edit, pause and resume,
delete with a confirmation step. A webhook's signing secret is shown once, in the answer to the
form that made it. Every call goes to notifications with the person's own token."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from portal import clients, formatting
from portal.clients import notifications
from portal.criteria import Saved, from_criteria, to_criteria
from portal.filters import ARRONDISSEMENTS, FEATURES, SITE_KINDS, BoardFilters, parse_filters
from portal.formatting import KNOWN_TRADES
from portal.i18n import gettext
from portal.pages import deliveries
from portal.pages.deps import CsrfDep, UpstreamsDep, UserDep
from portal.rendering import render
from portal.schemas import Delivery, Subscription, SubscriptionCreated

router = APIRouter(include_in_schema=False)

CHANNELS = ("feed", "email", "webhook")
FREQUENCIES = ("instant", "daily")
NAME_MAX = 120
# The board's filters a search form carries (sorting and paging are not criteria).
CRITERIA_FIELDS = (
    "arrondissement", "site_kind", "feature", "trade", "min_surface", "max_surface", "max_rent",
    "min_ceiling_height_m", "min_floor_load_kg_m2", "min_power_kva", "site_id",
)  # fmt: skip
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_API_FIELD = re.compile(r"body\.([a-z_]+)(?:\.(\d+))?(?:\.([a-z0-9_]+))?(?:\.([a-z0-9_]+))?")


def board_link(criteria: dict[str, Any]) -> str:
    """The board showing what a saved search alerts on."""
    query = from_criteria(criteria).filters.query()
    return f"/?{query}" if query else "/"


@dataclass
class SearchForm:
    """What the search form holds, read from the board's query or from a posted form."""

    name: str = ""
    channels: list[str] = field(default_factory=lambda: ["feed"])
    email_address: str = ""
    webhook_url: str = ""
    frequency: str = "instant"
    filters: BoardFilters = field(default_factory=BoardFilters)
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of_subscription(cls, sub: Subscription) -> SearchForm:
        filters = from_criteria(sub.criteria).filters
        filters.raw = {n: formatting.number(v) for n, v in filters.numbers.items()}
        webhook, email = sub.channel("webhook"), sub.channel("email")
        return cls(
            name=sub.name,
            channels=[c.type for c in sub.channels if c.type in CHANNELS and c.enabled],
            email_address=(email.address or "") if email else "",
            webhook_url=(webhook.url or "") if webhook else "",
            frequency=sub.frequency if sub.frequency in FREQUENCIES else "instant",
            filters=filters,
        )

    @classmethod
    def of_form(cls, items: list[tuple[str, str]]) -> SearchForm:
        _ = gettext
        values: dict[str, list[str]] = {}
        for key, value in items:
            values.setdefault(key, []).append(value)

        def first(name: str) -> str:
            return (values.get(name) or [""])[0].strip()

        filters = parse_filters(
            [(k, v) for k, v in items if k in CRITERIA_FIELDS], gettext, formatting.number
        )
        form = cls(
            name=first("name"),
            channels=[c for c in CHANNELS if c in values.get("channel", [])],
            email_address=first("email_address"),
            webhook_url=first("webhook_url"),
            frequency=first("frequency") or "instant",
            filters=filters,
            errors=dict(filters.errors),
        )
        if not form.name:
            form.errors["name"] = _("Give the search a name, for example “Woodwork, east Paris”.")
        elif len(form.name) > NAME_MAX:
            form.errors["name"] = _("Keep the name under %(num)s characters.") % {"num": NAME_MAX}
        if not form.channels:
            form.errors["channel"] = _("Choose at least one way to receive the alerts.")
        if "webhook" in form.channels:
            url = form.webhook_url
            if not url:
                form.errors["webhook_url"] = _("Enter the address your alerts are posted to.")
            elif not re.match(r"^https?://\S{3,}$", url, re.IGNORECASE) or len(url) > 2000:
                form.errors["webhook_url"] = _(
                    "Enter a web address starting with https:// (or http://)."
                )
        email = form.email_address
        if "email" in form.channels and email and not EMAIL_RE.match(email):
            form.errors["email_address"] = _(
                "Enter an e-mail address like name@example.fr, or leave it empty."
            )
        if form.frequency not in FREQUENCIES:
            form.errors["frequency"] = _("Choose how often from the list.")
        return form

    def channels_json(self) -> list[dict[str, Any]]:
        made: list[dict[str, Any]] = []
        for kind in self.channels:
            if kind == "webhook":
                made.append({"type": "webhook", "url": self.webhook_url})
            elif kind == "email":
                made.append(
                    {
                        "type": "email",
                        **({"address": self.email_address} if self.email_address else {}),
                    }
                )
            else:
                made.append({"type": "feed"})
        return made

    def body(self, saved: Saved) -> dict[str, Any]:
        return {
            "name": self.name,
            "criteria": saved.criteria,
            "channels": self.channels_json(),
            "frequency": self.frequency,
        }


def refusal_field(detail: str) -> str:
    """The form field an API refusal is about (its problem detail names the body field)."""
    match = _API_FIELD.search(detail)
    if match is None:
        return "form"
    top, _, inner, leaf = match.groups()
    if top == "name":
        return "name"
    if top == "channels":
        names = {inner, leaf}
        if "url" in names or "webhook" in names:
            return "webhook_url"
        if "address" in names or "email" in names:
            return "email_address"
        return "channel"
    if top == "criteria" and inner:
        from portal.criteria import BOARD_OF_CRITERION

        board = BOARD_OF_CRITERION.get(inner) or {
            "arrondissements": "arrondissement",
            "site_kinds": "site_kind",
            "trades": "trade",
            "features": "feature",
        }.get(inner)
        return board or "form"
    return "form"


def refusal_message(detail: str, field_name: str) -> str:
    _ = gettext
    if field_name == "webhook_url":
        return _("The alert service refused this address: %(detail)s") % {"detail": detail}
    return _("The alert service refused the search: %(detail)s") % {"detail": detail}


def _form_page(
    request: Request,
    form: SearchForm,
    *,
    action: str,
    sub: Subscription | None = None,
    status: int = 200,
) -> HTMLResponse:
    trades = list(KNOWN_TRADES)
    if form.filters.trade and form.filters.trade not in trades:
        trades.append(form.filters.trade)
    return render(
        request,
        "searches_form.html",
        {
            "form": form,
            "filters": form.filters,
            "action": action,
            "sub": sub,
            "arrondissements": ARRONDISSEMENTS,
            "site_kinds": SITE_KINDS,
            "features": FEATURES,
            "trades": trades,
            "channels": CHANNELS,
            "frequencies": FREQUENCIES,
        },
        status=status,
    )


def _done(location: str, done: str) -> RedirectResponse:
    return RedirectResponse(f"{location}?{urlencode({'done': done})}", status_code=303)


def _secret_page(request: Request, sub: SubscriptionCreated, created: bool) -> HTMLResponse:
    page = render(request, "searches_secret.html", {"sub": sub, "created": created})
    # The secret is in this answer only: never cached, never kept.
    page.headers["Cache-Control"] = "no-store"
    return page


@router.get("/me/searches", response_class=HTMLResponse)
async def my_searches(request: Request, user: UserDep, upstreams: UpstreamsDep) -> HTMLResponse:
    subs = await notifications.list_subscriptions(upstreams, user.access_token)

    async def last(sub: Subscription) -> Delivery | None:
        page = await notifications.subscription_deliveries(
            upstreams, user.access_token, sub.id, 1, 0
        )
        return page.items[0] if page.items else None

    lasts = await asyncio.gather(*(last(s) for s in subs))
    rows = [
        {
            "sub": s,
            "words": formatting.criteria_words(s.criteria),
            "board": board_link(s.criteria),
            "last": d,
        }
        for s, d in zip(subs, lasts, strict=True)
    ]
    return render(
        request,
        "searches.html",
        {"rows": rows, "done": request.query_params.get("done"), **deliveries.words()},
    )


@router.get("/me/searches/new", response_class=HTMLResponse)
async def new_search(request: Request, user: UserDep) -> HTMLResponse:
    filters = parse_filters(
        [(k, v) for k, v in request.query_params.multi_items() if k in CRITERIA_FIELDS],
        gettext,
        formatting.number,
    )
    form = SearchForm(filters=filters, errors=dict(filters.errors), email_address=user.email or "")
    return _form_page(
        request, form, action="/me/searches/new", status=200 if filters.valid else 400
    )


@router.post("/me/searches/new", response_class=HTMLResponse)
async def create_search(
    request: Request, user: UserDep, upstreams: UpstreamsDep, _: CsrfDep
) -> Response:
    form = SearchForm.of_form(await _items(request))
    if form.errors:
        return _form_page(request, form, action="/me/searches/new", status=400)
    saved = to_criteria(form.filters)
    try:
        created = await notifications.create_subscription(
            upstreams, user.access_token, form.body(saved)
        )
    except clients.UpstreamRefused as exc:
        name = refusal_field(exc.detail)
        form.errors[name] = refusal_message(exc.detail, name)
        return _form_page(request, form, action="/me/searches/new", status=400)
    if created.webhook_secret:
        return _secret_page(request, created, created=True)
    return _done("/me/searches", "created")


@router.get("/me/searches/{subscription_id}/edit", response_class=HTMLResponse)
async def edit_search(
    request: Request, subscription_id: str, user: UserDep, upstreams: UpstreamsDep
) -> HTMLResponse:
    sub = await notifications.get_subscription(upstreams, user.access_token, subscription_id)
    form = SearchForm.of_subscription(sub)
    return _form_page(request, form, action=f"/me/searches/{sub.id}/edit", sub=sub)


@router.post("/me/searches/{subscription_id}/edit", response_class=HTMLResponse)
async def update_search(
    request: Request, subscription_id: str, user: UserDep, upstreams: UpstreamsDep, _: CsrfDep
) -> Response:
    sub = await notifications.get_subscription(upstreams, user.access_token, subscription_id)
    form = SearchForm.of_form(await _items(request))
    action = f"/me/searches/{sub.id}/edit"
    if form.errors:
        return _form_page(request, form, action=action, sub=sub, status=400)
    try:
        changed = await notifications.update_subscription(
            upstreams, user.access_token, sub.id, form.body(to_criteria(form.filters))
        )
    except clients.UpstreamRefused as exc:
        name = refusal_field(exc.detail)
        form.errors[name] = refusal_message(exc.detail, name)
        return _form_page(request, form, action=action, sub=sub, status=400)
    if changed.webhook_secret:
        return _secret_page(request, changed, created=False)
    return _done("/me/searches", "changed")


@router.post("/me/searches/{subscription_id}/pause")
async def pause_search(
    subscription_id: str, user: UserDep, upstreams: UpstreamsDep, _: CsrfDep
) -> Response:
    await notifications.set_paused(upstreams, user.access_token, subscription_id, True)
    return _done("/me/searches", "paused")


@router.post("/me/searches/{subscription_id}/resume")
async def resume_search(
    subscription_id: str, user: UserDep, upstreams: UpstreamsDep, _: CsrfDep
) -> Response:
    await notifications.set_paused(upstreams, user.access_token, subscription_id, False)
    return _done("/me/searches", "resumed")


@router.get("/me/searches/{subscription_id}/delete", response_class=HTMLResponse)
async def confirm_delete(
    request: Request, subscription_id: str, user: UserDep, upstreams: UpstreamsDep
) -> HTMLResponse:
    sub = await notifications.get_subscription(upstreams, user.access_token, subscription_id)
    return render(
        request,
        "searches_delete.html",
        {"sub": sub, "words": formatting.criteria_words(sub.criteria)},
    )


@router.post("/me/searches/{subscription_id}/delete")
async def delete_search(
    subscription_id: str, user: UserDep, upstreams: UpstreamsDep, _: CsrfDep
) -> Response:
    await notifications.delete_subscription(upstreams, user.access_token, subscription_id)
    return _done("/me/searches", "deleted")


async def _items(request: Request) -> list[tuple[str, str]]:
    form = await request.form()
    return [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
