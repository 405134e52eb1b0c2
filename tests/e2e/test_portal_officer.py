"""The City officers' pages in Chromium on the seeded platform (real processes, real Keycloak):
Sophie Lambert (city officer) logs in, reaches the pages from her space, and reads the
production surface — the bars' and the tables' figures are inventory's — its history for two
arrondissements — each series' figures are the ledger's — and the vacancies and time to let —
leasing's figures for the same period; a choice that is not offered is explained beside its
field; the page printed (print media emulated, a screenshot). Camille (artisan) is shown a
page saying who these pages are for (403), and a visitor is sent to the login. axe-core,
sideways scrolling and screenshots on every page (check_page)."""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import pytest

from fabkit.auth import Role
from fabkit.localstack.platform import Platform
from fabkit.oidc_testing import TEST_PASSWORD

from .browser import TIMEOUT_MS, check_page, log_in, new_tab, screenshot
from .harness import Api, bearer, check, eventually, identities, months_later, tag, today
from .scenario import PROJECT, close_call

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

PASSWORD = "fabrique-demo-2026"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def portal(platform: Platform) -> str:
    assert "portal" in platform.services, "deploy/services.json does not start the portal"
    return platform.services["portal"].url


def api_get(platform: Platform, service: str, path: str, **params: Any) -> Any:
    """A public API's answer, read directly (what the page must show)."""
    token = params.pop("token", None)
    r = httpx.get(
        platform.services[service].url + path, params=params, headers=bearer(token), timeout=20
    )
    assert r.status_code == 200, r.text
    return r.json()


def figure(text: str) -> float:
    """A number as the French page writes it (1 234,5) read back."""
    cleaned = re.sub(r"[\s\u00a0\u202f]|m²|jours?", "", text).replace(",", ".")
    return float(cleaned)


def table_rows(tab: Any, caption_starts: str) -> list[list[str]]:
    """The body rows (header cell first) of the table whose caption starts so."""
    caption = tab.locator("caption", has_text=re.compile("^" + re.escape(caption_starts)))
    table = tab.locator("table", has=caption)
    assert table.count() == 1, f"no single table captioned {caption_starts!r}"
    return [
        [c.inner_text().strip() for c in row.locator("th, td").all()]
        for row in table.locator("tbody tr").all()
    ]


