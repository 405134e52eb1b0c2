"""The artisan's journey in a real browser (Debian's Chromium, headless) on the platform as real
processes — the portal, inventory, leasing, notifications, Kafka and Keycloak 26:

a new person registers through the portal's "Créer un compte" (Keycloak's registration form),
confirms the e-mail from the mail catcher's message, creates the profile (and meets a stale
edit from another tab), saves a search from the board, keeps the feed open while a landlord
opens a matching vacancy by the API and sees the alert arrive without reloading, checks
eligibility on the unit page, applies, sees the rank, is offered a lease by the landlord
through leasing's API and accepts it in the portal after the confirmation step: the lease is
signed (checked through the API) and inventory marks the unit leased.

axe-core runs on every page of my space at 1280 px and 360 px, and a screenshot of each is
kept in .run/screenshots/.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import httpx
import pytest

from fabkit.auth import Role
from fabkit.localstack.platform import Platform

from .browser import (
    DESKTOP,
    EVERY_SIZE,
    TIMEOUT_MS,
    check_page,
    log_in,
    new_tab,
)
from .harness import Mailbox, identities, luhn_siret

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

PASSWORD = "Atelier-Paris-2026!"
TRADE = "ceramics"
ARRONDISSEMENT = 19
PROJECT = "Grès de table pour les restaurants du quartier ; deux fours, une apprentie."


@pytest.fixture(scope="module")
def portal(platform: Platform) -> str:
    assert "portal" in platform.services, "deploy/services.json does not start the portal"
    return platform.services["portal"].url


@pytest.fixture
def tab(browser: Any) -> Iterator[Any]:
    """A tab axe-core can be injected into, collecting console errors too (``tab.problems``)."""
    opened = new_tab(browser, bypass_csp=True)
    yield opened
    opened.context.close()


class Landlord:
    """A landlord's integration: its own Keycloak client, calling the public APIs."""

    def __init__(self, platform: Platform, client: httpx.Client) -> None:
        self.platform, self.client = platform, client
        people = identities(platform)
        admin = people.token(Role.ADMIN, "e2e-admin")
        name = f"Journey landlord {uuid.uuid4().hex[:6]}"
        self.id = self.ok(self.call("POST", "inventory", "/v1/landlords", admin, {"name": name}))[
            "id"
        ]
        self.token = people.token(Role.LANDLORD, self.id)

    def call(
        self, method: str, service: str, path: str, token: str | None = None, body: Any = None
    ) -> httpx.Response:
        url = self.platform.services[service].url + path
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return self.client.request(method, url, json=body, headers=headers)

    def close_call(self, application_id: str) -> None:
        """Close the application's call the honest way: its closing date moved two seconds
        ahead (PATCH with If-Match), then leasing's closing worker closes it."""
        call_id = self.ok(self.call("GET", "leasing", f"/v1/applications/{application_id}"))[
            "call_id"
        ]
        url = self.platform.services["leasing"].url + f"/v1/calls/{call_id}"
        current = self.client.get(url)
        closes_at = datetime.now(UTC) + timedelta(seconds=2)
        headers = {"Authorization": f"Bearer {self.token}", "If-Match": current.headers["ETag"]}
        self.ok(self.client.patch(url, json={"closes_at": closes_at.isoformat()}, headers=headers))
        wait_until(lambda: self.client.get(url).json()["status"] == "closed", "the call to close")

    @staticmethod
    def ok(response: httpx.Response, *statuses: int) -> Any:
        assert response.status_code in (statuses or (200, 201)), (
            f"{response.request.method} {response.request.url} -> {response.status_code}: "
            f"{response.text[:600]}"
        )
        return response.json()


def wait_until(probe: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f}s waiting for {what}"
        time.sleep(0.5)


def _text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    return part.get_content() if part is not None else ""


