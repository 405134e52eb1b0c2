"""Getting real tokens from a test Keycloak, and administering it, over plain HTTP (httpx).

- :func:`client_credentials_token`: a landlord integration's or the admin CLI's token;
- :func:`login_with_pkce`: a person's token by the authorization-code flow with PKCE (S256),
  driven like a browser without JavaScript: GET the authorization URL, read Keycloak's login
  form, POST the credentials, take the code from the redirect and exchange it;
- :class:`KeycloakAdmin`: the few admin REST calls the tests need (clients, realm keys);
- :class:`TestIdentities`: landlords, artisans, officers and admins made on demand, with
  tokens from real grants (the ``identities`` fixture of :mod:`fabkit.testing`).

The service tests use these through the ``keycloak`` fixture of :mod:`fabkit.testing`.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx

PORTAL_CLIENT = "fabrique-portal"
#: Any port is accepted on loopback (RFC 8252); nothing needs to listen there.
PORTAL_REDIRECT = "http://127.0.0.1:8765/auth/callback"
_FORM = re.compile(r"<form\b[^>]*\bid=\"kc-form-login\"[^>]*>", re.IGNORECASE | re.DOTALL)
_ACTION = re.compile(r"\baction=\"([^\"]+)\"", re.IGNORECASE)
_REVIEW_FORM = re.compile(
    r"<form\b[^>]*\bid=\"kc-(?:idp-review-profile|update-profile|register)-form\"[^>]*>",
    re.IGNORECASE | re.DOTALL,
)
_INPUT = re.compile(
    r"<input\b[^>]*?\bname=\"([^\"]+)\"[^>]*?\bvalue=\"([^\"]*)\"", re.IGNORECASE | re.DOTALL
)
_ERROR = re.compile(
    r"<span[^>]*id=\"input-error[^\"]*\"[^>]*>(.*?)</span>|"
    r"<div[^>]*class=\"[^\"]*alert-error[^\"]*\"[^>]*>(.*?)</div>",
    re.IGNORECASE | re.DOTALL,
)


class LoginFailed(AssertionError):
    """The provider did not hand out a token (wrong password, refused client...)."""


@dataclass(frozen=True)
class Pkce:
    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> Pkce:
        verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        challenge = base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")
        return cls(verifier, challenge)


def _token_endpoint(issuer: str) -> str:
    return f"{issuer.rstrip('/')}/protocol/openid-connect/token"


async def client_credentials_token(
    issuer: str,
    client_id: str,
    client_secret: str,
    *,
    scope: str | None = None,
    client: httpx.AsyncClient | None = None,
) -> dict[str, Any]:
    """The token response (``access_token``, ``expires_in``...) of the client credentials
    grant for a confidential client."""
    data = {"grant_type": "client_credentials"}
    if scope:
        data["scope"] = scope
    async with _maybe_client(client) as http:
        answer = await http.post(
            _token_endpoint(issuer), data=data, auth=(client_id, client_secret)
        )
    if answer.status_code != 200:
        raise LoginFailed(f"client credentials of {client_id}: {answer.status_code} {answer.text}")
    return dict(answer.json())


async def login_with_pkce(
    issuer: str,
    username: str,
    password: str,
    *,
    client_id: str = PORTAL_CLIENT,
    redirect_uri: str = PORTAL_REDIRECT,
    scope: str = "openid",
    idp_hint: str | None = None,
    client: httpx.AsyncClient | None = None,
) -> dict[str, Any]:
    """Log a person in by the authorization-code flow with PKCE, as a browser would.

    With ``idp_hint`` (e.g. ``"proconnect"``) the realm sends the browser to that brokered
    provider: the credentials are those of the provider's login form, and a first-login
    review form, if the realm shows one, is sent back as pre-filled.
    """
    pkce = Pkce.new()
    state = secrets.token_urlsafe(16)
    params_out = {
        "client_id": client_id,
        "response_type": "code",
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": state,
        "nonce": secrets.token_urlsafe(16),
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
    }
    if idp_hint:
        params_out["kc_idp_hint"] = idp_hint
    query = urlencode(params_out)
    auth_url = f"{issuer.rstrip('/')}/protocol/openid-connect/auth?{query}"
    # A jar of its own: the login form's session cookies belong to this login only.
    async with httpx.AsyncClient(
        timeout=client.timeout if client else 30.0, follow_redirects=False
    ) as browser:
        page = await _follow(browser, await browser.get(auth_url), redirect_uri)
        if page.status_code != 200:
            raise LoginFailed(f"authorization URL answered {page.status_code}: {page.text[:500]}")
        action = _login_form_action(page.text, str(page.url))
        answer = await _follow(
            browser,
            await browser.post(
                action, data={"username": username, "password": password, "credentialId": ""}
            ),
            redirect_uri,
        )
        for _ in range(3):  # a first broker login may ask to review the imported profile
            form = _REVIEW_FORM.search(answer.text) if answer.status_code == 200 else None
            if form is None:
                break
            fields = dict(_INPUT.findall(answer.text[form.start() :]))
            target = _ACTION.search(form.group(0))
            if target is None:
                raise LoginFailed("the profile review form has no action")
            answer = await _follow(
                browser,
                await browser.post(
                    urljoin(str(answer.url), html.unescape(target.group(1))),
                    data={k: html.unescape(v) for k, v in fields.items()},
                ),
                redirect_uri,
            )
        location = answer.headers.get("location", "")
        if answer.status_code not in (302, 303) or not location.startswith(redirect_uri):
            raise LoginFailed(
                f"login of {username} did not redirect to {redirect_uri} "
                f"(HTTP {answer.status_code}): {_page_error(answer.text)}"
            )
        params = parse_qs(urlsplit(location).query)
        if params.get("state") != [state]:
            raise LoginFailed(f"the redirect carries another state: {location}")
        if "code" not in params:
            raise LoginFailed(f"the redirect carries no code: {location}")
        token = await browser.post(
            _token_endpoint(issuer),
            data={
                "grant_type": "authorization_code",
                "client_id": client_id,
                "code": params["code"][0],
                "redirect_uri": redirect_uri,
                "code_verifier": pkce.verifier,
            },
        )
    if token.status_code != 200:
        raise LoginFailed(f"code exchange for {username}: {token.status_code} {token.text}")
    return dict(token.json())


async def _follow(
    browser: httpx.AsyncClient, answer: httpx.Response, stop_at: str, hops: int = 10
) -> httpx.Response:
    """Follow redirects as a browser would, but stop at the client's own redirect URI."""
    _as_browser_on_loopback(browser)
    for _ in range(hops):
        location = answer.headers.get("location")
        if answer.status_code not in (301, 302, 303, 307) or not location:
            return answer
        if location.startswith(stop_at):
            return answer
        answer = await browser.get(urljoin(str(answer.url), location))
        _as_browser_on_loopback(browser)
    raise LoginFailed(f"more than {hops} redirects")


