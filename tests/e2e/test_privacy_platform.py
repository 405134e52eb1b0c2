"""Nothing is left behind after an erasure, on the whole platform as real processes: Kafka,
Keycloak, the SMTP catcher, a webhook receiver, and the services on both engines at once —
leasing and notifications on PostgreSQL, inventory and the portal on SQLite.

Two artisans, A (to erase) and B (to keep), with strings unique to the run (name, business
name, contact e-mail, SIRET, project texts; the searches' alert address and webhook path).
A has a profile, a saved search on every channel (webhook, e-mail, feed) and the alerts of
three vacancies on each, three applications (one turned down, one open, one offered: the offer
is open) sent as the portal sends them (with an ``Idempotency-Key``), and two records in
notifications' dead-letter topic: a poison profile record on ``leasing.artisan.events`` that
carries A's name, e-mail and SIRET (dead-lettered as a withheld pointer) and a poison decision
on ``leasing.application.events`` that names A's ids. B has a profile, a search and an
application.

1. A's export from each service (``GET /v1/me/export``) holds every record made above, by id.
2. A is erased as the portal's button does it: leasing's, then notifications' ``DELETE /v1/me``.
3. ``leasing.artisan.events`` is set short on this broker (``segment.ms`` and
   ``max.compaction.lag.ms`` 1 s) and leasing seals erasures after 2 s, so the cleaner drops
   A's records within the test; the time from the erasure to a clean topic is printed.
4. A's strings are searched for, until a deadline, in every column of every table of every
   service's database (the table list read from the database), every record (key, value,
   headers) of every topic of ``deploy/topics.json`` read from the beginning (the dead-letter
   topics among them), and every service's log file: none may be found. B's strings are still
   where they belong (leasing's profile and application, the latest record of B's key), and a
   new vacancy still reaches B's search (and nothing reaches A's).
5. A's Keycloak account is deleted (the realm's admin API answers 404); B's is still there.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy.ext.asyncio import create_async_engine

from fabkit.auth import Role
from fabkit.localstack.kafka import TopicSpec, ensure_topics, load_topic_specs
from fabkit.localstack.platform import Platform

from .conftest import started_platform
from .harness import (
    FAST_DELIVERY_ENV,
    AlertBook,
    Api,
    Artisan,
    Mailbox,
    ReceiverHub,
    Subscription,
    bearer,
    check,
    eventually,
    header_map,
    keycloak_of,
    luhn_siret,
    months_later,
    producer,
    tag,
    today,
    wait_caught_up,
)
from .scenario import close_call

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

ARTISAN_TOPIC = "leasing.artisan.events"
APPLICATION_TOPIC = "leasing.application.events"
#: The compaction settings of the personal topic, shortened so the cleaner runs within the
#: test (production: an hour, docs/privacy.md "Kafka").
SHORT_COMPACTION = {
    "max.compaction.lag.ms": "1000",
    "segment.ms": "1000",
    "min.cleanable.dirty.ratio": "0.01",
}
SEAL_AFTER_S = 2
SEARCH_DEADLINE_S = 180
#: Notifications' consumer: its group, its dead-letter topic and the topics it reads.
NOTIFICATIONS_TOPICS = [
    "inventory.unit.events",
    ARTISAN_TOPIC,
    APPLICATION_TOPIC,
    "leasing.lease.events",
    "leasing.call.events",
    "leasing.programme.events",
]


@pytest.fixture(scope="module")
def privacy_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """The platform on both engines: PostgreSQL for leasing and notifications, SQLite files
    for inventory and the portal (their database URL overridden); leasing seals erasures
    after 2 s and ticks its workers twice a second."""
    files = tmp_path_factory.mktemp("privacy-sqlite")
    env = {
        **FAST_DELIVERY_ENV,
        "INVENTORY_DATABASE_URL": f"sqlite+aiosqlite:///{files / 'inventory.db'}",
        "PORTAL_DATABASE_URL": f"sqlite+aiosqlite:///{files / 'portal.db'}",
        "LEASING_ERASURE_SEAL_AFTER_S": str(SEAL_AFTER_S),
        "LEASING_CALL_TICK_S": "0.5",
    }
    yield from started_platform(
        tmp_path_factory,
        "e2e-privacy",
        attempts=2,
        database="postgres",
        fixed_ports=False,
        seed=False,
        extra_env=env,
    )


# --------------------------------------------------------------------------------------------
# the people, and the strings that must go (A) or stay (B)
# --------------------------------------------------------------------------------------------


def _token() -> str:
    return uuid.uuid4().hex[:12]


@dataclass
class Person:
    """An artisan's distinctive strings (ASCII, so that a JSON or log encoding cannot hide
    them) and, once registered, their account."""

    label: str
    name: str = field(default_factory=lambda: f"Aurore Lemarchand {_token()}")
    business: str = field(default_factory=lambda: f"Verrerie Lemarchand {_token()}")
    email: str = field(default_factory=lambda: f"aurore.{_token()}@e2e.example.org")
    siret: str = field(default_factory=luhn_siret)
    projects: list[str] = field(default_factory=list)
    id: str = ""
    subscription: Subscription | None = None

    def project(self) -> str:
        text = f"Stained glass for the Goutte d'Or, kiln {_token()}, one apprentice, open days."
        self.projects.append(text)
        return text

    def needles(self) -> dict[str, str]:
        """What must not be found after the erasure: each string, and the random part of
        each (a truncated or re-cased copy still gives it away)."""
        found = {
            "name": self.name,
            "business name": self.business,
            "e-mail": self.email,
            "SIRET": self.siret,
            **{f"project {i + 1}": p for i, p in enumerate(self.projects)},
        }
        sub = self.subscription
        if sub is not None and sub.email:
            found["alert address"] = sub.email
        if sub is not None and sub.path:
            found["webhook path"] = sub.path
        tokens = {
            "name (its random part)": self.name.split()[-1],
            "business name (its random part)": self.business.split()[-1],
            "e-mail (its random part)": self.email.split("@")[0].split(".")[1],
        }
        return {**found, **tokens}


# --------------------------------------------------------------------------------------------
# searching: databases, topics, logs
# --------------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def database_urls(platform: Platform) -> dict[str, str]:
    """The database each service runs on (its ``<PREFIX>DATABASE_URL``)."""
    return {
        name: service.env[f"{service.spec.env_prefix}DATABASE_URL"]
        for name, service in platform.services.items()
    }


async def dump_database(url: str) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """(table.column row n, text) for every column of every row of every table the database
    lists (reflected, not a hand list), and the rows of each table."""
    engine = create_async_engine(url)
    cells: list[tuple[str, str]] = []
    counts: dict[str, int] = {}
    try:
        async with engine.connect() as conn:
            metadata = sa.MetaData()
            await conn.run_sync(metadata.reflect)
            assert metadata.tables, f"no tables in {url}"
            for table in metadata.sorted_tables:
                rows = (await conn.execute(sa.select(table))).mappings().all()
                counts[table.name] = len(rows)
                for n, row in enumerate(rows):
                    for column, value in row.items():
                        text = _text(value)
                        if text:
                            cells.append((f"{table.name}.{column} row {n}", text))
    finally:
        await engine.dispose()
    return cells, counts


async def read_topics(bootstrap: str, topics: list[str], timeout: float = 60) -> list[Any]:
    """Every record of ``topics``, each partition read from its beginning to its current end."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    records: list[Any] = []
    try:
        await consumer._client.force_metadata_update()
        tps = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
        assert {tp.topic for tp in tps} == set(topics), f"partitions unknown: {topics}"
        end = await consumer.end_offsets(tps)
        start = await consumer.beginning_offsets(tps)
        wanted = [tp for tp in tps if end[tp] > start[tp]]
        if not wanted:
            return []
        consumer.assign(wanted)
        await consumer.seek_to_beginning(*wanted)
        deadline = time.monotonic() + timeout
        left = set(wanted)
        while left:
            batch = await consumer.getmany(*left, timeout_ms=500)
            for tp, items in batch.items():
                records += [r for r in items if r.offset < end[tp]]
            for tp in list(left):
                if await consumer.position(tp) >= end[tp]:
                    left.discard(tp)
            assert time.monotonic() < deadline, f"could not read {sorted(map(str, left))}"
    finally:
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await consumer.stop()
    return records


