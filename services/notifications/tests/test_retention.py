"""Retention in notifications (docs/privacy.md): each rule applied with an injected `now` clears
or deletes only what is past its period, on SQLite and PostgreSQL; a failing rule does not stop
the others; the admin runs the job on demand (officers read the rules); the gauge of the oldest
personal record per table; and leasing's inactivity warning e-mailed once, through the real
broker and SMTP catcher, even when the event is delivered twice."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from pydantic import ValidationError
from sqlalchemy import select, text

from fabkit.auth import Role
from fabkit.models import OutboxMessage, ProcessedEvent
from fabkit.testing import assert_problem
from notifications.events.consumed import INACTIVITY_WARNED, PRIVACY_TOPIC, InactivityWarnedIn
from notifications.models import (
    GUEST_OWNER_PREFIX,
    Artisan,
    Delivery,
    ErasedArtisan,
    FeedItem,
    GuestConfirmation,
    GuestSubscriber,
    Subscription,
)
from notifications.service.common import now as real_now
from notifications.service.inactivity import NO_COPY
from notifications.service.retention import CLEARED_NAME, CLEARED_PAYLOAD, apply_retention
from notifications.settings import NotificationsSettings

from .conftest import (
    Producer,
    Service,
    Smtp,
    Topics,
    artisan_event,
    eventually,
    make_settings,
    running,
    text_part,
)
from .test_alerts import broker_settings, known
from .test_contracts import SCHEMAS, gaps

NOW = real_now().replace(microsecond=0)
DAY = timedelta(days=1)
WARNED = "leasing.artisan.inactivity_warned.v1"


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def delivery(tag: str, status: str, created: float, **fields: Any) -> Delivery:
    values: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "event_id": f"ev-{uuid.uuid4()}",
        "recipient_key": "artisan:x",
        "channel": "email",
        "kind": "application_decided",
        "artisan_id": tag,
        "payload": {"type": "application.decided", "data": {"reason": f"secret of {tag}"}},
        "status": status,
        "attempts": 1,
        "next_attempt_at": ago(created),
        "last_error": f"HTTP 500: unknown customer {tag}",
        "last_status_code": 500,
        "traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01",
        "created_at": ago(created),
    }
    values.update(fields)
    return Delivery(**values)


def search(tag: str, status: str, updated: float) -> Subscription:
    return Subscription(
        id=str(uuid.uuid4()),
        artisan_id=tag,
        name=f"Recherche de {tag}",
        status=status,
        frequency="instant",
        criteria={},
        webhook_url=f"https://hooks.example.org/{tag}",
        webhook_secret="whsec_" + "a" * 32,
        webhook_enabled=True,
        email_address=f"{tag}@ateliers.fr",
        email_enabled=True,
        disabled_reason=f"HTTP 410 from {tag}",
        created_at=ago(updated + 10),
        updated_at=ago(updated),
    )


class Seeded:
    """Rows on each side of each rule's period: `old` must go, `young` must stay as written."""

    def __init__(self) -> None:
        self.old: dict[str, Any] = {}
        self.young: dict[str, Any] = {}

    def rows(self) -> list[Any]:
        every = [*self.old.values(), *self.young.values()]
        # Guests first: the requests refer to them.
        return sorted(every, key=lambda row: not isinstance(row, GuestSubscriber))


