"""Applicants told about a call's published results and about the answer to their appeal, on
the real broker and SMTP catcher: each applicant gets their own rank and outcome only, by
e-mail and in the feed, once per event even when it is delivered again."""

from __future__ import annotations

import uuid
from typing import Any

from notifications.models import Artisan

from .conftest import (
    Producer,
    Service,
    Smtp,
    Topics,
    artisan_event,
    eventually,
    running,
    text_part,
)
from .test_alerts import broker_settings, known

RESULTS = "leasing.call.results_published.v1"
ANSWERED = "leasing.appeal.answered.v1"


async def registered(svc: Service, producer: Producer, topics: Topics, artisan_id: str) -> str:
    await producer.send(
        topics.artisan, "leasing.artisan.registered.v1", artisan_event(artisan_id), artisan_id
    )
    await eventually(lambda: known(svc, Artisan, artisan_id))
    return f"{artisan_id}@artisans-paris.fr"


async def test_each_applicant_is_told_their_rank_and_the_appellant_the_answer(
    sqlite_url: str, kafka_broker: Any, topics: Topics, producer: Producer, smtp: Smtp
) -> None:
    settings = broker_settings(
        sqlite_url, kafka_broker, topics, smtp_host=smtp.host, smtp_port=smtp.port
    )
    people = [f"art-{uuid.uuid4().hex[:6]}" for _ in range(3)]
    call = {"call_id": "call-1", "unit_id": "u-1", "status": "results_published"}
    outcomes = ["rejected", "not_reached", "leased"]
    async with running(settings) as svc:
        mails = [await registered(svc, producer, topics, a) for a in people]
        data = {
            "call": call,
            "published_at": "2027-02-10T10:00:00+00:00",
            "appeals_close_at": "2027-04-11T10:00:00+00:00",
            "outcome": "leased",
            "results": [
                {
                    "application_id": f"app-{i}", "artisan_id": a, "rank": i + 1,
                    "score": 60 - 10 * i, "max_score": 100, "outcome": outcomes[i],
                }
                for i, a in enumerate(people)
            ],
        }  # fmt: skip
        event_id = str(uuid.uuid4())
        await producer.send(topics.call, RESULTS, data, "call-1", event_id=event_id)
        # the same event again (a redelivery): told once
        await producer.send(topics.call, RESULTS, data, "call-1", event_id=event_id)
        # a call event notifications does not handle is skipped: the answer after it arrives
        await producer.send(topics.call, "leasing.appeal.filed.v1", {"appeal": {}}, "call-1")
        answer = {
            "appeal": {
                "appeal_id": "appeal-1", "application_id": "app-1", "call_id": "call-1",
                "artisan_id": people[1], "landlord_id": "l-1", "status": "answered",
                "filed_at": "2027-02-11T10:00:00+00:00", "outcome": "dismissed",
                "answered_at": "2027-02-20T10:00:00+00:00",
            },
            "answer": "The trade points were counted: see line two of the grid.",
            "answered_by_role": "officer",
            "answered_at": "2027-02-20T10:00:00+00:00",
        }  # fmt: skip
        await producer.send(topics.call, ANSWERED, answer, "call-1")

        async def all_sent() -> bool:
            return all(len(smtp.mailbox.to(m)) == (2 if i == 1 else 1) for i, m in enumerate(mails))

        await eventually(all_sent, timeout=30)
        for i, mail in enumerate(mails):
            texts = [text_part(m, "plain") for m in smtp.mailbox.to(mail)]
            results = next(t for t in texts if "Votre rang" in t)
            assert f"Votre rang : {i + 1} sur 3" in results
            assert f"Vos points : {60 - 10 * i} / 100" in results
            assert "2027-04-11T10:00:00+00:00" in results
            others = [p for p in people if p != people[i]]
            assert not any(o in " ".join(texts) for o in others)
        answered = [text_part(m, "plain") for m in smtp.mailbox.to(mails[1])]
        assert any("rejeté" in t and answer["answer"] in t for t in answered)
        subjects = sorted(m["Subject"] for m in smtp.mailbox.to(mails[1]))
        assert subjects == [
            "Réponse à votre recours",
            "Résultats de l'appel à candidatures : votre rang",
        ]

        rows = await svc.deliveries(artisan_id=people[1])
        assert sorted((r.kind, r.channel) for r in rows) == [
            ("appeal_answered", "email"),
            ("appeal_answered", "feed"),
            ("call_results", "email"),
            ("call_results", "feed"),
        ]
        r = await svc.client.get("/v1/feed", headers=svc.artisan(people[0]))
        assert r.status_code == 200, r.text
        titles = [item["title"] for item in r.json()["items"]]
        assert titles == ["Résultats de l'appel : vous êtes classé(e) 1 sur 3"]
        assert await svc.deliveries(status="dead") == []