def test_an_officer_reads_the_production_surface_and_time_to_let(
    axe_tab: Any, platform: Platform, portal: str
) -> None:
    tab = axe_tab
    log_in(tab, portal, "sophie.lambert", PASSWORD)
    tab.goto(portal + "/me")
    assert "Agent ou agente de la Ville" in tab.locator(".account-summary").inner_text()
    tab.locator(".me-sections").get_by_role("link", name="Pages des agents de la Ville").click()
    tab.wait_for_url(portal + "/officer")
    assert tab.locator("h1").inner_text() == "Pages des agents de la Ville"
    check_page(tab, "officer-index")

    # Production surface today: every bar and every row is inventory's figure.
    tab.get_by_role("link", name="Surface de production").first.click()
    tab.wait_for_url(portal + "/officer/surface")
    report = api_get(platform, "inventory", "/v1/production-surface", by="arrondissement")
    assert report["rows"], "the seeded platform has production surfaces"
    chart = tab.locator("svg#surface-by-arrondissement")
    assert chart.count() == 1, tab.locator("main").inner_text()[:3000]
    assert chart.get_attribute("role") == "img"
    labelled = chart.get_attribute("aria-labelledby") or ""
    assert tab.locator(f"#{labelled.split()[0]}").text_content() == (
        "Surface de production par arrondissement, aujourd'hui"
    )
    bars = chart.locator("g.chart-bar").all()
    assert [float(b.get_attribute("data-value")) for b in bars] == [
        round(r["production_m2"], 2) for r in report["rows"]
    ]
    assert [b.get_attribute("data-label") for b in bars] == [
        f"{int(r['key'])}{'er' if r['key'] == '1' else 'e'} arrondissement" for r in report["rows"]
    ]
    rows = table_rows(tab, "Surface de production par arrondissement")
    assert [figure(r[1]) for r in rows[:-1]] == [r["production_m2"] for r in report["rows"]]
    assert [int(figure(r[2])) for r in rows[:-1]] == [r["units"] for r in report["rows"]]
    assert rows[-1][0] == "Tout Paris"
    assert figure(rows[-1][1]) == report["total_production_m2"]
    check_page(tab, "officer-surface")

    # The history of two arrondissements since the ledger began.
    first, second = (int(r["key"]) for r in report["rows"][:2])
    form = tab.locator("form.history-form")
    form.get_by_label("Période").select_option("all")
    for n in (first, second):
        form.locator(f"#f-arrondissement-{n}").check()
    form.get_by_role("button", name="Afficher l'historique").click()
    tab.wait_for_load_state()
    assert f"arrondissement={first}" in tab.url and "period=all" in tab.url
    series = tab.locator("svg#surface-history g.chart-series").all()
    names = [s.get_attribute("data-series") for s in series]
    assert names == [f"{n}{'er' if n == 1 else 'e'} arrondissement" for n in (first, second)]
    dashes = {s.locator("path").first.get_attribute("stroke-dasharray") for s in series}
    assert len(dashes) == 2, "each series has its own dash pattern"
    history_rows = table_rows(tab, "Surface de production (m²) à chaque jour")
    for column, n in enumerate((first, second), start=1):
        ledger = api_get(platform, "inventory", "/v1/production-surface/history", arrondissement=n)[
            "points"
        ]
        assert ledger, f"the ledger has entries for the {n}e"
        shown = [figure(r[column]) for r in history_rows if r[column] != "—"]
        assert shown[-1] == ledger[-1]["production_m2"]
        label = series[column - 1].locator("text.chart-label").text_content() or ""
        assert figure(label.split("·")[1]) == ledger[-1]["production_m2"]
    check_page(tab, "officer-surface-history")

    # Printed: the menu, the form and the footer go, the charts and tables stay.
    tab.emulate_media(media="print")
    screenshot(tab, "officer-surface-print")
    assert not tab.locator(".site-nav").is_visible()
    assert not tab.locator("form.history-form").is_visible()
    assert tab.locator("svg#surface-history").is_visible()
    assert tab.locator("svg#surface-by-arrondissement").is_visible()
    tab.emulate_media(media="screen")

    # A period that is not offered is explained beside its field, with a summary at the top.
    response = tab.goto(portal + "/officer/surface?period=forever&arrondissement=25")
    assert response is not None and response.status == 400
    assert tab.locator(".error-summary").is_visible()
    assert (
        "Choisissez l'une des périodes de la liste." in tab.locator("#f-period-error").inner_text()
    )
    assert "du 1er au 20e" in tab.locator("#f-arrondissement-error").inner_text()
    assert tab.locator("#f-period").get_attribute("aria-invalid") == "true"
    check_page(tab, "officer-surface-error", ("desktop",))

    # Vacancies and time to let: leasing's figures for the same 12 months.
    tab.goto(portal + "/officer/surface")
    tab.locator(".officer-nav").get_by_role("link", name="Vacances et délais de location").click()
    tab.wait_for_url(portal + "/officer/letting")
    end = today()
    token = identities(platform).token(Role.OFFICER, "e2e-officer-reader")
    stats = api_get(
        platform,
        "leasing",
        "/v1/stats/letting",
        since=(end - timedelta(days=364)).isoformat(),
        until=end.isoformat(),
        token=token,
    )
    by_arrondissement = table_rows(tab, "Vacances et délais de location par arrondissement")
    assert by_arrondissement[-1][0] == "Tout Paris"
    assert int(figure(by_arrondissement[-1][1])) == stats["total"]["open_vacancies"]
    assert int(figure(by_arrondissement[-1][3].split("(")[0])) == stats["total"]["lets"]
    assert [int(figure(r[1])) for r in by_arrondissement[:-1]] == [
        f["open_vacancies"] for f in stats["by_arrondissement"]
    ]
    by_kind = table_rows(tab, "Vacances et délais de location par type de site")
    assert [int(figure(r[1])) for r in by_kind[:-1]] == [
        f["open_vacancies"] for f in stats["by_site_kind"]
    ]
    lead = tab.locator("p.lead").inner_text()
    assert f"{stats['total']['open_vacancies']}\u00a0vacances ouvertes" in lead or (
        f"{stats['total']['open_vacancies']} vacances ouvertes" in lead
    )
    check_page(tab, "officer-letting")
    assert tab.problems == []


