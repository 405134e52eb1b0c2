"""The whole allocation journey across inventory and leasing over the real broker, in one
process: two apps, each with its own database, talking only through Kafka.

A landlord opens a vacancy in inventory -> leasing's read model shows it -> artisans apply ->
the landlord (with its identity provider's token) ranks and offers -> the artisan accepts ->
inventory shows the unit leased -> leasing closes the other application -> the lease ends ->
inventory reopens the unit with a new vacancy, which leasing sees.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from inventory.cli import migrate as migrate_inventory
from inventory.main import create_app as create_inventory
from inventory.settings import InventorySettings

from .conftest import eventually, make_settings, provider, start_group_at_end, started_app


@pytest.fixture(params=["sqlite", "postgres"])
def database_urls(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], str]:
    """A fresh database URL per service name."""

    def url(name: str) -> str:
        if request.param == "sqlite":
            return f"sqlite+aiosqlite:///{tmp_path}/{name}.db"
        server = request.getfixturevalue("postgres_server")
        db = f"{name[:3]}_{uuid.uuid4().hex[:12]}"
        server.create_database(db)
        return str(server.url(db))

    return url


@contextlib.asynccontextmanager
async def inventory_app(settings: InventorySettings) -> AsyncIterator[httpx.AsyncClient]:
    await asyncio.to_thread(migrate_inventory, settings)
    app = create_inventory(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://inventory") as client:
            yield client


async def test_vacancy_to_signed_lease_to_a_reopened_unit(
    database_urls: Callable[[str], str], kafka_broker: Any
) -> None:
    bootstrap = kafka_broker.bootstrap
    inv_settings = InventorySettings(
        environment="test",
        database_url=database_urls("inventory"),
        kafka_bootstrap=bootstrap,
        outbox_poll_interval_s=0.5,
        consumer_group=f"inventory-journey-{uuid.uuid4().hex[:8]}",
        oidc_issuer=provider().issuer,
    )
    lea_settings = make_settings(database_urls("leasing"), bootstrap, run_consumers=True)
    await start_group_at_end(bootstrap, inv_settings.consumer_group, "leasing.lease.events")
    await start_group_at_end(bootstrap, lea_settings.consumer_group, "inventory.unit.events")

    async with inventory_app(inv_settings) as inventory, started_app(lea_settings) as leasing:
        admin = leasing.admin  # one identity provider for the platform: inventory accepts it too
        # the landlord, its site and a unit, in inventory
        r = await inventory.post("/v1/landlords", json={"name": "RIVP journey"}, headers=admin)
        landlord_id = r.json()["id"]
        # its integration: a Keycloak client whose tokens carry this landlord_id
        landlord = leasing.identities.headers("landlord", landlord_id)
        r = await inventory.post(
            "/v1/sites",
            json={
                "name": "Hôtel industriel Berlier",
                "kind": "hotel_industriel",
                "address": "26 rue Bruneseau",
                "postcode": "75013",
                "arrondissement": 13,
            },
            headers=landlord,
        )
        site_id = r.json()["id"]
        r = await inventory.post(
            f"/v1/sites/{site_id}/units",
            json={
                "reference": "L201",
                "surface_m2": 120,
                "allowed_trades": ["ceramics", "woodwork"],
                "rent_eur_m2_year": 150,
            },
            headers=landlord,
        )
        unit_id = r.json()["id"]
        r = await inventory.patch(
            f"/v1/units/{unit_id}", json={"status": "available"}, headers=landlord
        )
        first_vacancy = r.json()["vacancy_id"]

        async def listed_with(vacancy: str) -> dict[str, Any] | None:
            r = await leasing.client.get(f"/v1/units/{unit_id}")
            if r.status_code == 200 and r.json()["vacancy_id"] == vacancy:
                return r.json()  # type: ignore[no-any-return]
            return None

        listing = await eventually(lambda: listed_with(first_vacancy))
        assert listing["landlord_id"] == landlord_id
        assert listing["programme_ids"] == [
            "hotels-industriels-jeunes-artisans",
            "economie-sociale-et-solidaire",
        ]

        # two artisans apply; the landlord ranks and offers with its inventory token
        _, winner = await leasing.register(legal_form="scop", trades=["ceramics"])
        _, runner_up = await leasing.register(labels=[])
        chosen = await leasing.apply(winner, unit_id)
        other = await leasing.apply(runner_up, unit_id)
        r = await leasing.client.get(f"/v1/units/{unit_id}/ranking", headers=landlord)
        assert [e["application_id"] for e in r.json()["entries"]] == [chosen["id"], other["id"]]
        r = await leasing.offer(landlord, chosen["id"], monthly_rent_eur=1500)
        assert r.status_code == 201, r.text
        lease_id = r.json()["id"]
        r = await leasing.client.post(f"/v1/leases/{lease_id}/accept", headers=winner)
        assert r.status_code == 200, r.text

        async def unit_status(status: str) -> dict[str, Any] | None:
            r = await inventory.get(f"/v1/units/{unit_id}")
            return r.json() if r.json()["status"] == status else None  # type: ignore[no-any-return]

        leased = await eventually(lambda: unit_status("leased"))
        assert leased["vacancy_id"] is None

        async def closed() -> bool:
            r = await leasing.client.get(f"/v1/applications/{other['id']}", headers=runner_up)
            return bool(r.json()["status"] == "closed")

        await eventually(closed)
        assert (await leasing.client.get(f"/v1/units/{unit_id}")).json()["status"] == "leased"

        # the lease ends: inventory reopens the unit with a new vacancy, leasing lists it
        r = await leasing.client.post(
            f"/v1/leases/{lease_id}/end",
            json={"reason": "The cooperative moved to Pantin"},
            headers=landlord,
        )
        assert r.status_code == 200, r.text
        reopened = await eventually(lambda: unit_status("available"))
        assert reopened["vacancy_id"] not in (None, first_vacancy)
        await eventually(lambda: listed_with(reopened["vacancy_id"]))
        ledger = (await inventory.get(f"/v1/units/{unit_id}/surface-ledger")).json()
        assert [e["change"] for e in ledger] == ["registered"]  # letting moves no surface
