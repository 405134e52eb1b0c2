"""The City officers' pages for the no-net-loss rule: the balance of production m² by
arrondissement (losses, compensations delivered, planned and late, uncompensated losses, the
net) with a chart of the net over time; the flags (uncompensated losses, late compensations)
with what to do, and the form marking a compensation delivered; the development projects with
their kept against promised m², and the form recording one.

Every figure is inventory's (`/v1/surface/balance`, `/v1/surface/flags`, `/v1/projects`) and
every write goes through its API with the officer's own token; inventory checks the role again.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from babel.dates import format_date
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from portal import charts, formatting
from portal.clients import UpstreamRefused, inventory
from portal.i18n import babel_locale, gettext, per_locale
from portal.pages.deps import CsrfDep, UpstreamsDep, UserDep
from portal.pages.officer import is_reader, refused, today
from portal.rendering import render
from portal.schemas import ArrondissementBalance, Project, SurfaceBalance, SurfaceFlag

router = APIRouter(include_in_schema=False)
_ = gettext

PROJECT_STATUSES = ("planned", "under_construction", "delivered", "cancelled")
#: inventory's bounds (schemas.ProjectCreate), checked here to answer beside the field.
PROJECT_M2_MAX = 1_000_000
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2100, 1, 1)


def month_start(month: str) -> date:
    """The first day of a YYYY-MM month."""
    year, number = month.split("-")
    return date(int(year), int(number), 1)


def month_name(value: date | None) -> str:
    """A month in words for the page's language (décembre 2026, December 2026)."""
    if value is None:
        return "—"
    return format_date(value, format="MMMM y", locale=babel_locale())


def signed(value: float) -> str:
    """A balance with its sign: +120, −80 (a true minus sign), 0."""
    text = formatting.number(abs(value))
    if value > 0:
        return "+" + text
    if value < 0:
        return "\u2212" + text
    return text


def paris_series(rows: list[ArrondissementBalance]) -> list[tuple[date, float]]:
    """Paris's cumulative net m², month by month: the months' nets of every arrondissement
    summed, then added up from the first month."""
    nets: dict[str, float] = defaultdict(float)
    for row in rows:
        for m in row.series:
            nets[m.month] += m.net_m2
    points, total = [], 0.0
    for month in sorted(nets):
        total += nets[month]
        points.append((month_start(month), round(total, 2)))
    return points


def balance_cells(name: str, row: Any) -> list[str]:
    """One row of the balance table (an arrondissement, or the totals)."""
    return [
        name,
        formatting.number(row.losses_m2),
        formatting.number(row.compensations_delivered_m2),
        formatting.number(row.compensations_planned_m2 - row.late_m2),
        _("%(m2)s (%(n)s)") % {"m2": formatting.number(row.late_m2), "n": row.late_compensations}
        if row.late_compensations
        else formatting.number(row.late_m2),
        _("%(m2)s (%(n)s)")
        % {"m2": formatting.number(row.uncompensated_m2), "n": row.uncompensated_losses}
        if row.uncompensated_losses
        else formatting.number(row.uncompensated_m2),
        formatting.number(row.gains_m2),
        signed(row.net_m2),
    ]


@dataclass(frozen=True)
class Totals:
    """The balance's figures summed over Paris."""

    losses_m2: float
    compensations_delivered_m2: float
    compensations_planned_m2: float
    late_m2: float
    late_compensations: int
    uncompensated_m2: float
    uncompensated_losses: int
    gains_m2: float
    net_m2: float

    @classmethod
    def of(cls, rows: list[ArrondissementBalance]) -> Totals:
        def total(name: str) -> Any:
            return sum(getattr(r, name) for r in rows)

        return cls(**{f: total(f) for f in cls.__dataclass_fields__})