def seed_rows() -> Seeded:
    s = Seeded()
    old, young = s.old, s.young
    # Deliveries: 90 days after the final state.
    old["delivered"] = delivery("anna", "delivered", 95, delivered_at=ago(91))
    old["dead"] = delivery("anna", "dead", 95, next_attempt_at=ago(91))
    old["cancelled"] = delivery("anna", "cancelled", 120, next_attempt_at=ago(100))
    young["delivered"] = delivery("bob", "delivered", 95, delivered_at=ago(89))
    # created long ago, but its last attempt (a retry schedule, a redelivery) is recent
    young["dead_late"] = delivery("bob", "dead", 200, next_attempt_at=ago(10))
    young["pending"] = delivery("bob", "pending", 200)  # not final: never cleared
    # Feed: one year.
    old["feed"] = FeedItem(
        artisan_id="anna",
        delivery_id=str(uuid.uuid4()),
        kind="vacancy_alert",
        title="Atelier pour anna",
        body={"x": "anna"},
        created_at=ago(366),
    )
    young["feed"] = FeedItem(
        artisan_id="bob",
        delivery_id=str(uuid.uuid4()),
        kind="vacancy_alert",
        title="Atelier pour bob",
        body={"x": "bob"},
        created_at=ago(364),
    )
    # Guests: unconfirmed 7 days after the last request; confirmed ones stay.
    for key, status, updated in (
        ("guest_pending", "pending", 8),
        ("guest_recent", "pending", 6),
        ("guest_confirmed", "confirmed", 400),
    ):
        guest = GuestSubscriber(
            id=str(uuid.uuid4()),
            email=f"{key}-{uuid.uuid4().hex[:6]}@invites.fr",
            status=status,
            language="fr",
            created_at=ago(updated),
            updated_at=ago(updated),
        )
        (old if key == "guest_pending" else young)[key] = guest

    def request(guest: GuestSubscriber, created: float, expires: float, used: bool) -> Any:
        return GuestConfirmation(
            token_hash=uuid.uuid4().hex * 2,
            guest_id=guest.id,
            name=f"Recherche de {guest.email}",
            criteria={"arrondissements": [11]},
            language="fr",
            expires_at=ago(expires),
            used_at=ago(created) if used else None,
            created_at=ago(created),
        )

    # Confirmed guests: 30 days after their last search stopped sending e-mail.
    for key, bucket in (("guest_unsubscribed", old), ("guest_unsubscribed_recently", young)):
        bucket[key] = GuestSubscriber(
            id=str(uuid.uuid4()),
            email=f"{key}-{uuid.uuid4().hex[:6]}@invites.fr",
            status="confirmed",
            language="fr",
            created_at=ago(200),
            updated_at=ago(200),
        )

    def guest_search(guest: GuestSubscriber, updated: float, email: bool) -> Subscription:
        sub = search(GUEST_OWNER_PREFIX + guest.id, "active", updated)
        sub.webhook_url = sub.webhook_secret = None
        sub.webhook_enabled, sub.email_enabled = False, email
        return sub

    old["guest_unsubscribed_search"] = guest_search(old["guest_unsubscribed"], 31, False)
    young["guest_unsubscribed_recently_search"] = guest_search(
        young["guest_unsubscribed_recently"], 29, False
    )
    young["guest_live_search"] = guest_search(young["guest_confirmed"], 400, True)
    old["request_of_pending"] = request(old["guest_pending"], 8, 6, False)
    old["request_used"] = request(young["guest_confirmed"], 8, 6, True)
    old["request_expired"] = request(young["guest_confirmed"], 9, 7, False)
    young["request_recent"] = request(young["guest_recent"], 6, 4, False)
    young["request_open"] = request(young["guest_confirmed"], 8, -22, False)  # 30-day link
    # Deleted searches: cleared 90 days after the deletion.
    old["search_deleted"] = search("anna", "deleted", 91)
    young["search_deleted"] = search("bob", "deleted", 89)
    young["search_active"] = search("bob", "active", 400)
    # Processed events: 60 days.
    for key, days, bucket in (("processed", 61, old), ("processed", 59, young)):
        bucket[key] = ProcessedEvent(
            consumer="notifications",
            event_id=f"ev-{uuid.uuid4()}",
            event_type="inventory.unit.vacancy_opened.v1",
            outcome="applied",
            processed_at=ago(days),
        )
    # Outbox: published rows 8 days after publication; pending rows never.
    for key, published, bucket in (
        ("outbox", ago(9), old),
        ("outbox", ago(7), young),
        ("outbox_pending", None, young),
    ):
        event_id = f"ev-{uuid.uuid4()}"
        bucket[key] = OutboxMessage(
            event_id=event_id,
            topic="notifications.delivery.events",
            key="k",
            event_type="notifications.delivery.sent.v1",
            envelope={"id": event_id},
            created_at=ago(30),
            published_at=published,
        )
    # Tombstones are kept, whatever their age.
    young["tombstone"] = ErasedArtisan(
        artisan_id=f"gone-{uuid.uuid4()}", erasure_id="e-1", erased_at=ago(2000)
    )
    return s


