"""The board's map reuses inventory's sites list for MAP_SITES_TTL_S seconds: one listing per
window however many views ask, concurrent views wait for one listing, a failed listing is not
kept; for MAP_SITES_GRACE_S after the window views get the previous list while one listing
runs in the background, never a list older than that. Against inventory's own app (SQLite,
its demo seed) in-process."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator

import httpx
import pytest

from fabkit.localstack.ports import free_port
from portal.clients import Upstreams, UpstreamUnavailable
from portal.clients import inventory as client


@pytest.fixture(scope="module")
def inventory_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('inventory')}/inventory.db"
    env = {**os.environ, "INVENTORY_DATABASE_URL": url, "INVENTORY_ENVIRONMENT": "dev"}
    for step in ("migrate", "seed"):
        subprocess.run(
            [sys.executable, "-m", "inventory.cli", step], env=env, check=True, capture_output=True
        )
    return url


@pytest.fixture
async def upstreams(
    inventory_db: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Upstreams, list[str]]]:
    for key, value in {
        "INVENTORY_DATABASE_URL": inventory_db,
        "INVENTORY_RUN_RELAY": "false",
        "INVENTORY_RUN_CONSUMERS": "false",
        "INVENTORY_ENVIRONMENT": "dev",
    }.items():
        monkeypatch.setenv(key, value)
    from inventory.main import create_app

    app = create_app()
    listings: list[str] = []

    async def note(request: httpx.Request) -> None:
        if request.url.path == "/v1/sites":
            listings.append(str(request.url))

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        make = lambda: httpx.AsyncClient(  # noqa: E731
            transport=transport, base_url="http://inventory", event_hooks={"request": [note]}
        )
        ups = Upstreams(make(), make(), make())
        try:
            yield ups, listings
        finally:
            await ups.aclose()


async def test_one_listing_serves_the_window_then_a_fresh_one(
    upstreams: tuple[Upstreams, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    ups, listings = upstreams
    now = [1000.0]
    monkeypatch.setattr(client.time, "monotonic", lambda: now[0])
    first = await client.map_sites(ups)
    assert first.total > 0 and len(first.items) == first.total
    pages = len(listings)
    assert pages >= 1
    now[0] += client.MAP_SITES_TTL_S - 0.1
    assert await client.map_sites(ups) is first
    assert len(listings) == pages, "within the window the list is reused"
    # Past the window: the view is answered at once with the list it had, and one listing
    # runs in the background; the views after it get the fresh list.
    now[0] += 0.2
    assert await client.map_sites(ups) is first
    assert await client.map_sites(ups) is first, "one refresh in flight, not one per view"
    refresh = client._refreshing[ups.inventory]
    again = await refresh
    assert again is not first and [s.id for s in again.items] == [s.id for s in first.items]
    assert len(listings) == 2 * pages, "after the window the sites are listed again, once"
    assert await client.map_sites(ups) is again
    assert ups.inventory not in client._refreshing


async def test_a_list_past_the_grace_is_never_shown(
    upstreams: tuple[Upstreams, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    ups, listings = upstreams
    now = [5000.0]
    monkeypatch.setattr(client.time, "monotonic", lambda: now[0])
    first = await client.map_sites(ups)
    pages = len(listings)
    now[0] += client.MAP_SITES_TTL_S + client.MAP_SITES_GRACE_S + 0.1
    fresh = await client.map_sites(ups)
    assert fresh is not first, "too old to show while refreshing: the view waits for a listing"
    assert len(listings) == 2 * pages
    assert ups.inventory not in client._refreshing


async def test_a_failed_refresh_is_not_kept(
    upstreams: tuple[Upstreams, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    ups, _ = upstreams
    now = [9000.0]
    monkeypatch.setattr(client.time, "monotonic", lambda: now[0])
    first = await client.map_sites(ups)
    kept = client._map_sites[ups.inventory]
    now[0] += client.MAP_SITES_TTL_S + 0.1
    # inventory stops answering: the background listing fails, the view still has the list
    real = ups.inventory.send

    async def down(*args: object, **kwargs: object) -> httpx.Response:
        raise httpx.ConnectError("inventory is down")

    monkeypatch.setattr(ups.inventory, "send", down)
    assert await client.map_sites(ups) is first
    assert await client._refreshing[ups.inventory] is None, "the failure is not kept"
    assert client._map_sites[ups.inventory] == kept
    # past the grace the view waits for a listing, and says inventory is down
    now[0] += client.MAP_SITES_GRACE_S
    with pytest.raises(UpstreamUnavailable):
        await client.map_sites(ups)
    monkeypatch.setattr(ups.inventory, "send", real)
    assert (await client.map_sites(ups)) is not first


async def test_concurrent_views_wait_for_one_listing(
    upstreams: tuple[Upstreams, list[str]],
) -> None:
    ups, listings = upstreams
    answers = await asyncio.gather(*(client.map_sites(ups) for _ in range(8)))
    assert all(a is answers[0] for a in answers)
    assert len(listings) == -(-answers[0].total // 100), "one listing (its pages), not eight"


async def test_each_app_has_its_own_list_and_a_failure_is_not_kept(
    upstreams: tuple[Upstreams, list[str]],
) -> None:
    ups, _ = upstreams
    await client.map_sites(ups)
    # Another app (another inventory client) does not see this one's list.
    dead = httpx.AsyncClient(base_url=f"http://127.0.0.1:{free_port()}", timeout=2.0)
    other = Upstreams(dead, dead, dead)
    try:
        with pytest.raises(UpstreamUnavailable):
            await client.map_sites(other)
        assert dead not in client._map_sites, "a failed listing is not kept"
        with pytest.raises(UpstreamUnavailable):
            await client.map_sites(other)
    finally:
        await dead.aclose()
