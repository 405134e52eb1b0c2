"""The delivery worker's batches on a real database (SQLite and PostgreSQL) with real webhook
receivers: claims that carry their subscriptions, outcomes recorded many to a transaction with
the rules of a single one, leases respected, unsent claims given back at shutdown; and the
consumer's fan-out rows written in bulk exactly as before."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event, insert, select
from sqlalchemy.exc import IntegrityError

from fabkit.events import CloudEvent
from notifications.contracts import VacancyOpenedWebhook
from notifications.events.consumed import VacancyOpenedIn
from notifications.metrics import DELIVERIES
from notifications.models import Artisan, Delivery, FeedItem, Subscription, SubscriptionTerm
from notifications.sending import RELEASED, Job, Outcome
from notifications.service import alerts
from notifications.settings import NotificationsSettings
from notifications.webhooks import generate_secret, verify
from notifications.worker import DeliveryWorker

from .conftest import Receiver, Service, eventually, make_settings, running, vacancy


def delivered_count(outcome: str, channel: str = "webhook") -> float:
    return DELIVERIES.labels(channel, outcome)._value.get()  # type: ignore[no-any-return]


def alert_body(sub_id: str) -> dict[str, Any]:
    """A `vacancy.opened` body for one subscription, as the consumer stores it."""
    data = vacancy()
    alert = {
        **data,
        "subscription": {"id": sub_id, "name": "Atelier bois"},
        "why": {
            "criteria": ["arrondissement 13"],
            "eligibility": {"summary": "", "filtered": False, "programmes": []},
        },
    }
    return VacancyOpenedWebhook.model_validate(
        {"timestamp": data["opened_at"], "data": alert}
    ).body()


def pending_row(sub_id: str, artisan_id: str, **overrides: Any) -> dict[str, Any]:
    """A due webhook delivery, as the consumer writes it."""
    now = datetime.now(UTC)
    row = {
        "id": str(uuid.uuid4()),
        "event_id": str(uuid.uuid4()),
        "recipient_key": sub_id,
        "channel": "webhook",
        "kind": "vacancy_alert",
        "artisan_id": artisan_id,
        "subscription_id": sub_id,
        "vacancy_id": "v-1",
        "payload": alert_body(sub_id),
        "status": "pending",
        "digest": False,
        "attempts": 0,
        "next_attempt_at": now - timedelta(seconds=1),
        "occurred_at": now,
        "created_at": now,
    }
    row.update(overrides)
    return row


async def add_rows(svc: Service, rows: list[dict[str, Any]]) -> list[str]:
    async with svc.app.state.runtime.sessions() as session, session.begin():
        await session.execute(insert(Delivery.__table__), rows)
    return [r["id"] for r in rows]


async def rows_by_id(svc: Service, ids: list[str]) -> dict[str, Delivery]:
    async with svc.app.state.runtime.sessions() as session:
        found = await session.execute(select(Delivery).where(Delivery.id.in_(ids)))  # type: ignore[attr-defined]
        return {d.id: d for d in found.scalars()}


@contextmanager
def commits(svc: Service) -> Iterator[list[int]]:
    """Count the transactions committed on the service's engine meanwhile."""
    seen: list[int] = []
    engine = svc.app.state.runtime.engine.sync_engine

    def count(_conn: Any) -> None:
        seen.append(1)

    event.listen(engine, "commit", count)
    try:
        yield seen
    finally:
        event.remove(engine, "commit", count)


@asynccontextmanager
async def worker_of(svc: Service, **overrides: Any) -> AsyncIterator[DeliveryWorker]:
    """A worker driven step by step (claim, send, record), with its HTTP client open."""
    settings: NotificationsSettings = svc.settings.model_copy(update=overrides)
    worker = DeliveryWorker(svc.app.state.runtime.sessions, settings, svc.app.state.signals)
    async with httpx.AsyncClient(timeout=3.0, follow_redirects=False, trust_env=False) as client:
        worker.senders.webhook.clients = [client]
        yield worker


def idle(database_url: str, **overrides: Any) -> NotificationsSettings:
    """The service without its own worker: the test drives one."""
    return make_settings(database_url, run_delivery_worker=False, **overrides)