def _as_browser_on_loopback(browser: httpx.AsyncClient) -> None:
    """Keycloak marks its login cookies ``Secure``; browsers still send them to
    ``http://127.0.0.1`` (a secure context), httpx does not: do as browsers do."""
    for cookie in browser.cookies.jar:
        if cookie.domain in ("127.0.0.1", "localhost", "localhost.local"):
            cookie.secure = False


def _login_form_action(page: str, base: str) -> str:
    form = _FORM.search(page)
    action = _ACTION.search(form.group(0)) if form else None
    if action is None:
        raise LoginFailed(f"no login form in the page: {_page_error(page)}")
    return urljoin(base, html.unescape(action.group(1)))


def _page_error(page: str) -> str:
    found = _ERROR.search(page)
    if found:
        text = re.sub(r"<[^>]+>", "", found.group(1) or found.group(2) or "")
        return html.unescape(text).strip()
    title = re.search(r"<title>(.*?)</title>", page, re.IGNORECASE | re.DOTALL)
    return html.unescape(title.group(1)).strip() if title else page[:300]


class _maybe_client:  # noqa: N801 - used as a context manager
    def __init__(self, client: httpx.AsyncClient | None) -> None:
        self._given = client
        self._own: httpx.AsyncClient | None = None

    async def __aenter__(self) -> httpx.AsyncClient:
        if self._given is not None:
            return self._given
        self._own = httpx.AsyncClient(timeout=30.0)
        return self._own

    async def __aexit__(self, *exc: object) -> None:
        if self._own is not None:
            await self._own.aclose()


