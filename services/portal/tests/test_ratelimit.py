"""Fixed-window rate limits on a migrated SQLite and PostgreSQL database, with an injected
clock; the login's 429 page through the app."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from fabkit.localstack.ports import free_port
from portal import repository
from portal.cli import migrate
from portal.main import create_app
from portal.models import RateWindow
from portal.ratelimit import RateLimit
from portal.repository import Database
from portal.settings import PortalSettings


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/portal.db"
    else:
        server = request.getfixturevalue("postgres_server")
        name = f"portal_rl_{uuid.uuid4().hex[:12]}"
        server.create_database(name)
        url = str(server.url(name))
    migrate(url)
    return url


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    try:
        yield database
    finally:
        await database.aclose()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_windows_and_retry_after_are_whole_seconds() -> None:
    limit = RateLimit("t", 3, 60)
    assert limit.window(120.0) == (2, 60)
    assert limit.window(179.2) == (2, 1)
    assert limit.window(150.5) == (2, 30)
    assert RateLimit("t", 1, 0.5).window(10.3) == (20, 1)
    with pytest.raises(ValueError, match="limit"):
        RateLimit("t", 0, 60)
    with pytest.raises(ValueError, match="name"):
        RateLimit("x" * 61, 1, 60)


async def test_a_fixed_window_allows_limit_calls_then_says_when(db: Database) -> None:
    clock = Clock(1_000_040.0)  # 20 s into a 60 s window (1,000,020 = 16,667 × 60)
    limit = RateLimit("login", 3, 60, database=db, clock=clock)
    assert [await limit.check("203.0.113.7") for _ in range(3)] == [None, None, None]
    assert await limit.check("203.0.113.7") == 40
    clock.now += 30
    assert await limit.check("203.0.113.7") == 10
    # Another key and another limit count apart.
    assert await limit.check("198.51.100.1") is None
    other = RateLimit("guest-alert", 1, 60, database=db, clock=clock)
    assert await other.check("203.0.113.7") is None
    # The next window starts from zero, and the ended one is pruned.
    clock.now += 10
    assert await limit.check("203.0.113.7") is None
    assert await repository.count_windows(db, "login") == 1
    assert await repository.count_windows(db, "guest-alert") == 1


async def test_keys_are_stored_hashed(db: Database) -> None:
    limit = RateLimit("login", 5, 60, database=db, clock=Clock(0.0))
    await limit.check("203.0.113.7")
    async with db.reads() as session:
        query = select(RateWindow.key).where(RateWindow.name == "login")  # type: ignore[call-overload]
        keys = [k for (k,) in (await session.execute(query)).all()]
    assert keys and "203.0.113.7" not in keys[0] and len(keys[0]) == 64


async def test_concurrent_calls_are_all_counted(db: Database) -> None:
    """Replicas share the counter: calls racing on one database never lose an increment."""
    limit = RateLimit("login", 10, 60, database=db, clock=Clock(5.0))
    other_process = Database(db.url)
    try:
        twin = RateLimit("login", 10, 60, database=other_process, clock=Clock(5.0))
        answers = await asyncio.gather(
            *(limit.check("k") for _ in range(8)), *(twin.check("k") for _ in range(8))
        )
    finally:
        await other_process.aclose()
    assert answers.count(None) == 10
    assert sorted(a for a in answers if a is not None) == [55] * 6


async def test_login_over_the_limit_is_a_429_page_with_retry_after(database_url: str) -> None:
    settings = PortalSettings(
        database_url=database_url,
        environment="test",
        oidc_issuer=f"http://127.0.0.1:{free_port()}/realms/fabrique",  # nobody there
        login_rate_limit=2,
        login_rate_window_s=300,
        inventory_url=f"http://127.0.0.1:{free_port()}",
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://portal") as client:
            first = [(await client.get("/login")).status_code for _ in range(2)]
            assert first == [503, 503]  # counted, then the provider is down
            refused = await client.get("/auth/register")
            assert refused.status_code == 429
            assert 1 <= int(refused.headers["retry-after"]) <= 300
            assert "Trop de tentatives" in refused.text
            assert "puis réessayez" in refused.text
