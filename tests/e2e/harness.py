"""What the end-to-end scenarios share: API helpers, real webhook receivers, the mail catcher's
mailbox, Kafka taps, consumer-lag waits and the alert book that counts what was sent, published,
delivered, duplicated and lost.

Everything here talks to the platform the way an outsider does: over HTTP, SMTP and Kafka. The
only service data read back are the public API's answers (an admin's delivery list maps an
e-mail's ``X-Fabrique-Delivery`` id to its vacancy, because the e-mail itself does not carry it).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email
import email.policy
import hashlib
import hmac
import json
import os
import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from fabkit.auth import Role
from fabkit.localstack.platform import Platform
from fabkit.oidc_testing import TestIdentities
from fabkit.testing import read_http_request

UNIT_TOPIC = "inventory.unit.events"
VACANCY_OPENED = "inventory.unit.vacancy_opened.v1"
UNIT_UPDATED = "inventory.unit.updated.v1"
CHANNELS = ("webhook", "email", "feed")

# Notification settings every e2e platform runs with: retries in tenths of a second instead of
# minutes to hours (a short retry schedule), so "delivered after retries" and "dead after the
# last attempt" fit in a test.
FAST_DELIVERY_ENV = {
    "NOTIFICATIONS_DELIVERY_RETRY_SCHEDULE_S": "[0.2, 0.4, 0.8]",
    "NOTIFICATIONS_DELIVERY_BACKOFF_MAX_S": "1",
    "NOTIFICATIONS_DELIVERY_MAX_ATTEMPTS": "4",
    "NOTIFICATIONS_WEBHOOK_TIMEOUT_S": "2",
    # PostgreSQL: a delivery claimed by a killed process is sent again after this.
    "NOTIFICATIONS_DELIVERY_CLAIM_LEASE_S": "5",
}
MAX_ATTEMPTS = int(FAST_DELIVERY_ENV["NOTIFICATIONS_DELIVERY_MAX_ATTEMPTS"])
WEBHOOK_TIMEOUT_S = float(FAST_DELIVERY_ENV["NOTIFICATIONS_WEBHOOK_TIMEOUT_S"])


# --------------------------------------------------------------------------------------------
# scale: the CI variant by default, the full figures with FABRIQUE_E2E_SCALE=full
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scale:
    name: str
    broker_kill_changes: int
    inventory_kill_writes: int
    notifications_kill_vacancies: int
    fuzz_examples: int

    @classmethod
    def from_env(cls) -> Scale:
        name = os.environ.get("FABRIQUE_E2E_SCALE", "ci").strip().lower() or "ci"
        if name == "full":
            scale = cls("full", 500, 90, 40, 60)
        elif name == "ci":
            scale = cls("ci", 120, 30, 12, 3)
        else:
            raise ValueError(f"FABRIQUE_E2E_SCALE must be 'ci' or 'full', not {name!r}")
        changes = os.environ.get("FABRIQUE_E2E_CHANGES", "").strip()
        if changes:
            scale = cls(scale.name, int(changes), *list(asdict(scale).values())[2:])
        return scale


SCALE = Scale.from_env()


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------


_IDENTITIES: dict[str, TestIdentities] = {}
#: Keycloak servers the e2e fixtures started for a platform (by id) when the launcher does not
#: start one itself (``Platform.keycloak``).
KEYCLOAKS: dict[int, Any] = {}


def keycloak_of(platform: Platform) -> Any:
    """The platform's Keycloak server: the launcher's own, or the one the fixtures started."""
    server = getattr(platform, "keycloak", None) or KEYCLOAKS.get(id(platform))
    assert server is not None, "this platform runs no Keycloak"
    return server


def oidc_issuer(platform: Platform) -> str:
    """The issuer the platform's services trust (realm fabrique)."""
    return str(keycloak_of(platform).issuer("fabrique"))


