"""Inventory test fixtures: a migrated database (SQLite and PostgreSQL), the real broker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from fabkit.auth import Role
from fabkit.oidc_testing import TestIdentities
from inventory.cli import migrate
from inventory.main import create_app
from inventory.settings import InventorySettings


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/inventory.db"
    server = request.getfixturevalue("postgres_server")
    name = f"inv_{uuid.uuid4().hex[:12]}"
    server.create_database(name)
    return str(server.url(name))


_PROVIDER: list[TestIdentities] = []


@pytest.fixture(autouse=True)
def _identity_provider(identities: TestIdentities) -> None:
    """Every app under test verifies the tokens of the session's real Keycloak."""
    _PROVIDER[:] = [identities]


def provider() -> TestIdentities:
    return _PROVIDER[0]


def make_settings(database_url: str, bootstrap: str, **overrides: Any) -> InventorySettings:
    return InventorySettings(
        environment="test",
        database_url=database_url,
        kafka_bootstrap=bootstrap,
        outbox_poll_interval_s=0.5,
        oidc_issuer=provider().issuer,
        **overrides,
    )


class Api:
    """An httpx client on the app plus tokens of the session's Keycloak (real grants)."""

    def __init__(self, client: httpx.AsyncClient, settings: InventorySettings) -> None:
        self.client = client
        self.settings = settings
        self.identities = provider()
        self.admin = self.identities.headers(Role.ADMIN, "admin-1")

    @staticmethod
    def auth(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def landlord_headers(self, landlord_id: str) -> dict[str, str]:
        """A landlord integration's token (client credentials, landlord_id claim)."""
        return self.identities.headers(Role.LANDLORD, landlord_id)

    async def new_landlord(self, name: str | None = None) -> tuple[str, dict[str, str]]:
        r = await self.client.post(
            "/v1/landlords",
            json={"name": name or f"Bailleur {uuid.uuid4().hex[:8]}"},
            headers=self.admin,
        )
        assert r.status_code == 201, r.text
        landlord_id = r.json()["id"]
        return landlord_id, self.landlord_headers(landlord_id)

    async def new_site(self, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
        body = {
            "name": "Hôtel industriel Berlier",
            "kind": "hotel_industriel",
            "address": "26 rue Bruneseau",
            "postcode": "75013",
            "arrondissement": 13,
            **fields,
        }
        r = await self.client.post("/v1/sites", json=body, headers=headers)
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]

    async def new_unit(
        self, site_id: str, headers: dict[str, str], **fields: Any
    ) -> dict[str, Any]:
        body = {
            "reference": f"L{uuid.uuid4().hex[:6]}",
            "surface_m2": 200,
            "ceiling_height_m": 4.5,
            "floor_load_kg_m2": 800,
            "allowed_trades": ["woodwork", "ceramics"],
            "rent_eur_m2_year": 120,
            **fields,
        }
        r = await self.client.post(f"/v1/sites/{site_id}/units", json=body, headers=headers)
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]


@pytest.fixture
async def api(database_url: str, kafka_broker: Any) -> AsyncIterator[Api]:
    settings = make_settings(database_url, kafka_broker.bootstrap)
    await asyncio.to_thread(migrate, settings)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://inventory") as client:
            yield Api(client, settings)


async def read_events(
    bootstrap: str, topic: str, key: str, *, expect: int, timeout: float = 20.0
) -> list[Any]:
    """Every record of `topic` whose key is `key`, read from the beginning until `expect` arrive."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = [
                TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()
            ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        found: list[Any] = []
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for records in batch.values():
                found.extend(r for r in records if r.key == key.encode())
            if len(found) >= expect:
                # read a little more so an unexpected extra record is seen too
                extra = await consumer.getmany(timeout_ms=700)
                for records in extra.values():
                    found.extend(r for r in records if r.key == key.encode())
                break
        return found
    finally:
        await consumer.stop()


def headers_of(record: Any) -> dict[str, str]:
    return {k: v.decode() for k, v in record.headers}
