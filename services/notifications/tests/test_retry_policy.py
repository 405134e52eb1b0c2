"""What happens to a webhook delivery that fails, on a real database (SQLite and PostgreSQL) with
real HTTP receivers on loopback and a real SMTP server: the retry schedule (Svix's, about a day,
driven by an injected clock; a short one on the wall clock), Retry-After, the receiver's "no
retry" and "disable" signals, the search switched off after days of failing with its artisan
e-mailed why (and the clock reset by a success), and the owner sending a dead delivery again."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from fabkit.auth import Role
from fabkit.testing import assert_problem, read_http_request
from notifications import disabled_email
from notifications.contracts import WebhookDisabledEmail
from notifications.domain import duration_words, retry_wait
from notifications.metrics import RETRIES_SCHEDULED, WEBHOOKS_DISABLED
from notifications.models import Delivery, Subscription, SubscriptionTerm
from notifications.sending import Job, Outcome
from notifications.settings import NotificationsSettings
from notifications.worker import DeliveryWorker

from .conftest import Receiver, Service, Smtp, eventually, make_settings, running, text_part
from .test_outgoing import assert_valid
from .test_worker import add_rows, delivered_count, idle, pending_row, rows_by_id

SVIX = [5.0, 300.0, 1800.0, 7200.0, 18_000.0, 36_000.0, 36_000.0]


# Pure rules ------------------------------------------------------------------------------------


def test_the_default_schedule_is_svixs_over_about_a_day() -> None:
    settings = NotificationsSettings(environment="test")
    assert settings.delivery_retry_schedule_s == SVIX
    assert settings.delivery_max_attempts == len(SVIX) + 1
    assert settings.delivery_backoff_max_s >= max(SVIX)
    assert settings.delivery_disable_after_failing_s == 5 * 86_400
    # The last of the 8 attempts comes 27.6 hours after the first (jitter aside).
    assert sum(SVIX) / 3600 == pytest.approx(27.58, abs=0.01)


def test_a_wait_is_the_schedules_within_its_jitter_and_cap() -> None:
    assert retry_wait(1, SVIX, 0.2, 86_400, lambda: 0.0) == pytest.approx(4.0)
    assert retry_wait(1, SVIX, 0.2, 86_400, lambda: 1.0) == pytest.approx(6.0)
    assert retry_wait(3, SVIX, 0.0, 86_400, lambda: 0.5) == 1800.0
    # Past the end of the schedule its last wait repeats; no wait exceeds the cap.
    assert retry_wait(12, SVIX, 0.0, 86_400) == 36_000.0
    assert retry_wait(7, SVIX, 0.2, 3600, lambda: 1.0) == 3600.0
    waits = {retry_wait(2, SVIX, 0.2, 86_400) for _ in range(50)}
    assert len(waits) > 1 and all(240 <= w <= 360 for w in waits)
    assert [duration_words(s) for s in (5 * 86_400, 7200, 90, 1.5)] == [
        "5 days", "2 hours", "90 seconds", "1.5 seconds",
    ]  # fmt: skip


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_disabled_notice_reads_well_and_escapes_what_the_artisan_typed(language: str) -> None:
    since = datetime(2026, 11, 25, 8, 30, tzinfo=UTC)
    email = disabled_email.webhook_disabled_email(
        language=language,
        subscription_id="sub-1",
        name="Bois <b>& métal</b>",
        webhook_host="hooks.atelier.example",
        failing_since=since,
        disabled_at=since + timedelta(days=5, minutes=3),
        last_error="HTTP 503",
        resume_url="https://notifications.example/v1/subscriptions/sub-1/resume",
    )
    rendered = disabled_email.render(email.model_dump(mode="json"))
    assert "<b>" not in rendered.html and "&lt;b&gt;" in rendered.html
    assert "Bois <b>& métal</b>" in rendered.text and "hooks.atelier.example" in rendered.text
    assert "2026-11-25 08:30" in rendered.text and "HTTP 503" in rendered.text
    assert "POST https://notifications.example/v1/subscriptions/sub-1/resume" in rendered.text
    days = {"fr": "plus de 5 jours", "en": "more than 5 days"}[language]
    assert days in rendered.text
    assert f'lang="{language}"' in rendered.html
    if language == "fr":
        assert "suspendue\u00a0:" in rendered.text and "«\u00a0Bois" in rendered.subject


# A receiver answering from a script of statuses and headers, and a worker driven step by step on
# an injected clock -----------------------------------------------------------------------------


@dataclass
class Scripted:
    """A real HTTP/1.1 server on loopback: each request gets the next (status, headers) of the
    script, then `default`; it notes the wall-clock instant of each request."""

    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    default: tuple[int, dict[str, str]] = (500, {})
    hits: list[tuple[float, dict[str, str]]] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/fabrique"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await read_http_request(reader)
            if request is None:
                return
            self.hits.append((time.monotonic(), request[1]))
            status, headers = self.script.pop(0) if self.script else self.default
            extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            head = f"HTTP/1.1 {status} X\r\n{extra}Content-Length: 0\r\nConnection: close\r\n"
            writer.write(f"{head}\r\n".encode())
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def scripted(**kwargs: Any) -> AsyncIterator[Scripted]:
    receiver = Scripted(**kwargs)
    server = await asyncio.start_server(receiver._handle, "127.0.0.1", 0)
    receiver.port = server.sockets[0].getsockname()[1]
    try:
        yield receiver
    finally:
        server.close()


class Clock:
    """The worker's time: set by the test."""

    def __init__(self) -> None:
        self.at = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.at