async def test_a_batch_of_webhooks_goes_out_once_each_and_is_recorded_delivered(
    database_url: str, receivers: Any
) -> None:
    receiver: Receiver = await receivers()
    n = 150  # several claims and several recording batches (16 slots, 48 rows held)
    async with running(make_settings(database_url)) as svc:
        now = datetime.now(UTC)
        subs = [
            {
                "id": str(uuid.uuid4()), "artisan_id": f"art-{i % 7}", "name": f"s{i}",
                "status": "active", "frequency": "instant", "criteria": {}, "feature_mask": 0,
                "webhook_url": receiver.url, "webhook_secret": generate_secret(),
                "webhook_enabled": True, "email_enabled": False, "feed_enabled": False,
                "version": 1, "created_at": now, "updated_at": now,
            }
            for i in range(n)
        ]  # fmt: skip
        secrets = {s["id"]: s["webhook_secret"] for s in subs}
        before = delivered_count("delivered")
        async with svc.app.state.runtime.sessions() as session, session.begin():
            await session.execute(insert(Subscription.__table__), subs)
            await session.execute(
                insert(Delivery.__table__),
                [pending_row(s["id"], s["artisan_id"]) for s in subs],
            )
        svc.app.state.signals.deliveries.notify()

        async def all_delivered() -> Any:
            rows = await svc.deliveries()
            return rows if all(r.status == "delivered" for r in rows) else None

        rows = await eventually(all_delivered)
        assert len(rows) == n
        ids = [r.headers["webhook-id"] for r in receiver.requests]
        assert sorted(ids) == sorted(r.id for r in rows)  # each once, none twice
        for request in receiver.requests:
            # Signed with the secret of its own subscription, read with the claim.
            sub_id = json.loads(request.body)["data"]["subscription"]["id"]
            assert verify(secrets[sub_id], request.headers, request.body)["type"] == (
                "vacancy.opened"
            )
        for row in rows:
            assert row.attempts == 1 and row.last_status_code == 200 and row.last_error is None
            assert row.claimed_until is None and row.delivered_at is not None
        assert delivered_count("delivered") - before == n


