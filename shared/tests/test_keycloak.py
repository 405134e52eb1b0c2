"""The local Keycloak and the committed realms: what the realm files promise (read as JSON),
the launcher's pieces, and a login brokered through the simulated ProConnect on the real
server (the session's ``keycloak`` fixture)."""

from __future__ import annotations

import json
import stat
import uuid
import zipfile
from pathlib import Path
from typing import Any

import jwt
import pytest

from fabkit.auth import Principal, Role
from fabkit.localstack.cli import build_parser
from fabkit.localstack.kafka import LocalStackError, repo_root
from fabkit.localstack.keycloak import (
    KeycloakServer,
    realm_files,
    realm_names,
    realm_placeholders,
    unzip_keeping_modes,
)
from fabkit.oidc import JwksTokenVerifier
from fabkit.oidc_testing import KeycloakAdmin, login_with_pkce

FOLDER = repo_root() / "deploy" / "keycloak"
REALM = json.loads((FOLDER / "fabrique-realm.json").read_text(encoding="utf-8"))
SIM = json.loads((FOLDER / "proconnect-sim-realm.json").read_text(encoding="utf-8"))
DIRECTORY = json.loads((FOLDER / "demo-directory.json").read_text(encoding="utf-8"))


def fixed_id(kind: str, name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:fabrique:{kind}:{name}"))


def client(client_id: str) -> dict[str, Any]:
    return next(c for c in REALM["clients"] if c["clientId"] == client_id)


def mappers(client_id: str) -> dict[str, dict[str, Any]]:
    return {m["protocolMapper"]: m["config"] for m in client(client_id)["protocolMappers"]}


def test_realm_files_are_found_and_named() -> None:
    files = realm_files()
    assert [f.name for f in files] == ["fabrique-realm.json", "proconnect-sim-realm.json"]
    assert realm_names(files) == ["fabrique", "proconnect-sim"]
    # demo-directory.json lies beside them but is not a realm: not imported.
    assert (FOLDER / "demo-directory.json").is_file()


def test_realm_roles_and_sane_policies() -> None:
    roles = {r["name"] for r in REALM["roles"]["realm"]}
    assert {"artisan", "landlord", "officer", "admin"} <= roles
    assert REALM["accessTokenLifespan"] == 300
    assert REALM["bruteForceProtected"] is True and REALM["failureFactor"] <= 10
    assert REALM["verifyEmail"] is True and REALM["resetPasswordAllowed"] is True
    assert REALM["sslRequired"] == "external"
    assert REALM["webAuthnPolicyPasswordlessRpEntityName"] == "Fabrique"
    actions = {a["alias"]: a for a in REALM["requiredActions"]}
    assert actions["webauthn-register-passwordless"]["enabled"] is True
    assert REALM["smtpServer"]["host"].startswith("${FABRIQUE_SMTP_HOST:")
    assert set(realm_placeholders(realm_files())) == {
        "FABRIQUE_SMTP_HOST",
        "FABRIQUE_SMTP_PORT",
        "FABRIQUE_PROCONNECT_ISSUER",
        "FABRIQUE_PROCONNECT_CLIENT_ID",
        "FABRIQUE_PROCONNECT_CLIENT_SECRET",
        "FABRIQUE_PROCONNECT_SCOPES",
    }
    assert "fabrique-demo-2026" in REALM["attributes"]["description"]


def test_every_client_puts_the_api_audience_and_flat_roles_in_access_tokens() -> None:
    for c in REALM["clients"]:
        found = mappers(c["clientId"])
        audience = found["oidc-audience-mapper"]
        assert audience["included.custom.audience"] == "fabrique-api"
        assert audience["access.token.claim"] == "true"
        roles = found["oidc-usermodel-realm-role-mapper"]
        assert roles["claim.name"] == "roles" and roles["multivalued"] == "true"
        assert "roles" not in c["defaultClientScopes"]  # no realm_access / resource_access


def test_portal_is_public_with_pkce_and_loopback_redirects() -> None:
    portal = client("fabrique-portal")
    assert portal["publicClient"] is True and portal["standardFlowEnabled"] is True
    assert portal["directAccessGrantsEnabled"] is False
    assert portal["attributes"]["pkce.code.challenge.method"] == "S256"
    assert "http://127.0.0.1/*" in portal["redirectUris"]
    assert mappers("fabrique-portal")["oidc-usermodel-attribute-mapper"]["claim.name"] in {
        "landlord_id",
        "siret",
    }


def test_landlord_integrations_carry_their_fixed_landlord_id() -> None:
    assert DIRECTORY["landlords"] == {
        name: fixed_id("landlord", name) for name in ("RIVP", "Paris Habitat")
    }
    for client_id, landlord in (
        ("landlord-rivp", "RIVP"),
        ("landlord-paris-habitat", "Paris Habitat"),
    ):
        c = client(client_id)
        assert c["serviceAccountsEnabled"] is True and c["standardFlowEnabled"] is False
        claim = mappers(client_id)["oidc-hardcoded-claim-mapper"]
        assert claim["claim.name"] == "landlord_id"
        assert claim["claim.value"] == DIRECTORY["landlords"][landlord]
        account = next(u for u in REALM["users"] if u.get("serviceAccountClientId") == client_id)
        assert "landlord" in account["realmRoles"]
    cli = next(u for u in REALM["users"] if u.get("serviceAccountClientId") == "fabrique-cli")
    assert "admin" in cli["realmRoles"]


def test_demo_users_have_fixed_ids_and_documented_roles() -> None:
    users = {u["username"]: u for u in REALM["users"] if "id" in u}
    assert set(users) == set(DIRECTORY["users"])
    for username, entry in DIRECTORY["users"].items():
        assert users[username]["id"] == entry["id"] == fixed_id("user", username)
        assert set(entry["roles"]) <= set(users[username]["realmRoles"])
    assert users["lea.martin"]["attributes"]["landlord_id"] == [DIRECTORY["landlords"]["RIVP"]]
    assert DIRECTORY["users"]["camille.roux"]["name"] == "Camille Roux"


def test_proconnect_is_brokered_with_its_siret() -> None:
    (provider,) = REALM["identityProviders"]
    assert provider["alias"] == "proconnect" and provider["providerId"] == "oidc"
    assert provider["config"]["pkceEnabled"] == "true"
    assert provider["config"]["clientSecret"].startswith("${FABRIQUE_PROCONNECT_CLIENT_SECRET:")
    siret = next(m for m in REALM["identityProviderMappers"] if m["name"] == "siret")
    assert siret["config"] == {"claim": "siret", "user.attribute": "siret", "syncMode": "FORCE"}
    (user,) = SIM["users"]
    assert user["attributes"]["siret"] == ["90000000300005"]


def test_unzip_keeps_exec_bits_and_refuses_escaping_paths(tmp_path: Path) -> None:
    archive = tmp_path / "dist.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        script = zipfile.ZipInfo("kc/bin/kc.sh")
        script.external_attr = (stat.S_IFREG | 0o755) << 16
        zf.writestr(script, "#!/bin/sh\necho ok\n")
        zf.writestr("kc/README.md", "hello")
    assert unzip_keeping_modes(archive, tmp_path / "out") == 2
    assert (tmp_path / "out" / "kc" / "bin" / "kc.sh").stat().st_mode & 0o111
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../outside.txt", "no")
    with pytest.raises(LocalStackError, match="unsafe path"):
        unzip_keeping_modes(evil, tmp_path / "out2")


def test_server_command_is_optimized_on_loopback(tmp_path: Path) -> None:
    server = KeycloakServer(tmp_path / "kc", port=18080, management_port=19000)
    cmd = server.command(tmp_path / "dist")
    assert cmd[0].endswith("bin/kc.sh") and "start" in cmd and "--optimized" in cmd
    assert "--http-host=127.0.0.1" in cmd and "--import-realm" in cmd
    assert "--hostname=http://127.0.0.1:18080" in cmd
    assert server.issuer() == "http://127.0.0.1:18080/realms/fabrique"


def test_fetch_command_fetches_keycloak_too() -> None:
    args = build_parser().parse_args(["fetch"])
    assert args.no_keycloak is False and args.keycloak_version == "26.5.6"
    assert build_parser().parse_args(["fetch", "--no-keycloak"]).no_keycloak is True


async def test_login_brokered_through_proconnect_imports_the_siret(keycloak: Any) -> None:
    issuer = keycloak.issuer("fabrique")
    answer = await login_with_pkce(
        issuer, "claire.dubois", "proconnect-demo-2026", idp_hint="proconnect"
    )
    verifier = JwksTokenVerifier(issuer, "fabrique-api")
    admin = KeycloakAdmin(keycloak.base_url, keycloak.admin_user, keycloak.admin_password)
    try:
        principal = await verifier.verify(answer["access_token"])
        (user,) = (
            await admin.request(
                "GET", "/fabrique/users", params={"username": "claire.dubois", "exact": "true"}
            )
        ).json()
        assert principal == Principal(subject=user["id"], role=Role.ARTISAN)
        assert user["attributes"]["siret"] == ["90000000300005"]
        assert user["email"] == "claire.dubois@atelier-dubois.example.org"
        identity = jwt.decode(answer["id_token"], options={"verify_signature": False})
        assert identity["siret"] == "90000000300005"
        links = (
            await admin.request("GET", f"/fabrique/users/{user['id']}/federated-identity")
        ).json()
        assert [link["identityProvider"] for link in links] == ["proconnect"]
    finally:
        await verifier.aclose()
        await admin.aclose()
