"""The landlords' back office in Chromium on the seeded platform (real processes, real
Keycloak): Léa Martin (RIVP staff) logs in, reaches her sites from her space, edits a unit (a
bad value is explained beside its field), meets the stale-version message when the unit is
changed through the API between her reading and her saving (her values kept, the current ones
beside them; saving again keeps hers), imports a CSV with good and bad rows and reads the
report of the refused ones in French (nothing of them written), and opens an imported unit for
let. axe-core, sideways scrolling and screenshots on every page (check_page)."""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from fabkit.auth import Role
from fabkit.localstack.platform import Platform

from .browser import check_page, log_in
from .harness import Api, bearer, check, eventually, identities, today
from .scenario import PROJECT, close_call

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

PASSWORD = "fabrique-demo-2026"
RIVP = "ad1225aa-57cd-5ef3-a7d4-fe896f9b6e76"  # lea.martin's landlord (demo-directory.json)


@pytest.fixture(scope="module")
def portal(platform: Platform) -> str:
    assert "portal" in platform.services, "deploy/services.json does not start the portal"
    return platform.services["portal"].url


def inventory(platform: Platform, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, platform.services["inventory"].url + path, timeout=20, **kwargs)


def test_a_landlord_edits_units_meets_a_stale_version_and_imports_a_csv(
    axe_tab: Any, platform: Platform, portal: str
) -> None:
    tab = axe_tab
    rivp = identities(platform).headers(Role.LANDLORD, RIVP)
    log_in(tab, portal, "lea.martin", PASSWORD)
    tab.goto(portal + "/me")
    tab.locator(".me-sections").get_by_role("link", name="Mes sites et lots").click()
    tab.wait_for_url(portal + "/landlord")
    assert tab.locator("h1").inner_text() == "Mes sites"
    sites = inventory(platform, "GET", "/v1/sites", params={"landlord_id": RIVP}).json()["items"]
    assert sites, "the seeded platform has RIVP sites"
    shown = tab.locator(".landlord-sites h2 a").all_inner_texts()
    assert sorted(shown) == sorted(s["name"] for s in sites)
    check_page(tab, "landlord-sites")

    # A site's units; the first unit's form.
    site = sites[0]
    tab.locator(".landlord-sites h2 a", has_text=site["name"]).first.click()
    tab.wait_for_url(f"{portal}/landlord/sites/{site['id']}")
    check_page(tab, "landlord-site")
    units = inventory(
        platform, "GET", "/v1/units", params={"site_id": site["id"], "limit": 100}
    ).json()["items"]
    unit = sorted(units, key=lambda u: u["reference"])[0]
    tab.get_by_role("link", name=f"Lot {unit['reference']}", exact=True).click()
    tab.wait_for_url(f"{portal}/landlord/units/{unit['id']}")
    check_page(tab, "landlord-unit")

    # A bad value is explained beside its field, in French; nothing is written.
    tab.fill("#f-surface_m2", "beaucoup")
    tab.get_by_role("button", name="Enregistrer le lot").click()
    tab.wait_for_load_state()
    assert (
        "Écrivez un nombre, par exemple 210 ou 4,5."
        in tab.locator("#f-surface_m2-error").inner_text()
    )
    assert tab.locator("#f-surface_m2").get_attribute("aria-invalid") == "true"
    assert tab.locator(".error-summary a[href='#f-surface_m2']").count() == 1
    check_page(tab, "landlord-unit-invalid")
    assert (
        inventory(platform, "GET", f"/v1/units/{unit['id']}").json()["version"] == unit["version"]
    )

    # A good edit is saved through the API with If-Match.
    tab.goto(f"{portal}/landlord/units/{unit['id']}")
    tab.fill("#f-rent_eur_m2_year", "111")
    tab.get_by_role("button", name="Enregistrer le lot").click()
    tab.wait_for_url(f"{portal}/landlord/units/{unit['id']}?done=saved")
    assert "Le lot est enregistré" in tab.locator(".banner-success").inner_text()
    saved = inventory(platform, "GET", f"/v1/units/{unit['id']}").json()
    assert saved["rent_eur_m2_year"] == 111 and saved["version"] == unit["version"] + 1

    # Someone changes the unit through the API while Léa's form is open.
    tab.goto(f"{portal}/landlord/units/{unit['id']}")
    other_floor = saved["floor"] + 1 if saved["floor"] < 40 else saved["floor"] - 1
    r = inventory(platform, "PATCH", f"/v1/units/{unit['id']}", json={"floor": other_floor},
                  headers=rivp)  # fmt: skip
    assert r.status_code == 200, r.text
    tab.fill("#f-rent_eur_m2_year", "117")
    tab.get_by_role("button", name="Enregistrer le lot").click()
    tab.wait_for_load_state()
    assert "Quelqu’un a modifié ce lot entre-temps" in tab.locator(".banner").first.inner_text()
    assert tab.locator("#f-rent_eur_m2_year").input_value() == "117"  # her value kept
    floor_hint = tab.locator("#f-floor-hint").inner_text()
    assert f"Valeur actuelle, enregistrée entre-temps par quelqu’un d’autre : {other_floor}" in (
        floor_hint
    )
    check_page(tab, "landlord-unit-stale")
    assert inventory(platform, "GET", f"/v1/units/{unit['id']}").json()["rent_eur_m2_year"] == 111
    # Saving again is deliberate: her values are written over the current version.
    tab.get_by_role("button", name="Enregistrer le lot").click()
    tab.wait_for_url(f"{portal}/landlord/units/{unit['id']}?done=saved")
    after = inventory(platform, "GET", f"/v1/units/{unit['id']}").json()
    assert after["rent_eur_m2_year"] == 117 and after["floor"] == saved["floor"]

    # The CSV import: good rows written, bad rows reported in French and not written.
    tag = uuid.uuid4().hex[:5].upper()
    csv = (
        "reference;surface_m2;rent_eur_m2_year;allowed_trades;goods_lift;status\n"
        f"I{tag}1;120;95;woodwork,ceramics;oui;unavailable\n"
        f"I{tag}2;0;95;;non;unavailable\n"
        f"I{tag}3;80;cher;;non;unavailable\n"
        f"I{tag}4;60,5;88;textile;non;unavailable\n"
        f"I{tag}1;70;90;;non;unavailable\n"
    )
    tab.goto(f"{portal}/landlord/sites/{site['id']}/import")
    check_page(tab, "landlord-import")
    tab.set_input_files(
        "#f-file", files=[{"name": "lots.csv", "mimeType": "text/csv", "buffer": csv.encode()}]
    )
    tab.get_by_role("button", name="Envoyer le fichier").click()
    tab.wait_for_load_state()
    assert "2 lots importés sur 5" in tab.locator(".banner").first.inner_text()
    refused = tab.locator(".import-refused > li").all_inner_texts()
    assert [r.split(" — ")[0] for r in refused] == ["Ligne 3", "Ligne 4", "Ligne 6"]
    assert "Surface\u00a0: Écrivez un nombre supérieur à 0" in refused[0]
    assert "Loyer\u00a0: Écrivez un nombre, par exemple 210 ou 4,5." in refused[1]
    assert "Référence\u00a0: Ce site a déjà un lot avec cette référence" in refused[2]
    check_page(tab, "landlord-import-report")
    now = inventory(
        platform, "GET", "/v1/units", params={"site_id": site["id"], "limit": 100}
    ).json()["items"]
    imported = {u["reference"]: u for u in now if u["reference"].startswith(f"I{tag}")}
    assert sorted(imported) == [f"I{tag}1", f"I{tag}4"]
    assert imported[f"I{tag}1"]["surface_m2"] == 120  # not the refused twin's 70
    assert imported[f"I{tag}4"]["surface_m2"] == 60.5

    # An imported unit opened for let: its vacancy opens.
    new = imported[f"I{tag}4"]
    tab.get_by_role("link", name=f"I{tag}4", exact=True).click()
    tab.wait_for_url(f"{portal}/landlord/units/{new['id']}")
    tab.select_option("#f-status", "available")
    tab.get_by_role("button", name="Enregistrer le lot").click()
    tab.wait_for_url(f"{portal}/landlord/units/{new['id']}?done=saved")
    opened = inventory(platform, "GET", f"/v1/units/{new['id']}").json()
    assert opened["status"] == "available" and opened["vacancy_id"]
    assert tab.locator("#f-status").input_value() == "available"
    check_page(tab, "landlord-unit-opened")
    assert tab.problems == [], tab.problems


