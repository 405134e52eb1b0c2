"""Notifications test fixtures: a migrated database (SQLite and PostgreSQL), the real broker,
a real SMTP server (aiosmtpd) and real HTTP webhook receivers on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiosmtpd.controller import Controller
from fastapi import FastAPI
from sqlalchemy import select

from fabkit.auth import Role
from fabkit.events import CloudEvent, encode_data, to_kafka_headers
from fabkit.localstack.kafka import TopicSpec, ensure_topics
from fabkit.oidc_testing import TestIdentities
from fabkit.testing import read_http_request
from notifications.cli import migrate
from notifications.main import create_app
from notifications.models import Delivery
from notifications.settings import NotificationsSettings

LOOPBACK = ["127.0.0.0/8", "::1/128"]


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/notifications.db"
    server = request.getfixturevalue("postgres_server")
    name = f"notif_{uuid.uuid4().hex[:12]}"
    server.create_database(name)
    return str(server.url(name))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/notifications.db"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# SMTP ----------------------------------------------------------------------------------------


class Mailbox:
    """What a real SMTP server (aiosmtpd) received."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(
            (
                list(envelope.rcpt_tos),
                email.message_from_bytes(envelope.content, policy=email.policy.default),
            )
        )
        return "250 Message accepted"

    def to(self, address: str) -> list[Message]:
        return [m for rcpts, m in self.messages if address in rcpts]


@dataclass
class Smtp:
    host: str
    port: int
    mailbox: Mailbox


@pytest.fixture
def smtp() -> Any:
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield Smtp(controller.hostname, controller.port, mailbox)
    finally:
        controller.stop()


def text_part(message: Message, subtype: str) -> str:
    for part in message.walk():
        if part.get_content_type() == f"text/{subtype}":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8")
    raise AssertionError(f"no text/{subtype} part")