def register(tab: Any, portal: str, mailbox: Mailbox, who: str) -> str:
    """A new person registers through "Créer un compte", confirms the e-mail from the mail
    catcher's message and comes back signed in; the e-mail address."""
    address = f"{who}@example.org"
    tab.goto(portal + "/")
    tab.locator("header").get_by_role("link", name="Créer un compte").click()
    tab.wait_for_selector("#kc-register-form")
    for field, value in (
        ("#firstName", "Inès"),
        ("#lastName", "Moreau"),
        ("#email", address),
        ("#username", who),
        ("#password", PASSWORD),
        ("#password-confirm", PASSWORD),
    ):
        if tab.locator(field).count():
            tab.fill(field, value)
    tab.locator("#kc-register-form [type=submit]").click()
    tab.wait_for_load_state()

    def link() -> str | None:
        mails = mailbox.to(address)
        if not mails:
            return None
        found = re.search(r"https?://\S+action-token\S+", _text(mails[-1].message))
        return found.group(0).rstrip(").,") if found else None

    tab.goto(wait_until(link, "Keycloak's verification e-mail in the mail catcher", 30))
    tab.wait_for_url(lambda url: url.startswith(portal), timeout=TIMEOUT_MS)
    tab.goto(portal + "/me")
    assert "(vérifiée)" in tab.locator(".account-summary").inner_text()
    return address


def create_profile(tab: Any, portal: str, address: str) -> None:
    tab.goto(portal + "/me")
    tab.locator("main").get_by_role("link", name="Profil").click()
    tab.wait_for_url(portal + "/me/profile")
    assert tab.locator("h1").inner_text() == "Créer mon profil"
    assert tab.locator("#f-contact_email").input_value() == address
    check_page(tab, "journey-profile-new", EVERY_SIZE)

    # A first try with mistakes: each is explained beside its field, nothing is registered.
    tab.fill("#f-business_name", "Moreau Céramique")
    tab.fill("#f-siret", "732 829 320 00075")
    tab.fill("#f-business_created_on", "31/02/2025")
    tab.get_by_role("button", name="Créer mon profil").click()
    summary = tab.locator(".error-summary")
    summary.wait_for()
    assert tab.evaluate("document.activeElement.classList.contains('error-summary')")
    problems = summary.inner_text()
    assert "clé de contrôle" in problems and "jour/mois/année" in problems
    assert "Choisissez au moins un métier." in problems
    assert tab.locator("#f-siret").get_attribute("aria-invalid") == "true"
    assert tab.locator("#f-business_name").input_value() == "Moreau Céramique", "kept as typed"
    check_page(tab, "journey-profile-errors", EVERY_SIZE)

    tab.fill("#f-display_name", "Atelier Inès Moreau")
    tab.fill("#f-siret", spaced(luhn_siret()))
    tab.fill("#f-business_created_on", young_business_day())
    tab.select_option("#f-legal_form", "scop")
    tab.check(f"#f-trades-{TRADE}")
    tab.check("#f-labels-fabrique_a_paris")
    tab.get_by_role("button", name="Créer mon profil").click()
    tab.wait_for_url(portal + "/me/profile?done=created")
    assert "Votre profil est créé" in tab.locator(".banner-success").inner_text()
    assert tab.locator("h1").inner_text() == "Mon profil"
    check_page(tab, "journey-profile-created", EVERY_SIZE)


