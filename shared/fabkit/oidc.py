"""OAuth 2 resource server: verify the identity provider's signed access tokens against its JWKS.

Fabrique's services hold no signing secret: Keycloak signs access tokens (RS256 or ES256) and
publishes its public keys at the realm's JWKS endpoint. :class:`JwksTokenVerifier` keeps those
keys in memory, fetches them again when a token names a key it does not know (at most once per
``min_refresh_interval`` seconds, so forged ``kid`` values cannot make it hammer the provider)
and when its copy is older than ``cache_ttl`` (so a key the provider dropped stops verifying).
A rotation therefore needs no restart. When the provider cannot be reached, the cached keys
keep verifying; a token that only a key not in the cache could verify gets a 503.

Checks, each with its own 401 message: a well-formed JWT, an asymmetric algorithm (never
``none`` or a shared-secret HS*), the issuer, a known key, the signature, the expiry (and
``nbf``/``iat``), the audience. The claims then become a :class:`fabkit.auth.Principal`:
the highest of the Fabrique roles in the flat ``roles`` claim (admin > officer > landlord >
artisan); the subject is the ``landlord_id`` claim for landlords and ``sub`` otherwise.

Tokens are never logged; log lines name the key id and the issuer only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
from jwt import PyJWK

from fabkit.auth import Principal, Role
from fabkit.errors import ProblemError

log = logging.getLogger(__name__)

#: Algorithms the provider signs with; anything else (``none``, HS256...) is refused.
DEFAULT_ALGORITHMS: tuple[str, ...] = ("RS256", "ES256")
#: Highest first: a token carrying several Fabrique roles acts with the first one found.
ROLE_PRIORITY: tuple[Role, ...] = (Role.ADMIN, Role.OFFICER, Role.LANDLORD, Role.ARTISAN)
LANDLORD_CLAIM = "landlord_id"
ROLES_CLAIM = "roles"


class IdentityProviderUnavailable(Exception):
    """The JWKS could not be fetched (network error, timeout, non-200, not a JWKS)."""


def _unauthorized(detail: str) -> ProblemError:
    return ProblemError(
        401,
        detail,
        headers={"WWW-Authenticate": 'Bearer realm="fabrique", error="invalid_token"'},
    )


def _when(timestamp: Any) -> str:
    try:
        return datetime.fromtimestamp(float(timestamp), UTC).isoformat(timespec="seconds")
    except (TypeError, ValueError, OverflowError, OSError):
        return str(timestamp)


def principal_from_claims(claims: Mapping[str, Any]) -> Principal:
    """Map verified claims to a Principal (403 when no Fabrique role or no landlord id)."""
    raw = claims.get(ROLES_CLAIM, [])
    granted = {str(r) for r in raw} if isinstance(raw, list) else {str(raw)}
    role = next((r for r in ROLE_PRIORITY if r.value in granted), None)
    verified = claims.get("email_verified") is True
    email = claims.get("email") if verified and isinstance(claims.get("email"), str) else None
    if role is None:
        names = ", ".join(r.value for r in ROLE_PRIORITY)
        raise ProblemError(
            403,
            f"The token carries none of the Fabrique roles ({names}) in its '{ROLES_CLAIM}' "
            "claim; ask an administrator to grant your account a role.",
        )
    if role is Role.LANDLORD:
        landlord = claims.get(LANDLORD_CLAIM)
        if not isinstance(landlord, str) or not landlord:
            raise ProblemError(
                403,
                f"The token has the landlord role but no '{LANDLORD_CLAIM}' claim, so it "
                "cannot say which landlord it acts for; the account or client needs a "
                "landlord_id (see docs/identity.md).",
            )
        return Principal(subject=landlord, role=role, email_verified=verified, email=email)
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise _unauthorized("The token has no subject ('sub' claim).")
    return Principal(subject=subject, role=role, email_verified=verified, email=email)


class JwksTokenVerifier:
    """Verifies access tokens of one issuer for one audience (see the module docstring).

    ``jwks_url`` defaults to the ``jwks_uri`` of the issuer's discovery document
    (``<issuer>/.well-known/openid-configuration``), read on first use. Pass ``client`` to
    share an ``httpx.AsyncClient``; otherwise the verifier owns one (close with
    :meth:`aclose`).
    """

    def __init__(
        self,
        issuer: str,
        audience: str | Sequence[str],
        jwks_url: str | None = None,
        *,
        algorithms: Iterable[str] = DEFAULT_ALGORITHMS,
        leeway: float = 30.0,
        cache_ttl: float = 300.0,
        min_refresh_interval: float = 10.0,
        timeout: float = 5.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.audience = [audience] if isinstance(audience, str) else list(audience)
        self.algorithms = tuple(algorithms)
        if any(a.lower() == "none" or a.upper().startswith("HS") for a in self.algorithms):
            raise ValueError("only asymmetric algorithms may verify the provider's tokens")
        self.leeway = leeway
        self.cache_ttl = cache_ttl
        self.min_refresh_interval = min_refresh_interval
        self._jwks_url = jwks_url
        self._client = client or httpx.AsyncClient(timeout=timeout)
        self._owns_client = client is None
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: float | None = None  # monotonic time of the last successful fetch
        self._attempted_at: float | None = None  # monotonic time of the last attempt
        self._last_error: str | None = None
        self._lock = asyncio.Lock()

    # keys -----------------------------------------------------------------------------------
    @property
    def key_ids(self) -> list[str]:
        return sorted(self._keys)

    async def jwks_url(self) -> str:
        if self._jwks_url is None:
            url = f"{self.issuer}/.well-known/openid-configuration"
            try:
                answer = await self._client.get(url)
                answer.raise_for_status()
                self._jwks_url = str(answer.json()["jwks_uri"])
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                raise IdentityProviderUnavailable(
                    f"discovery document {url}: {exc.__class__.__name__}"
                ) from exc
        return self._jwks_url

    async def refresh(self) -> None:
        """Fetch the JWKS now; replaces the cached keys (raises IdentityProviderUnavailable)."""
        self._attempted_at = time.monotonic()
        try:
            url = await self.jwks_url()
            answer = await self._client.get(url)
            if answer.status_code != 200:
                raise IdentityProviderUnavailable(f"{url} answered HTTP {answer.status_code}")
            document = answer.json()
            entries = document["keys"]
        except IdentityProviderUnavailable as exc:
            self._last_error = str(exc)
            raise
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            self._last_error = f"JWKS: {exc.__class__.__name__}: {exc}"
            raise IdentityProviderUnavailable(self._last_error) from exc
        keys: dict[str, PyJWK] = {}
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
                continue
            kid = entry.get("kid")
            if not kid or entry.get("alg") not in (*self.algorithms, None):
                continue
            try:
                keys[str(kid)] = PyJWK(entry)
            except jwt.PyJWTError as exc:
                log.warning("ignoring JWKS key %s of %s: %s", kid, self.issuer, exc)
        added = sorted(set(keys) - set(self._keys))
        dropped = sorted(set(self._keys) - set(keys))
        if added or dropped:
            log.info(
                "JWKS of %s: %d signing keys (added %s, dropped %s)",
                self.issuer,
                len(keys),
                added or "none",
                dropped or "none",
            )
        self._keys = keys
        self._fetched_at = time.monotonic()
        self._last_error = None

    def _may_refetch(self, now: float) -> bool:
        return self._attempted_at is None or now - self._attempted_at >= self.min_refresh_interval

    async def _key(self, kid: str) -> PyJWK:
        now = time.monotonic()
        stale = self._fetched_at is None or now - self._fetched_at >= self.cache_ttl
        if (stale or kid not in self._keys) and self._may_refetch(now):
            async with self._lock:
                # Another request may have refreshed while this one waited for the lock.
                now = time.monotonic()
                stale = self._fetched_at is None or now - self._fetched_at >= self.cache_ttl
                if (stale or kid not in self._keys) and self._may_refetch(now):
                    try:
                        await self.refresh()
                    except IdentityProviderUnavailable as exc:
                        # Keep the keys we have: they still verify the tokens they signed.
                        log.warning("cannot refresh the JWKS of %s: %s", self.issuer, exc)
        key = self._keys.get(kid)
        if key is not None:
            return key
        if self._last_error is not None:
            raise ProblemError(
                503,
                "The identity provider cannot be reached to fetch the key that signed this "
                f"token ({self._last_error}); no cached key can verify it. Try again in a "
                "few seconds.",
                headers={"Retry-After": str(max(1, round(self.min_refresh_interval)))},
            )
        raise _unauthorized(
            f"The token is signed with a key (kid {kid!r}) that the identity provider does "
            f"not publish at {self._jwks_url or 'its JWKS'}: a forged token, or one signed "
            "with a key retired since. Get a new token."
        )

    # verification ---------------------------------------------------------------------------
    async def claims(self, token: str) -> dict[str, Any]:
        """The verified claims of ``token``, or a 401/503 :class:`ProblemError`."""
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise _unauthorized(
                "The bearer token is not a well-formed JWT (three base64url parts: header, "
                "claims, signature)."
            ) from exc
        alg = str(header.get("alg", ""))
        if alg.lower() == "none":
            raise _unauthorized(
                "The token is unsigned (alg none); only tokens signed by the identity "
                f"provider ({', '.join(self.algorithms)}) are accepted."
            )
        if alg not in self.algorithms:
            raise _unauthorized(
                f"The token is signed with {alg or 'no algorithm'}; only the identity "
                f"provider's asymmetric signatures ({', '.join(self.algorithms)}) are accepted"
                + (", never a shared secret." if alg.upper().startswith("HS") else ".")
            )
        issuer = unverified.get("iss")
        if not isinstance(issuer, str) or issuer.rstrip("/") != self.issuer:
            raise _unauthorized(
                f"The token was issued by another issuer ({issuer!r}); this API accepts "
                f"tokens of {self.issuer} only."
            )
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _unauthorized("The token's header names no signing key (kid).")
        key = await self._key(kid)
        if key.algorithm_name and key.algorithm_name != alg:
            raise _unauthorized(
                f"The token says {alg} but its key {kid!r} is a {key.algorithm_name} key."
            )
        try:
            return jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=self.audience,
                issuer=unverified["iss"],
                leeway=self.leeway,
                options={"require": ["exp", "iat", "iss", "sub"], "verify_aud": True},
            )
        except jwt.ExpiredSignatureError as exc:
            raise _unauthorized(
                f"The token expired at {_when(unverified.get('exp'))}; get a new one."
            ) from exc
        except jwt.InvalidAudienceError as exc:
            raise _unauthorized(
                f"The token is not meant for this API: its audience is "
                f"{unverified.get('aud')!r}, not {' or '.join(self.audience)}."
            ) from exc
        except jwt.InvalidSignatureError as exc:
            raise _unauthorized(
                f"The token's signature does not verify with key {kid!r}: it was altered "
                "after it was signed."
            ) from exc
        except jwt.ImmatureSignatureError as exc:
            raise _unauthorized(
                "The token is not valid yet (nbf or iat in the future); check the clocks."
            ) from exc
        except jwt.MissingRequiredClaimError as exc:
            if exc.claim == "aud":
                raise _unauthorized(
                    "The token is not meant for this API: it names no audience, and this API "
                    f"needs {' or '.join(self.audience)}."
                ) from exc
            raise _unauthorized(f"The token lacks the '{exc.claim}' claim.") from exc
        except jwt.PyJWTError as exc:
            raise _unauthorized(f"The token is invalid: {exc}.") from exc

    async def verify(self, token: str) -> Principal:
        """The caller the token stands for (401/403/503 :class:`ProblemError` otherwise)."""
        return principal_from_claims(await self.claims(token))

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()


# Command lines -------------------------------------------------------------------------------

_COMMAND_HELP = (
    "print an access token of the identity provider, by the client-credentials grant of a "
    "confidential client (fabrique-cli for an admin token, landlord-<name> for a landlord)"
)


def add_token_command(subparsers: Any) -> None:
    """The services' ``token`` sub-command: a token from the provider, never minted here."""
    token = subparsers.add_parser("token", help=_COMMAND_HELP, description=_COMMAND_HELP)
    token.add_argument("--client-id", required=True, help="e.g. fabrique-cli or landlord-rivp")
    token.add_argument(
        "--client-secret",
        help="the client's secret (default: the environment variable FABRIQUE_CLIENT_SECRET)",
    )
    token.add_argument("--issuer", help="the realm's issuer URL (default: the oidc_issuer setting)")