def test_the_back_office_is_for_landlord_staff(page: Any, platform: Platform, portal: str) -> None:
    page.goto(portal + "/landlord")
    assert "/login" in page.url or "kc-form-login" in page.content()
    log_in(page, portal, "camille.roux", PASSWORD)
    response = page.goto(portal + "/landlord")
    assert response is not None and response.status == 403
    # Léa's token cannot write another landlord's site either: inventory decides.
    hugo = identities(platform).headers(Role.LANDLORD, "8c1e78b2-db97-5955-8767-57dd3319047f")
    theirs = inventory(platform, "GET", "/v1/sites", params={"landlord_id": RIVP}).json()["items"]
    r = inventory(
        platform, "POST", f"/v1/sites/{theirs[0]['id']}/units/import",
        content=b"reference,surface_m2,rent_eur_m2_year\nX1,10,10\n",
        headers={**hugo, "Content-Type": "text/csv"},
    )  # fmt: skip
    assert r.status_code == 403, r.text
    assert bearer(None) == {}


async def _closed_call_with_two_applicants(platform: Platform) -> dict[str, Any]:
    """A new RIVP unit made available (its call opens), two artisans apply, and the landlord
    moves the closing date a few seconds ahead: leasing's worker closes it and freezes the
    ranking (tie broken by the earlier submission: the first applicant is first in rank)."""
    async with httpx.AsyncClient(timeout=30) as client:
        api = Api(platform, client)
        landlord = api.identities.token(Role.LANDLORD, RIVP)
        sites = (await client.get(api.url("inventory", "/v1/sites"),
                                  params={"landlord_id": RIVP})).json()["items"]  # fmt: skip
        unit = check(
            await api.write(
                "POST", "inventory", f"/v1/sites/{sites[0]['id']}/units", landlord,
                json={"reference": f"C{uuid.uuid4().hex[:6]}", "surface_m2": 80,
                      "rent_eur_m2_year": 100, "allowed_trades": ["textile"],
                      "status": "available"},
            ),
            201,
        )  # fmt: skip

        async def opened() -> Any:
            r = await client.get(api.url("leasing", "/v1/calls"), params={"unit_id": unit["id"]})
            items = r.json()["items"] if r.status_code == 200 else []
            return items[0] if items and items[0]["status"] == "open" else None

        call = await eventually(opened, timeout=90, what="leasing to open the unit's call")
        for _n in range(2):
            artisan = await api.register_artisan(["textile"])
            check(
                await api.write("POST", "leasing", "/v1/applications", artisan.token,
                                json={"unit_id": unit["id"], "project": PROJECT}),
                201,
            )  # fmt: skip
        return await close_call(api, landlord, call["id"])