def balance_view(balance: SurfaceBalance) -> dict[str, Any]:
    """What balance.html shows: the table by arrondissement and the net over time (Paris,
    and each arrondissement that lost m², up to the chart's six series)."""
    rows = sorted(balance.rows, key=lambda r: r.arrondissement)
    losing = [r for r in rows if r.losses_m2 > 0]
    series = [charts.Series(_("All of Paris"), paris_series(rows))]
    for r in losing[: len(charts.DASHES) - 1]:
        points = [(month_start(m.month), m.cumulative_net_m2) for m in r.series]
        series.append(charts.Series(formatting.arrondissement(r.arrondissement), points))
    chart = charts.step_chart(
        series,
        chart_id="net-balance",
        title=_("Net balance of production m² over time"),
        desc=_(
            "Steps of m² gained (above 0) or lost (below 0) since the ledger began, month by "
            "month, one line per series (%(names)s), each with its own dash pattern and marker "
            "and its name at its end. The table below gives the figure of each month."
        )
        % {"names": ", ".join(s.name for s in series)},
        unit=_("m²"),
        number=signed,
        day=month_name,
        until=balance.as_of,
    )
    totals = Totals.of(rows)
    return {
        "balance": balance,
        "headers": [
            _("Arrondissement"),
            _("Lost (m²)"),
            _("Compensations delivered (m²)"),
            _("Compensations planned, on time (m²)"),
            _("Compensations late (m², count)"),
            _("Uncompensated losses (m², count)"),
            _("Gained (m²)"),
            _("Net balance (m²)"),
        ],
        "rows": [balance_cells(formatting.arrondissement(r.arrondissement), r) for r in rows],
        "total_row": balance_cells(_("All of Paris"), totals),
        "totals": totals,
        "chart": chart,
        "signed": signed,
    }


@router.get("/officer/balance", response_class=HTMLResponse)
async def balance_page(request: Request, user: UserDep, upstreams: UpstreamsDep) -> HTMLResponse:
    if not is_reader(user):
        return refused(request)
    balance = await inventory.surface_balance(upstreams)
    return render(request, "officer/balance.html", balance_view(balance))


# Flags -------------------------------------------------------------------------------------


def what_to_do(flag: SurfaceFlag) -> str:
    """What an officer does with a flag, in the page's language."""
    if flag.kind == "late_compensation":
        return _(
            "Ask the landlord or the project's developer when the m² will be delivered. Once a "
            "unit delivers them, mark the compensation delivered; until then it stays flagged."
        )
    return _(
        "Look for new production m² in the same arrondissement (a development project, a unit "
        "to convert) and record them as a compensation; otherwise the loss stays counted as "
        "uncompensated in the balance and the open data."
    )


@router.get("/officer/flags", response_class=HTMLResponse)
async def flags_page(request: Request, user: UserDep, upstreams: UpstreamsDep) -> HTMLResponse:
    if not is_reader(user):
        return refused(request)
    flags, projects = await asyncio.gather(
        inventory.surface_flags(upstreams, user.access_token), inventory.list_projects(upstreams)
    )
    ordered = sorted(flags.flags, key=lambda f: (f.kind, f.arrondissement, f.due_on or FIRST_DAY))
    return render(
        request,
        "officer/flags.html",
        {
            "flags": flags,
            "losses": [f for f in ordered if f.kind == "uncompensated_loss"],
            "late": [f for f in ordered if f.kind == "late_compensation"],
            "projects": {p.id: p for p in projects},
            "what_to_do": what_to_do,
            "done": request.query_params.get("done", ""),
        },
    )