class KeycloakAdmin:
    """Admin REST calls as the master realm's bootstrap administrator."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._username = username
        self._password = password
        self._client = httpx.AsyncClient(timeout=60.0)
        self._token: str | None = None

    async def _headers(self) -> dict[str, str]:
        if self._token is None:
            answer = await self._client.post(
                f"{self.base_url}/realms/master/protocol/openid-connect/token",
                data={
                    "grant_type": "password",
                    "client_id": "admin-cli",
                    "username": self._username,
                    "password": self._password,
                },
            )
            answer.raise_for_status()
            self._token = str(answer.json()["access_token"])
        return {"Authorization": f"Bearer {self._token}"}

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """``path`` below ``/admin/realms``; retried once with a new admin token on 401."""
        url = f"{self.base_url}/admin/realms{path}"
        answer = await self._client.request(method, url, headers=await self._headers(), **kwargs)
        if answer.status_code == 401:
            self._token = None
            answer = await self._client.request(
                method, url, headers=await self._headers(), **kwargs
            )
        if answer.status_code >= 400:
            raise AssertionError(f"{method} {url}: {answer.status_code} {answer.text}")
        return answer

    async def create_client(self, realm: str, representation: dict[str, Any]) -> str:
        """Create a client; returns its internal id."""
        answer = await self.request("POST", f"/{realm}/clients", json=representation)
        return answer.headers["location"].rsplit("/", 1)[-1]

    async def delete_client(self, realm: str, internal_id: str) -> None:
        await self.request("DELETE", f"/{realm}/clients/{internal_id}")

    async def service_account_user(self, realm: str, internal_id: str) -> dict[str, Any]:
        answer = await self.request("GET", f"/{realm}/clients/{internal_id}/service-account-user")
        return dict(answer.json())

    async def grant_realm_roles(self, realm: str, user_id: str, *roles: str) -> None:
        reps = [(await self.request("GET", f"/{realm}/roles/{role}")).json() for role in roles]
        await self.request("POST", f"/{realm}/users/{user_id}/role-mappings/realm", json=reps)

    async def realm_id(self, realm: str) -> str:
        return str((await self.request("GET", f"/{realm}")).json()["id"])

    async def keys(self, realm: str) -> list[dict[str, Any]]:
        """The realm's keys (``kid``, ``algorithm``, ``providerId``, ``priority``, ``use``)."""
        return list((await self.request("GET", f"/{realm}/keys")).json()["keys"])

    async def key_components(self, realm: str) -> list[dict[str, Any]]:
        answer = await self.request(
            "GET", f"/{realm}/components", params={"type": "org.keycloak.keys.KeyProvider"}
        )
        return list(answer.json())

    async def add_rsa_key(self, realm: str, name: str, priority: int) -> str:
        """Add a generated RS256 signing key; returns the key provider's component id."""
        answer = await self.request(
            "POST",
            f"/{realm}/components",
            json={
                "name": name,
                "providerId": "rsa-generated",
                "providerType": "org.keycloak.keys.KeyProvider",
                "parentId": await self.realm_id(realm),
                "config": {
                    "priority": [str(priority)],
                    "enabled": ["true"],
                    "active": ["true"],
                    "algorithm": ["RS256"],
                    "keySize": ["2048"],
                },
            },
        )
        return answer.headers["location"].rsplit("/", 1)[-1]

    async def add_ec_key(self, realm: str, name: str, priority: int) -> str:
        """Add a generated ES256 (P-256) signing key; returns the component id."""
        answer = await self.request(
            "POST",
            f"/{realm}/components",
            json={
                "name": name,
                "providerId": "ecdsa-generated",
                "providerType": "org.keycloak.keys.KeyProvider",
                "parentId": await self.realm_id(realm),
                "config": {
                    "priority": [str(priority)],
                    "enabled": ["true"],
                    "active": ["true"],
                    "ecdsaEllipticCurveKey": ["P-256"],
                },
            },
        )
        return answer.headers["location"].rsplit("/", 1)[-1]

    async def delete_component(self, realm: str, component_id: str) -> None:
        await self.request("DELETE", f"/{realm}/components/{component_id}")

    async def aclose(self) -> None:
        await self._client.aclose()


# --------------------------------------------------------------------------------------------
# Test identities: users and clients made on demand, tokens by real grants
# --------------------------------------------------------------------------------------------

#: Public client added to the *test* server only (never in the committed realm): the password
#: grant, so a test gets a person's token in one request.
TEST_CLIENT = "fabrique-tests"
TEST_PASSWORD = "fabrique-tests-2026"  # noqa: S105 - test server only
_REFRESH_MARGIN_S = 120.0