@contextlib.asynccontextmanager
async def stepping(svc: Service, clock: Clock, **overrides: Any) -> AsyncIterator[DeliveryWorker]:
    settings: NotificationsSettings = svc.settings.model_copy(update=overrides)
    worker = DeliveryWorker(
        svc.app.state.runtime.sessions, settings, svc.app.state.signals, clock=clock
    )
    async with httpx.AsyncClient(timeout=3.0, follow_redirects=False, trust_env=False) as client:
        worker.senders.webhook.clients = [client]
        yield worker


async def step(worker: DeliveryWorker) -> list[tuple[Job, Outcome]]:
    """One claim of what is due at the clock's time, sent, and recorded."""
    jobs, _ = await worker._claim(50)
    outcomes = [(job, await worker.senders.attempt(job)) for job in jobs]
    await worker._record(outcomes)
    return outcomes


def _aware(at: datetime | None) -> datetime | None:
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


async def subscription(svc: Service, sub_id: str) -> Subscription:
    async with svc.app.state.runtime.sessions() as session:
        found = await session.execute(select(Subscription).where(Subscription.id == sub_id))
        return found.scalars().one()


async def webhook_search(svc: Service, artisan: str, url: str, **body: Any) -> str:
    created = await svc.subscribe(artisan, channels=[{"type": "webhook", "url": url}], **body)
    return str(created["id"])


# The schedule --------------------------------------------------------------------------------


