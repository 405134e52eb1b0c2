"""The no-net-loss pages in Chromium on the seeded platform (real processes, real Keycloak):
Sophie Lambert (city officer) reads the balance — each arrondissement's figures are those of
inventory's /v1/surface/balance — and the flags of the demo data, records a development project
(a missing name explained beside its field, then recorded), and marks the demo's late
compensation delivered (an unknown unit refused beside its field, then a production unit of
the arrondissement), after which it is no longer flagged. Léa Martin (RIVP) shrinks a unit:
without a compensation inventory refuses it, and the refusal is shown beside the compensation's
field; with one it is saved. A visitor opens the open-data page and downloads a CSV from its
stable URL. axe-core, sideways scrolling and screenshots on every page (check_page)."""

from __future__ import annotations

import re
import time
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest

from fabkit.auth import Role
from fabkit.localstack.platform import Platform

from .browser import check_page, log_in
from .harness import identities, today

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

PASSWORD = "fabrique-demo-2026"
RIVP = "ad1225aa-57cd-5ef3-a7d4-fe896f9b6e76"  # lea.martin's landlord (demo-directory.json)
LIVE = ("available", "unavailable", "reserved", "leased")


@pytest.fixture(scope="module")
def portal(platform: Platform) -> str:
    assert "portal" in platform.services, "deploy/services.json does not start the portal"
    return platform.services["portal"].url


def inventory(platform: Platform, path: str, **params: Any) -> Any:
    r = httpx.get(platform.services["inventory"].url + path, params=params, timeout=20)
    assert r.status_code == 200, r.text
    return r.json()


def figure(text: str) -> float:
    """A number as the French page writes it (+1 234,5, −80) read back."""
    cleaned = re.sub(r"[\s\u00a0\u202f+]|m²", "", text).replace(",", ".").replace("\u2212", "-")
    return float(cleaned.split("(")[0])


def table_rows(tab: Any, caption_starts: str) -> dict[str, list[str]]:
    caption = tab.locator("caption", has_text=re.compile("^" + re.escape(caption_starts)))
    table = tab.locator("table", has=caption)
    assert table.count() == 1, f"no single table captioned {caption_starts!r}"
    rows = {}
    for row in table.locator("tbody tr").all():
        cells = [c.inner_text().strip() for c in row.locator("th, td").all()]
        rows[cells[0]] = cells[1:]
    return rows


def officer_token(platform: Platform) -> str:
    """An officer's token (the flags are for officers and admins only)."""
    return identities(platform).token(Role.OFFICER)  # type: ignore[no-any-return]