def stale_edit_from_another_tab(tab: Any, portal: str) -> None:
    """The profile changed in another tab: the save says so and shows the current version."""
    other = tab.context.new_page()
    other.goto(portal + "/me/profile")
    other.fill("#f-display_name", "Atelier Moreau & Fils")
    other.get_by_role("button", name="Enregistrer mes modifications").click()
    other.wait_for_url(portal + "/me/profile?done=saved")
    other.close()

    tab.fill("#f-business_name", "Moreau Céramique SCOP")
    tab.get_by_role("button", name="Enregistrer mes modifications").click()
    tab.locator(".banner-warning").wait_for()
    warning = tab.locator(".banner-warning").inner_text()
    assert "modifié entre-temps (dans un autre onglet\u00a0?)" in warning
    assert tab.locator("#f-display_name").input_value() == "Atelier Moreau & Fils"
    assert tab.locator("#f-business_name").input_value() == "Moreau Céramique", "current version"
    check_page(tab, "journey-profile-stale", EVERY_SIZE)
    # Saved again on the current version, the change goes through.
    tab.fill("#f-business_name", "Moreau Céramique SCOP")
    tab.get_by_role("button", name="Enregistrer mes modifications").click()
    tab.wait_for_url(portal + "/me/profile?done=saved")
    assert tab.locator("#f-business_name").input_value() == "Moreau Céramique SCOP"


def spaced(siret: str) -> str:
    return f"{siret[:3]} {siret[3:6]} {siret[6:9]} {siret[9:]}"


def young_business_day() -> str:
    created = datetime.now(UTC).date() - timedelta(days=200)
    return created.strftime("%d/%m/%Y")


def save_search(tab: Any, portal: str) -> None:
    query = f"arrondissement={ARRONDISSEMENT}&trade={TRADE}&site_kind=hotel_industriel"
    tab.goto(f"{portal}/?{query}")
    tab.locator("main").get_by_role("link", name="Enregistrer cette recherche").click()
    tab.wait_for_url(lambda url: "/me/searches/new" in url)
    tab.fill("#f-name", "Céramique dans le 19e")
    tab.locator("main form.search-form [type=submit]").click()
    tab.wait_for_url(lambda url: url.startswith(portal + "/me/searches") and "/new" not in url)


def open_vacancy(landlord: Landlord) -> dict[str, Any]:
    site = landlord.ok(
        landlord.call(
            "POST", "inventory", "/v1/sites", body={
                "name": f"Hôtel industriel du Parcours {uuid.uuid4().hex[:4]}",
                "kind": "hotel_industriel", "address": "12 rue de l'Essai",
                "postcode": f"750{ARRONDISSEMENT}", "arrondissement": ARRONDISSEMENT,
                "opens_for_visits": True,
            },
        )
    )  # fmt: skip
    unit = landlord.ok(
        landlord.call(
            "POST", "inventory", f"/v1/sites/{site['id']}/units", body={
                "reference": "P19", "floor": 0, "surface_m2": 96, "ceiling_height_m": 4.2,
                "goods_lift": True, "allowed_trades": [TRADE], "rent_eur_m2_year": 120,
                "charges_eur_m2_year": 25, "status": "unavailable",
            },
        )
    )  # fmt: skip
    opened = landlord.ok(
        landlord.call("PATCH", "inventory", f"/v1/units/{unit['id']}", body={"status": "available"})
    )
    assert opened["vacancy_id"]
    return opened  # type: ignore[no-any-return]


