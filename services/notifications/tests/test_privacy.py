"""Personal data: the export holds every record kept about the caller, `DELETE /v1/me` erases
their searches, feed and deliveries' personal fields, and leasing's `leasing.artisan.erased.v1`
(through the real broker and consumer) erases the read-model copy and guest alerts too, with a
tombstone against replayed profile events. Real database (SQLite and PostgreSQL), real tokens."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import MetaData, select

from fabkit.testing import assert_problem
from notifications.events.consumed import ArtisanErasedIn
from notifications.models import (
    GUEST_OWNER_PREFIX,
    Artisan,
    Delivery,
    ErasedArtisan,
    FeedItem,
    GuestConfirmation,
    GuestSubscriber,
    ProcessedEvent,
    Subscription,
)
from notifications.service.common import now

from .conftest import (
    Producer,
    Service,
    Topics,
    artisan_event,
    eventually,
    make_settings,
    running,
)
from .test_contracts import SCHEMAS, gaps

ARTISAN = "leasing.artisan"


def broker_settings(database_url: str, kafka_broker: Any, topics: Topics) -> Any:
    return make_settings(
        database_url,
        kafka_bootstrap=kafka_broker.bootstrap,
        run_consumers=True,
        run_delivery_worker=False,
        consumer_group=f"notifications-{uuid.uuid4().hex[:8]}",
        **topics.settings(),
    )


class Person:
    """One artisan's personal data, unique to the test: what must be found, then gone."""

    def __init__(self, tag: str) -> None:
        self.id = f"art-{tag}-{uuid.uuid4().hex[:6]}"
        self.name = f"Zoé Lemaire-{tag}{uuid.uuid4().hex[:4]}"
        self.email = f"{self.id}@ateliers-prives.fr"
        self.sub_email = f"alerts-{self.id}@ateliers-prives.fr"
        self.hook = f"http://127.0.0.1:9/hooks/{self.id}"
        self.search = f"Recherche de {self.name}"
        self.guest_search = f"Invité {self.name}"
        self.error = f"HTTP 500: unknown customer {self.name}"

    @property
    def needles(self) -> list[str]:
        return [self.name, self.email, self.sub_email, self.hook, self.search, self.guest_search]


def profile(person: Person, version: int = 1, *, verified: bool = True) -> dict[str, Any]:
    return artisan_event(
        person.id,
        display_name=person.name,
        business_name=f"Atelier {person.name}",
        contact_email=person.email,
        contact_email_verified=verified,
        version=version,
    )


async def seed(svc: Service, person: Person) -> dict[str, Any]:
    """One record of every kind notifications keeps about `person` (the artisan copy comes
    from leasing's event: sent before)."""
    sub = await svc.subscribe(
        person.id,
        name=person.search,
        channels=[
            {"type": "webhook", "url": person.hook},
            {"type": "email", "address": person.sub_email},
            {"type": "feed"},
        ],
    )
    guest_id = str(uuid.uuid4())
    guest_sub = str(uuid.uuid4())
    ids = {name: str(uuid.uuid4()) for name in ("webhook", "email", "feed", "guest")}
    async with svc.app.state.runtime.sessions() as session, session.begin():
        session.add(
            GuestSubscriber(
                id=guest_id,
                email=person.email,
                status="confirmed",
                language="fr",
                confirmed_at=now(),
            )
        )
        await session.flush()
        session.add(
            GuestConfirmation(
                token_hash=uuid.uuid4().hex * 2,
                guest_id=guest_id,
                name=person.guest_search,
                criteria={"arrondissements": [13]},
                language="fr",
                expires_at=now() + timedelta(days=1),
                used_at=now(),
                subscription_id=guest_sub,
            )
        )
        session.add(
            Subscription(
                id=guest_sub,
                artisan_id=GUEST_OWNER_PREFIX + guest_id,
                name=person.guest_search,
                status="active",
                frequency="instant",
                criteria={"arrondissements": [13]},
                email_address=person.email,
                email_enabled=True,
            )
        )
        for channel in ("webhook", "email", "feed"):
            session.add(
                Delivery(
                    id=ids[channel],
                    event_id=f"ev-{uuid.uuid4()}",
                    recipient_key=sub["id"],
                    channel=channel,
                    kind="vacancy_alert",
                    artisan_id=person.id,
                    subscription_id=sub["id"],
                    payload={"subscription_name": person.search},
                    status="dead" if channel == "webhook" else "delivered",
                    attempts=2,
                    last_error=person.error if channel == "webhook" else None,
                    last_status_code=500 if channel == "webhook" else None,
                )
            )
        session.add(
            Delivery(
                id=ids["guest"],
                event_id=f"ev-{uuid.uuid4()}",
                recipient_key=guest_sub,
                channel="email",
                kind="vacancy_alert",
                artisan_id=GUEST_OWNER_PREFIX + guest_id,
                subscription_id=guest_sub,
                payload={"subscription_name": person.guest_search},
                status="pending",
            )
        )
        session.add(
            FeedItem(
                artisan_id=person.id,
                delivery_id=ids["feed"],
                subscription_id=sub["id"],
                kind="vacancy_alert",
                title=f"Pour {person.name}: 180 m²",
                body={"subscription_name": person.search},
            )
        )
    return {"subscription": sub, "guest_id": guest_id, "guest_sub": guest_sub, **ids}


