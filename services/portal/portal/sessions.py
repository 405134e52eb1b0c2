"""Web sessions: login at the identity provider (authorization code + PKCE S256), the
server-side session it opens, CSRF tokens, and the middleware that puts both on each request.

- The session cookie holds only a random id (256 bits); the database keeps its SHA-256, the
  person's name, e-mail and roles, and the tokens encrypted with AES-GCM under a key derived
  from ``PORTAL_SESSION_SECRET`` (HKDF, one key per purpose) and bound to the row.
- A session ends after ``session_idle_timeout_s`` without a request, after
  ``session_absolute_lifetime_s`` in any case, at logout, or when its access token can no
  longer be refreshed. A login always opens a new session id (the old one, if any, is deleted).
- The login flow's state, nonce and PKCE verifier travel in a short-lived encrypted HttpOnly
  cookie, so a login started here can only be finished by the same browser.
- CSRF: a signed-in person's forms carry the session's token; a visitor's carry the token of
  a signed double-submit cookie (HMAC under its own derived key).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fabkit.errors import ProblemError
from fabkit.metrics import personal_data_oldest
from fabkit.oidc import IdentityProviderUnavailable, JwksTokenVerifier
from portal import repository
from portal.models import WebSession
from portal.repository import Database
from portal.settings import PortalSettings

log = logging.getLogger(__name__)

#: Refresh an access token this long before it expires.
REFRESH_MARGIN_S = 30
#: last_seen_at is written at most this often per session (idle timeout precision).
TOUCH_EVERY_S = 60
#: How long a login started at the provider may take before its cookie expires.
LOGIN_FLOW_TTL_S = 900
#: Paths that never need the session (no database read for them).
UNSESSIONED_PREFIXES = ("/static/", "/assets/", "/livez", "/readyz", "/metrics", "/favicon")


# keys ----------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Keys:
    """Keys derived from the session secret, one per purpose."""

    def __init__(self, secret: str) -> None:
        self._secret = secret.encode()
        self._derived: dict[str, bytes] = {}

    def _derive(self, purpose: str) -> bytes:
        key = self._derived.get(purpose)
        if key is None:
            key = HKDF(
                algorithm=hashes.SHA256(),
                length=32,
                salt=b"fabrique-portal",
                info=purpose.encode(),
            ).derive(self._secret)
            self._derived[purpose] = key
        return key

    def encrypt(self, purpose: str, plaintext: bytes, bound_to: bytes = b"") -> str:
        nonce = secrets.token_bytes(12)
        sealed = AESGCM(self._derive(purpose)).encrypt(nonce, plaintext, bound_to)
        return _b64(nonce + sealed)

    def decrypt(self, purpose: str, token: str, bound_to: bytes = b"") -> bytes | None:
        """The plaintext, or None when the text was altered, bound elsewhere or not ours."""
        try:
            raw = _unb64(token)
            return AESGCM(self._derive(purpose)).decrypt(raw[:12], raw[12:], bound_to)
        except (InvalidTag, ValueError, TypeError):
            return None

    def mac(self, purpose: str, value: str) -> str:
        return _b64(hmac.new(self._derive(purpose), value.encode(), hashlib.sha256).digest())


def hash_session_id(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


# PKCE, state, next ---------------------------------------------------------------------------


def new_pkce_verifier() -> str:
    """43 to 128 characters of [A-Za-z0-9-._~] (RFC 7636 §4.1): 64 random bytes, base64url."""
    return secrets.token_urlsafe(64)[:128]


def pkce_challenge(verifier: str) -> str:
    """S256: base64url(SHA-256(verifier)) without padding (RFC 7636 §4.2)."""
    return _b64(hashlib.sha256(verifier.encode("ascii")).digest())


def safe_next(value: str | None, default: str = "/me") -> str:
    """A local path to go to after login, or ``default``: never another site (no scheme, no
    host, no ``//`` or ``/\\`` that browsers read as one, no control characters)."""
    if not value or len(value) > 2000 or not value.startswith("/"):
        return default
    if value.startswith(("//", "/\\")) or "\\" in value:
        return default
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value


# cookies -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CookieNames:
    session: str
    csrf: str
    login: str

    @classmethod
    def for_settings(cls, settings: PortalSettings) -> CookieNames:
        # __Host-: Secure, Path=/, no Domain, so no other host can plant or read it.
        prefix = "__Host-" if settings.environment == "prod" else ""
        return cls(
            session=f"{prefix}fabrique_session",
            csrf=f"{prefix}fabrique_csrf",
            login=f"{prefix}fabrique_login",
        )


def set_cookie_header(name: str, value: str, *, max_age: int | None, secure: bool) -> str:
    """A Set-Cookie value: HttpOnly, SameSite=Lax, Path=/, Secure when asked."""
    parts = [f"{name}={value}", "Path=/", "HttpOnly", "SameSite=Lax"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def clear_cookie_header(name: str, *, secure: bool) -> str:
    return set_cookie_header(name, "", max_age=0, secure=secure)


def read_cookies(scope: Scope) -> dict[str, str]:
    jar = SimpleCookie()
    for key, value in scope.get("headers", []):
        if key == b"cookie":
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # noqa: S112 - a malformed Cookie header is the browser's problem
                continue
    return {k: m.value for k, m in jar.items()}


# CSRF ----------------------------------------------------------------------------------------


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def guest_csrf_cookie(keys: Keys, token: str) -> str:
    return f"{token}.{keys.mac('csrf-guest', token)}"


def guest_csrf_from_cookie(keys: Keys, cookie: str | None) -> str | None:
    """The token a valid visitor CSRF cookie carries, None when absent or forged."""
    if not cookie or "." not in cookie:
        return None
    token, _, mac = cookie.rpartition(".")
    if not token or not hmac.compare_digest(mac, keys.mac("csrf-guest", token)):
        return None
    return token


def csrf_matches(expected: str | None, submitted: object) -> bool:
    """True when the form's token is the expected one (constant time)."""
    if not expected or not isinstance(submitted, str) or not submitted:
        return False
    return hmac.compare_digest(expected.encode(), submitted.encode())


# who is signed in -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedIn:
    """The person a request comes from. ``access_token`` is valid for the APIs (refreshed when
    it was about to expire); pass it as the bearer token of every API call made for them."""

    sub: str
    name: str
    email: str | None
    email_verified: bool
    roles: frozenset[str]
    access_token: str = field(repr=False)
    csrf_token: str = field(repr=False)


@dataclass
class WebContext:
    """What the middleware learnt about the request (``request.state.web``)."""

    keys: Keys
    session_id_hash: str | None = None
    user: SignedIn | None = None
    id_token: str | None = field(default=None, repr=False)
    guest_csrf: str | None = field(default=None, repr=False)
    new_guest_csrf: bool = False
    set_cookies: list[str] = field(default_factory=list)

    def csrf_token(self) -> str:
        """The token this request's forms must carry (a visitor's is made on first need)."""
        if self.user is not None:
            return self.user.csrf_token
        if self.guest_csrf is None:
            self.guest_csrf = new_csrf_token()
            self.new_guest_csrf = True
        return self.guest_csrf


# the identity provider ------------------------------------------------------------------------


class LoginError(Exception):
    """The login could not finish; ``reason`` picks the page's explanation."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class TokenSet:
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    id_token: str | None = field(repr=False)
    access_expires_at: datetime
    refresh_expires_at: datetime | None

    @classmethod
    def from_response(cls, body: dict[str, Any], now: datetime) -> TokenSet:
        access = body.get("access_token")
        if not isinstance(access, str) or not access:
            raise LoginError("provider", "the token endpoint returned no access token")
        expires_in = int(body.get("expires_in") or 60)
        refresh_in = body.get("refresh_expires_in")
        refresh = body.get("refresh_token")
        return cls(
            access_token=access,
            refresh_token=refresh if isinstance(refresh, str) and refresh else None,
            id_token=body.get("id_token") if isinstance(body.get("id_token"), str) else None,
            access_expires_at=now + timedelta(seconds=expires_in),
            refresh_expires_at=(
                now + timedelta(seconds=int(refresh_in))
                if isinstance(refresh_in, int) and refresh_in > 0
                else None
            ),
        )

    def sealed(self) -> bytes:
        return json.dumps(
            {"access": self.access_token, "refresh": self.refresh_token, "id": self.id_token}
        ).encode()


class OidcClient:
    """The realm as a relying party sees it: the discovery document (fetched once), the
    authorization, registration, token and end-session endpoints, and ID-token checks."""

    def __init__(self, settings: PortalSettings, http: httpx.AsyncClient) -> None:
        assert settings.oidc_issuer is not None
        self.issuer = settings.oidc_issuer
        self.internal = settings.oidc_internal_issuer or settings.oidc_issuer
        self.client_id = settings.oidc_client_id
        self.redirect_uri = f"{settings.public_base_url}/auth/callback"
        self.post_logout_uri = f"{settings.public_base_url}/"
        self._jwks_url = settings.oidc_jwks_url
        self._http = http
        self._discovery: dict[str, Any] | None = None
        self._verifier: JwksTokenVerifier | None = None
        self._lock = asyncio.Lock()

    def _internal(self, url: str) -> str:
        """The provider's URL as the portal reaches it (the browser's issuer swapped for the
        internal one when they differ)."""
        if self.internal != self.issuer and url.startswith(self.issuer):
            return self.internal + url[len(self.issuer) :]
        return url

    async def discovery(self) -> dict[str, Any]:
        if self._discovery is None:
            async with self._lock:
                if self._discovery is None:
                    url = f"{self.internal}/.well-known/openid-configuration"
                    try:
                        answer = await self._http.get(url)
                        answer.raise_for_status()
                        document = answer.json()
                        for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                            if not isinstance(document.get(key), str):
                                raise ValueError(f"no {key}")
                    except (httpx.HTTPError, ValueError) as exc:
                        raise IdentityProviderUnavailable(
                            f"discovery document {url}: {exc.__class__.__name__}"
                        ) from exc
                    self._discovery = document
        return self._discovery

    async def verifier(self) -> JwksTokenVerifier:
        if self._verifier is None:
            document = await self.discovery()
            self._verifier = JwksTokenVerifier(
                self.issuer,
                self.client_id,
                self._jwks_url or self._internal(str(document["jwks_uri"])),
                client=self._http,
            )
        return self._verifier

    async def authorization_url(
        self, *, state: str, nonce: str, verifier: str, locale: str, register: bool = False
    ) -> str:
        endpoint = str((await self.discovery())["authorization_endpoint"])
        if register:
            # Keycloak's registration page takes the same parameters as its login page.
            endpoint = endpoint.rsplit("/", 1)[0] + "/registrations"
        query = {
            "client_id": self.client_id,
            "response_type": "code",
            "scope": "openid profile email",
            "redirect_uri": self.redirect_uri,
            "state": state,
            "nonce": nonce,
            "code_challenge": pkce_challenge(verifier),
            "code_challenge_method": "S256",
            "ui_locales": locale,
        }
        return f"{endpoint}?{urlencode(query)}"

    async def _token_request(self, form: dict[str, str]) -> dict[str, Any]:
        endpoint = self._internal(str((await self.discovery())["token_endpoint"]))
        try:
            answer = await self._http.post(endpoint, data={**form, "client_id": self.client_id})
        except httpx.HTTPError as exc:
            raise IdentityProviderUnavailable(f"token endpoint: {exc.__class__.__name__}") from exc
        try:
            body = answer.json()
        except ValueError:
            body = {}
        if answer.status_code != 200 or not isinstance(body, dict):
            error = body.get("error") if isinstance(body, dict) else None
            raise LoginError("exchange", f"HTTP {answer.status_code} {error or ''}".strip())
        return body

    async def exchange_code(self, code: str, verifier: str) -> dict[str, Any]:
        return await self._token_request(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.redirect_uri,
                "code_verifier": verifier,
            }
        )

    async def refresh(self, refresh_token: str) -> dict[str, Any]:
        return await self._token_request(
            {"grant_type": "refresh_token", "refresh_token": refresh_token}
        )

    async def id_claims(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The ID token's claims once its signature (JWKS), issuer, audience (this client),
        expiry and nonce are checked; LoginError otherwise."""
        verifier = await self.verifier()
        try:
            claims = await verifier.claims(id_token)
        except ProblemError as exc:
            raise LoginError("id_token", str(exc.detail)) from exc
        if not isinstance(claims.get("nonce"), str) or not hmac.compare_digest(
            claims["nonce"], nonce
        ):
            raise LoginError("id_token", "the nonce does not match the login's")
        azp = claims.get("azp")
        if azp is not None and azp != self.client_id:
            raise LoginError("id_token", "the token was issued to another client")
        return claims

    async def end_session_url(self, id_token: str | None) -> str | None:
        try:
            endpoint = (await self.discovery()).get("end_session_endpoint")
        except IdentityProviderUnavailable:
            return None
        if not isinstance(endpoint, str):
            return None
        query = {"client_id": self.client_id, "post_logout_redirect_uri": self.post_logout_uri}
        if id_token:
            query["id_token_hint"] = id_token
        return f"{endpoint}?{urlencode(query)}"


# login flow cookie -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LoginFlow:
    state: str
    nonce: str
    verifier: str = field(repr=False)
    next: str
    started: float

    @classmethod
    def start(cls, next_path: str) -> LoginFlow:
        return cls(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            verifier=new_pkce_verifier(),
            next=safe_next(next_path),
            started=time.time(),
        )

    def seal(self, keys: Keys) -> str:
        data = {"s": self.state, "n": self.nonce, "v": self.verifier, "x": self.next}
        data["t"] = self.started  # type: ignore[assignment]
        return keys.encrypt("login-flow", json.dumps(data).encode())

    @classmethod
    def open(cls, keys: Keys, sealed: str | None, now: float | None = None) -> LoginFlow | None:
        """The flow in the cookie, None when absent, altered or older than its lifetime."""
        if not sealed:
            return None
        plain = keys.decrypt("login-flow", sealed)
        if plain is None:
            return None
        try:
            data = json.loads(plain)
            flow = cls(
                state=str(data["s"]),
                nonce=str(data["n"]),
                verifier=str(data["v"]),
                next=safe_next(str(data["x"])),
                started=float(data["t"]),
            )
        except (ValueError, KeyError, TypeError):
            return None
        if (now or time.time()) - flow.started > LOGIN_FLOW_TTL_S:
            return None
        return flow


# sessions --------------------------------------------------------------------------------------


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _display_name(claims: dict[str, Any]) -> str:
    for candidate in (
        claims.get("name"),
        " ".join(str(claims[k]) for k in ("given_name", "family_name") if claims.get(k)),
        claims.get("preferred_username"),
        claims.get("email"),
    ):
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()[:255]
    return str(claims.get("sub", ""))[:255]


def _roles(claims: dict[str, Any]) -> list[str]:
    raw = claims.get("roles", [])
    values = raw if isinstance(raw, list) else [raw]
    return sorted({str(r) for r in values if r})


class SessionManager:
    """Opens, loads (refreshing the access token), and ends web sessions."""

    def __init__(
        self,
        settings: PortalSettings,
        db: Database,
        oidc: OidcClient | None,
        *,
        clock: Any = _utcnow,
    ) -> None:
        self.settings = settings
        self.db = db
        self.oidc = oidc
        self.keys = Keys(settings.session_secret.get_secret_value())
        self.cookies = CookieNames.for_settings(settings)
        self.secure = settings.environment == "prod"
        self.idle = timedelta(seconds=settings.session_idle_timeout_s)
        self.lifetime = timedelta(seconds=settings.session_absolute_lifetime_s)
        self.clock = clock
        # One lock per session being refreshed, gone once no request holds it.
        self._refreshing: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        self._http: httpx.AsyncClient | None = None

    @classmethod
    def for_settings(cls, settings: PortalSettings) -> SessionManager:
        """The app's manager: its database, and the provider when ``oidc_issuer`` is set."""
        http = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.upstream_timeout_s, connect=2.0),
            follow_redirects=False,
        )
        oidc = OidcClient(settings, http) if settings.oidc_issuer else None
        manager = cls(settings, Database(settings.database_url), oidc)
        manager._http = http
        return manager

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
        await self.db.aclose()

    def session_cookie(self, raw_id: str) -> str:
        return set_cookie_header(
            self.cookies.session,
            raw_id,
            max_age=int(self.lifetime.total_seconds()),
            secure=self.secure,
        )

    def _seal(self, id_hash: str, tokens: TokenSet) -> str:
        return self.keys.encrypt("session-tokens", tokens.sealed(), id_hash.encode())

    def _unseal(self, row: WebSession) -> dict[str, Any] | None:
        plain = self.keys.decrypt("session-tokens", row.tokens, row.id_hash.encode())
        if plain is None:
            return None
        try:
            data = json.loads(plain)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    async def open(self, tokens: TokenSet, claims: dict[str, Any]) -> str:
        """A new session for the verified ``claims``; returns the raw id for the cookie."""
        now = self.clock()
        await repository.prune_sessions(self.db, now, now - self.idle)
        oldest = await repository.oldest_session_created(self.db)
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=UTC)
        personal_data_oldest().labels("web_sessions").set(
            max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
        )
        raw = secrets.token_urlsafe(32)
        id_hash = hash_session_id(raw)
        email = claims.get("email")
        await repository.insert_session(
            self.db,
            WebSession(
                id_hash=id_hash,
                subject=str(claims["sub"]),
                name=_display_name(claims),
                email=email if isinstance(email, str) else None,
                email_verified=claims.get("email_verified") is True,
                roles=_roles(claims),
                tokens=self._seal(id_hash, tokens),
                access_expires_at=tokens.access_expires_at,
                refresh_expires_at=tokens.refresh_expires_at,
                csrf_token=new_csrf_token(),
                created_at=now,
                last_seen_at=now,
                expires_at=now + self.lifetime,
            ),
        )
        return raw

    async def end(self, id_hash: str) -> None:
        await repository.delete_session(self.db, id_hash)

    async def of_subject(self, subject: str) -> list[WebSession]:
        """One person's web sessions (for their data export: when, never a token)."""
        return await repository.sessions_of(self.db, subject)

    async def end_all(self, subject: str) -> int:
        """End every web session of one person (their account was erased); how many ended."""
        return await repository.delete_sessions_of(self.db, subject)

    def _alive(self, row: WebSession, now: datetime) -> bool:
        return row.expires_at > now and row.last_seen_at + self.idle > now

    async def load(self, raw_id: str) -> tuple[WebSession, SignedIn, str | None] | None:
        """The session of the cookie ``raw_id`` with a fresh access token, or None (unknown,
        expired, or its token could not be refreshed: the row is then deleted)."""
        if not raw_id or len(raw_id) > 100:
            return None
        id_hash = hash_session_id(raw_id)
        row = await repository.get_session(self.db, id_hash)
        now = self.clock()
        if row is None:
            return None
        if not self._alive(row, now):
            await self.end(id_hash)
            return None
        tokens = self._unseal(row)
        if tokens is None:
            log.warning("a session's tokens do not decrypt (secret changed?); ending it")
            await self.end(id_hash)
            return None
        if row.access_expires_at - timedelta(seconds=REFRESH_MARGIN_S) <= now:
            refreshed = await self._refresh(id_hash)
            if refreshed is None:
                return None
            row, tokens = refreshed
        elif now - row.last_seen_at >= timedelta(seconds=TOUCH_EVERY_S):
            await repository.touch_session(self.db, id_hash, now)
        user = SignedIn(
            sub=row.subject,
            name=row.name,
            email=row.email,
            email_verified=row.email_verified,
            roles=frozenset(row.roles),
            access_token=str(tokens["access"]),
            csrf_token=row.csrf_token,
        )
        id_token = tokens.get("id")
        return row, user, id_token if isinstance(id_token, str) else None

    async def _refresh(self, id_hash: str) -> tuple[WebSession, dict[str, Any]] | None:
        # The realm revokes a refresh token once used: one refresh per session at a time here,
        # and a request that waited reads the row the first one wrote.
        lock = self._refreshing.get(id_hash)
        if lock is None:
            lock = self._refreshing[id_hash] = asyncio.Lock()
        async with lock:
            row = await repository.get_session(self.db, id_hash)
            now = self.clock()
            if row is None or not self._alive(row, now):
                return None
            tokens = self._unseal(row)
            if tokens is None:
                await self.end(id_hash)
                return None
            if row.access_expires_at - timedelta(seconds=REFRESH_MARGIN_S) > now:
                return row, tokens  # refreshed while this request waited
            refresh = tokens.get("refresh")
            if self.oidc is None or not isinstance(refresh, str) or not refresh:
                await self.end(id_hash)
                return None
            try:
                fresh = TokenSet.from_response(await self.oidc.refresh(refresh), now)
            except (LoginError, IdentityProviderUnavailable) as exc:
                log.info("a session ends: its token could not be refreshed (%s)", exc)
                await self.end(id_hash)
                return None
            if fresh.id_token is None and isinstance(tokens.get("id"), str):
                fresh = TokenSet(
                    fresh.access_token,
                    fresh.refresh_token,
                    tokens["id"],
                    fresh.access_expires_at,
                    fresh.refresh_expires_at,
                )
            sealed = self._seal(id_hash, fresh)
            await repository.update_tokens(
                self.db,
                id_hash,
                sealed,
                fresh.access_expires_at,
                fresh.refresh_expires_at,
                now,
            )
            row.tokens = sealed
            row.access_expires_at = fresh.access_expires_at
            row.refresh_expires_at = fresh.refresh_expires_at
            row.last_seen_at = now
            return row, json.loads(fresh.sealed())