def record_cells(records: list[Any]) -> list[tuple[str, str]]:
    cells = []
    for r in records:
        where = f"{r.topic}[{r.partition}]@{r.offset}"
        cells.append((f"{where} key", _text(r.key)))
        cells.append((f"{where} value", _text(r.value)))
        cells.append((f"{where} headers", json.dumps(header_map(r), ensure_ascii=False)))
    return cells


def log_cells(platform: Platform) -> list[tuple[str, str]]:
    processes = [*platform.services.values()]
    processes += [r for replicas in platform.replicas.values() for r in replicas]
    logs: list[Path] = [p.log_path for p in processes]
    assert logs and all(p.is_file() for p in logs), logs
    return [(f"log {p.name}", p.read_text(encoding="utf-8", errors="replace")) for p in logs]


def hits(cells: list[tuple[str, str]], needles: dict[str, str]) -> list[str]:
    found = []
    for where, text in cells:
        lowered = text.lower()
        for what, needle in needles.items():
            if needle.lower() in lowered:
                found.append(f"{what} in {where}")
    return found


@dataclass
class Search:
    """One pass over everything: where A's strings were found, and which of B's were."""

    databases: list[str]
    topics: list[str]
    logs: list[str]
    kept: dict[str, list[str]]
    tables: dict[str, dict[str, int]]  # service -> table -> rows searched
    records: int  # records read from the topics

    @property
    def leaks(self) -> list[str]:
        return [*self.databases, *self.topics, *self.logs]