async def test_svixs_schedule_spreads_eight_attempts_over_about_a_day(database_url: str) -> None:
    async with scripted(default=(500, {})) as receiver, running(idle(database_url)) as svc:
        sub_id = await webhook_search(svc, "art-s", receiver.url)
        [row_id] = await add_rows(svc, [pending_row(sub_id, "art-s")])
        clock = Clock()
        first = clock.at
        before = RETRIES_SCHEDULED.labels("webhook")._value.get()
        waits = []
        async with stepping(
            svc,
            clock,
            delivery_retry_schedule_s=SVIX,
            delivery_retry_jitter=0.2,
            delivery_max_attempts=8,
            delivery_backoff_max_s=36_000.0,
        ) as worker:
            for attempt in range(1, 9):
                assert len(await step(worker)) == 1, f"attempt {attempt} was not due"
                row = (await rows_by_id(svc, [row_id]))[row_id]
                assert row.attempts == attempt and row.last_status_code == 500
                if attempt == 8:
                    break
                due = _aware(row.next_attempt_at)
                assert due is not None
                waits.append((due - clock.at).total_seconds())
                # Nothing is due before the wait is over...
                clock.at = due - timedelta(seconds=0.5)
                assert await step(worker) == []
                clock.at = due
        assert row.status == "dead"
        for wait, planned in zip(waits, SVIX, strict=True):
            assert 0.8 * planned <= wait <= 1.2 * planned, (waits, SVIX)
        span = (clock.at - first).total_seconds() / 3600
        assert 22 <= span <= 33, f"the last attempt came {span:.1f} h after the first"
        assert len(receiver.hits) == 8
        assert {h["webhook-id"] for _, h in receiver.hits} == {row_id}
        assert RETRIES_SCHEDULED.labels("webhook")._value.get() - before == 7
        # 27.6 hours of failing is not 5 days: the search is still on, its clock running.
        sub = await subscription(svc, sub_id)
        assert sub.status == "active" and _aware(sub.webhook_failing_since) == first


async def test_a_short_schedule_spaces_the_real_attempts_by_its_waits(database_url: str) -> None:
    schedule = [0.3, 0.6, 1.2]
    settings = make_settings(
        database_url,
        delivery_retry_schedule_s=schedule,
        delivery_retry_jitter=0.0,
        delivery_max_attempts=4,
        delivery_backoff_max_s=5.0,
    )
    async with scripted(default=(503, {})) as receiver, running(settings) as svc:
        me = svc.artisan("art-w")
        sub_id = await webhook_search(svc, "art-w", receiver.url)
        await svc.client.post(f"/v1/subscriptions/{sub_id}/test", headers=me)
        await eventually(lambda: _dead(svc, sub_id))
        instants = [at for at, _ in receiver.hits]
        gaps = [b - a for a, b in itertools.pairwise(instants)]
        assert len(gaps) == 3
        for gap, planned in zip(gaps, schedule, strict=True):
            # Never early; late by at most the poll interval and a loaded machine's delays.
            assert planned - 0.02 <= gap <= planned + 1.5, (gaps, schedule)


async def _dead(svc: Service, sub_id: str) -> list[Delivery] | None:
    rows = await svc.deliveries(subscription_id=sub_id)
    return rows if rows and all(r.status == "dead" for r in rows) else None


async def test_retry_after_from_429_and_503_is_honoured_up_to_the_longest_wait(
    database_url: str,
) -> None:
    in_5_min = format_datetime(datetime.now(UTC) + timedelta(seconds=300), usegmt=True)
    script = [
        (503, {"Retry-After": "120"}),
        (429, {"Retry-After": in_5_min}),
        (503, {"Retry-After": "999999"}),
        (500, {"Retry-After": "600"}),  # a 500's Retry-After means nothing (RFC 9110)
        (429, {"Retry-After": "soon"}),
    ]
    answers = len(script)  # the receiver takes them off the list
    async with scripted(script=script) as receiver, running(idle(database_url)) as svc:
        sub_id = await webhook_search(svc, "art-ra", receiver.url)
        [row_id] = await add_rows(svc, [pending_row(sub_id, "art-ra")])
        clock = Clock()
        waits = []
        async with stepping(
            svc,
            clock,
            delivery_retry_schedule_s=[2.0],
            delivery_retry_jitter=0.0,
            delivery_max_attempts=6,
            delivery_backoff_max_s=3600.0,
        ) as worker:
            for _ in range(answers):
                await step(worker)
                row = (await rows_by_id(svc, [row_id]))[row_id]
                due = _aware(row.next_attempt_at)
                assert due is not None and row.status == "pending"
                waits.append((due - clock.at).total_seconds())
                clock.at = due
        assert waits[0] == pytest.approx(120)
        assert 290 <= waits[1] <= 301  # an HTTP date, read against the wall clock
        assert waits[2] == pytest.approx(3600)  # capped by delivery_backoff_max_s
        assert waits[3] == pytest.approx(2) and waits[4] == pytest.approx(2)
        assert len(receiver.hits) == answers


