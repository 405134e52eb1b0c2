"""The City officers' pages (read-only): the production surface by arrondissement and its
history, vacancies and time to let. Charts are SVG drawn here (portal.charts), with the same
figures in a table beside each; every figure comes from inventory's and leasing's public APIs,
asked with the officer's own token."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from portal import charts, formatting
from portal.clients import inventory, leasing
from portal.i18n import gettext
from portal.pages.deps import UpstreamsDep, UserDep
from portal.pages.offers import moment
from portal.rendering import render
from portal.results_view import results_view
from portal.schemas import (
    CallRanking,
    LettingFigures,
    LettingStats,
    SurfaceHistory,
    SurfaceReport,
)
from portal.sessions import SignedIn

router = APIRouter(include_in_schema=False)
_ = gettext

#: Roles that may read these pages (leasing and inventory check them again on their side).
READERS = frozenset({"officer", "admin"})
#: How many arrondissements one history chart compares (six dash patterns and markers).
MAX_SERIES = len(charts.DASHES)
#: The periods offered, in days back from today (None: the whole ledger).
PERIODS: dict[str, int | None] = {"1y": 365, "3y": 3 * 365, "10y": 3650, "all": None}
HISTORY_DEFAULT = "3y"
LETTING_PERIODS: dict[str, int] = {"3m": 91, "6m": 182, "1y": 365, "3y": 3 * 365}
LETTING_DEFAULT = "1y"


def is_reader(user: SignedIn) -> bool:
    """Officers and admins read these pages."""
    return bool(READERS & user.roles)


def refused(request: Request) -> HTMLResponse:
    """The page a signed-in person without the officer role gets (403)."""
    return render(request, "officer/forbidden.html", status=403)


def period_label(code: str) -> str:
    names = {
        "3m": _("the last 3 months"),
        "6m": _("the last 6 months"),
        "1y": _("the last 12 months"),
        "3y": _("the last 3 years"),
        "10y": _("the last 10 years"),
        "all": _("since the ledger began"),
    }
    return names.get(code, code)


def today() -> date:
    return datetime.now(UTC).date()


def clip(points: Sequence[tuple[date, float]], since: date | None) -> list[tuple[date, float]]:
    """A step series from `since` on: the value in force that day (the last change before it)
    first, then the changes after it."""
    if since is None:
        return list(points)
    before = [v for d, v in points if d < since]
    kept = [(d, v) for d, v in points if d >= since]
    if before and (not kept or kept[0][0] != since):
        kept.insert(0, (since, before[-1]))
    return kept


@dataclass(frozen=True)
class HistoryQuery:
    """The history form's choices, checked: a period code and up to six arrondissements."""

    period: str
    arrondissements: list[int]
    errors: dict[str, str]

    @classmethod
    def parse(cls, period: str | None, arrondissements: Sequence[str]) -> HistoryQuery:
        errors: dict[str, str] = {}
        if period is None or period == "":
            period = HISTORY_DEFAULT
        elif period not in PERIODS:
            errors["period"] = _("Choose one of the periods in the list.")
            period = HISTORY_DEFAULT
        chosen: list[int] = []
        for raw in arrondissements:
            n = int(raw) if raw.isdigit() else 0
            if not 1 <= n <= 20:
                errors["arrondissement"] = _("Choose arrondissements from the list (1st to 20th).")
            elif n not in chosen:
                chosen.append(n)
        if len(chosen) > MAX_SERIES:
            errors["arrondissement"] = _(
                "Choose at most %(n)s arrondissements to compare on one chart."
            ) % {"n": MAX_SERIES}
            chosen = chosen[:MAX_SERIES]
        return cls(period, sorted(chosen), errors)


def _series_name(arrondissement: int | None) -> str:
    return formatting.arrondissement(arrondissement) if arrondissement else _("All of Paris")


@router.get("/officer", response_class=HTMLResponse)
async def officer_home(request: Request, user: UserDep) -> HTMLResponse:
    if not is_reader(user):
        return refused(request)
    return render(request, "officer/index.html")


@router.get("/officer/surface", response_class=HTMLResponse)
async def surface_page(request: Request, user: UserDep, upstreams: UpstreamsDep) -> HTMLResponse:
    if not is_reader(user):
        return refused(request)
    query = HistoryQuery.parse(
        request.query_params.get("period"), request.query_params.getlist("arrondissement")
    )
    wanted: list[int | None] = list(query.arrondissements) or [None]
    report, histories = await asyncio.gather(
        inventory.surface_report(upstreams),
        asyncio.gather(*(inventory.surface_history(upstreams, a) for a in wanted)),
    )
    context = surface_view(report, list(zip(wanted, histories, strict=True)), query, today())
    return render(request, "officer/surface.html", context, status=400 if query.errors else 200)


