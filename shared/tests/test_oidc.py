"""fabkit.oidc against a real Keycloak (the session's ``keycloak`` fixture, realms from
``deploy/keycloak/``): tokens got by client credentials and by a real login with PKCE, every
refusal with the check that failed, key rotation without restarting the verifier, and the
provider stopped. Claim mapping alone is tested on hand-made claims.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI

from fabkit.auth import Principal, PrincipalDep, Role
from fabkit.errors import ProblemError, install_problem_handlers
from fabkit.localstack.kafka import repo_root
from fabkit.oidc import JwksTokenVerifier, principal_from_claims
from fabkit.oidc_testing import (
    KeycloakAdmin,
    LoginFailed,
    client_credentials_token,
    login_with_pkce,
)
from fabkit.testing import assert_problem

DIRECTORY = json.loads(
    (repo_root() / "deploy" / "keycloak" / "demo-directory.json").read_text(encoding="utf-8")
)
RIVP = DIRECTORY["landlords"]["RIVP"]
PASSWORD = DIRECTORY["password"]
AUDIENCE = "fabrique-api"


def secret(client_id: str) -> str:
    return str(DIRECTORY["clients"][client_id]["secret"])


def problem_of(exc: pytest.ExceptionInfo[ProblemError], status: int, *fragments: str) -> str:
    assert exc.value.status == status, exc.value.detail
    for fragment in fragments:
        assert fragment in exc.value.detail, f"{fragment!r} not in {exc.value.detail!r}"
    return exc.value.detail


def b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.fixture
async def verifier(keycloak: Any) -> Any:
    v = JwksTokenVerifier(keycloak.issuer("fabrique"), AUDIENCE, leeway=0)
    yield v
    await v.aclose()


@pytest.fixture
async def admin(keycloak: Any) -> Any:
    a = KeycloakAdmin(keycloak.base_url, keycloak.admin_user, keycloak.admin_password)
    yield a
    await a.aclose()


async def landlord_token(keycloak: Any) -> str:
    answer = await client_credentials_token(
        keycloak.issuer("fabrique"), "landlord-rivp", secret("landlord-rivp")
    )
    return str(answer["access_token"])


async def test_client_credentials_landlord_token_maps_to_its_landlord(
    keycloak: Any, verifier: JwksTokenVerifier
) -> None:
    token = await landlord_token(keycloak)
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    assert await verifier.verify(token) == Principal(subject=RIVP, role=Role.LANDLORD)
    claims = await verifier.claims(token)
    assert claims["aud"] == AUDIENCE and claims["azp"] == "landlord-rivp"
    assert claims["exp"] - claims["iat"] == 300  # access tokens live five minutes

    other = await client_credentials_token(
        keycloak.issuer("fabrique"), "landlord-paris-habitat", secret("landlord-paris-habitat")
    )
    assert await verifier.verify(other["access_token"]) == Principal(
        subject=DIRECTORY["landlords"]["Paris Habitat"], role=Role.LANDLORD
    )
    cli = await client_credentials_token(
        keycloak.issuer("fabrique"), "fabrique-cli", secret("fabrique-cli")
    )
    assert (await verifier.verify(cli["access_token"])).role is Role.ADMIN


async def test_wrong_client_secret_gets_no_token(keycloak: Any) -> None:
    with pytest.raises(LoginFailed, match="401"):
        await client_credentials_token(keycloak.issuer("fabrique"), "landlord-rivp", "wrong")


@pytest.mark.parametrize(
    ("username", "role", "subject"),
    [
        ("camille.roux", Role.ARTISAN, None),
        ("malik.benali", Role.ARTISAN, None),
        ("lea.martin", Role.LANDLORD, RIVP),
        ("hugo.bernard", Role.LANDLORD, DIRECTORY["landlords"]["Paris Habitat"]),
        ("sophie.lambert", Role.OFFICER, None),
        ("admin.fabrique", Role.ADMIN, None),
    ],
)
async def test_login_with_pkce_of_each_demo_user(
    keycloak: Any, verifier: JwksTokenVerifier, username: str, role: Role, subject: str | None
) -> None:
    answer = await login_with_pkce(keycloak.issuer("fabrique"), username, PASSWORD)
    principal = await verifier.verify(answer["access_token"])
    user = DIRECTORY["users"][username]
    assert principal == Principal(subject=subject or user["id"], role=role)
    claims = await verifier.claims(answer["access_token"])
    assert claims["sub"] == user["id"]  # fixed ids: the services' seeds can refer to them
    assert claims["azp"] == "fabrique-portal"
    assert claims["email"] == user["email"]


async def test_login_refuses_a_wrong_password_and_a_foreign_redirect(keycloak: Any) -> None:
    with pytest.raises(LoginFailed, match="did not redirect"):
        await login_with_pkce(keycloak.issuer("fabrique"), "camille.roux", "not-the-password")
    with pytest.raises(LoginFailed, match="400"):
        await login_with_pkce(
            keycloak.issuer("fabrique"),
            "camille.roux",
            PASSWORD,
            redirect_uri="https://attacker.example/callback",
        )


async def test_portal_client_requires_pkce(keycloak: Any) -> None:
    url = (
        f"{keycloak.issuer('fabrique')}/protocol/openid-connect/auth?client_id=fabrique-portal"
        "&response_type=code&scope=openid&redirect_uri=http://127.0.0.1:9/cb"
    )
    async with httpx.AsyncClient() as client:
        answer = await client.get(url)
    assert answer.status_code in (302, 303)
    assert "code_challenge" in answer.headers["location"]  # error=invalid_request...


async def test_token_of_another_realm_is_refused_for_its_issuer(
    keycloak: Any, verifier: JwksTokenVerifier, admin: KeycloakAdmin
) -> None:
    client_id = f"test-{uuid.uuid4().hex[:8]}"
    internal = await admin.create_client(
        "proconnect-sim",
        {
            "clientId": client_id,
            "secret": "test-secret",
            "publicClient": False,
            "serviceAccountsEnabled": True,
            "standardFlowEnabled": False,
        },
    )
    try:
        foreign = await client_credentials_token(
            keycloak.issuer("proconnect-sim"), client_id, "test-secret"
        )
        with pytest.raises(ProblemError) as exc:
            await verifier.verify(foreign["access_token"])
        problem_of(exc, 401, "another issuer", "proconnect-sim", keycloak.issuer("fabrique"))
    finally:
        await admin.delete_client("proconnect-sim", internal)


async def test_expired_and_wrong_audience_tokens_are_refused(
    keycloak: Any, verifier: JwksTokenVerifier, admin: KeycloakAdmin
) -> None:
    made = []
    try:
        for client_id, audience, lifespan in (
            (f"short-{uuid.uuid4().hex[:8]}", AUDIENCE, "1"),
            (f"other-{uuid.uuid4().hex[:8]}", "some-other-api", "300"),
        ):
            made.append(
                await admin.create_client(
                    "fabrique",
                    {
                        "clientId": client_id,
                        "secret": "test-secret",
                        "publicClient": False,
                        "serviceAccountsEnabled": True,
                        "standardFlowEnabled": False,
                        "attributes": {"access.token.lifespan": lifespan},
                        "protocolMappers": [
                            {
                                "name": "audience",
                                "protocol": "openid-connect",
                                "protocolMapper": "oidc-audience-mapper",
                                "config": {
                                    "included.custom.audience": audience,
                                    "access.token.claim": "true",
                                },
                            }
                        ],
                    },
                )
            )
            if lifespan == "1":
                short = await client_credentials_token(
                    keycloak.issuer("fabrique"), client_id, "test-secret"
                )
            else:
                elsewhere = await client_credentials_token(
                    keycloak.issuer("fabrique"), client_id, "test-secret"
                )
        await asyncio.sleep(2.2)
        with pytest.raises(ProblemError) as exc:
            await verifier.verify(short["access_token"])
        problem_of(exc, 401, "expired at", "get a new one")
        with pytest.raises(ProblemError) as exc:
            await verifier.verify(elsewhere["access_token"])
        problem_of(exc, 401, "not meant for this API", "some-other-api", AUDIENCE)
    finally:
        for internal in made:
            await admin.delete_client("fabrique", internal)


async def test_es256_tokens_verify_too(
    keycloak: Any, verifier: JwksTokenVerifier, admin: KeycloakAdmin
) -> None:
    component = await admin.add_ec_key("fabrique", "es256-test", priority=50)
    client_id = f"es256-{uuid.uuid4().hex[:8]}"
    internal = await admin.create_client(
        "fabrique",
        {
            "clientId": client_id,
            "secret": "test-secret",
            "publicClient": False,
            "serviceAccountsEnabled": True,
            "standardFlowEnabled": False,
            "attributes": {"access.token.signed.response.alg": "ES256"},
            "protocolMappers": [
                {
                    "name": name,
                    "protocol": "openid-connect",
                    "protocolMapper": kind,
                    "config": {**config, "access.token.claim": "true"},
                }
                for name, kind, config in (
                    ("audience", "oidc-audience-mapper", {"included.custom.audience": AUDIENCE}),
                    (
                        "roles",
                        "oidc-usermodel-realm-role-mapper",
                        {"claim.name": "roles", "multivalued": "true"},
                    ),
                )
            ],
        },
    )
    try:
        account = await admin.service_account_user("fabrique", internal)
        await admin.grant_realm_roles("fabrique", account["id"], "officer")
        answer = await client_credentials_token(
            keycloak.issuer("fabrique"), client_id, "test-secret"
        )
        assert jwt.get_unverified_header(answer["access_token"])["alg"] == "ES256"
        assert await verifier.verify(answer["access_token"]) == Principal(
            subject=account["id"], role=Role.OFFICER
        )
    finally:
        await admin.delete_client("fabrique", internal)
        await admin.delete_component("fabrique", component)


async def test_unsigned_shared_secret_and_tampered_tokens_are_refused(
    keycloak: Any, verifier: JwksTokenVerifier
) -> None:
    token = await landlord_token(keycloak)
    header_b64, claims_b64, signature = token.split(".")
    header = json.loads(base64.urlsafe_b64decode(header_b64 + "=="))
    claims = jwt.decode(token, options={"verify_signature": False})

    unsigned = f"{b64({**header, 'alg': 'none'})}.{claims_b64}."
    with pytest.raises(ProblemError) as exc:
        await verifier.verify(unsigned)
    problem_of(exc, 401, "unsigned (alg none)")

    hs256 = jwt.encode(claims, "a-guessed-shared-secret-of-32-bytes", algorithm="HS256")
    with pytest.raises(ProblemError) as exc:
        await verifier.verify(hs256)
    problem_of(exc, 401, "HS256", "never a shared secret")

    forged = f"{header_b64}.{b64({**claims, 'landlord_id': str(uuid.uuid4())})}.{signature}"
    with pytest.raises(ProblemError) as exc:
        await verifier.verify(forged)
    problem_of(exc, 401, "signature does not verify", header["kid"])

    with pytest.raises(ProblemError) as exc:
        await verifier.verify("not-a-jwt")
    problem_of(exc, 401, "not a well-formed JWT")
    assert exc.value.headers and "Bearer" in exc.value.headers["WWW-Authenticate"]


def _foreign_token(issuer: str, kid: str) -> str:
    """A token for our issuer signed with a key Keycloak never had."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    claims = {"iss": issuer, "aud": AUDIENCE, "sub": "x", "iat": now, "exp": now + 300}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