def snapshot(row: Any) -> dict[str, Any]:
    return {name: getattr(row, name) for name in type(row).model_fields}


async def fetch(svc: Service, row: Any) -> Any:
    model = type(row)
    table = model.__table__  # type: ignore[attr-defined]
    where = [getattr(model, c.name) == getattr(row, c.name) for c in table.primary_key.columns]
    async with svc.app.state.runtime.sessions() as session:
        return (await session.execute(select(model).where(*where))).scalars().first()


def gauge(table: str) -> float | None:
    return REGISTRY.get_sample_value("fabrique_personal_data_oldest_seconds", {"table": table})


async def test_each_rule_clears_only_what_is_past_its_period(database_url: str) -> None:
    settings = make_settings(database_url, run_delivery_worker=False)
    async with running(settings) as svc:
        sessions = svc.app.state.runtime.sessions
        seeded = seed_rows()
        async with sessions() as session, session.begin():
            for row in seeded.rows():
                session.add(row)
                await session.flush()
        young = {key: snapshot(row) for key, row in seeded.young.items()}

        report = await apply_retention(sessions, NOW)

        assert report.ok, report.out()
        assert {r["rule"]: r["count"] for r in report.out()["rules"]} == {
            "delivery_content": 3,
            "feed": 1,
            "unconfirmed_guests": 1,
            "unsubscribed_guests": 1,
            "guest_requests": 2,  # the pending guest's request went with the guest
            "deleted_searches": 1,
            "visit_bookings": 0,  # tested in test_visits.py
            "processed_events": 1,
            "outbox": 1,
        }
        for key in ("delivered", "dead", "cancelled"):
            row = await fetch(svc, seeded.old[key])
            assert row.payload == CLEARED_PAYLOAD and row.last_error is None, key
            assert row.traceparent is None and row.cleared_at is not None
            # the row stays: ids, status, counts and times
            assert (row.status, row.attempts, row.last_status_code) == (key, 1, 500)
            assert row.artisan_id == "anna" and row.created_at == ago(
                95 if key != "cancelled" else 120
            )
        for key in ("feed", "guest_pending", "request_of_pending", "request_used"):
            assert await fetch(svc, seeded.old[key]) is None, key
        assert await fetch(svc, seeded.old["request_expired"]) is None
        cleared = await fetch(svc, seeded.old["search_deleted"])
        assert (cleared.email_address, cleared.webhook_url, cleared.webhook_secret) == (
            None,
            None,
            None,
        )
        assert cleared.name == CLEARED_NAME and cleared.disabled_reason is None
        assert cleared.criteria == {} and cleared.status == "deleted"
        assert await fetch(svc, seeded.old["guest_unsubscribed"]) is None
        gone = await fetch(svc, seeded.old["guest_unsubscribed_search"])
        assert (gone.status, gone.email_address, gone.name) == ("deleted", None, CLEARED_NAME)
        assert await fetch(svc, seeded.old["processed"]) is None
        assert await fetch(svc, seeded.old["outbox"]) is None
        # Everything within its period, or kept by rule, is exactly as written.
        for key, before in young.items():
            row = await fetch(svc, seeded.young[key])
            assert row is not None, key
            assert snapshot(row) == before, key

        # A second run finds nothing more to do.
        again = await apply_retention(sessions, NOW)
        assert all(r.count == 0 for r in again.results), again.out()

        # The gauge: the oldest personal record left per table, as of the run's `now`.
        assert gauge("feed_items") == pytest.approx(364 * 86_400)
        assert gauge("deliveries") == pytest.approx(200 * 86_400)  # the pending one
        assert gauge("subscriptions") == pytest.approx((400 + 10) * 86_400)
        assert gauge("guest_subscribers") == pytest.approx(400 * 86_400)
        assert gauge("guest_confirmations") == pytest.approx(8 * 86_400)
        assert gauge("outbox_messages") == pytest.approx(30 * 86_400)
        assert gauge("artisans") == 0.0