def surface_view(
    report: SurfaceReport,
    histories: list[tuple[int | None, SurfaceHistory]],
    query: HistoryQuery,
    end: date,
) -> dict[str, Any]:
    """What surface.html shows: today's bars and the history's steps over the chosen period."""
    bars = [(formatting.arrondissement(int(r.key)), r.production_m2) for r in report.rows]
    bar = charts.bar_chart(
        bars,
        chart_id="surface-by-arrondissement",
        title=_("Production surface by arrondissement, today"),
        desc=_(
            "Horizontal bars, one per arrondissement with production space: %(total)s m² in "
            "all. The table below gives the same figures."
        )
        % {"total": formatting.number(report.total_production_m2)},
        unit=_("m²"),
        number=formatting.number,
        headers=(_("Arrondissement"), _("Production surface (m²)")),
    )
    days = PERIODS[query.period]
    since = end - timedelta(days=days - 1) if days is not None else None
    series = [charts.Series(_series_name(a), clip(_points(h), since)) for a, h in histories]
    history = charts.step_chart(
        series,
        chart_id="surface-history",
        title=_("Production surface over %(period)s") % {"period": period_label(query.period)},
        desc=_(
            "Steps of m² over time, one line per series (%(names)s), each with its own dash "
            "pattern and marker and its name at its end; a value holds until the next change. "
            "The table below gives the figure of each day a change was recorded."
        )
        % {"names": ", ".join(s.name for s in series)},
        unit=_("m²"),
        number=formatting.number,
        day=formatting.day,
        until=end,
    )
    return {
        "report": report,
        "bar": bar,
        "units": {r.key: r.units for r in report.rows},
        "history": history,
        "choice": query,
        "period_text": period_label(query.period),
        "period_options": [(code, period_label(code)) for code in PERIODS],
        "arrondissement_options": [
            (str(n), formatting.ordinal_arrondissement(n)) for n in range(1, 21)
        ],
        "max_series": MAX_SERIES,
        "errors": query.errors,
    }


def _points(history: SurfaceHistory) -> list[tuple[date, float]]:
    return [(p.day, p.production_m2) for p in history.points]


def days_text(value: float | None) -> str:
    """A number of days in words, or a dash when there is none."""
    if value is None:
        return "—"
    return _("%(n)s days") % {"n": formatting.number(value)}


def letting_cells(name: str, f: LettingFigures) -> list[str]:
    """One row of the letting tables."""
    timed = (
        _("%(n)s of them timed") % {"n": formatting.number(f.timed_lets)}
        if f.timed_lets != f.lets
        else ""
    )
    return [
        name,
        formatting.number(f.open_vacancies),
        days_text(f.open_days_median),
        formatting.number(f.lets) + (f" ({timed})" if timed else ""),
        days_text(f.days_to_let_median),
        days_text(f.days_to_let_mean),
    ]


@router.get("/officer/letting", response_class=HTMLResponse)
async def letting_page(request: Request, user: UserDep, upstreams: UpstreamsDep) -> HTMLResponse:
    if not is_reader(user):
        return refused(request)
    errors: dict[str, str] = {}
    period = request.query_params.get("period") or LETTING_DEFAULT
    if period not in LETTING_PERIODS:
        errors["period"] = _("Choose one of the periods in the list.")
        period = LETTING_DEFAULT
    end = today()
    start = end - timedelta(days=LETTING_PERIODS[period] - 1)
    stats = await leasing.letting_stats(
        upstreams, user.access_token, start.isoformat(), end.isoformat()
    )
    context = letting_view(stats, period, errors)
    return render(request, "officer/letting.html", context, status=400 if errors else 200)


def letting_view(stats: LettingStats, period: str, errors: dict[str, str]) -> dict[str, Any]:
    """What letting.html shows: the tables by arrondissement and site kind, and the chart of
    the median days to let."""
    timed = [f for f in stats.by_arrondissement if f.days_to_let_median is not None]
    chart = charts.bar_chart(
        [(formatting.arrondissement(int(f.key)), f.days_to_let_median or 0.0) for f in timed],
        chart_id="time-to-let",
        title=_("Median days to let, by arrondissement, over %(period)s")
        % {"period": period_label(period)},
        desc=_(
            "Horizontal bars, one per arrondissement with a let whose vacancy opening is known: "
            "the median days from the vacancy opening to the lease signed. The table below "
            "gives these and the other figures."
        ),
        unit=_("days"),
        number=formatting.number,
        headers=(_("Arrondissement"), _("Median days to let")),
    )
    headers = [
        "",
        _("Open vacancies"),
        _("Open for (median)"),
        _("Lets in the period"),
        _("Days to let (median)"),
        _("Days to let (mean)"),
    ]
    return {
        "stats": stats,
        "period": period,
        "period_text": period_label(period),
        "period_options": [(code, period_label(code)) for code in LETTING_PERIODS],
        "headers": headers,
        "total_row": letting_cells(_("All of Paris"), stats.total),
        "rows_by_arrondissement": [
            letting_cells(formatting.arrondissement(int(f.key)), f) for f in stats.by_arrondissement
        ],
        "rows_by_kind": [letting_cells(formatting.site_kind(f.key), f) for f in stats.by_site_kind],
        "chart": chart,
        "has_timed": bool(timed),
        "errors": errors,
    }