async def dump(svc: Service, *, but: tuple[str, ...] = ()) -> str:
    """Every row of every table (but those named), as text: where a person's data would be."""
    rows: list[str] = []
    async with svc.app.state.runtime.sessions() as session:
        # The database's own tables (reflected): the shared SQLModel metadata also holds the
        # other services' models when their tests run in the same session.
        found = MetaData()
        await (await session.connection()).run_sync(found.reflect)
        for table in found.sorted_tables:
            if table.name in but:
                continue
            for row in (await session.execute(select(table))).all():
                rows.append(f"{table.name}: {tuple(row)!r}")
    return "\n".join(rows)


async def copy_of(svc: Service, artisan_id: str) -> Artisan | None:
    async with svc.app.state.runtime.sessions() as session:
        return await session.get(Artisan, artisan_id)


async def processed(svc: Service, event_id: str) -> bool:
    async with svc.app.state.runtime.sessions() as session:
        row = await session.execute(
            select(ProcessedEvent.event_id).where(ProcessedEvent.event_id == event_id)
        )
        return row.first() is not None


async def registered_and_seeded(
    svc: Service, producer: Producer, topics: Topics, alice: Person, bob: Person
) -> dict[str, Any]:
    """Both artisans' profiles through leasing's topic, then one record of every kind for each;
    alice's ids."""
    for person in (alice, bob):
        await producer.send(topics.artisan, f"{ARTISAN}.registered.v1", profile(person), person.id)
    await eventually(lambda: copy_of(svc, bob.id))
    await eventually(lambda: copy_of(svc, alice.id))
    seeded = await seed(svc, alice)
    await seed(svc, bob)
    return seeded


async def test_the_export_holds_every_record_and_no_secret(
    database_url: str, kafka_broker: Any, topics: Topics, producer: Producer
) -> None:
    alice, bob = Person("a"), Person("b")
    async with running(broker_settings(database_url, kafka_broker, topics)) as svc:
        seeded = await registered_and_seeded(svc, producer, topics, alice, bob)

        r = await svc.client.get("/v1/me/export", headers=svc.artisan(alice.id))
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/json")
        assert r.headers["cache-control"] == "no-store"
        assert r.headers["content-disposition"] == (
            'attachment; filename="fabrique-notifications-export.json"'
        )
        doc = r.json()
        assert doc["service"] == "notifications" and doc["subject"] == alice.id
        assert datetime.fromisoformat(doc["generated_at"]).utcoffset() == timedelta(0)
        rec = doc["records"]
        (sub,) = rec["subscriptions"]
        assert sub["id"] == seeded["subscription"]["id"] and sub["name"] == alice.search
        assert sub["webhook_url"] == alice.hook and sub["email_address"] == alice.sub_email
        assert sub["webhook_secret"] == "<kept, not exported>"
        (item,) = rec["feed"]
        assert item["delivery_id"] == seeded["feed"] and alice.name in item["title"]
        by_id = {d["id"]: d for d in rec["deliveries"]}
        assert set(by_id) == {seeded["webhook"], seeded["email"], seeded["feed"]}
        hook = by_id[seeded["webhook"]]
        assert hook["status"] == "dead" and hook["attempts"] == 2
        assert hook["last_error"] == alice.error
        assert hook["target"] == {"channel": "webhook", "webhook_url": alice.hook}
        assert by_id[seeded["email"]]["target"]["email_address"] == alice.sub_email
        (artisan,) = rec["artisan_copy"]
        assert artisan["display_name"] == alice.name and artisan["contact_email"] == alice.email
        (guest,) = rec["guest_subscriptions"]
        assert guest["subscriber"]["email"] == alice.email
        assert [s["name"] for s in guest["subscriptions"]] == [alice.guest_search]
        assert guest["confirmations"][0]["token_hash"] == "<kept, not exported>"
        assert [d["id"] for d in guest["deliveries"]] == [seeded["guest"]]
        # Nothing of the other artisan.
        assert bob.id not in r.text and bob.name not in r.text and bob.email not in r.text

        # Someone with nothing here gets an empty export, not an error; a secret never shows.
        r = await svc.client.get("/v1/me/export", headers=svc.admin)
        assert r.status_code == 200 and r.json()["subject"] == "admin-1"
        assert all(v == [] for v in r.json()["records"].values())


