"""Leasing test fixtures: a migrated database (SQLite and PostgreSQL), the real broker, and
helpers that feed inventory's unit events through the service's own consumer runner."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi import FastAPI
from sqlalchemy import select

from fabkit.auth import Role
from fabkit.events import CloudEvent, encode_data, to_kafka_headers
from fabkit.models import OutboxMessage
from fabkit.oidc_testing import TestIdentities
from inventory.events.published import (
    UnitRegistered,
    UnitSnapshot,
    UnitUpdated,
    VacancyClosed,
    VacancyOpened,
)
from leasing.cli import migrate
from leasing.domain import luhn_valid
from leasing.main import create_app
from leasing.service import calls
from leasing.settings import LeasingSettings

UNIT_TOPIC = "inventory.unit.events"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/leasing.db"
    server = request.getfixturevalue("postgres_server")
    name = f"lea_{uuid.uuid4().hex[:12]}"
    server.create_database(name)
    return str(server.url(name))


_PROVIDER: list[TestIdentities] = []


@pytest.fixture(autouse=True)
def _identity_provider(identities: TestIdentities) -> None:
    """Every app under test verifies the tokens of the session's real Keycloak."""
    _PROVIDER[:] = [identities]


def provider() -> TestIdentities:
    return _PROVIDER[0]


def make_settings(database_url: str, bootstrap: str, **overrides: Any) -> LeasingSettings:
    # API tests feed unit events through the runner directly; a consumer group of their own
    # would read every unit event other tests left on the shared broker.
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": database_url,
        "kafka_bootstrap": bootstrap,
        "outbox_poll_interval_s": 0.5,
        "consumer_group": f"leasing-test-{uuid.uuid4().hex[:8]}",
        "run_consumers": False,
        "gauge_refresh_s": 0.5,
        "oidc_issuer": provider().issuer,
        **overrides,
    }
    return LeasingSettings(**values)


def siret() -> str:
    """A fresh SIRET that passes the Luhn check (never La Poste's SIREN)."""
    body = "9" + f"{uuid.uuid4().int % 10**12:012d}"
    return next(body + str(d) for d in range(10) if luhn_valid(body + str(d)))


@dataclass
class Record:
    """Just what the consumer runner reads of a Kafka record."""

    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]
    partition: int = 0
    offset: int = 0


def unit_event(payload: Any, unit_id: str, event_id: str | None = None) -> CloudEvent:
    event = CloudEvent.of(payload, source="/fabrique/inventory", subject=unit_id)
    return event.model_copy(update={"id": event_id}) if event_id else event


def record_of(event: CloudEvent, topic: str = UNIT_TOPIC) -> Record:
    return Record(
        topic=topic,
        key=(event.subject or "").encode(),
        value=encode_data(event),
        headers=to_kafka_headers(event),
    )


