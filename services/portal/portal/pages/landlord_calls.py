"""A landlord's calls for applications: each call with its status and dates, the ranking frozen
at closing with the points per criterion, and the offer (terms) or rejection of an applicant,
with the published ground and a text whenever the offer skips someone ranked higher (leasing
refuses it otherwise, and a rejection always needs one)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from portal import formatting
from portal.clients import UpstreamRefused, leasing
from portal.i18n import gettext
from portal.pages.deps import CsrfDep, SignedIn, UpstreamsDep, UserDep
from portal.pages.landlord import landlord_of, staff
from portal.pages.offers import moment
from portal.pages.officer import call_status_text
from portal.rendering import render
from portal.schemas import JuryView, LandlordRanking, LandlordRankingLine, OutOfRankGround

router = APIRouter(include_in_schema=False)
_ = gettext

REASON_MIN, REASON_MAX = 10, 2000
JURY_ROWS = 4  # member rows on the form; more members are recorded through the API


@dataclass
class JuryForm:
    """The jury record form as typed, and what is wrong with it."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, jury: JuryView | None) -> JuryForm:
        if jury is None:
            return cls()
        values = {
            "session_date": jury.session_date.isoformat(),
            "minutes": jury.minutes,
            "decision": jury.decision,
        }
        for i, m in enumerate(jury.members[:JURY_ROWS]):
            values |= {f"member-{i}-name": m.name, f"member-{i}-organisation": m.organisation,
                       f"member-{i}-role": m.role, f"member-{i}-declaration": m.declaration or "",
                       f"member-{i}-conflict": "yes" if m.conflict_of_interest else ""}  # fmt: skip
        return cls(values=values)


def read_jury(sent: Any) -> tuple[JuryForm, dict[str, Any]]:
    """The posted jury form, checked; the body of PUT /v1/calls/{id}/jury."""
    form = JuryForm()
    v, errors = form.values, form.errors
    for key in ("session_date", "minutes", "decision"):
        v[key] = str(sent.get(key) or "").strip()
    members = []
    for i in range(JURY_ROWS):
        row = {k: str(sent.get(f"member-{i}-{k}") or "").strip()
               for k in ("name", "organisation", "role", "declaration", "conflict")}  # fmt: skip
        v |= {f"member-{i}-{k}": value for k, value in row.items()}
        if not any(row[k] for k in ("name", "organisation", "role", "declaration")):
            continue
        for k in ("name", "organisation", "role"):
            if len(row[k]) < 2:
                errors[f"member-{i}-{k}"] = _("Write at least 2 characters.")
        conflict = row["conflict"] == "yes"
        if conflict and not row["declaration"]:
            errors[f"member-{i}-declaration"] = _(
                "Say what the conflict of interest is: the member is then recused from this call."
            )
        members.append({"name": row["name"], "organisation": row["organisation"],
                        "role": row["role"], "conflict_of_interest": conflict,
                        "declaration": row["declaration"] or None})  # fmt: skip
    if not members:
        errors["member-0-name"] = _("Name at least one member of the jury.")
    try:
        date.fromisoformat(v["session_date"])
    except ValueError:
        errors["session_date"] = _("Write a date as YYYY-MM-DD, such as 2027-01-15.")
    for key in ("minutes", "decision"):
        if len(v[key]) < REASON_MIN:
            errors[key] = _("Write at least %(num)s characters.") % {"num": REASON_MIN}
    body = {"members": members, "session_date": v["session_date"], "minutes": v["minutes"],
            "decision": v["decision"]}  # fmt: skip
    return form, body