def test_an_artisan_is_told_these_pages_are_for_officers_and_a_visitor_logs_in(
    axe_tab: Any, portal: str
) -> None:
    tab = axe_tab
    response = tab.goto(portal + "/officer/surface")
    assert response is not None
    tab.wait_for_selector("#kc-form-login", timeout=TIMEOUT_MS)  # signed out: the login first
    tab.goto(portal + "/")
    log_in(tab, portal, "camille.roux", PASSWORD)
    assert (
        tab.locator(".site-nav").get_by_role("link", name="Pages des agents de la Ville").count()
        == 0
    )
    tab.goto(portal + "/me")
    assert (
        tab.locator(".me-sections").get_by_role("link", name="Pages des agents de la Ville").count()
        == 0
    )
    for path in ("/officer", "/officer/surface", "/officer/letting"):
        response = tab.goto(portal + path)
        assert response is not None and response.status == 403, path
        assert tab.locator("h1").inner_text() == "Ces pages sont réservées aux agents de la Ville"
        assert "rôle d'agent de la Ville" in tab.locator("main").inner_text()
        assert tab.locator("svg.chart").count() == 0
    check_page(tab, "officer-refused")
    assert tab.problems == []


OUT_OF_RANK = {
    "ground": "jury_decision",
    "explanation": "The jury preferred the second project for its two apprentices.",
}
APPEAL = "My points for the trade were not counted; please check the second criterion."
ANSWER = "The trade points were counted on line two of the grid; the ranking stands."


async def _decided_call(platform: Platform) -> dict[str, Any]:
    """A call through the public APIs: two applicants, the call closed by its landlord's new
    closing date, the second in rank offered the unit out of rank on a published ground and
    signing, the results published, an appeal by the first answered by an officer."""
    async with httpx.AsyncClient(timeout=30) as http:
        api = Api(platform, http)
        trade = tag("officer")
        _, landlord = await api.new_landlord()
        site = await api.new_site(landlord, arrondissement=18)
        unit = await api.new_unit(landlord, site["id"], trades=[trade], reference="OFF1")
        first = await api.register_artisan([trade], name="Atelier Premier", age_years=1)
        second = await api.register_artisan([trade], name="Atelier Second", age_years=2)
        opened = check(await api.set_status(landlord, unit["id"], "available"), 200)

        async def listed() -> Any:
            listing = await api.leasing_unit(unit["id"])
            return listing if listing and listing["vacancy_id"] == opened["vacancy_id"] else None

        await eventually(listed, timeout=60, what="leasing to list the vacancy")
        apps = {}
        for artisan in (first, second):
            body = {"unit_id": unit["id"], "project": PROJECT}
            made = check(await api.write("POST", "leasing", "/v1/applications", artisan.token,
                                         json=body), 201)  # fmt: skip
            apps[artisan.id] = made
        call_id = apps[first.id]["call_id"]
        await close_call(api, landlord, call_id)
        ranking = check(
            await http.get(api.url("leasing", f"/v1/calls/{call_id}/ranking"),
                           headers=bearer(api.admin)),
            200,
        )  # fmt: skip
        by_rank = {e["rank"]: e for e in ranking["entries"]}
        top, lower = by_rank[1], by_rank[2]
        winner = first if lower["application_id"] == apps[first.id]["id"] else second
        loser = second if winner is first else first
        start = today()
        offer = {
            "monthly_rent_eur": "900.00",
            "start_date": start.isoformat(),
            "end_date": months_later(start, 12).isoformat(),
            "out_of_rank": OUT_OF_RANK,
        }
        lease = check(await api.write("POST", "leasing",
                                      f"/v1/applications/{lower['application_id']}/offer",
                                      landlord, json=offer), 201)  # fmt: skip
        check(await api.write("POST", "leasing", f"/v1/leases/{lease['id']}/accept",
                              winner.token), 200)  # fmt: skip
        check(
            await api.write("POST", "leasing", f"/v1/calls/{call_id}/results", landlord), 200, 201
        )
        return {
            "call_id": call_id,
            "winner": lower,
            "appellant": f"t-artisan-{loser.id}".lower(),
            "appealed": top["application_id"],
            "results": check(
                await http.get(api.url("leasing", f"/v1/calls/{call_id}/results")), 200
            ),
            "programmes": check(await http.get(api.url("leasing", "/v1/programmes")), 200),
        }


