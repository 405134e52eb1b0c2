"""Login, web sessions, CSRF and the login rate limit in a real browser (Debian's Chromium,
headless) against the platform as real processes: the portal, its SQLite sessions database
and the real Keycloak 26 with the demo realm (authorization code + PKCE S256).

The rate-limit test spends the loopback address's login budget on the shared seeded platform,
so it is marked ``spends_login_budget`` and runs after every other test of that platform.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from fabkit.localstack.platform import Platform

from .browser import DESKTOP, PHONE, TIMEOUT_MS, axe_violations, log_in, log_out, screenshot
from .harness import Mailbox

# The platform (Kafka, Keycloak, four services) starts in the first test's setup: on a busy
# two-core machine that alone can pass the default 300 s.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

PASSWORD = "fabrique-demo-2026"


@pytest.fixture(scope="module")
def portal(platform: Platform) -> str:
    assert "portal" in platform.services, "deploy/services.json does not start the portal"
    return platform.services["portal"].url


@pytest.fixture
def fresh(browser: Any) -> Iterator[Any]:
    """A French-speaking browser with its own cookies (no session, no Keycloak SSO). axe-core
    is injected as an inline script, which the portal's CSP forbids: the context bypasses the
    CSP (test_portal_public checks that the pages keep to it)."""
    context = browser.new_context(viewport=DESKTOP, locale="fr-FR", bypass_csp=True)
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    yield tab
    context.close()


def session_cookie(tab: Any) -> dict[str, Any] | None:
    return next((c for c in tab.context.cookies() if c["name"].endswith("fabrique_session")), None)


def no_axe_violations(tab: Any, name: str) -> None:
    screenshot(tab, name)
    violations = axe_violations(tab)
    assert violations == [], f"{name}: {violations}"


def test_camille_logs_in_sees_her_space_keeps_it_on_reload_and_logs_out(
    fresh: Any, portal: str
) -> None:
    page = fresh
    page.goto(portal + "/")
    login_link = page.locator("header .login-link")
    assert login_link.inner_text() == "Se connecter"
    assert page.locator("header").get_by_role("link", name="Créer un compte").count() == 1
    log_in(page, portal, "camille.roux", PASSWORD)
    assert page.url.rstrip("/") == portal, "login goes back to the page it started from"

    cookie = session_cookie(page)
    assert cookie is not None
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    assert cookie["path"] == "/"
    assert "fabrique_session" not in page.evaluate("document.cookie")
    assert not any(c["name"].endswith("fabrique_login") for c in page.context.cookies())

    page.locator("header").get_by_role("link", name="Mon espace").click()
    page.wait_for_url(portal + "/me")
    assert page.locator("h1").inner_text() == "Mon espace"
    account = page.locator(".account-summary").inner_text()
    assert "Camille Roux" in account
    assert "Artisan ou coopérative" in account
    assert "Connecté·e\xa0: Camille Roux" in page.locator("header").inner_text()
    sections = {
        a.inner_text(): a.get_attribute("href") for a in page.locator(".me-sections a").all()
    }
    assert sections == {
        "Profil": "/me/profile",
        "Recherches enregistrées": "/me/searches",
        "Fil d'alertes": "/me/feed",
        "Candidatures": "/me/applications",
        "Offres": "/me/offers",
        "Mes données": "/me/data",
    }
    no_axe_violations(page, "me-desktop")
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    no_axe_violations(page, "me-phone")
    page.set_viewport_size(DESKTOP)

    page.reload()
    assert page.locator("h1").inner_text() == "Mon espace"
    assert session_cookie(page) == cookie, "the session survives a reload with the same id"

    # The logout button works from the keyboard alone.
    logout = page.locator("header").get_by_role("button", name="Se déconnecter")
    logout.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: url.rstrip("/") == portal)
    page.locator("header .login-link").wait_for()
    assert session_cookie(page) is None
    # Logged out at the provider too: my space asks for the password again.
    page.goto(portal + "/me")
    page.wait_for_selector("#kc-form-login")
    assert "/realms/fabrique/" in page.url


def test_an_expired_access_token_is_refreshed_at_the_provider(
    fresh: Any, portal: str, platform: Platform
) -> None:
    """The session row's access token is made to look expired; the next page refreshes it
    with the refresh token at the real Keycloak, and the person stays signed in."""
    url = platform.services["portal"].env["PORTAL_DATABASE_URL"]
    path = url.split(":///", 1)[1]
    log_in(fresh, portal, "hugo.bernard", PASSWORD)
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT id_hash, access_expires_at, tokens FROM web_sessions").fetchall()
        mine = [r for r in rows if r[0] == _cookie_hash(fresh)]
        assert len(mine) == 1
        id_hash, expires_at, sealed = mine[0]
        db.execute(
            "UPDATE web_sessions SET access_expires_at = ? WHERE id_hash = ?",
            ("2000" + str(expires_at)[4:], id_hash),
        )
    fresh.goto(portal + "/me")
    assert fresh.locator("h1").inner_text() == "Mon espace"
    with sqlite3.connect(path) as db:
        after = db.execute(
            "SELECT access_expires_at, tokens FROM web_sessions WHERE id_hash = ?", (id_hash,)
        ).fetchone()
    assert str(after[0]) > str(expires_at)[:19], "the access token was not refreshed"
    assert after[1] != sealed, "new tokens are stored (encrypted) after the refresh"
    log_out(fresh)


def _cookie_hash(tab: Any) -> str:
    cookie = session_cookie(tab)
    assert cookie is not None
    return hashlib.sha256(cookie["value"].encode()).hexdigest()


def test_my_space_asks_for_a_login_and_comes_back_to_the_page(fresh: Any, portal: str) -> None:
    with httpx.Client(timeout=10) as client:
        answer = client.get(portal + "/me?from=e2e", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=/me%3Ffrom%3De2e"

    fresh.goto(portal + "/me?from=e2e")
    fresh.wait_for_selector("#kc-form-login")
    query = parse_qs(urlsplit(fresh.url).query)
    assert query["client_id"] == ["fabrique-portal"]
    assert query["code_challenge_method"] == ["S256"]
    assert query["ui_locales"] == ["fr"]
    assert query["redirect_uri"] == [portal + "/auth/callback"]
    assert len(query["code_challenge"][0]) == 43
    fresh.fill("#username", "malik.benali")
    fresh.fill("#password", PASSWORD)
    fresh.locator("#kc-login").click()
    fresh.wait_for_url(portal + "/me?from=e2e")
    assert "Malik" in fresh.locator(".account-summary").inner_text()
    log_out(fresh)


@pytest.mark.parametrize(
    "target", ["https://evil.example/steal", "//evil.example/steal", "/\\evil.example"]
)
def test_next_pointing_to_another_site_is_refused(fresh: Any, portal: str, target: str) -> None:
    fresh.goto(f"{portal}/login?{httpx.QueryParams({'next': target})}")
    fresh.wait_for_selector("#kc-form-login")
    fresh.fill("#username", "sophie.lambert")
    fresh.fill("#password", PASSWORD)
    fresh.locator("#kc-login").click()
    fresh.wait_for_url(portal + "/me")
    assert "Agent ou agente de la Ville" in fresh.locator(".account-summary").inner_text()


def test_a_forged_or_missing_csrf_token_on_logout_is_refused(fresh: Any, portal: str) -> None:
    page = fresh
    log_in(page, portal, "lea.martin", PASSWORD)
    for form in ({"csrf_token": "forged-token"}, {}):
        answer = page.request.post(portal + "/logout", form=form, max_redirects=0)
        assert answer.status == 403
        assert "Ce formulaire a expiré" in answer.text()
    # A visitor's valid token (another browser's double-submit cookie) does not work either.
    with httpx.Client(timeout=10) as client:
        client.get(portal + "/programmes")
        visitor_token = client.cookies["fabrique_csrf"].split(".")[0]
    answer = page.request.post(
        portal + "/logout", form={"csrf_token": visitor_token}, max_redirects=0
    )
    assert answer.status == 403

    # The page a person sees: the form's token altered, then the button.
    page.goto(portal + "/me")
    page.evaluate("document.querySelector('.logout-form input[name=csrf_token]').value = 'forged'")
    page.locator("header").get_by_role("button", name="Se déconnecter").click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "Ce formulaire a expiré"
    assert "rechargez la page" in page.locator("main").inner_text()
    no_axe_violations(page, "csrf-403")
    # Still signed in: the refused form changed nothing.
    page.goto(portal + "/me")
    assert page.locator("h1").inner_text() == "Mon espace"
    log_out(page)


def test_login_errors_say_what_happened_and_offer_to_try_again(fresh: Any, portal: str) -> None:
    fresh.goto(portal + "/auth/callback?error=access_denied&state=x")
    assert fresh.locator("h1").inner_text() == "Vous n'êtes pas connecté·e"
    assert "La connexion a été annulée" in fresh.locator("main").inner_text()
    again = fresh.get_by_role("link", name="Réessayer de vous connecter")
    assert again.get_attribute("href").startswith("/login?next=")
    no_axe_violations(fresh, "login-denied")

    # A callback whose state is not the one this browser started with.
    fresh.goto(portal + "/login")
    fresh.wait_for_selector("#kc-form-login")
    fresh.goto(portal + "/auth/callback?code=forged&state=forged")
    assert "ne correspond pas à la connexion commencée" in fresh.locator("main").inner_text()
    no_axe_violations(fresh, "login-bad-state")

    # A callback with no login started in this browser at all.
    fresh.context.clear_cookies()
    fresh.goto(portal + "/auth/callback?code=forged&state=forged")
    assert "commencée dans un autre navigateur" in fresh.locator("main").inner_text()
    again = fresh.get_by_role("link", name="Réessayer de vous connecter")
    again.click()
    fresh.wait_for_selector("#kc-form-login")


def test_an_artisan_registers_and_verifies_the_email_from_the_mail_catcher(
    fresh: Any, portal: str, platform: Platform
) -> None:
    assert platform.mail is not None
    mailbox = Mailbox(platform.mail.folder)
    address = "nadia.ferrand@example.org"
    fresh.goto(portal + "/")
    fresh.locator("header").get_by_role("link", name="Créer un compte").click()
    fresh.wait_for_selector("#kc-register-form")
    assert "/registrations" in fresh.url and "ui_locales=fr" in fresh.url
    for field, value in (
        ("#firstName", "Nadia"),
        ("#lastName", "Ferrand"),
        ("#email", address),
        ("#username", "nadia.ferrand"),
        ("#password", "Atelier-Paris-2026!"),
        ("#password-confirm", "Atelier-Paris-2026!"),
    ):
        if fresh.locator(field).count():
            fresh.fill(field, value)
    fresh.locator("#kc-register-form [type=submit]").click()
    fresh.wait_for_load_state()

    link = None
    for _ in range(60):
        mails = mailbox.to(address)
        if mails:
            body = _text(mails[-1].message)
            found = re.search(r"https?://\S+action-token\S+", body)
            link = found.group(0).rstrip(").,") if found else None
            break
        fresh.wait_for_timeout(500)
    assert link, "Keycloak sent no verification e-mail to the mail catcher"
    fresh.goto(link)
    fresh.wait_for_url(lambda url: url.startswith(portal), timeout=TIMEOUT_MS)
    fresh.goto(portal + "/me")
    summary = fresh.locator(".account-summary").inner_text()
    assert "Nadia Ferrand" in summary
    assert address in summary and "(vérifiée)" in summary
    log_out(fresh)


def _text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    return part.get_content() if part is not None else ""


@pytest.mark.spends_login_budget
def test_login_rate_limit_answers_429_in_words(fresh: Any, portal: str) -> None:
    limit = 20  # PORTAL_LOGIN_RATE_LIMIT's default, per 60 s and client address
    with httpx.Client(timeout=10) as client:
        answers = [client.get(portal + "/login", follow_redirects=False) for _ in range(limit + 1)]
    statuses = [a.status_code for a in answers]
    assert 429 in statuses, statuses
    first = statuses.index(429)
    assert all(s == 303 for s in statuses[:first])
    refused = answers[first]
    retry_after = int(refused.headers["retry-after"])
    assert 1 <= retry_after <= 60
    assert "Trop de tentatives" in refused.text
    assert "Attendez 1 minute, puis réessayez" in refused.text
    fresh.goto(portal + "/login")
    assert fresh.locator("h1").inner_text() == "Trop de tentatives"
    no_axe_violations(fresh, "login-429")
