"""The run command's platform as real processes: broker, services, demo data. A landlord opens
a vacancy with one PATCH and a plain Kafka client reads the CloudEvent."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from fabkit.auth import Role, TokenService
from fabkit.localstack.platform import Platform
from fabkit.settings import DEV_JWT_SECRET

pytestmark = pytest.mark.e2e


async def test_seeded_platform_publishes_a_vacancy_opened_by_one_patch(platform: Platform) -> None:
    inventory = platform.services["inventory"]
    admin = TokenService(DEV_JWT_SECRET).issue("e2e", Role.ADMIN)
    async with httpx.AsyncClient(base_url=inventory.url, timeout=10) as client:
        sites = (await client.get("/v1/sites", params={"limit": 100})).json()
        names = {s["name"] for s in sites["items"]}
        assert {"Hôtel industriel Berlier", "Métropole 19", "Cour de l'Industrie"} <= names
        assert sites["total"] == 9
        landlords = (
            await client.get("/v1/landlords", headers={"Authorization": f"Bearer {admin}"})
        ).json()
        rivp = next(x for x in landlords if x["name"] == "RIVP")
        token = (
            await client.post(
                f"/v1/landlords/{rivp['id']}/tokens", headers={"Authorization": f"Bearer {admin}"}
            )
        ).json()["token"]
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


async def test_metrics_are_exported_by_route_template(platform: Platform) -> None:
    inventory = platform.services["inventory"]
    async with httpx.AsyncClient(base_url=inventory.url, timeout=10) as client:
        await client.get("/v1/units/does-not-exist")
        text = (await client.get("/metrics")).text
    assert (
        'inventory_http_requests_total{method="GET",route="/v1/units/{unit_id}",status="404"}'
        in text
    )
    assert "does-not-exist" not in text
    for name in (
        "inventory_outbox_pending_messages",
        "inventory_events_published_total",
        'inventory_units{status="available"}',
        "inventory_vacancies_opened_total",
    ):
        assert name in text, name
