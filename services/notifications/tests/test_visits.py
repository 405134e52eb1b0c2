"""Workshop visits: inventory's slots (read model), public booking with an e-mail address that
never overbooks, the cancellation link, the reminder the day before and the host's cancellation
at a real SMTP server, the hosts' view, the iCalendar feed (parsed with `icalendar`), the
metrics and retention. Real database (SQLite, and PostgreSQL where concurrency matters), the
real broker for the slot events."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta
from email.message import Message
from typing import Any

import icalendar
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from fabkit.auth import Role
from fabkit.localstack.kafka import TopicSpec, ensure_topics
from fabkit.testing import assert_problem
from notifications.events.consumed import (
    VISIT_SLOT_CANCELLED,
    VISIT_SLOT_PUBLISHED,
    VisitSlotEventIn,
)
from notifications.models import ProcessedEvent, VisitBooking, VisitSlot
from notifications.service import visits
from notifications.service.retention import apply_retention
from notifications.service.visit_mail import send_due_mails

from .conftest import Producer, Service, Smtp, eventually, make_settings, running, text_part

PORTAL = "http://portal.test"
CANCEL_LINK = re.compile(re.escape(PORTAL) + r"/visites/annuler/([A-Za-z0-9_.-]+)")
FULL = "This visit is full: every place is booked. Other visits are listed at /visites."


def visit_settings(database_url: str, smtp: Smtp, **overrides: Any) -> Any:
    return make_settings(
        database_url,
        smtp_host=smtp.host,
        smtp_port=smtp.port,
        portal_base_url=PORTAL,
        visit_bookings_per_address_per_hour=50,
        **overrides,
    )


def slot_data(**overrides: Any) -> dict[str, Any]:
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    slot: dict[str, Any] = {
        "slot_id": f"slot-{uuid.uuid4().hex[:10]}",
        "site_id": "site-berlier",
        "site_name": "Hôtel industriel Berlier",
        "site_address": "26 rue Bruneseau",
        "postcode": "75013",
        "arrondissement": 13,
        "latitude": 48.826,
        "longitude": 2.383,
        "host_kind": "site",
        "host_landlord_id": "rivp",
        "host_artisan_id": None,
        "unit_id": None,
        "title": "Visite des ateliers bois",
        "description": "Trois ateliers, la cour de livraison; le monte-charge, la cour.",
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=1, minutes=30)).isoformat(),
        "capacity": 3,
        "languages": ["fr", "en"],
        "accessibility": ["wheelchair"],
        "accessibility_notes": "Ascenseur jusqu'au 3e étage.",
        "trades": ["woodwork", "ceramics"],
        "status": "scheduled",
        "version": 1,
        "a_field_inventory_adds_later": {"ignored": True},
    }
    slot.update(overrides)
    return slot


async def put_slot(
    svc: Service, event_type: str = VISIT_SLOT_PUBLISHED, reason: str | None = None, **over: Any
) -> dict[str, Any]:
    """Apply inventory's slot event with the consumer's use case (the broker test below checks
    the topic's wiring)."""
    slot = slot_data(**over)
    data = VisitSlotEventIn.model_validate({"slot": slot, "reason": reason})
    async with svc.app.state.runtime.sessions() as session, session.begin():
        await visits.apply_slot_event(session, event_type, data)
    return slot


async def book(svc: Service, slot_id: str, email: str, **body: Any) -> Any:
    return await svc.client.post(
        f"/v1/visits/{slot_id}/bookings", json={"email": email, "language": "fr", **body}
    )


def token_in(message: Message) -> str:
    found = CANCEL_LINK.search(text_part(message, "plain"))
    assert found, text_part(message, "plain")
    assert found.group(0) in text_part(message, "html")
    return found.group(1)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_visit_fills_up_refuses_the_next_booking_and_a_cancellation_frees_places(
    database_url: str, smtp: Smtp
) -> None:
    async with running(visit_settings(database_url, smtp)) as svc:
        slot = await put_slot(svc, site_id=f"site-{uuid.uuid4().hex[:6]}")
        sid = slot["slot_id"]
        full_before = sample("notifications_visit_bookings_total", outcome="full")
        booked_before = sample("notifications_visit_bookings_total", outcome="booked")

        r = await book(svc, sid, "Anna@Example.org", places=2)
        assert r.status_code == 201, r.text
        assert r.headers["cache-control"] == "no-store"
        assert r.json()["visit"]["places_left"] == 1
        assert "anna@example.org" not in r.text.lower()
        r = await book(svc, sid, "bruno@example.org", language="en")
        assert r.status_code == 201, r.text
        assert r.json()["visit"]["places_left"] == 0

        r = await book(svc, sid, "chloe@example.org")
        assert_problem(r, 409, FULL)
        r = await svc.client.get(f"/v1/visits/{sid}")
        assert r.json()["places_left"] == 0
        assert sample("notifications_visit_bookings_total", outcome="full") == full_before + 1
        assert sample("notifications_visit_bookings_total", outcome="booked") == booked_before + 2
        assert sample("notifications_visit_places_booked", site_id=slot["site_id"]) == 3

        # The confirmation, in the booking's language, carries the cancellation link.
        (anna,) = smtp.mailbox.to("anna@example.org")
        assert anna["Subject"].startswith("Visite réservée : Visite des ateliers bois")
        assert "26 rue Bruneseau, 75013 Paris" in text_part(anna, "plain")
        (bruno,) = smtp.mailbox.to("bruno@example.org")
        assert bruno["Subject"].startswith("Visit booked:")
        token = token_in(anna)

        r = await svc.client.post("/v1/visits/bookings/cancel", json={"token": token})
        assert r.status_code == 200, r.text
        assert r.json()["places_freed"] == 2
        again = await svc.client.post("/v1/visits/bookings/cancel", json={"token": token})
        assert again.status_code == 200 and again.json()["places_freed"] == 0
        r = await svc.client.post("/v1/visits/bookings/cancel", json={"token": token + "x"})
        assert_problem(r, 404, "cancellation link is not valid")
        assert sample("notifications_visit_places_booked", site_id=slot["site_id"]) == 1

        r = await svc.client.get(f"/v1/visits/{sid}")
        assert r.json()["places_left"] == 2
        r = await book(svc, sid, "chloe@example.org", places=2)
        assert r.status_code == 201, r.text
        r = await book(svc, sid, "dora@example.org")
        assert_problem(r, 409, FULL)


async def test_bookings_refused_with_a_reason_too_many_places_twice_cancelled_or_unknown(
    sqlite_url: str, smtp: Smtp
) -> None:
    async with running(visit_settings(sqlite_url, smtp)) as svc:
        sid = (await put_slot(svc, capacity=4))["slot_id"]
        assert (await book(svc, sid, "dan@example.org", places=3)).status_code == 201
        assert_problem(await book(svc, sid, "eve@example.org", places=2), 409, "Only 1 place")
        assert_problem(await book(svc, sid, "dan@example.org"), 409, "already has places")
        r = await book(svc, sid, "eve@example.org", places=5)
        assert r.status_code == 422
        assert_problem(await book(svc, "slot-unknown", "eve@example.org"), 404, "No visit")
        await put_slot(svc, VISIT_SLOT_CANCELLED, slot_id=sid, version=2, capacity=4)
        assert_problem(await book(svc, sid, "eve@example.org"), 409, "cancelled by its host")
        past = await put_slot(
            svc,
            starts_at=(datetime.now(UTC) - timedelta(hours=1)).isoformat(),
            ends_at=(datetime.now(UTC) + timedelta(minutes=30)).isoformat(),
        )
        assert_problem(await book(svc, past["slot_id"], "eve@example.org"), 409, "started")


async def test_concurrent_bookings_never_overbook(database_url: str, smtp: Smtp) -> None:
    async with running(visit_settings(database_url, smtp)) as svc:
        sid = (await put_slot(svc, capacity=5))["slot_id"]
        answers = await asyncio.gather(
            *(book(svc, sid, f"person{i}@example.org") for i in range(14))
        )
        codes = sorted(r.status_code for r in answers)
        assert codes == [201] * 5 + [409] * 9, [r.text for r in answers if r.status_code >= 500]
        for r in answers:
            if r.status_code == 409:
                assert_problem(r, 409, FULL)
        async with svc.app.state.runtime.sessions() as session:
            slot = await session.get(VisitSlot, sid)
            held = await session.execute(
                select(func.count()).where(
                    VisitBooking.slot_id == sid, VisitBooking.status == "booked"
                )
            )
        assert slot is not None and slot.booked == 5
        assert held.scalar_one() == 5
        assert len(smtp.mailbox.messages) == 5


async def test_the_reminder_goes_once_the_day_before_and_a_host_cancellation_is_mailed(
    sqlite_url: str, smtp: Smtp
) -> None:
    settings = visit_settings(sqlite_url, smtp, run_delivery_worker=False)
    async with running(settings) as svc:
        now = datetime.now(UTC)
        starts = now + timedelta(hours=40)
        slot = await put_slot(
            svc,
            starts_at=starts.isoformat(),
            ends_at=(starts + timedelta(hours=1)).isoformat(),
        )
        other = await put_slot(svc)
        assert (await book(svc, slot["slot_id"], "fanny@example.org", language="en")).is_success
        assert (await book(svc, other["slot_id"], "gus@example.org")).is_success
        sessions = svc.app.state.runtime.sessions

        # 40 hours before: too early. 20 hours before (the clock moved): the reminder, once.
        assert (await send_due_mails(sessions, settings, now)).reminded == 0
        later = now + timedelta(hours=20)
        assert (await send_due_mails(sessions, settings, later)).reminded == 1
        assert (await send_due_mails(sessions, settings, later + timedelta(hours=1))).reminded == 0
        confirmation, reminder = smtp.mailbox.to("fanny@example.org")
        assert reminder["Subject"].startswith("Reminder: visit tomorrow")
        assert token_in(reminder) == token_in(confirmation)
        assert "26 rue Bruneseau" in text_part(reminder, "plain")

        # The host cancels the other visit: its booked person is told, once, with the reason.
        await put_slot(
            svc,
            VISIT_SLOT_CANCELLED,
            reason="Dégât des eaux dans la cour.",
            slot_id=other["slot_id"],
            version=2,
        )
        report = await send_due_mails(sessions, settings, now)
        assert report.told_cancelled == 1
        assert (await send_due_mails(sessions, settings, now)).told_cancelled == 0
        _, told = smtp.mailbox.to("gus@example.org")
        assert told["Subject"].startswith("Visite annulée")
        assert "Dégât des eaux dans la cour." in text_part(told, "plain")
        async with sessions() as session:
            row = (
                await session.execute(
                    select(VisitBooking).where(VisitBooking.email == "gus@example.org")
                )
            ).scalar_one()
        assert row.status == "cancelled" and row.slot_cancel_mailed_at is not None


async def test_the_reminder_is_released_when_the_mail_server_fails(
    sqlite_url: str, smtp: Smtp
) -> None:
    settings = visit_settings(sqlite_url, smtp, run_delivery_worker=False)
    async with running(settings) as svc:
        now = datetime.now(UTC)
        starts = now + timedelta(hours=18)
        slot = await put_slot(
            svc, starts_at=starts.isoformat(), ends_at=(starts + timedelta(hours=1)).isoformat()
        )
        assert (await book(svc, slot["slot_id"], "hugo@example.org")).is_success
        broken = settings.model_copy(update={"smtp_port": 9})
        sessions = svc.app.state.runtime.sessions
        report = await send_due_mails(sessions, broken, now)
        assert (report.reminded, report.failed) == (0, 1)
        assert (await send_due_mails(sessions, settings, now)).reminded == 1
        assert len(smtp.mailbox.to("hugo@example.org")) == 2


async def test_hosts_see_their_bookings_and_only_the_host_sees_the_addresses(
    sqlite_url: str, smtp: Smtp
) -> None:
    async with running(visit_settings(sqlite_url, smtp)) as svc:
        site_visit = await put_slot(svc, host_landlord_id="rivp")
        tenant_visit = await put_slot(
            svc, host_kind="tenant", host_landlord_id="rivp", host_artisan_id="artisan-ines"
        )
        await put_slot(svc, host_landlord_id="paris-habitat")
        for sid in (site_visit["slot_id"], tenant_visit["slot_id"]):
            assert (await book(svc, sid, "jules@example.org", places=2)).is_success

        ids = svc.identities
        r = await svc.client.get("/v1/visits/hosted", headers=ids.headers(Role.LANDLORD, "rivp"))
        assert r.status_code == 200, r.text
        by_id = {item["visit"]["slot_id"]: item for item in r.json()["items"]}
        assert set(by_id) == {site_visit["slot_id"], tenant_visit["slot_id"]}
        mine = by_id[site_visit["slot_id"]]
        assert (mine["places_booked"], mine["bookings_count"]) == (2, 1)
        assert mine["bookings"][0]["email"] == "jules@example.org"
        # The tenant's visit: its count, not its visitors' addresses.
        assert by_id[tenant_visit["slot_id"]]["places_booked"] == 2
        assert by_id[tenant_visit["slot_id"]]["bookings"] == []

        r = await svc.client.get(
            "/v1/visits/hosted", headers=ids.headers(Role.ARTISAN, "artisan-ines")
        )
        (item,) = r.json()["items"]
        assert item["visit"]["slot_id"] == tenant_visit["slot_id"]
        assert item["bookings"][0]["email"] == "jules@example.org"

        other = await svc.client.get(
            "/v1/visits/hosted", headers=ids.headers(Role.LANDLORD, "someone-else")
        )
        assert other.json()["items"] == []
        assert_problem(
            await svc.client.get("/v1/visits/hosted", headers=ids.headers(Role.OFFICER, "o-1")),
            403,
        )
        assert (await svc.client.get("/v1/visits/hosted")).status_code == 401


async def test_the_list_filters_and_leaves_out_started_and_cancelled_visits(
    sqlite_url: str, smtp: Smtp
) -> None:
    async with running(visit_settings(sqlite_url, smtp)) as svc:
        soon = datetime.now(UTC) + timedelta(days=1)
        a = await put_slot(
            svc, starts_at=soon.isoformat(), ends_at=(soon + timedelta(hours=1)).isoformat()
        )
        b = await put_slot(
            svc,
            arrondissement=11,
            languages=["fr"],
            accessibility=[],
            trades=["textile"],
            starts_at=(soon + timedelta(days=5)).isoformat(),
            ends_at=(soon + timedelta(days=5, hours=1)).isoformat(),
        )
        await put_slot(svc, VISIT_SLOT_CANCELLED)
        await put_slot(
            svc,
            starts_at=(datetime.now(UTC) - timedelta(hours=2)).isoformat(),
            ends_at=(datetime.now(UTC) - timedelta(hours=1)).isoformat(),
        )

        async def ids(**params: Any) -> list[str]:
            r = await svc.client.get("/v1/visits", params=params)
            assert r.status_code == 200, r.text
            return [v["slot_id"] for v in r.json()["items"]]

        assert await ids() == [a["slot_id"], b["slot_id"]]
        assert await ids(arrondissement=11) == [b["slot_id"]]
        assert await ids(language="en") == [a["slot_id"]]
        assert await ids(accessibility="wheelchair") == [a["slot_id"]]
        assert await ids(trade="textile") == [b["slot_id"]]
        assert await ids(trade="wood") == []
        until = (soon + timedelta(days=1)).isoformat()
        assert await ids(to=until) == [a["slot_id"]]
        assert await ids(**{"from": until}) == [b["slot_id"]]
        r = await svc.client.get("/v1/visits", params={"trade": "Wood; DROP"})
        assert r.status_code == 422
        # a bare number is not read as seconds since 1970 (the fuzzer's `to=0.5`)
        r = await svc.client.get("/v1/visits", params={"to": "0.5"})
        assert r.status_code == 422 and "ISO 8601" in r.text, r.text


async def test_the_icalendar_feed_parses_with_a_standard_library(
    sqlite_url: str, smtp: Smtp
) -> None:
    async with running(visit_settings(sqlite_url, smtp)) as svc:
        a = await put_slot(
            svc,
            title="Portes ouvertes, céramique; tournage & émaillage — " + "long " * 20,
        )
        b = await put_slot(
            svc, arrondissement=11, site_address="12 rue Oberkampf", postcode="75011"
        )
        r = await svc.client.get("/v1/visits.ics")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/calendar")
        assert all(len(line) <= 75 for line in r.content.split(b"\r\n"))
        cal = icalendar.Calendar.from_ical(r.content)
        events = {str(e["UID"]): e for e in cal.walk("VEVENT")}
        assert set(events) == {f"visit-{s['slot_id']}@fabrique.paris" for s in (a, b)}
        event = events[f"visit-{a['slot_id']}@fabrique.paris"]
        assert str(event["SUMMARY"]) == a["title"]
        start = event.decoded("DTSTART")
        assert start == datetime.fromisoformat(a["starts_at"]) and start.utcoffset() == timedelta(0)
        assert event.decoded("DTEND") == datetime.fromisoformat(a["ends_at"])
        assert "26 rue Bruneseau, 75013 Paris" in str(event["LOCATION"])
        assert str(event["URL"]) == f"{PORTAL}/visites/{a['slot_id']}"

        r = await svc.client.get("/v1/visits.ics", params={"arrondissement": 11})
        (only,) = icalendar.Calendar.from_ical(r.content).walk("VEVENT")
        assert str(only["UID"]) == f"visit-{b['slot_id']}@fabrique.paris"
        # The UID is stable: an update of the slot is the same event, a later SEQUENCE.
        await put_slot(svc, **{**b, "version": 4, "title": "Nouveau titre"})
        r = await svc.client.get("/v1/visits.ics", params={"arrondissement": 11})
        (again,) = icalendar.Calendar.from_ical(r.content).walk("VEVENT")
        assert str(again["UID"]) == str(only["UID"]) and int(again["SEQUENCE"]) == 4


async def test_bookings_are_deleted_30_days_after_the_visit(sqlite_url: str, smtp: Smtp) -> None:
    async with running(visit_settings(sqlite_url, smtp)) as svc:
        sid = (await put_slot(svc))["slot_id"]
        assert (await book(svc, sid, "kim@example.org")).is_success
        sessions = svc.app.state.runtime.sessions
        now = datetime.now(UTC)
        report = await apply_retention(sessions, now + timedelta(days=20))
        assert report.count("visit_bookings") == 0
        report = await apply_retention(sessions, now + timedelta(days=34))
        assert report.ok and report.count("visit_bookings") == 1
        async with sessions() as session:
            left = await session.execute(select(func.count()).select_from(VisitBooking))
            slot = await session.get(VisitSlot, sid)
        assert left.scalar_one() == 0 and slot is not None and slot.booked == 1


async def test_slot_events_from_the_broker_build_the_read_model(
    sqlite_url: str, smtp: Smtp, kafka_broker: Any, producer: Producer
) -> None:
    topic = f"t{uuid.uuid4().hex[:10]}.visit_slot"
    await ensure_topics(kafka_broker.bootstrap, [TopicSpec(topic, 2, 3_600_000)])
    settings = visit_settings(
        sqlite_url,
        smtp,
        kafka_bootstrap=kafka_broker.bootstrap,
        run_consumers=True,
        consumer_group=f"notifications-{uuid.uuid4().hex[:8]}",
        visit_slot_topic=topic,
    )
    async with running(settings) as svc:
        slot = slot_data(capacity=8, version=2)
        key = slot["slot_id"]
        await producer.send(topic, VISIT_SLOT_PUBLISHED, {"slot": slot}, key)
        # An older version arriving late changes nothing; an unknown type is skipped.
        await producer.send(
            topic,
            "inventory.visit_slot.updated.v1",
            {"slot": {**slot, "capacity": 2, "version": 1}},
            key,
        )
        await producer.send(topic, "inventory.visit_slot.archived.v1", {"slot": slot}, key)
        last = await producer.send(
            topic,
            "inventory.visit_slot.updated.v1",
            {"slot": {**slot, "capacity": 6, "version": 3}},
            key,
        )

        async def applied() -> bool:
            async with svc.app.state.runtime.sessions() as session:
                row = await session.execute(
                    select(ProcessedEvent.event_id).where(ProcessedEvent.event_id == last.id)
                )
                return row.first() is not None

        await eventually(applied)
        r = await svc.client.get(f"/v1/visits/{key}")
        assert r.status_code == 200, r.text
        assert (r.json()["capacity"], r.json()["places_left"]) == (6, 6)