@dataclass
class _Identity:
    role: str
    subject: str
    client_id: str | None = None  # a confidential client (landlords): client credentials
    secret: str | None = None
    username: str | None = None  # a person: password grant on TEST_CLIENT
    token: str | None = None
    expires_at: float = 0.0


class TestIdentities:
    """Accounts of a test Keycloak made through its admin REST API, with real tokens.

    - ``token("landlord", landlord_id)``: a confidential client ``tl-<landlord_id>`` whose
      service account has the role ``landlord`` and a hard-coded ``landlord_id`` claim (as a
      landlord integration), token by the client-credentials grant;
    - ``token("artisan" | "officer" | "admin", subject)``: a user whose id is ``subject``
      (the partial import keeps the id given; a new uuid when ``subject`` is None) with a
      verified e-mail unless ``email_verified=False``, token by the password grant on the
      test-only public client ``fabrique-tests`` added at start.

    Each identity is made once per session and its token reused until two minutes before it
    expires. The clients it makes issue tokens for ``token_lifespan_s`` (an hour by default,
    so a long scenario can hold one; the committed realm's own clients keep five minutes).
    Synchronous (httpx.Client), so fixtures and tests call it without awaiting.
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        base_url: str,
        realm: str = "fabrique",
        *,
        admin_user: str = "admin",
        admin_password: str = "admin",  # noqa: S107 - the dev server's bootstrap admin
        token_lifespan_s: int = 3600,
    ) -> None:
        self.token_lifespan_s = token_lifespan_s
        self.base_url = base_url.rstrip("/")
        self.realm = realm
        self.issuer = f"{self.base_url}/realms/{realm}"
        self._admin_credentials = (admin_user, admin_password)
        self._http = httpx.Client(timeout=60.0)
        self._admin_token: str | None = None
        self._made: dict[tuple[str, str, bool], _Identity] = {}
        self._setup_done = False

    # admin REST ------------------------------------------------------------------------------
    def _admin_headers(self) -> dict[str, str]:
        if self._admin_token is None:
            user, password = self._admin_credentials
            answer = self._http.post(
                f"{self.base_url}/realms/master/protocol/openid-connect/token",
                data={
                    "grant_type": "password",
                    "client_id": "admin-cli",
                    "username": user,
                    "password": password,
                },
            )
            answer.raise_for_status()
            self._admin_token = str(answer.json()["access_token"])
        return {"Authorization": f"Bearer {self._admin_token}"}

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """An admin REST call below ``/admin/realms/<realm>``; retried once on 401."""
        url = f"{self.base_url}/admin/realms/{self.realm}{path}"
        answer = self._http.request(method, url, headers=self._admin_headers(), **kwargs)
        if answer.status_code == 401:
            self._admin_token = None
            answer = self._http.request(method, url, headers=self._admin_headers(), **kwargs)
        if answer.status_code >= 400:
            raise AssertionError(f"{method} {url}: {answer.status_code} {answer.text}")
        return answer

    def partial_import(self, **resources: list[dict[str, Any]]) -> dict[str, Any]:
        answer = self.admin(
            "POST", "/partialImport", json={"ifResourceExists": "FAIL", **resources}
        )
        return dict(answer.json())

    def _setup(self) -> None:
        if self._setup_done:
            return
        # Test server only: one hash iteration, so making and logging in a test user costs
        # milliseconds instead of a second of argon2 on a loaded machine (the realm's other
        # password rules stay).
        realm = self.admin("GET", "").json()
        policy = str(realm.get("passwordPolicy") or "")
        if "hashIterations" not in policy:
            cheap = "hashAlgorithm(pbkdf2-sha256) and hashIterations(1)"
            self.admin(
                "PUT", "", json={"passwordPolicy": f"{policy} and {cheap}" if policy else cheap}
            )
        portal = self.admin("GET", "/clients", params={"clientId": PORTAL_CLIENT}).json()[0]
        existing = self.admin("GET", "/clients", params={"clientId": TEST_CLIENT}).json()
        if not existing:
            mappers = [{k: v for k, v in m.items() if k != "id"} for m in portal["protocolMappers"]]
            self.partial_import(
                clients=[
                    {
                        "clientId": TEST_CLIENT,
                        "name": "Tests only: password grant (never in the committed realm)",
                        "enabled": True,
                        "protocol": "openid-connect",
                        "publicClient": True,
                        "standardFlowEnabled": False,
                        "directAccessGrantsEnabled": True,
                        "serviceAccountsEnabled": False,
                        "fullScopeAllowed": True,
                        "attributes": {
                            "use.refresh.tokens": "false",
                            "access.token.lifespan": str(self.token_lifespan_s),
                        },
                        "protocolMappers": mappers,
                        "defaultClientScopes": portal["defaultClientScopes"],
                        "optionalClientScopes": [],
                    }
                ]
            )
        self._setup_done = True

    # identities -----------------------------------------------------------------------------
    def _make(self, role: str, subject: str | None, email_verified: bool) -> _Identity:
        self._setup()
        if role == "landlord" or not email_verified:
            # The realm makes people verify their e-mail before any login, so the only tokens
            # without a verified e-mail are service accounts': a machine client with the
            # default role (artisan) stands for "an artisan whose e-mail is not verified".
            if subject is None:
                subject = str(uuid.uuid4())
            landlord = role == "landlord"
            client_id = f"tl-{subject}" if landlord else f"tu-{subject}"
            secret = f"test-secret-{uuid.uuid4().hex}"
            self.partial_import(
                clients=[
                    {
                        "clientId": client_id,
                        "enabled": True,
                        "protocol": "openid-connect",
                        "publicClient": False,
                        "clientAuthenticatorType": "client-secret",
                        "secret": secret,
                        "serviceAccountsEnabled": True,
                        "standardFlowEnabled": False,
                        "directAccessGrantsEnabled": False,
                        "fullScopeAllowed": True,
                        "attributes": {
                            "client_credentials.use_refresh_token": "false",
                            "access.token.lifespan": str(self.token_lifespan_s),
                        },
                        "protocolMappers": [
                            _mapper(
                                "audience fabrique-api",
                                "oidc-audience-mapper",
                                {"included.custom.audience": "fabrique-api"},
                            ),
                            _mapper(
                                "realm roles as roles",
                                "oidc-usermodel-realm-role-mapper",
                                {"claim.name": "roles", "multivalued": "true"},
                            ),
                            *(
                                [
                                    _mapper(
                                        "landlord_id (hard-coded)",
                                        "oidc-hardcoded-claim-mapper",
                                        {"claim.name": "landlord_id", "claim.value": subject},
                                    )
                                ]
                                if landlord
                                else []
                            ),
                        ],
                        "defaultClientScopes": ["basic", "profile", "email", "web-origins", "acr"],
                    }
                ],
                users=[
                    {
                        **({} if landlord else {"id": subject}),
                        "username": f"service-account-{client_id}",
                        "enabled": True,
                        "serviceAccountClientId": client_id,
                        "realmRoles": ["default-roles-fabrique", role],
                    }
                ],
            )
            return _Identity(role, subject, client_id=client_id, secret=secret)
        if subject is None:
            subject = str(uuid.uuid4())
        username = f"t-{role}-{subject}".lower()[:250]
        self.partial_import(
            users=[
                {
                    "id": subject,
                    "username": username,
                    "enabled": True,
                    "email": f"{username}@tests.fabrique.example",
                    "emailVerified": email_verified,
                    "firstName": role.capitalize(),
                    "lastName": subject[:30],
                    "credentials": [
                        {"type": "password", "value": TEST_PASSWORD, "temporary": False}
                    ],
                    "realmRoles": ["default-roles-fabrique", role],
                }
            ]
        )
        return _Identity(role, subject, username=username)

    def identity(
        self, role: str, subject: str | None = None, *, email_verified: bool = True
    ) -> _Identity:
        role = str(role)
        key = (role, subject or "", email_verified)
        if subject is None or key not in self._made:
            made = self._make(role, subject, email_verified)
            self._made[(role, made.subject, email_verified)] = made
            return made
        return self._made[key]

    def _grant(self, identity: _Identity) -> None:
        endpoint = _token_endpoint(self.issuer)
        if identity.client_id is not None:
            assert identity.secret is not None
            answer = self._http.post(
                endpoint,
                data={"grant_type": "client_credentials"},
                auth=(identity.client_id, identity.secret),
            )
        else:
            answer = self._http.post(
                endpoint,
                data={
                    "grant_type": "password",
                    "client_id": TEST_CLIENT,
                    "username": identity.username,
                    "password": TEST_PASSWORD,
                    "scope": "openid",
                },
            )
        if answer.status_code != 200:
            raise LoginFailed(
                f"token of {identity.role} {identity.subject}: {answer.status_code} {answer.text}"
            )
        body = answer.json()
        identity.token = str(body["access_token"])
        identity.expires_at = time.time() + float(body.get("expires_in", 60))

    def token(self, role: str, subject: str | None = None, *, email_verified: bool = True) -> str:
        """A valid access token for ``role`` acting as ``subject`` (see the class docstring)."""
        made = self.identity(role, subject, email_verified=email_verified)
        if made.token is None or made.expires_at - time.time() < _REFRESH_MARGIN_S:
            self._grant(made)
        assert made.token is not None
        return made.token

    def subject_and_token(
        self, role: str, subject: str | None = None, *, email_verified: bool = True
    ) -> tuple[str, str]:
        made = self.identity(role, subject, email_verified=email_verified)
        return made.subject, self.token(role, made.subject, email_verified=email_verified)

    def headers(
        self, role: str, subject: str | None = None, *, email_verified: bool = True
    ) -> dict[str, str]:
        token = self.token(role, subject, email_verified=email_verified)
        return {"Authorization": f"Bearer {token}"}

    def short_lived_token(
        self, role: str = "admin", lifespan_s: int = 1, *, audience: str = "fabrique-api"
    ) -> str:
        """A token of a new client whose tokens live ``lifespan_s`` seconds (wait past its
        expiry plus the verifier's leeway to hold a genuinely expired token) and carry
        ``audience`` (another one makes a token "not meant for this API")."""
        self._setup()
        client_id = f"tx-{uuid.uuid4().hex[:12]}"
        secret = f"test-secret-{uuid.uuid4().hex}"
        self.partial_import(
            clients=[
                {
                    "clientId": client_id,
                    "enabled": True,
                    "publicClient": False,
                    "secret": secret,
                    "serviceAccountsEnabled": True,
                    "standardFlowEnabled": False,
                    "attributes": {"access.token.lifespan": str(lifespan_s)},
                    "protocolMappers": [
                        _mapper(
                            f"audience {audience}",
                            "oidc-audience-mapper",
                            {"included.custom.audience": audience},
                        ),
                        _mapper(
                            "realm roles as roles",
                            "oidc-usermodel-realm-role-mapper",
                            {"claim.name": "roles", "multivalued": "true"},
                        ),
                    ],
                    "defaultClientScopes": ["basic", "profile", "email", "web-origins", "acr"],
                }
            ],
            users=[
                {
                    "username": f"service-account-{client_id}",
                    "enabled": True,
                    "serviceAccountClientId": client_id,
                    "realmRoles": ["default-roles-fabrique", role],
                }
            ],
        )
        made = _Identity(role, client_id, client_id=client_id, secret=secret)
        self._grant(made)
        assert made.token is not None
        return made.token

    def master_realm_token(self) -> str:
        """An access token of the ``master`` realm (another issuer than the services trust)."""
        self._admin_headers()
        assert self._admin_token is not None
        return self._admin_token

    def close(self) -> None:
        self._http.close()


def _mapper(name: str, kind: str, config: dict[str, str]) -> dict[str, Any]:
    return {
        "name": name,
        "protocol": "openid-connect",
        "protocolMapper": kind,
        "consentRequired": False,
        "config": {"access.token.claim": "true", "introspection.token.claim": "true", **config},
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m fabkit.oidc_testing login <issuer> <username> [password]``: log in as a
    person by the authorization-code flow with PKCE (as the portal does) and print the access
    token, for trying the API with curl. The password defaults to $FABRIQUE_PASSWORD."""
    import argparse
    import asyncio
    import os
    import sys

    parser = argparse.ArgumentParser(prog="python -m fabkit.oidc_testing")
    sub = parser.add_subparsers(dest="command", required=True)
    login = sub.add_parser("login", help="print a person's access token (code flow + PKCE)")
    login.add_argument("issuer", help="e.g. http://127.0.0.1:8080/realms/fabrique")
    login.add_argument("username")
    login.add_argument("password", nargs="?", default=os.environ.get("FABRIQUE_PASSWORD"))
    args = parser.parse_args(argv)
    if not args.password:
        print("login: give the password (argument or FABRIQUE_PASSWORD).", file=sys.stderr)
        return 2
    try:
        answer = asyncio.run(login_with_pkce(args.issuer, args.username, args.password))
    except (LoginFailed, httpx.HTTPError) as exc:
        print(f"login: {exc}", file=sys.stderr)
        return 1
    print(answer["access_token"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
