"""Web sessions: the pure parts (PKCE, next-path safety, cookies, CSRF, key derivation, the
login-flow cookie) and the session store on a migrated SQLite and PostgreSQL database."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from fabkit.localstack.ports import free_port
from fabkit.metrics import personal_data_oldest
from portal import repository
from portal.cli import migrate
from portal.main import create_app
from portal.models import WebSession
from portal.repository import Database
from portal.sessions import (
    LOGIN_FLOW_TTL_S,
    CookieNames,
    Keys,
    LoginFlow,
    SessionManager,
    TokenSet,
    clear_cookie_header,
    csrf_matches,
    guest_csrf_cookie,
    guest_csrf_from_cookie,
    hash_session_id,
    new_pkce_verifier,
    pkce_challenge,
    safe_next,
    set_cookie_header,
)
from portal.settings import PortalSettings

SECRET = "a-test-session-secret-of-more-than-32-characters"


# PKCE ----------------------------------------------------------------------------------------


def test_pkce_verifier_is_long_random_and_url_safe() -> None:
    verifiers = {new_pkce_verifier() for _ in range(50)}
    assert len(verifiers) == 50
    for verifier in verifiers:
        assert 43 <= len(verifier) <= 128
        assert re.fullmatch(r"[A-Za-z0-9\-._~]+", verifier)


def test_pkce_challenge_is_rfc_7636_s256() -> None:
    # RFC 7636, appendix B.
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert pkce_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    digest = hashlib.sha256(verifier.encode()).digest()
    assert pkce_challenge(verifier) == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


# next ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "me",
        "https://evil.example/",
        "http:/evil.example",
        "//evil.example/path",
        "/\\evil.example",
        "/ok\\..\\evil",
        "javascript:alert(1)",
        "/me\r\nSet-Cookie: x=1",
        "/me\x00",
        "/" + "a" * 2100,
    ],
)
def test_next_refuses_anything_but_a_local_path(value: str | None) -> None:
    assert safe_next(value) == "/me"


@pytest.mark.parametrize(
    "value", ["/", "/me", "/me/searches?x=1&y=2", "/units/42#programmes", "/?arrondissement=13"]
)
def test_next_keeps_local_paths(value: str) -> None:
    assert safe_next(value) == value


# cookies -------------------------------------------------------------------------------------


def test_cookie_flags_and_the_host_prefix_in_prod() -> None:
    dev = set_cookie_header("fabrique_session", "abc", max_age=60, secure=False)
    assert dev == "fabrique_session=abc; Path=/; HttpOnly; SameSite=Lax; Max-Age=60"
    prod = set_cookie_header("__Host-fabrique_session", "abc", max_age=None, secure=True)
    assert prod == "__Host-fabrique_session=abc; Path=/; HttpOnly; SameSite=Lax; Secure"
    assert "Domain" not in prod
    assert clear_cookie_header("x", secure=True).endswith("Max-Age=0; Secure")
    names = CookieNames.for_settings(PortalSettings(environment="prod", session_secret=SECRET))  # type: ignore[arg-type]
    assert names.session == "__Host-fabrique_session"
    assert names.csrf == "__Host-fabrique_csrf" and names.login == "__Host-fabrique_login"
    assert CookieNames.for_settings(PortalSettings()).session == "fabrique_session"


# CSRF ----------------------------------------------------------------------------------------


def test_csrf_check_needs_the_exact_token() -> None:
    assert csrf_matches("token-1", "token-1")
    assert not csrf_matches("token-1", "token-2")
    assert not csrf_matches("token-1", "")
    assert not csrf_matches("token-1", None)
    assert not csrf_matches("token-1", ["token-1"])
    assert not csrf_matches(None, "token-1")
    assert not csrf_matches("", "")


def test_a_visitor_csrf_cookie_is_signed() -> None:
    keys = Keys(SECRET)
    cookie = guest_csrf_cookie(keys, "visitor-token")
    assert guest_csrf_from_cookie(keys, cookie) == "visitor-token"
    _, _, mac = cookie.rpartition(".")
    assert guest_csrf_from_cookie(keys, f"other-token.{mac}") is None
    assert guest_csrf_from_cookie(keys, "visitor-token") is None
    assert guest_csrf_from_cookie(keys, None) is None
    # Another deployment's secret signs differently.
    assert guest_csrf_from_cookie(Keys(SECRET + "x"), cookie) is None


# keys and the login-flow cookie ----------------------------------------------------------------


def test_encryption_is_per_purpose_and_bound() -> None:
    keys = Keys(SECRET)
    sealed = keys.encrypt("session-tokens", b"secret tokens", b"row-1")
    assert b"secret" not in base64.urlsafe_b64decode(sealed + "==")
    assert keys.decrypt("session-tokens", sealed, b"row-1") == b"secret tokens"
    assert keys.decrypt("session-tokens", sealed, b"row-2") is None
    assert keys.decrypt("login-flow", sealed, b"row-1") is None
    assert Keys(SECRET + "x").decrypt("session-tokens", sealed, b"row-1") is None
    tampered = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    assert keys.decrypt("session-tokens", tampered, b"row-1") is None
    assert keys.decrypt("session-tokens", "not base64 !", b"row-1") is None


def test_login_flow_cookie_round_trip_expiry_and_tampering() -> None:
    keys = Keys(SECRET)
    flow = LoginFlow.start("https://evil.example/")
    assert flow.next == "/me"
    sealed = flow.seal(keys)
    assert flow.verifier not in sealed and flow.state not in sealed
    assert LoginFlow.open(keys, sealed) == flow
    assert LoginFlow.open(keys, sealed, now=flow.started + LOGIN_FLOW_TTL_S + 1) is None
    assert LoginFlow.open(keys, sealed[:-3] + "AAA") is None
    assert LoginFlow.open(Keys(SECRET + "x"), sealed) is None
    assert LoginFlow.open(keys, None) is None
    assert LoginFlow.start("/units/1?x=2").next == "/units/1?x=2"


def test_session_ids_are_stored_hashed() -> None:
    assert hash_session_id("abc") == hashlib.sha256(b"abc").hexdigest()


# the store on real databases --------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/portal.db"
    else:
        server = request.getfixturevalue("postgres_server")
        name = f"portal_{uuid.uuid4().hex[:12]}"
        server.create_database(name)
        url = str(server.url(name))
    migrate(url)
    return url


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[tuple[SessionManager, Clock]]:
    settings = PortalSettings(
        database_url=database_url,
        session_secret=SECRET,  # type: ignore[arg-type]
        session_idle_timeout_s=600,
        session_absolute_lifetime_s=3600,
    )
    db = Database(database_url)
    clock = Clock()
    try:
        yield SessionManager(settings, db, None, clock=clock), clock
    finally:
        await db.aclose()


CLAIMS = {
    "sub": "3f0c9a52-0000-4000-8000-000000000001",
    "name": "Camille Roux",
    "email": "camille.roux@example.org",
    "email_verified": True,
    "roles": ["artisan", "default-roles-fabrique"],
}


def tokens(now: datetime, access_s: int = 300) -> TokenSet:
    return TokenSet.from_response(
        {
            "access_token": "access-token-value",
            "refresh_token": "refresh-token-value",
            "id_token": "id-token-value",
            "expires_in": access_s,
            "refresh_expires_in": 1800,
        },
        now,
    )


async def test_a_session_opens_loads_and_keeps_tokens_encrypted(
    store: tuple[SessionManager, Clock],
) -> None:
    manager, clock = store
    raw = await manager.open(tokens(clock()), CLAIMS)
    loaded = await manager.load(raw)
    assert loaded is not None
    _row, user, id_token = loaded
    assert user.sub == CLAIMS["sub"] and user.name == "Camille Roux"
    assert user.email == "camille.roux@example.org" and user.email_verified
    assert user.roles == frozenset({"artisan", "default-roles-fabrique"})
    assert user.access_token == "access-token-value"
    assert id_token == "id-token-value"
    assert len(user.csrf_token) >= 40
    assert "access-token-value" not in repr(user)
    # At rest: the id's hash only, and no token in clear.
    async with manager.db.reads() as session:
        stored = (await session.execute(select(WebSession))).scalars().all()
    assert [s.id_hash for s in stored] == [hash_session_id(raw)]
    assert raw not in json.dumps([s.model_dump(mode="json") for s in stored])
    assert "token-value" not in stored[0].tokens
    assert await manager.load("unknown-id") is None
    assert await manager.load("") is None


async def test_idle_and_absolute_timeouts_end_sessions(
    store: tuple[SessionManager, Clock],
) -> None:
    manager, clock = store
    raw = await manager.open(tokens(clock(), access_s=7200), CLAIMS)
    for _ in range(6):  # used every 9 minutes: the idle timeout (10 min) never passes
        clock.advance(540)
        assert await manager.load(raw) is not None
    clock.advance(3600 - 6 * 540 + 1)  # past the absolute lifetime (1 h), not idle
    assert await manager.load(raw) is None
    assert await repository.count_sessions(manager.db) == 0

    idle = await manager.open(tokens(clock(), access_s=7200), CLAIMS)
    clock.advance(601)
    assert await manager.load(idle) is None


async def test_expired_rows_are_pruned_when_someone_logs_in(
    store: tuple[SessionManager, Clock],
) -> None:
    manager, clock = store
    for _ in range(3):
        await manager.open(tokens(clock()), CLAIMS)
    assert await repository.count_sessions(manager.db) == 3
    clock.advance(300)
    await manager.open(tokens(clock()), CLAIMS)
    # The oldest session kept (the first three, 300 s old) is what the gauge says.
    assert _oldest_web_session() == 300
    clock.advance(301)
    await manager.open(tokens(clock()), CLAIMS)
    assert await repository.count_sessions(manager.db) == 2
    assert _oldest_web_session() == 301  # the first three pruned: the fourth is the oldest


def _oldest_web_session() -> float:
    return personal_data_oldest().labels("web_sessions")._value.get()  # type: ignore[no-any-return]


async def test_a_session_whose_token_cannot_be_refreshed_ends(
    store: tuple[SessionManager, Clock],
) -> None:
    manager, clock = store  # no identity provider: a refresh cannot succeed
    raw = await manager.open(tokens(clock(), access_s=60), CLAIMS)
    assert await manager.load(raw) is not None
    clock.advance(45)  # within the 30 s refresh margin
    assert await manager.load(raw) is None
    assert await repository.count_sessions(manager.db) == 0


async def test_a_row_encrypted_under_another_secret_ends(
    store: tuple[SessionManager, Clock], database_url: str
) -> None:
    manager, clock = store
    raw = await manager.open(tokens(clock()), CLAIMS)
    other = SessionManager(
        PortalSettings(database_url=database_url, session_secret=SECRET + "-rotated"),  # type: ignore[arg-type]
        manager.db,
        None,
        clock=clock,
    )
    assert await other.load(raw) is None


# the app: CSRF dependency and login redirect, without an identity provider ---------------------


async def test_forms_without_the_visitor_token_are_refused(database_url: str) -> None:
    settings = PortalSettings(
        database_url=database_url,
        environment="test",
        inventory_url=f"http://127.0.0.1:{free_port()}",
        leasing_url=f"http://127.0.0.1:{free_port()}",
        notifications_url=f"http://127.0.0.1:{free_port()}",
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://portal") as client:
            page = await client.get("/programmes")  # 503 (leasing down) but a page with a form
            cookie = page.cookies.get("fabrique_csrf")
            assert cookie is not None
            assert "HttpOnly" in page.headers["set-cookie"]
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert token is None or token.group(1) == cookie.split(".")[0]
            missing = await client.post("/logout", data={})
            assert missing.status_code == 403
            assert "Ce formulaire a expiré" in missing.text
            forged = await client.post("/logout", data={"csrf_token": "forged"})
            assert forged.status_code == 403
            good = await client.post("/logout", data={"csrf_token": cookie.split(".")[0]})
            assert good.status_code == 303 and good.headers["location"] == "/"
            client.cookies.clear()
            stolen = await client.post("/logout", data={"csrf_token": cookie.split(".")[0]})
            assert stolen.status_code == 403, "a token without its cookie is refused"
            me = await client.get("/me?tab=1")
            assert me.status_code == 303
            assert me.headers["location"] == "/login?next=/me%3Ftab%3D1"
            login = await client.get("/login")
            assert login.status_code == 503
            assert "La connexion est indisponible" in login.text
