"""The officers' pages' pure parts (the history's period and choices, the value in force when a
period starts, the rows of the letting tables) and their pages rendered from answers shaped
like inventory's and leasing's."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime
from typing import Any

import pytest

from portal.i18n import set_locale
from portal.pages.offers import moment
from portal.pages.officer import (
    HistoryQuery,
    call_status_text,
    clip,
    letting_cells,
    letting_view,
    out_of_rank,
    outcome_text,
    surface_view,
)
from portal.rendering import ENV
from portal.results_view import results_view
from portal.schemas import (
    Appeal,
    Call,
    CallPage,
    CallRanking,
    CallResults,
    LettingFigures,
    LettingStats,
    SurfaceHistory,
    SurfaceReport,
)
from portal.sessions import SignedIn

TODAY = date(2026, 12, 1)


@pytest.fixture(autouse=True)
def _french() -> None:
    set_locale("fr")


def officer() -> SignedIn:
    return SignedIn(
        sub="o1",
        name="Sophie Lambert",
        email="sophie@example.org",
        email_verified=True,
        roles=frozenset({"officer"}),
        access_token="t",
        csrf_token="csrf-1",
    )


def page(template: str, path: str, **context: Any) -> str:
    return ENV.get_template(template).render(
        request=None,
        lang="fr",
        path=path,
        query=[],
        tile_url=None,
        tile_attribution="",
        user=officer(),
        csrf_token="csrf-1",
        **context,
    )


def test_a_period_starts_with_the_value_in_force_that_day() -> None:
    points = [(date(2024, 1, 5), 100.0), (date(2026, 3, 1), 150.0), (date(2026, 6, 1), 90.0)]
    assert clip(points, None) == points
    assert clip(points, date(2026, 1, 1)) == [
        (date(2026, 1, 1), 100.0),
        (date(2026, 3, 1), 150.0),
        (date(2026, 6, 1), 90.0),
    ]
    assert clip(points, date(2026, 3, 1)) == points[1:]
    assert clip(points, date(2027, 1, 1)) == [(date(2027, 1, 1), 90.0)]
    assert clip(points, date(2020, 1, 1)) == points


def test_history_choices_are_checked_in_words() -> None:
    q = HistoryQuery.parse(None, [])
    assert (q.period, q.arrondissements, q.errors) == ("3y", [], {})
    q = HistoryQuery.parse("10y", ["11", "3", "11"])
    assert (q.period, q.arrondissements, q.errors) == ("10y", [3, 11], {})
    q = HistoryQuery.parse("forever", ["21", "<b>"])
    assert q.period == "3y" and q.arrondissements == []
    assert q.errors["period"] == "Choisissez l'une des périodes de la liste."
    assert "1er au 20e" in q.errors["arrondissement"]
    q = HistoryQuery.parse("1y", [str(n) for n in range(1, 9)])
    assert len(q.arrondissements) == 6 and "6" in q.errors["arrondissement"]


def figures(key: str, **values: Any) -> LettingFigures:
    base: dict[str, Any] = {"key": key, "open_vacancies": 0, "lets": 0, "timed_lets": 0}
    return LettingFigures(**{**base, **values})


def test_letting_rows_say_days_and_which_lets_are_timed() -> None:
    f = figures(
        "11",
        open_vacancies=2,
        open_days_median=4.5,
        lets=3,
        timed_lets=2,
        days_to_let_median=12.0,
        days_to_let_mean=12.5,
    )
    assert letting_cells("11e arrondissement", f) == [
        "11e arrondissement",
        "2",
        "4,5\u00a0jours",
        "3 (dont 2 mesurés)",
        "12\u00a0jours",
        "12,5\u00a0jours",
    ]
    assert letting_cells("x", figures("all"))[2] == "—"


def test_surface_page_shows_bars_history_and_tables_with_the_same_figures() -> None:
    report = SurfaceReport.model_validate(
        {
            "by": "arrondissement",
            "total_production_m2": 3500.5,
            "rows": [
                {"key": "11", "label": "Paris 11e", "production_m2": 1000.5, "units": 2},
                {"key": "13", "label": "Paris 13e", "production_m2": 2500, "units": 5},
            ],
        }
    )
    history = SurfaceHistory.model_validate(
        {
            "arrondissement": 11,
            "points": [
                {"day": "2020-01-01", "production_m2": 800},
                {"day": "2026-02-01", "production_m2": 1000.5},
            ],
        }
    )
    query = HistoryQuery.parse("1y", ["11"])
    html = page(
        "officer/surface.html",
        "/officer/surface",
        **surface_view(report, [(11, history)], query, TODAY),
    )
    assert "3\u202f500,5\u00a0m² dans 7\u00a0locaux" in html
    svgs = [
        ET.fromstring(chunk.split("<figcaption")[0].strip())  # noqa: S314 - our own page
        for chunk in html.split('<figure class="chart-figure">')[1:]
    ]
    assert [s.get("id") for s in svgs] == ["surface-by-arrondissement", "surface-history"]
    bars = svgs[0].findall("{http://www.w3.org/2000/svg}g")
    values = [g.get("data-value") for g in bars if g.get("class") == "chart-bar"]
    assert values == ["1000.5", "2500"]
    assert '<td class="numeric">1\u202f000,5</td>' in html
    # the history starts on 2 December 2025 with the value then in force
    assert "2 décembre 2025" in html and "1 février 2026" in html
    assert 'value="11" checked' in html


def test_letting_page_tables_and_chart() -> None:
    stats = LettingStats(
        since=date(2025, 12, 2),
        until=TODAY,
        as_of=datetime(2026, 12, 1, 9, tzinfo=UTC),
        total=figures("all", open_vacancies=1, lets=2, timed_lets=1, days_to_let_median=3.0,
                      days_to_let_mean=3.0),
        by_arrondissement=[
            figures("11", lets=1, timed_lets=1, days_to_let_median=3.0, days_to_let_mean=3.0),
            figures("20", open_vacancies=1, open_days_median=6.0, lets=1),
        ],
        by_site_kind=[figures("hotel_industriel", open_vacancies=1, lets=2, timed_lets=1)],
    )  # fmt: skip
    html = page("officer/letting.html", "/officer/letting", **letting_view(stats, "1y", {}))
    assert 'id="time-to-let"' in html
    assert "Hôtel industriel" in html
    assert '<td class="numeric">6\u00a0jours</td>' in html
    assert html.count('class="total-row"') == 2


def test_an_artisan_gets_a_page_that_says_who_these_pages_are_for() -> None:
    html = page("officer/forbidden.html", "/officer/surface")
    assert "réservées aux agents de la Ville" in html


# Calls for applications ---------------------------------------------------------------------

WHEN = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)


def a_call(**fields: Any) -> Call:
    base: dict[str, Any] = {
        "id": "c1",
        "vacancy_id": "v1",
        "unit_id": "u1",
        "landlord_id": "l1",
        "status": "results_published",
        "opens_at": WHEN,
        "closes_at": WHEN,
        "ranking_frozen_at": WHEN,
        "decided_at": WHEN,
        "results_published_at": WHEN,
        "appeals_close_at": WHEN,
        "counts": {"applications": 3, "drafts": 0, "ranked": 3},
    }
    return Call.model_validate({**base, **fields})


def a_ranking() -> CallRanking:
    def line(rank: int, name: str, decisions: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "rank": rank,
            "application_id": f"a{rank}",
            "status": "submitted",
            "score": 50 - rank,
            "max_score": 100,
            "applicant": {"display_name": name, "business_name": name},
            "decisions": decisions,
        }

    offer = {
        "decision": "offered",
        "status_after": "offered",
        "actor_role": "landlord",
        "reason": "The first applicant's kilns need 60 kVA; <b>the unit</b> has 36.",
        "ground": "technical_unfit",
        "decided_at": WHEN,
    }
    plain = {**offer, "ground": None, "reason": None, "decision": "submitted"}
    return CallRanking.model_validate(
        {
            "call_id": "c1",
            "status": "results_published",
            "entries": [line(1, "Atelier Roux", [plain]), line(2, "Bois Debout", [offer])],
        }
    )


def test_out_of_rank_decisions_come_with_their_ground_in_words() -> None:
    found = out_of_rank(a_ranking(), {"technical_unfit": "The unit cannot take the equipment"})
    assert [(d.rank, d.applicant, d.decision, d.ground) for d in found] == [
        (2, "Bois Debout", "offered", "The unit cannot take the equipment")
    ]
    assert out_of_rank(None, {}) == []
    assert call_status_text("under_review") == "En cours d'examen"


def test_call_page_shows_departures_results_and_appeals_escaped() -> None:
    results = CallResults.model_validate(
        {
            "call_id": "c1",
            "outcome": "leased",
            "results_published_at": WHEN,
            "appeals_close_at": WHEN,
            "ranked": 2,
            "rows": [
                {"candidate": "Candidat 1", "rank": 1, "score": 49, "max_score": 100,
                 "outcome": "not_chosen", "order_followed": True, "departures": []},
                {"candidate": "Candidat 2", "rank": 2, "score": 48, "max_score": 100,
                 "outcome": "leased", "order_followed": False,
                 "departures": [{"decision": "offered", "ground": "technical_unfit",
                                 "ground_label": "Équipement impossible",
                                 "explanation": "60 kVA"}]},
            ],
        }
    )  # fmt: skip
    appeal = Appeal.model_validate(
        {
            "id": "ap1",
            "application_id": "a1",
            "call_id": "c1",
            "status": "answered",
            "grounds": "My <i>kilns</i> only need 30 kVA.",
            "filed_at": WHEN,
            "outcome": "dismissed",
            "answer": "The datasheet says 60 kVA.",
            "answered_at": WHEN,
        }
    )
    html = page(
        "officer/call.html",
        "/officer/calls/c1",
        call=a_call(),
        listing=None,
        ranking=a_ranking(),
        results=results,
        appeals=[appeal],
        departures=out_of_rank(a_ranking(), {"technical_unfit": "Équipement impossible"}),
        call_status_text=call_status_text,
        outcome_text=outcome_text,
        results_view=results_view,
        moment=moment,
    )
    assert "Bois Debout" in html and "Équipement impossible" in html
    assert "&lt;b&gt;the unit&lt;/b&gt;" in html and "&lt;i&gt;kilns&lt;/i&gt;" in html
    assert "Candidat 2" in html and "60 kVA" in html
    assert "Recours rejeté" in html and "The datasheet says 60 kVA." in html
    assert "3 novembre 2026, 10:30" in html


def test_calls_list_links_each_call() -> None:
    calls = CallPage.model_validate(
        {"items": [a_call().model_dump()], "total": 1, "limit": 50, "offset": 0}
    )
    html = page(
        "officer/calls.html",
        "/officer/calls",
        calls=calls,
        listings={"c1": None},
        status="",
        status_options=[("", "Tous les statuts")],
        page_number=1,
        pages=1,
        errors={},
        call_status_text=call_status_text,
        moment=moment,
    )
    assert 'href="/officer/calls/c1"' in html
    assert "Résultats publiés" in html
