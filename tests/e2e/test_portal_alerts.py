"""My space's saved searches, live feed and delivery log in a real browser (Debian's Chromium,
headless) against the platform as real processes: the portal, notifications, inventory, the real
Kafka broker and Keycloak 26 with the demo realm.

Camille (a demo artisan) saves a search from the board with the feed and a webhook, sees the
signing secret once, edits and pauses it; a landlord opens a matching vacancy through inventory's
API and the alert appears in her open feed page without a reload; she marks it read. Her webhook
receiver is down, so the delivery log shows the webhook failing, then dead; once the receiver is
up, "Envoyer à nouveau" delivers it under the same ``webhook-id``. axe-core and a screenshot on
every page added (desktop, and 360 px for the list, form and feed).

It runs on ``e2e_platform`` (unseeded, notifications' retries in tenths of a second), so a dead
delivery takes seconds; with no programme published, alerts are not filtered by eligibility.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from fabkit.auth import Role
from fabkit.localstack.platform import Platform
from fabkit.oidc_testing import login_with_pkce

from .browser import TIMEOUT_MS, check_page, log_in
from .harness import (
    MAX_ATTEMPTS,
    Receiver,
    ReceiverHub,
    bearer,
    identities,
    luhn_siret,
    oidc_issuer,
    tag,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

USER = "camille.roux"
PASSWORD = "fabrique-demo-2026"


class SwitchableReceiver(Receiver):
    """A webhook receiver that answers 503 while `down`, and like the hub's `ok` mode after."""

    down = True

    def _status_for(self, webhook_id: str) -> tuple[int, float]:
        if self.down:
            self._attempts[webhook_id] += 1
            return 503, 0.0
        return super()._status_for(webhook_id)


@pytest.fixture(scope="module")
def portal(e2e_platform: Platform) -> str:
    assert "portal" in e2e_platform.services, "deploy/services.json does not start the portal"
    return e2e_platform.services["portal"].url


@pytest.fixture(scope="module")
def receiver(receiver_hub: ReceiverHub) -> SwitchableReceiver:
    """Started on the hub's loop; the hub stops it with the others."""
    made = SwitchableReceiver(receiver_hub)
    asyncio.run_coroutine_threadsafe(made._start(), receiver_hub.loop).result(10)
    receiver_hub.receivers.append(made)
    return made


def sign_in_at_provider(tab: Any, portal: str) -> None:
    tab.wait_for_selector("#kc-form-login", timeout=TIMEOUT_MS)
    tab.fill("#username", USER)
    tab.fill("#password", PASSWORD)
    tab.locator("#kc-login").click()
    tab.wait_for_url(lambda url: url.startswith(portal), timeout=TIMEOUT_MS)
    tab.wait_for_load_state()


def camille_follows(platform: Platform, trade: str) -> None:
    """Camille's leasing profile takes the test's trade and a cooperative's legal form, so the
    social-economy programme (every site kind, no trade rule) makes her eligible for the
    vacancy: leasing publishes its programmes at start, and notifications then alerts only
    artisans whose profile it has received and who qualify. Done first, so the profile's event
    has reached notifications long before the vacancy's."""

    def login() -> dict[str, Any]:
        return asyncio.run(login_with_pkce(oidc_issuer(platform), USER, PASSWORD))

    with ThreadPoolExecutor(1) as pool:
        token = pool.submit(login).result(120)["access_token"]
    leasing = platform.services["leasing"].url
    today = date.today()
    profile = {
        "display_name": "Camille Roux",
        "business_name": "Roux Céramique",
        "siret": luhn_siret(),
        "trades": [trade],
        "business_created_on": today.replace(year=today.year - 2, day=1).isoformat(),
        "legal_form": "scop",
        "labels": [],
        "contact_email": "camille.roux@example.org",
    }
    with httpx.Client(timeout=20) as client:
        made = client.post(f"{leasing}/v1/artisans", json=profile, headers=bearer(token))
        if made.status_code == 409:  # registered by an earlier module of this session
            changes = {"trades": [trade], "legal_form": "scop"}
            made = client.patch(f"{leasing}/v1/artisans/me", json=changes, headers=bearer(token))
        assert made.status_code in (200, 201), made.text