def test_an_artisan_registers_applies_and_signs_the_lease_offered(
    tab: Any, portal: str, platform: Platform
) -> None:
    assert platform.mail is not None, "the platform runs no mail catcher"
    mailbox = Mailbox(platform.mail.folder)
    who = f"ines.moreau.{uuid.uuid4().hex[:6]}"
    with httpx.Client(timeout=20) as client:
        landlord = Landlord(platform, client)

        address = register(tab, portal, mailbox, who)
        create_profile(tab, portal, address)
        stale_edit_from_another_tab(tab, portal)

        save_search(tab, portal)
        tab.goto(portal + "/me/feed")
        tab.locator("#feed-live-status:not([hidden])").wait_for()
        before = tab.locator("#feed-list > li").count()
        unit = open_vacancy(landlord)
        # The alert arrives in the open page, without a reload.
        alert = tab.locator(f'#feed-list a[href="/units/{unit["id"]}"]')
        alert.wait_for(timeout=90_000)
        assert tab.locator("#feed-list > li").count() == before + 1
        assert "atelier P19" in alert.inner_text()
        check_page(tab, "journey-feed-alert", EVERY_SIZE)

        # Eligibility on the unit page, once leasing has heard of the vacancy.
        def eligible() -> bool:
            tab.goto(f"{portal}/units/{unit['id']}")
            return tab.locator("#apply-form-title").count() == 1

        wait_until(eligible, "leasing to list the vacancy on the unit page", 60)
        section = tab.locator("section.eligibility")
        assert "Vous êtes éligible." in section.inner_text()
        assert section.locator(".rule-passed").count() >= 1
        assert section.locator(".rule-failed").count() == 0
        assert "Mon total" in section.locator("table").first.inner_text()
        check_page(tab, "journey-unit-eligible", EVERY_SIZE)

        # Applying: the project is checked in words first, then the application is made.
        tab.fill("#f-project", "Trop court")
        tab.get_by_role("button", name="Candidater", exact=True).click()
        tab.locator("#f-project-error").wait_for()
        assert "au moins 20" in tab.locator("#f-project-error").inner_text()
        tab.fill("#f-project", PROJECT)
        tab.get_by_role("button", name="Candidater", exact=True).click()
        tab.wait_for_url(re.compile(r".*/me/applications/[^/?]+\?done=applied$"))
        application_id = tab.url.rsplit("/", 1)[1].split("?")[0]
        summary = tab.locator("main dl").first.inner_text()
        assert "Envoyée\u00a0: en cours d'examen" in summary
        assert "1er sur 1" in summary
        check_page(tab, "journey-application", EVERY_SIZE)
        tab.goto(portal + "/me/applications")
        assert "1er sur 1" in tab.locator(".card-list").inner_text()
        check_page(tab, "journey-applications", EVERY_SIZE)

        # The call closes; the landlord offers a lease through leasing's API.
        landlord.close_call(application_id)
        start = datetime.now(UTC).date() + timedelta(days=30)
        offered = landlord.ok(
            landlord.call(
                "POST", "leasing", f"/v1/applications/{application_id}/offer", body={
                    "monthly_rent_eur": "960.00", "start_date": start.isoformat(),
                    "end_date": start.replace(year=start.year + 2).isoformat(),
                    "message": "Visite le lundi à 10 h <b>au rez-de-chaussée</b>",
                },
            ),
            201,
        )  # fmt: skip

        # The artisan accepts in the portal, after the confirmation step.
        tab.goto(portal + "/me/offers")
        card = tab.locator(".card").first
        terms = card.inner_text()
        assert "960,00\xa0€ par mois, hors charges" in terms
        assert "200,00\xa0€ par mois" in terms  # charges: 25 €/m²/year × 96 m² / 12
        assert "<b>au rez-de-chaussée</b>" in terms, "the landlord's message is shown as text"
        check_page(tab, "journey-offers", EVERY_SIZE)
        card.get_by_role("link", name="Accepter et signer…").click()
        tab.wait_for_url(portal + f"/me/offers/{offered['id']}/accept")
        check_page(tab, "journey-offer-accept", EVERY_SIZE)
        # Still offered until the person confirms.
        lease = landlord.ok(landlord.call("GET", "leasing", f"/v1/leases/{offered['id']}"))
        assert lease["status"] == "offered"
        tab.get_by_role("button", name="Oui, j'accepte et je signe le bail").click()
        tab.wait_for_url(portal + "/me/offers?done=signed")
        assert "Le bail est signé" in tab.locator(".banner-success").inner_text()
        assert "Signé\u00a0: bail en cours" in tab.locator("#leases-title + ul").inner_text()
        check_page(tab, "journey-lease-signed", EVERY_SIZE)

        lease = landlord.ok(landlord.call("GET", "leasing", f"/v1/leases/{offered['id']}"))
        assert lease["status"] == "active" and lease["signed_at"], lease
        assert lease["application_id"] == application_id

        def leased() -> bool:
            current = client.get(platform.services["inventory"].url + f"/v1/units/{unit['id']}")
            return current.status_code == 200 and current.json()["status"] == "leased"

        wait_until(leased, "inventory to mark the unit leased", 60)
        tab.goto(f"{portal}/me/applications/{application_id}")
        decisions = tab.locator("section[aria-labelledby=decisions-title]").inner_text()
        assert "Le bailleur vous a proposé un bail" in decisions
        assert "Vous avez accepté l'offre\u00a0: le bail est signé" in decisions
    # The refused forms above answer 400 and 409 on purpose (the status says what happened);
    # the browser logs those, and nothing else may be logged.
    expected = re.compile(r"^Failed to load resource: .* status of (400|409) ")
    problems = [p for p in tab.problems if not expected.match(p)]
    assert problems == [], problems