@dataclass
class FakeUnit:
    """A unit as inventory would publish it; `version` moves like inventory's."""

    landlord_id: str
    site_kind: str = "hotel_industriel"
    allowed_trades: list[str] = field(default_factory=lambda: ["ceramics", "woodwork"])
    surface_m2: float = 100.0
    rent_eur_m2_year: float = 120.0
    unit_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    site_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    status: str = "unavailable"
    version: int = 1
    vacancy_id: str | None = None

    def snapshot(self) -> UnitSnapshot:
        return UnitSnapshot(
            unit_id=self.unit_id,
            site_id=self.site_id,
            landlord_id=self.landlord_id,
            landlord_name="RIVP",
            reference=f"L{self.unit_id[:4]}",
            floor=1,
            surface_m2=self.surface_m2,
            ceiling_height_m=4.0,
            floor_load_kg_m2=800.0,
            power_kva=36.0,
            goods_lift=True,
            loading_dock=False,
            extraction=False,
            step_free_access=True,
            allowed_trades=sorted(self.allowed_trades),
            use_class="production",
            rent_eur_m2_year=self.rent_eur_m2_year,
            charges_eur_m2_year=20.0,
            status=self.status,
            available_from=date(2026, 1, 1),
            site_name="Hôtel industriel Berlier",
            site_kind=self.site_kind,
            address="26 rue Bruneseau",
            postcode="75013",
            arrondissement=13,
            latitude=None,
            longitude=None,
            opens_for_visits=True,
            version=self.version,
        )

    def registered(self) -> CloudEvent:
        return unit_event(UnitRegistered(unit=self.snapshot()), self.unit_id)

    def open(self) -> list[CloudEvent]:
        """The events of a PATCH to available: updated, then vacancy_opened (same version)."""
        self.status, self.version = "available", self.version + 1
        self.vacancy_id = str(uuid.uuid4())
        opened = VacancyOpened(
            vacancy_id=self.vacancy_id, opened_at=datetime.now(UTC), unit=self.snapshot()
        )
        return [
            unit_event(UnitUpdated(unit=self.snapshot(), changed=["status"]), self.unit_id),
            unit_event(opened, self.unit_id),
        ]

    def close(self, status: str = "leased") -> list[CloudEvent]:
        """The events of a PATCH away from available: updated, then vacancy_closed."""
        assert self.vacancy_id is not None
        self.status, self.version = status, self.version + 1
        closed = VacancyClosed(
            vacancy_id=self.vacancy_id,
            unit_id=self.unit_id,
            site_id=self.site_id,
            status=status,
            closed_at=datetime.now(UTC),
            version=self.version,
        )
        self.vacancy_id = None
        return [
            unit_event(UnitUpdated(unit=self.snapshot(), changed=["status"]), self.unit_id),
            unit_event(closed, self.unit_id),
        ]