def open_vacancy(platform: Platform, trade: str) -> dict[str, Any]:
    """A landlord (a fresh one, through its own client-credentials token) registers a unit that
    matches the search and opens its vacancy."""
    inventory = platform.services["inventory"].url
    ids = identities(platform)
    admin = ids.token(Role.ADMIN, f"e2e-alerts-{uuid.uuid4().hex[:8]}")
    with httpx.Client(timeout=20) as client:
        landlord = client.post(
            f"{inventory}/v1/landlords",
            json={"name": f"E2E alerts landlord {uuid.uuid4().hex[:6]}"},
            headers=bearer(admin),
        )
        assert landlord.status_code == 201, landlord.text
        token = ids.token(Role.LANDLORD, landlord.json()["id"])
        site = client.post(
            f"{inventory}/v1/sites",
            json={
                "name": f"Hôtel industriel E2E {uuid.uuid4().hex[:6]}",
                "kind": "hotel_industriel",
                "address": "12 rue de l'Essai",
                "postcode": "75019",
                "arrondissement": 19,
                "opens_for_visits": True,
            },
            headers=bearer(token),
        )
        assert site.status_code == 201, site.text
        unit = client.post(
            f"{inventory}/v1/sites/{site.json()['id']}/units",
            json={
                "reference": f"A{uuid.uuid4().hex[:5].upper()}",
                "floor": 1,
                "surface_m2": 140,
                "ceiling_height_m": 4.5,
                "power_kva": 48,
                "goods_lift": True,
                "allowed_trades": [trade],
                "rent_eur_m2_year": 110,
                "charges_eur_m2_year": 20,
                "status": "unavailable",
            },
            headers=bearer(token),
        )
        assert unit.status_code == 201, unit.text
        opened = client.patch(
            f"{inventory}/v1/units/{unit.json()['id']}",
            json={"status": "available"},
            headers=bearer(token),
        )
        assert opened.status_code == 200, opened.text
    return {"unit": unit.json(), "site": site.json()}