async def _answer_the_appeal(platform: Platform, call_id: str) -> dict[str, Any]:
    """An officer answers the one appeal against the call (filed through the portal)."""
    async with httpx.AsyncClient(timeout=30) as http:
        api = Api(platform, http)
        officer = await asyncio.to_thread(api.identities.token, Role.OFFICER, "e2e-officer-answers")
        found = check(await http.get(api.url("leasing", "/v1/appeals"), params={"call_id": call_id},
                                     headers=bearer(officer)), 200)  # fmt: skip
        assert [a["grounds"] for a in found["items"]] == [APPEAL], found
        appeal = found["items"][0]
        check(await api.write("POST", "leasing", f"/v1/appeals/{appeal['id']}/answer", officer,
                              json={"outcome": "dismissed", "answer": ANSWER}), 200)  # fmt: skip
        return appeal


def _a_visitor_reads_the_results(tab: Any, portal: str, made: dict[str, Any]) -> None:
    """No login: the menu's "Résultats des appels", the list, and the call's anonymised table
    whose ranks and points are the API's, with no applicant's name."""
    call_id, published = made["call_id"], made["results"]
    tab.goto(portal + "/")
    tab.locator("nav.site-nav").get_by_role("link", name="Résultats des appels").click()
    tab.wait_for_url(portal + "/results")
    check_page(tab, "results-list", ("desktop",))
    link = tab.locator(f"a[href='/results/{call_id}']")
    if link.count() == 0:  # older calls of the module come first: leasing lists the latest first
        raise AssertionError("the newest published call is not on the first page of /results")
    assert "Bail signé" in tab.locator("tr", has=link).inner_text()
    link.click()
    tab.wait_for_url(f"{portal}/results/{call_id}")
    rows = tab.locator("#results-table tbody tr")
    assert rows.count() == len(published["rows"])
    columns: list[str] = []
    for r in published["rows"]:
        columns += [c["criterion_id"] for c in r["criteria"] if c["criterion_id"] not in columns]
    for shown, r in zip(rows.all(), published["rows"], strict=True):
        assert shown.locator("th").inner_text() == r["candidate"]
        assert shown.locator(".result-rank").inner_text() == str(r["rank"])
        assert shown.locator(".result-score").inner_text() == f"{r['score']} sur {r['max_score']}"
        points = {c["criterion_id"]: c for c in r["criteria"]}
        expected = [
            f"{points[c]['points']} sur {points[c]['max_points']}" if c in points else "—"
            for c in columns
        ]
        assert [c.inner_text() for c in shown.locator(".result-criterion").all()] == expected
    table = tab.locator("#results-table").inner_text()
    assert OUT_OF_RANK["explanation"] in table
    body = tab.locator("main").inner_text()
    assert "Atelier Premier" not in body and "Atelier Second" not in body
    check_page(tab, "results-call")


def _the_applicant_appeals(tab: Any, portal: str, made: dict[str, Any]) -> None:
    """The first in rank, passed over, sees their rank and points and appeals through the
    form: too short first (the message beside the field), then the grounds."""
    log_in(tab, portal, made["appellant"], TEST_PASSWORD)
    tab.goto(f"{portal}/me/applications/{made['appealed']}")
    assert tab.locator("#my-call-rank").inner_text().endswith("sur 2")
    assert tab.locator(f"a[href='/results/{made['call_id']}']").count() >= 1
    tab.fill("#f-grounds", "Trop court.")
    tab.get_by_role("button", name="Déposer mon recours").click()
    tab.wait_for_load_state()
    assert "au moins 20 caractères" in tab.locator("#f-grounds-error").inner_text()
    tab.fill("#f-grounds", APPEAL)
    tab.get_by_role("button", name="Déposer mon recours").click()
    tab.wait_for_url(f"{portal}/me/applications/{made['appealed']}?done=appealed")
    mine = tab.locator(".my-appeal")
    assert mine.count() == 1 and APPEAL in mine.inner_text()
    assert tab.locator("#f-grounds").count() == 0
    check_page(tab, "applicant-appeal", ("desktop",))


