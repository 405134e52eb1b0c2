"""Applicants told that their call for applications closed (their frozen rank) and that it was
decided, on the real broker and SMTP catcher: each applicant gets their own rank only, by
e-mail and in the feed, once per event even when it is delivered again."""

from __future__ import annotations

import uuid
from typing import Any

from .conftest import Producer, Smtp, Topics, eventually, running, text_part
from .test_alerts import broker_settings
from .test_call_results import registered

CLOSED = "leasing.call.closed.v1"
DECIDED = "leasing.call.decided.v1"


async def test_ranked_applicants_are_told_the_closing_and_the_decision(
    sqlite_url: str, kafka_broker: Any, topics: Topics, producer: Producer, smtp: Smtp
) -> None:
    settings = broker_settings(
        sqlite_url, kafka_broker, topics, smtp_host=smtp.host, smtp_port=smtp.port
    )
    people = [f"art-{uuid.uuid4().hex[:6]}" for _ in range(3)]
    call = {"call_id": "call-7", "unit_id": "u-7", "status": "closed"}
    ranking = [
        {"application_id": f"app-{i}", "artisan_id": a, "rank": i + 1, "score": 50 - 5 * i,
         "max_score": 100}
        for i, a in enumerate(people)
    ]  # fmt: skip
    async with running(settings) as svc:
        mails = [await registered(svc, producer, topics, a) for a in people]
        closed = {"call": call, "closed_at": "2027-01-22T18:00:00+00:00", "ranking": ranking}
        event_id = str(uuid.uuid4())
        await producer.send(topics.call, CLOSED, closed, "call-7", event_id=event_id)
        await producer.send(topics.call, CLOSED, closed, "call-7", event_id=event_id)  # again
        # an event type not handled here is skipped, never dead-lettered
        await producer.send(topics.call, "leasing.call.opened.v1", {"call": call}, "call-7")
        decided = {
            "call": {**call, "status": "decided"}, "outcome": "leased",
            "decided_at": "2027-02-01T10:00:00+00:00", "application_id": "app-1",
            "lease_id": "lease-1", "reason": None, "ranking": ranking,
        }  # fmt: skip
        await producer.send(topics.call, DECIDED, decided, "call-7")

        async def all_sent() -> bool:
            return all(len(smtp.mailbox.to(m)) == 2 for m in mails)

        await eventually(all_sent, timeout=30)
        for i, mail in enumerate(mails):
            texts = [text_part(m, "plain") for m in smtp.mailbox.to(mail)]
            closing = next(t for t in texts if "Votre rang" in t)
            assert f"Votre rang : {i + 1} sur 3" in closing
            assert f"Vos points : {50 - 5 * i} / 100" in closing
            decision = next(t for t in texts if "décision" in t)
            said = "le bail vous est attribué" if i == 1 else "l'atelier est attribué"
            assert said in decision
            assert not any(p in " ".join(texts) for p in people if p != people[i])
        rows = await svc.deliveries(artisan_id=people[0])
        assert sorted((r.kind, r.channel) for r in rows) == [
            ("call_closed", "email"),
            ("call_closed", "feed"),
            ("call_decided", "email"),
            ("call_decided", "feed"),
        ]
        r = await svc.client.get("/v1/feed", headers=svc.artisan(people[1]))
        assert r.status_code == 200, r.text
        titles = sorted(item["title"] for item in r.json()["items"])
        assert titles == [
            "Appel à candidatures : le bail vous est attribué",
            "Appel à candidatures clos : vous êtes classé(e) 2 sur 3",
        ]
        assert await svc.deliveries(status="dead") == []