def test_an_officer_reads_the_balance_acts_on_flags_and_records_a_project(
    axe_tab: Any, platform: Platform, portal: str
) -> None:
    tab = axe_tab
    log_in(tab, portal, "sophie.lambert", PASSWORD)
    tab.goto(portal + "/officer")
    tab.locator(".me-sections").get_by_role("link", name="Zéro perte nette : le bilan").click()
    tab.wait_for_url(portal + "/officer/balance")
    assert tab.locator("h1").inner_text() == "Zéro perte nette\u00a0: le bilan"
    balance = inventory(platform, "/v1/surface/balance")
    shown = table_rows(tab, "Pertes, compensations et solde net")
    losing = [r for r in balance["rows"] if r["losses_m2"] > 0]
    assert len(losing) >= 2, "the demo data has losses in at least two arrondissements"
    for r in balance["rows"]:
        name = f"{r['arrondissement']}{'er' if r['arrondissement'] == 1 else 'e'} arrondissement"
        cells = shown[name]
        assert figure(cells[0]) == pytest.approx(r["losses_m2"], abs=0.05)
        assert figure(cells[1]) == pytest.approx(r["compensations_delivered_m2"], abs=0.05)
        assert figure(cells[3]) == pytest.approx(r["late_m2"], abs=0.05)
        assert figure(cells[4]) == pytest.approx(r["uncompensated_m2"], abs=0.05)
        assert figure(cells[6]) == pytest.approx(r["net_m2"], abs=0.05)
    assert tab.locator("svg#net-balance").count() == 1
    assert table_rows(tab, "Solde net des m² de production depuis le début du registre")
    check_page(tab, "officer-balance")

    # The flags: the demo's uncompensated loss and late compensation, with what to do.
    token = officer_token(platform)
    flags = httpx.get(
        platform.services["inventory"].url + "/v1/surface/flags",
        headers={"Authorization": f"Bearer {token}"},
        timeout=20,
    ).json()
    assert flags["uncompensated_losses"] >= 1 and flags["late_compensations"] >= 1
    tab.locator(".officer-nav").get_by_role("link", name="Signalements").click()
    tab.wait_for_url(portal + "/officer/flags")
    assert tab.locator(".flag").count() == len(flags["flags"])
    assert "Cherchez de nouveaux m² de production" in tab.locator("main").inner_text()
    late = next(f for f in flags["flags"] if f["kind"] == "late_compensation")
    assert tab.locator(f"a[href='/units/{late['unit_id']}']").count() >= 1
    check_page(tab, "officer-flags")

    # Development projects: the demo's Bercy-Charenton, then a new one.
    tab.locator(".officer-nav").get_by_role("link", name="Projets d’aménagement").click()
    tab.wait_for_url(portal + "/officer/projects")
    bercy = tab.locator(".project", has_text="Bercy-Charenton")
    assert "sur 20\u202f000 m² promis" in bercy.inner_text()
    check_page(tab, "officer-projects")
    name = f"Ordener-Poissonniers {uuid.uuid4().hex[:6]}"
    tab.select_option("#f-arrondissement", "18")
    tab.fill("#f-committed_m2", "12 500")
    tab.fill("#f-delivery_on", "2031-06-30")
    tab.get_by_role("button", name="Enregistrer le projet").click()
    tab.wait_for_load_state()
    assert "Écrivez le nom du projet" in tab.locator("#f-name-error").inner_text()
    assert tab.locator("#f-name").get_attribute("aria-invalid") == "true"
    assert tab.locator(".error-summary a[href='#f-name']").count() == 1
    assert tab.locator("#f-committed_m2").input_value() == "12 500"  # kept
    check_page(tab, "officer-projects-invalid")
    tab.fill("#f-name", name)
    tab.get_by_role("button", name="Enregistrer le projet").click()
    tab.wait_for_url(portal + "/officer/projects?done=recorded")
    recorded = [p for p in inventory(platform, "/v1/projects", limit=100)["items"]
                if p["name"] == name]  # fmt: skip
    assert len(recorded) == 1 and recorded[0]["committed_m2"] == 12500
    assert recorded[0]["arrondissement"] == 18
    assert (
        "0 m² gardés sur 12\u202f500 m² promis"
        in tab.locator(f"#project-{recorded[0]['id']}").inner_text()
    )

    # The late compensation marked delivered: an unknown unit first, then a real one.
    arrondissement = late["arrondissement"]
    candidates = inventory(
        platform, "/v1/units", arrondissement=arrondissement, use_class="production",
        status=list(LIVE), limit=100,
    )["items"]  # fmt: skip
    unit = next(u for u in candidates if u["id"] != late["unit_id"])
    tab.goto(portal + "/officer/flags")
    tab.locator(f"a[href='/officer/compensations/{late['compensation_id']}/delivery']").click()
    tab.wait_for_url(f"{portal}/officer/compensations/{late['compensation_id']}/delivery")
    check_page(tab, "officer-delivery")
    tab.fill("#f-unit_id", "no-such-unit")
    tab.get_by_role("button", name="La marquer livrée").click()
    tab.wait_for_load_state()
    assert "Aucun lot n’a cet identifiant" in tab.locator("#f-unit_id-error").inner_text()
    check_page(tab, "officer-delivery-invalid")
    tab.fill("#f-unit_id", unit["id"])
    tab.fill("#f-delivered_on", (today() - timedelta(days=1)).isoformat())
    tab.get_by_role("button", name="La marquer livrée").click()
    tab.wait_for_url(portal + "/officer/flags?done=delivered")
    assert "La compensation est marquée livrée" in tab.locator(".banner-success").inner_text()
    assert tab.locator(f"a[href$='{late['compensation_id']}/delivery']").count() == 0
    after = httpx.get(
        platform.services["inventory"].url + "/v1/surface/flags",
        headers={"Authorization": f"Bearer {token}"},
        timeout=20,
    ).json()
    assert late["compensation_id"] not in [f["compensation_id"] for f in after["flags"]]
    assert after["late_compensations"] == flags["late_compensations"] - 1
    assert tab.problems == [], tab.problems


