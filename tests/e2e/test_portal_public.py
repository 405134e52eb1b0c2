"""The portal's public pages in a real browser (Debian's Chromium, headless, driven by
Playwright) against the platform as real processes with the demo data: the board and its
filters, paging, a unit page, the language switch, error messages, escaping, the keyboard,
axe-core on every page at desktop and phone widths, and a screenshot of each page under
.run/screenshots/.

Playwright never downloads a browser here: it launches /usr/bin/chromium (scripts/bootstrap.sh
installs it from Debian) with the flags that keep it off the network.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from fabkit.auth import Role
from fabkit.localstack.platform import Platform

from .browser import DESKTOP, PHONE, SHOTS, TIMEOUT_MS, ZOOMED, axe_violations
from .harness import bearer, identities

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def portal(platform: Platform) -> str:
    assert "portal" in platform.services, "deploy/services.json does not start the portal"
    return platform.services["portal"].url


@pytest.fixture(scope="module")
def demo(platform: Platform) -> dict[str, Any]:
    """The demo vacancies as inventory's API lists them, and one site given coordinates
    (the demo sites have none) so the map has a marker."""
    inventory = platform.services["inventory"].url
    admin_token = identities(platform).token(Role.ADMIN, "e2e-portal-admin")
    with httpx.Client(timeout=20) as client:
        vacancies = client.get(f"{inventory}/v1/units?status=available&limit=100").json()
        site_id = vacancies["items"][0]["site"]["id"]
        patched = client.patch(
            f"{inventory}/v1/sites/{site_id}",
            json={"latitude": 48.8275, "longitude": 2.3795},
            headers=bearer(admin_token),
        )
        assert patched.status_code == 200, patched.text
    return {"inventory": inventory, "vacancies": vacancies, "mapped_site": patched.json()}


def count_of(tab: Any) -> int:
    text = tab.locator(".result-count").inner_text()
    match = re.search(r"(\d[\d\u202f\xa0 ]*)", text)
    assert match, text
    return int(re.sub(r"\D", "", match.group(1)))


def api_total(demo: dict[str, Any], query: str) -> int:
    answer = httpx.get(f"{demo['inventory']}/v1/units?status=available&{query}", timeout=20)
    return int(answer.json()["total"])


def test_the_board_lists_the_demo_vacancies_with_a_count(
    page: Any, portal: str, demo: dict[str, Any]
) -> None:
    page.goto(portal + "/")
    total = demo["vacancies"]["total"]
    assert total > 10, "the demo data should fill more than one page"
    assert page.locator("html").get_attribute("lang") == "fr"
    assert page.locator("h1").inner_text() == "Ateliers à louer à Paris"
    assert count_of(page) == total
    assert page.locator(".unit-card").count() == 10
    # The map: the site with coordinates is listed, and drawn once Leaflet ran.
    site = demo["mapped_site"]["name"]
    assert page.locator("#site-list li", has_text=site).count() == 1
    page.wait_for_selector("#site-map .leaflet-interactive", state="attached")
    assert page.locator("#site-map").is_visible()
    assert not page.problems, page.problems  # no CSP violation, no script error


def test_filters_narrow_the_board_and_stay_in_the_url(
    page: Any, portal: str, demo: dict[str, Any]
) -> None:
    arrondissement = demo["vacancies"]["items"][0]["site"]["arrondissement"]
    page.goto(portal + "/")
    page.locator(f"#f-arrondissement-{arrondissement}").check()
    page.locator("#f-min_surface").fill("100")
    page.get_by_role("button", name="Afficher les ateliers").click()
    page.wait_for_load_state()
    assert f"arrondissement={arrondissement}" in page.url
    assert "min_surface=100" in page.url
    expected = api_total(demo, f"arrondissement={arrondissement}&min_surface=100")
    assert count_of(page) == expected < demo["vacancies"]["total"]
    # The URL alone gives the same search back (bookmark, shared link).
    shared = page.url
    page.goto(portal + "/")
    page.goto(shared)
    assert page.locator(f"#f-arrondissement-{arrondissement}").is_checked()
    assert page.locator("#f-min_surface").input_value() == "100"
    assert count_of(page) == expected


def narrowing(values: list[float]) -> float:
    """A minimum that keeps some of these values and drops some (so dropping it shows)."""
    distinct = sorted(set(values))
    assert len(distinct) > 1, f"the demo vacancies all have {distinct}"
    return distinct[len(distinct) // 2]


def test_ceiling_floor_load_and_power_filters_narrow_the_board(
    page: Any, portal: str, demo: dict[str, Any]
) -> None:
    vacancies = demo["vacancies"]
    items = vacancies["items"]
    assert vacancies["total"] == len(items), "the demo vacancies no longer fit in one API page"

    def at_least(units: list[dict[str, Any]], field: str, low: float) -> list[dict[str, Any]]:
        # An unknown figure does not meet a minimum.
        return [u for u in units if u[field] is not None and u[field] >= low]

    # Each threshold from the demo data, each narrowing what the previous ones kept.
    ceiling = narrowing([u["ceiling_height_m"] for u in items if u["ceiling_height_m"]])
    high = at_least(items, "ceiling_height_m", ceiling)
    load = narrowing([u["floor_load_kg_m2"] for u in high if u["floor_load_kg_m2"]])
    wanted = at_least(high, "floor_load_kg_m2", load)
    assert 0 < len(wanted) < len(high) < len(items)
    page.goto(portal + "/")
    # A visitor writes decimals the French way.
    page.locator("#f-min_ceiling_height_m").fill(f"{ceiling:g}".replace(".", ","))
    page.locator("#f-min_floor_load_kg_m2").fill(f"{load:g}")
    page.get_by_role("button", name="Afficher les ateliers").click()
    page.wait_for_load_state()
    assert "min_ceiling_height_m=" in page.url and "min_floor_load_kg_m2=" in page.url
    assert count_of(page) == len(wanted)
    # The three together, the power added to the search on screen.
    power = narrowing([u["power_kva"] for u in wanted if u["power_kva"] is not None])
    strong = at_least(wanted, "power_kva", power)
    assert 0 < len(strong) < len(wanted)
    page.locator("#f-min_power_kva").fill(f"{power:g}")
    page.get_by_role("button", name="Afficher les ateliers").click()
    page.wait_for_load_state()
    assert f"min_power_kva={power:g}" in page.url
    assert count_of(page) == len(strong)


def test_paging(page: Any, portal: str, demo: dict[str, Any]) -> None:
    total = demo["vacancies"]["total"]
    page.goto(portal + "/?sort=-surface")
    first_page = page.locator(".unit-title").all_inner_texts()
    page.get_by_role("link", name="Page suivante").click()
    page.wait_for_load_state()
    assert "page=2" in page.url and "sort=-surface" in page.url
    second_page = page.locator(".unit-title").all_inner_texts()
    assert len(second_page) == min(10, total - 10)
    assert not set(first_page) & set(second_page)
    assert page.locator(".pagination-current").inner_text() == "2"


def test_a_unit_page_shows_rent_and_programmes(
    page: Any, portal: str, demo: dict[str, Any]
) -> None:
    unit = demo["vacancies"]["items"][0]
    page.goto(portal + "/")
    page.locator(f'a[href="/units/{unit["id"]}"]').first.click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text().startswith(unit["site"]["name"])
    rent = page.locator("table", has_text="Loyer et charges")
    monthly = unit["surface_m2"] * unit["rent_eur_m2_year"] / 12
    expected = f"{monthly:,.2f}".replace(",", "\u202f").replace(".", ",") + "\xa0€"
    assert expected in rent.inner_text()
    assert page.locator(".programme").count() >= 1
    assert (
        page.locator(".programme table caption").first.inner_text().startswith("Grille de points")
    )
    login = page.get_by_role("link", name="Connectez-vous pour vérifier votre éligibilité")
    assert login.get_attribute("href", timeout=TIMEOUT_MS).startswith("/login")
    login.click()
    page.wait_for_load_state()
    # The identity provider's login page, in French (ui_locales), for the portal's client.
    assert "/realms/fabrique/" in page.url and "client_id=fabrique-portal" in page.url
    assert page.locator("input[name=username]").count() == 1


def test_the_language_switch_gives_english_and_is_remembered(page: Any, portal: str) -> None:
    page.goto(portal + "/?max_rent=150")
    page.get_by_role("link", name="English version").click()
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("h1").inner_text() == "Workshops to let in Paris"
    assert "max_rent=150" in page.url  # the search is kept across the switch
    page.goto(portal + "/programmes")
    assert page.locator("h1").inner_text() == "Programmes and criteria"
    assert "€" in page.locator(".programme").first.inner_text()


def test_an_invalid_filter_is_explained_beside_its_field(page: Any, portal: str) -> None:
    page.goto(portal + "/")
    page.locator("#f-min_surface").fill("beaucoup")
    page.get_by_role("button", name="Afficher les ateliers").click()
    page.wait_for_load_state()
    message = page.locator("#f-min_surface-error")
    assert "Saisissez un nombre" in message.inner_text()
    field = page.locator("#f-min_surface")
    assert "f-min_surface-error" in (field.get_attribute("aria-describedby") or "")
    assert field.get_attribute("aria-invalid") == "true"
    assert field.input_value() == "beaucoup"
    summary = page.locator(".error-summary")
    assert "Il y a un problème" in summary.inner_text()
    assert page.evaluate("document.activeElement.classList.contains('error-summary')")
    summary.get_by_role("link").first.click()
    assert page.evaluate("document.activeElement.id") == "f-min_surface"
    assert page.title().startswith("Erreur")


def test_a_script_in_a_filter_is_shown_escaped(page: Any, portal: str) -> None:
    payload = "<script>window.__pwned=1</script><img src=x onerror=window.__pwned=2>"
    page.goto(portal + "/?trade=" + quote(payload, safe=""))
    assert payload in page.locator("#f-trade-error").inner_text()
    assert page.evaluate("window.__pwned") is None
    assert page.locator("img[src=x]").count() == 0


def test_the_board_form_works_with_the_keyboard_alone(page: Any, portal: str) -> None:
    page.goto(portal + "/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.keyboard.press("Enter")
    target = "f-arrondissement-11"
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == target:
            break
    else:
        raise AssertionError(f"Tab never reached #{target}")
    # A visible focus indicator on the checkbox.
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    page.keyboard.press("Space")
    while page.evaluate("document.activeElement.id") != "f-min_surface":
        page.keyboard.press("Tab")
    page.keyboard.type("50")
    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.type") == "submit":
            break
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"arrondissement=11"))
    assert "min_surface=50" in page.url


PAGES = {
    "board": "/",
    "board-filtered": "/?arrondissement=13&arrondissement=19&max_rent=160&sort=-surface",
    "board-errors": "/?min_surface=abc&max_rent=-1&arrondissement=42",
    "board-page-2": "/?page=2",
    "unit": None,  # the first demo vacancy
    "programmes": "/programmes",
    "alerts": "/alerts?arrondissement=11",
    "login-error": "/auth/callback?error=access_denied",
    "not-found": "/no-such-page",
    "unit-not-found": "/units/no-such-unit",
    "board-en": "/?lang=en",
    "unit-en": None,
}


def _path(name: str, demo: dict[str, Any]) -> str:
    path = PAGES[name]
    if path is None:
        path = f"/units/{demo['vacancies']['items'][0]['id']}"
        if name.endswith("-en"):
            path += "?lang=en"
    return path


@pytest.mark.parametrize("name", list(PAGES))
def test_every_page_passes_axe_at_desktop_and_phone_width(
    browser: Any, portal: str, demo: dict[str, Any], name: str
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    found: dict[str, Any] = {}
    # axe-core is injected as a script tag: that context may bypass the portal's CSP, which
    # the other tests check stays unbroken.
    for label, viewport in (("desktop", DESKTOP), ("phone", PHONE), ("zoom200", ZOOMED)):
        context = browser.new_context(viewport=viewport, locale="fr-FR", bypass_csp=True)
        context.set_default_timeout(TIMEOUT_MS)
        tab = context.new_page()
        try:
            tab.goto(portal + _path(name, demo))
            tab.wait_for_load_state("load")
            overflow = tab.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{name} scrolls sideways by {overflow}px at {label}"
            tab.screenshot(path=str(SHOTS / f"{name}-{label}.png"), full_page=True)
            if label != "zoom200":
                violations = axe_violations(tab)
                if violations:
                    found[label] = violations
        finally:
            context.close()
    assert not found, json.dumps(found, indent=1, ensure_ascii=False)
