"""The portal in-process: headers, languages, error pages and a down upstream. The pages over
real upstreams are tested end to end (tests/e2e/test_portal_public.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import ValidationError

from fabkit.localstack.ports import free_port
from portal.main import create_app
from portal.settings import DEV_SESSION_SECRET, PortalSettings


def settings(**overrides: object) -> PortalSettings:
    # Nothing listens on these ports: every upstream is down.
    down = f"http://127.0.0.1:{free_port()}"
    base: dict[str, object] = {
        "inventory_url": down,
        "leasing_url": down,
        "notifications_url": down,
        "environment": "test",
    }
    return PortalSettings(**{**base, **overrides})  # type: ignore[arg-type]


async def client_for(config: PortalSettings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(config)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://portal") as client:
            yield client


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async for c in client_for(settings()):
        yield c


async def test_a_down_upstream_is_a_503_page_that_names_it(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["retry-after"] == "30"
    assert "Désolé, le service est indisponible" in response.text
    assert "service inventory" in response.text
    assert "Traceback" not in response.text


async def test_every_answer_carries_the_security_headers(client: httpx.AsyncClient) -> None:
    for path in ("/", "/login", "/no-such-page", "/static/css/portal.css", "/livez"):
        response = await client.get(path)
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert "'unsafe-inline'" not in csp
        assert "img-src 'self' data:;" in csp  # no tile server configured
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"
        assert "strict-transport-security" not in response.headers


async def test_prod_adds_hsts_and_the_tile_host_to_img_src() -> None:
    config = settings(
        environment="prod",
        session_secret="x" * 40,
        tile_url="https://tiles.example.org/{z}/{x}/{y}.png",
    )
    async for client in client_for(config):
        response = await client.get("/login")
        assert response.headers["strict-transport-security"].startswith("max-age=")
        assert (
            "img-src 'self' data: https://tiles.example.org;"
            in (response.headers["content-security-policy"])
        )
        english = await client.get("/login?lang=en")
        assert "Secure" in english.headers["set-cookie"]


def test_prod_refuses_the_development_session_secret() -> None:
    with pytest.raises(ValidationError, match="development default"):
        settings(environment="prod", session_secret=DEV_SESSION_SECRET)
    with pytest.raises(ValidationError, match="at least 32"):
        settings(environment="prod", session_secret="short")
    with pytest.raises(ValidationError, match=r"\{z\}"):
        settings(tile_url="https://tiles.example.org/map.png")


async def test_french_first_then_english_by_choice(client: httpx.AsyncClient) -> None:
    french = await client.get("/login")
    assert '<html lang="fr">' in french.text
    assert "La connexion est indisponible pour le moment" in french.text
    assert french.headers["content-language"] == "fr"
    english = await client.get("/login?lang=en")
    assert '<html lang="en">' in english.text
    assert "Login is unavailable right now" in english.text
    cookie = english.headers["set-cookie"]
    assert "lang=en" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    remembered = await client.get("/login", headers={"Cookie": "lang=en"})
    assert "Login is unavailable right now" in remembered.text
    browser = await client.get("/login", headers={"Accept-Language": "en-GB,en;q=0.8"})
    assert '<html lang="en">' in browser.text


async def test_unknown_pages_get_the_404_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/no-such-page")
    assert response.status_code == 404
    assert "Page introuvable" in response.text
    wrong_method = await client.post("/login")
    assert wrong_method.status_code == 405
    assert "Cette demande ne peut pas aboutir" in wrong_method.text


async def test_readiness_reports_the_upstreams(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "degraded",
        "checks": {
            "inventory": "unreachable",
            "leasing": "unreachable",
            "notifications": "unreachable",
        },
    }


async def test_leaflet_is_served_from_node_modules(client: httpx.AsyncClient) -> None:
    response = await client.get("/assets/leaflet/leaflet.js")
    assert response.status_code == 200, "run scripts/bootstrap.sh (npm ci in services/portal)"
    assert "Leaflet" in response.text[:500]
