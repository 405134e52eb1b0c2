"""My data: the download gathered from the three services (one down: its part says so, no 500),
the portal's own part (web sessions, no token), the erasure's confirmation refused without the
box ticked, and the pages in French. The upstreams are real HTTP servers on free ports (a
service that is down is a port nothing listens on); the sessions live in a real SQLite."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from fabkit.localstack.ports import free_port
from portal.cli import migrate
from portal.i18n import set_locale
from portal.main import create_app
from portal.sessions import TokenSet
from portal.settings import PortalSettings

SUB = f"artisan-{uuid.uuid4().hex[:8]}"


@pytest.fixture(autouse=True)
def _french() -> None:
    set_locale("fr")


def upstream(service: str, seen: list[tuple[str, str, str]]) -> FastAPI:
    """A stand-in of one service's two GDPR endpoints, answering the shared contract."""
    app = FastAPI()

    @app.get("/v1/me/export")
    async def export(request: Request) -> JSONResponse:
        seen.append((service, "GET", request.headers.get("authorization", "")))
        return JSONResponse(
            {
                "service": service,
                "subject": SUB,
                "generated_at": "2026-12-02T12:00:00+00:00",
                "records": {"profile": [{"display_name": "Camille Roux"}]},
            },
            headers={"Cache-Control": "no-store"},
        )

    @app.delete("/v1/me")
    async def erase(request: Request) -> JSONResponse:
        seen.append((service, "DELETE", request.headers.get("authorization", "")))
        kept = [
            {"kind": "leases", "why": "A signed lease is kept."},
            {"kind": "a_kind_the_portal_does_not_know", "why": "Kept for a new reason."},
        ]
        return JSONResponse(
            {"erasure_id": "e1", "status": "done", "kept": kept if service == "leasing" else []},
            status_code=202,
        )

    @app.get("/livez")
    async def livez() -> dict[str, str]:
        return {"status": "ok"}

    return app