async def test_unknown_key_is_refused_and_refetches_are_rate_limited(
    keycloak: Any,
) -> None:
    requests: list[str] = []

    async def count(request: httpx.Request) -> None:
        requests.append(request.url.path)

    async with httpx.AsyncClient(event_hooks={"request": [count]}) as client:
        v = JwksTokenVerifier(
            keycloak.issuer("fabrique"), AUDIENCE, min_refresh_interval=30, client=client
        )
        await v.verify(await landlord_token(keycloak))
        fetched = len(requests)
        for _ in range(5):
            with pytest.raises(ProblemError) as exc:
                await v.verify(_foreign_token(keycloak.issuer("fabrique"), "forged-kid"))
            problem_of(exc, 401, "'forged-kid'", "does not publish")
        assert len(requests) == fetched  # forged kids do not make it hammer the provider


async def test_key_rotation_needs_no_restart(keycloak: Any, admin: KeycloakAdmin) -> None:
    issuer = keycloak.issuer("fabrique")
    v = JwksTokenVerifier(issuer, AUDIENCE, cache_ttl=2.0, min_refresh_interval=0.5)
    try:
        old_token = await landlord_token(keycloak)
        old_kid = jwt.get_unverified_header(old_token)["kid"]
        await v.verify(old_token)
        assert v.key_ids  # cached

        new_component = await admin.add_rsa_key("fabrique", "rotation-test", priority=500)
        new_token = await landlord_token(keycloak)
        new_kid = jwt.get_unverified_header(new_token)["kid"]
        assert new_kid != old_kid  # the provider signs with the new key at once
        assert await v.verify(new_token) == Principal(subject=RIVP, role=Role.LANDLORD)
        assert await v.verify(old_token) == Principal(subject=RIVP, role=Role.LANDLORD)
        assert {old_kid, new_kid} <= set(v.key_ids)

        # Retire the old key: once the cache is older than cache_ttl, its tokens are refused.
        old_key = next(k for k in await admin.keys("fabrique") if k.get("kid") == old_kid)
        assert old_key["algorithm"] == "RS256"
        await admin.delete_component("fabrique", old_key["providerId"])
        await asyncio.sleep(2.1)
        with pytest.raises(ProblemError) as exc:
            await v.verify(old_token)
        problem_of(exc, 401, old_kid, "retired since")
        assert await v.verify(new_token) == Principal(subject=RIVP, role=Role.LANDLORD)
        assert old_kid not in v.key_ids and new_component
    finally:
        await v.aclose()