# Webhook receivers ----------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A real HTTP/1.1 server on loopback answering from a script of status codes."""

    statuses: list[int] = field(default_factory=list)
    default_status: int = 200
    # While set, requests are held without an answer (a receiver stuck mid-delivery).
    hold: asyncio.Event | None = None
    requests: list[Received] = field(default_factory=list)
    answered: list[int] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/fabrique"

    async def start(self) -> Receiver:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await read_http_request(reader)
            if request is None:
                return
            path, headers, body = request
            self.requests.append(Received(path, headers, body))
            if self.hold is not None and self.hold.is_set():
                await asyncio.sleep(3600)
            status = self.statuses.pop(0) if self.statuses else self.default_status
            self.answered.append(status)
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
            )
            await writer.drain()
        except (asyncio.CancelledError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def receivers() -> AsyncIterator[Callable[..., Awaitable[Receiver]]]:
    made: list[Receiver] = []

    async def make(**kwargs: Any) -> Receiver:
        receiver = await Receiver(**kwargs).start()
        made.append(receiver)
        return receiver

    yield make
    for receiver in made:
        await receiver.stop()


# Topics and events ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Topics:
    unit: str
    artisan: str
    programme: str
    application: str
    lease: str
    dlq: str
    call: str
    privacy: str

    @classmethod
    def fresh(cls) -> Topics:
        # Per-test topics: a new consumer group reads from the start, and programme events
        # of other tests must not change who is eligible here (nor other tests' inactivity
        # warnings add deliveries here).
        p = f"t{uuid.uuid4().hex[:10]}"
        names = ("unit", "artisan", "programme", "app", "lease", "dlq", "call", "privacy")
        return cls(*(f"{p}.{n}" for n in names))

    def settings(self) -> dict[str, str]:
        return {
            "unit_topic": self.unit,
            "artisan_topic": self.artisan,
            "programme_topic": self.programme,
            "application_topic": self.application,
            "lease_topic": self.lease,
            "dlq_topic": self.dlq,
            "call_topic": self.call,
            "privacy_topic": self.privacy,
        }

    async def create(self, bootstrap: str) -> None:
        names = [
            *(self.unit, self.artisan, self.programme, self.application, self.lease, self.dlq),
            self.call,
            self.privacy,
        ]
        await ensure_topics(bootstrap, [TopicSpec(n, 2, 3_600_000) for n in names])


class Producer:
    """Publishes CloudEvents in binary mode, as the other services do."""

    def __init__(self, bootstrap: str) -> None:
        self._producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def send(
        self, topic: str, type_: str, data: dict[str, Any], key: str, *, event_id: str | None = None
    ) -> CloudEvent:
        event = CloudEvent(
            id=event_id or str(uuid.uuid4()),
            source="/tests",
            type=type_,
            subject=key,
            data=data,
        )
        await self._producer.send_and_wait(
            topic, value=encode_data(event), key=key.encode(), headers=to_kafka_headers(event)
        )
        return event


def unit_snapshot(**overrides: Any) -> dict[str, Any]:
    unit = {
        "unit_id": str(uuid.uuid4()),
        "site_id": str(uuid.uuid4()),
        "landlord_id": str(uuid.uuid4()),
        "landlord_name": "RIVP",
        "reference": "A12",
        "floor": 1,
        "surface_m2": 180.0,
        "ceiling_height_m": 4.2,
        "floor_load_kg_m2": 800.0,
        "power_kva": 36.0,
        "goods_lift": True,
        "loading_dock": False,
        "extraction": False,
        "step_free_access": True,
        "allowed_trades": ["woodwork", "ceramics"],
        "use_class": "production",
        "rent_eur_m2_year": 110.0,
        "charges_eur_m2_year": 25.0,
        "status": "available",
        "available_from": "2026-01-15",
        "site_name": "Hôtel industriel Berlier",
        "site_kind": "hotel_industriel",
        "address": "26 rue Bruneseau",
        "postcode": "75013",
        "arrondissement": 13,
        "latitude": 48.826,
        "longitude": 2.383,
        "opens_for_visits": True,
        "version": 3,
    }
    unit.update(overrides)
    return unit


def vacancy(**unit_overrides: Any) -> dict[str, Any]:
    return {
        "vacancy_id": str(uuid.uuid4()),
        "opened_at": datetime.now(UTC).isoformat(),
        "unit": unit_snapshot(**unit_overrides),
    }


def artisan_event(artisan_id: str, **overrides: Any) -> dict[str, Any]:
    artisan = {
        "artisan_id": artisan_id,
        "display_name": "Camille Martin",
        "business_name": "Atelier Martin",
        "trades": ["woodwork"],
        "business_created_on": "2024-03-01",
        "legal_form": "scop",
        "labels": ["fabrique_a_paris"],
        "contact_email": f"{artisan_id}@artisans-paris.fr",
        "registered_at": "2025-01-10T09:00:00+00:00",
        "version": 1,
    }
    artisan.update(overrides)
    return {"artisan": artisan, "changed": []}


def programme_event(
    programme_id: str, ids: list[str] | None = None, **rules: Any
) -> dict[str, Any]:
    """Shaped like leasing's `leasing.programme.published.v1`."""
    return {
        "programme": {
            "programme_id": programme_id,
            "name": f"Programme {programme_id}",
            "description": "",
            "site_kinds": rules.pop("site_kinds", ["hotel_industriel"]),
            "rules": {
                "max_business_age_years": None,
                "allowed_legal_forms": None,
                "requires_trade_match": False,
                "rent_cap_eur_m2_year": 150.0,
                "max_residency_months": 36,
                "renewable_times": 0,
                **rules,
            },
            "scoring": [],
            "max_points": 0,
        },
        "catalogue": {"version": 1, "config_hash": "x", "programme_ids": ids or [programme_id]},
        "published_at": datetime.now(UTC).isoformat(),
    }


# The service ---------------------------------------------------------------------------------


_PROVIDER: list[TestIdentities] = []


@pytest.fixture(autouse=True)
def _identity_provider(identities: TestIdentities) -> None:
    """Every app under test verifies the tokens of the session's real Keycloak."""
    _PROVIDER[:] = [identities]


def provider() -> TestIdentities:
    return _PROVIDER[0]


def make_settings(database_url: str, **overrides: Any) -> NotificationsSettings:
    values: dict[str, Any] = {
        "environment": "test",
        "oidc_issuer": provider().issuer,
        "database_url": database_url,
        "kafka_bootstrap": "127.0.0.1:9",
        "run_consumers": False,
        "run_relay": False,
        "webhook_allowed_networks": LOOPBACK,
        "webhook_timeout_s": 3.0,
        "delivery_retry_schedule_s": [0.2, 0.4, 0.8],
        "delivery_backoff_max_s": 1.0,
        "delivery_poll_interval_s": 0.1,
        "delivery_max_attempts": 4,
        "consumer_retry_backoff_s": 0.05,
        "public_base_url": "http://notifications.test",
        "smtp_port": 9,
    }
    values.update(overrides)
    return NotificationsSettings(**values)


class Service:
    """The app (lifespan running) with an httpx client, tokens of the session's Keycloak
    (real grants) and database helpers."""

    def __init__(self, app: FastAPI, client: httpx.AsyncClient, settings: NotificationsSettings):
        self.app = app
        self.client = client
        self.settings = settings
        self.identities = provider()
        self.admin = self.identities.headers(Role.ADMIN, "admin-1")

    @staticmethod
    def auth(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def artisan(self, artisan_id: str) -> dict[str, str]:
        """The token of the artisan account whose id (leasing's artisan id) is ``artisan_id``."""
        return self.identities.headers(Role.ARTISAN, artisan_id)

    async def subscribe(self, artisan_id: str, **body: Any) -> dict[str, Any]:
        payload = {"name": "Atelier bois", "channels": [{"type": "feed"}], **body}
        r = await self.client.post(
            "/v1/subscriptions", json=payload, headers=self.artisan(artisan_id)
        )
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]

    async def deliveries(self, **where: Any) -> list[Delivery]:
        async with self.app.state.runtime.sessions() as session:
            stmt = select(Delivery)
            for name, value in where.items():
                stmt = stmt.where(getattr(Delivery, name) == value)
            return list((await session.execute(stmt)).scalars().all())


@contextlib.asynccontextmanager
async def running(settings: NotificationsSettings) -> AsyncIterator[Service]:
    await asyncio.to_thread(migrate, settings)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://notifications") as c:
            yield Service(app, c, settings)


async def eventually(
    check: Callable[[], Awaitable[Any]], *, timeout: float = 20.0, every: float = 0.1
) -> Any:
    """Poll until `check` returns something truthy; fail with its last value."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while asyncio.get_running_loop().time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")


# Fresh topics on the session's broker, and a producer of leasing's and inventory's events on
# them: the consumer tests' fixtures.
@pytest.fixture
async def topics(kafka_broker: Any) -> Topics:
    fresh = Topics.fresh()
    await fresh.create(kafka_broker.bootstrap)
    return fresh


@pytest.fixture
async def producer(kafka_broker: Any) -> AsyncIterator[Producer]:
    made = Producer(kafka_broker.bootstrap)
    await made.start()
    yield made
    await made.stop()