async def search_everything(platform: Platform, erased: Person, kept: Person) -> Search:
    topics = [spec.name for spec in load_topic_specs()]
    records = await read_topics(platform.broker.bootstrap, topics)
    db_cells: list[tuple[str, str]] = []
    tables: dict[str, dict[str, int]] = {}
    for service, url in database_urls(platform).items():
        cells, tables[service] = await dump_database(url)
        db_cells += [(f"{service} {where}", text) for where, text in cells]
    topic_cells = record_cells(records)
    logs = log_cells(platform)
    keep = {"name": kept.name, "project": kept.projects[0]}
    return Search(
        databases=hits(db_cells, erased.needles()),
        topics=hits(topic_cells, erased.needles()),
        logs=hits(logs, erased.needles()),
        kept={
            "databases": hits(db_cells, keep),
            "topics": hits(topic_cells, keep),
        },
        tables=tables,
        records=len(records),
    )


# --------------------------------------------------------------------------------------------
# the scenario
# --------------------------------------------------------------------------------------------


def poison_headers(type_: str, subject: str) -> list[tuple[str, bytes]]:
    return [
        ("ce_specversion", b"1.0"),
        ("ce_id", str(uuid.uuid4()).encode()),
        ("ce_source", b"/e2e/privacy"),
        ("ce_type", type_.encode()),
        ("ce_time", datetime.now().astimezone().isoformat().encode()),
        ("ce_subject", subject.encode()),
        ("content-type", b"application/json"),
    ]


class Scene:
    """The platform's APIs as the test's landlord, artisans and admin use them."""

    def __init__(self, platform: Platform, client: httpx.AsyncClient) -> None:
        self.platform = platform
        self.api = Api(platform, client)
        self.client = client

    def token(self, person: Person) -> str:
        return self.api.identities.token(Role.ARTISAN, person.id)

    async def register(self, person: Person, trade: str) -> None:
        start = today()
        body = {
            "display_name": person.name,
            "business_name": person.business,
            "siret": person.siret,
            "trades": [trade],
            "business_created_on": start.replace(year=start.year - 2, day=1).isoformat(),
            "legal_form": "scop",
            "labels": [],
            "contact_email": person.email,
        }
        subject, token = await asyncio.to_thread(
            self.api.identities.subject_and_token, Role.ARTISAN
        )
        made = check(await self.api.write("POST", "leasing", "/v1/artisans", token, json=body), 201)
        assert made["id"] == subject
        person.id = subject

    async def apply(self, person: Person, unit_id: str) -> dict[str, Any]:
        """As the portal applies: with an Idempotency-Key."""
        return check(  # type: ignore[no-any-return]
            await self.api.write(
                "POST", "leasing", "/v1/applications", self.token(person),
                json={"unit_id": unit_id, "project": person.project()},
                headers={"Idempotency-Key": str(uuid.uuid4())},
            ),
            201,
        )  # fmt: skip

    async def get(self, service: str, path: str, person: Person) -> Any:
        url = self.api.url(service, path)
        return check(await self.client.get(url, headers=bearer(self.token(person))), 200)