async def test_a_mixed_batch_is_recorded_in_one_transaction_with_each_rule(
    database_url: str, receivers: Any
) -> None:
    ok: Receiver = await receivers()
    failing: Receiver = await receivers(default_status=500)
    last_try: Receiver = await receivers(default_status=503)
    gone: Receiver = await receivers(statuses=[410])
    paused_hook: Receiver = await receivers()
    deleted_hook: Receiver = await receivers()
    daily_hook: Receiver = await receivers()
    async with running(idle(database_url)) as svc:
        me = svc.artisan("art-m")

        async def sub(url: str, **body: Any) -> str:
            created = await svc.subscribe(
                "art-m", channels=[{"type": "webhook", "url": url}], **body
            )
            return str(created["id"])

        subs = {
            "ok": await sub(ok.url),
            "failing": await sub(failing.url),
            "last_try": await sub(last_try.url),
            "gone": await sub(gone.url),
            "paused": await sub(paused_hook.url),
            "deleted": await sub(deleted_hook.url),
            "daily": await sub(daily_hook.url, frequency="daily"),
        }
        r = await svc.client.post(f"/v1/subscriptions/{subs['paused']}/pause", headers=me)
        assert r.json()["status"] == "paused"
        r = await svc.client.delete(f"/v1/subscriptions/{subs['deleted']}", headers=me)
        assert r.status_code == 204
        max_attempts = svc.settings.delivery_max_attempts
        rows = {name: pending_row(sub_id, "art-m") for name, sub_id in subs.items()}
        del rows["daily"]
        rows["last_try"]["attempts"] = max_attempts - 1
        # A test message goes out even while the subscription is paused.
        rows["paused_test"] = pending_row(subs["paused"], "art-m", kind="test")
        # Two due digest entries of the daily search: one message, the other batched under it.
        rows["digest_lead"] = pending_row(subs["daily"], "art-m", digest=True)
        rows["digest_entry"] = pending_row(subs["daily"], "art-m", digest=True)
        ids = await add_rows(svc, list(rows.values()))
        before = {
            k: delivered_count(k) for k in ("delivered", "retry", "dead", "gone", "cancelled")
        }

        async with worker_of(svc) as worker:
            jobs, claimed = await worker._claim(50)
            assert claimed == len(ids) and len(jobs) == len(ids) - 1  # the digest folded
            outcomes = [(job, await worker.senders.attempt(job)) for job in jobs]
            recorded_at = datetime.now(UTC)
            with commits(svc) as seen:
                await worker._record(outcomes)
            assert len(seen) == 1, "one transaction for the whole batch"

        got = await rows_by_id(svc, ids)
        by_name = {name: got[row["id"]] for name, row in rows.items()}
        assert by_name["ok"].status == "delivered" and by_name["ok"].delivered_at is not None
        retry = by_name["failing"]
        assert (retry.status, retry.attempts, retry.last_status_code) == ("pending", 1, 500)
        # Due again after the schedule's first wait (not "later than now": a short test
        # schedule's wait may be over by the time a loaded machine checks).
        assert retry.next_attempt_at > recorded_at and retry.claimed_until is None
        dead = by_name["last_try"]
        assert (dead.status, dead.attempts, dead.last_status_code) == ("dead", max_attempts, 503)
        assert by_name["gone"].status == "cancelled" and by_name["gone"].last_status_code == 410
        assert by_name["paused"].status == "cancelled"
        assert by_name["paused"].last_error == "subscription paused"
        assert by_name["paused_test"].status == "delivered"
        assert by_name["deleted"].status == "cancelled"
        assert by_name["deleted"].last_error == "subscription deleted"
        lead, entry = by_name["digest_lead"], by_name["digest_entry"]
        assert lead.status == entry.status == "delivered" and entry.batch_id == lead.id
        assert (lead.attempts, entry.attempts) == (1, 0)  # folding counts no attempt
        assert entry.delivered_at == lead.delivered_at is not None
        [digest] = daily_hook.requests
        assert len(json.loads(digest.body)["data"]["alerts"]) == 2
        assert deleted_hook.requests == [] and len(paused_hook.requests) == 1

        # The 410 switched the subscription off and took it out of the index.
        body = (await svc.client.get(f"/v1/subscriptions/{subs['gone']}", headers=me)).json()
        assert body["status"] == "disabled" and "410" in body["disabled_reason"]
        async with svc.app.state.runtime.sessions() as session:
            terms = await session.execute(
                select(SubscriptionTerm).where(SubscriptionTerm.subscription_id == subs["gone"])
            )
            assert terms.scalars().all() == []

        after = {k: delivered_count(k) for k in before}
        assert {k: after[k] - before[k] for k in before} == {
            "delivered": 3, "retry": 1, "dead": 1, "gone": 1, "cancelled": 2,
        }  # fmt: skip


async def test_an_outcome_does_not_overwrite_a_claim_taken_over_since(
    database_url: str, receivers: Any
) -> None:
    async with running(idle(database_url)) as svc:
        sub = await svc.subscribe("art-l")
        first, second = pending_row(sub["id"], "art-l"), pending_row(sub["id"], "art-l")
        await add_rows(svc, [first])
        before = delivered_count("delivered")
        # A claims with a short lease and stalls past it; B takes the row over.
        async with worker_of(svc, delivery_claim_lease_s=0.3) as a, worker_of(svc) as b:
            [a_job], _ = await a._claim(10)
            await asyncio.sleep(0.4)
            [b_job], _ = await b._claim(10)
            assert (a_job.id, a_job.attempts, b_job.attempts) == (first["id"], 1, 2)
            # A claims a new row too, and records both outcomes in one batch.
            await add_rows(svc, [second])
            [a_second], _ = await a._claim(10)
            assert a_second.id == second["id"]
            delivered = Outcome("delivered", status_code=200)
            await a._record([(a_job, delivered), (a_second, delivered)])

            got = await rows_by_id(svc, [first["id"], second["id"]])
            taken = got[first["id"]]
            assert (taken.status, taken.attempts, taken.delivered_at) == ("sending", 2, None)
            assert taken.claimed_until is not None
            assert got[second["id"]].status == "delivered"
            assert delivered_count("delivered") - before == 1  # only what was written counts

            # B's outcome is the one that counts.
            await b._record([(b_job, Outcome("retry", "HTTP 500", 500))])
            taken = (await rows_by_id(svc, [first["id"]]))[first["id"]]
            assert (taken.status, taken.attempts, taken.last_status_code) == ("pending", 2, 500)