@dataclass
class DeliveryForm:
    """The form marking a planned compensation delivered: the unit, the day."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)


@per_locale
def delivery_labels() -> dict[str, str]:
    return {
        "unit_id": _("Unit that delivers the m²"),
        "delivered_on": _("Delivered on"),
        "form": _("Compensation"),
    }


def read_delivery_form(sent: Any, today: date) -> DeliveryForm:
    """The posted delivery form, checked; `body` is the POST to send."""
    form = DeliveryForm()
    for name in ("unit_id", "delivered_on"):
        form.values[name] = str(sent.get(name) or "").strip()
    unit = form.values["unit_id"]
    if not unit:
        form.errors["unit_id"] = _(
            "Write the id of the production unit that delivers the m² (on the unit's page)."
        )
    elif len(unit) > 60:
        form.errors["unit_id"] = _("A unit id has at most 60 characters; copy it from its page.")
    form.body = {"unit_id": unit}
    when = form.values["delivered_on"]
    if when:
        day = _day(when)
        if day is None:
            form.errors["delivered_on"] = _day_message()
        elif day > today:
            form.errors["delivered_on"] = _(
                "This day is in the future: mark a compensation delivered once it is."
            )
        else:
            form.body["delivered_on"] = when
    return form


def _day(text: str) -> date | None:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None
    return day if FIRST_DAY <= day <= LAST_DAY else None


def _day_message() -> str:
    return _("Write a date as YYYY-MM-DD between 2000 and 2100, such as 2027-01-15.")


def delivery_refusal(form: DeliveryForm, exc: UpstreamRefused) -> None:
    """Inventory's refusal of a delivery, next to its field."""
    detail = exc.detail
    if exc.status == 409:
        form.errors["form"] = _("This compensation is already delivered: nothing to do.")
    elif exc.status == 422 and "No unit with id" in detail:
        form.errors["unit_id"] = _("No unit has this id; copy it from the unit's page.")
    elif exc.status == 422 and "adds no production surface" in detail:
        form.errors["unit_id"] = _(
            "This unit adds no production surface (it is not a production unit, or it is "
            "withdrawn); name a production unit."
        )
    elif exc.status == 422 and "arrondissement" in detail and "unit_id" in detail:
        form.errors["unit_id"] = _(
            "This unit is in another arrondissement; the m² must be delivered in the "
            "arrondissement of the loss."
        )
    elif exc.status == 422 and "delivered_on" in detail:
        form.errors["delivered_on"] = _(
            "This day is in the future: mark a compensation delivered once it is."
        )
    elif exc.status == 403:
        form.errors["form"] = _(
            "Only a city officer or an admin may mark a compensation delivered."
        )
    else:
        raise exc


async def _delivery_page(
    request: Request, upstreams: Any, compensation_id: str, form: DeliveryForm, status: int = 200
) -> HTMLResponse:
    compensation = await inventory.get_compensation(upstreams, compensation_id)
    return render(
        request,
        "officer/delivery.html",
        {"compensation": compensation, "form": form, "labels": delivery_labels()},
        status=status,
    )


@router.get("/officer/compensations/{compensation_id}/delivery", response_class=HTMLResponse)
async def delivery_form(
    compensation_id: str, request: Request, user: UserDep, upstreams: UpstreamsDep
) -> HTMLResponse:
    if not is_reader(user):
        return refused(request)
    return await _delivery_page(request, upstreams, compensation_id, DeliveryForm())


@router.post("/officer/compensations/{compensation_id}/delivery", response_model=None)
async def deliver(
    compensation_id: str, request: Request, user: UserDep, upstreams: UpstreamsDep, _c: CsrfDep
) -> Response:
    if not is_reader(user):
        return refused(request)
    form = read_delivery_form(await request.form(), today())
    if form.errors:
        return await _delivery_page(request, upstreams, compensation_id, form, status=400)
    try:
        await inventory.deliver_compensation(
            upstreams, user.access_token, compensation_id, form.body
        )
    except UpstreamRefused as exc:
        delivery_refusal(form, exc)
        return await _delivery_page(request, upstreams, compensation_id, form, status=exc.status)
    return RedirectResponse("/officer/flags?done=delivered", status_code=303)


# Development projects ------------------------------------------------------------------------


@per_locale
def project_labels() -> dict[str, str]:
    return {
        "name": _("Name of the project"),
        "arrondissement": _("Arrondissement"),
        "committed_m2": _("Production m² to keep or create"),
        "delivery_on": _("Delivery date"),
        "status": _("Stage"),
        "description": _("Description"),
        "form": _("Project"),
    }


@per_locale
def project_status_names() -> dict[str, str]:
    return {
        "planned": _("planned"),
        "under_construction": _("under construction"),
        "delivered": _("delivered"),
        "cancelled": _("cancelled"),
    }


@dataclass
class ProjectForm:
    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)