def identities(platform: Platform) -> TestIdentities:
    """Accounts in the platform's own Keycloak (one TestIdentities per platform), tokens by
    real grants: client credentials for landlords, the password grant of a test-only client
    for people (see fabkit.oidc_testing)."""
    server = keycloak_of(platform)
    made = _IDENTITIES.get(server.base_url)
    if made is None:
        made = TestIdentities(
            server.base_url, admin_user=server.admin_user, admin_password=server.admin_password
        )
        _IDENTITIES[server.base_url] = made
    return made


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def tag(prefix: str) -> str:
    """A fresh slug usable as a trade (``^[a-z][a-z0-9_]{1,59}$``) that isolates a scenario."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def luhn_siret(rng: random.Random | None = None) -> str:
    """14 random digits passing the Luhn check (a SIRET leasing accepts)."""
    rng = rng or random.Random()
    base = [rng.randint(0, 9) for _ in range(13)]
    base[0] = rng.randint(1, 9)
    for check in range(10):
        digits = [*base, check]
        total = 0
        for i, d in enumerate(reversed(digits)):
            if i % 2 == 1:
                d *= 2
                d = d - 9 if d > 9 else d
            total += d
        if total % 10 == 0:
            return "".join(map(str, digits))
    raise AssertionError("unreachable: one check digit always fits")


async def eventually(
    probe: Callable[[], Awaitable[Any]],
    *,
    timeout: float,
    interval: float = 0.5,
    what: str,
) -> Any:
    """Await ``probe()`` until it returns something truthy; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = await probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})"
            )
        await asyncio.sleep(interval)


def check(response: httpx.Response, *expected: int) -> Any:
    assert response.status_code in expected, (
        f"{response.request.method} {response.request.url} -> {response.status_code}: "
        f"{response.text[:1000]}"
    )
    return response.json() if response.content else None


# --------------------------------------------------------------------------------------------
# the public APIs
# --------------------------------------------------------------------------------------------


@dataclass
class Artisan:
    id: str
    token: str
    email: str
    trades: list[str]


@dataclass
class Subscription:
    id: str
    artisan: Artisan
    secret: str | None
    channels: tuple[str, ...]
    email: str | None
    path: str | None