# What a receiver can ask -------------------------------------------------------------------------


async def test_abort_message_makes_the_delivery_dead_at_once_with_its_reason(
    database_url: str,
) -> None:
    abort = (422, {"webhook-delivery": "abort-message"})
    async with scripted(script=[abort]) as receiver, running(idle(database_url)) as svc:
        me = svc.artisan("art-a")
        sub_id = await webhook_search(svc, "art-a", receiver.url)
        [row_id] = await add_rows(svc, [pending_row(sub_id, "art-a")])
        before = delivered_count("aborted")
        async with stepping(svc, Clock()) as worker:
            [(_, outcome)] = await step(worker)
            assert outcome.kind == "aborted"
            assert await step(worker) == []  # nothing more to try
        row = (await rows_by_id(svc, [row_id]))[row_id]
        assert (row.status, row.attempts, row.last_status_code) == ("dead", 1, 422)
        assert row.last_error is not None and "webhook-delivery: abort-message" in row.last_error
        assert "no retry" in row.last_error
        assert delivered_count("aborted") - before == 1
        assert len(receiver.hits) == 1
        # One message refused: the search itself stays on, and its owner may still resend it.
        assert (await subscription(svc, sub_id)).status == "active"
        r = await svc.client.post(f"/v1/deliveries/{row_id}/redeliver", headers=me)
        assert r.status_code == 200 and r.json()["status"] == "pending"


async def test_disable_from_the_receiver_switches_the_search_off(database_url: str) -> None:
    disable = (500, {"Webhook-Delivery": "Disable"})
    async with scripted(script=[disable]) as receiver, running(idle(database_url)) as svc:
        me = svc.artisan("art-x")
        sub_id = await webhook_search(svc, "art-x", receiver.url)
        [row_id] = await add_rows(svc, [pending_row(sub_id, "art-x")])
        before = WEBHOOKS_DISABLED.labels("receiver")._value.get()
        async with stepping(svc, Clock()) as worker:
            await step(worker)
        row = (await rows_by_id(svc, [row_id]))[row_id]
        assert (row.status, row.last_status_code) == ("cancelled", 500)
        body = (await svc.client.get(f"/v1/subscriptions/{sub_id}", headers=me)).json()
        assert body["status"] == "disabled"
        assert "webhook-delivery: disable" in body["disabled_reason"]
        assert WEBHOOKS_DISABLED.labels("receiver")._value.get() - before == 1
        assert len(receiver.hits) == 1


# Switched off after days of failing ------------------------------------------------------------