@router.post("/landlord/calls/{call_id}/jury", response_model=None)
async def record_jury(
    call_id: str, request: Request, upstreams: UpstreamsDep, user: UserDep, _csrf: CsrfDep
) -> Response:
    staff(user)
    form, body = read_jury(await request.form())
    if not form.errors:
        try:
            await leasing.put_jury(upstreams, user.access_token, call_id, body)
        except UpstreamRefused as exc:
            if exc.status not in (400, 403, 409, 422):
                raise
            form.errors["jury"] = _("Leasing refused it: %(detail)s") % {"detail": exc.detail}
    if form.errors:
        return await _call_page(request, upstreams, user, call_id, status=400, jury_form=form)
    return RedirectResponse(f"/landlord/calls/{call_id}?done=jury", status_code=303)


@dataclass
class DecisionForm:
    """The offer or rejection form as sent, and what is wrong with it."""

    action: str = ""
    application_id: str = ""
    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


@router.get("/landlord/calls", response_class=HTMLResponse)
async def my_calls(request: Request, upstreams: UpstreamsDep, user: UserDep) -> HTMLResponse:
    staff(user)
    landlord = landlord_of(user)
    calls = (
        await leasing.landlord_calls(upstreams, user.access_token, landlord) if landlord else None
    )
    return render(
        request,
        "landlord/calls.html",
        {"calls": calls, "status_text": call_status_text, "moment": moment},
    )


def _first_in_running(ranking: LandlordRanking | None) -> LandlordRankingLine | None:
    entries = ranking.entries if ranking else []
    return next((e for e in sorted(entries, key=lambda e: e.rank) if e.in_the_running), None)


async def _grounds(upstreams: Any) -> list[OutOfRankGround]:
    catalogue = await leasing.get_catalogue(upstreams)
    seen: dict[str, OutOfRankGround] = {}
    for programme in catalogue.programmes:
        for ground in programme.out_of_rank_grounds:
            seen.setdefault(ground.id, ground)
    return list(seen.values())


async def _call_page(
    request: Request,
    upstreams: Any,
    user: SignedIn,
    call_id: str,
    form: DecisionForm | None = None,
    status: int = 200,
    jury_form: JuryForm | None = None,
) -> HTMLResponse:
    staff(user)
    call = await leasing.get_call(upstreams, user.access_token, call_id)
    ranking = await leasing.landlord_ranking(upstreams, user.access_token, call_id)
    grounds = await _grounds(upstreams)
    jury = await leasing.get_jury(upstreams, user.access_token, call_id)
    running = [e for e in (ranking.entries if ranking else []) if e.in_the_running]
    return render(
        request,
        "landlord/call.html",
        {
            "call": call,
            "ranking": ranking,
            "running": running,
            "first": _first_in_running(ranking),
            "grounds": grounds,
            "form": form or DecisionForm(),
            "jury": jury,
            "jury_form": jury_form or JuryForm.of(jury),
            "jury_rows": range(JURY_ROWS),
            "key": uuid.uuid4().hex,
            "status_text": call_status_text,
            "moment": moment,
            "done": request.query_params.get("done", ""),
        },
        status=status,
    )


@router.get("/landlord/calls/{call_id}", response_class=HTMLResponse)
async def call_page(
    call_id: str, request: Request, upstreams: UpstreamsDep, user: UserDep
) -> HTMLResponse:
    return await _call_page(request, upstreams, user, call_id)