def new_unit(landlord: Landlord, trades: list[str], reference: str) -> dict[str, Any]:
    """A vacant workshop of a new hôtel industriel in the 19th, for these trades."""
    site = landlord.ok(
        landlord.call(
            "POST", "inventory", "/v1/sites", body={
                "name": f"Hôtel industriel Curial {uuid.uuid4().hex[:4]}",
                "kind": "hotel_industriel", "address": "8 rue Curial",
                "postcode": "75019", "arrondissement": 19,
            },
        )
    )  # fmt: skip
    unit = landlord.ok(
        landlord.call(
            "POST", "inventory", f"/v1/sites/{site['id']}/units", body={
                "reference": reference, "floor": 1, "surface_m2": 80, "allowed_trades": trades,
                "rent_eur_m2_year": 110, "charges_eur_m2_year": 20, "status": "unavailable",
            },
        )
    )  # fmt: skip
    path = f"/v1/units/{unit['id']}"
    return landlord.ok(landlord.call("PATCH", "inventory", path, body={"status": "available"}))  # type: ignore[no-any-return]


def on_unit_page(tab: Any, portal: str, unit_id: str) -> None:
    """The unit's page once leasing has heard of its vacancy (the eligibility section shows)."""

    def shown() -> bool:
        tab.goto(f"{portal}/units/{unit_id}")
        return tab.locator("section.eligibility").count() == 1

    wait_until(shown, "leasing to list the vacancy on the unit page", 60)


