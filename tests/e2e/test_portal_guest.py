"""Alerts without an account in a real browser (Debian's Chromium, headless) against the seeded
platform as real processes: the portal, notifications, inventory, the real Kafka broker,
Keycloak 26 and the launcher's mail catcher (every e-mail kept as a .eml file).

A guest asks for alerts from the board's filters with only an e-mail address; a landlord opens
a matching vacancy before the guest confirms and nothing arrives but the confirmation e-mail;
the guest opens the confirmation link from that e-mail, reads the page (which confirms nothing
by itself) and presses "Confirmer"; a landlord opens another matching vacancy through
inventory's API and the alert e-mail arrives, saying that no eligibility check was made, with
its one-click unsubscribe link (RFC 8058 headers); the guest follows that link and unsubscribes,
and the next matching vacancy sends nothing. axe-core and a screenshot on every page (360 px
too for the form).
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from fabkit.auth import Role
from fabkit.localstack.platform import Platform

from .browser import check_page
from .harness import Mail, Mailbox, bearer, identities, tag

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

NO_CHECK = "ne vérifient pas votre éligibilité"


@pytest.fixture(scope="module")
def portal(platform: Platform) -> str:
    assert "portal" in platform.services, "deploy/services.json does not start the portal"
    return platform.services["portal"].url


class Landlord:
    """A fresh landlord (its own client-credentials token) with one site in the 19th."""

    def __init__(self, platform: Platform) -> None:
        self.inventory = platform.services["inventory"].url
        ids = identities(platform)
        admin = ids.token(Role.ADMIN, "e2e-guest-admin")
        with httpx.Client(timeout=20) as client:
            landlord = client.post(
                f"{self.inventory}/v1/landlords",
                json={"name": f"E2E guest landlord {uuid.uuid4().hex[:6]}"},
                headers=bearer(admin),
            )
            assert landlord.status_code == 201, landlord.text
            self.token = ids.token(Role.LANDLORD, landlord.json()["id"])
            site = client.post(
                f"{self.inventory}/v1/sites",
                json={
                    "name": f"Hôtel industriel Invité {uuid.uuid4().hex[:6]}",
                    "kind": "hotel_industriel",
                    "address": "3 rue de l'Essai",
                    "postcode": "75019",
                    "arrondissement": 19,
                    "opens_for_visits": True,
                },
                headers=bearer(self.token),
            )
            assert site.status_code == 201, site.text
        self.site = site.json()

    def open_vacancy(self, trade: str) -> dict[str, Any]:
        """Register a unit for `trade` and open its vacancy (PATCH status=available)."""
        with httpx.Client(timeout=20) as client:
            unit = client.post(
                f"{self.inventory}/v1/sites/{self.site['id']}/units",
                json={
                    "reference": f"G{uuid.uuid4().hex[:5].upper()}",
                    "floor": 0,
                    "surface_m2": 95,
                    "allowed_trades": [trade],
                    "rent_eur_m2_year": 120,
                    "charges_eur_m2_year": 18,
                    "status": "unavailable",
                },
                headers=bearer(self.token),
            )
            assert unit.status_code == 201, unit.text
            opened = client.patch(
                f"{self.inventory}/v1/units/{unit.json()['id']}",
                json={"status": "available"},
                headers=bearer(self.token),
            )
            assert opened.status_code == 200, opened.text
        return unit.json()  # type: ignore[no-any-return]


def wait_for(what: str, found: Any, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = found()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not seen after {timeout:.0f} s"
        time.sleep(0.5)


def text_of(mail: Mail, subtype: str) -> str:
    part = mail.message.get_body(preferencelist=(subtype,))
    assert part is not None, f"no text/{subtype} part in {mail.subject!r}"
    return str(part.get_content())


def test_a_guest_confirms_from_the_mail_gets_one_alert_and_unsubscribes(
    axe_tab: Any, portal: str, platform: Platform
) -> None:
    tab = axe_tab
    assert platform.mail is not None, "the platform runs no mail catcher"
    mailbox = Mailbox(platform.mail.folder)
    address = f"invite.{uuid.uuid4().hex[:8]}@example.org"
    trade = tag("guest")
    landlord = Landlord(platform)

    # 1. The board with a search, and its link to alerts by e-mail.
    board = {"arrondissement": "19", "trade": trade, "min_surface": "60"}
    tab.goto(f"{portal}/?{urlencode(board)}")
    tab.get_by_role("link", name="Recevoir ces annonces par e-mail").click()
    tab.wait_for_load_state()
    assert tab.url.startswith(f"{portal}/alerts?")
    assert tab.locator("h1").inner_text() == "Alertes par e-mail sans compte"
    search = tab.locator("#f-criteria").inner_text()
    assert "19" in search and "60" in search, search
    assert "Aucune" in tab.content() or "aucune vérification d'éligibilité" in tab.content()
    check_page(tab, "guest-form")

    # 2. Without an address: the message is beside the field, and nothing is sent.
    tab.get_by_role("button", name="M'envoyer l'e-mail de confirmation").click()
    tab.wait_for_load_state()
    error = tab.locator("#f-email-error").inner_text()
    assert "Saisissez l'adresse e-mail" in error
    assert tab.locator("#f-email").get_attribute("aria-invalid") == "true"
    assert tab.locator(".error-summary a[href='#f-email']").count() == 1
    check_page(tab, "guest-form-error", ("desktop",))

    # 3. With the address: "check your mailbox".
    tab.locator("#f-email").fill(address)
    tab.get_by_role("button", name="M'envoyer l'e-mail de confirmation").click()
    tab.wait_for_url(f"{portal}/alerts/sent")
    assert tab.locator("h1").inner_text() == "Consultez votre messagerie"
    check_page(tab, "guest-sent", ("desktop",))
    [confirmation] = wait_for("the confirmation e-mail", lambda: mailbox.to(address))
    assert confirmation.subject == "Confirmez vos alertes Fabrique"
    assert "List-Unsubscribe" not in confirmation.message

    # 4. A matching vacancy before confirming: nothing but the confirmation e-mail arrives.
    landlord.open_vacancy(trade)
    time.sleep(15)
    assert [m.subject for m in mailbox.to(address)] == [confirmation.subject]

    # 5. The link from the e-mail: a page that confirms only with its button.
    plain = text_of(confirmation, "plain")
    link = re.search(re.escape(portal) + r"/alerts/confirm/[A-Za-z0-9_-]+", plain)
    assert link, plain
    assert link.group(0) in text_of(confirmation, "html")
    tab.goto(link.group(0))
    assert tab.locator("h1").inner_text() == "Confirmez vos alertes par e-mail"
    check_page(tab, "guest-confirm", ("desktop",))
    tab.goto(link.group(0))  # opened twice (as a mail scanner would): still to confirm
    tab.get_by_role("button", name="Confirmer").click()
    tab.wait_for_load_state()
    assert tab.locator("h1").inner_text() == "Vos alertes par e-mail sont confirmées"
    check_page(tab, "guest-confirmed", ("desktop",))
    tab.goto(link.group(0))  # single use
    assert tab.locator("h1").inner_text() == "Ces alertes sont déjà confirmées"
    check_page(tab, "guest-link-used", ("desktop",))

    # 6. A landlord opens a matching vacancy: the alert e-mail arrives.
    unit = landlord.open_vacancy(trade)
    alerts = wait_for(
        "the alert e-mail",
        lambda: [m for m in mailbox.to(address) if m.subject.startswith("Atelier disponible")],
    )
    assert len(alerts) == 1, [m.subject for m in alerts]
    alert = alerts[0]
    assert landlord.site["name"] in alert.subject
    body = text_of(alert, "plain")
    assert unit["reference"] in body and NO_CHECK in body
    assert NO_CHECK in text_of(alert, "html")
    assert f"{portal}/login" in body
    assert alert.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = str(alert.message["List-Unsubscribe"]).strip("<>")
    assert unsubscribe in body

    # 7. The unsubscribe link (notifications' page: reading it changes nothing, its button does).
    tab.goto(unsubscribe)
    check_page(tab, "guest-unsubscribe", ("desktop",))
    tab.get_by_role("button", name="Ne plus recevoir ces alertes par e-mail").click()
    tab.wait_for_load_state()
    assert tab.locator("h1").inner_text() == "Désabonnement enregistré"
    check_page(tab, "guest-unsubscribed", ("desktop",))
    received = len(mailbox.to(address))
    landlord.open_vacancy(trade)
    time.sleep(15)
    assert len(mailbox.to(address)) == received
    assert tab.problems == []  # type: ignore[attr-defined]