@pytest.fixture
async def servers() -> AsyncIterator[tuple[dict[str, str], list[tuple[str, str, str]]]]:
    seen: list[tuple[str, str, str]] = []
    urls: dict[str, str] = {}
    running: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []
    for service in ("leasing", "notifications"):
        port = free_port()
        config = uvicorn.Config(
            upstream(service, seen), host="127.0.0.1", port=port, log_level="warning"
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        running.append((server, task))
        urls[service] = f"http://127.0.0.1:{port}"
    for server, _task in running:
        while not server.started:
            await asyncio.sleep(0.02)
    urls["inventory"] = f"http://127.0.0.1:{free_port()}"  # nothing listens: inventory is down
    try:
        yield urls, seen
    finally:
        for server, task in running:
            server.should_exit = True
            await task


@pytest.fixture
async def portal(
    servers: tuple[dict[str, str], list[tuple[str, str, str]]], tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, Any, Callable[..., Any]]]:
    urls, _seen = servers
    db = f"sqlite+aiosqlite:///{tmp_path}/portal.db"
    await asyncio.to_thread(migrate, db)
    settings = PortalSettings(
        inventory_url=urls["inventory"],
        leasing_url=urls["leasing"],
        notifications_url=urls["notifications"],
        environment="test",
        database_url=db,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        manager = app.state.sessions

        async def login(sub: str = SUB) -> str:
            now = manager.clock()
            tokens = TokenSet.from_response(
                {"access_token": f"token-of-{sub}", "refresh_token": "r", "id_token": "i",
                 "expires_in": 3600, "refresh_expires_in": 7200},
                now,
            )  # fmt: skip
            claims = {"sub": sub, "name": "Camille Roux", "email": "c@example.org",
                      "email_verified": True, "roles": ["artisan"]}  # fmt: skip
            return await manager.open(tokens, claims)  # type: ignore[no-any-return]

        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://portal") as client:
            yield client, manager, login


def cookie(manager: Any, raw: str) -> dict[str, str]:
    return {manager.cookies.session: raw}


async def test_the_download_gathers_every_service_and_says_which_could_not_be_reached(
    portal: tuple[httpx.AsyncClient, Any, Callable[..., Any]],
    servers: tuple[dict[str, str], list[tuple[str, str, str]]],
) -> None:
    client, manager, login = portal
    raw = await login()
    await login()  # a second browser of the same person
    await login("someone-else")

    r = await client.get("/me/data/export", cookies=cookie(manager, raw))

    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["content-disposition"] == 'attachment; filename="fabrique-export.json"'
    doc = json.loads(r.content)
    assert doc["subject"] == SUB and doc["generated_at"]
    parts = doc["services"]
    assert set(parts) == {"inventory", "leasing", "notifications", "portal"}
    assert parts["leasing"]["records"]["profile"] == [{"display_name": "Camille Roux"}]
    assert parts["notifications"]["service"] == "notifications"
    assert parts["inventory"]["error"] == "unreachable"
    assert "quelques minutes" in parts["inventory"]["detail"]
    sessions = parts["portal"]["records"]["web_sessions"]
    assert len(sessions) == 2
    assert set(sessions[0]) == {
        "created_at",
        "last_seen_at",
        "expires_at",
        "name",
        "email",
        "roles",
    }
    assert "token-of" not in r.text and "csrf" not in r.text
    _urls, seen = servers
    assert ("leasing", "GET", f"Bearer token-of-{SUB}") in seen


async def test_the_page_explains_and_names_the_service_that_is_down(
    portal: tuple[httpx.AsyncClient, Any, Callable[..., Any]],
) -> None:
    client, manager, login = portal
    r = await client.get("/me/data", cookies=cookie(manager, await login()))
    assert r.status_code == 200
    assert "<h1>Mes données</h1>" in r.text
    assert "Télécharger mes données" in r.text and 'href="/me/data/export"' in r.text
    assert "Certains services ne répondent pas" in r.text and "inventory" in r.text
    assert 'href="/me/delete"' in r.text


async def test_the_pages_want_a_login(
    portal: tuple[httpx.AsyncClient, Any, Callable[..., Any]],
) -> None:
    client, _manager, _login = portal
    for path in ("/me/data", "/me/data/export", "/me/delete"):
        r = await client.get(path)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=/me/")


async def test_erasure_without_the_box_ticked_erases_nothing_and_says_so_by_the_field(
    portal: tuple[httpx.AsyncClient, Any, Callable[..., Any]],
    servers: tuple[dict[str, str], list[tuple[str, str, str]]],
) -> None:
    client, manager, login = portal
    raw = await login()
    page = await client.get("/me/delete", cookies=cookie(manager, raw))
    csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]

    r = await client.post("/me/delete", data={"csrf_token": csrf}, cookies=cookie(manager, raw))

    assert r.status_code == 400
    assert 'id="f-confirm-error"' in r.text and "Cochez la case" in r.text
    assert 'href="#f-confirm"' in r.text
    _urls, seen = servers
    assert not [s for s in seen if s[1] == "DELETE"]
    assert len(await manager.of_subject(SUB)) == 1


async def test_erasure_needs_the_form_s_csrf_token(
    portal: tuple[httpx.AsyncClient, Any, Callable[..., Any]],
    servers: tuple[dict[str, str], list[tuple[str, str, str]]],
) -> None:
    client, manager, login = portal
    raw = await login()
    r = await client.post("/me/delete", data={"confirm": "yes"}, cookies=cookie(manager, raw))
    assert r.status_code == 403
    assert not [s for s in servers[1] if s[1] == "DELETE"]


async def test_erasure_calls_leasing_then_notifications_and_ends_every_session(
    portal: tuple[httpx.AsyncClient, Any, Callable[..., Any]],
    servers: tuple[dict[str, str], list[tuple[str, str, str]]],
) -> None:
    client, manager, login = portal
    raw = await login()
    await login()
    await login("someone-else")
    page = await client.get("/me/delete", cookies=cookie(manager, raw))
    csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]

    r = await client.post(
        "/me/delete", data={"csrf_token": csrf, "confirm": "yes"}, cookies=cookie(manager, raw)
    )

    assert r.status_code == 200, r.text
    assert "Votre compte est effacé" in r.text
    # A kind the page knows is said in its language; another keeps the service's sentence.
    assert "Un bail signé est un contrat : il est conservé" in r.text
    assert "A signed lease is kept." not in r.text and "Kept for a new reason." in r.text
    assert 'action="/logout"' not in r.text  # the page is a logged-out one
    _urls, seen = servers
    assert [(s, m) for s, m, _ in seen if m == "DELETE"] == [
        ("leasing", "DELETE"),
        ("notifications", "DELETE"),
    ]
    assert await manager.of_subject(SUB) == []
    assert len(await manager.of_subject("someone-else")) == 1
    again = await client.get("/me/data", cookies=cookie(manager, raw))
    assert again.status_code == 303