async def test_five_days_of_failing_switch_the_search_off_and_the_artisan_is_emailed_why(
    database_url: str, smtp: Smtp
) -> None:
    settings = idle(database_url, smtp_host=smtp.host, smtp_port=smtp.port)
    async with scripted(default=(503, {})) as receiver, running(settings) as svc:
        me = svc.artisan("art-f")
        address = "atelier@menuiserie-dupont.fr"
        created = await svc.subscribe(
            "art-f",
            name="Bois <Est>",
            channels=[
                {"type": "webhook", "url": receiver.url},
                {"type": "email", "address": address},
            ],
        )
        sub_id = created["id"]
        clock = Clock()
        start = clock.at
        before = WEBHOOKS_DISABLED.labels("failing")._value.get()

        async def fail_once_at(at: datetime) -> None:
            clock.at = at
            await add_rows(
                svc, [pending_row(sub_id, "art-f", next_attempt_at=at - timedelta(seconds=1))]
            )
            outcomes = await step(worker)
            kinds = {outcome.kind for job, outcome in outcomes if job.channel == "webhook"}
            assert kinds == {"retry"}, outcomes

        async with stepping(svc, clock, delivery_max_attempts=50) as worker:
            await fail_once_at(start)
            sub = await subscription(svc, sub_id)
            assert sub.status == "active" and _aware(sub.webhook_failing_since) == start
            await fail_once_at(start + timedelta(days=3))
            sub = await subscription(svc, sub_id)
            assert sub.status == "active" and _aware(sub.webhook_failing_since) == start
            await fail_once_at(start + timedelta(days=5, seconds=1))

            sub = await subscription(svc, sub_id)
            assert sub.status == "disabled" and sub.webhook_failing_since is None
            assert sub.disabled_reason is not None
            assert "failed every delivery attempt for more than 5 days" in sub.disabled_reason
            assert f"since {start:%Y-%m-%d %H:%M} UTC" in sub.disabled_reason
            assert "HTTP 503" in sub.disabled_reason and "resume" in sub.disabled_reason
            assert WEBHOOKS_DISABLED.labels("failing")._value.get() - before == 1
            async with svc.app.state.runtime.sessions() as session:
                terms = await session.execute(
                    select(SubscriptionTerm).where(SubscriptionTerm.subscription_id == sub_id)
                )
                assert terms.scalars().all() == []
            [notice] = await svc.deliveries(kind="webhook_disabled")
            assert notice.channel == "email" and notice.subscription_id == sub_id
            WebhookDisabledEmail.model_validate(notice.payload)
            assert_valid(notice.payload, "email/webhook.disabled.json")  # its data contract

            # The notice goes out although the search is off and whatever its channels; the
            # webhook retries still pending are cancelled.
            outcomes = await step(worker)
            assert {(j.kind, o.kind) for j, o in outcomes} >= {("webhook_disabled", "delivered")}
        [message] = smtp.mailbox.to(address)
        assert "Alertes suspendues" in str(message["Subject"])
        assert message["List-Unsubscribe"] is None
        text = text_part(message, "plain")
        assert "Bois <Est>" in text and "127.0.0.1" in text and "plus de 5 jours" in text
        assert f"{start:%Y-%m-%d %H:%M}" in text and "HTTP 503" in text
        assert f"POST http://notifications.test/v1/subscriptions/{sub_id}/resume" in text
        html = text_part(message, "html")
        assert "Bois &lt;Est&gt;" in html and "<Est>" not in html
        assert receiver.url not in text  # the path (it may hold a key) is not repeated

        # Resumed, the search starts a new clock: one more failure does not switch it off.
        r = await svc.client.post(f"/v1/subscriptions/{sub_id}/resume", headers=me)
        assert r.status_code == 200 and r.json()["status"] == "active"
        async with stepping(svc, clock, delivery_max_attempts=50) as worker:
            await fail_once_at(clock.at + timedelta(minutes=1))
        sub = await subscription(svc, sub_id)
        assert sub.status == "active" and _aware(sub.webhook_failing_since) == clock.at


async def test_a_delivered_attempt_resets_the_failure_clock(database_url: str) -> None:
    async with scripted() as receiver, running(idle(database_url)) as svc:
        sub_id = await webhook_search(svc, "art-r", receiver.url)
        clock = Clock()
        start = clock.at

        async def attempt_at(at: datetime, status: int) -> None:
            clock.at = at
            receiver.default = (status, {})
            await add_rows(
                svc, [pending_row(sub_id, "art-r", next_attempt_at=at - timedelta(seconds=1))]
            )
            await step(worker)

        async with stepping(svc, clock, delivery_max_attempts=50) as worker:
            await attempt_at(start, 500)
            assert _aware((await subscription(svc, sub_id)).webhook_failing_since) == start
            await attempt_at(start + timedelta(days=4), 204)
            assert (await subscription(svc, sub_id)).webhook_failing_since is None
            later = start + timedelta(days=6)
            await attempt_at(later, 500)
        sub = await subscription(svc, sub_id)
        assert sub.status == "active" and _aware(sub.webhook_failing_since) == later