async def test_delete_me_erases_what_is_personal_and_keeps_the_delivery_record(
    database_url: str,
    kafka_broker: Any,
    topics: Topics,
    producer: Producer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    alice, bob = Person("a"), Person("b")
    async with running(broker_settings(database_url, kafka_broker, topics)) as svc:
        seeded = await registered_and_seeded(svc, producer, topics, alice, bob)
        before = await dump(svc)

        r = await svc.client.delete("/v1/me", headers=svc.artisan(alice.id))
        assert r.status_code == 202, r.text
        answer = r.json()
        assert answer["status"] == "done" and answer["erasure_id"]
        assert {k["kind"] for k in answer["kept"]} == {"deliveries", "artisan_copy"}
        assert all(k["why"].endswith(".") for k in answer["kept"])

        after = await dump(svc)
        for gone in (alice.search, alice.hook, alice.sub_email, alice.error):
            assert gone in before and gone not in after, gone
        # Kept: the deliveries (ids, status, counts), the copy of the leasing profile.
        kept = {d.id: d for d in await svc.deliveries(artisan_id=alice.id)}
        assert set(kept) == {seeded["webhook"], seeded["email"], seeded["feed"]}
        assert kept[seeded["webhook"]].status == "dead" and kept[seeded["webhook"]].attempts == 2
        assert kept[seeded["webhook"]].last_status_code == 500
        assert all(d.payload == {"erased": True} and d.last_error is None for d in kept.values())
        assert (await copy_of(svc, alice.id)) is not None
        # The other artisan: intact.
        for still in bob.needles + [bob.error]:
            assert still in after, still

        r = await svc.client.get("/v1/me/export", headers=svc.artisan(alice.id))
        rec = r.json()["records"]
        assert rec["subscriptions"] == [] and rec["feed"] == []
        assert [e["erasure_id"] for e in rec["erasures"]] == [answer["erasure_id"]]

        # Idempotent: the same erasure again.
        again = await svc.client.delete("/v1/me", headers=svc.artisan(alice.id))
        assert again.status_code == 202 and again.json() == answer
        assert await dump(svc) == after

        log_text = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
        for needle in alice.needles + [alice.error]:
            assert needle not in log_text, needle


async def test_leasing_erasure_removes_the_copy_and_a_replayed_profile_stays_out(
    database_url: str,
    kafka_broker: Any,
    topics: Topics,
    producer: Producer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    alice, bob = Person("a"), Person("b")
    async with running(broker_settings(database_url, kafka_broker, topics)) as svc:
        seeded = await registered_and_seeded(svc, producer, topics, alice, bob)

        erasure_id = str(uuid.uuid4())
        data = {
            "artisan_id": alice.id,
            "erasure_id": erasure_id,
            "erased_at": datetime.now(UTC).isoformat(),
            "requested_by": "admin",
        }
        erased = await producer.send(topics.artisan, f"{ARTISAN}.erased.v1", data, alice.id)
        await eventually(lambda: processed(svc, erased.id))
        after = await dump(svc)
        after_without_ids = await dump(svc, but=("processed_events",))
        for needle in alice.needles + [alice.error]:
            assert needle not in after, needle
        for needle in bob.needles + [bob.error]:
            assert needle in after, needle
        async with svc.app.state.runtime.sessions() as session:
            tomb = await session.get(ErasedArtisan, alice.id)
            assert tomb is not None and tomb.erasure_id == erasure_id
            assert await session.get(GuestSubscriber, seeded["guest_id"]) is None
            guest_delivery = await session.get(Delivery, seeded["guest"])
            assert guest_delivery is not None and guest_delivery.status == "cancelled"
        assert {d.id for d in await svc.deliveries(artisan_id=alice.id)} == {
            seeded["webhook"],
            seeded["email"],
            seeded["feed"],
        }

        # The same event again (a redelivery), then the old profile event replayed from the
        # topic under a new id, then a later update: nothing comes back.
        await producer.send(
            topics.artisan, f"{ARTISAN}.erased.v1", data, alice.id, event_id=erased.id
        )
        replayed = await producer.send(
            topics.artisan, f"{ARTISAN}.registered.v1", profile(alice), alice.id
        )
        updated = await producer.send(
            topics.artisan, f"{ARTISAN}.updated.v1", profile(alice, version=5), alice.id
        )
        await eventually(lambda: processed(svc, replayed.id))
        await eventually(lambda: processed(svc, updated.id))
        assert await copy_of(svc, alice.id) is None
        # Only the ids of the events read were added.
        assert await dump(svc, but=("processed_events",)) == after_without_ids

        r = await svc.client.get("/v1/me/export", headers=svc.artisan(alice.id))
        rec = r.json()["records"]
        assert rec["artisan_copy"] == [] and rec["guest_subscriptions"] == []
        assert rec["erased_artisan"][0]["erasure_id"] == erasure_id
        assert rec["erasures"][0]["requested_by"] == "admin"
        # The other artisan's profile still applies.
        await producer.send(
            topics.artisan,
            f"{ARTISAN}.updated.v1",
            artisan_event(bob.id, display_name="Bob renamed", version=2),
            bob.id,
        )

        async def renamed() -> bool:
            copy = await copy_of(svc, bob.id)
            return copy is not None and copy.display_name == "Bob renamed"

        await eventually(renamed)
        log_text = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
        for needle in alice.needles + [alice.error]:
            assert needle not in log_text, needle


async def test_an_unverified_address_keeps_its_guest_alerts_through_an_erasure(
    database_url: str, kafka_broker: Any, topics: Topics, producer: Producer
) -> None:
    """The profile named an address the identity provider never verified for the account: the
    guest alerts under it may be someone else's, so erasing the artisan leaves them."""
    carol = Person("c")
    async with running(broker_settings(database_url, kafka_broker, topics)) as svc:
        await producer.send(
            topics.artisan, f"{ARTISAN}.registered.v1", profile(carol, verified=False), carol.id
        )
        await eventually(lambda: copy_of(svc, carol.id))
        seeded = await seed(svc, carol)
        data = {
            "artisan_id": carol.id,
            "erasure_id": str(uuid.uuid4()),
            "erased_at": datetime.now(UTC).isoformat(),
            "requested_by": "self",
        }
        erased = await producer.send(topics.artisan, f"{ARTISAN}.erased.v1", data, carol.id)
        await eventually(lambda: processed(svc, erased.id))
        assert await copy_of(svc, carol.id) is None
        async with svc.app.state.runtime.sessions() as session:
            guest = await session.get(GuestSubscriber, seeded["guest_id"])
            assert guest is not None and guest.email == carol.email
        assert carol.search not in await dump(svc)  # the account's own searches went


async def test_privacy_endpoints_need_a_token(sqlite_url: str) -> None:
    async with running(make_settings(sqlite_url)) as svc:
        for method, path in (("GET", "/v1/me/export"), ("DELETE", "/v1/me")):
            r = await svc.client.request(method, path)
            assert_problem(r, 401, "bearer token")
            r = await svc.client.request(
                method, path, headers={"Authorization": "Bearer not-a-token"}
            )
            assert r.status_code == 401
            assert r.headers["content-type"].startswith("application/problem+json")
        r = await svc.client.post("/v1/me/export", headers=svc.artisan("art-1"))
        assert r.status_code == 405


def test_the_erased_event_read_here_is_in_leasings_contract() -> None:
    path = SCHEMAS / "leasing.artisan.erased.v1.json"
    root = json.loads(path.read_text(encoding="utf-8"))
    assert gaps(ArtisanErasedIn, root, root, "$") == []
    # Ids only: no field of it could carry a name or an address.
    assert set(root["properties"]) == {"artisan_id", "erasure_id", "erased_at", "requested_by"}
