"""Two processes of each back-end service on one PostgreSQL database (API, outbox relay,
consumers and delivery worker each), behind a round-robin "load balancer"; one process of each
is SIGKILLed in the middle of a stream of vacancy changes and not restarted.

Then: every acknowledged change is on Kafka once per event id, in per-unit order (the relays
take turns under an advisory lock); every expected alert reached its webhook receiver, mailbox
and feed exactly once per (event, subscription), never under two ids, and no webhook was sent
twice at the same time (the delivery workers claim with SKIP LOCKED); the survivors took the
killed processes' partitions, relay and deliveries over. The pause until every partition of
the leasing and notifications groups is consumed again (the killed member's session expiring,
see docs/operations.md, "Replicas") is measured from the committed offsets and logged.

The replicas run as static group members (``<PREFIX>KAFKA_GROUP_INSTANCE_ID``) beside the
first, dynamic, processes: a group may mix both. CI runs 200 changes over 24 units; more with
``FABRIQUE_E2E_REPLICA_CHANGES`` (``FABRIQUE_E2E_SCALE=full``: 600).

The kill leaves the shared PostgreSQL platform as it found it: the killed processes are
started again and the replicas stopped at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client.parser import text_string_to_metric_families

from fabkit.localstack.platform import Platform, ServiceProcess, start_replica

from .harness import (
    SCALE,
    UNIT_TOPIC,
    VACANCY_OPENED,
    Api,
    Counts,
    KafkaTap,
    Mailbox,
    ReceiverHub,
    end_offsets,
    header_map,
)
from .scenario import World, check_events, converged, fill_writes, toggle_stream

log = logging.getLogger(__name__)

CHANGES = int(
    os.environ.get("FABRIQUE_E2E_REPLICA_CHANGES", "").strip()
    or (600 if SCALE.name == "full" else 200)
)
UNITS = 24
#: The services with workers (relay, consumers, delivery worker); the portal holds no state.
REPLICATED = ("inventory", "leasing", "notifications")
HOLD_S = 0.3  # each webhook answer waits this long, so sends are in flight at the kill

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420 + CHANGES)]


class BalancedApi(Api):
    """The public APIs behind a round-robin load balancer over a service's live processes
    (a killed one leaves the rotation, as a failing readiness probe takes a pod out)."""

    def __init__(self, platform: Platform, client: httpx.AsyncClient) -> None:
        super().__init__(platform, client)
        self.live: dict[str, list[ServiceProcess]] = {}
        self._turns: dict[str, Any] = {}

    def rotate(self, service: str, processes: list[ServiceProcess]) -> None:
        self.live[service] = processes
        self._turns[service] = itertools.cycle(processes)

    def url(self, service: str, path: str) -> str:
        if service in self._turns:
            return str(next(self._turns[service]).url) + path
        return super().url(service, path)


async def test_one_replica_of_each_killed_mid_stream(
    pg_platform: Platform,
    http: httpx.AsyncClient,
    mailbox_for: Callable[[Platform], Mailbox],
    receiver_hub: ReceiverHub,
    report: Callable[[Counts], None],
) -> None:
    platform = pg_platform
    started = time.monotonic()
    firsts = {name: platform.services[name] for name in REPLICATED}
    replicas = await asyncio.gather(
        *(
            asyncio.to_thread(start_replica, platform, name, _replica_env(platform, name))
            for name in REPLICATED
        )
    )
    survivors = dict(zip(REPLICATED, replicas, strict=True))
    api = BalancedApi(platform, http)
    for name in REPLICATED:
        api.rotate(name, [firsts[name], survivors[name]])
    try:
        await _run(platform, api, mailbox_for, receiver_hub, report, firsts, survivors, started)
    finally:
        for name in REPLICATED:
            first = firsts[name]
            if first.proc is None or first.proc.poll() is not None:
                await asyncio.to_thread(first.start)
            await asyncio.to_thread(survivors[name].stop)
            platform.replicas.get(name, []).remove(survivors[name])


async def _run(
    platform: Platform,
    api: BalancedApi,
    mailbox_for: Callable[[Platform], Mailbox],
    receiver_hub: ReceiverHub,
    report: Callable[[Counts], None],
    firsts: dict[str, ServiceProcess],
    survivors: dict[str, ServiceProcess],
    started: float,
) -> None:
    bootstrap = platform.broker.bootstrap
    receivers = [receiver_hub.make("hold", hold_s=HOLD_S) for _ in range(3)]
    world = await World.build(
        platform, api, mailbox_for(platform), receivers, units=UNITS, prefix="replicas"
    )
    # The groups whose pause is measured: those with traffic in this scenario (inventory's
    # group reads lease events, which this stream does not make).
    groups = {"leasing": [UNIT_TOPIC], "notifications": [UNIT_TOPIC]}
    tap = await KafkaTap.open(bootstrap, UNIT_TOPIC)
    before: dict[str, dict[str, float]] = {}
    timeline: dict[str, Any] = {}
    takeover: dict[str, float] = {}
    killed_work: dict[str, dict[str, float]] = {}

    def kill() -> Any:
        async def run() -> None:
            timeline["killed_at_change"] = len(world.writes)
            timeline["webhooks_in_flight_at_kill"] = sum(r.inflight for r in receivers)
            killed_work.update({name: await _work(p) for name, p in firsts.items()})
            for name, first in firsts.items():
                api.rotate(name, [survivors[name]])
                first.kill()  # SIGKILL, not restarted until the checks are done
            killed_at = time.monotonic()
            timeline["killed_s"] = killed_at - started
            before.update({name: await _work(p) for name, p in survivors.items()})
            takeover.update(await _takeover(bootstrap, groups, killed_at))

        return run()

    await toggle_stream(
        world, CHANGES, seconds=max(25.0, CHANGES / 8), on_progress={CHANGES // 3: kill}
    )
    for name, seconds in takeover.items():
        log.warning(
            "replicas: group %s consuming every partition %.1f s after the kill", name, seconds
        )

    # A change whose answer was lost with the killed process may still have committed: its
    # opening is published, so its alerts are due too.
    unanswered = await _opened_without_answer(tap, world)
    for vacancy_id in unanswered:
        world.book.expect(vacancy_id)
    observed = await world.book.settle(timeout=180 + CHANGES / 2, quiet=4)
    events = await check_events(tap, world)
    differences = await converged(world, platform)
    after = {name: await _work(p) for name, p in survivors.items()}
    overlapping = _overlapping_sends(receivers)

    counts = Counts("one replica of each SIGKILLed mid-stream", "postgres")
    fill_writes(counts, world, events)
    world.book.fill(counts, observed)
    counts.extra.update(timeline)
    counts.extra["committed_without_answer_opened"] = len(unanswered)
    counts.extra["takeover_s"] = {k: round(v, 1) for k, v in takeover.items()}
    counts.extra["survivor_work"] = {
        name: {k: after[name][k] - before[name][k] for k in after[name]} for name in after
    }
    counts.extra["killed_work_before_kill"] = killed_work
    counts.extra["webhook_sends_overlapping"] = len(overlapping)
    counts.seconds = time.monotonic() - started
    report(counts)

    assert timeline.get("killed_at_change") == CHANGES // 3, timeline
    assert counts.acknowledged >= counts.sent - 2, [
        w for w in world.writes if w.outcome != "acknowledged"
    ][:5]
    assert not events.missing, events.missing[:10]
    assert not events.out_of_order, events.out_of_order
    assert counts.lost == 0, world.book.explain(observed)
    assert counts.distinct_duplicates == 0, world.book.explain(observed)
    assert counts.extra["unexpected_alerts"] == 0, world.book.explain(observed)
    assert not observed.unverified, observed.unverified[:5]
    assert not overlapping, overlapping[:5]
    assert not differences, differences
    assert set(takeover) == set(groups), f"not every group was taken over: {takeover}"
    # The killed processes were doing their share (each consumer held partitions) ...
    assert killed_work["leasing"]["consumed"] > 0, killed_work
    assert killed_work["notifications"]["consumed"] > 0, killed_work
    work = counts.extra["survivor_work"]
    # ... and the survivors did all of it after the kill: inventory's relay published, leasing's and
    # notifications' consumers consumed, notifications' worker delivered.
    assert work["inventory"]["published"] > 0, work
    assert work["leasing"]["consumed"] > 0, work
    assert work["notifications"]["consumed"] > 0, work
    assert work["notifications"]["delivered"] > 0, work


def _replica_env(platform: Platform, name: str) -> dict[str, str]:
    prefix = platform.services[name].spec.env_prefix
    return {
        f"{prefix}KAFKA_CLIENT_ID": f"{name}-2",
        f"{prefix}KAFKA_GROUP_INSTANCE_ID": f"{name}-2",
    }


async def _takeover(
    bootstrap: str, groups: dict[str, list[str]], killed_at: float, timeout: float = 120
) -> dict[str, float]:
    """Seconds from the kill until every partition of each group that had records to consume
    saw its committed offset move again: the survivor's own partitions move at once, the
    killed member's once the group gave them to the survivor."""
    start = {g: await _committed(bootstrap, g) for g in groups}
    moved: dict[str, dict[Any, float]] = {g: {} for g in groups}
    done: dict[str, float] = {}
    while len(done) < len(groups) and time.monotonic() < killed_at + timeout:
        for group, topics in groups.items():
            if group in done:
                continue
            with contextlib.suppress(Exception):
                ends = await end_offsets(bootstrap, topics)
                committed = await _committed(bootstrap, group)
                now = time.monotonic()
                for tp, offset in committed.items():
                    if offset > start[group].get(tp, 0):
                        moved[group].setdefault(tp, now - killed_at)
                behind = [tp for tp, end in ends.items() if end > start[group].get(tp, 0)]
                if behind and all(tp in moved[group] for tp in behind):
                    done[group] = max(moved[group][tp] for tp in behind)
        await asyncio.sleep(0.25)
    return done