def read_decision(
    sent: Any, first: LandlordRankingLine | None
) -> tuple[DecisionForm, dict[str, Any]]:
    """The posted offer or rejection, checked; the body for leasing when there is no error."""
    action = "reject" if sent.get("action") == "reject" else "offer"
    chosen = sent.get("reject_application_id" if action == "reject" else "application_id")
    form = DecisionForm(action=action, application_id=str(chosen or ""))
    names = ("rent", "start_date", "end_date", "message", "ground", "explanation", "reason")
    for name in (*names, "reject_ground"):
        form.values[name] = str(sent.get(name) or "").strip()
    v, errors = form.values, form.errors
    if not form.application_id:
        errors["application_id"] = _("Choose the applicant.")
    skips = first is not None and form.application_id != first.application_id
    if action == "reject":
        if not v["reject_ground"]:
            errors["reject_ground"] = _("Choose the published ground of the rejection.")
        if len(v["reason"]) < REASON_MIN:
            errors["reason"] = _(
                "Say why in at least %(num)s characters: the applicant reads it."
            ) % {"num": REASON_MIN}
        elif too_long := formatting.too_long(v["reason"], REASON_MAX):
            errors["reason"] = too_long
        return form, {"reason": v["reason"], "ground": v["reject_ground"] or None}
    body: dict[str, Any] = {"message": v["message"] or None}
    try:
        rent = Decimal(v["rent"].replace(",", ".").replace(" ", "").replace("\u202f", ""))
        if not rent.is_finite() or rent <= 0 or rent.as_tuple().exponent < -2:  # type: ignore[operator]
            raise InvalidOperation
        body["monthly_rent_eur"] = str(rent)
    except InvalidOperation:
        errors["rent"] = _("Write the monthly rent in euros, such as 1250 or 1250.50.")
    days: dict[str, date] = {}
    for name in ("start_date", "end_date"):
        try:
            days[name] = date.fromisoformat(v[name])
            body[name] = v[name]
        except ValueError:
            errors[name] = _("Write a date as YYYY-MM-DD, such as 2027-01-15.")
    if len(days) == 2 and days["end_date"] <= days["start_date"]:
        errors["end_date"] = _("The end comes after the start.")
    if skips:
        # Leasing refuses an offer that skips someone ranked higher without a published ground.
        if not v["ground"]:
            errors["ground"] = _(
                "This applicant is not the first in the running: choose the published ground "
                "for passing over those ranked higher."
            )
        if len(v["explanation"]) < REASON_MIN:
            errors["explanation"] = _(
                "Explain in at least %(num)s characters why the ranking's order is not followed: "
                "it is recorded and published with the results."
            ) % {"num": REASON_MIN}
        body["out_of_rank"] = {"ground": v["ground"], "explanation": v["explanation"]}
    return form, body


@router.post("/landlord/calls/{call_id}/decide", response_model=None)
async def decide(
    call_id: str, request: Request, upstreams: UpstreamsDep, user: UserDep, _csrf: CsrfDep
) -> Response:
    staff(user)
    sent = await request.form()
    ranking = await leasing.landlord_ranking(upstreams, user.access_token, call_id)
    form, body = read_decision(sent, _first_in_running(ranking))
    if form.errors:
        return await _call_page(request, upstreams, user, call_id, form, status=400)
    try:
        if form.action == "reject":
            await leasing.reject_application(
                upstreams, user.access_token, form.application_id, body
            )
        else:
            key = str(sent.get("idempotency_key") or "")[:64] or uuid.uuid4().hex
            await leasing.offer_lease(
                upstreams, user.access_token, form.application_id, body, f"portal-{key}"
            )
    except UpstreamRefused as exc:
        if exc.status not in (400, 403, 409, 422):
            raise
        if "comes first in the call's frozen ranking" in exc.detail:
            # Someone ranked higher came back in the running since the page was read.
            form.errors["ground"] = _(
                "This applicant is not the first in the running: choose the published ground "
                "for passing over those ranked higher."
            )
            return await _call_page(request, upstreams, user, call_id, form, status=exc.status)
        field_of = {"out_of_rank": "ground", "monthly_rent_eur": "rent", "ground": "ground"}
        named = [str(e.get("field", "")).removeprefix("body.").split(".")[0] for e in exc.errors]
        where = next((field_of.get(n, n) for n in named if n), "form")
        # Leasing's sentence names the applicant who comes first, or the call's state.
        form.errors[where if where in {*form.values, "form"} else "form"] = _(
            "Leasing refused it: %(detail)s"
        ) % {"detail": exc.detail}
        return await _call_page(request, upstreams, user, call_id, form, status=exc.status)
    done = "rejected" if form.action == "reject" else "offered"
    return RedirectResponse(f"/landlord/calls/{call_id}?done={done}", status_code=303)