def test_an_officer_reads_every_call_its_results_the_offers_out_of_rank_and_the_appeals(
    axe_tab: Any, browser: Any, platform: Platform, portal: str
) -> None:
    with ThreadPoolExecutor(1) as pool:  # the harness is async; Playwright's sync API is not
        made = pool.submit(asyncio.run, _decided_call(platform)).result(timeout=300)
        applicant = new_tab(browser, bypass_csp=True, console_errors=False)
        try:
            _a_visitor_reads_the_results(applicant, portal, made)
            _the_applicant_appeals(applicant, portal, made)
            pool.submit(asyncio.run, _answer_the_appeal(platform, made["call_id"])).result(60)
            applicant.reload()
            answer = applicant.locator(".my-appeal-answer")
            assert answer.inner_text() == ANSWER
            assert "Recours rejeté" in applicant.locator(".my-appeal").inner_text()
            assert applicant.problems == []
        finally:
            applicant.context.close()
    call_id = made["call_id"]
    ground = next(
        g["label"]
        for p in made["programmes"]["programmes"]
        for g in p.get("out_of_rank_grounds", [])
        if g["id"] == OUT_OF_RANK["ground"]
    )
    tab = axe_tab
    log_in(tab, portal, "sophie.lambert", PASSWORD)
    tab.goto(portal + "/officer")
    tab.locator(".me-sections").get_by_role("link", name="Appels à candidatures").click()
    tab.wait_for_url(portal + "/officer/calls")
    calls = api_get(platform, "leasing", "/v1/calls", limit=50)
    caption = tab.locator("#calls-caption").inner_text()
    assert str(calls["total"]) in caption.replace("\u202f", "").replace("\u00a0", " ")
    link = tab.locator(f"a[href='/officer/calls/{call_id}']")
    assert link.count() == 1
    assert "Résultats publiés" in tab.locator("tr", has=link).inner_text()
    check_page(tab, "officer-calls")

    # Filtered by status: only calls whose results are published.
    tab.get_by_label("Statut").select_option("results_published")
    tab.get_by_role("button", name="Afficher").click()
    tab.wait_for_load_state()
    assert "status=results_published" in tab.url
    published = api_get(platform, "leasing", "/v1/calls", status="results_published", limit=50)
    assert tab.locator("tbody tr").count() == len(published["items"])

    tab.locator(f"a[href='/officer/calls/{call_id}']").click()
    tab.wait_for_url(f"{portal}/officer/calls/{call_id}")
    departures = tab.locator("table", has=tab.locator("#departures-caption"))
    row = departures.locator("tbody tr")
    assert row.count() == 1
    cells = [c.inner_text() for c in row.first.locator("th, td").all()]
    assert cells[0] == "2" and cells[2] == "Offre hors rang"
    assert cells[3] == ground and cells[4] == OUT_OF_RANK["explanation"]
    results = tab.locator("#results-table tbody tr")
    assert results.count() == len(made["results"]["rows"])
    shown = [r.locator("th").inner_text() for r in results.all()]
    assert shown == [r["candidate"] for r in made["results"]["rows"]]
    assert OUT_OF_RANK["explanation"] in tab.locator("#results-table").inner_text()
    appeals = tab.locator(".appeal-list li")
    assert appeals.count() == 1
    assert APPEAL in appeals.first.inner_text() and ANSWER in appeals.first.inner_text()
    assert "Recours rejeté" in appeals.first.inner_text()
    assert "Atelier Premier" not in tab.locator("#results-table").inner_text()
    assert tab.locator(f"a[href='/results/{call_id}']").count() == 1
    check_page(tab, "officer-call")
    assert tab.problems == []
