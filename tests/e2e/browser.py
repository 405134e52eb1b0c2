"""The real browser for the portal's tests: Debian's Chromium, headless, driven by Playwright
for Python, never a downloaded browser; axe-core from the portal's npm packages; screenshots
under .run/screenshots/.

Test modules take the ``browser`` (module) and ``page`` (a French-speaking tab that collects
script errors and CSP violations in ``page.problems``) fixtures by importing them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fabkit.localstack.kafka import repo_root
from fabkit.testing import fail_or_skip

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these Chromium keeps calling home, which floods a closed network.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AXE = repo_root() / "services" / "portal" / "node_modules" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
SHOTS = repo_root() / ".run" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 360, "height": 780}
# 200 % zoom of a 1280 px window lays the page out at 640 CSS px.
ZOOMED = {"width": 640, "height": 450}
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        fail_or_skip(f"playwright is not installed ({exc}); run scripts/bootstrap.sh")
    if not CHROMIUM.exists():
        fail_or_skip(f"{CHROMIUM} not found; scripts/bootstrap.sh installs Debian's chromium")
    if not AXE.exists():
        fail_or_skip(f"{AXE} not found; scripts/bootstrap.sh runs npm ci in services/portal")
    with sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


def new_tab(browser: Any, *, bypass_csp: bool = False, console_errors: bool = True) -> Any:
    """A French-speaking visitor's tab in a context of its own (no session, no Keycloak SSO);
    script errors (and, with ``console_errors``, console errors: CSP violations among them) are
    collected in ``tab.problems``. ``bypass_csp`` only lets axe-core's injected script in:
    test_portal_public checks the CSP itself. Close it with ``tab.context.close()``."""
    context = browser.new_context(viewport=DESKTOP, locale="fr-FR", bypass_csp=bypass_csp)
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    tab.problems = []
    if console_errors:
        tab.on("console", lambda m: tab.problems.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: tab.problems.append(str(e)))
    return tab


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A French-speaking visitor's tab; CSP violations and script errors are collected."""
    tab = new_tab(browser)
    yield tab
    tab.context.close()


@pytest.fixture
def axe_tab(browser: Any) -> Iterator[Any]:
    """A tab that axe-core can be injected into (CSP bypassed); script errors are collected,
    console lines are not (a refused form's 4xx answer is logged there on purpose)."""
    tab = new_tab(browser, bypass_csp=True, console_errors=False)
    yield tab
    tab.context.close()


def axe_violations(tab: Any) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.1 A/AA violations on the tab's page (a short form of each)."""
    tab.add_script_tag(path=str(AXE))
    result = tab.evaluate(
        "async (tags) => await axe.run(document, {runOnly: {type: 'tag', values: tags}})",
        AXE_TAGS,
    )
    return [
        {
            "id": v["id"],
            "help": v["help"],
            "nodes": [n["target"] for n in v["nodes"]][:5],
        }
        for v in result["violations"]
    ]


def screenshot(tab: Any, name: str) -> Path:
    """A full-page screenshot kept as a test artifact (.run/screenshots/<name>.png)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    tab.screenshot(path=str(path), full_page=True)
    return path


SIZES = {"desktop": DESKTOP, "phone": PHONE, "zoom200": ZOOMED}
EVERY_SIZE = tuple(SIZES)


def check_page(tab: Any, name: str, sizes: tuple[str, ...] = ("desktop", "phone")) -> None:
    """At each size (of ``SIZES``): a screenshot ``<name>-<size>``, no sideways scrolling, and
    no axe-core violation (axe-core is not run at 200 % zoom: the layout is the phone's)."""
    before = tab.viewport_size
    for label in sizes:
        tab.set_viewport_size(SIZES[label])
        screenshot(tab, f"{name}-{label}")
        if label != "zoom200":
            violations = axe_violations(tab)
            assert violations == [], f"{name} at {label}: {violations}"
        wide = tab.evaluate("document.documentElement.scrollWidth")
        assert wide <= SIZES[label]["width"], f"{name} scrolls sideways at {label} ({wide} px)"
    tab.set_viewport_size(before)


def log_in(tab: Any, portal_url: str, username: str, password: str) -> None:
    """Log in through the portal as a person does: "Se connecter" in the header, the identity
    provider's login form, and back on the portal signed in (asserted: "Mon espace" and the
    logout button are in the header). Leaves the tab on the page login returned to."""
    portal_url = portal_url.rstrip("/")
    if not tab.url.startswith(portal_url):
        tab.goto(portal_url + "/")
    tab.locator("header .login-link").click()
    tab.wait_for_selector("#kc-form-login", timeout=TIMEOUT_MS)
    tab.fill("#username", username)
    tab.fill("#password", password)
    tab.locator("#kc-login").click()
    tab.wait_for_url(lambda url: url.startswith(portal_url), timeout=TIMEOUT_MS)
    tab.wait_for_load_state()
    header = tab.locator("header.site-header")
    assert header.get_by_role("link", name="Mon espace").count() == 1, (
        f"not signed in after logging in as {username}: {tab.url}"
    )
    assert header.get_by_role("button", name="Se déconnecter").count() == 1


def log_out(tab: Any) -> None:
    """Log out with the header's button (which also ends the provider's session) and check
    the portal shows "Se connecter" again."""
    tab.locator("header.site-header").get_by_role("button", name="Se déconnecter").click()
    tab.wait_for_load_state()
    tab.locator("header .login-link").wait_for(timeout=TIMEOUT_MS)
    assert tab.locator("header.site-header").get_by_role("link", name="Mon espace").count() == 0