# middleware -------------------------------------------------------------------------------------


class WebSessionMiddleware:
    """Pure ASGI: loads the session named by the cookie into ``request.state.web`` (a
    :class:`WebContext`), sets the database for :mod:`portal.ratelimit`, and writes the cookies
    the request changed (a new visitor CSRF cookie, a session ended or opened)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        manager: SessionManager = scope["app"].state.sessions
        repository.CURRENT.set(manager.db)
        path: str = scope.get("path", "")
        web = WebContext(keys=manager.keys)
        scope.setdefault("state", {})["web"] = web
        if path.startswith(UNSESSIONED_PREFIXES):
            await self.app(scope, receive, send)
            return
        cookies = read_cookies(scope)
        web.guest_csrf = guest_csrf_from_cookie(manager.keys, cookies.get(manager.cookies.csrf))
        raw = cookies.get(manager.cookies.session)
        if raw:
            loaded = await manager.load(raw)
            if loaded is None:
                web.set_cookies.append(
                    clear_cookie_header(manager.cookies.session, secure=manager.secure)
                )
            else:
                row, web.user, web.id_token = loaded
                web.session_id_hash = row.id_hash

        async def _send(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                for header in web.set_cookies:
                    out.append("Set-Cookie", header)
                if web.new_guest_csrf and web.guest_csrf is not None and web.user is None:
                    out.append(
                        "Set-Cookie",
                        set_cookie_header(
                            manager.cookies.csrf,
                            guest_csrf_cookie(manager.keys, web.guest_csrf),
                            max_age=None,
                            secure=manager.secure,
                        ),
                    )
                if web.user is not None and "cache-control" not in out:
                    # A signed-in page is for one person: no shared or back-button cache.
                    out["Cache-Control"] = "private, no-store"
            await send(message)

        await self.app(scope, receive, _send)


def web_context(scope_state: Any) -> WebContext | None:
    """``request.state.web`` when the middleware ran (not for a 500 page raised outside it)."""
    return getattr(scope_state, "web", None)