# Send again ------------------------------------------------------------------------------------


async def _deliveries(svc: Service, headers: dict[str, str], sub_id: str, status: str, n: int):  # type: ignore[no-untyped-def]
    r = await svc.client.get(f"/v1/subscriptions/{sub_id}/deliveries", headers=headers)
    items = [d for d in r.json()["items"] if d["status"] == status]
    return items if len(items) >= n else None


async def test_the_owner_sends_a_dead_delivery_again_under_the_same_webhook_id(
    database_url: str, receivers: Any
) -> None:
    receiver: Receiver = await receivers(default_status=500)
    async with running(make_settings(database_url, delivery_max_attempts=2)) as svc:
        me = svc.artisan("art-o")
        created = await svc.subscribe("art-o", channels=[{"type": "webhook", "url": receiver.url}])
        await svc.client.post(f"/v1/subscriptions/{created['id']}/test", headers=me)
        [dead] = await eventually(lambda: _deliveries(svc, me, created["id"], "dead", 1))
        assert dead["attempts"] == 2 and len(receiver.requests) == 2
        path = f"/v1/deliveries/{dead['id']}/redeliver"

        # Another artisan cannot tell it exists; other roles are refused; no token, 401.
        assert_problem(await svc.client.post(path, headers=svc.artisan("art-x")), 404, dead["id"])
        assert_problem(
            await svc.client.post(path, headers=svc.identities.headers(Role.LANDLORD, "ll-1")),
            403,
            "artisan",
        )
        assert_problem(await svc.client.post(path), 401, "bearer token")
        assert_problem(
            await svc.client.post("/v1/deliveries/no-such-id/redeliver", headers=me),
            404,
            "No delivery with id no-such-id.",
        )
        assert len(receiver.requests) == 2

        receiver.default_status = 204
        r = await svc.client.post(path, headers=me)
        assert r.status_code == 200, r.text
        again = r.json()
        assert again["id"] == dead["id"] and again["status"] == "pending"
        assert again["attempts"] == 0 and again["event_id"] == dead["event_id"]
        [done] = await eventually(lambda: _deliveries(svc, me, created["id"], "delivered", 1))
        assert done["id"] == dead["id"] and done["attempts"] == 1
        assert [q.headers["webhook-id"] for q in receiver.requests] == [dead["id"]] * 3
        bodies = {q.body for q in receiver.requests}
        assert len(bodies) == 1, "the same message every time"

        # Delivered now: not dead, so nothing to send again.
        r = await svc.client.post(path, headers=me)
        assert_problem(r, 409, "Only dead deliveries can be redelivered; this one is delivered.")
        assert len(receiver.requests) == 3
        metrics = (await svc.client.get("/metrics")).text
        assert 'notifications_deliveries_total{channel="webhook",outcome="redelivered"}' in metrics


async def test_a_dead_delivery_of_a_deleted_search_is_no_longer_the_owners_to_resend(
    database_url: str, receivers: Any
) -> None:
    receiver: Receiver = await receivers(default_status=500)
    async with running(make_settings(database_url, delivery_max_attempts=1)) as svc:
        me = svc.artisan("art-del")
        created = await svc.subscribe(
            "art-del", channels=[{"type": "webhook", "url": receiver.url}]
        )
        await svc.client.post(f"/v1/subscriptions/{created['id']}/test", headers=me)
        [dead] = await eventually(lambda: _deliveries(svc, me, created["id"], "dead", 1))
        r = await svc.client.delete(f"/v1/subscriptions/{created['id']}", headers=me)
        assert r.status_code == 204, r.text
        r = await svc.client.post(f"/v1/deliveries/{dead['id']}/redeliver", headers=me)
        assert_problem(r, 404, f"No delivery with id {dead['id']}.")
        assert len(receiver.requests) == 1