class Api:
    """The three services' HTTP APIs, as a landlord, an artisan or an admin calls them."""

    def __init__(self, platform: Platform, client: httpx.AsyncClient) -> None:
        self.platform = platform
        self.client = client
        self.identities = identities(platform)
        self.admin = self.identities.token(Role.ADMIN, "e2e-admin")
        self.sent = 0  # state-changing calls made through this object
        self.acknowledged = 0  # ... answered 2xx

    def url(self, service: str, path: str) -> str:
        return self.platform.services[service].url + path

    async def write(
        self, method: str, service: str, path: str, token: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        """A state-changing call, counted (sent, and acknowledged when 2xx)."""
        self.sent += 1
        headers = {**bearer(token), **kwargs.pop("headers", {})}
        response = await self.client.request(
            method, self.url(service, path), headers=headers, **kwargs
        )
        if 200 <= response.status_code < 300:
            self.acknowledged += 1
        return response

    def count_into(self, counts: Counts) -> None:
        counts.sent += self.sent
        counts.acknowledged += self.acknowledged

    # inventory -------------------------------------------------------------------------------
    async def new_landlord(self, name: str | None = None) -> tuple[str, str]:
        name = name or f"E2E landlord {uuid.uuid4().hex[:8]}"
        landlord = check(
            await self.write("POST", "inventory", "/v1/landlords", self.admin, json={"name": name}),
            201,
        )
        # its integration: a Keycloak client whose tokens carry this landlord_id
        token = await asyncio.to_thread(self.identities.token, Role.LANDLORD, landlord["id"])
        return landlord["id"], token

    async def new_site(
        self, landlord_token: str, *, kind: str = "hotel_industriel", arrondissement: int = 11
    ) -> dict[str, Any]:
        body = {
            "name": f"E2E site {uuid.uuid4().hex[:8]}",
            "kind": kind,
            "address": "12 rue de l'Essai",
            "postcode": f"750{arrondissement:02d}",
            "arrondissement": arrondissement,
            "opens_for_visits": True,
        }
        return check(  # type: ignore[no-any-return]
            await self.write("POST", "inventory", "/v1/sites", landlord_token, json=body), 201
        )

    async def new_unit(
        self,
        landlord_token: str,
        site_id: str,
        *,
        trades: list[str],
        reference: str | None = None,
        surface: float = 120,
        rent: float = 110,
        status: str = "unavailable",
    ) -> dict[str, Any]:
        body = {
            "reference": reference or f"U{uuid.uuid4().hex[:6].upper()}",
            "floor": 1,
            "surface_m2": surface,
            "ceiling_height_m": 4.0,
            "goods_lift": True,
            "allowed_trades": trades,
            "rent_eur_m2_year": rent,
            "charges_eur_m2_year": 20,
            "status": status,
        }
        return check(  # type: ignore[no-any-return]
            await self.write(
                "POST", "inventory", f"/v1/sites/{site_id}/units", landlord_token, json=body
            ),
            201,
        )

    async def set_status(self, landlord_token: str, unit_id: str, status: str) -> httpx.Response:
        return await self.write(
            "PATCH", "inventory", f"/v1/units/{unit_id}", landlord_token, json={"status": status}
        )

    async def unit(self, unit_id: str) -> dict[str, Any]:
        return check(await self.client.get(self.url("inventory", f"/v1/units/{unit_id}")), 200)  # type: ignore[no-any-return]

    # leasing ---------------------------------------------------------------------------------
    async def register_artisan(
        self,
        trades: list[str],
        *,
        legal_form: str = "scop",
        age_years: int = 2,
        labels: list[str] | None = None,
        name: str | None = None,
    ) -> Artisan:
        today = datetime.now(UTC).date()
        created = today.replace(year=today.year - age_years, day=min(today.day, 28))
        contact = f"artisan-{uuid.uuid4().hex[:10]}@e2e.example.org"
        body = {
            "display_name": name or f"E2E artisan {uuid.uuid4().hex[:6]}",
            "business_name": f"Atelier {uuid.uuid4().hex[:6]}",
            "siret": luhn_siret(),
            "trades": trades,
            "business_created_on": created.isoformat(),
            "legal_form": legal_form,
            "labels": labels or [],
            "contact_email": contact,
        }
        # a new account (verified e-mail) logs in and registers its profile under its id
        subject, token = await asyncio.to_thread(self.identities.subject_and_token, Role.ARTISAN)
        registered = check(
            await self.write("POST", "leasing", "/v1/artisans", token, json=body), 201
        )
        assert registered["id"] == subject, registered
        return Artisan(subject, token, contact, sorted(trades))

    async def leasing_unit(self, unit_id: str) -> dict[str, Any] | None:
        r = await self.client.get(self.url("leasing", f"/v1/units/{unit_id}"))
        return r.json() if r.status_code == 200 else None

    # notifications ---------------------------------------------------------------------------
    async def subscribe(
        self,
        artisan: Artisan,
        *,
        criteria: dict[str, Any],
        receiver: Receiver | None = None,
        email: bool = True,
        feed: bool = True,
        own_secret: bool = True,
    ) -> Subscription:
        channels: list[dict[str, Any]] = []
        path = secret = address = None
        if receiver is not None:
            path = f"/hooks/{uuid.uuid4().hex[:12]}"
            secret = new_secret() if own_secret else None
            channel: dict[str, Any] = {"type": "webhook", "url": receiver.url(path)}
            if secret:
                channel["secret"] = secret
            channels.append(channel)
        if email:
            address = f"alerts-{uuid.uuid4().hex[:10]}@e2e.example.org"
            channels.append({"type": "email", "address": address})
        if feed:
            channels.append({"type": "feed"})
        body = {"name": f"E2E search {uuid.uuid4().hex[:6]}", "criteria": criteria,
                "channels": channels}  # fmt: skip
        created = check(
            await self.write(
                "POST", "notifications", "/v1/subscriptions", artisan.token, json=body
            ),
            201,
        )
        if receiver is not None:
            assert created["webhook_secret"], "the webhook secret must be shown on creation"
            if secret is not None:
                assert created["webhook_secret"] == secret
            secret = created["webhook_secret"]
            assert path is not None
            receiver.secrets[path] = secret
        return Subscription(
            created["id"],
            artisan,
            secret,
            tuple(c["type"] for c in channels),
            address,
            path,
        )

    async def subscription(self, sub: Subscription) -> dict[str, Any]:
        return check(  # type: ignore[no-any-return]
            await self.client.get(
                self.url("notifications", f"/v1/subscriptions/{sub.id}"),
                headers=bearer(sub.artisan.token),
            ),
            200,
        )

    async def feed(self, artisan: Artisan) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        before: int | None = None
        while True:
            params: dict[str, Any] = {"limit": 100}
            if before is not None:
                params["before"] = before
            page = check(
                await self.client.get(
                    self.url("notifications", "/v1/feed"),
                    params=params,
                    headers=bearer(artisan.token),
                ),
                200,
            )
            items += page["items"]
            before = page["next_before"]
            if before is None or not page["items"]:
                return items

    async def deliveries(
        self, subscription_id: str, status: str | None = None
    ) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        offset = 0
        while True:
            params: dict[str, Any] = {
                "subscription_id": subscription_id,
                "limit": 100,
                "offset": offset,
            }
            if status:
                params["status"] = status
            page = check(
                await self.client.get(
                    self.url("notifications", "/v1/admin/deliveries"),
                    params=params,
                    headers=bearer(self.admin),
                ),
                200,
            )
            rows += page["items"]
            offset += len(page["items"])
            if not page["items"] or offset >= page["total"]:
                return rows


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


# --------------------------------------------------------------------------------------------
# webhook receivers: real HTTP servers on 127.0.0.1, in a thread of their own
# --------------------------------------------------------------------------------------------


@dataclass
class Hit:
    """One webhook request as the receiver saw it."""

    path: str
    webhook_id: str
    headers: dict[str, str]
    body: bytes
    verified: bool
    error: str | None
    at: float
    answered: int | None = None  # the status written back (None: never answered)

    def payload(self) -> dict[str, Any]:
        try:
            data = json.loads(self.body)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}


