"""The local platform's Keycloak is wired as the other run modes' is: every service is given
the issuer of the realm that really signs the tokens, the audience they carry and a keys URL
that answers; the realm's mails go to the launcher's mail catcher."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx

from fabkit.localstack.platform import OIDC_AUDIENCE


def _segment(token: str, index: int) -> dict[str, Any]:
    """The JSON of a JWT's header (0) or claims (1), unverified: the services verify."""
    part = token.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))  # type: ignore[no-any-return]


def test_a_landlord_token_carries_the_issuer_and_audience_the_services_were_given(
    live_platform: Any,
) -> None:
    keycloak = live_platform.keycloak
    assert keycloak is not None and keycloak.is_running
    demo = json.loads((keycloak.realm_paths[0].parent / "demo-directory.json").read_text())
    answer = httpx.post(
        keycloak.token_endpoint("fabrique"),
        data={
            "grant_type": "client_credentials",
            "client_id": "landlord-rivp",
            "client_secret": demo["clients"]["landlord-rivp"]["secret"],
        },
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    token = answer.json()["access_token"]
    claims = _segment(token, 1)
    assert claims["landlord_id"] == demo["clients"]["landlord-rivp"]["landlord_id"]
    assert claims["aud"] == OIDC_AUDIENCE
    for name, service in live_platform.services.items():
        prefix = service.spec.env_prefix
        assert service.env[f"{prefix}OIDC_ISSUER"] == claims["iss"], name
        assert service.env[f"{prefix}OIDC_AUDIENCE"] == claims["aud"], name
        keys = httpx.get(service.env[f"{prefix}OIDC_JWKS_URL"], timeout=30).json()["keys"]
        assert _segment(token, 0)["kid"] in {k["kid"] for k in keys}, name


def test_the_realm_sends_its_mails_to_the_mail_catcher(live_platform: Any) -> None:
    keycloak = live_platform.keycloak
    with httpx.Client(timeout=30) as client:
        token = keycloak.admin_token(client)
        realm = client.get(
            f"{keycloak.base_url}/admin/realms/fabrique",
            headers={"Authorization": f"Bearer {token}"},
        ).json()
    assert realm["smtpServer"]["host"] == "127.0.0.1"
    assert realm["smtpServer"]["port"] == str(live_platform.mail.port)
