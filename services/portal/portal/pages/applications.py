"""My applications: where each stands (status, points, rank, date), every decision taken on
it with its date and reason, and withdrawing one (with a confirmation) while it is open."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from portal import formatting
from portal.clients import UpstreamRefused, leasing
from portal.i18n import gettext
from portal.pages.deps import CsrfDep, UpstreamsDep, UserDep
from portal.pages.offers import moment
from portal.pages.officer import call_status_text, outcome_text
from portal.rendering import render
from portal.schemas import Appeal, Application, CallResults, Catalogue, Listing, Programme

router = APIRouter(include_in_schema=False)
_ = gettext

PAGE_SIZE = 20
REASON_MAX = 2000
#: Leasing's bounds on an appeal's text (AppealIn.grounds).
GROUNDS_MIN = 20
GROUNDS_MAX = 5000


def status_text(status: str) -> str:
    """An application's status in words."""
    names = {
        "draft": _("Draft: not submitted yet"),
        "submitted": _("Submitted: under review"),
        "offered": _("Offer made: answer it"),
        "accepted": _("Offer accepted: lease signed"),
        "declined": _("Offer declined"),
        "expired": _("Offer expired unanswered"),
        "rejected": _("Turned down"),
        "withdrawn": _("Withdrawn"),
        "closed": _("Closed: the vacancy ended"),
    }
    return names.get(status, status)


def status_tone(status: str) -> str:
    """The tag's colour family: still open, good news, or over."""
    if status in ("draft", "submitted", "offered"):
        return "open"
    return "good" if status == "accepted" else "closed"


def decision_text(decision: str) -> str:
    names = {
        "offered": _("The landlord offered you a lease"),
        "rejected": _("The landlord turned the application down"),
        "offer_accepted": _("You accepted the offer: the lease is signed"),
        "offer_declined": _("You declined the offer"),
        "offer_expired": _("The offer expired unanswered"),
        "withdrawn": _("You withdrew the application"),
        "closed": _("Closed: the workshop was let or taken off the market"),
    }
    return names.get(decision, decision)


def actor_text(role: str) -> str:
    names = {
        "artisan": _("you"),
        "landlord": _("the landlord"),
        "admin": _("an administrator"),
        "system": _("the platform"),
    }
    return names.get(role, role)


def rank_text(rank: int | None, among: int | None) -> str:
    """The rank as people say it: "3e sur 7", "3rd of 7"; empty when it is not ranked."""
    if rank is None or among is None:
        return ""
    return _("%(nth)s of %(total)s") % {
        "nth": formatting.ordinal_arrondissement(rank),
        "total": formatting.number(among),
    }


WORDS = {
    "status_text": status_text,
    "status_tone": status_tone,
    "decision_text": decision_text,
    "actor_text": actor_text,
    "rank_text": rank_text,
    "call_status_words": call_status_text,
    "outcome_text": outcome_text,
    "moment": moment,
}


async def _listings(upstreams: Any, unit_ids: set[str]) -> dict[str, Listing]:
    """Leasing's listing of each unit (site, reference), those it knows."""
    found = await asyncio.gather(
        *(leasing.get_listing(upstreams, u) for u in sorted(unit_ids)), return_exceptions=True
    )
    return {x.unit_id: x for x in found if isinstance(x, Listing)}


async def _programmes(upstreams: Any) -> dict[str, Programme]:
    try:
        catalogue: Catalogue = await leasing.get_catalogue(upstreams)
    except Exception:  # names only: the page shows ids without them
        return {}
    return {p.id: p for p in catalogue.programmes}


@router.get("/me/applications", response_class=HTMLResponse)
async def my_applications(request: Request, user: UserDep, upstreams: UpstreamsDep) -> HTMLResponse:
    try:
        page = max(1, int(request.query_params.get("page", "1")))
    except ValueError:
        page = 1
    found, programmes = await asyncio.gather(
        leasing.list_applications(
            upstreams, user.access_token, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
        ),
        _programmes(upstreams),
    )
    listings = await _listings(upstreams, {a.unit_id for a in found.items})
    return render(
        request,
        "applications.html",
        {
            "applications": found.items,
            "total": found.total,
            "page": page,
            "pages": max(1, math.ceil(found.total / PAGE_SIZE)),
            "listings": listings,
            "programmes": programmes,
            **WORDS,
        },
    )


