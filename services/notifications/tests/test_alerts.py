"""Vacancy alerts and applicant e-mails end to end: CloudEvents produced on the real broker,
a real database (SQLite and PostgreSQL), a real SMTP server and real webhook receivers."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from sqlalchemy import select

from notifications.models import Artisan, ProcessedEvent, Programme
from notifications.webhooks import verify

from .conftest import (
    Producer,
    Receiver,
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


def broker_settings(database_url: str, kafka_broker: Any, topics: Topics, **overrides: Any):  # type: ignore[no-untyped-def]
    return make_settings(
        database_url,
        kafka_bootstrap=kafka_broker.bootstrap,
        run_consumers=True,
        consumer_group=f"notifications-{uuid.uuid4().hex[:8]}",
        **topics.settings(),
        **overrides,
    )


async def known(svc: Service, model: Any, key: str) -> Any:
    async with svc.app.state.runtime.sessions() as session:
        return await session.get(model, key)


async def publish_artisan(
    svc: Service, producer: Producer, topics: Topics, artisan_id: str, **fields: Any
) -> None:
    await producer.send(
        topics.artisan,
        "leasing.artisan.registered.v1",
        artisan_event(artisan_id, **fields),
        artisan_id,
    )
    await eventually(lambda: known(svc, Artisan, artisan_id))


async def publish_programme(
    svc: Service, producer: Producer, topics: Topics, programme_id: str, **kwargs: Any
) -> None:
    event = await producer.send(
        topics.programme,
        "leasing.programme.published.v1",
        programme_event(programme_id, **kwargs),
        programme_id,
    )

    async def applied() -> Any:
        async with svc.app.state.runtime.sessions() as session:
            p = await session.get(Programme, programme_id)
            return p is not None and p.catalogue_version == event.data["catalogue"]["version"]

    await eventually(applied)


async def test_a_vacancy_reaches_webhook_email_and_feed_exactly_once(
    database_url: str,
    kafka_broker: Any,
    topics: Topics,
    producer: Producer,
    smtp: Smtp,
    receivers: Any,
) -> None:
    receiver: Receiver = await receivers(statuses=[500, 502])
    settings = broker_settings(
        database_url, kafka_broker, topics, smtp_host=smtp.host, smtp_port=smtp.port
    )
    async with running(settings) as svc:
        await publish_programme(
            svc, producer, topics, "hi-coop", allowed_legal_forms=["scop", "scic"],
            requires_trade_match=True,
        )  # fmt: skip
        await publish_artisan(svc, producer, topics, "art-1")
        me = svc.artisan("art-1")
        sub = await svc.subscribe(
            "art-1",
            name="Bois, 13e",
            criteria={
                "arrondissements": [12, 13],
                "trades": ["woodwork"],
                "max_rent_eur_m2_year": 150,
                "min_surface_m2": 100,
                "features": ["goods_lift"],
            },
            channels=[
                {"type": "webhook", "url": receiver.url},
                {"type": "email"},
                {"type": "feed"},
            ],
        )
        data = vacancy()
        event = await producer.send(topics.unit, VACANCY, data, data["unit"]["unit_id"])
        # the same event again (a redelivery), an ignored type and a vacancy that does not match
        await producer.send(topics.unit, VACANCY, data, data["unit"]["unit_id"], event_id=event.id)
        await producer.send(
            topics.unit, "inventory.unit.updated.v1", {"unit": data["unit"], "changed": []}, "u"
        )
        other = vacancy(arrondissement=11, postcode="75011")
        await producer.send(topics.unit, VACANCY, other, other["unit"]["unit_id"])

        await eventually(lambda: _ready(receiver.answered == [500, 502, 200]))
        await eventually(lambda: _ready(smtp.mailbox.to("art-1@artisans-paris.fr")))
        await asyncio.sleep(1.0)  # room for a duplicate to show up, if there were one

        assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
        body = verify(
            sub["webhook_secret"], receiver.requests[-1].headers, receiver.requests[-1].body
        )
        assert body["type"] == "vacancy.opened"
        alert = body["data"]
        assert alert["vacancy_id"] == data["vacancy_id"]
        assert alert["unit"]["unit_id"] == data["unit"]["unit_id"]
        assert alert["subscription"] == {"id": sub["id"], "name": "Bois, 13e"}
        assert any("arrondissement 13" in c for c in alert["why"]["criteria"])
        assert any("woodwork" in c for c in alert["why"]["criteria"])
        [qualified] = alert["why"]["eligibility"]["programmes"]
        assert qualified["programme_id"] == "hi-coop"
        assert any("scop" in r for r in qualified["reasons"])

        [message] = smtp.mailbox.to("art-1@artisans-paris.fr")
        assert "Hôtel industriel Berlier" in message["Subject"]
        plain = text_part(message, "plain")
        assert "180 m²" in plain and "/v1/unsubscribe/" in plain and "Programme hi-coop" in plain
        assert "Hôtel industriel Berlier" in text_part(message, "html")

        feed = (await svc.client.get("/v1/feed", headers=me)).json()
        assert [i["kind"] for i in feed["items"]] == ["vacancy_alert"]
        assert feed["items"][0]["body"]["data"]["vacancy_id"] == data["vacancy_id"]

        rows = await svc.deliveries(subscription_id=sub["id"])
        assert sorted((r.channel, r.status) for r in rows) == [
            ("email", "delivered"),
            ("feed", "delivered"),
            ("webhook", "delivered"),
        ]
        assert {r.event_id for r in rows} == {event.id}
        metrics = (await svc.client.get("/metrics")).text
        assert 'notifications_vacancy_to_delivery_seconds_count{channel="webhook"}' in metrics
        assert 'events_consumed_total{outcome="duplicate"' in metrics or (
            'outcome="duplicate"' in metrics
        )


async def _ready(value: Any) -> Any:
    return value


async def test_only_eligible_artisans_are_alerted(
    sqlite_url: str, kafka_broker: Any, topics: Topics, producer: Producer
) -> None:
    async with running(broker_settings(sqlite_url, kafka_broker, topics)) as svc:
        await publish_programme(
            svc, producer, topics, "young-coops",
            max_business_age_years=5, allowed_legal_forms=["scop", "scic"],
            requires_trade_match=True,
        )  # fmt: skip
        artisans = {
            "eligible": {},
            "sarl": {"legal_form": "sarl"},
            "too-old": {"business_created_on": "2012-06-01"},
            "textile": {"trades": ["textile"]},
        }
        for name, fields in artisans.items():
            await publish_artisan(svc, producer, topics, name, **fields)
        for name in [*artisans, "unknown"]:
            await svc.subscribe(name)
        data = vacancy()
        await producer.send(topics.unit, VACANCY, data, data["unit"]["unit_id"])

        rows = await eventually(lambda: svc.deliveries(vacancy_id=data["vacancy_id"]))
        await asyncio.sleep(0.5)
        rows = await svc.deliveries(vacancy_id=data["vacancy_id"])
        assert [r.artisan_id for r in rows] == ["eligible"]
        why = rows[0].payload["data"]["why"]["eligibility"]
        assert why["filtered"] is True and why["programmes"][0]["programme_id"] == "young-coops"

        # A new catalogue without that programme retires it: nobody qualifies any more.
        await publish_programme(
            svc, producer, topics, "pepinieres", site_kinds=["pepiniere"], ids=["pepinieres"]
        )
        async with svc.app.state.runtime.sessions() as session:
            retired = (await session.execute(select(Programme.retired))).scalars().all()
        assert sorted(retired) == [False, True]
        later = vacancy()
        marker = vacancy(site_kind="pepiniere")
        await producer.send(topics.unit, VACANCY, later, later["unit"]["unit_id"])
        await producer.send(topics.unit, VACANCY, marker, marker["unit"]["unit_id"])
        await eventually(lambda: svc.deliveries(vacancy_id=marker["vacancy_id"]))
        assert await svc.deliveries(vacancy_id=later["vacancy_id"]) == []


async def test_without_any_programme_nobody_is_filtered_out(
    sqlite_url: str, kafka_broker: Any, topics: Topics, producer: Producer
) -> None:
    async with running(broker_settings(sqlite_url, kafka_broker, topics)) as svc:
        await publish_artisan(svc, producer, topics, "sarl", legal_form="sarl")
        await svc.subscribe("sarl")
        await svc.subscribe("not-yet-known")
        # A vacancy without its unit cannot be applied: it is dead-lettered, the rest goes on.
        key = str(uuid.uuid4())
        poison = await producer.send(topics.unit, VACANCY, {"vacancy_id": "v"}, key)
        data = vacancy(unit_id=key)
        await producer.send(topics.unit, VACANCY, data, key)
        rows = await eventually(lambda: svc.deliveries(vacancy_id=data["vacancy_id"]))
        await asyncio.sleep(0.3)
        rows = await svc.deliveries(vacancy_id=data["vacancy_id"])
        assert sorted(r.artisan_id for r in rows) == ["not-yet-known", "sarl"]
        assert rows[0].payload["data"]["why"]["eligibility"]["filtered"] is False
        async with svc.app.state.runtime.sessions() as session:
            outcome = await session.execute(
                select(ProcessedEvent.outcome).where(ProcessedEvent.event_id == poison.id)
            )
            assert outcome.scalar_one() == "dead_lettered"


async def test_paused_subscriptions_get_nothing_and_daily_ones_get_one_digest(
    sqlite_url: str, kafka_broker: Any, topics: Topics, producer: Producer, receivers: Any
) -> None:
    instant: Receiver = await receivers()
    daily: Receiver = await receivers()
    paused: Receiver = await receivers()
    async with running(broker_settings(sqlite_url, kafka_broker, topics)) as svc:
        me = svc.artisan("art-p")
        await svc.subscribe("art-p", name="now", channels=[{"type": "webhook", "url": instant.url}])
        digest = await svc.subscribe(
            "art-p", name="daily", frequency="daily",
            channels=[{"type": "webhook", "url": daily.url}, {"type": "feed"}],
        )  # fmt: skip
        off = await svc.subscribe(
            "art-p", name="off", channels=[{"type": "webhook", "url": paused.url}]
        )
        r = await svc.client.post(f"/v1/subscriptions/{off['id']}/pause", headers=me)
        assert r.json()["status"] == "paused"

        first, second = vacancy(), vacancy(surface_m2=95.5)
        for data in (first, second):
            await producer.send(topics.unit, VACANCY, data, data["unit"]["unit_id"])
        await eventually(lambda: _ready(len(instant.requests) == 2))
        # the daily search got its feed items at once; its webhook waits for the digest hour
        feed = (await svc.client.get("/v1/feed", headers=me)).json()
        assert len(feed["items"]) == 2
        assert daily.requests == []
        assert await svc.deliveries(subscription_id=off["id"]) == []

        r = await svc.client.post("/v1/admin/digests/flush", headers=svc.admin)
        assert r.json()["made_due"] == 2
        await eventually(lambda: _ready(daily.requests))
        await asyncio.sleep(0.5)
        [request] = daily.requests
        body = verify(digest["webhook_secret"], request.headers, request.body)
        assert body["type"] == "vacancy.digest"
        assert sorted(a["vacancy_id"] for a in body["data"]["alerts"]) == sorted(
            [first["vacancy_id"], second["vacancy_id"]]
        )
        rows = await svc.deliveries(subscription_id=digest["id"], channel="webhook")
        assert sorted(r.status for r in rows) == ["batched", "delivered"] or sorted(
            r.status for r in rows
        ) == ["delivered", "delivered"]
        assert paused.requests == []


async def test_applicants_are_emailed_about_decisions_and_offers(
    sqlite_url: str, kafka_broker: Any, topics: Topics, producer: Producer, smtp: Smtp
) -> None:
    settings = broker_settings(
        sqlite_url, kafka_broker, topics, smtp_host=smtp.host, smtp_port=smtp.port,
        delivery_max_attempts=8,
    )  # fmt: skip
    async with running(settings) as svc:
        application = {
            "application_id": "app-1", "artisan_id": "art-z", "unit_id": "u-1",
            "vacancy_id": "v-1", "landlord_id": "l-1", "programme_id": "p-1",
            "status": "accepted", "score": 72, "max_score": 100,
            "submitted_at": "2026-01-02T10:00:00+00:00",
        }  # fmt: skip
        # The decision arrives before leasing's profile of the artisan: the e-mail waits for it.
        await producer.send(
            topics.application,
            "leasing.application.decided.v1",
            {
                "application": application,
                "artisan_id": "art-z",
                "decision": "accepted",
                "reason": "Meilleur score",
                "decided_by_role": "landlord",
                "decided_at": "2026-01-05T10:00:00+00:00",
                "lease_id": None,
            },
            "app-1",
        )
        await producer.send(
            topics.application,
            "leasing.application.submitted.v1",
            {"application": application},
            "app-1",
        )
        lease = {
            "lease_id": "lease-1", "unit_id": "u-1", "artisan_id": "art-z",
            "monthly_rent_eur": 1650.0, "start_date": "2026-02-01", "end_date": "2029-01-31",
            "offer_expires_at": "2026-01-12T10:00:00+00:00",
        }  # fmt: skip
        await producer.send(
            topics.lease, "leasing.lease.offered.v1",
            {"lease": lease, "artisan_id": "art-z", "offered_at": "2026-01-05T11:00:00+00:00"},
            "u-1",
        )  # fmt: skip
        await producer.send(topics.lease, "leasing.lease.signed.v1", {"lease": lease}, "u-1")

        async def tried_without_an_address() -> bool:
            rows = await svc.deliveries(artisan_id="art-z", channel="email")
            return len(rows) == 2 and all(r.last_error for r in rows)

        await eventually(tried_without_an_address)
        assert smtp.mailbox.messages == []
        rows = await svc.deliveries(artisan_id="art-z", channel="email")
        assert {r.last_error for r in rows} == {"no e-mail address known for this artisan yet"}
        await publish_artisan(svc, producer, topics, "art-z")
        await eventually(lambda: _ready(len(smtp.mailbox.to("art-z@artisans-paris.fr")) == 2))
        subjects = sorted(m["Subject"] for m in smtp.mailbox.to("art-z@artisans-paris.fr"))
        assert subjects == ["Un bail vous est proposé", "Votre candidature à un atelier : décision"]
        bodies = " ".join(text_part(m, "plain") for m in smtp.mailbox.to("art-z@artisans-paris.fr"))
        assert "accepted" in bodies and "1650 €" in bodies and "Meilleur score" in bodies
        rows = await svc.deliveries(artisan_id="art-z")
        assert sorted((r.kind, r.channel) for r in rows) == [
            ("application_decided", "email"),
            ("application_decided", "feed"),
            ("lease_offered", "email"),
            ("lease_offered", "feed"),
        ]


async def test_the_worker_stopped_mid_delivery_loses_nothing(
    database_url: str, kafka_broker: Any, topics: Topics, producer: Producer, receivers: Any
) -> None:
    hold = asyncio.Event()
    hold.set()
    receiver: Receiver = await receivers(hold=hold)
    settings = broker_settings(
        database_url, kafka_broker, topics,
        delivery_shutdown_grace_s=0.2, delivery_claim_lease_s=2.0, webhook_timeout_s=20.0,
    )  # fmt: skip
    async with running(settings) as svc:
        sub = await svc.subscribe("art-k", channels=[{"type": "webhook", "url": receiver.url}])
        data = vacancy()
        await producer.send(topics.unit, VACANCY, data, data["unit"]["unit_id"])
        await eventually(lambda: _ready(receiver.requests))
        # stopped while the receiver has the request and has not answered
    [row] = await _rows(settings, sub["id"])
    assert row.status == "sending"
    hold.clear()
    async with running(settings) as svc:
        await eventually(lambda: _ready(receiver.answered == [200]), timeout=30)
        rows = await eventually(lambda: _delivered(svc, sub["id"]))
        assert len(rows) == 1
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert len(ids) == 2 and len(set(ids)) == 1 and ids[0] == row.id


async def _rows(settings: Any, subscription_id: str) -> list[Any]:
    async with running(
        settings.model_copy(update={"run_consumers": False, "run_delivery_worker": False})
    ) as svc:
        return await svc.deliveries(subscription_id=subscription_id)


async def _delivered(svc: Service, subscription_id: str) -> Any:
    rows = await svc.deliveries(subscription_id=subscription_id)
    return rows if rows and all(r.status == "delivered" for r in rows) else None