def test_a_landlord_offers_out_of_rank_only_with_a_published_ground(
    axe_tab: Any, platform: Platform, portal: str
) -> None:
    # Playwright's sync API runs a loop in this thread: the API calls run in one of their own.
    with ThreadPoolExecutor(1) as pool:
        call = pool.submit(asyncio.run, _closed_call_with_two_applicants(platform)).result()
    tab = axe_tab
    log_in(tab, portal, "lea.martin", PASSWORD)
    tab.goto(portal + "/landlord")
    tab.get_by_role("link", name="Mes appels à candidatures", exact=False).click()
    tab.wait_for_url(portal + "/landlord/calls")
    check_page(tab, "landlord-calls")
    tab.locator(f"a[href='/landlord/calls/{call['id']}']").click()
    tab.wait_for_url(f"{portal}/landlord/calls/{call['id']}")
    lines = tab.locator(".ranking-line").all_inner_texts()
    assert len(lines) == 2 and lines[0].startswith("Rang 1")
    assert "points sur" in lines[0]  # the points per criterion are listed
    check_page(tab, "landlord-call")

    # Rank 2 without a ground: refused beside the ground, nothing sent.
    start = today()
    tab.select_option("#f-application_id", index=1)
    tab.fill("#f-rent", "900")
    tab.fill("#f-start_date", start.isoformat())
    tab.fill("#f-end_date", start.replace(year=start.year + 2).isoformat())
    tab.get_by_role("button", name="Envoyer l’offre").click()
    tab.wait_for_load_state()
    assert "n’est pas le premier en lice" in tab.locator("#f-ground-error").inner_text()
    check_page(tab, "landlord-call-out-of-rank")
    ranking = inventory_free_ranking(platform, call["id"])
    assert all(not e["decisions"] for e in ranking["entries"])

    # With a published ground and an explanation: the offer goes to rank 2.
    tab.select_option("#f-application_id", index=1)
    tab.select_option("#f-ground", index=1)
    tab.fill("#f-explanation", "Le premier projet demande une extraction que ce lot n’a pas.")
    tab.get_by_role("button", name="Envoyer l’offre").click()
    tab.wait_for_url(f"{portal}/landlord/calls/{call['id']}?done=offered")
    assert "L’offre est envoyée" in tab.locator(".banner-success").inner_text()
    ranking = inventory_free_ranking(platform, call["id"])
    second = next(e for e in ranking["entries"] if e["rank"] == 2)
    offer = next(d for d in second["decisions"] if d["decision"] == "offered")
    assert offer["ground"] and "extraction" in (offer["reason"] or "")
    check_page(tab, "landlord-call-offered")

    # The jury record: a conflict needs its declaration; then it is recorded in leasing.
    tab.fill("#f-member-0-name", "Claire Martin")
    tab.fill("#f-member-0-organisation", "Ville de Paris, DAE")
    tab.fill("#f-member-0-role", "présidente")
    tab.check("#f-member-0-conflict")
    tab.fill("#f-member-1-name", "Paul Durand")
    tab.fill("#f-member-1-organisation", "Ateliers de Paris")
    tab.fill("#f-member-1-role", "membre")
    tab.fill("#f-session_date", today().isoformat())
    tab.fill("#f-minutes", "Le jury a lu le classement et les deux projets.")
    tab.fill("#f-decision", "Le jury retient le deuxième projet, faute d'extraction.")
    tab.get_by_role("button", name="Enregistrer le jury").click()
    tab.wait_for_load_state()
    assert (
        "Dites quel est le conflit d’intérêts"
        in tab.locator("#f-member-0-declaration-error").inner_text()
    )
    check_page(tab, "landlord-call-jury-invalid")
    tab.fill("#f-member-0-declaration", "A suivi l'un des candidats en 2025.")
    tab.get_by_role("button", name="Enregistrer le jury").click()
    tab.wait_for_url(f"{portal}/landlord/calls/{call['id']}?done=jury")
    assert "Le jury est enregistré" in tab.locator(".banner-success").inner_text()
    jury = httpx.get(
        platform.services["leasing"].url + f"/v1/calls/{call['id']}/jury",
        headers=bearer(identities(platform).token(Role.LANDLORD, RIVP)), timeout=20,
    ).json()  # fmt: skip
    assert [(m["name"], m["recused"]) for m in jury["members"]] == [
        ("Claire Martin", True),
        ("Paul Durand", False),
    ]
    check_page(tab, "landlord-call-jury")


def inventory_free_ranking(platform: Platform, call_id: str) -> dict[str, Any]:
    """The call's ranking as leasing answers its landlord."""
    token = identities(platform).token(Role.LANDLORD, RIVP)
    r = httpx.get(
        platform.services["leasing"].url + f"/v1/calls/{call_id}/ranking",
        headers=bearer(token), timeout=20,
    )  # fmt: skip
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]