def reload_until(tab: Any, what: str, ready: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        tab.reload()
        tab.wait_for_load_state()
        if ready():
            return
        assert time.monotonic() < deadline, f"{what}: not seen after {timeout:.0f} s"
        time.sleep(1.0)


def test_camille_saves_a_search_gets_the_alert_live_and_sends_a_dead_webhook_again(
    axe_tab: Any, page: Any, portal: str, e2e_platform: Platform, receiver: SwitchableReceiver
) -> None:
    strict, page = page, axe_tab
    trade = tag("alerts")
    hook_path = f"/hooks/{uuid.uuid4().hex[:12]}"
    board = {"trade": trade, "min_surface": "50", "min_power_kva": "30", "sort": "-surface"}
    camille_follows(e2e_platform, trade)

    # 1. Signed out on the board: "Enregistrer cette recherche" goes through login and back.
    page.goto(f"{portal}/?{urlencode(board)}")
    save = page.get_by_role("link", name="Enregistrer cette recherche")
    assert save.count() == 1
    save.click()
    sign_in_at_provider(page, portal)
    assert page.url.startswith(f"{portal}/me/searches/new?"), page.url
    assert page.locator("h1").inner_text() == "Enregistrer une recherche"
    # the board's filters are there, in the board's own controls
    assert page.locator("#f-trade").input_value() == trade
    assert page.locator("#f-min_surface").input_value() == "50"
    assert page.locator("#f-min_power_kva").input_value() == "30"
    assert page.locator("#f-channel-feed").is_checked()
    check_page(page, "alerts-new-search")

    # 2. A refusal is explained beside its field.
    page.fill("#f-name", "Céramique, tout Paris")
    page.check("#f-channel-webhook")
    page.fill("#f-webhook_url", "ftp://nowhere")
    page.get_by_role("button", name="Enregistrer cette recherche").click()
    page.wait_for_load_state()
    assert "Saisissez une adresse web" in page.locator("#f-webhook_url-error").inner_text()
    assert page.locator("#f-webhook_url").get_attribute("aria-invalid") == "true"
    assert page.locator(".error-summary").count() == 1
    check_page(page, "alerts-new-search-error", ("desktop",))

    # 3. Saved with the feed and the webhook: the secret is shown once.
    page.fill("#f-webhook_url", receiver.url(hook_path))
    page.get_by_role("button", name="Enregistrer cette recherche").click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "Le secret de signature de votre webhook"
    secret = page.locator("#webhook-secret").input_value()
    assert secret.startswith("whsec_") and len(secret) > 30
    assert "webhook-signature" in page.locator("main").inner_text()
    receiver.secrets[hook_path] = secret
    check_page(page, "alerts-secret", ("desktop",))
    page.get_by_role("link", name="J'ai copié le secret : retour à mes recherches").click()
    page.wait_for_url(f"{portal}/me/searches")
    assert secret not in page.content()
    page.reload()
    assert secret not in page.content(), "the secret is shown once only"
    card = page.locator(".search-card", has_text="Céramique, tout Paris")
    assert card.count() == 1
    text = card.inner_text()
    assert "Active" in text
    assert "Au moins 50 m²" in text
    assert "Puissance électrique d'au moins 30 kVA" in text
    assert receiver.url(hook_path) in text
    search_id = card.get_attribute("data-search-id")
    assert search_id
    check_page(page, "alerts-searches")

    # 4. Edit: the name changes, the webhook keeps its secret (no new one shown).
    card.get_by_role("link", name="Modifier").click()
    page.wait_for_url(f"{portal}/me/searches/{search_id}/edit")
    assert page.locator("#f-min_power_kva").input_value() == "30"
    assert secret not in page.content()
    check_page(page, "alerts-edit-search", ("desktop",))
    page.fill("#f-name", "Céramique, grands ateliers")
    page.get_by_role("button", name="Enregistrer les modifications").click()
    page.wait_for_url(f"{portal}/me/searches?done=changed")
    card = page.locator(f'.search-card[data-search-id="{search_id}"]')
    assert "Céramique, grands ateliers" in card.inner_text()

    # 5. Pause, then resume.
    card.get_by_role("button", name="Mettre en pause").click()
    page.wait_for_url(f"{portal}/me/searches?done=paused")
    card = page.locator(f'.search-card[data-search-id="{search_id}"]')
    assert "En pause" in card.inner_text()
    card.get_by_role("button", name="Reprendre").click()
    page.wait_for_url(f"{portal}/me/searches?done=resumed")
    assert "Active" in page.locator(f'.search-card[data-search-id="{search_id}"]').inner_text()

    # 6. The feed is open, live; a landlord opens a matching vacancy; the alert appears.
    page.goto(f"{portal}/me/feed")
    page.wait_for_selector("body[data-feed-live=open]", state="attached")
    page.evaluate("window.__noReload = true")
    before = page.locator("#feed-list .feed-item").count()
    opened = open_vacancy(e2e_platform, trade)
    unit_id = opened["unit"]["id"]
    page.wait_for_selector(f'#feed-list .feed-item a[href="/units/{unit_id}"]', timeout=60_000)
    assert page.evaluate("window.__noReload") is True, "the alert came without a reload"
    assert page.locator("#feed-list .feed-item").count() == before + 1
    item = page.locator("#feed-list .feed-item").first
    assert "Non lue" in item.inner_text(), "unread is said in words, not by colour alone"
    assert opened["site"]["name"] in item.inner_text()
    assert "140 m²" in item.inner_text()
    page.wait_for_function(
        "document.getElementById('unread-count').textContent.includes('non lue')"
    )
    assert page.locator(".feed-region").get_attribute("aria-live") == "polite"
    assert page.title().startswith("(")
    check_page(page, "alerts-feed")

    # 7. Marked read with a plain form.
    item.get_by_role("button", name="Marquer comme lue").click()
    page.wait_for_url(f"{portal}/me/feed")
    item = page.locator(f'#feed-list .feed-item:has(a[href="/units/{unit_id}"])')
    assert "Non lue" not in item.inner_text()
    assert item.get_by_role("button", name="Marquer comme non lue").count() == 1
    assert page.locator("#unread-count").inner_text() == "Aucune alerte non lue"
    item.get_by_role("button", name="Marquer comme non lue").click()
    page.wait_for_url(f"{portal}/me/feed")
    assert page.locator("#unread-count").inner_text() == "1 alerte non lue"
    page.get_by_role("button", name="Marquer toutes les alertes comme lues").click()
    page.wait_for_url(f"{portal}/me/feed")
    assert page.locator("#unread-count").inner_text() == "Aucune alerte non lue"
    assert page.locator("#feed-list .feed-item-unread").count() == 0

    # 8. The receiver is down: the delivery log shows the webhook failing, then dead.
    page.goto(f"{portal}/me/searches/{search_id}/deliveries")
    dead = page.locator("tr.delivery-dead")
    reload_until(page, "a dead webhook delivery", lambda: dead.count() == 1)
    row = dead.first
    assert "Webhook" in row.inner_text()
    assert "Échec\xa0: plus aucune tentative" in row.inner_text()
    assert str(MAX_ATTEMPTS) in row.locator("td.numeric").inner_text()
    assert "503" in row.inner_text()
    webhook_id = row.get_attribute("data-delivery-id")
    hits = [h for h in receiver.hits_for([hook_path]) if h.webhook_id == webhook_id]
    assert len(hits) == MAX_ATTEMPTS, [h.answered for h in hits]
    assert all(h.verified for h in hits), "signed with the secret the page showed once"
    assert all(h.answered == 503 for h in hits)
    check_page(page, "alerts-deliveries", ("desktop",))

    # 9. Up again: "Envoyer à nouveau" delivers it under the same webhook-id.
    receiver.down = False
    row.get_by_role("button", name="Envoyer à nouveau").click()
    page.wait_for_url(f"{portal}/me/searches/{search_id}/deliveries?done=redelivered")
    delivered = page.locator(f'tr.delivery-delivered[data-delivery-id="{webhook_id}"]')
    reload_until(page, "the delivery sent again", lambda: delivered.count() == 1, 30)
    ok = [h for h in receiver.hits_for([hook_path]) if h.answered == 200]
    assert [h.webhook_id for h in ok] == [webhook_id], "one delivery, under the same webhook-id"
    assert ok[0].verified
    assert ok[0].payload()["data"]["unit"]["unit_id"] == unit_id
    page.goto(f"{portal}/me/deliveries")
    assert page.locator(f'tr.delivery-delivered[data-delivery-id="{webhook_id}"]').count() == 1
    check_page(page, "alerts-all-deliveries")

    # 10. Delete, after a confirmation step.
    page.goto(f"{portal}/me/searches")
    card = page.locator(f'.search-card[data-search-id="{search_id}"]')
    card.get_by_role("link", name="Supprimer").click()
    page.wait_for_url(f"{portal}/me/searches/{search_id}/delete")
    check_page(page, "alerts-delete-search", ("desktop",))
    page.get_by_role("button", name="Oui, supprimer cette recherche").click()
    page.wait_for_url(f"{portal}/me/searches?done=deleted")
    assert page.locator(f'.search-card[data-search-id="{search_id}"]').count() == 0
    assert page.problems == [], page.problems  # type: ignore[attr-defined]

    # 11. Under the portal's real CSP (no inline script), the feed's script runs and connects.
    log_in(strict, portal, USER, PASSWORD)
    strict.goto(f"{portal}/me/feed")
    strict.wait_for_selector("body[data-feed-live=open]", state="attached")
    assert strict.locator(f'#feed-list a[href="/units/{unit_id}"]').count() == 1
    assert strict.problems == [], strict.problems  # type: ignore[attr-defined]