# Calls for applications: every call, its results, the offers out of rank, the appeals ------

CALLS_PAGE_SIZE = 50
CALL_STATUSES = (
    "scheduled",
    "open",
    "closed",
    "under_review",
    "decided",
    "results_published",
    "cancelled",
)


def call_status_text(status: str) -> str:
    """A call's status in words."""
    names = {
        "scheduled": _("Scheduled: opens later"),
        "open": _("Open for applications"),
        "closed": _("Closed: ranking frozen"),
        "under_review": _("Under review"),
        "decided": _("Decided"),
        "results_published": _("Results published"),
        "cancelled": _("Cancelled"),
    }
    return names.get(status, status)


def outcome_text(outcome: str) -> str:
    """What became of a candidate, or of a call, in words."""
    names = {
        "leased": _("Lease signed"),
        "offered": _("Offered"),
        "offer_declined": _("Offer declined"),
        "offer_expired": _("Offer expired"),
        "rejected": _("Turned down"),
        "withdrawn": _("Withdrawn"),
        "not_chosen": _("Not chosen"),
        "not_reached": _("Not reached"),
        "unawarded": _("Nobody chosen"),
        "upheld": _("Appeal upheld"),
        "dismissed": _("Appeal dismissed"),
        "filed": _("Waiting for an answer"),
        "answered": _("Answered"),
    }
    return names.get(outcome, outcome)


@dataclass(frozen=True)
class OutOfRank:
    """A decision that did not follow the frozen ranking: an offer to someone below a
    candidate still in the running, or a rejection, with its published ground and text."""

    rank: int
    applicant: str
    decision: str
    ground: str
    reason: str
    decided_at: datetime


def out_of_rank(ranking: CallRanking | None, grounds: dict[str, str]) -> list[OutOfRank]:
    """The decisions of a ranking that carry an out-of-rank ground (a landlord's offer past
    the first in the running, or a rejection), in the order they were taken."""
    found = []
    for line in ranking.entries if ranking is not None else []:
        for d in line.decisions:
            if d.ground:
                found.append(
                    OutOfRank(
                        rank=line.rank,
                        applicant=line.applicant.display_name,
                        decision=d.decision,
                        ground=grounds.get(d.ground, d.ground),
                        reason=d.reason or "",
                        decided_at=d.decided_at,
                    )
                )
    return sorted(found, key=lambda o: o.decided_at)


@router.get("/officer/calls", response_class=HTMLResponse)
async def calls_page(request: Request, user: UserDep, upstreams: UpstreamsDep) -> HTMLResponse:
    if not is_reader(user):
        return refused(request)
    errors: dict[str, str] = {}
    status = request.query_params.get("status") or None
    if status is not None and status not in CALL_STATUSES:
        errors["status"] = _("Choose one of the statuses in the list.")
        status = None
    raw_page = request.query_params.get("page", "1")
    number = int(raw_page) if raw_page.isdigit() and int(raw_page) >= 1 else 1
    calls = await leasing.list_calls(
        upstreams, user.access_token, status, CALLS_PAGE_SIZE, (number - 1) * CALLS_PAGE_SIZE
    )
    listings = await asyncio.gather(
        *(leasing.get_listing(upstreams, c.unit_id) for c in calls.items)
    )
    return render(
        request,
        "officer/calls.html",
        {
            "calls": calls,
            "listings": dict(zip([c.id for c in calls.items], listings, strict=True)),
            "status": status or "",
            "status_options": [("", _("Every status"))]
            + [(s, call_status_text(s)) for s in CALL_STATUSES],
            "page_number": number,
            "pages": max(1, -(-calls.total // CALLS_PAGE_SIZE)),
            "errors": errors,
            "call_status_text": call_status_text,
            "moment": moment,
        },
        status=400 if errors else 200,
    )


@router.get("/officer/calls/{call_id}", response_class=HTMLResponse)
async def call_page(
    call_id: str, request: Request, user: UserDep, upstreams: UpstreamsDep
) -> HTMLResponse:
    if not is_reader(user):
        return refused(request)
    token = user.access_token
    call = await leasing.get_call(upstreams, token, call_id)
    listing, ranking, results, appeals, catalogue = await asyncio.gather(
        leasing.get_listing(upstreams, call.unit_id),
        leasing.call_ranking(upstreams, token, call.id),
        leasing.call_results(upstreams, call.id),
        leasing.call_appeals(upstreams, token, call.id),
        leasing.get_catalogue(upstreams),
    )
    grounds = {g.id: g.label for p in catalogue.programmes for g in p.out_of_rank_grounds}
    return render(
        request,
        "officer/call.html",
        {
            "call": call,
            "listing": listing,
            "ranking": ranking,
            "results": results,
            "appeals": appeals,
            "departures": out_of_rank(ranking, grounds),
            "call_status_text": call_status_text,
            "outcome_text": outcome_text,
            "results_view": results_view,
            "moment": moment,
        },
    )
