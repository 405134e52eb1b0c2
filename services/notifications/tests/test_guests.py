"""Alerts without an account: double opt-in, single-use expiring confirmations, alerts with no
eligibility check and a one-click unsubscribe, rate limits, and the takeover by an artisan
account. Real database (SQLite and PostgreSQL), the real broker, a real SMTP server."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import timedelta
from email.message import Message
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select, update

from fabkit.testing import assert_problem
from notifications.models import (
    GuestConfirmation,
    GuestSubscriber,
    ProcessedEvent,
    Subscription,
)
from notifications.service.common import now

from .conftest import (
    Producer,
    Service,
    Smtp,
    Topics,
    artisan_event,
    eventually,
    make_settings,
    programme_event,
    running,
    text_part,
    vacancy,
)

VACANCY = "inventory.unit.vacancy_opened.v1"
PORTAL = "http://portal.test"
CONFIRM_LINK = re.compile(re.escape(PORTAL) + r"/alerts/confirm/([A-Za-z0-9_-]+)")
NO_CHECK_FR = "ne vérifient pas votre éligibilité"


def guest_settings(database_url: str, smtp: Smtp, **overrides: Any) -> Any:
    return make_settings(
        database_url,
        smtp_host=smtp.host,
        smtp_port=smtp.port,
        portal_base_url=PORTAL,
        **overrides,
    )


def broker_settings(
    database_url: str, smtp: Smtp, kafka_broker: Any, topics: Topics, **overrides: Any
) -> Any:
    return guest_settings(
        database_url,
        smtp,
        kafka_bootstrap=kafka_broker.bootstrap,
        run_consumers=True,
        consumer_group=f"notifications-{uuid.uuid4().hex[:8]}",
        **topics.settings(),
        **overrides,
    )


async def ask(svc: Service, email: str, **body: Any) -> Any:
    payload = {"email": email, "criteria": {"arrondissements": [13]}, **body}
    return await svc.client.post("/v1/guest-subscriptions", json=payload)


def token_in(message: Message) -> str:
    found = CONFIRM_LINK.search(text_part(message, "plain"))
    assert found, text_part(message, "plain")
    assert found.group(0) in text_part(message, "html")
    return found.group(1)


async def processed(svc: Service, event_id: str) -> bool:
    async with svc.app.state.runtime.sessions() as session:
        row = await session.execute(
            select(ProcessedEvent.event_id).where(ProcessedEvent.event_id == event_id)
        )
        return row.first() is not None


async def publish_vacancy(svc: Service, producer: Producer, topics: Topics, **unit: Any) -> Any:
    data = vacancy(**unit)
    event = await producer.send(topics.unit, VACANCY, data, data["unit"]["unit_id"])
    await eventually(lambda: processed(svc, event.id))
    return data


async def confirm_by_mail(svc: Service, message: Message) -> dict[str, Any]:
    r = await svc.client.post(f"/v1/guest-subscriptions/confirm/{token_in(message)}")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_nothing_but_the_confirmation_before_confirming_then_alerts_and_unsubscribe(
    database_url: str, kafka_broker: Any, topics: Topics, producer: Producer, smtp: Smtp
) -> None:
    address = "Camille.Guest@Example.org"
    settings = broker_settings(database_url, smtp, kafka_broker, topics)
    async with running(settings) as svc:
        # A programme no guest could pass: guests are not filtered by eligibility.
        event = await producer.send(
            topics.programme,
            "leasing.programme.published.v1",
            programme_event("coops-only", allowed_legal_forms=["scic"]),
            "coops-only",
        )
        await eventually(lambda: processed(svc, event.id))
        r = await ask(svc, address, name="Ateliers du 13e", language="fr")
        assert r.status_code == 202, r.text
        assert r.headers["cache-control"] == "no-store"
        accepted = r.json()
        [confirmation] = smtp.mailbox.to("camille.guest@example.org")
        assert confirmation["Subject"] == "Confirmez vos alertes Fabrique"
        assert "List-Unsubscribe" not in confirmation
        assert "« Ateliers du 13e »" in text_part(confirmation, "plain")
        token = token_in(confirmation)

        # Only the token's hash is kept.
        async with svc.app.state.runtime.sessions() as session:
            [stored] = (await session.execute(select(GuestConfirmation))).scalars().all()
            [guest] = (await session.execute(select(GuestSubscriber))).scalars().all()
        assert stored.token_hash != token and len(stored.token_hash) == 64
        assert guest.email == "camille.guest@example.org" and guest.status == "pending"

        # A matching vacancy before the confirmation: nothing is sent, nothing is queued.
        early = await publish_vacancy(svc, producer, topics)
        await asyncio.sleep(0.5)
        assert await svc.deliveries(vacancy_id=early["vacancy_id"]) == []
        assert len(smtp.mailbox.messages) == 1

        # Reading the link (as a mail scanner does) changes nothing.
        for _ in range(2):
            page = await svc.client.get(f"/v1/guest-subscriptions/confirm/{token}")
            assert page.status_code == 200, page.text
            assert page.json()["status"] == "pending"
            assert page.json()["criteria"]["arrondissements"] == [13]
            assert "email" not in page.json()
        confirmed = await confirm_by_mail(svc, confirmation)
        assert confirmed["status"] == "confirmed" and confirmed["name"] == "Ateliers du 13e"
        again = await svc.client.post(f"/v1/guest-subscriptions/confirm/{token}")
        assert_problem(again, 410, "already used")
        assert_problem(
            await svc.client.get(f"/v1/guest-subscriptions/confirm/{token}"), 410, "already used"
        )

        # Asking again for a known address answers exactly as for a new one.
        r2 = await ask(svc, "camille.guest@example.org", language="fr")
        r3 = await ask(svc, "someone.else@example.org", language="fr")
        assert r2.status_code == r3.status_code == 202
        assert r2.json() == r3.json() == accepted

        # A matching vacancy after: one alert, with the no-eligibility sentence and the links.
        data = await publish_vacancy(svc, producer, topics)
        rows = await eventually(lambda: svc.deliveries(vacancy_id=data["vacancy_id"]))
        assert [(r.channel, r.artisan_id) for r in rows] == [("email", f"guest:{guest.id}")]
        assert rows[0].payload["data"]["why"]["eligibility"]["filtered"] is False
        box = "camille.guest@example.org"
        alerts = await eventually(
            lambda: _ready([m for m in smtp.mailbox.to(box) if "Atelier" in m["Subject"]])
        )
        [alert] = alerts
        assert alert["Subject"].startswith("Atelier disponible : Hôtel industriel Berlier")
        plain, html = text_part(alert, "plain"), text_part(alert, "html")
        assert NO_CHECK_FR in plain and NO_CHECK_FR in html
        assert f"{PORTAL}/login" in plain and f'href="{PORTAL}/login"' in html
        assert alert["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        unsubscribe = alert["List-Unsubscribe"].strip("<>")
        assert unsubscribe == confirmed["unsubscribe_url"] and unsubscribe in plain

        # One click (RFC 8058) stops it.
        r = await svc.client.post(urlsplit(unsubscribe).path, content=b"List-Unsubscribe=One-Click")
        assert r.status_code == 200, r.text
        before = len(smtp.mailbox.to(box))
        late = await publish_vacancy(svc, producer, topics)
        await asyncio.sleep(0.5)
        assert await svc.deliveries(vacancy_id=late["vacancy_id"]) == []
        assert len(smtp.mailbox.to(box)) == before


async def test_english_mails_and_an_unmatched_vacancy(
    sqlite_url: str, kafka_broker: Any, topics: Topics, producer: Producer, smtp: Smtp
) -> None:
    async with running(broker_settings(sqlite_url, smtp, kafka_broker, topics)) as svc:
        r = await ask(svc, "sam@example.org", language="en", criteria={"trades": ["textile"]})
        assert r.status_code == 202
        [confirmation] = smtp.mailbox.to("sam@example.org")
        assert confirmation["Subject"] == "Confirm your Fabrique alerts"
        assert "“Fabrique alert”" in text_part(confirmation, "plain")
        assert '<html lang="en">' in text_part(confirmation, "html")
        await confirm_by_mail(svc, confirmation)
        await publish_vacancy(svc, producer, topics)  # woodwork and ceramics only
        textile = await publish_vacancy(svc, producer, topics, allowed_trades=["textile"])
        await eventually(lambda: svc.deliveries(vacancy_id=textile["vacancy_id"]))
        alerts = await eventually(lambda: _ready(smtp.mailbox.to("sam@example.org")[1:]))
        [alert] = alerts
        assert alert["Subject"].startswith("Workshop available: Hôtel industriel Berlier")
        assert "do not check your eligibility" in text_part(alert, "plain")
        assert len(await svc.deliveries(channel="email")) == 1


async def test_confirmation_links_are_single_use_and_expire(sqlite_url: str, smtp: Smtp) -> None:
    async with running(guest_settings(sqlite_url, smtp)) as svc:
        assert (await ask(svc, "a@example.org")).status_code == 202
        assert (
            await ask(svc, "a@example.org", criteria={"trades": ["textile"]})
        ).status_code == 202
        first, second = smtp.mailbox.to("a@example.org")
        # The first link expires (as if 48 h had gone by); the second still works.
        async with svc.app.state.runtime.sessions() as session, session.begin():
            await session.execute(
                update(GuestConfirmation)
                .where(GuestConfirmation.created_at == select(GuestConfirmation.created_at)
                       .order_by(GuestConfirmation.created_at).limit(1).scalar_subquery())
                .values(expires_at=now() - timedelta(seconds=1))
            )  # fmt: skip
        expired = f"/v1/guest-subscriptions/confirm/{token_in(first)}"
        assert_problem(await svc.client.get(expired), 410, "expired", "ask for alerts again")
        assert_problem(await svc.client.post(expired), 410, "expired")
        confirmed = await confirm_by_mail(svc, second)
        assert confirmed["criteria"]["trades"] == ["textile"]
        real = token_in(first)
        # The real token with its last character changed (to one it is not).
        altered = real[:-1] + ("B" if real.endswith("A") else "A")
        for bad in ("nope", "x" * 300, altered):
            r = await svc.client.post(f"/v1/guest-subscriptions/confirm/{bad}")
            assert_problem(r, 404, "not valid")
        async with svc.app.state.runtime.sessions() as session:
            subs = (await session.execute(select(Subscription))).scalars().all()
        assert [(s.criteria["trades"], s.email_enabled, s.status) for s in subs] == [
            (["textile"], True, "active")
        ]


async def test_bad_requests_are_explained(sqlite_url: str, smtp: Smtp) -> None:
    async with running(guest_settings(sqlite_url, smtp)) as svc:
        assert_problem(await ask(svc, "not an address"), 422, "email")
        assert_problem(await ask(svc, "a@example.org", language="de"), 422, "language")
        r = await ask(svc, "a@example.org", criteria={"arrondissements": [21]})
        assert_problem(r, 422, "arrondissements")
        # Numbers are JSON numbers: false is not 0, nor "60" 60 (found by the schema fuzzer).
        for wrong in (False, "60"):
            r = await ask(svc, "a@example.org", criteria={"min_surface_m2": wrong})
            assert_problem(r, 422, "min_surface_m2")
        assert smtp.mailbox.messages == []


async def test_rate_limits_per_address_and_overall(sqlite_url: str, smtp: Smtp) -> None:
    settings = guest_settings(
        sqlite_url, smtp, guest_confirmations_per_address_per_hour=3, guest_requests_per_minute=6
    )
    async with running(settings) as svc:
        for _ in range(3):
            assert (await ask(svc, "Busy@Example.org")).status_code == 202
        r = await ask(svc, "busy@example.org")
        body = assert_problem(r, 429, "3 confirmation e-mails", "within the hour", "minutes")
        assert 3000 < int(r.headers["retry-after"]) <= 3600
        assert body["retry_after_s"] == int(r.headers["retry-after"])
        assert len(smtp.mailbox.to("busy@example.org")) == 3
        # Three more addresses reach the overall limit of six a minute.
        for n in range(3):
            assert (await ask(svc, f"g{n}@example.org")).status_code == 202
        r = await ask(svc, "fresh@example.org")
        assert_problem(r, 429, "Too many requests", "try again in")
        assert 0 < int(r.headers["retry-after"]) <= 60
        assert smtp.mailbox.to("fresh@example.org") == []
        assert len(smtp.mailbox.messages) == 6


async def test_a_mail_server_that_refuses_leaves_no_link_behind(sqlite_url: str) -> None:
    # Port 9 (discard) has no SMTP server on loopback: the connection is refused.
    async with running(make_settings(sqlite_url, portal_base_url=PORTAL)) as svc:
        r = await ask(svc, "a@example.org")
        assert_problem(r, 503, "could not be sent", "try again")
        assert r.headers["retry-after"]
        async with svc.app.state.runtime.sessions() as session:
            assert (await session.execute(select(GuestConfirmation))).first() is None


async def test_an_account_with_the_address_takes_the_searches_over_once(
    database_url: str, kafka_broker: Any, topics: Topics, producer: Producer, smtp: Smtp
) -> None:
    address = "morgan@example.org"
    async with running(broker_settings(database_url, smtp, kafka_broker, topics)) as svc:
        event = await producer.send(
            topics.programme,
            "leasing.programme.published.v1",
            programme_event("coops", allowed_legal_forms=["scop"]),
            "coops",
        )
        await eventually(lambda: processed(svc, event.id))
        # The artisan (not yet known here) already saves one search; the guest has it too,
        # plus another one, and a third request never confirmed.
        same = {"arrondissements": [13], "trades": ["woodwork"]}
        mine = await svc.subscribe("art-m", criteria=same, channels=[{"type": "email"}])
        for criteria in (same, {"arrondissements": [13, 20]}, {"arrondissements": [1]}):
            assert (await ask(svc, address, criteria=criteria)).status_code == 202
        first, second, _ = smtp.mailbox.to(address)
        await confirm_by_mail(svc, first)
        kept = await confirm_by_mail(svc, second)
        # An account whose address differs takes nothing.
        other = await producer.send(
            topics.artisan,
            "leasing.artisan.registered.v1",
            artisan_event("art-x", contact_email="x@example.org"),
            "art-x",
        )
        await eventually(lambda: processed(svc, other.id))
        # Nor does an account that only typed the address as its contact: the identity
        # provider did not verify that it receives mail there.
        typed = await producer.send(
            topics.artisan,
            "leasing.artisan.registered.v1",
            artisan_event("art-t", contact_email=address, contact_email_verified=False),
            "art-t",
        )
        await eventually(lambda: processed(svc, typed.id))
        async with svc.app.state.runtime.sessions() as session:
            assert (await session.execute(select(GuestSubscriber))).first() is not None

        registered = await producer.send(
            topics.artisan,
            "leasing.artisan.registered.v1",
            artisan_event("art-m", contact_email="Morgan@Example.org", contact_email_verified=True),
            "art-m",
        )
        await eventually(lambda: processed(svc, registered.id))
        # The same event once more under a new id, as an update would be: nothing changes.
        replay = await producer.send(
            topics.artisan,
            "leasing.artisan.updated.v1",
            artisan_event(
                "art-m", contact_email="morgan@example.org", contact_email_verified=True, version=2
            ),
            "art-m",
        )
        await eventually(lambda: processed(svc, replay.id))

        async with svc.app.state.runtime.sessions() as session:
            assert (await session.execute(select(GuestSubscriber))).first() is None
            assert (await session.execute(select(GuestConfirmation))).first() is None
            owners = (
                await session.execute(select(Subscription.artisan_id, Subscription.status))
            ).all()
        assert sorted(owners) == [("art-m", "active"), ("art-m", "active"), ("art-m", "deleted")]
        listed = (await svc.client.get("/v1/subscriptions", headers=svc.artisan("art-m"))).json()
        assert sorted(s["id"] for s in listed["items"]) == sorted(
            [mine["id"], kept["subscription_id"]]
        )
        # The unconfirmed request is gone with the guest.
        [_, _, third] = smtp.mailbox.to(address)
        late = await svc.client.post(f"/v1/guest-subscriptions/confirm/{token_in(third)}")
        assert_problem(late, 404)

        # One vacancy both searches match: one e-mail per search that matched, eligibility
        # applied now (the artisan is a scop: Programme coops qualifies them).
        before = len(smtp.mailbox.messages)
        data = await publish_vacancy(svc, producer, topics)
        rows = await eventually(lambda: svc.deliveries(vacancy_id=data["vacancy_id"]))
        assert sorted(r.subscription_id for r in rows) == sorted(
            [mine["id"], kept["subscription_id"]]
        )
        assert all(r.payload["data"]["why"]["eligibility"]["filtered"] for r in rows)
        await eventually(lambda: _ready(len(smtp.mailbox.messages) == before + 2))
        for _, message in smtp.mailbox.messages[before:]:
            assert NO_CHECK_FR not in text_part(message, "plain")
            assert "Programme coops" in text_part(message, "plain")
        # Not eligible any more: a sarl would not be alerted (eligibility does apply).
        changed = await producer.send(
            topics.artisan,
            "leasing.artisan.updated.v1",
            artisan_event("art-m", contact_email=address, legal_form="sarl", version=3),
            "art-m",
        )
        await eventually(lambda: processed(svc, changed.id))
        later = await publish_vacancy(svc, producer, topics)
        await asyncio.sleep(0.3)
        assert await svc.deliveries(vacancy_id=later["vacancy_id"]) == []


async def _ready(value: Any) -> Any:
    return value
