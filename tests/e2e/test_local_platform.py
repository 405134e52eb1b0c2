"""The run command's platform as real processes: broker, Keycloak, services, demo data. RIVP's
integration gets its token from Keycloak with the committed demo client secret (the newcomer's
curl), opens a vacancy of the seeded RIVP with one PATCH and a plain Kafka client reads the
CloudEvent; the demo artisan logs in (authorization code + PKCE) and finds her seeded profile."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from fabkit.localstack.kafka import repo_root
from fabkit.localstack.platform import Platform
from fabkit.oidc_testing import client_credentials_token, login_with_pkce

from .harness import oidc_issuer

DEMO = json.loads((repo_root() / "deploy" / "keycloak" / "demo-directory.json").read_text())

pytestmark = pytest.mark.e2e


async def test_seeded_platform_publishes_a_vacancy_opened_by_one_patch(platform: Platform) -> None:
    inventory = platform.services["inventory"]
    issuer = oidc_issuer(platform)
    admin = (await client_credentials_token(issuer, "fabrique-cli", "dev-fabrique-cli-secret"))[
        "access_token"
    ]
    token = (await client_credentials_token(issuer, "landlord-rivp", "dev-landlord-rivp-secret"))[
        "access_token"
    ]
    async with httpx.AsyncClient(base_url=inventory.url, timeout=10) as client:
        sites = (await client.get("/v1/sites", params={"limit": 100})).json()
        names = {s["name"] for s in sites["items"]}
        assert {"Hôtel industriel Berlier", "Métropole 19", "Cour de l'Industrie"} <= names
        assert sites["total"] == 13
        # the invented demo sites of the new kinds (a fab lab, a tiers-lieu, a last-mile
        # logistics premises, a Christmas market) are seeded beside the real ones
        kinds = {s["kind"] for s in sites["items"]}
        assert {"fab_lab", "tiers_lieu", "logistique_urbaine", "marche_saisonnier"} <= kinds
        landlords = (
            await client.get("/v1/landlords", headers={"Authorization": f"Bearer {admin}"})
        ).json()
        rivp = next(x for x in landlords if x["name"] == "RIVP")
        # the seed follows the realm's fixed ids, so the demo client acts for the seeded RIVP
        assert rivp["id"] == DEMO["landlords"]["RIVP"]
        unit = (
            await client.get(
                "/v1/units", params={"landlord_id": rivp["id"], "status": "unavailable", "limit": 1}
            )
        ).json()["items"][0]

        consumer = AIOKafkaConsumer(
            "inventory.unit.events",
            bootstrap_servers=platform.broker.bootstrap,
            group_id=None,
            auto_offset_reset="latest",
        )
        await consumer.start()
        try:
            await consumer.seek_to_end()
            positions = {tp: await consumer.position(tp) for tp in consumer.assignment()}
            assert positions
            r = await client.patch(
                f"/v1/units/{unit['id']}",
                json={"status": "available"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert r.status_code == 200, r.text
            vacancy_id = r.json()["vacancy_id"]
            opened = None
            async with asyncio.timeout(15):
                while opened is None:
                    batch = await consumer.getmany(timeout_ms=500)
                    for records in batch.values():
                        for record in records:
                            headers = {k: v.decode() for k, v in record.headers}
                            if headers["ce_type"] == "inventory.unit.vacancy_opened.v1":
                                opened = (record, headers)
        finally:
            await consumer.stop()
    record, headers = opened
    assert record.key == unit["id"].encode()
    assert headers["ce_subject"] == unit["id"] and headers["ce_specversion"] == "1.0"
    data = json.loads(record.value)
    assert data["vacancy_id"] == vacancy_id
    assert data["unit"]["landlord_name"] == "RIVP"
    assert data["unit"]["site_name"] == unit["site"]["name"]


async def test_the_demo_artisan_logs_in_and_finds_her_seeded_profile(platform: Platform) -> None:
    login = await login_with_pkce(oidc_issuer(platform), "camille.roux", DEMO["password"])
    leasing = platform.services["leasing"]
    async with httpx.AsyncClient(base_url=leasing.url, timeout=10) as client:
        me = await client.get(
            "/v1/artisans/me", headers={"Authorization": f"Bearer {login['access_token']}"}
        )
    assert me.status_code == 200, me.text
    assert me.json()["id"] == DEMO["users"]["camille.roux"]["id"]
    assert me.json()["display_name"] == "Camille Roux"


async def test_metrics_are_exported_by_route_template(platform: Platform) -> None:
    inventory = platform.services["inventory"]
    async with httpx.AsyncClient(base_url=inventory.url, timeout=10) as client:
        await client.get("/v1/units/does-not-exist")
        text = (await client.get("/metrics")).text
    assert 'http_requests_total{method="GET",route="/v1/units/{unit_id}",status="404"}' in text
    assert "does-not-exist" not in text
    for name in (
        "outbox_pending_events",
        "events_published_total",
        'inventory_units{status="available"}',
        "inventory_vacancies_opened_total",
    ):
        assert name in text, name