async def test_claimed_rows_that_waited_too_long_are_given_back_unsent(
    database_url: str, receivers: Any
) -> None:
    receiver: Receiver = await receivers()
    async with running(idle(database_url)) as svc:
        sub = await svc.subscribe("art-w", channels=[{"type": "webhook", "url": receiver.url}])
        [row_id] = await add_rows(svc, [pending_row(sub["id"], "art-w")])
        async with worker_of(svc) as worker:
            [job], _ = await worker._claim(10)
            # It sat in the local queue for more than a quarter of its lease.
            stale = dataclasses.replace(
                job, claimed_at=job.claimed_at - svc.settings.delivery_claim_lease_s
            )
            inflight: set[asyncio.Task[None]] = set()
            worker._start(deque([stale]), inflight)
            assert inflight == set()
            assert worker._outcomes.get_nowait() == (stale, RELEASED)
            await worker._record([(stale, RELEASED)])
        row = (await rows_by_id(svc, [row_id]))[row_id]
        # Due again at once, with no attempt counted for it and no error.
        assert (row.status, row.attempts, row.claimed_until, row.last_error) == (
            "pending", 0, None, None,
        )  # fmt: skip
        assert receiver.requests == []


async def test_stopping_gives_back_queued_claims_and_leaves_interrupted_sends_claimed(
    database_url: str, receivers: Any
) -> None:
    hold = asyncio.Event()
    hold.set()
    receiver: Receiver = await receivers(hold=hold)
    overrides = {
        "delivery_concurrency": 2,
        "delivery_shutdown_grace_s": 0.2,
        "webhook_timeout_s": 20.0,
        "smtp_timeout_s": 20.0,
    }
    async with running(idle(database_url, **overrides)) as svc:
        sub = await svc.subscribe("art-s", channels=[{"type": "webhook", "url": receiver.url}])
        ids = await add_rows(svc, [pending_row(sub["id"], "art-s") for _ in range(6)])
        worker = DeliveryWorker(svc.app.state.runtime.sessions, svc.settings, svc.app.state.signals)
        # Lease 120 s, sends up to 20 s: a row may wait 30 s locally, so two rounds are held.
        assert worker._hold == 4
        stop = asyncio.Event()
        running_worker = asyncio.create_task(worker.run(stop))
        await eventually(lambda: _ready(len(receiver.requests) == 2))
        stop.set()
        await asyncio.wait_for(running_worker, 10)
        rows = list((await rows_by_id(svc, ids)).values())
        # 2 were being sent (still claimed: the lease, or a restart on SQLite, brings them back),
        # 2 were claimed and queued (given back), 2 were never claimed.
        assert sorted((r.status, r.attempts) for r in rows) == [
            ("pending", 0), ("pending", 0), ("pending", 0), ("pending", 0),
            ("sending", 1), ("sending", 1),
        ]  # fmt: skip
        hold.clear()
        if svc.settings.is_sqlite:
            stop = asyncio.Event()
            restarted = asyncio.create_task(worker.run(stop))

            async def all_delivered() -> bool:
                got = await rows_by_id(svc, ids)
                return all(r.status == "delivered" for r in got.values())

            await eventually(all_delivered)
            stop.set()
            await asyncio.wait_for(restarted, 10)
            # The interrupted ones went again with the same webhook-id: 6 ids, 8 requests.
            assert len({r.headers["webhook-id"] for r in receiver.requests}) == 6
            assert len(receiver.requests) == 8


async def _ready(value: Any) -> Any:
    return value