async def test_a_failing_rule_does_not_stop_the_others(sqlite_url: str) -> None:
    settings = make_settings(sqlite_url, run_delivery_worker=False)
    async with running(settings) as svc:
        sessions = svc.app.state.runtime.sessions
        seeded = seed_rows()
        async with sessions() as session, session.begin():
            for row in seeded.rows():
                session.add(row)
                await session.flush()
            # A real failure: the feed's table is gone.
            await session.execute(text("DROP TABLE feed_items"))
        report = await apply_retention(sessions, NOW)
        results = {r.rule: r for r in report.results}
        assert not report.ok
        assert results["feed"].error == "OperationalError"
        assert results["feed"].count == 0
        assert results["delivery_content"].count == 3 and results["outbox"].count == 1
        assert results["processed_events"].count == 1
        assert report.out()["ok"] is False


async def test_admins_run_the_job_officers_read_the_rules(
    database_url: str, tmp_path: Path
) -> None:
    clock = tmp_path / "clock"
    settings = make_settings(database_url, run_delivery_worker=False, clock_file=clock)
    async with running(settings) as svc:
        ids = svc.identities
        artisan, officer = svc.artisan("art-1"), ids.headers(Role.OFFICER, "officer-1")

        r = await svc.client.get("/v1/privacy/retention", headers=artisan)
        assert_problem(r, 403)
        r = await svc.client.get("/v1/privacy/retention", headers=officer)
        assert r.status_code == 200, r.text
        rules = {rule["rule"]: rule for rule in r.json()}
        assert rules["delivery_content"]["period_days"] == 90
        assert rules["feed"]["table"] == "feed_items"
        assert rules["tombstones"]["applied_by_job"] is False
        assert all(rule["legal_basis"] for rule in rules.values())
        r = await svc.client.get("/v1/privacy/retention")
        assert r.status_code == 401

        for headers in (artisan, officer):
            r = await svc.client.post("/v1/privacy/retention/run", headers=headers)
            assert_problem(r, 403)

        item = FeedItem(
            artisan_id="art-1",
            delivery_id=str(uuid.uuid4()),
            kind="vacancy_alert",
            title="Atelier",
            body={},
            created_at=real_now() - 2 * DAY,
        )
        async with svc.app.state.runtime.sessions() as session, session.begin():
            session.add(item)
        r = await svc.client.post("/v1/privacy/retention/run", headers=svc.admin)
        assert r.status_code == 200, r.text
        counts = {rule["rule"]: rule["count"] for rule in r.json()["rules"]}
        assert counts["feed"] == 0 and r.json()["ok"] is True
        assert await fetch(svc, item) is not None

        # The retention clock a year ahead (NOTIFICATIONS_CLOCK_FILE): the item is past its year.
        clock.write_text(str(365 * 86_400))
        r = await svc.client.post("/v1/privacy/retention/run", headers=svc.admin)
        assert r.status_code == 200, r.text
        counts = {rule["rule"]: rule["count"] for rule in r.json()["rules"]}
        assert counts["feed"] == 1
        assert datetime.fromisoformat(r.json()["now"]) > real_now() + 364 * DAY
        assert await fetch(svc, item) is None


def test_the_clock_file_is_refused_in_prod(tmp_path: Path) -> None:
    prod: dict[str, Any] = {
        "environment": "prod",
        "oidc_issuer": "https://auth.fabrique.paris/realms/fabrique",
        "unsubscribe_secret": "s" * 40,
    }
    NotificationsSettings(**prod)  # a valid production configuration
    with pytest.raises(ValidationError, match="NOTIFICATIONS_CLOCK_FILE"):
        NotificationsSettings(**prod, clock_file=tmp_path / "clock")


