"""My data and the erasure of an account in a real browser (Debian's Chromium, headless) on the
platform as real processes (``e2e_platform``: the portal, inventory, leasing, notifications,
Kafka, Keycloak):

an artisan with a profile and an application logs in, opens "Mes données", downloads their data
(the file parsed: their profile and their application are in leasing's part, every service has
its part, the portal's lists their web session), then asks to delete their account: refused
without the box ticked (the message beside the box), then erased, and lands logged out; once
leasing's account deleter has removed their Keycloak account, logging in again through the
portal fails (the identity provider says the credentials are invalid).

axe-core runs on both new pages at 1280 px and 360 px; screenshots in .run/screenshots/.
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from fabkit.localstack.platform import Platform
from fabkit.oidc_testing import TEST_PASSWORD

from .browser import TIMEOUT_MS, check_page, log_in
from .harness import Api, Artisan, bearer, check, eventually, tag
from .scenario import PROJECT

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


async def _artisan_with_an_application(platform: Platform) -> tuple[Artisan, dict[str, Any]]:
    async with httpx.AsyncClient(timeout=30) as client:
        api = Api(platform, client)
        trade = tag("privacy")
        _, landlord = await api.new_landlord()
        site = await api.new_site(landlord, arrondissement=18)
        unit = await api.new_unit(landlord, site["id"], trades=[trade], surface=60)
        opened = check(await api.set_status(landlord, unit["id"], "available"), 200)

        async def listed() -> Any:
            found = await api.leasing_unit(unit["id"])
            return found if found and found["vacancy_id"] == opened["vacancy_id"] else None

        await eventually(listed, timeout=60, what="leasing to list the vacancy")
        artisan = await api.register_artisan([trade], name="Nadia Privacy")
        application = check(
            await api.write(
                "POST", "leasing", "/v1/applications", artisan.token,
                json={"unit_id": unit["id"], "project": PROJECT},
            ),
            201,
        )  # fmt: skip
        return artisan, application


async def _account_deleted(platform: Platform, artisan_id: str) -> None:
    """Wait until leasing's audit log says the erased artisan's Keycloak account is deleted."""
    async with httpx.AsyncClient(timeout=30) as client:
        api = Api(platform, client)
        path = "/v1/privacy/requests?kind=erasure&limit=100"

        async def deleted() -> bool:
            page = check(await client.get(api.url("leasing", path), headers=bearer(api.admin)), 200)
            rows = [x for x in page["items"] if x["subject_artisan_id"] == artisan_id]
            return bool(rows) and rows[0]["account"] == "deleted"

        await eventually(deleted, timeout=90, what="leasing to delete the Keycloak account")


def test_an_artisan_downloads_their_data_then_erases_their_account(
    axe_tab: Any, e2e_platform: Platform, tmp_path: Path
) -> None:
    assert "portal" in e2e_platform.services, "deploy/services.json does not start the portal"
    portal = e2e_platform.services["portal"].url
    # Playwright's sync API runs a loop in this thread: the API calls run in one of their own.
    with ThreadPoolExecutor(1) as pool:
        made = pool.submit(asyncio.run, _artisan_with_an_application(e2e_platform))
        artisan, application = made.result(timeout=180)
    tab = axe_tab

    log_in(tab, portal, f"t-artisan-{artisan.id}".lower(), TEST_PASSWORD)
    tab.goto(portal + "/me")
    tab.get_by_role("link", name="Mes données").click()
    tab.wait_for_url(portal + "/me/data")
    assert tab.locator("h1").inner_text() == "Mes données"
    check_page(tab, "privacy-my-data")

    with tab.expect_download(timeout=TIMEOUT_MS) as downloading:
        tab.get_by_role("link", name="Télécharger mes données").click()
    saved = tmp_path / "export.json"
    downloading.value.save_as(saved)
    document = json.loads(saved.read_text(encoding="utf-8"))
    assert document["subject"] == artisan.id
    parts = document["services"]
    assert set(parts) == {"inventory", "leasing", "notifications", "portal"}
    for name in ("inventory", "leasing", "notifications"):
        assert "error" not in parts[name], parts[name]
        assert parts[name]["subject"] == artisan.id
    leasing = parts["leasing"]["records"]
    assert [p["display_name"] for p in leasing["profile"]] == ["Nadia Privacy"]
    assert application["id"] in [a["id"] for a in leasing["applications"]]
    assert parts["portal"]["records"]["web_sessions"], "the web session logged in just now"

    tab.get_by_role("link", name="Supprimer mon compte et mes données").click()
    tab.wait_for_url(portal + "/me/delete")
    check_page(tab, "privacy-delete")
    submit = tab.get_by_role("button", name="Supprimer mon compte et mes données")
    submit.click()
    tab.wait_for_load_state()
    error = tab.locator("#f-confirm-error")
    assert "Cochez la case" in error.inner_text()
    check_page(tab, "privacy-delete-refused")

    tab.get_by_label("Je comprends que cela efface mon compte").check()
    tab.get_by_role("button", name="Supprimer mon compte et mes données").click()
    tab.wait_for_load_state()
    assert tab.locator("h1").inner_text() == "Votre compte est effacé", tab.content()[:2000]
    header = tab.locator("header.site-header")
    assert header.get_by_role("link", name="Mon espace").count() == 0
    tab.locator("header .login-link").wait_for(timeout=TIMEOUT_MS)
    check_page(tab, "privacy-deleted", sizes=("desktop",))

    # The identity provider's account went too: the same credentials no longer log in.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _account_deleted(e2e_platform, artisan.id)).result(timeout=120)
    tab.locator("header .login-link").click()
    tab.wait_for_selector("#kc-form-login", timeout=TIMEOUT_MS)
    tab.fill("#username", f"t-artisan-{artisan.id}".lower())
    tab.fill("#password", TEST_PASSWORD)
    tab.locator("#kc-login").click()
    tab.wait_for_load_state()
    refused = tab.locator("#input-error-username")
    refused.wait_for(timeout=TIMEOUT_MS)
    assert "invalid" in refused.inner_text().lower(), refused.inner_text()  # fr: « invalide »
    assert not tab.url.startswith(portal), tab.url
    assert tab.locator("#kc-form-login").count() == 1
