"""A unit's page: what it is, where, who lets it, what it costs, and the programmes it falls
under with their rules and scoring grid; signed in, whether I am eligible and why, and the
application form."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from portal import formatting
from portal.clients import UpstreamNotFound, UpstreamRefused, inventory, leasing
from portal.i18n import gettext
from portal.pages.deps import CsrfDep, OptionalUserDep, SignedIn, UpstreamsDep, UserDep
from portal.rendering import render
from portal.schemas import Application, Catalogue, Eligibility, Listing, Profile

router = APIRouter(include_in_schema=False)
_ = gettext

PROJECT_MIN, PROJECT_MAX = 20, 4000


@dataclass
class Standing:
    """The signed-in artisan's side of a unit page: profile, eligibility, their application."""

    profile: Profile | None = None
    eligibility: Eligibility | None = None
    applied: Application | None = None
    down: bool = False


@dataclass
class ApplyForm:
    """The application form as sent, what is wrong with it, and leasing's refusal if any."""

    programme_id: str = ""
    project: str = ""
    key: str = field(default_factory=lambda: uuid.uuid4().hex)
    errors: dict[str, str] = field(default_factory=dict)
    refusal: list[dict[str, Any]] = field(default_factory=list)
    refused: str | None = None


def check_project(project: str) -> str | None:
    """The project text's problem in the visitor's words, or None."""
    if not project:
        return _("Describe your project: what you will make in this workshop, and with whom.")
    if len(project) < PROJECT_MIN:
        return _("Write at least %(num)s characters about your project.") % {"num": PROJECT_MIN}
    return formatting.too_long(project, PROJECT_MAX)


async def _standing(upstreams: Any, user: SignedIn, unit_id: str) -> Standing:
    if "artisan" not in user.roles:
        return Standing()
    try:
        found = await leasing.get_profile(upstreams, user.access_token)
        if found is None:
            return Standing()
        eligibility, mine = await asyncio.gather(
            leasing.check_eligibility(upstreams, user.access_token, unit_id),
            leasing.list_applications(upstreams, user.access_token, unit_id=unit_id, limit=20),
        )
    except UpstreamNotFound:
        # Leasing has not heard of the unit yet (inventory's event is on its way).
        return Standing(profile=found[0] if found else None)
    except Exception:  # leasing down: the rest of the page stays readable
        return Standing(down=True)
    applied = next(
        (a for a in mine.items if a.vacancy_id == eligibility.vacancy_id and a.withdrawable), None
    )
    return Standing(found[0], eligibility, applied)


async def _unit_page(
    request: Request,
    upstreams: Any,
    unit_id: str,
    user: SignedIn | None,
    form: ApplyForm | None = None,
    status: int = 200,
) -> HTMLResponse:
    # Leasing answers the programmes; a leasing outage leaves the rest of the page readable.
    answers = asyncio.gather(
        leasing.get_listing(upstreams, unit_id),
        leasing.get_catalogue(upstreams),
        _standing(upstreams, user, unit_id) if user else asyncio.sleep(0, Standing()),
        leasing.unit_results(upstreams, unit_id),
        return_exceptions=True,
    )
    try:
        unit = await inventory.get_unit(upstreams, unit_id)
    except BaseException:
        answers.cancel()
        raise
    listing, catalogue, standing, published = await answers
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
            "programmes_by_id": {p.id: p for p in programmes},
            "leasing_down": leasing_down,
            "standing": standing if isinstance(standing, Standing) else Standing(down=True),
            "form": form or ApplyForm(),
            "published_calls": published if isinstance(published, list) else [],
        },
        status=status,
    )


@router.get("/units/{unit_id}", response_class=HTMLResponse)
async def unit_page(
    unit_id: str, request: Request, upstreams: UpstreamsDep, user: OptionalUserDep
) -> HTMLResponse:
    return await _unit_page(request, upstreams, unit_id, user)


@router.post("/units/{unit_id}/apply", response_model=None)
async def apply(
    unit_id: str, request: Request, upstreams: UpstreamsDep, user: UserDep, _csrf: CsrfDep
) -> Response:
    sent = await request.form()
    form = ApplyForm(
        programme_id=str(sent.get("programme_id") or "").strip(),
        project=str(sent.get("project") or "").strip(),
        key=str(sent.get("idempotency_key") or "")[:64] or uuid.uuid4().hex,
    )
    problem = check_project(form.project)
    if problem:
        form.errors["project"] = problem
        return await _unit_page(request, upstreams, unit_id, user, form, status=400)
    try:
        application = await leasing.submit_application(
            upstreams,
            user.access_token,
            unit_id=unit_id,
            programme_id=form.programme_id or None,
            project=form.project,
            idempotency_key=f"portal-{form.key}",
        )
    except UpstreamNotFound:
        # No profile yet (or a unit leasing does not know): the profile page says which.
        return RedirectResponse(f"/me/profile?next=/units/{unit_id}", status_code=303)
    except UpstreamRefused as exc:
        if exc.status == 422 and any("rule" in e for e in exc.errors):
            form.refusal = exc.errors
        elif exc.status == 422:
            form.errors["project"] = next(
                (str(e.get("message")) for e in exc.errors if "project" in str(e.get("field"))),
                exc.detail,
            )
        elif exc.status == 409:
            form.refused = "duplicate" if "already applied" in exc.detail else "closed"
        else:
            raise
        # A new key: the refused request is not to be replayed.
        form.key = uuid.uuid4().hex
        return await _unit_page(request, upstreams, unit_id, user, form, status=exc.status)
    return RedirectResponse(f"/me/applications/{application.id}?done=applied", status_code=303)