# The inactivity warning -----------------------------------------------------------------------


def warning(artisan_id: str) -> dict[str, Any]:
    """Shaped like leasing's `leasing.artisan.inactivity_warned.v1` (ids and dates only)."""
    return {
        "artisan_id": artisan_id,
        "warned_at": "2027-01-05T03:00:00+00:00",
        "erasure_due_at": "2027-02-04T03:00:00+00:00",
        "last_active_at": "2025-01-05T10:00:00+00:00",
    }


async def test_the_inactivity_warning_is_mailed_once_in_french_then_english(
    database_url: str, kafka_broker: Any, topics: Topics, producer: Producer, smtp: Smtp
) -> None:
    privacy_topic = topics.privacy  # this test's own (the conftest's Topics makes one)
    settings = broker_settings(
        database_url,
        kafka_broker,
        topics,
        smtp_host=smtp.host,
        smtp_port=smtp.port,
        portal_base_url="https://fabrique.paris.test",
    )
    person, unknown = f"art-{uuid.uuid4().hex[:6]}", f"art-{uuid.uuid4().hex[:6]}"
    address = f"{person}@artisans-paris.fr"
    async with running(settings) as svc:
        await producer.send(
            topics.artisan, "leasing.artisan.registered.v1", artisan_event(person), person
        )
        await eventually(lambda: known(svc, Artisan, person))
        event_id = str(uuid.uuid4())
        first = await producer.send(
            privacy_topic, WARNED, warning(person), person, event_id=event_id
        )
        # the same event again (a redelivery): one e-mail
        await producer.send(privacy_topic, WARNED, warning(person), person, event_id=event_id)
        # leasing's other privacy events on the topic are skipped, not dead-lettered
        await producer.send(privacy_topic, "leasing.privacy.other.v1", {"x": 1}, person)
        # an artisan with no copy here: no e-mail, but the warning is on record
        await producer.send(privacy_topic, WARNED, warning(unknown), unknown)

        async def recorded() -> list[Delivery]:
            rows = await svc.deliveries(artisan_id=unknown)
            return rows if rows else []

        await eventually(lambda: _one_mail(smtp, address), timeout=30)
        (not_sent,) = await eventually(recorded)
        assert (not_sent.status, not_sent.last_error) == ("cancelled", NO_COPY)
        assert not_sent.kind == "inactivity_warning"

        (message,) = smtp.mailbox.to(address)
        assert message["Subject"] == (
            "Votre compte Fabrique sera supprimé le 4 février 2027 / "
            "Your Fabrique account will be erased on February 4, 2027"
        )
        assert message["List-Unsubscribe"] is None
        plain = text_part(message, "plain")
        french = plain.index(
            "Vous ne vous êtes pas connecté(e) à Fabrique depuis le 5 janvier 2025"
        )
        english = plain.index("You have not logged in to Fabrique since January 5, 2025")
        assert french < english
        assert "supprimés le 4 février 2027" in plain and "erased on February 4, 2027" in plain
        assert "connectez-vous avant cette date : https://fabrique.paris.test/login" in plain
        assert "log in before that date: https://fabrique.paris.test/login" in plain
        html = text_part(message, "html")
        assert 'href="https://fabrique.paris.test/login"' in html and 'lang="en"' in html

        (sent,) = await svc.deliveries(artisan_id=person, kind="inactivity_warning")
        assert (sent.status, sent.event_id, sent.channel) == ("delivered", first.id, "email")
        # No name or address in what is stored: ids and dates (the address is the copy's).
        assert address not in str(sent.payload) and "Camille" not in str(sent.payload)
        assert smtp.mailbox.to(f"{unknown}@artisans-paris.fr") == []
        assert len(smtp.mailbox.to(address)) == 1
        assert await svc.deliveries(status="dead") == []


