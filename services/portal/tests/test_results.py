"""The public results and the applicant's appeal: the table's criteria columns (the union of
the rows' grids), each row's points and departures in words, where an appeal stands and the
message beside its text, and the pages rendered from answers shaped like leasing's (no
applicant name can appear: the answers carry none; text is escaped)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from portal.i18n import set_locale
from portal.pages.applications import GROUNDS_MAX, WORDS, appeal_standing, check_grounds
from portal.pages.offers import moment
from portal.pages.officer import outcome_text
from portal.rendering import ENV
from portal.results_view import criterion_columns, departure_texts, result_cells, results_view
from portal.schemas import Appeal, Application, CallResults, ResultRow, ResultsPage
from portal.sessions import SignedIn

WHEN = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _french() -> None:
    set_locale("fr")


def criterion(cid: str, label: str, points: int, top: int) -> dict[str, Any]:
    return {"criterion_id": cid, "label": label, "points": points, "max_points": top}


def results(**fields: Any) -> CallResults:
    base: dict[str, Any] = {
        "call_id": "c1",
        "unit_id": "u1",
        "status": "results_published",
        "outcome": "leased",
        "closes_at": WHEN,
        "decided_at": WHEN,
        "results_published_at": WHEN,
        "appeals_close_at": WHEN + timedelta(days=60),
        "ranked": 2,
        "rows": [
            {"candidate": "Candidat 1", "rank": 1, "score": 30, "max_score": 40,
             "criteria": [criterion("young", "Entreprise de moins de 3 ans", 20, 20),
                          criterion("esus", "Label ESUS", 10, 20)],
             "outcome": "not_reached", "order_followed": True, "departures": []},
            {"candidate": "Candidat 2", "rank": 2, "score": 25, "max_score": 45,
             "criteria": [criterion("young", "Entreprise de moins de 3 ans", 15, 20),
                          criterion("trade", "Métier d'art", 10, 25)],
             "outcome": "leased", "order_followed": False,
             "departures": [{"decision": "offered", "ground": "jury_decision",
                             "ground_label": "Décision motivée du jury",
                             "explanation": "Deux <b>apprentis</b>."}]},
        ],
        "jury": {
            "members": [
                {"name": "Claire Martin", "organisation": "Ville de Paris", "role": "présidente",
                 "recused": False},
                {"name": "Paul Durand", "organisation": "Ateliers de Paris", "role": "expert",
                 "recused": True},
            ],
            "session_date": "2026-11-02",
            "decision": "Le second projet forme deux apprentis.",
        },
    }  # fmt: skip
    return CallResults.model_validate({**base, **fields})


def test_columns_are_the_union_of_every_grid_in_order_and_missing_lines_are_dashes() -> None:
    r = results()
    columns = criterion_columns(r.rows)
    assert [c.criterion_id for c in columns] == ["young", "esus", "trade"]
    assert result_cells(r.rows[0], columns) == ["20 sur 20", "10 sur 20", "—"]
    assert result_cells(r.rows[1], columns) == ["15 sur 20", "—", "10 sur 25"]
    assert criterion_columns([]) == []


def test_a_departure_reads_as_the_decision_its_ground_and_the_landlords_text() -> None:
    r = results()
    assert departure_texts(r.rows[0]) == []
    assert departure_texts(r.rows[1]) == [
        "Offre hors rang\u00a0: Décision motivée du jury — Deux <b>apprentis</b>."
    ]
    bare = ResultRow.model_validate(
        {"candidate": "Candidat 3", "rank": 3, "score": 1, "max_score": 2, "outcome": "rejected",
         "departures": [{"decision": "rejected", "ground": "incomplete", "explanation": None}]}
    )  # fmt: skip
    assert departure_texts(bare) == ["Refusée\u00a0: incomplete"]


def visitor_page(template: str, path: str, user: SignedIn | None = None, **context: Any) -> str:
    return ENV.get_template(template).render(
        request=None,
        lang="fr",
        path=path,
        query=[],
        tile_url=None,
        tile_attribution="",
        user=user,
        csrf_token="csrf-1",
        **context,
    )


def test_the_public_table_has_a_caption_scoped_headers_the_jury_and_the_deadline() -> None:
    r = results()
    html = visitor_page(
        "results_call.html",
        "/results/c1",
        listing=None,
        results=r,
        view=results_view(r),
        outcome_text=outcome_text,
        moment=moment,
    )
    assert '<caption class="table-caption" id="results-caption">' in html
    assert '<th scope="col" class="numeric">Label ESUS</th>' in html
    assert '<th scope="row">Candidat 2</th>' in html
    assert "Deux &lt;b&gt;apprentis&lt;/b&gt;." in html
    assert "Claire Martin" in html and "Non : récusé" in html.replace("\u00a0", " ")
    assert "Le second projet forme deux apprentis." in html
    assert moment(r.appeals_close_at) in html
    assert html.index("<h1") < html.index("<h2") < html.index("<h3")


def test_the_list_links_each_call_with_its_outcome() -> None:
    found = ResultsPage.model_validate(
        {"items": [{"call_id": "c1", "unit_id": "u1", "results_published_at": WHEN,
                    "appeals_close_at": WHEN}], "total": 1, "limit": 20, "offset": 0}
    )  # fmt: skip
    html = visitor_page(
        "results.html",
        "/results",
        items=[(found.items[0], None, "unawarded")],
        total=1,
        page=1,
        pages=1,
        outcome_text=outcome_text,
        moment=moment,
    )
    assert 'href="/results/c1"' in html and "Personne retenu" in html
    assert 'aria-current="page"' in html  # the menu's "Résultats des appels"


def application(**call: Any) -> Application:
    return Application.model_validate(
        {
            "id": "a1", "unit_id": "u1", "vacancy_id": "v1", "programme_id": "hij",
            "project": "Grès", "status": "rejected", "score": 30, "max_score": 40,
            "submitted_at": WHEN, "updated_at": WHEN,
            "call": {"call_id": "c1", "status": "results_published", "opens_at": WHEN,
                     "closes_at": WHEN, "rank": 1, "ranked_among": 2, "score": 30,
                     "max_score": 40,
                     "criteria": [{"criterion_id": "esus", "kind": "label",
                                   "label": "Label ESUS", "points": 10, "max_points": 20}],
                     **call},
        }
    )  # fmt: skip


def appeal(**fields: Any) -> Appeal:
    base: dict[str, Any] = {
        "id": "ap1", "application_id": "a1", "call_id": "c1", "status": "filed",
        "grounds": "Mes points <i>ESUS</i> n'ont pas été comptés.", "filed_at": WHEN,
    }  # fmt: skip
    return Appeal.model_validate({**base, **fields})


def test_an_appeal_is_open_while_the_period_runs_then_ended_and_once_filed_shown() -> None:
    r = results()
    a = application()
    assert appeal_standing(a, r, [], WHEN) == "open"
    assert appeal_standing(a, r, [], r.appeals_close_at) == "ended"
    assert appeal_standing(a, r, [appeal()], WHEN) == "filed"
    assert appeal_standing(a, None, [], WHEN) == "none"
    assert appeal_standing(application(rank=None), r, [], WHEN) == "none"


def test_the_appeals_text_is_bounded_with_a_sentence_beside_it() -> None:
    assert "au moins 20" in (check_grounds("trop court") or "")
    assert check_grounds("x" * 20) is None
    assert "5" in (check_grounds("x" * (GROUNDS_MAX + 1)) or "")


def artisan() -> SignedIn:
    return SignedIn(
        sub="u-art", name="Camille", email="c@example.org", email_verified=True,
        roles=frozenset({"artisan"}), access_token="t", csrf_token="csrf-1",
    )  # fmt: skip


def detail(**context: Any) -> str:
    base: dict[str, Any] = {
        "application": application(),
        "listing": None,
        "programme": None,
        "confirm": False,
        "errors": {},
        "reason": "",
        "refused": None,
        "done": "",
        "results": results(),
        "appeals": [],
        "appeal": "open",
        "grounds": "",
        "appeal_refused": None,
        "grounds_max": GROUNDS_MAX,
        **WORDS,
    }
    return visitor_page(
        "applications_detail.html", "/me/applications/a1", user=artisan(), **{**base, **context}
    )


def test_my_application_shows_my_rank_points_the_results_link_and_the_form() -> None:
    html = detail()
    assert "1er sur 2" in html or "1re sur 2" in html or "1e sur 2" in html
    assert "Label ESUS" in html and 'href="/results/c1"' in html
    assert 'action="/me/applications/a1/appeal"' in html and 'name="csrf_token"' in html
    wrong = detail(errors={"grounds": "Écrivez au moins 20 caractères."}, grounds="<court>")
    assert 'id="f-grounds-error"' in wrong and "&lt;court&gt;" in wrong
    assert 'aria-invalid="true"' in wrong


def test_my_appeal_and_its_answer_replace_the_form_and_a_refusal_says_the_period_ended() -> None:
    answered = appeal(status="answered", outcome="dismissed", answer="Le classement <b>tient</b>.",
                      answered_at=WHEN)  # fmt: skip
    html = detail(appeals=[answered], appeal="filed")
    assert "Mes points &lt;i&gt;ESUS&lt;/i&gt;" in html and "Le classement &lt;b&gt;tient" in html
    assert "Recours rejeté" in html and 'action="/me/applications/a1/appeal"' not in html
    late = detail(appeal="ended", appeal_refused="ended at 2026-…")
    assert 'id="appeal-refused"' in late
    assert moment(results().appeals_close_at) in late and "2026-…" not in late
