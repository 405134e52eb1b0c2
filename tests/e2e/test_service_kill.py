"""Services SIGKILLed and started again, on SQLite and on PostgreSQL.

- inventory is killed while a burst of writes is being answered: the moment half of them were
  acknowledged. Every acknowledged write (and every write that committed without its answer
  getting out) is published after the restart, and its alerts arrive.
- notifications is killed while webhook sends are in flight (receivers answer after a pause),
  and vacancies keep opening while it is down. After the restart every alert arrives; the
  interrupted sends come again under the same webhook-id, never under a new one.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import pytest

from fabkit.localstack.platform import Platform

from .conftest import database_of
from .harness import (
    SCALE,
    UNIT_TOPIC,
    Api,
    Counts,
    KafkaTap,
    Mailbox,
    ReceiverHub,
    eventually,
    header_map,
)
from .scenario import World, check_events, converged, fill_writes

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]


async def test_inventory_killed_right_after_acknowledging_writes(
    scenario_platform: Platform,
    api_for: Callable[[Platform], Api],
    mailbox_for: Callable[[Platform], Mailbox],
    receiver_hub: ReceiverHub,
    report: Callable[[Counts], None],
) -> None:
    platform = scenario_platform
    inventory = platform.services["inventory"]
    started = time.monotonic()
    burst = 10
    rounds = max(1, SCALE.inventory_kill_writes // burst)
    world = await World.build(
        platform,
        api_for(platform),
        mailbox_for(platform),
        [receiver_hub.make("ok") for _ in range(2)],
        units=burst,
        prefix="invkill",
    )
    tap = await KafkaTap.open(platform.broker.bootstrap, UNIT_TOPIC)
    state = {u["id"]: u["status"] for u in world.units}
    unpublished_at_kill = 0
    acked_at_kill = 0
    try:
        for _ in range(rounds):
            before = len(world.writes)
            tasks = [
                asyncio.create_task(
                    world.change(uid, "unavailable" if st == "available" else "available")
                )
                for uid, st in state.items()
            ]

            def acked(first: int = before) -> int:
                return sum(1 for w in world.writes[first:] if w.outcome == "acknowledged")

            deadline = time.monotonic() + 30
            while acked() < burst // 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.002)
            inventory.kill()  # SIGKILL, with the other half of the burst in flight
            await asyncio.gather(*tasks)
            this_round = [w for w in world.writes[before:] if w.outcome == "acknowledged"]
            acked_at_kill += len(this_round)
            on_kafka = await check_events(tap, world)
            unpublished_at_kill += sum(
                1 for w in this_round if w.version not in on_kafka.versions.get(w.unit_id, [])
            )
            await asyncio.to_thread(inventory.start)
            for uid in state:
                state[uid] = (await world.api.unit(uid))["status"]
    finally:
        if inventory.proc is None or inventory.proc.poll() is not None:
            await asyncio.to_thread(inventory.start)

    # Writes that committed although their answer was lost are published too: expect their
    # alerts as well.
    unanswered_committed = await _opened_without_answer(tap, world)
    for vacancy_id in unanswered_committed:
        world.book.expect(vacancy_id)
    observed = await world.book.settle(timeout=180)
    events = await check_events(tap, world)
    differences = await converged(world, platform)
    stale = []
    for unit in world.units:
        current = await world.api.unit(unit["id"])
        changed = current["version"] != unit["version"]  # some write of this test committed
        if changed and events.last_version.get(unit["id"]) != current["version"]:
            stale.append(f"{unit['id']}: v{current['version']} in inventory, "
                         f"v{events.last_version.get(unit['id'])} last on Kafka")  # fmt: skip

    counts = Counts("inventory SIGKILL after acks", database_of(platform))
    fill_writes(counts, world, events)
    world.book.fill(counts, observed)
    counts.extra.update(
        kills=rounds,
        acknowledged_in_kill_bursts=acked_at_kill,
        acknowledged_not_yet_published_at_kill=unpublished_at_kill,
        committed_without_answer_opened=len(unanswered_committed),
    )
    counts.seconds = time.monotonic() - started
    report(counts)

    assert not events.missing, events.missing[:10]
    assert not stale, f"committed writes without their events: {stale}"
    assert not events.out_of_order, events.out_of_order
    assert counts.lost == 0, world.book.explain(observed)
    assert counts.distinct_duplicates == 0, world.book.explain(observed)
    assert not observed.unverified, observed.unverified[:5]
    assert not differences, differences


async def _opened_without_answer(tap: KafkaTap, world: World) -> set[str]:
    acked = {w.vacancy_id for w in world.acknowledged if w.vacancy_id}
    units = {u["id"] for u in world.units}
    found = set()
    for record in await tap.read(UNIT_TOPIC):
        if (
            record.key
            and record.key.decode() in units
            and header_map(record)["ce_type"] == "inventory.unit.vacancy_opened.v1"
        ):
            vacancy = json.loads(record.value)["vacancy_id"]
            if vacancy not in acked:
                found.add(vacancy)
    return found


async def test_notifications_killed_mid_delivery(
    scenario_platform: Platform,
    api_for: Callable[[Platform], Api],
    mailbox_for: Callable[[Platform], Mailbox],
    receiver_hub: ReceiverHub,
    report: Callable[[Counts], None],
) -> None:
    platform = scenario_platform
    notifications = platform.services["notifications"]
    started = time.monotonic()
    vacancies = SCALE.notifications_kill_vacancies
    receivers = [receiver_hub.make("hold", hold_s=0.8) for _ in range(2)]
    world = await World.build(
        platform, api_for(platform), mailbox_for(platform), receivers, units=vacancies,
        prefix="notifkill",
    )  # fmt: skip
    tap = await KafkaTap.open(platform.broker.bootstrap, UNIT_TOPIC)
    first, second = world.units[: vacancies // 2], world.units[vacancies // 2 :]
    try:
        for unit in first:
            await world.change(unit["id"], "available")

        async def sends_in_flight() -> bool:
            answered = sum(1 for r in receivers for h in r.hits if h.answered == 200)
            return answered > 0 and sum(r.inflight for r in receivers) > 0

        await eventually(sends_in_flight, timeout=60, interval=0.05, what="webhook sends in flight")
        in_flight = sum(r.inflight for r in receivers)
        answered_before = sum(1 for r in receivers for h in r.hits if h.answered == 200)
        notifications.kill()
        # Vacancies keep opening while notifications is down.
        for unit in second:
            await world.change(unit["id"], "available")
        await asyncio.to_thread(notifications.start)
    finally:
        if notifications.proc is None or notifications.proc.poll() is not None:
            await asyncio.to_thread(notifications.start)

    observed = await world.book.settle(timeout=180, quiet=3)
    events = await check_events(tap, world)
    counts = Counts("notifications SIGKILL mid-delivery", database_of(platform))
    fill_writes(counts, world, events)
    world.book.fill(counts, observed)
    counts.extra.update(
        webhook_sends_in_flight_at_kill=in_flight, webhooks_answered_before_kill=answered_before
    )
    counts.seconds = time.monotonic() - started
    report(counts)

    assert counts.acknowledged == counts.sent == vacancies
    assert not events.missing, events.missing[:10]
    assert counts.lost == 0, world.book.explain(observed)
    assert counts.distinct_duplicates == 0, world.book.explain(observed)
    assert counts.extra["unexpected_alerts"] == 0, world.book.explain(observed)
    assert not observed.unverified, observed.unverified[:5]
