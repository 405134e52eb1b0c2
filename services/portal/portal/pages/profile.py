"""My profile: the artisan's or cooperative's profile at leasing, created then kept up to date.

The form posts every field; the portal checks what it can in the visitor's words (lengths, the
SIRET's 14 digits and check digit, the date), then leasing decides. Its 422 messages go beside
their field, a SIRET already taken beside the SIRET, an unverified e-mail is explained, and a
profile changed meanwhile (the ETag no longer matches: 412) is shown as it now is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from portal import formatting
from portal.clients import UpstreamRefused, leasing
from portal.formatting import KNOWN_TRADES
from portal.i18n import gettext
from portal.pages.deps import CsrfDep, SignedIn, UpstreamsDep, UserDep
from portal.rendering import render
from portal.schemas import Profile

router = APIRouter(include_in_schema=False)
_ = gettext

LEGAL_FORMS = (
    "micro_entreprise", "ei", "eurl", "sarl", "sas", "sasu", "sa", "scop", "scic", "cae",
    "cooperative_artisanale", "association", "other",
)  # fmt: skip
LABELS = ("fabrique_a_paris", "esus", "epv", "metiers_d_art")
FIELDS = (
    "display_name", "business_name", "siret", "trades", "business_created_on", "legal_form",
    "labels", "contact_email",
)  # fmt: skip
LA_POSTE_SIREN = "356000000"
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
TRADE_RE = re.compile(r"^[a-z][a-z0-9_]{1,59}$")


@dataclass
class ProfileForm:
    """What the person typed, as typed (to show back), and the problems found in it."""

    values: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return not self.errors

    def body(self) -> dict[str, Any]:
        """The request body leasing takes (only meaningful when valid)."""
        v = self.values
        return {
            "display_name": v["display_name"],
            "business_name": v["business_name"],
            "siret": digits_of(v["siret"]),
            "trades": sorted(set(v["trades"])),
            "business_created_on": parse_day(v["business_created_on"]).isoformat(),  # type: ignore[union-attr]
            "legal_form": v["legal_form"],
            "labels": sorted(set(v["labels"])),
            "contact_email": v["contact_email"],
        }


def digits_of(siret: str) -> str:
    return siret.replace(" ", "").replace("\u00a0", "")


def luhn_valid(number: str) -> bool:
    total = 0
    for i, c in enumerate(reversed(number)):
        d = int(c) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def siret_problem(value: str) -> str | None:
    """Why a SIRET as typed is not one (leasing's rule, in the visitor's words), or None."""
    siret = digits_of(value)
    if not siret:
        return _("Enter your SIRET number: 14 digits, on your Kbis or INSEE certificate.")
    if len(siret) != 14 or not siret.isascii() or not siret.isdigit():
        return _("A SIRET number is exactly 14 digits (spaces are allowed).")
    if siret.startswith(LA_POSTE_SIREN):
        if sum(int(c) for c in siret) % 5 == 0 or luhn_valid(siret):
            return None
    elif luhn_valid(siret):
        return None
    return _("This SIRET number fails its check digit: check each digit against your Kbis.")


def parse_day(value: str) -> date | None:
    """A date typed as 01/03/2024, 1/3/2024 or 2024-03-01; None when it is none of these."""
    text = value.strip()
    for pattern in ("%d/%m/%Y", "%Y-%m-%d", "%d.%m.%Y", "%d-%m-%Y"):
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    return None


def parse_profile_form(form: Any, today: date | None = None) -> ProfileForm:
    """Read and check the profile form (a Starlette FormData or a MultiDict-like object)."""
    today = today or datetime.now(UTC).date()
    values: dict[str, Any] = {
        name: str(form.get(name) or "").strip()
        for name in FIELDS
        if name not in ("trades", "labels")
    }
    values["trades"] = [str(t) for t in form.getlist("trades")]
    values["labels"] = [str(x) for x in form.getlist("labels")]
    errors: dict[str, str] = {}
    for name, low, high, empty in (
        ("display_name", 2, 120, _("Enter the name people know you by.")),
        ("business_name", 2, 200, _("Enter your business's registered name.")),
    ):
        text = values[name]
        if not text:
            errors[name] = empty
        elif not low <= len(text) <= high:
            errors[name] = _("Write between %(low)s and %(high)s characters.") % {
                "low": low,
                "high": high,
            }
    problem = siret_problem(values["siret"])
    if problem:
        errors["siret"] = problem
    trades = values["trades"]
    if not trades:
        errors["trades"] = _("Choose at least one trade.")
    elif len(set(trades)) > 10:
        errors["trades"] = _("Choose at most 10 trades.")
    elif not all(TRADE_RE.match(t) for t in trades):
        errors["trades"] = _("Choose your trades from the list.")
    created = parse_day(values["business_created_on"])
    if not values["business_created_on"]:
        errors["business_created_on"] = _(
            "Enter the date your business was created, for example 01/03/2024."
        )
    elif created is None:
        errors["business_created_on"] = _(
            "Write the date as day/month/year, for example 01/03/2024."
        )
    elif created < date(1900, 1, 1):
        errors["business_created_on"] = _("The date must be after 1 January 1900.")
    elif created > today:
        errors["business_created_on"] = _("The creation date cannot be in the future.")
    if values["legal_form"] not in LEGAL_FORMS:
        errors["legal_form"] = _("Choose your legal form from the list.")
    if any(x not in LABELS for x in values["labels"]):
        errors["labels"] = _("Choose labels from the list.")
    email = values["contact_email"]
    if not email:
        errors["contact_email"] = _("Enter the e-mail address landlords may write to.")
    elif not EMAIL_RE.match(email) or len(email) > 254:
        errors["contact_email"] = _(
            "Enter an e-mail address in the right format, like name@example.org."
        )
    return ProfileForm(values, errors)


def values_of(profile: Profile | None, user: SignedIn) -> dict[str, Any]:
    """The form's values from the profile (edit) or the account (create)."""
    if profile is None:
        return {
            "display_name": user.name or "",
            "business_name": "",
            "siret": "",
            "trades": [],
            "business_created_on": "",
            "legal_form": "micro_entreprise",
            "labels": [],
            "contact_email": user.email or "",
        }
    return {
        "display_name": profile.display_name,
        "business_name": profile.business_name,
        "siret": profile.siret,
        "trades": list(profile.trades),
        "business_created_on": profile.business_created_on.strftime("%d/%m/%Y"),
        "legal_form": profile.legal_form,
        "labels": list(profile.labels),
        "contact_email": profile.contact_email,
    }