async def _open(scene: Scene, landlord: str, unit_id: str) -> str:
    opened = check(await scene.api.set_status(landlord, unit_id, "available"), 200)

    async def listed() -> Any:
        found = await scene.api.leasing_unit(unit_id)
        return found and found["vacancy_id"] == opened["vacancy_id"]

    await eventually(listed, timeout=60, what="leasing to list the vacancy")
    return str(opened["vacancy_id"])


async def _dead_letters(bootstrap: str) -> dict[tuple[str, int, int], dict[str, str]]:
    return {
        (h.get("dlq_source_topic", ""), int(h.get("dlq_source_partition", "-1")),
         int(h.get("dlq_source_offset", "-1"))): h
        for h in (header_map(r) for r in await read_topics(bootstrap, ["notifications.dlq"]))
    }  # fmt: skip


async def test_an_erased_artisan_is_found_nowhere(
    privacy_platform: Platform, receiver_hub: ReceiverHub, capsys: pytest.CaptureFixture[str]
) -> None:
    platform = privacy_platform
    bootstrap = platform.broker.bootstrap
    assert platform.postgres is not None and platform.mail is not None
    urls = database_urls(platform)
    engines = {n: u.split(":", 1)[0] for n, u in urls.items()}
    assert engines["leasing"].startswith("postgresql") and engines["notifications"].startswith(
        "postgresql"
    ), engines
    assert engines["inventory"].startswith("sqlite") and engines["portal"].startswith("sqlite")
    declared = next(s for s in load_topic_specs() if s.name == ARTISAN_TOPIC)
    short = {**dict(declared.configs), **SHORT_COMPACTION}
    await ensure_topics(
        bootstrap, [TopicSpec(ARTISAN_TOPIC, declared.partitions, declared.retention_ms,
                              tuple(short.items()))]
    )  # fmt: skip

    async with httpx.AsyncClient(timeout=30) as client:
        scene = Scene(platform, client)
        api = scene.api
        trade = tag("erasure")
        _, landlord = await api.new_landlord()
        site = await api.new_site(landlord, arrondissement=18)
        units = [
            await api.new_unit(landlord, site["id"], trades=[trade], surface=60) for _ in range(4)
        ]
        a, b = Person("A"), Person("B")
        await scene.register(a, trade)
        await scene.register(b, trade)
        await wait_caught_up(bootstrap, "notifications", [ARTISAN_TOPIC])

        # Searches: A on every channel, B by e-mail and feed; both match every unit.
        receiver = receiver_hub.make("ok")
        book = AlertBook(api, Mailbox(platform.mail.folder))
        criteria = {"trades": [trade]}
        a_artisan = _as_artisan(scene, a)
        b_artisan = _as_artisan(scene, b)
        a.subscription = book.add(
            await api.subscribe(a_artisan, criteria=criteria, receiver=receiver), receiver
        )
        b.subscription = book.add(await api.subscribe(b_artisan, criteria=criteria))

        # Three vacancies: A is alerted on each channel and applies to each; B to the second.
        vacancies = [await _open(scene, landlord, u["id"]) for u in units[:3]]
        for vacancy in vacancies:
            book.expect(vacancy)
        turned_down, still_open, offered = [await scene.apply(a, u["id"]) for u in units[:3]]
        b_application = await scene.apply(b, units[1]["id"])
        await asyncio.gather(
            close_call(api, landlord, turned_down["call_id"]),
            close_call(api, landlord, offered["call_id"]),
        )
        check(
            await api.write(
                "POST", "leasing", f"/v1/applications/{turned_down['id']}/reject", landlord,
                json={"reason": "The workshop needs a kiln extraction this unit cannot take.",
                      "ground": "technical_unfit"},
            ),
            200,
        )  # fmt: skip
        start = today()
        offer = check(
            await api.write(
                "POST", "leasing", f"/v1/applications/{offered['id']}/offer", landlord,
                json={"monthly_rent_eur": "700.00", "start_date": start.isoformat(),
                      "end_date": months_later(start, 12).isoformat()},
                headers={"Idempotency-Key": str(uuid.uuid4())},
            ),
            201,
        )  # fmt: skip

        # Dead letters about A: a profile record that notifications cannot read (its version
        # is no number) carrying A's name, e-mail and SIRET (a personal topic: withheld), and
        # a decision naming A's ids.
        async with producer(bootstrap) as raw:
            personal = await raw.send_and_wait(
                ARTISAN_TOPIC,
                key=a.id.encode(),
                value=json.dumps(
                    {"artisan": {"artisan_id": a.id, "display_name": a.name,
                                 "contact_email": a.email, "siret": a.siret,
                                 "version": "not a version"}}
                ).encode(),
                headers=poison_headers("leasing.artisan.updated.v1", a.id),
            )  # fmt: skip
            ids_only = await raw.send_and_wait(
                APPLICATION_TOPIC,
                key=still_open["id"].encode(),
                value=json.dumps({"artisan_id": a.id, "poison": True}).encode(),
                headers=poison_headers("leasing.application.decided.v1", still_open["id"]),
            )
        observed = await book.settle(timeout=120, quiet=0)
        assert book.expected <= observed.delivered, book.explain(observed)
        await wait_caught_up(bootstrap, "notifications", NOTIFICATIONS_TOPICS, timeout=120)
        letters = await _dead_letters(bootstrap)
        pointer = letters.get((ARTISAN_TOPIC, personal.partition, personal.offset))
        assert pointer is not None, f"the poison profile was not dead-lettered: {letters}"
        assert pointer.get("dlq_value") == "withheld", pointer
        assert (APPLICATION_TOPIC, ids_only.partition, ids_only.offset) in letters, letters

        # 1. The export holds every record made for A, by id.
        await _check_exports(scene, a, book, [turned_down, still_open, offered], offer)

        # 2. A erases their account as the portal's button does.
        erased = time.monotonic()
        assert a.subscription is not None
        a_deliveries = {d["id"] for d in await api.deliveries(a.subscription.id)}
        # One token for both calls and the check after: the account is deleted meanwhile.
        a_token = scene.token(a)
        done = check(await api.write("DELETE", "leasing", "/v1/me", a_token), 202)
        check(await api.write("DELETE", "notifications", "/v1/me", a_token), 200, 202)
        assert done["artisan_id"] == a.id, done
        gone = await client.get(api.url("leasing", "/v1/artisans/me"), headers=bearer(a_token))
        assert gone.status_code == 410, gone.text

        # B's search still alerts; A's search is gone.
        b_artisan.token = scene.token(b)
        later = await _open(scene, landlord, units[3]["id"])
        book.watch(later)

        async def b_alerted() -> Any:
            return [
                i for i in await api.feed(b_artisan)
                if ((i.get("body") or {}).get("data") or {}).get("vacancy_id") == later
            ]  # fmt: skip

        await eventually(b_alerted, timeout=90, what="B's feed alert for the later vacancy")
        await wait_caught_up(bootstrap, "notifications", NOTIFICATIONS_TOPICS, timeout=120)
        await wait_caught_up(bootstrap, "leasing", ["inventory.unit.events"], timeout=120)

        # 3-4. Search everything until A is nowhere (the cleaner is asynchronous).
        deadline = time.monotonic() + SEARCH_DEADLINE_S
        topic_clean_after: float | None = None
        passes = 0
        while True:
            passes += 1
            found = await search_everything(platform, a, b)
            if not found.topics and topic_clean_after is None:
                topic_clean_after = time.monotonic() - erased
            if not found.leaks or time.monotonic() > deadline:
                break
            await asyncio.sleep(2)
        took = f"{topic_clean_after:.1f} s" if topic_clean_after is not None else "never"
        with capsys.disabled():
            print(
                f"\nerasure: A's strings gone from every topic {took} after the erasure "
                f"({passes} passes; the last over {len(load_topic_specs())} topics, "
                f"{found.records} records, and the logs)"
            )
            for service, tables in found.tables.items():
                rows = sum(tables.values())
                print(f"  {service} ({engines[service]}): {len(tables)} tables, {rows} rows")
        assert not found.leaks, "A's data is still found:\n" + "\n".join(found.leaks[:50])

        # What B keeps: their profile and application, in leasing and on the latest record.
        kept_in = " ".join(found.kept["databases"])
        assert "name in leasing artisan_profiles." in kept_in, (found.kept, found.tables)
        assert "project in leasing applications." in kept_in, (found.kept, found.tables)
        assert any(ARTISAN_TOPIC in w for w in found.kept["topics"]), found.kept
        profile = await scene.get("leasing", "/v1/artisans/me", b)
        assert profile["display_name"] == b.name and profile["siret"] == b.siret, profile
        mine = await scene.get("leasing", f"/v1/applications/{b_application['id']}", b)
        assert mine["project"] == b.projects[0]

        # Nothing reached A for the later vacancy, on any channel.
        assert a.subscription is not None and a.subscription.path is not None
        late_hooks = [
            h for h in receiver.hits_for([a.subscription.path])
            if ((h.payload().get("data") or {}).get("vacancy_id")) == later
        ]  # fmt: skip
        assert not late_hooks, late_hooks
        assert a.subscription.email is not None
        # A redelivery keeps its delivery's id: any other id would be a new alert.
        late_mails = [
            m.delivery_id for m in Mailbox(platform.mail.folder).to(a.subscription.email)
            if m.delivery_id not in a_deliveries
        ]  # fmt: skip
        assert not late_mails, late_mails

        # The identity provider's account went too (leasing's account deleter); B's stays.
        users = f"{keycloak_of(platform).base_url}/admin/realms/fabrique/users"
        assert await asyncio.to_thread(_keycloak_status, platform, f"{users}/{b.id}") == 200

        async def account_gone() -> bool:
            status = await asyncio.to_thread(_keycloak_status, platform, f"{users}/{a.id}")
            return status == 404

        await eventually(account_gone, timeout=90, what="A's Keycloak account to be deleted")


