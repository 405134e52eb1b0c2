"""Poison records written straight into every topic a service consumes end up in that
service's dead-letter topic (``<service>.dlq``, with ``dlq_*`` headers naming where they came
from); the consumers keep going, and the events that follow still arrive: a vacancy alert, a
lease that makes the unit leased in inventory, an applicant's e-mail, a profile change."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from fabkit.localstack.platform import Platform

from .conftest import database_of
from .harness import (
    Api,
    Counts,
    KafkaTap,
    Mailbox,
    ReceiverHub,
    check,
    eventually,
    header_map,
    producer,
    wait_caught_up,
)
from .scenario import World, lease_unit, unit_status

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

# Who consumes what (the services' consumer specs, checked by the last test below):
# group -> (its dead-letter topic, {topic: the event types it acts on}).
CONSUMERS: dict[str, tuple[str, dict[str, set[str]]]] = {
    "inventory": (
        "inventory.dlq",
        {"leasing.lease.events": {"leasing.lease.signed.v1", "leasing.lease.ended.v1"}},
    ),
    "leasing": (
        "leasing.dlq",
        {
            "inventory.unit.events": {
                "inventory.unit.registered.v1",
                "inventory.unit.updated.v1",
                "inventory.unit.vacancy_opened.v1",
                "inventory.unit.vacancy_closed.v1",
                "inventory.unit.withdrawn.v1",
            }
        },
    ),
    "notifications": (
        "notifications.dlq",
        {
            "inventory.unit.events": {"inventory.unit.vacancy_opened.v1"},
            "leasing.artisan.events": {
                "leasing.artisan.registered.v1",
                "leasing.artisan.updated.v1",
                "leasing.artisan.erased.v1",
            },
            "leasing.privacy.events": {"leasing.artisan.inactivity_warned.v1"},
            "leasing.programme.events": {"leasing.programme.published.v1"},
            "leasing.application.events": {"leasing.application.decided.v1"},
            "leasing.lease.events": {"leasing.lease.offered.v1"},
            "leasing.call.events": {
                "leasing.call.closed.v1",
                "leasing.call.decided.v1",
                "leasing.call.results_published.v1",
                "leasing.appeal.answered.v1",
            },
        },
    ),
}
# One malformed record per consumer and topic is enough (each costs the consumer its retries).
MALFORMED_TYPES = {
    "inventory.unit.vacancy_opened.v1",
    "leasing.lease.signed.v1",
    "leasing.lease.offered.v1",
    "leasing.artisan.registered.v1",
    "leasing.programme.published.v1",
    "leasing.application.decided.v1",
    "leasing.call.closed.v1",
    "leasing.artisan.inactivity_warned.v1",
}
DLQS = sorted({dlq for dlq, _ in CONSUMERS.values()})
TOPICS = sorted({t for _, topics in CONSUMERS.values() for t in topics})


def ce_headers(type_: str, subject: str) -> list[tuple[str, bytes]]:
    return [
        ("ce_specversion", b"1.0"),
        ("ce_id", str(uuid.uuid4()).encode()),
        ("ce_source", b"/e2e/poison"),
        ("ce_type", type_.encode()),
        ("ce_time", datetime.now(UTC).isoformat().encode()),
        ("ce_subject", subject.encode()),
        ("content-type", b"application/json"),
    ]


def poison_for(topic: str, key: str) -> list[tuple[str, bytes, list[tuple[str, bytes]], set[str]]]:
    """(what, value, headers, groups that must dead-letter it) for one topic."""
    consumers = {g for g, (_, topics) in CONSUMERS.items() if topic in topics}
    records = [
        ("bytes, no headers", b"\x00\xff not an event", [], consumers),
        ("JSON without CloudEvents headers", b'{"unit_id": "x"}', [], consumers),
        ("CloudEvent whose data is not JSON", b"{oops", ce_headers("x.y.v1", key), consumers),
        ("unknown event type", b"{}", ce_headers("e2e.poison.unknown.v1", key), consumers),
    ]
    for type_ in sorted(MALFORMED_TYPES):
        groups = {g for g in consumers if type_ in CONSUMERS[g][1][topic]}
        if groups:
            records.append(
                (f"malformed {type_}", b'{"poison": true}', ce_headers(type_, key), groups)
            )
    return records


async def test_poison_is_dead_lettered_and_consumers_keep_going(
    scenario_platform: Platform,
    api_for: Callable[[Platform], Api],
    mailbox_for: Callable[[Platform], Mailbox],
    receiver_hub: ReceiverHub,
    report: Callable[[Counts], None],
) -> None:
    platform = scenario_platform
    bootstrap = platform.broker.bootstrap
    started = time.monotonic()
    api, mailbox = api_for(platform), mailbox_for(platform)
    world = await World.build(
        platform, api, mailbox, [receiver_hub.make("ok")], units=1, prefix="poison"
    )
    unit = world.units[0]
    artisan = world.subs[0].artisan
    dlq_tap = await KafkaTap.open(bootstrap, *DLQS)

    # Poison every consumed topic, keyed like the events that follow so that it sits in front
    # of them in the same partition.
    keys = {
        "inventory.unit.events": unit["id"],
        "leasing.lease.events": unit["id"],
        "leasing.artisan.events": artisan.id,
        "leasing.privacy.events": artisan.id,
        "leasing.application.events": str(uuid.uuid4()),
        "leasing.programme.events": "e2e-poison",
        "leasing.call.events": str(uuid.uuid4()),
    }
    expected: dict[tuple[str, str, int, int], str] = {}  # (dlq, topic, partition, offset) -> what
    sent = acknowledged = 0
    async with producer(bootstrap) as raw:
        for topic in TOPICS:
            for what, value, headers, groups in poison_for(topic, keys[topic]):
                sent += 1
                meta = await raw.send_and_wait(
                    topic, value=value, key=keys[topic].encode(), headers=headers
                )
                acknowledged += 1
                for group in groups:
                    dlq = CONSUMERS[group][0]
                    expected[(dlq, topic, meta.partition, meta.offset)] = f"{group}: {what}"

    # Later events still flow: a vacancy and its alerts, a lease that inventory applies, the
    # applicant's e-mail, a profile update.
    opened = await world.change(unit["id"], "available")
    assert opened.outcome == "acknowledged" and opened.vacancy_id
    observed = await world.book.settle(timeout=120, quiet=0)
    lease = await lease_unit(api, world.landlord, unit["id"], opened.vacancy_id, artisan)
    leased = await unit_status(api, unit["id"], "leased")
    assert leased["vacancy_id"] is None
    await eventually(
        lambda: _async([m for m in mailbox.to(artisan.email) if "bail" in m.subject]),
        timeout=60,
        what="the lease-offer e-mail",
    )
    check(
        await api.write(
            "PATCH", "leasing", "/v1/artisans/me", artisan.token,
            json={"display_name": "Atelier après le poison"},
        ),
        200,
    )  # fmt: skip
    for group, (_, topics) in CONSUMERS.items():
        await wait_caught_up(bootstrap, group, topics, timeout=120)

    # Every poison record is in the dead-letter topic of every consumer that had to refuse it.
    found: Counter[tuple[str, str, int, int]] = Counter()
    reasons: dict[tuple[str, str, int, int], str] = {}
    for record in await dlq_tap.read():
        headers = header_map(record)
        key = (
            record.topic,
            headers.get("dlq_source_topic", ""),
            int(headers.get("dlq_source_partition", "-1")),
            int(headers.get("dlq_source_offset", "-1")),
        )
        found[key] += 1
        reasons[key] = headers.get("dlq_reason", "")
    missing = {k: v for k, v in expected.items() if k not in found}
    unexpected = [k for k in found if k not in expected]

    alerts = Counts("alerts after the poison", database_of(platform))
    world.book.fill(alerts, observed)
    counts = Counts("poison records -> DLQ", database_of(platform))
    counts.sent, counts.acknowledged, counts.published = sent, acknowledged, acknowledged
    # What must arrive: each dead letter, and the alerts of the vacancy that followed.
    counts.expected = len(expected) + alerts.expected
    counts.delivered = len(set(found) & set(expected)) + alerts.delivered
    counts.duplicates = sum(n - 1 for n in found.values()) + alerts.duplicates
    counts.distinct_duplicates = alerts.distinct_duplicates
    counts.lost = len(missing) + alerts.lost
    counts.extra.update(
        dead_letters_expected=len(expected),
        dead_lettered=dict(sorted(Counter(k[0] for k in found).items())),
        alerts_after_poison=alerts.delivered,
        lease_after_poison=lease["status"],
        unexpected_dead_letters=len(unexpected),
    )
    counts.seconds = time.monotonic() - started
    report(counts)

    assert not missing, f"poison not dead-lettered: {missing}"
    assert not unexpected, [(k, reasons[k]) for k in unexpected]
    assert counts.lost == 0, world.book.explain(observed)
    assert counts.distinct_duplicates == 0
    assert not observed.unverified, observed.unverified


async def _async(value: Any) -> Any:
    return value


def test_the_consumer_table_is_what_the_services_consume() -> None:
    """The table above must follow the services: a topic or an event type a service starts to
    consume fails here until it is poisoned too."""
    from fabkit.localstack.kafka import load_topic_specs
    from inventory.events.handlers import consumer_specs as inventory_specs
    from inventory.settings import InventorySettings
    from leasing.events.handlers import consumer_specs as leasing_specs
    from leasing.settings import LeasingSettings
    from notifications.events.handlers import consumer_specs as notifications_specs
    from notifications.settings import NotificationsSettings
    from notifications.signals import Signals

    specs = [
        *inventory_specs(InventorySettings()),
        *leasing_specs(LeasingSettings()),
        *notifications_specs(NotificationsSettings(), Signals()),
    ]
    actual = {
        spec.group_id: (
            spec.dlq_topic,
            {topic: set(routes.handlers) for topic, routes in spec.topics.items()},
        )
        for spec in specs
    }
    assert actual == CONSUMERS
    names = {s.name for s in load_topic_specs()}
    assert set(TOPICS) | set(DLQS) <= names