def test_the_rules_failed_in_words_a_withdrawal_and_a_declined_offer(
    browser: Any, portal: str, platform: Platform
) -> None:
    demo_password = "fabrique-demo-2026"
    with httpx.Client(timeout=20) as client:
        landlord = Landlord(platform, client)
        woodwork = new_unit(landlord, ["woodwork"], "C1")
        other = new_unit(landlord, ["woodwork", "cabinetmaking"], "C2")

        # Camille (a micro-entreprise in ceramics, a demo profile) fails both programmes.
        camille = browser.new_context(viewport=DESKTOP, locale="fr-FR", bypass_csp=True)
        tab = camille.new_page()
        tab.set_default_timeout(TIMEOUT_MS)
        log_in(tab, portal, "camille.roux", demo_password)
        on_unit_page(tab, portal, woodwork["id"])
        section = tab.locator("section.eligibility").inner_text()
        assert section.count("Vous n'êtes pas éligible.") == 2, section
        assert (
            "Aucun de vos métiers n'est accepté dans cet atelier (il accepte\u00a0: menuiserie)"
            in section
        )
        assert "La vôtre\u00a0: micro-entreprise" in section
        assert "Vous ne pouvez pas candidater" in section
        assert tab.locator("#f-project").count() == 0
        assert "Vous n'êtes éligible à aucun des programmes" in tab.locator("aside").inner_text()
        check_page(tab, "journey-unit-not-eligible", EVERY_SIZE)
        camille.close()

        # Malik's cooperative is eligible under both: it chooses one, applies, then withdraws.
        malik = browser.new_context(viewport=DESKTOP, locale="fr-FR", bypass_csp=True)
        tab = malik.new_page()
        tab.set_default_timeout(TIMEOUT_MS)
        log_in(tab, portal, "malik.benali", demo_password)
        on_unit_page(tab, portal, woodwork["id"])
        assert tab.locator("section.eligibility").inner_text().count("Vous êtes éligible.") == 2
        tab.select_option("#f-programme_id", "economie-sociale-et-solidaire")
        tab.fill("#f-project", PROJECT)
        tab.get_by_role("button", name="Candidater", exact=True).click()
        tab.wait_for_url(re.compile(r".*/me/applications/[^/?]+\?done=applied$"))
        withdrawn_id = tab.url.rsplit("/", 1)[1].split("?")[0]
        assert "Économie sociale et solidaire" in tab.locator("main dl").first.inner_text()
        # Back on the unit page, the application is there instead of the form.
        tab.goto(f"{portal}/units/{woodwork['id']}")
        assert tab.locator("#f-project").count() == 0
        tab.locator("aside").get_by_role("link", name="Voir ma candidature").click()
        tab.get_by_role("link", name="Retirer ma candidature").click()
        tab.wait_for_url(portal + f"/me/applications/{withdrawn_id}/withdraw")
        check_page(tab, "journey-application-withdraw", EVERY_SIZE)
        tab.fill("#f-reason", "Nous avons trouvé un atelier plus proche de nos clients.")
        tab.get_by_role("button", name="Oui, retirer ma candidature").click()
        tab.wait_for_url(portal + f"/me/applications/{withdrawn_id}?done=withdrawn")
        page_text = tab.locator("main").inner_text()
        assert "Votre candidature est retirée" in page_text
        assert "Vous avez retiré la candidature (par vous)" in page_text
        assert "plus classée (close)" in page_text
        assert tab.get_by_role("link", name="Retirer ma candidature").count() == 0
        check_page(tab, "journey-application-withdrawn", EVERY_SIZE)
        mine = landlord.ok(landlord.call("GET", "leasing", f"/v1/applications/{withdrawn_id}"))
        assert mine["status"] == "withdrawn" and mine["rank"] is None
        assert mine["decisions"][-1]["reason"].startswith("Nous avons trouvé")

        # On the other workshop the landlord offers a lease, and Malik declines it, saying why.
        on_unit_page(tab, portal, other["id"])
        tab.fill("#f-project", PROJECT)
        tab.get_by_role("button", name="Candidater", exact=True).click()
        tab.wait_for_url(re.compile(r".*/me/applications/[^/?]+\?done=applied$"))
        application_id = tab.url.rsplit("/", 1)[1].split("?")[0]
        landlord.close_call(application_id)
        start = datetime.now(UTC).date() + timedelta(days=15)
        offer = landlord.ok(
            landlord.call(
                "POST", "leasing", f"/v1/applications/{application_id}/offer", body={
                    "monthly_rent_eur": 700, "start_date": start.isoformat(),
                    "end_date": start.replace(year=start.year + 1).isoformat(),
                },
            ),
            201,
        )  # fmt: skip
        tab.goto(portal + "/me/offers")
        card = tab.locator(".card").first
        card.locator("textarea").fill("Le loyer dépasse notre budget cette année.")
        card.get_by_role("button", name="Refuser l'offre").click()
        tab.wait_for_url(portal + "/me/offers?done=declined")
        assert "Vous avez refusé l'offre" in tab.locator(".banner-success").inner_text()
        assert "Offre refusée" in tab.locator("#past-title + ul").inner_text()
        check_page(tab, "journey-offer-declined", EVERY_SIZE)
        lease = landlord.ok(landlord.call("GET", "leasing", f"/v1/leases/{offer['id']}"))
        assert lease["status"] == "declined", lease
        malik.close()