def read_project_form(sent: Any) -> ProjectForm:
    """The posted project form, checked with inventory's bounds; `body` is the POST."""
    form = ProjectForm()
    for name in project_labels():
        form.values[name] = str(sent.get(name) or "").strip()
    v, errors = form.values, form.errors
    if len(v["name"]) < 2:
        errors["name"] = _("Write the project's name (at least 2 characters).")
    elif too_long := formatting.too_long(v["name"], 200):
        errors["name"] = too_long
    arrondissement = int(v["arrondissement"]) if v["arrondissement"].isdigit() else 0
    if not 1 <= arrondissement <= 20:
        errors["arrondissement"] = _("Choose the arrondissement.")
    committed = _m2(v["committed_m2"])
    if committed is None:
        errors["committed_m2"] = _(
            "Write the production m² the project must keep or create, a number from 0 to "
            "1,000,000, such as 20000."
        )
    day = _day(v["delivery_on"]) if v["delivery_on"] else None
    if day is None:
        errors["delivery_on"] = _day_message()
    if v["status"] not in PROJECT_STATUSES:
        errors["status"] = _("Choose the project's stage.")
    if too_long := formatting.too_long(v["description"], 2000):
        errors["description"] = too_long
    form.body = {
        "name": v["name"],
        "arrondissement": arrondissement,
        "committed_m2": committed,
        "delivery_on": v["delivery_on"],
        "status": v["status"],
        "description": v["description"] or None,
    }
    return form


def _m2(text: str) -> float | None:
    cleaned = text.replace(",", ".").replace(" ", "").replace("\u202f", "").replace("\xa0", "")
    try:
        value = float(cleaned)
    except ValueError:
        return None
    return value if 0 <= value <= PROJECT_M2_MAX else None


def project_refusal(form: ProjectForm, exc: UpstreamRefused) -> None:
    """Inventory's 422 (its per-field list) next to the fields, in the page's language."""
    labels = project_labels()
    if exc.status == 403:
        form.errors["form"] = _("Only a city officer or an admin may record a project.")
        return
    if exc.status != 422:
        raise exc
    for err in exc.errors:
        name = str(err.get("field", "")).removeprefix("body.").split(".")[0]
        key = name if name in labels else "form"
        form.errors.setdefault(key, _("Inventory did not accept this value; check it."))
    if not form.errors:
        form.errors["form"] = _("Inventory did not accept the project; check every field.")


@dataclass(frozen=True)
class ProjectLine:
    project: Project
    bar: Any
    share: str


def project_lines(projects: list[Project]) -> list[ProjectLine]:
    lines = []
    for p in sorted(projects, key=lambda p: (p.arrondissement, p.name)):
        share = 100.0 if p.committed_m2 <= 0 else p.kept_m2 / p.committed_m2 * 100
        text = _("%(kept)s m² kept of %(committed)s m² promised") % {
            "kept": formatting.number(p.kept_m2),
            "committed": formatting.number(p.committed_m2),
        }
        lines.append(
            ProjectLine(p, charts.progress_bar(p.kept_m2, p.committed_m2, title=text),
                        formatting.number(share, 0))
        )  # fmt: skip
    return lines


def _projects_page(
    request: Request, projects: list[Project], form: ProjectForm, status: int = 200
) -> HTMLResponse:
    return render(
        request,
        "officer/projects.html",
        {
            "lines": project_lines(projects),
            "form": form,
            "labels": project_labels(),
            "key": uuid.uuid4().hex,
            "status_names": project_status_names(),
            "status_options": list(project_status_names().items()),
            "arrondissement_options": [("", _("Choose"))]
            + [(str(n), formatting.arrondissement(n)) for n in range(1, 21)],
            "done": request.query_params.get("done", ""),
        },
        status=status,
    )


@router.get("/officer/projects", response_class=HTMLResponse)
async def projects_page(request: Request, user: UserDep, upstreams: UpstreamsDep) -> HTMLResponse:
    if not is_reader(user):
        return refused(request)
    projects = await inventory.list_projects(upstreams)
    return _projects_page(request, projects, ProjectForm(values={"status": "planned"}))


@router.post("/officer/projects", response_model=None)
async def record_project(
    request: Request, user: UserDep, upstreams: UpstreamsDep, _c: CsrfDep
) -> Response:
    if not is_reader(user):
        return refused(request)
    sent = await request.form()
    form = read_project_form(sent)
    status = 400
    if not form.errors:
        key = str(sent.get("idempotency_key") or "")[:64] or uuid.uuid4().hex
        try:
            await inventory.create_project(upstreams, user.access_token, form.body, f"portal-{key}")
        except UpstreamRefused as exc:
            project_refusal(form, exc)
            status = exc.status
        else:
            return RedirectResponse("/officer/projects?done=recorded", status_code=303)
    projects = await inventory.list_projects(upstreams)
    return _projects_page(request, projects, form, status=status)
