"""A landlord's back office: their sites (edit one), a site's units, a unit's form with every
attribute and the status, a new unit, and the CSV import of units with its report.

Everything is written through inventory's public API with the person's own token; inventory
decides who may write what (a landlord only their own sites and units). A stale form (another
person or program changed the unit since it was read) is shown again beside the current values.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from portal import landlord_forms as forms
from portal.clients import UpstreamRefused, inventory
from portal.i18n import gettext
from portal.pages.deps import CsrfDep, SignedIn, UpstreamsDep, UserDep
from portal.rendering import render
from portal.schemas import OwnSite, OwnUnit, Project

router = APIRouter(include_in_schema=False)
_ = gettext

#: What the upload page reads at most; inventory refuses more than its own limit (1 MiB).
UPLOAD_MAX_BYTES = 1_048_576


def landlord_of(user: SignedIn) -> str | None:
    """The landlord the person acts for: the `landlord_id` claim of their access token (set by
    the identity provider; inventory checks the same token's signature on every write)."""
    try:
        payload = user.access_token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return None
    landlord = claims.get("landlord_id") if isinstance(claims, dict) else None
    return landlord if isinstance(landlord, str) and landlord else None


def staff(user: SignedIn) -> None:
    if "landlord" not in user.roles and "admin" not in user.roles:
        raise HTTPException(403)


async def _own_site(upstreams: Any, user: SignedIn, site_id: str) -> tuple[OwnSite, str]:
    site, etag = await inventory.get_own_site(upstreams, site_id)
    if "admin" not in user.roles and site.landlord_id != landlord_of(user):
        raise HTTPException(403)
    return site, etag


async def _own_unit(upstreams: Any, user: SignedIn, unit_id: str) -> tuple[OwnUnit, str]:
    unit, etag = await inventory.get_own_unit(upstreams, unit_id)
    if "admin" not in user.roles and unit.landlord_id != landlord_of(user):
        raise HTTPException(403)
    return unit, etag


def _refusal(form: Any, exc: UpstreamRefused, labels: dict[str, str], loss_m2: float = 0.0) -> None:
    """An API refusal the portal's own checks did not foresee, next to its field."""
    detail = exc.detail
    problem = forms.compensation_problem(exc.status, detail, exc.errors, loss_m2)
    if problem is not None:
        form.errors[problem[0]] = problem[1]
    elif exc.status == 409 and "reference" in detail:
        form.errors["reference"] = forms.message("reference", "reference_taken")
    elif exc.status == 409 and "cannot go from" in detail:
        form.errors["status"] = _(
            "The unit cannot take this status from its current one: an available or reserved "
            "unit can be leased; a leased one becomes available again or unavailable; a "
            "withdrawn one comes back as unavailable first."
        )
    elif exc.status == 403 and "Production surface is protected" in detail:
        form.errors["surface_m2"] = _(
            "Production surface is protected: shrinking it, changing its use or withdrawing "
            "the unit needs the City's administrator and a written reason. Write to them."
        )
    elif exc.status == 422 and exc.errors:
        for err in exc.errors:
            name = str(err.get("field", "")).removeprefix("body.").split(".")[0]
            key = name if name in labels else "form"
            form.errors.setdefault(key, forms.message(name, str(err.get("type", ""))))
    elif exc.status == 403:
        form.errors["form"] = _("Your account may not change this; only its landlord may.")
    else:
        raise exc


# My sites --------------------------------------------------------------------------------------


@router.get("/landlord", response_class=HTMLResponse)
async def my_sites(request: Request, upstreams: UpstreamsDep, user: UserDep) -> HTMLResponse:
    staff(user)
    landlord = landlord_of(user)
    sites = await inventory.list_own_sites(upstreams, landlord) if landlord else None
    return render(request, "landlord/sites.html", {"sites": sites, "landlord_id": landlord})


@router.get("/landlord/sites/{site_id}", response_class=HTMLResponse)
async def site_units(
    site_id: str, request: Request, upstreams: UpstreamsDep, user: UserDep
) -> HTMLResponse:
    staff(user)
    site, _etag = await _own_site(upstreams, user, site_id)
    units = await inventory.list_site_units(upstreams, site_id)
    done = request.query_params.get("done", "")
    return render(
        request,
        "landlord/site.html",
        {"site": site, "units": units, "done": done, "status_name": forms.status_name},
    )


def _site_page(
    request: Request, site: OwnSite, form: forms.SiteForm, etag: str, status: int = 200
) -> HTMLResponse:
    return render(
        request,
        "landlord/site_form.html",
        {
            "site": site,
            "form": form,
            "etag": etag,
            "labels": forms.site_labels(),
            "kinds": forms.SITE_KINDS,
            "stale": status == 412,
        },
        status=status,
    )


@router.get("/landlord/sites/{site_id}/edit", response_class=HTMLResponse)
async def edit_site(
    site_id: str, request: Request, upstreams: UpstreamsDep, user: UserDep
) -> HTMLResponse:
    staff(user)
    site, etag = await _own_site(upstreams, user, site_id)
    return _site_page(request, site, forms.SiteForm.of(site), etag)


@router.post("/landlord/sites/{site_id}/edit", response_model=None)
async def save_site(
    site_id: str, request: Request, upstreams: UpstreamsDep, user: UserDep, _csrf: CsrfDep
) -> Response:
    staff(user)
    sent = await request.form()
    site, current_etag = await _own_site(upstreams, user, site_id)
    form = forms.read_site_form(sent)
    etag = str(sent.get("etag") or "")
    if form.errors:
        return _site_page(request, site, form, etag, status=400)
    try:
        await inventory.update_site(upstreams, user.access_token, site_id, form.body, etag)
    except UpstreamRefused as exc:
        if exc.status == 412:
            form.errors["form"] = _(
                "Someone changed this site meanwhile. Your values are kept below: check them "
                "against the site as it is now, then save again."
            )
            return _site_page(request, site, form, current_etag, status=412)
        _refusal(form, exc, forms.site_labels())
        return _site_page(request, site, form, etag, status=exc.status)
    return RedirectResponse(f"/landlord/sites/{site_id}?done=site", status_code=303)


# A unit ----------------------------------------------------------------------------------------


def _unit_page(
    request: Request,
    site: OwnSite,
    unit: OwnUnit | None,
    form: forms.UnitForm,
    etag: str = "",
    status: int = 200,
    current: dict[str, str] | None = None,
    projects: list[Project] | None = None,
) -> HTMLResponse:
    statuses = forms.STATUSES if unit else forms.INITIAL_STATUSES
    return render(
        request,
        "landlord/unit_form.html",
        {
            "site": site,
            "unit": unit,
            "form": form,
            "etag": etag,
            "key": uuid.uuid4().hex,
            "labels": {**forms.unit_labels(), **forms.compensation_labels()},
            "statuses": [(s, forms.status_name(s)) for s in statuses],
            "compensation_statuses": list(forms.compensation_status_names().items()),
            "projects": [("", _("None"))]
            + [(p.id, p.name) for p in projects or () if p.arrondissement == site.arrondissement],
            "use_classes": list(forms.use_class_names().items()),
            "features": forms.FEATURES,
            "current": current or {},
            "done": request.query_params.get("done", ""),
        },
        status=status,
    )


@router.get("/landlord/units/{unit_id}", response_class=HTMLResponse)
async def edit_unit(
    unit_id: str, request: Request, upstreams: UpstreamsDep, user: UserDep
) -> HTMLResponse:
    staff(user)
    unit, etag = await _own_unit(upstreams, user, unit_id)
    site, _etag = await _own_site(upstreams, user, unit.site_id)
    projects = await inventory.list_projects(upstreams)
    return _unit_page(request, site, unit, forms.UnitForm.of(unit), etag, projects=projects)


@router.post("/landlord/units/{unit_id}", response_model=None)
async def save_unit(
    unit_id: str, request: Request, upstreams: UpstreamsDep, user: UserDep, _csrf: CsrfDep
) -> Response:
    staff(user)
    sent = await request.form()
    unit, current_etag = await _own_unit(upstreams, user, unit_id)
    site, _etag = await _own_site(upstreams, user, unit.site_id)
    form = forms.read_unit_form(sent, creating=False)
    loss = forms.production_loss(unit, form.body)
    forms.read_compensation(
        form,
        sent,
        loss_m2=loss,
        arrondissement=site.arrondissement,
        today=datetime.now(UTC).date(),
    )
    etag = str(sent.get("etag") or "")
    projects = await inventory.list_projects(upstreams)
    if form.errors:
        return _unit_page(request, site, unit, form, etag, status=400, projects=projects)
    try:
        await inventory.update_unit(upstreams, user.access_token, unit_id, form.body, etag)
    except UpstreamRefused as exc:
        if exc.status == 412:
            # The person's values stay in the form; the current ones are shown beside them,
            # and the form now carries the current ETag: saving again is a deliberate choice.
            current = forms.changed_meanwhile(form, forms.UnitForm.of(unit))
            form.errors["form"] = _(
                "Someone changed this unit meanwhile. Your values are kept in the form; the "
                "unit's current values are shown beside the fields that differ. Check them, "
                "then save again to keep yours."
            )
            return _unit_page(request, site, unit, form, current_etag, 412, current, projects)
        _refusal(form, exc, forms.unit_labels(), loss)
        return _unit_page(request, site, unit, form, etag, status=exc.status, projects=projects)
    return RedirectResponse(f"/landlord/units/{unit_id}?done=saved", status_code=303)


@router.get("/landlord/sites/{site_id}/units/new", response_class=HTMLResponse)
async def new_unit(
    site_id: str, request: Request, upstreams: UpstreamsDep, user: UserDep
) -> HTMLResponse:
    staff(user)
    site, _etag = await _own_site(upstreams, user, site_id)
    return _unit_page(request, site, None, forms.UnitForm.new())


@router.post("/landlord/sites/{site_id}/units/new", response_model=None)
async def create_unit(
    site_id: str, request: Request, upstreams: UpstreamsDep, user: UserDep, _csrf: CsrfDep
) -> Response:
    staff(user)
    sent = await request.form()
    site, _etag = await _own_site(upstreams, user, site_id)
    form = forms.read_unit_form(sent, creating=True)
    if form.errors:
        return _unit_page(request, site, None, form, status=400)
    key = str(sent.get("idempotency_key") or "")[:64] or uuid.uuid4().hex
    try:
        unit = await inventory.create_unit(
            upstreams, user.access_token, site_id, form.body, f"portal-{key}"
        )
    except UpstreamRefused as exc:
        _refusal(form, exc, forms.unit_labels())
        return _unit_page(request, site, None, form, status=exc.status)
    return RedirectResponse(f"/landlord/units/{unit.id}?done=created", status_code=303)


# The CSV import -----------------------------------------------------------------------------------


def _import_page(
    request: Request,
    site: OwnSite,
    report: Any = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    labels = forms.unit_labels()
    refused = []
    for row in report.refused if report else ():
        problems = [
            (labels.get(p.column or "", p.column or ""), forms.message(p.column, p.code, p.params))
            for p in row.problems
        ]
        refused.append((row, problems))
    return render(
        request,
        "landlord/import.html",
        {
            "site": site,
            "report": report,
            "refused": refused,
            "errors": errors or {},
            "columns": [(c, labels.get(c, c)) for c in _COLUMNS],
            "status_name": forms.status_name,
        },
        status=status,
    )


_COLUMNS = (
    "reference", "floor", "surface_m2", "ceiling_height_m", "floor_load_kg_m2", "power_kva",
    "goods_lift", "loading_dock", "extraction", "step_free_access", "allowed_trades",
    "use_class", "rent_eur_m2_year", "charges_eur_m2_year", "status", "available_from",
)  # fmt: skip


@router.get("/landlord/sites/{site_id}/import", response_class=HTMLResponse)
async def import_form(
    site_id: str, request: Request, upstreams: UpstreamsDep, user: UserDep
) -> HTMLResponse:
    staff(user)
    site, _etag = await _own_site(upstreams, user, site_id)
    return _import_page(request, site)


@router.post("/landlord/sites/{site_id}/import", response_model=None)
async def import_file(
    site_id: str, request: Request, upstreams: UpstreamsDep, user: UserDep, _csrf: CsrfDep
) -> Response:
    staff(user)
    sent = await request.form()
    site, _etag = await _own_site(upstreams, user, site_id)
    upload = sent.get("file")
    content = b""
    if isinstance(upload, UploadFile):
        content = await upload.read(UPLOAD_MAX_BYTES + 1)
    if not content:
        errors = {"file": _("Choose a CSV file to import.")}
        return _import_page(request, site, errors=errors, status=400)
    if len(content) > UPLOAD_MAX_BYTES:
        errors = {"file": _("The file is larger than 1 MB; split it into several files.")}
        return _import_page(request, site, errors=errors, status=413)
    try:
        report = await inventory.import_units(
            upstreams,
            user.access_token,
            site_id,
            content,
            dry_run=sent.get("mode") == "check",
            atomic=sent.get("atomic") == "yes",
        )
    except UpstreamRefused as exc:
        return _import_page(request, site, errors={"file": _file_problem(exc)}, status=exc.status)
    return _import_page(request, site, report)


def _file_problem(exc: UpstreamRefused) -> str:
    """A refusal of the whole file in the page's language."""
    body = exc.body
    if exc.status == 413:
        return _("The file is too large: an import takes at most 2,000 rows and 1 MB.")
    if exc.status == 422 and body.get("unknown_columns"):
        return _(
            "The header row names columns that are not unit fields: %(columns)s. Use the "
            "column names listed on this page."
        ) % {"columns": ", ".join(str(c) for c in body["unknown_columns"])}
    if exc.status == 422 and body.get("missing_columns"):
        return _("The header row lacks the required columns: %(columns)s.") % {
            "columns": ", ".join(str(c) for c in body["missing_columns"])
        }
    if "not UTF-8" in exc.detail:
        return _("The file is not UTF-8 text: save it from the spreadsheet as “CSV UTF-8”.")
    if "empty" in exc.detail:
        return _("The file is empty: it needs a header row, then one row per unit.")
    return _("The file cannot be read as CSV: check its quotes and separators.")