def verify_signature(secret: str, headers: dict[str, str], body: bytes) -> str | None:
    """The README's Standard Webhooks check; the error, or None when the request is genuine."""
    try:
        msg_id, ts = headers["webhook-id"], headers["webhook-timestamp"]
        if abs(time.time() - int(ts)) > 300:
            return "stale timestamp"
        key = base64.b64decode(secret.removeprefix("whsec_"))
        expected = base64.b64encode(
            hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
        ).decode()
        for candidate in headers["webhook-signature"].split():
            version, _, signature = candidate.partition(",")
            if version == "v1" and hmac.compare_digest(expected, signature):
                return None
        return "bad signature"
    except (KeyError, ValueError) as exc:
        return f"unreadable signature headers: {exc!r}"


def flaky_failures(webhook_id: str) -> int:
    """How many 500s the flaky receiver answers a message before a 200: 0, 1 or 2 (by hash),
    so that half of all its answers are 500 and every message succeeds before the last try."""
    return hashlib.sha256(webhook_id.encode()).digest()[0] % 3


class Receiver:
    """A webhook endpoint. ``mode``: ``ok`` (200), ``flaky`` (500 then 200, see
    :func:`flaky_failures`), ``timeout`` (answers after the sender's timeout), ``gone`` (410),
    ``hold`` (200 after ``hold_s`` seconds, to have sends in flight)."""

    def __init__(self, hub: ReceiverHub, mode: str = "ok", hold_s: float = 0.0) -> None:
        self.hub = hub
        self.mode = mode
        self.hold_s = hold_s
        self.secrets: dict[str, str] = {}
        self.hits: list[Hit] = []
        self.inflight = 0
        self.port = 0
        self._attempts: Counter[str] = Counter()
        self._server: asyncio.Server | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def hits_for(self, paths: Iterable[str]) -> list[Hit]:
        wanted = set(paths)
        return [h for h in list(self.hits) if h.path in wanted]

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    def _status_for(self, webhook_id: str) -> tuple[int, float]:
        self._attempts[webhook_id] += 1
        attempt = self._attempts[webhook_id]
        if self.mode == "flaky":
            return (500 if attempt <= flaky_failures(webhook_id) else 200), 0.0
        if self.mode == "timeout":
            return 200, WEBHOOK_TIMEOUT_S + 1.5
        if self.mode == "gone":
            return 410, 0.0
        if self.mode == "hold":
            return 200, self.hold_s
        return 200, 0.0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hit: Hit | None = None
        self.inflight += 1
        try:
            request = await read_http_request(reader)
            if request is None:
                return
            path, headers, body = request
            secret = self.secrets.get(path)
            error = verify_signature(secret, headers, body) if secret else "unknown path"
            hit = Hit(path, headers.get("webhook-id", ""), headers, body, error is None, error,
                      time.time())  # fmt: skip
            self.hits.append(hit)
            status, delay = self._status_for(hit.webhook_id)
            if delay:
                await asyncio.sleep(delay)
            if delay >= WEBHOOK_TIMEOUT_S:
                return  # past the sender's timeout: it has gone, nothing was answered
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
            )
            await writer.drain()
            hit.answered = status
        except (asyncio.CancelledError, ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            self.inflight -= 1
            with contextlib.suppress(Exception):
                writer.close()


class ReceiverHub:
    """Runs every receiver on one event loop in a background thread, so they keep answering
    while a test blocks (starting a service, restarting the broker)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="webhooks", daemon=True)
        self._thread.start()
        self.receivers: list[Receiver] = []

    def make(self, mode: str = "ok", hold_s: float = 0.0) -> Receiver:
        receiver = Receiver(self, mode, hold_s)
        asyncio.run_coroutine_threadsafe(receiver._start(), self.loop).result(10)
        self.receivers.append(receiver)
        return receiver

    def close(self) -> None:
        for receiver in self.receivers:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(receiver._stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


# --------------------------------------------------------------------------------------------
# the mail catcher's mailbox (.eml files)
# --------------------------------------------------------------------------------------------


@dataclass
class Mail:
    file: str
    to: list[str]
    subject: str
    delivery_id: str
    message: EmailMessage

    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else ""  # type: ignore[no-any-return]


class Mailbox:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._seen: dict[str, Mail] = {}

    def mails(self) -> list[Mail]:
        for path in sorted(self.folder.glob("*.eml")):
            if path.name in self._seen:
                continue
            try:
                message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            except OSError:
                continue
            assert isinstance(message, EmailMessage)
            to = [a.addr_spec for a in message["To"].addresses] if message["To"] else []
            self._seen[path.name] = Mail(
                path.name,
                to,
                str(message["Subject"] or ""),
                str(message["X-Fabrique-Delivery"] or ""),
                message,
            )
        return list(self._seen.values())

    def to(self, address: str) -> list[Mail]:
        return [m for m in self.mails() if address in m.to]


# --------------------------------------------------------------------------------------------
# Kafka: taps on topics, raw producers, consumer-group lag
# --------------------------------------------------------------------------------------------


def header_map(record: Any) -> dict[str, str]:
    return {k: (v or b"").decode(errors="replace") for k, v in record.headers or ()}


async def end_offsets(bootstrap: str, topics: Iterable[str]) -> dict[TopicPartition, int]:
    topics = list(topics)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        tps = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
        assert tps, f"no partitions known for {list(topics)}"
        return dict(await consumer.end_offsets(tps))
    finally:
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await consumer.stop()


async def read_range(
    bootstrap: str, start: dict[TopicPartition, int], topics: Iterable[str], timeout: float = 60
) -> list[Any]:
    """Every record of ``topics`` from ``start`` (missing partitions: 0) to their current end."""
    topics = list(topics)
    end = await end_offsets(bootstrap, topics)
    wanted = {tp: off for tp, off in end.items() if off > start.get(tp, 0)}
    if not wanted:
        return []
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    records: list[Any] = []
    try:
        consumer.assign(list(wanted))
        for tp in wanted:
            consumer.seek(tp, start.get(tp, 0))
        deadline = time.monotonic() + timeout
        while wanted:
            batch = await consumer.getmany(*wanted, timeout_ms=500)
            for tp, items in batch.items():
                records += [r for r in items if r.offset < end[tp]]
            for tp in list(wanted):
                if await consumer.position(tp) >= end[tp]:
                    del wanted[tp]
            if wanted and time.monotonic() > deadline:
                positions = {f"{tp.topic}[{tp.partition}]": (await consumer.position(tp), end[tp])
                             for tp in wanted}  # fmt: skip
                raise AssertionError(f"could not read {topics} to their end: {positions}")
    finally:
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await consumer.stop()
    return records


class KafkaTap:
    """Remembers where topics ended when it was opened; reads what came after."""

    def __init__(self, bootstrap: str, topics: list[str], start: dict[TopicPartition, int]) -> None:
        self.bootstrap = bootstrap
        self.topics = topics
        self.start = start

    @classmethod
    async def open(cls, bootstrap: str, *topics: str) -> KafkaTap:
        return cls(bootstrap, list(topics), await end_offsets(bootstrap, topics))

    async def read(self, topic: str | None = None) -> list[Any]:
        topics = [topic] if topic else self.topics
        return await read_range(self.bootstrap, self.start, topics)


async def lag(bootstrap: str, group: str, topics: Iterable[str]) -> dict[TopicPartition, int]:
    """Records of ``topics`` the consumer group has not committed yet, by partition."""
    ends = await end_offsets(bootstrap, topics)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    behind: dict[TopicPartition, int] = {}
    for tp, end in ends.items():
        meta = committed.get(tp)
        done = meta.offset if meta is not None and meta.offset >= 0 else 0
        if end > done:
            behind[tp] = end - done
    return behind


async def wait_caught_up(
    bootstrap: str, group: str, topics: Iterable[str], timeout: float = 60
) -> None:
    topics = list(topics)

    async def probe() -> bool:
        try:
            return not await lag(bootstrap, group, topics)
        except Exception:
            return False

    await eventually(probe, timeout=timeout, what=f"consumer group {group} to catch up on {topics}")


@contextlib.asynccontextmanager
async def producer(bootstrap: str) -> Any:
    made = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await made.start()
    try:
        yield made
    finally:
        await made.stop()


# --------------------------------------------------------------------------------------------
# counts: what each scenario reports
# --------------------------------------------------------------------------------------------


@dataclass
class Counts:
    scenario: str
    database: str
    sent: int = 0  # API calls that change state (or records produced) by the test
    acknowledged: int = 0  # ... that got a 2xx
    published: int = 0  # distinct events on Kafka for the acknowledged writes
    expected: int = 0  # alerts (subscription x vacancy x channel) that must arrive
    delivered: int = 0  # distinct expected alerts observed by receivers, mailbox and feed
    duplicates: int = 0  # the same alert seen again under the same id (at-least-once)
    distinct_duplicates: int = 0  # one alert under two different ids (must be 0)
    lost: int = 0  # expected events or alerts never observed (must be 0)
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def line(self) -> dict[str, Any]:
        data = asdict(self)
        data["seconds"] = round(self.seconds, 1)
        data["scale"] = SCALE.name
        return data


# --------------------------------------------------------------------------------------------
# the alert book: what must arrive, and what did
# --------------------------------------------------------------------------------------------


@dataclass
class Observed:
    delivered: set[tuple[str, str, str]]  # (subscription, vacancy, channel) seen at least once
    redeliveries: int  # repeats under the same id
    distinct_duplicates: list[tuple[str, str, str]]  # (sub, vacancy, channel) under 2+ ids
    unverified: list[str]  # webhook requests whose signature did not verify, or that came to
    # another subscription's endpoint
    unknown_mail: int  # e-mails whose delivery id the platform does not list (yet)


class AlertBook:
    """Subscriptions of one scenario, the vacancies they must hear about, and what they got."""

    def __init__(self, api: Api, mailbox: Mailbox) -> None:
        self.api = api
        self.mailbox = mailbox
        self.subs: dict[str, Subscription] = {}
        self.receivers: dict[str, Receiver] = {}
        self.expected: set[tuple[str, str, str]] = set()
        self.vacancies: set[str] = set()
        self._delivery_index: dict[str, tuple[str, str, str]] = {}

    def add(self, sub: Subscription, receiver: Receiver | None = None) -> Subscription:
        self.subs[sub.id] = sub
        if receiver is not None:
            self.receivers[sub.id] = receiver
        return sub

    def expect(self, vacancy_id: str, subs: Iterable[Subscription] | None = None) -> None:
        self.vacancies.add(vacancy_id)
        for sub in subs if subs is not None else self.subs.values():
            for channel in sub.channels:
                self.expected.add((sub.id, vacancy_id, channel))

    def watch(self, vacancy_id: str) -> None:
        """A vacancy of this scenario no subscription may hear about twice (nor, unless
        expected, at all)."""
        self.vacancies.add(vacancy_id)

    async def _index_deliveries(self, ids: set[str]) -> None:
        missing = ids - self._delivery_index.keys()
        if not missing:
            return
        for sub_id in self.subs:
            for row in await self.api.deliveries(sub_id):
                if row["vacancy_id"]:
                    self._delivery_index[row["id"]] = (sub_id, row["vacancy_id"], row["channel"])

    async def observe(self) -> Observed:
        # (subscription, vacancy, channel) -> ids of the messages that reached the subscriber
        received: dict[tuple[str, str, str], list[str]] = defaultdict(list)
        # ... and every id ever used for it, answered or not (a retry must reuse its id)
        ids_used: dict[tuple[str, str, str], set[str]] = defaultdict(set)
        unverified: list[str] = []
        for sub_id, receiver in self.receivers.items():
            sub = self.subs[sub_id]
            for hit in receiver.hits_for([sub.path] if sub.path else []):
                payload = hit.payload()
                data = payload.get("data") or {}
                vacancy = data.get("vacancy_id")
                if payload.get("type") != "vacancy.opened" or vacancy not in self.vacancies:
                    continue
                if not hit.verified:
                    unverified.append(f"{hit.webhook_id}: {hit.error}")
                key = ((data.get("subscription") or {}).get("id", "?"), vacancy, "webhook")
                if key[0] != sub_id:
                    unverified.append(f"{hit.webhook_id}: for {key[0]} but sent to {sub_id}")
                ids_used[key].add(hit.webhook_id)
                if hit.answered is not None and 200 <= hit.answered < 300:
                    received[key].append(hit.webhook_id)
        addresses = {s.email for s in self.subs.values() if s.email}
        mails = [m for m in self.mailbox.mails() if addresses.intersection(m.to)]
        await self._index_deliveries({m.delivery_id for m in mails})
        unknown_mail = 0
        for mail in mails:
            key = self._delivery_index.get(mail.delivery_id)
            if key is None:
                unknown_mail += 1
            elif key[1] in self.vacancies:
                received[key].append(mail.delivery_id)
                ids_used[key].add(mail.delivery_id)
        artisans = {s.artisan.id: s.artisan for s in self.subs.values() if "feed" in s.channels}
        for artisan in artisans.values():
            for item in await self.api.feed(artisan):
                data = (item.get("body") or {}).get("data") or {}
                if (
                    item.get("kind") != "vacancy_alert"
                    or data.get("vacancy_id") not in self.vacancies
                    or item.get("subscription_id") not in self.subs
                ):
                    continue
                key = (item["subscription_id"], data["vacancy_id"], "feed")
                received[key].append(str(item["id"]))
                ids_used[key].add(str(item["id"]))
        return Observed(
            delivered={k for k, ids in received.items() if ids},
            redeliveries=sum(len(ids) - len(set(ids)) for ids in received.values()),
            distinct_duplicates=sorted(k for k, ids in ids_used.items() if len(ids) > 1),
            unverified=unverified,
            unknown_mail=unknown_mail,
        )

    async def settle(self, timeout: float, quiet: float = 2.0) -> Observed:
        """Wait until every expected alert was observed (or ``timeout``), then a little longer
        so that late duplicates are seen too."""
        deadline = time.monotonic() + timeout
        while True:
            observed = await self.observe()
            if self.expected <= observed.delivered or time.monotonic() > deadline:
                break
            await asyncio.sleep(1.0)
        await asyncio.sleep(quiet)
        return await self.observe()

    def fill(self, counts: Counts, observed: Observed) -> None:
        counts.expected = len(self.expected)
        counts.delivered = len(self.expected & observed.delivered)
        counts.duplicates += observed.redeliveries
        counts.distinct_duplicates += len(observed.distinct_duplicates)
        counts.lost += len(self.expected - observed.delivered)
        unexpected = observed.delivered - self.expected
        counts.extra["unexpected_alerts"] = len(unexpected)
        by_channel = Counter(k[2] for k in self.expected & observed.delivered)
        counts.extra["delivered_by_channel"] = dict(sorted(by_channel.items()))

    def explain(self, observed: Observed, limit: int = 10) -> str:
        missing = sorted(self.expected - observed.delivered)[:limit]
        unexpected = sorted(observed.delivered - self.expected)[:limit]
        return (
            f"missing {len(self.expected - observed.delivered)} (first: {missing}); "
            f"distinct duplicates {observed.distinct_duplicates[:limit]}; "
            f"unexpected {unexpected}; unverified signatures {observed.unverified[:limit]}"
        )


# --------------------------------------------------------------------------------------------
# events on Kafka for a scenario's units
# --------------------------------------------------------------------------------------------


async def published_for(tap: KafkaTap, keys: Iterable[str]) -> tuple[int, int]:
    """(distinct events, records repeating an event id) on the tap's topics since it opened,
    for records keyed by one of ``keys``."""
    wanted = set(keys)
    ids = [
        header_map(r).get("ce_id", "")
        for r in await tap.read()
        if r.key is not None and r.key.decode(errors="replace") in wanted
    ]
    return len(set(ids)), len(ids) - len(set(ids))


def today() -> date:
    return datetime.now(UTC).date()


def months_later(start: date, months: int) -> date:
    month = start.month - 1 + months
    year = start.year + month // 12
    return date(year, month % 12 + 1, min(start.day, 28))
