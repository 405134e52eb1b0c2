"""Alerts without an account: the board's filters in words, an e-mail address and a language;
notifications mails a confirmation link (double opt-in) that opens `/alerts/confirm/{token}`,
a page that confirms only when its button is pressed (mail scanners follow links)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from portal import formatting
from portal.clients import UpstreamNotFound, UpstreamRefused, notifications
from portal.criteria import to_criteria
from portal.filters import BoardFilters, parse_filters
from portal.i18n import current_locale, gettext
from portal.pages.deps import CsrfDep, UpstreamsDep
from portal.ratelimit import RateLimit, RateLimited, client_key
from portal.rendering import render

router = APIRouter(include_in_schema=False)

LANGUAGES = ("fr", "en")
# The board's filters an alert keeps (sorting and paging are not criteria).
CRITERIA_FIELDS = (
    "arrondissement", "site_kind", "feature", "trade", "min_surface", "max_surface", "max_rent",
    "min_ceiling_height_m", "min_floor_load_kg_m2", "min_power_kva", "site_id",
)  # fmt: skip
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
EMAIL_MAX = 320
NAME_MAX = 120


def search_name(lines: list[str]) -> str:
    """What the e-mails call the search: its criteria in words, cut to notifications' bound."""
    name = " ; ".join(lines)
    return name if len(name) <= NAME_MAX else name[: NAME_MAX - 1].rstrip() + "…"


@dataclass
class GuestForm:
    """The request form: the board's filters (hidden fields), an address and a language."""

    filters: BoardFilters
    email: str = ""
    language: str = "fr"
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of_items(cls, items: list[tuple[str, str]], *, posted: bool) -> GuestForm:
        _ = gettext
        filters = parse_filters(
            [(k, v) for k, v in items if k in CRITERIA_FIELDS], gettext, formatting.number
        )
        values = dict(items)
        form = cls(
            filters=filters,
            email=values.get("email", "").strip(),
            language=values.get("language", current_locale()),
        )
        if filters.errors:
            form.errors["criteria"] = _(
                "Some filters of this search are not valid: correct them on the board, then "
                "come back with the link “Get e-mail alerts for this search”."
            )
        if posted:
            if not form.email:
                form.errors["email"] = _("Enter the e-mail address the alerts should go to.")
            elif len(form.email) > EMAIL_MAX or not EMAIL_RE.match(form.email):
                form.errors["email"] = _("Enter an e-mail address like name@example.fr.")
            if form.language not in LANGUAGES:
                form.errors["language"] = _("Choose the language of the e-mails from the list.")
        if form.language not in LANGUAGES:
            form.language = "fr"
        return form

    def body(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "criteria": to_criteria(self.filters).criteria,
            "language": self.language,
            "name": search_name(formatting.criteria_words(to_criteria(self.filters).criteria)),
        }


def _form_page(request: Request, form: GuestForm, status: int = 200) -> HTMLResponse:
    saved = to_criteria(form.filters)
    return render(
        request,
        "alerts.html",
        {
            "form": form,
            "filters": form.filters,
            "hidden": [(k, v) for k, v in form.filters.query_items() if k in CRITERIA_FIELDS],
            "words": formatting.criteria_words(saved.criteria) if form.filters.valid else [],
            "left_out": saved.left_out,
            "languages": [("fr", "Français"), ("en", "English")],
        },
        status=status,
    )


def _guest_limit(request: Request) -> RateLimit:
    limit: RateLimit | None = getattr(request.app.state, "guest_alerts_limit", None)
    if limit is None:
        settings = request.app.state.settings
        limit = RateLimit(
            "guest-alerts", settings.guest_alerts_rate_limit, settings.guest_alerts_rate_window_s
        )
        request.app.state.guest_alerts_limit = limit
    return limit


def _refusal(form: GuestForm, exc: UpstreamRefused) -> None:
    _ = gettext
    if exc.status == 429:
        seconds = int(exc.body.get("retry_after_s") or 60)
        if "this address" in exc.detail:
            form.errors["email"] = _(
                "Several confirmation e-mails were already sent to this address within the "
                "hour: open the latest one, or try again in %(num)s minutes."
            ) % {"num": max(1, -(-seconds // 60))}
        else:
            form.errors["email"] = _(
                "Too many requests for alerts are arriving right now: try again in %(num)s seconds."
            ) % {"num": seconds}
    elif "email" in exc.detail:
        form.errors["email"] = _("Enter an e-mail address like name@example.fr.")
    else:
        form.errors["criteria"] = _("The alert service refused this search: %(detail)s") % {
            "detail": exc.detail
        }


@router.get("/alerts", response_class=HTMLResponse)
async def alerts_page(request: Request) -> HTMLResponse:
    form = GuestForm.of_items(list(request.query_params.multi_items()), posted=False)
    return _form_page(request, form, 200 if form.filters.valid else 400)


@router.post("/alerts", response_class=HTMLResponse)
async def ask_alerts(request: Request, upstreams: UpstreamsDep, _: CsrfDep) -> Response:
    form = GuestForm.of_items(
        [(k, v) for k, v in (await request.form()).multi_items() if isinstance(v, str)],
        posted=True,
    )
    if form.errors:
        return _form_page(request, form, 400)
    retry_after = await _guest_limit(request).check(client_key(request))
    if retry_after is not None:
        raise RateLimited(retry_after)
    try:
        await notifications.ask_guest_alerts(upstreams, form.body())
    except UpstreamRefused as exc:
        _refusal(form, exc)
        page = _form_page(request, form, 429 if exc.status == 429 else 400)
        if exc.status == 429:
            page.headers["Retry-After"] = str(int(exc.body.get("retry_after_s") or 60))
        return page
    return RedirectResponse("/alerts/sent", status_code=303)


@router.get("/alerts/sent", response_class=HTMLResponse)
async def alerts_sent(request: Request) -> HTMLResponse:
    return render(request, "alerts_sent.html")


def _link_problem(request: Request, status: int, reason: str) -> HTMLResponse:
    page = render(request, "alerts_link.html", {"reason": reason}, status=status)
    page.headers["Cache-Control"] = "no-store"
    return page


@router.get("/alerts/confirm/{token}", response_class=HTMLResponse)
async def confirm_page(request: Request, token: str, upstreams: UpstreamsDep) -> HTMLResponse:
    # Reading this page changes nothing: only its button confirms.
    try:
        pending = await notifications.read_guest_confirmation(upstreams, token)
    except UpstreamNotFound:
        return _link_problem(request, 404, "invalid")
    except UpstreamRefused as exc:
        return _link_problem(request, exc.status, str(exc.body.get("reason") or "invalid"))
    page = render(
        request,
        "alerts_confirm.html",
        {"pending": pending, "words": formatting.criteria_words(pending.criteria), "token": token},
    )
    page.headers["Cache-Control"] = "no-store"
    return page


@router.post("/alerts/confirm/{token}", response_class=HTMLResponse)
async def confirm_alerts(
    request: Request, token: str, upstreams: UpstreamsDep, _: CsrfDep
) -> Response:
    try:
        confirmed = await notifications.confirm_guest_alerts(upstreams, token)
    except UpstreamNotFound:
        return _link_problem(request, 404, "invalid")
    except UpstreamRefused as exc:
        return _link_problem(request, exc.status, str(exc.body.get("reason") or "invalid"))
    page = render(
        request,
        "alerts_confirmed.html",
        {"confirmed": confirmed, "words": formatting.criteria_words(confirmed.criteria)},
    )
    page.headers["Cache-Control"] = "no-store"
    return page