class Api:
    """An httpx client on the app, tokens of the session's Keycloak (real grants), and
    inventory's events on tap."""

    def __init__(self, client: httpx.AsyncClient, app: FastAPI, settings: LeasingSettings) -> None:
        self.client = client
        self.app = app
        self.settings = settings
        self.identities = provider()
        self.admin = self.identities.headers(Role.ADMIN, "admin-1")

    @staticmethod
    def auth(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def landlord(self, landlord_id: str | None = None) -> tuple[str, dict[str, str]]:
        """A landlord integration's token (client credentials, landlord_id claim)."""
        landlord_id = landlord_id or str(uuid.uuid4())
        return landlord_id, self.identities.headers(Role.LANDLORD, landlord_id)

    def artisan(self, subject: str | None = None) -> tuple[str, dict[str, str]]:
        """A new (or the given) artisan account with a verified e-mail, and its token."""
        subject, token = self.identities.subject_and_token(Role.ARTISAN, subject)
        return subject, self.auth(token)

    @property
    def sessions(self) -> Any:
        return self.app.state.runtime.sessions

    async def feed(self, *events: CloudEvent) -> None:
        """Apply events through the service's consumer runner, as if read from Kafka."""
        runner = self.app.state.runtime.consumers[0]
        for event in events:
            await runner.process(record_of(event), None)

    async def vacant_unit(self, landlord_id: str, **fields: Any) -> FakeUnit:
        unit = FakeUnit(landlord_id=landlord_id, **fields)
        await self.feed(unit.registered(), *unit.open())
        return unit

    async def register(
        self, subject: str | None = None, **fields: Any
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """A new artisan account (or ``subject``'s) registers its profile; its token's headers."""
        artisan_id, headers = self.artisan(subject)
        body = {
            "display_name": "Camille Roux",
            "business_name": "Roux Céramique",
            "siret": siret(),
            "trades": ["ceramics"],
            "business_created_on": "2024-06-01",
            "legal_form": "micro_entreprise",
            "labels": ["fabrique_a_paris"],
            "contact_email": "camille@example.org",
            **fields,
        }
        r = await self.client.post("/v1/artisans", json=body, headers=headers)
        assert r.status_code == 201, r.text
        data = r.json()
        assert data["id"] == artisan_id, data
        return data, headers

    async def apply(self, headers: dict[str, str], unit_id: str, **fields: Any) -> dict[str, Any]:
        body = {
            "unit_id": unit_id,
            "project": "Stoneware for Paris restaurants, two kilns.",
            **fields,
        }
        r = await self.client.post("/v1/applications", json=body, headers=headers)
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]

    async def close_call(self, call_id: str) -> dict[str, Any]:
        """Close a call now: its closing date moved a second ahead (PATCH, as its landlord
        could), then the closing worker's pass at that instant freezes the ranking."""
        r = await self.client.get(f"/v1/calls/{call_id}")
        assert r.status_code == 200, r.text
        if r.json()["status"] != "open":
            return r.json()  # type: ignore[no-any-return]
        closes_at = datetime.now(UTC) + timedelta(seconds=1)
        r = await self.client.patch(
            f"/v1/calls/{call_id}",
            json={"closes_at": closes_at.isoformat()},
            headers={**self.admin, "If-Match": r.headers["ETag"]},
        )
        assert r.status_code == 200, r.text
        current = (await self.app.state.catalogues.current()).catalogue
        await calls.tick(self.sessions, current, now=closes_at)
        r = await self.client.get(f"/v1/calls/{call_id}")
        assert r.json()["status"] == "closed", r.text
        return r.json()  # type: ignore[no-any-return]

    async def offer(
        self, headers: dict[str, str], application_id: str, **fields: Any
    ) -> httpx.Response:
        """Offer on an application, closing its call first if still open (offers come once
        the ranking is frozen)."""
        r = await self.client.get(f"/v1/applications/{application_id}", headers=self.admin)
        if r.status_code == 200 and r.json()["call"] and r.json()["call"]["status"] == "open":
            await self.close_call(r.json()["call_id"])
        today = datetime.now(UTC).date()
        body = {
            "monthly_rent_eur": 900,
            "start_date": today.isoformat(),
            "end_date": today.replace(year=today.year + 2).isoformat(),
            **fields,
        }
        return await self.client.post(
            f"/v1/applications/{application_id}/offer", json=body, headers=headers
        )

    async def outbox(self, *, key: str | None = None, topic: str | None = None) -> list[Any]:
        async with self.sessions() as session:
            stmt = select(OutboxMessage).order_by(OutboxMessage.id)
            if key:
                stmt = stmt.where(OutboxMessage.key == key)
            if topic:
                stmt = stmt.where(OutboxMessage.topic == topic)
            return list((await session.execute(stmt)).scalars().all())


@contextlib.asynccontextmanager
async def started_app(settings: LeasingSettings) -> AsyncIterator[Api]:
    """The migrated, started app (lifespan running) with a client on it."""
    await asyncio.to_thread(migrate, settings)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://leasing") as client:
            yield Api(client, app, settings)


@pytest.fixture
async def api(database_url: str, kafka_broker: Any) -> AsyncIterator[Api]:
    async with started_app(make_settings(database_url, kafka_broker.bootstrap)) as ready:
        yield ready


async def start_group_at_end(bootstrap: str, group: str, *topics: str) -> None:
    """Commit the end of `topics` for a new consumer group, so it skips what earlier tests
    left on the shared broker and reads only what this test publishes."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()
        ]
        if len(partitions) < len(topics):
            await consumer._client.force_metadata_update()
            partitions = [
                TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()
            ]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.commit(ends)
    finally:
        await consumer.stop()


async def read_events(
    bootstrap: str, topic: str, key: str, *, expect: int, timeout: float = 20.0
) -> list[Any]:
    """Every record of `topic` whose key is `key`, read from the beginning until `expect` arrive."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        found: list[Any] = []
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline and len(found) < expect:
            batch = await consumer.getmany(timeout_ms=300)
            for records in batch.values():
                found.extend(r for r in records if r.key == key.encode())
        return found
    finally:
        await consumer.stop()


def headers_of(record: Any) -> dict[str, str]:
    return {k: v.decode() for k, v in record.headers}


def data_of(record: Any) -> dict[str, Any]:
    return json.loads(record.value)  # type: ignore[no-any-return]


async def eventually(check: Any, timeout: float = 20.0, every: float = 0.2) -> Any:
    """Poll `check()` (async) until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(every)