def test_a_landlords_loss_of_production_m2_needs_its_compensation(
    axe_tab: Any, platform: Platform, portal: str
) -> None:
    tab = axe_tab
    log_in(tab, portal, "lea.martin", PASSWORD)
    units = inventory(
        platform, "/v1/units", landlord_id=RIVP, use_class="production", status=list(LIVE),
        limit=100,
    )["items"]  # fmt: skip
    unit = max(units, key=lambda u: u["surface_m2"])
    tab.goto(f"{portal}/landlord/units/{unit['id']}")
    assert "zéro perte nette" in tab.locator(".compensation").inner_text()
    smaller = unit["surface_m2"] - 10
    tab.fill("#f-surface_m2", f"{smaller:g}".replace(".", ","))
    tab.get_by_role("button", name="Enregistrer le lot").click()
    tab.wait_for_load_state()
    refusal = tab.locator("#f-comp_m2-error").inner_text()
    assert "la surface de production doit être préservée" in refusal
    assert tab.locator(".error-summary a[href='#f-comp_m2']").count() == 1
    check_page(tab, "landlord-unit-loss-refused")
    same = inventory(platform, f"/v1/units/{unit['id']}")
    assert same["surface_m2"] == unit["surface_m2"] and same["version"] == unit["version"]

    tab.fill("#f-comp_m2", "10")
    tab.select_option("#f-comp_status", "planned")
    tab.fill("#f-comp_due_on", "2028-06-30")
    tab.fill("#f-comp_description", "Atelier en rez-de-chaussée du prochain immeuble RIVP")
    tab.get_by_role("button", name="Enregistrer le lot").click()
    tab.wait_for_url(f"{portal}/landlord/units/{unit['id']}?done=saved")
    saved = inventory(platform, f"/v1/units/{unit['id']}")
    assert saved["surface_m2"] == pytest.approx(smaller)
    assert tab.problems == [], tab.problems


def test_a_visitor_reads_the_open_data_page_and_downloads_a_csv(
    axe_tab: Any, platform: Platform, portal: str
) -> None:
    tab = axe_tab
    deadline = time.monotonic() + 120
    while not inventory(platform, "/v1/open-data")["files"]:
        assert time.monotonic() < deadline, "inventory generated no open-data file in 2 minutes"
        time.sleep(1)
    catalogue = inventory(platform, "/v1/open-data")
    tab.goto(portal + "/")
    tab.locator("footer").get_by_role("link", name="Données ouvertes").click()
    tab.wait_for_url(portal + "/open-data")
    assert tab.locator("h1").inner_text() == "Données ouvertes"
    lead = tab.locator(".lead").inner_text()
    assert "combien de m² de production chaque arrondissement a gagnés ou perdus" in lead
    base = platform.services["inventory"].url
    for f in catalogue["files"]:
        link = tab.get_by_role("link", name=f"Télécharger {f['name']}", exact=True)
        assert link.count() == 1, f["name"]
        assert link.get_attribute("href") == base + f["url"]
        card = tab.locator(".card", has=link)
        size = card.locator(".summary-row", has_text="Taille").locator("dd").inner_text()
        assert re.fullmatch(r"[\d\s\u202f,]+\s(octets|ko|Mo)", size), size
    check_page(tab, "open-data")
    href = tab.get_by_role("link", name="Télécharger surface-ledger.csv", exact=True).get_attribute(
        "href"
    )
    r = httpx.get(href, timeout=20)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv"), r.text
    assert r.text.splitlines()[0]  # a header row
    schema = tab.locator(".card", has_text="surface-ledger.csv").get_by_role(
        "link", name="Son schéma Table Schema (JSON)"
    )
    assert httpx.get(schema.first.get_attribute("href"), timeout=20).status_code == 200
    assert tab.problems == [], tab.problems