async def _committed(bootstrap: str, group: str) -> dict[Any, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


async def _work(process: ServiceProcess) -> dict[str, float]:
    """What one process did so far, from its own /metrics."""
    async with httpx.AsyncClient(timeout=10) as client:
        text = (await client.get(f"{process.url}/metrics")).text
    totals: dict[str, float] = defaultdict(float)
    names = {
        "events_published": "published",
        "events_consumed": "consumed",
        "notifications_deliveries": "delivered",
    }
    for family in text_string_to_metric_families(text):
        key = names.get(family.name)
        if key is None:
            continue
        for sample in family.samples:
            if sample.name.endswith("_total"):
                totals[key] += sample.value
    return {k: totals.get(k, 0.0) for k in names.values()}


def _overlapping_sends(receivers: list[Any]) -> list[str]:
    """Webhook ids received again while an earlier request with the same id was still being
    answered: one delivery sent by two workers at once."""
    found = []
    for receiver in receivers:
        by_id: dict[str, list[float]] = defaultdict(list)
        for hit in list(receiver.hits):
            by_id[hit.webhook_id].append(hit.at)
        for webhook_id, times in by_id.items():
            times.sort()
            if any(b - a < HOLD_S for a, b in itertools.pairwise(times)):
                found.append(f"{webhook_id}: {times}")
    return found


async def _opened_without_answer(tap: KafkaTap, world: World) -> set[str]:
    acked = {w.vacancy_id for w in world.acknowledged if w.vacancy_id}
    units = {u["id"] for u in world.units}
    found = set()
    for record in await tap.read(UNIT_TOPIC):
        if (
            record.key
            and record.key.decode() in units
            and header_map(record)["ce_type"] == VACANCY_OPENED
        ):
            vacancy = json.loads(record.value)["vacancy_id"]
            if vacancy not in acked:
                found.add(vacancy)
    return found