async def test_fanout_rows_are_written_in_bulk_with_the_same_values(database_url: str) -> None:
    async with running(idle(database_url)) as svc:
        hooked = await svc.subscribe(
            "art-a",
            channels=[
                {"type": "webhook", "url": "http://127.0.0.1:9/hook"},
                {"type": "email", "address": "a@atelier.fr"},
                {"type": "feed"},
            ],
        )
        daily = await svc.subscribe("art-b", frequency="daily", channels=[{"type": "email"}])
        data = vacancy()
        opened = VacancyOpenedIn.model_validate(data)
        cloud = CloudEvent(source="/tests", type="inventory.unit.vacancy_opened.v1", data=data)
        sessions = svc.app.state.runtime.sessions
        async with sessions() as session, session.begin():
            written = await alerts.record_vacancy(
                session, svc.settings, svc.app.state.signals, cloud, opened
            )
        assert sorted((r["recipient_key"], r["channel"]) for r in written) == sorted(
            [
                (hooked["id"], "webhook"),
                (hooked["id"], "email"),
                (hooked["id"], "feed"),
                (daily["id"], "email"),
            ]
        )
        rows = {(r.recipient_key, r.channel): r for r in await svc.deliveries()}
        assert len(rows) == 4
        for r in rows.values():
            assert r.event_id == cloud.id and r.vacancy_id == data["vacancy_id"]
            assert r.kind == "vacancy_alert" and r.attempts == 0 and r.batch_id is None
            assert r.occurred_at == opened.opened_at and r.occurred_at.tzinfo is not None
            assert r.payload["data"]["unit"]["unit_id"] == data["unit"]["unit_id"]
            assert r.payload["data"]["subscription"]["id"] == r.subscription_id
        webhook = rows[(hooked["id"], "webhook")]
        assert (webhook.status, webhook.digest, webhook.delivered_at) == ("pending", False, None)
        assert webhook.next_attempt_at == webhook.created_at
        feed = rows[(hooked["id"], "feed")]
        assert feed.status == "delivered" and feed.delivered_at == feed.created_at
        digest = rows[(daily["id"], "email")]
        assert digest.digest is True and digest.next_attempt_at > digest.created_at
        async with sessions() as session:
            [item] = (await session.execute(select(FeedItem))).scalars().all()
        assert (item.delivery_id, item.artisan_id, item.kind) == (feed.id, "art-a", feed.kind)
        assert item.body == feed.payload and item.title.startswith("Atelier disponible")

        # The unique (event, recipient, channel) still refuses a second copy of the event.
        with pytest.raises(IntegrityError):
            async with sessions() as session, session.begin():
                await alerts.record_vacancy(
                    session, svc.settings, svc.app.state.signals, cloud, opened
                )
        assert len(await svc.deliveries()) == 4


async def test_a_job_is_a_snapshot_taken_in_the_claim(database_url: str, receivers: Any) -> None:
    """What the send needs is read with the claim: the subscription (or its absence) and the
    artisan's address for e-mails without one of their own."""
    async with running(idle(database_url)) as svc:
        sub = await svc.subscribe("art-j", channels=[{"type": "email"}])
        async with svc.app.state.runtime.sessions() as session, session.begin():
            await session.execute(
                insert(Artisan.__table__),
                [{"artisan_id": "art-j", "contact_email": "j@atelier.fr", "display_name": "J",
                  "trades": [], "labels": [], "version": 1, "updated_at": datetime.now(UTC)}],
            )  # fmt: skip
        ids = await add_rows(
            svc,
            [
                pending_row(sub["id"], "art-j", channel="email"),
                pending_row(str(uuid.uuid4()), "art-j"),  # a subscription that does not exist
            ],
        )
        async with worker_of(svc) as worker:
            jobs, _ = await worker._claim(10)
            by_id = {j.id: j for j in jobs}
            email, orphan = by_id[ids[0]], by_id[ids[1]]
            assert isinstance(email, Job) and email.subscription is not None
            assert email.subscription.id == sub["id"] and email.subscription.email_enabled
            assert email.contact_email == "j@atelier.fr"
            assert orphan.subscription is None
            assert await worker.senders.attempt(orphan) == Outcome(
                "cancelled", "subscription deleted"
            )