def field_errors(refused: UpstreamRefused) -> dict[str, str]:
    """Leasing's refusal put beside the fields it names (`body.siret` → siret)."""
    errors: dict[str, str] = {}
    for item in refused.errors:
        parts = str(item.get("field", "")).split(".")
        name = parts[1] if len(parts) > 1 and parts[0] == "body" else parts[0]
        if name in FIELDS and name not in errors:
            errors[name] = str(item.get("message", "")).removeprefix("Value error, ")
    if refused.status == 409:
        errors["siret"] = _(
            "Another artisan is already registered with this SIRET number. If it is yours, "
            "write to the city's workshop team."
        )
    return errors


def legal_form_name(code: str) -> str:
    """A legal form in words ("other" is a choice of the form, not one formatting names)."""
    return _("another legal form") if code == "other" else formatting.legal_form(code)


def _trades_offered(values: dict[str, Any]) -> list[str]:
    trades = list(KNOWN_TRADES)
    trades += [t for t in values.get("trades", []) if t not in trades and TRADE_RE.match(t)]
    return trades


def _page(
    request: Request,
    user: SignedIn,
    profile: Profile | None,
    etag: str | None,
    values: dict[str, Any],
    *,
    errors: dict[str, str] | None = None,
    notice: str | None = None,
    refused: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "profile.html",
        {
            "profile": profile,
            "etag": etag or "",
            "values": values,
            "errors": errors or {},
            "notice": notice,
            "refused": refused,
            "is_artisan": "artisan" in user.roles,
            "trades": _trades_offered(values),
            "legal_forms": [(code, legal_form_name(code)) for code in LEGAL_FORMS],
            "label_codes": [(code, formatting.label(code)) for code in LABELS],
            "next": _safe_next(request.query_params.get("next")),
        },
        status=status,
    )


def _safe_next(value: str | None) -> str:
    """Only a page of the portal (a unit's page, typically) to go back to."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return ""


@router.get("/me/profile", response_class=HTMLResponse)
async def profile_page(request: Request, user: UserDep, upstreams: UpstreamsDep) -> HTMLResponse:
    found = await leasing.get_profile(upstreams, user.access_token) if _can(user) else None
    profile, etag = found if found else (None, None)
    notice = {"created": "created", "saved": "saved"}.get(request.query_params.get("done", ""))
    return _page(request, user, profile, etag, values_of(profile, user), notice=notice)


def _can(user: SignedIn) -> bool:
    return "artisan" in user.roles


@router.post("/me/profile", response_model=None)
async def save_profile(
    request: Request, user: UserDep, upstreams: UpstreamsDep, _csrf: CsrfDep
) -> Response:
    form = await request.form()
    parsed = parse_profile_form(form)
    sent_etag = str(form.get("etag") or "")
    next_path = _safe_next(str(form.get("next") or ""))
    if not _can(user):
        return _page(request, user, None, None, parsed.values, status=403)
    found = await leasing.get_profile(upstreams, user.access_token)
    profile, etag = found if found else (None, None)
    if not parsed.valid:
        return _page(
            request, user, profile, sent_etag or etag, parsed.values, errors=parsed.errors,
            status=400,
        )  # fmt: skip
    try:
        if profile is None:
            await leasing.create_profile(upstreams, user.access_token, parsed.body())
            done = "created"
        else:
            await leasing.update_profile(
                upstreams, user.access_token, parsed.body(), sent_etag or (etag or "*")
            )
            done = "saved"
    except UpstreamRefused as exc:
        if exc.status == 412 and profile is not None:
            # Changed meanwhile (another tab?): show the profile as it is now, to redo the edit.
            fresh = await leasing.get_profile(upstreams, user.access_token)
            current, current_etag = fresh if fresh else (profile, etag)
            return _page(
                request, user, current, current_etag, values_of(current, user),
                notice="stale", status=409,
            )  # fmt: skip
        if exc.status == 403:
            return _page(
                request, user, profile, etag, parsed.values, refused="unverified", status=403
            )
        errors = field_errors(exc)
        if not errors:
            raise
        return _page(
            request, user, profile, sent_etag or etag, parsed.values, errors=errors, status=400
        )
    target = next_path or f"/me/profile?done={done}"
    return RedirectResponse(target, status_code=303)