async def _one_mail(smtp: Smtp, address: str) -> bool:
    return len(smtp.mailbox.to(address)) >= 1


def test_the_warning_email_renders_its_contract() -> None:
    from notifications.inactivity_email import inactivity_warning_email, render

    email = inactivity_warning_email(
        last_active_at=datetime.fromisoformat("2025-03-01T10:00:00+00:00"),
        warned_at=datetime.fromisoformat("2027-01-05T03:00:00+00:00"),
        erasure_due_at=datetime.fromisoformat("2027-02-01T03:00:00+00:00"),
        login_url="https://x.test/login?a=<b>",
    )
    rendered = render(email.model_dump(mode="json"))
    assert "1er février 2027" in rendered.subject and "February 1, 2027" in rendered.subject
    assert "depuis le 1er mars 2025" in rendered.text
    assert "<b>" not in rendered.html and "&lt;b&gt;" in rendered.html
    with pytest.raises(ValidationError):
        render({"subject": "x"})


def test_the_warning_is_read_as_leasing_publishes_it() -> None:
    # leasing's snapshot (contracts/schemas) and topic (deploy/topics.json): the shared contract
    root = json.loads((SCHEMAS / f"{INACTIVITY_WARNED}.json").read_text(encoding="utf-8"))
    assert gaps(InactivityWarnedIn, root, root, "$") == []
    assert root["required"] == ["artisan_id", "warned_at", "erasure_due_at", "last_active_at"]
    topics = json.loads((SCHEMAS.parents[1] / "deploy" / "topics.json").read_text())["topics"]
    (privacy,) = [t for t in topics if t["name"] == PRIVACY_TOPIC]
    assert not privacy.get("personal_data") and privacy["partitions"] == 3


async def test_a_cleared_delivery_is_not_redelivered(sqlite_url: str, receivers: Any) -> None:
    receiver = await receivers()
    async with running(make_settings(sqlite_url)) as svc:
        sub = await svc.subscribe("art-r", channels=[{"type": "webhook", "url": receiver.url}])
        old = delivery(
            "art-r",
            "dead",
            100,
            channel="webhook",
            kind="vacancy_alert",
            subscription_id=sub["id"],
            recipient_key=sub["id"],
        )
        async with svc.app.state.runtime.sessions() as session, session.begin():
            session.add(old)
        report = await apply_retention(svc.app.state.runtime.sessions, real_now())
        assert report.count("delivery_content") == 1
        r = await svc.client.post(f"/v1/admin/deliveries/{old.id}/redeliver", headers=svc.admin)
        assert_problem(r, 409, "cleared by retention", "nothing left to send")
        (row,) = await svc.deliveries(id=old.id)
        assert (row.status, row.attempts) == ("dead", old.attempts)
        assert receiver.requests == []


async def test_leasings_inactivity_erasure_is_applied_like_the_others(sqlite_url: str) -> None:
    # `requested_by: "retention"` (leasing's erasure of an inactive account) fits the audit row.
    from notifications.events.consumed import ArtisanErasedIn
    from notifications.models import Erasure
    from notifications.service.privacy import apply_erased

    async with running(make_settings(sqlite_url, run_delivery_worker=False)) as svc:
        sessions = svc.app.state.runtime.sessions
        async with sessions() as session, session.begin():
            session.add(Artisan(artisan_id="art-idle", display_name="Inès Dormante"))
        erased = ArtisanErasedIn(
            artisan_id="art-idle", erasure_id=str(uuid.uuid4()), erased_at=NOW,
            requested_by="retention",
        )  # fmt: skip
        async with sessions() as session, session.begin():
            await apply_erased(session, erased)
        async with sessions() as session:
            assert await session.get(Artisan, "art-idle") is None
            row = await session.get(Erasure, erased.erasure_id)
            assert row is not None and row.requested_by == "retention"
            assert await session.get(ErasedArtisan, "art-idle") is not None