def _keycloak_status(platform: Platform, url: str) -> int:
    """The status of an admin REST GET, as the realm's administrator."""
    server = keycloak_of(platform)
    with httpx.Client(timeout=30) as http:
        headers = {"Authorization": f"Bearer {server.admin_token(http)}"}
        return http.get(url, headers=headers).status_code


def _as_artisan(scene: Scene, person: Person) -> Artisan:
    return Artisan(person.id, scene.token(person), person.email, [])


async def _check_exports(
    scene: Scene,
    a: Person,
    book: AlertBook,
    applications: list[dict[str, Any]],
    offer: dict[str, Any],
) -> None:
    exports = {
        name: await scene.get(name, "/v1/me/export", a)
        for name in ("inventory", "leasing", "notifications")
    }
    for name, part in exports.items():
        assert part["subject"] == a.id, (name, part)
    leasing = exports["leasing"]["records"]
    assert [p["id"] for p in leasing["profile"]] == [a.id]
    assert leasing["profile"][0]["siret"] == a.siret
    assert {x["id"] for x in applications} <= {x["id"] for x in leasing["applications"]}
    projects = {x["project"] for x in leasing["applications"]}
    assert set(a.projects) <= projects, projects
    assert offer["id"] in {x["id"] for x in leasing["leases"]}
    decided = {d["application_id"] for d in leasing["decisions"]}
    assert {applications[0]["id"], applications[2]["id"]} <= decided, leasing["decisions"]

    sub = a.subscription
    assert sub is not None
    notifications = exports["notifications"]["records"]
    assert [s["id"] for s in notifications["subscriptions"]] == [sub.id]
    feed = {str(i["id"]) for i in await scene.api.feed(_as_artisan(scene, a))}
    assert feed and feed <= {str(i["id"]) for i in notifications["feed"]}
    deliveries = {d["id"] for d in await scene.api.deliveries(sub.id)}
    channels = {d["channel"] for d in await scene.api.deliveries(sub.id)}
    assert {"webhook", "email"} <= channels, channels
    assert deliveries <= {d["id"] for d in notifications["deliveries"]}
    assert [x["artisan_id"] for x in notifications["artisan_copy"]] == [a.id]
    alerted = {k for k in book.expected if k[0] == sub.id}
    assert len(alerted) == 3 * len(sub.channels)
    print(
        f"export of A: {len(leasing['applications'])} applications, {len(leasing['leases'])} "
        f"offer(s), {len(notifications['feed'])} feed items, {len(deliveries)} deliveries, "
        f"{len(notifications['subscriptions'])} search"
    )