async def _detail(
    request: Request,
    user: Any,
    upstreams: Any,
    application_id: str,
    *,
    confirm: bool = False,
    errors: dict[str, str] | None = None,
    reason: str = "",
    refused: str | None = None,
    grounds: str = "",
    appeal_refused: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    application: Application = await leasing.get_application(
        upstreams, user.access_token, application_id
    )
    listing, programmes, (results, appeals) = await asyncio.gather(
        leasing.get_listing(upstreams, application.unit_id),
        _programmes(upstreams),
        _published(upstreams, user.access_token, application),
    )
    return render(
        request,
        "applications_detail.html",
        {
            "application": application,
            "listing": listing,
            "programme": programmes.get(application.programme_id),
            "confirm": confirm and application.withdrawable,
            "errors": errors or {},
            "reason": reason,
            "refused": refused,
            "done": request.query_params.get("done", ""),
            "results": results,
            "appeals": appeals,
            "appeal": appeal_standing(application, results, appeals, now()),
            "grounds": grounds,
            "appeal_refused": appeal_refused,
            "grounds_max": GROUNDS_MAX,
            **WORDS,
        },
        status=status,
    )


async def _published(
    upstreams: Any, token: str, application: Application
) -> tuple[CallResults | None, list[Appeal]]:
    """The call's published results and my appeals against them, once they are out."""
    call = application.call
    if call is None or call.status != "results_published":
        return None, []
    return await asyncio.gather(
        leasing.call_results(upstreams, call.call_id),
        leasing.my_appeals(upstreams, token, call.call_id),
    )


def now() -> datetime:
    return datetime.now(UTC)


def appeal_standing(
    application: Application, results: CallResults | None, appeals: list[Appeal], at: datetime
) -> str:
    """Where my appeal stands: "none" (results not out, or I was not ranked), "filed" (I
    appealed: it and its answer are shown), "open" (the form, while the period runs) or
    "ended" (the period is over)."""
    mine = [a for a in appeals if a.application_id == application.id]
    if mine:
        return "filed"
    if results is None or application.call is None or application.call.rank is None:
        return "none"
    return "open" if at < results.appeals_close_at else "ended"


def check_grounds(grounds: str) -> str | None:
    """The message beside the appeal's text when leasing would refuse it, or None."""
    if len(grounds) < GROUNDS_MIN:
        return _(
            "Write at least %(num)s characters: say what you contest in the results and why."
        ) % {"num": GROUNDS_MIN}
    return formatting.too_long(grounds, GROUNDS_MAX)


@router.get("/me/applications/{application_id}", response_class=HTMLResponse)
async def my_application(
    application_id: str, request: Request, user: UserDep, upstreams: UpstreamsDep
) -> HTMLResponse:
    return await _detail(request, user, upstreams, application_id)


@router.get("/me/applications/{application_id}/withdraw", response_class=HTMLResponse)
async def confirm_withdrawal(
    application_id: str, request: Request, user: UserDep, upstreams: UpstreamsDep
) -> HTMLResponse:
    return await _detail(request, user, upstreams, application_id, confirm=True)


@router.post("/me/applications/{application_id}/withdraw", response_model=None)
async def withdraw(
    application_id: str, request: Request, user: UserDep, upstreams: UpstreamsDep, _csrf: CsrfDep
) -> Response:
    form = await request.form()
    reason = str(form.get("reason") or "").strip()
    message = formatting.too_long(reason, REASON_MAX)
    if message is not None:
        return await _detail(
            request, user, upstreams, application_id, confirm=True,
            errors={"reason": message}, reason=reason, status=400,
        )  # fmt: skip
    try:
        await leasing.withdraw_application(
            upstreams, user.access_token, application_id, reason or None
        )
    except UpstreamRefused as exc:
        if exc.status != 409:
            raise
        # Decided meanwhile (an offer accepted in another tab, the vacancy closed): say so.
        return await _detail(
            request, user, upstreams, application_id, refused="decided", status=409
        )
    return RedirectResponse(f"/me/applications/{application_id}?done=withdrawn", status_code=303)


@router.post("/me/applications/{application_id}/appeal", response_model=None)
async def appeal(
    application_id: str, request: Request, user: UserDep, upstreams: UpstreamsDep, _csrf: CsrfDep
) -> Response:
    form = await request.form()
    grounds = str(form.get("grounds") or "").strip()
    message = check_grounds(grounds)
    if message is not None:
        return await _detail(
            request, user, upstreams, application_id,
            errors={"grounds": message}, grounds=grounds, status=400,
        )  # fmt: skip
    try:
        await leasing.file_appeal(upstreams, user.access_token, application_id, grounds)
    except UpstreamRefused as exc:
        if exc.status == 422:
            return await _detail(
                request, user, upstreams, application_id,
                errors={"grounds": check_grounds(grounds) or exc.detail}, grounds=grounds,
                status=400,
            )  # fmt: skip
        if exc.status != 409:
            raise
        # The period ended meanwhile, or I appealed already (another tab): the page says which.
        return await _detail(
            request, user, upstreams, application_id,
            grounds=grounds, appeal_refused=exc.detail, status=409,
        )  # fmt: skip
    return RedirectResponse(f"/me/applications/{application_id}?done=appealed", status_code=303)
