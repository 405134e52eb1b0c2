"""Webhook receivers that fail, against the documented behaviour (services/notifications/README:
retries with backoff up to NOTIFICATIONS_DELIVERY_MAX_ATTEMPTS, then dead; 410 switches the
search off until it is resumed; an operator can redeliver a dead delivery under its webhook-id).

- flaky: answers 500 to half of its requests (each message 0, 1 or 2 times before a 200):
  every alert is delivered after its retries, under one webhook-id.
- slow: answers only after the sender's timeout: every alert is tried exactly MAX_ATTEMPTS
  times and is dead; once the endpoint is fixed, the admin redelivers it under the same id.
- gone: answers 410: the search is disabled with a reason and hears nothing more, on any
  channel, until the artisan resumes it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from fabkit.localstack.platform import Platform

from .conftest import database_of
from .harness import (
    MAX_ATTEMPTS,
    UNIT_TOPIC,
    AlertBook,
    Api,
    Counts,
    KafkaTap,
    Mailbox,
    ReceiverHub,
    bearer,
    check,
    eventually,
    flaky_failures,
    published_for,
    tag,
    wait_caught_up,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

VACANCIES = 4


async def test_flaky_slow_and_gone_receivers(
    scenario_platform: Platform,
    api_for: Callable[[Platform], Api],
    mailbox_for: Callable[[Platform], Mailbox],
    receiver_hub: ReceiverHub,
    report: Callable[[Counts], None],
) -> None:
    platform = scenario_platform
    started = time.monotonic()
    api = api_for(platform)
    book = AlertBook(api, mailbox_for(platform))
    trade = tag("receivers")
    flaky, slow, gone = (receiver_hub.make(m) for m in ("flaky", "timeout", "gone"))

    _, landlord = await api.new_landlord()
    site = await api.new_site(landlord, arrondissement=20)
    units = [
        await api.new_unit(landlord, site["id"], trades=[trade], reference=f"R{i}")
        for i in range(VACANCIES + 2)
    ]
    artisans = [await api.register_artisan([trade]) for _ in range(3)]
    await wait_caught_up(platform.broker.bootstrap, "notifications", ["leasing.artisan.events"])
    subs = {}
    for name, artisan, receiver in zip(
        ("flaky", "slow", "gone"), artisans, (flaky, slow, gone), strict=True
    ):
        # Webhook only: what matters here is how the sender treats each endpoint.
        sub = await api.subscribe(
            artisan, criteria={"trades": [trade]}, receiver=receiver, email=False, feed=False
        )
        subs[name] = book.add(sub, receiver)

    async def open_vacancy(unit: dict[str, Any]) -> str:
        vacancy = check(await api.set_status(landlord, unit["id"], "available"), 200)["vacancy_id"]
        book.watch(vacancy)
        return vacancy  # type: ignore[no-any-return]

    tap = await KafkaTap.open(platform.broker.bootstrap, UNIT_TOPIC)

    # A: vacancies open while all three receivers misbehave.
    first = [await open_vacancy(u) for u in units[:VACANCIES]]
    for vacancy in first:
        book.expect(vacancy, [subs["flaky"]])
    observed = await book.settle(timeout=60, quiet=0)
    assert book.expected <= observed.delivered, book.explain(observed)

    async def all_dead() -> list[dict[str, Any]] | None:
        rows = await api.deliveries(subs["slow"].id)
        return rows if len(rows) == VACANCIES and all(r["status"] == "dead" for r in rows) else None

    dead = await eventually(all_dead, timeout=120, what="the slow receiver's alerts to be dead")
    listed = check(
        await api.client.get(
            api.url("notifications", "/v1/admin/deliveries/dead"),
            params={"artisan_id": artisans[1].id},
            headers=bearer(api.admin),
        ),
        200,
    )
    assert {r["id"] for r in listed["items"]} == {r["id"] for r in dead}
    assert all(r["attempts"] == MAX_ATTEMPTS and r["last_error"] for r in dead), dead

    async def disabled() -> dict[str, Any] | None:
        current = await api.subscription(subs["gone"])
        return current if current["status"] == "disabled" else None

    switched_off = await eventually(disabled, timeout=60, what="the 410 search to be disabled")
    assert "410" in (switched_off["disabled_reason"] or ""), switched_off
    gone_rows = await api.deliveries(subs["gone"].id)
    assert {r["status"] for r in gone_rows if r["channel"] == "webhook"} <= {"cancelled"}, gone_rows

    # What the receivers saw so far: retries under one id, exactly MAX_ATTEMPTS for the slow one.
    flaky_hits = flaky.hits_for([subs["flaky"].path or ""])
    by_id = Counter(h.webhook_id for h in flaky_hits)
    flaky_rows = {r["id"]: r for r in await api.deliveries(subs["flaky"].id)}
    for webhook_id, tries in by_id.items():
        assert tries == flaky_failures(webhook_id) + 1, (webhook_id, tries)
        assert flaky_rows[webhook_id]["status"] == "delivered"
        assert flaky_rows[webhook_id]["attempts"] == tries
    slow_hits = Counter(h.webhook_id for h in slow.hits_for([subs["slow"].path or ""]))
    assert sorted(slow_hits.values()) == [MAX_ATTEMPTS] * VACANCIES, slow_hits
    gone_requests = len(gone.hits_for([subs["gone"].path or ""]))
    assert 1 <= gone_requests <= VACANCIES, gone_requests
    assert set(Counter(h.webhook_id for h in gone.hits).values()) == {1}, "a 410 was retried"

    # B: the slow endpoint is fixed; the operator redelivers the dead alerts, same webhook-id.
    slow.mode = "ok"
    for row in dead:
        again = check(
            await api.write(
                "POST", "notifications", f"/v1/admin/deliveries/{row['id']}/redeliver", api.admin
            ),
            200,
        )
        assert again["id"] == row["id"]
    for vacancy in first:
        book.expect(vacancy, [subs["slow"]])

    # C: a vacancy while the 410 search is off: no delivery of any kind for it.
    third = await open_vacancy(units[VACANCIES])
    book.expect(third, [subs["flaky"], subs["slow"]])
    observed = await book.settle(timeout=60, quiet=2)
    assert book.expected <= observed.delivered, book.explain(observed)
    assert len(gone.hits) == gone_requests, "a disabled search was still called"
    assert len(await api.deliveries(subs["gone"].id)) == len(gone_rows), "a disabled search matched"

    # D: the artisan fixes the endpoint and resumes: alerts come again.
    gone.mode = "ok"
    resumed = check(
        await api.write(
            "POST", "notifications", f"/v1/subscriptions/{subs['gone'].id}/resume",
            subs["gone"].artisan.token,
        ),
        200,
    )  # fmt: skip
    assert resumed["status"] == "active" and resumed["disabled_reason"] is None
    last = await open_vacancy(units[VACANCIES + 1])
    book.expect(last)
    observed = await book.settle(timeout=60, quiet=2)

    counts = Counts("failing receivers (500 / timeout / 410)", database_of(platform))
    api.count_into(counts)
    counts.published, counts.extra["kafka_duplicate_records"] = await published_for(
        tap, [u["id"] for u in units]
    )
    book.fill(counts, observed)
    statuses = Counter(h.answered for h in flaky_hits)
    counts.extra.update(
        flaky_requests=len(flaky_hits),
        flaky_500=statuses[500],
        slow_requests=sum(slow_hits.values()),
        dead_then_redelivered=len(dead),
        gone_requests=gone_requests,
    )
    counts.seconds = time.monotonic() - started
    report(counts)

    assert counts.lost == 0, book.explain(observed)
    assert counts.distinct_duplicates == 0, book.explain(observed)
    assert counts.extra["unexpected_alerts"] == 0, book.explain(observed)
    assert not observed.unverified, observed.unverified
    # "half of the time": 0, 1 or 2 failures per message, so between a quarter and two thirds.
    assert 0 < statuses[500] < len(flaky_hits), statuses