async def test_provider_stopped_cached_keys_verify_unknown_key_gets_503(
    keycloak: Any,
) -> None:
    issuer = keycloak.issuer("fabrique")
    v = JwksTokenVerifier(issuer, AUDIENCE, cache_ttl=0.5, min_refresh_interval=0.2)
    try:
        token = await landlord_token(keycloak)
        await v.verify(token)
        await asyncio.to_thread(keycloak.stop)
        try:
            await asyncio.sleep(0.6)  # cache now stale: the refresh fails, the keys stay
            assert await v.verify(token) == Principal(subject=RIVP, role=Role.LANDLORD)
            with pytest.raises(ProblemError) as exc:
                await v.verify(_foreign_token(issuer, "kid-after-a-rotation"))
            problem_of(exc, 503, "identity provider cannot be reached", "Try again")
            assert exc.value.headers and "Retry-After" in exc.value.headers
        finally:
            await asyncio.to_thread(keycloak.start)
        await asyncio.sleep(0.3)
        with pytest.raises(ProblemError) as exc:
            await v.verify(_foreign_token(issuer, "kid-after-a-rotation"))
        problem_of(exc, 401, "does not publish")  # reachable again: a plain unknown key
    finally:
        await v.aclose()


async def test_a_service_answers_problem_json_saying_which_check_failed(
    keycloak: Any, verifier: JwksTokenVerifier
) -> None:
    app = FastAPI()
    install_problem_handlers(app)
    app.state.verifier = verifier

    @app.get("/whoami")
    async def whoami(principal: PrincipalDep) -> dict[str, str]:
        return {"subject": principal.subject, "role": principal.role.value}

    token = await landlord_token(keycloak)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as api:
        answer = await api.get("/whoami", headers={"Authorization": f"Bearer {token}"})
        assert answer.json() == {"subject": RIVP, "role": "landlord"}
        missing = await api.get("/whoami")
        assert_problem(missing, 401, "A bearer token is required")
        header, claims, _ = token.split(".")
        stripped = await api.get("/whoami", headers={"Authorization": f"Bearer {header}.{claims}."})
        body = assert_problem(stripped, 401, "signature does not verify")
        assert body["instance"] == "/whoami"
        assert stripped.headers["www-authenticate"].startswith("Bearer")