def run_token_command(args: Any, issuer: str) -> int:
    """Run the ``token`` sub-command: print the access token, or explain on stderr and fail."""
    import os
    import sys

    secret = args.client_secret or os.environ.get("FABRIQUE_CLIENT_SECRET")
    if not secret:
        print(
            "token: give the client's secret with --client-secret or FABRIQUE_CLIENT_SECRET.",
            file=sys.stderr,
        )
        return 2
    try:
        print(client_credentials_access_token(args.issuer or issuer, args.client_id, secret))
    except IdentityProviderUnavailable as exc:
        print(f"token: {exc}", file=sys.stderr)
        return 1
    return 0


def client_credentials_access_token(
    issuer: str, client_id: str, client_secret: str, *, timeout: float = 10.0
) -> str:
    """The access token of ``client_id`` by the client-credentials grant (blocking; for
    command lines). Raises :class:`IdentityProviderUnavailable` with the provider's reason."""
    endpoint = f"{issuer.rstrip('/')}/protocol/openid-connect/token"
    try:
        answer = httpx.post(
            endpoint,
            data={"grant_type": "client_credentials"},
            auth=(client_id, client_secret),
            timeout=timeout,
        )
    except httpx.HTTPError as exc:
        raise IdentityProviderUnavailable(
            f"the identity provider at {endpoint} cannot be reached ({exc.__class__.__name__}); "
            "is Keycloak running, and is the issuer right?"
        ) from exc
    if answer.status_code != 200:
        try:
            reason = answer.json().get("error_description") or answer.json().get("error")
        except ValueError:
            reason = answer.text[:200]
        raise IdentityProviderUnavailable(
            f"the identity provider refused the client credentials of {client_id!r} "
            f"(HTTP {answer.status_code}: {reason})"
        )
    return str(answer.json()["access_token"])
