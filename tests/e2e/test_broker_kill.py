"""The broker is SIGKILLed in the middle of a stream of vacancy changes and restarted a third of
the stream later. Every change the API acknowledged reaches Kafka (in per-unit order), every
acknowledged opening reaches every subscriber on every channel, and no subscriber sees one alert
under two ids.

CI runs 120 changes; the issue's 500: ``FABRIQUE_E2E_SCALE=full`` (or
``FABRIQUE_E2E_CHANGES=500``), see docs/reliability.md."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from fabkit.localstack.platform import Platform

from .conftest import database_of
from .harness import SCALE, UNIT_TOPIC, Api, Counts, KafkaTap, Mailbox, ReceiverHub
from .scenario import World, check_events, converged, fill_writes, toggle_stream

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300 + SCALE.broker_kill_changes)]


async def test_broker_killed_mid_stream_loses_nothing(
    e2e_platform: Platform,
    api_for: Callable[[Platform], Api],
    mailbox_for: Callable[[Platform], Mailbox],
    receiver_hub: ReceiverHub,
    report: Callable[[Counts], None],
) -> None:
    platform = e2e_platform
    broker = platform.broker
    started = time.monotonic()
    changes = SCALE.broker_kill_changes
    world = await World.build(
        platform,
        api_for(platform),
        mailbox_for(platform),
        [receiver_hub.make("ok") for _ in range(3)],
        units=8,
        prefix="brokerkill",
    )
    tap = await KafkaTap.open(broker.bootstrap, UNIT_TOPIC)
    timeline: dict[str, float] = {}

    def kill() -> Any:
        async def run() -> None:
            timeline["killed_at_change"] = len(world.writes)
            await asyncio.to_thread(broker.kill)
            timeline["killed_s"] = time.monotonic() - started

        return run()

    def restart() -> Any:
        async def run() -> None:
            timeline["restart_at_change"] = len(world.writes)
            t0 = time.monotonic()
            await asyncio.to_thread(broker.restart)
            timeline["restart_took_s"] = time.monotonic() - t0
            timeline["restarted_at_change"] = len(world.writes)

        return run()

    try:
        await toggle_stream(
            world,
            changes,
            seconds=max(30.0, changes / 8),
            on_progress={changes // 3: kill, (2 * changes) // 3: restart},
        )
    finally:
        if not broker.is_running:
            await asyncio.to_thread(broker.restart)

    observed = await world.book.settle(timeout=120 + changes)
    events = await check_events(tap, world)
    differences = await converged(world, platform)

    counts = Counts("broker SIGKILL mid-stream", database_of(platform))
    fill_writes(counts, world, events)
    world.book.fill(counts, observed)
    counts.extra.update({k: round(v, 1) for k, v in timeline.items()})
    counts.seconds = time.monotonic() - started
    report(counts)

    assert timeline.get("killed_at_change", changes) < timeline.get("restart_at_change", 0), (
        "the broker was not down while the stream went on"
    )
    assert counts.acknowledged == counts.sent, [
        w for w in world.writes if w.outcome != "acknowledged"
    ][:5]
    assert not events.missing, events.missing[:10]
    assert not events.out_of_order, events.out_of_order
    assert counts.lost == 0, world.book.explain(observed)
    assert counts.distinct_duplicates == 0, world.book.explain(observed)
    assert counts.extra["unexpected_alerts"] == 0, world.book.explain(observed)
    assert not observed.unverified, observed.unverified[:5]
    assert not differences, differences