# --------------------------------------------------------------------------------------------
# claim mapping (pure)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        (["artisan"], Role.ARTISAN),
        (["default-roles-fabrique", "artisan", "landlord"], Role.LANDLORD),
        (["artisan", "officer", "landlord"], Role.OFFICER),
        (["officer", "admin", "offline_access"], Role.ADMIN),
    ],
)
def test_highest_role_wins(roles: list[str], expected: Role) -> None:
    claims = {"sub": "u-1", "roles": roles, "landlord_id": "l-1"}
    principal = principal_from_claims(claims)
    assert principal.role is expected
    assert principal.subject == ("l-1" if expected is Role.LANDLORD else "u-1")


def test_no_fabrique_role_or_no_landlord_id_is_forbidden() -> None:
    with pytest.raises(ProblemError) as exc:
        principal_from_claims({"sub": "u", "roles": ["offline_access"]})
    problem_of(exc, 403, "none of the Fabrique roles")
    with pytest.raises(ProblemError) as exc:
        principal_from_claims({"sub": "u", "roles": ["landlord"]})
    problem_of(exc, 403, "no 'landlord_id' claim")


def test_verifier_refuses_symmetric_algorithms_in_its_configuration() -> None:
    with pytest.raises(ValueError, match="asymmetric"):
        JwksTokenVerifier("http://127.0.0.1:1/realms/x", AUDIENCE, algorithms=["HS256"])
