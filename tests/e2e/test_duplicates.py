"""The same CloudEvent published twice has one effect everywhere.

A small journey runs to its end (vacancy, alerts, application, offer, signature, end of the
lease, the vacancy back). Then every event of it that some service acts on is read back from
Kafka and produced again, byte for byte (key, value, headers, partition). Once every consumer
has read the copies: inventory's unit, leasing's listing and applications, notifications'
deliveries, feed, e-mails and webhooks are exactly as before, no event was published because
of them, nothing went to a dead-letter topic — and each service counted them as duplicates.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from fabkit.localstack.platform import Platform

from .conftest import database_of
from .harness import (
    UNIT_TOPIC,
    Api,
    Counts,
    KafkaTap,
    Mailbox,
    ReceiverHub,
    bearer,
    check,
    header_map,
    producer,
    wait_caught_up,
)
from .scenario import World, lease_unit, unit_status

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

TOPICS = (
    UNIT_TOPIC,
    "leasing.artisan.events",
    "leasing.application.events",
    "leasing.lease.events",
)
# Event types replayed, and the consumer groups that act on each (the others ignore it).
ACTED_ON = {
    "inventory.unit.vacancy_opened.v1": {"leasing", "notifications"},
    "inventory.unit.updated.v1": {"leasing"},
    "leasing.artisan.registered.v1": {"notifications"},
    "leasing.application.decided.v1": {"notifications"},
    "leasing.lease.offered.v1": {"notifications"},
    "leasing.lease.signed.v1": {"inventory"},
    "leasing.lease.ended.v1": {"inventory"},
}
GROUP_TOPICS = {
    "inventory": ["leasing.lease.events"],
    "leasing": [UNIT_TOPIC],
    "notifications": list(TOPICS),
}
DLQS = ("inventory.dlq", "leasing.dlq", "notifications.dlq")


async def duplicates_counted(api: Api) -> Counter[tuple[str, str]]:
    """(service, event type) -> events_consumed_total{outcome="duplicate"} from /metrics."""
    found: Counter[tuple[str, str]] = Counter()
    pattern = re.compile(r"^events_consumed_total\{([^}]*)\} ([0-9.e+]+)$")
    for service in ("inventory", "leasing", "notifications"):
        text = (await api.client.get(api.url(service, "/metrics"))).text
        for line in text.splitlines():
            match = pattern.match(line)
            if not match:
                continue
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
            if labels.get("outcome") == "duplicate":
                found[(service, labels.get("type", ""))] += int(float(match.group(2)))
    return found


async def snapshot(api: Api, world: World, unit_id: str) -> dict[str, Any]:
    """Everything the replayed events could change, read through the public APIs."""
    sub = world.subs[0]
    artisan = sub.artisan
    receiver = world.book.receivers[sub.id]
    leasing_apps = check(
        await api.client.get(
            api.url("leasing", "/v1/applications"), params={"limit": 100},
            headers=bearer(artisan.token),
        ),
        200,
    )  # fmt: skip
    leases = check(
        await api.client.get(
            api.url("leasing", "/v1/leases"), params={"limit": 100}, headers=bearer(artisan.token)
        ),
        200,
    )
    return {
        "inventory unit": await api.unit(unit_id),
        "leasing listing": await api.leasing_unit(unit_id),
        "applications": [
            (a["id"], a["status"], len(a["decisions"])) for a in leasing_apps["items"]
        ],
        "leases": [(x["id"], x["status"]) for x in leases["items"]],
        "deliveries": sorted((d["id"], d["status"]) for d in await api.deliveries(sub.id)),
        "feed": [i["id"] for i in await api.feed(artisan)],
        "mails": sorted(m.file for m in world.book.mailbox.to(artisan.email)),
        "alert mails": sorted(m.file for m in world.book.mailbox.to(sub.email or "")),
        "webhook requests": len(receiver.hits),
    }


async def test_an_event_published_twice_has_one_effect(
    scenario_platform: Platform,
    api_for: Callable[[Platform], Api],
    mailbox_for: Callable[[Platform], Mailbox],
    receiver_hub: ReceiverHub,
    report: Callable[[Counts], None],
) -> None:
    platform = scenario_platform
    bootstrap = platform.broker.bootstrap
    started = time.monotonic()
    api = api_for(platform)
    tap = await KafkaTap.open(bootstrap, *TOPICS)
    world = await World.build(
        platform, api, mailbox_for(platform), [receiver_hub.make("ok")], units=1, prefix="dup"
    )
    unit = world.units[0]
    artisan = world.subs[0].artisan

    # The journey, once.
    opened = await world.change(unit["id"], "available")
    assert opened.vacancy_id
    lease = await lease_unit(api, world.landlord, unit["id"], opened.vacancy_id, artisan)
    await unit_status(api, unit["id"], "leased")
    check(
        await api.write(
            "POST", "leasing", f"/v1/leases/{lease['id']}/end", world.landlord,
            json={"reason": "Moved out"},
        ),
        200,
    )  # fmt: skip
    reopened = await unit_status(api, unit["id"], "available")
    world.book.expect(reopened["vacancy_id"])
    observed = await world.book.settle(timeout=90, quiet=0)
    assert world.book.expected <= observed.delivered, world.book.explain(observed)
    for group, topics in GROUP_TOPICS.items():
        await wait_caught_up(bootstrap, group, topics)
    await _mails_settled(world)
    before = await snapshot(api, world, unit["id"])
    counted_before = await duplicates_counted(api)

    # Every event of this journey that a service acts on, produced a second time.
    keys = {unit["id"], artisan.id, lease["application_id"]}
    originals = [
        r
        for r in await tap.read()
        if r.key is not None and r.key.decode() in keys and header_map(r).get("ce_type") in ACTED_ON
    ]
    assert {header_map(r)["ce_type"] for r in originals} == set(ACTED_ON), "journey incomplete"
    after_tap = await KafkaTap.open(bootstrap, UNIT_TOPIC, *DLQS)
    async with producer(bootstrap) as raw:
        for record in originals:
            await raw.send_and_wait(
                record.topic,
                value=record.value,
                key=record.key,
                headers=list(record.headers),
                partition=record.partition,
            )
    for group, topics in GROUP_TOPICS.items():
        await wait_caught_up(bootstrap, group, topics)
    await _mails_settled(world, quiet=3.0)
    after = await snapshot(api, world, unit["id"])
    counted_after = await duplicates_counted(api)
    observed = await world.book.observe()

    replayed_ids = {header_map(r)["ce_id"] for r in originals}
    caused = [
        (r.topic, header_map(r).get("ce_type"))
        for r in await after_tap.read()
        if r.topic in DLQS
        or (
            r.key is not None
            and r.key.decode() == unit["id"]
            and header_map(r).get("ce_id") not in replayed_ids
        )
    ]
    replayed_types = [header_map(r)["ce_type"] for r in originals]
    expected_duplicates = Counter(
        (group, type_) for type_ in replayed_types for group in ACTED_ON[type_]
    )
    recognised = {key: counted_after[key] - counted_before[key] for key in expected_duplicates}
    changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}

    counts = Counts("same CloudEvent published twice", database_of(platform))
    counts.sent = counts.acknowledged = counts.published = len(originals)
    counts.expected = sum(expected_duplicates.values())  # duplicates each consumer must drop
    counts.delivered = sum(min(recognised[k], n) for k, n in expected_duplicates.items())
    counts.duplicates = observed.redeliveries
    counts.distinct_duplicates = len(observed.distinct_duplicates) + len(changed)
    counts.lost = len(world.book.expected - observed.delivered)
    counts.extra.update(
        replayed_types=dict(Counter(header_map(r)["ce_type"] for r in originals)),
        effects_of_replay=sorted(changed),
        events_caused_by_replay=len(caused),
    )
    counts.seconds = time.monotonic() - started
    report(counts)

    assert not changed, f"a replayed event had an effect: {changed}"
    assert not caused, f"the replay published or dead-lettered something: {caused}"
    assert all(recognised[k] >= n for k, n in expected_duplicates.items()), (
        "a service did not recognise a replayed event as a duplicate",
        recognised,
        dict(expected_duplicates),
    )
    assert counts.lost == 0 and counts.distinct_duplicates == 0, world.book.explain(observed)
    assert not observed.unverified, observed.unverified


async def _mails_settled(world: World, quiet: float = 2.0) -> None:
    """Wait until no new e-mail arrived for ``quiet`` seconds (applicant e-mails are sent by
    the worker shortly after their events)."""
    import asyncio

    last = -1
    while True:
        now = len(world.book.mailbox.mails())
        if now == last:
            return
        last = now
        await asyncio.sleep(quiet)
