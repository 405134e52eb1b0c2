"""Throughput with replicas: one process of each consumer service against two, on PostgreSQL.

    python -m bench --only replicas            # 10,000 webhook searches, ~10 minutes
    python -m bench --only replicas --quick    # a smoke run: 1,000 searches, short steps

One platform on PostgreSQL (replicas need a database every process shares; on SQLite the rule
is one process per database file), seeded as rows 1–2 (bench/stack.py): 10,000 saved searches
with a webhook to the bench receiver, 200 artisans, the fan-out units and one unit per "cell"
for the sustained load. Then, in this order, in the same run:

1. **fan-out, one delivery worker**: one PATCH opens a vacancy that every search matches; time
   from the PATCH returning to the last webhook at the receiver, deliveries/s, and the CPU each
   process used per delivery;
2. **sustained, one replica**: vacancies at a steady rate (open loop) for `step_seconds`, the
   backlogs sampled twice a second — leasing's and notifications' consumer-group lag on
   `inventory.unit.events` (committed offsets against the partition ends, read from the
   broker) and the webhooks not yet received — and the rate raised until one of them grows
   (`growing`), then bisected (`next_rate`): the highest rate with no growing backlog;
3. a second process of leasing and of notifications is started (`stack.start_replica`: same
   settings, same database and consumer groups, another port) and both groups are waited for
   to settle with two members each;
4. **fan-out, two delivery workers** (the workers claim with `FOR UPDATE SKIP LOCKED`), then
   5. **sustained, two replicas**, as 1 and 2.

The sustained load goes straight to the topic: the bench writes inventory's own
`inventory.unit.vacancy_opened.v1` events (inventory's payload classes over the seeded units,
the envelope and key its relay publishes) with fabkit's producer, so the rate offered to the
consumers is not capped by inventory's PATCH (row 3 of the benchmarks: one inventory process
is itself near its limit well below the consumers'). Each event opens a fresh vacancy on a
cell unit (one or two matching searches: one or two webhooks), with the unit's version raised
at each reuse so read models apply it.

Every figure comes with the CPU each process used (PostgreSQL: the postmaster and all its
backends) and the load average around it: on two cores a second process shares the same cores
as the broker, PostgreSQL, the receiver and the load generator, so a ratio two / one shows
contention on this machine, not the design's ceiling; the CPU per delivery and per vacancy are
what a bigger machine scales from.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench import say
from bench.backlog import growing, next_rate, slope_half
from bench.stack import Stack, cpu_seconds, searches_in_cell

ROOT = Path(__file__).resolve().parents[1]
UNIT_TOPIC = "inventory.unit.events"
GROUPS = ("leasing", "notifications")
SAMPLE_S = 0.5


# Measurement tools ----------------------------------------------------------------------------


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _cpu_of(pids: Sequence[int]) -> dict[int, float]:
    out = {}
    for pid in pids:
        try:
            out[pid] = cpu_seconds(pid)
        except (OSError, ValueError, IndexError):
            continue  # a PostgreSQL backend that ended
    return out


@dataclass
class CpuWindow:
    """CPU seconds of every process of the platform (replicas, PostgreSQL's backends, the
    receiver, this process: the load generator) between start() and stop()."""

    stack: Stack
    started: float = 0.0
    before: dict[str, dict[int, float]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    wall: float = 0.0

    def _groups(self) -> dict[str, list[int]]:
        groups = {name: [pid] for name, pid in self.stack.pids().items()}
        groups["postgres"] = self.stack.postgres_pids()
        groups["receiver"] = [self.stack.receiver.pid]
        groups["client"] = [os.getpid()]
        return groups

    def start(self) -> CpuWindow:
        self.started = time.monotonic()
        self.before = {name: _cpu_of(pids) for name, pids in self._groups().items()}
        return self

    def stop(self) -> CpuWindow:
        self.wall = max(time.monotonic() - self.started, 1e-9)
        for name, pids in self._groups().items():
            now = _cpu_of(pids)
            before = self.before.get(name, {})
            # A backend started inside the window counts from zero; one that ended inside it
            # is lost (PostgreSQL's pooled connections live for the whole run).
            self.seconds[name] = sum(v - before.get(pid, 0.0) for pid, v in now.items())
        return self

    def percent(self) -> dict[str, float]:
        return {k: round(100 * v / self.wall, 1) for k, v in self.seconds.items()}

    def ms_per(self, count: int) -> dict[str, float]:
        return {k: round(1000 * v / max(count, 1), 3) for k, v in self.seconds.items()}


class GroupLag:
    """Records behind the partition ends for each consumer group, read from the broker (the
    groups' committed offsets), so every replica's partitions count, whichever owns them."""

    def __init__(self, bootstrap: str, topic: str, partitions: int) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition
        from aiokafka.admin import AIOKafkaAdminClient

        self.partitions = [TopicPartition(topic, p) for p in range(partitions)]
        self.admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-lag")
        self.reader = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=None, client_id="bench-lag"
        )

    async def start(self) -> None:
        await self.admin.start()
        await self.reader.start()

    async def close(self) -> None:
        await self.reader.stop()
        await self.admin.close()

    async def lag(self) -> dict[str, int]:
        ends = await self.reader.end_offsets(self.partitions)
        begins: dict[Any, int] | None = None
        out = {}
        for group in GROUPS:
            committed = await self.admin.list_consumer_group_offsets(
                group, partitions=self.partitions
            )
            total = 0
            for tp in self.partitions:
                meta = committed.get(tp)
                if meta is None or meta.offset < 0:
                    if begins is None:
                        begins = await self.reader.beginning_offsets(self.partitions)
                    total += ends[tp] - begins[tp]
                else:
                    total += max(0, ends[tp] - meta.offset)
            out[group] = total
        return out

    async def members(self, group: str) -> tuple[str, int]:
        """The group's state and number of members."""
        (response,) = await self.admin.describe_consumer_groups([group])
        described = response.groups[0]
        return str(described[2]), len(described[5])


def _partitions_of(topic: str) -> int:
    topics = json.loads((ROOT / "deploy" / "topics.json").read_text(encoding="utf-8"))["topics"]
    return int(next(t["partitions"] for t in topics if t["name"] == topic))


async def _delivered_by_process(stack: Stack) -> dict[str, float]:
    """Each notifications process's `notifications_deliveries_total` of delivered webhooks."""
    out: dict[str, float] = {}
    names = ["notifications", *(n for n in stack.replicas if n.startswith("notifications-"))]
    async with httpx.AsyncClient(timeout=10, trust_env=False) as client:
        for name in names:
            text = (await client.get(f"{stack.url(name)}/metrics")).text
            out[name] = sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("notifications_deliveries_total{")
                and 'channel="webhook"' in line
                and 'outcome="delivered"' in line
            )
    return out


# 1 and 4: fan-out -----------------------------------------------------------------------------


async def fanout(stack: Stack, unit_id: str, timeout: float) -> dict[str, Any]:
    await stack.receiver.take()
    load_before = load_average()
    delivered_before = await _delivered_by_process(stack)
    cpu = CpuWindow(stack).start()
    async with httpx.AsyncClient(timeout=30, trust_env=False) as client:
        response = await client.patch(
            f"{stack.url('inventory')}/v1/units/{unit_id}",
            headers={"Authorization": f"Bearer {stack.landlord_token}"},
            json={"status": "available"},
        )
    returned = time.monotonic()
    if response.status_code != 200:
        raise RuntimeError(f"fan-out PATCH: {response.status_code} {response.text[:300]}")
    vacancy = response.json()["vacancy_id"]
    await stack.receiver.wait_for(stack.subscriptions, timeout=timeout, quiet=0.5)
    cpu.stop()
    delivered_after = await _delivered_by_process(stack)
    notes = [n for n in await stack.receiver.take() if n[1] == vacancy]
    times = sorted(n[0] for n in notes)
    if not times:
        raise RuntimeError(f"no fan-out webhook within {timeout} s")
    per_s = len(times) / max(times[-1] - times[0], 1e-9)
    return {
        "expected": stack.subscriptions,
        "received": len(times),
        "distinct": len({n[2] for n in notes}),
        "first_s": times[0] - returned,
        "last_s": times[-1] - returned,
        "per_s": per_s,
        "delivered_by_process": {
            k: delivered_after[k] - delivered_before.get(k, 0.0) for k in delivered_after
        },
        "cpu_percent": cpu.percent(),
        "cpu_ms_per_delivery": cpu.ms_per(len(times)),
        "load": [load_before, load_average()],
    }


# 2 and 5: sustained vacancies/s ---------------------------------------------------------------


class VacancySource:
    """inventory's vacancy_opened events for the bench's cell units, written to its topic."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.snapshots: list[Any] = []
        self.expected: list[int] = []
        self.versions: list[int] = []
        self.producer: Any = None
        self.source = "/fabrique/inventory"

    async def load(self) -> None:
        from sqlalchemy import select

        from fabkit.db import make_engine, make_session_factory
        from fabkit.kafka import make_producer
        from inventory.events.published import UnitSnapshot
        from inventory.models import Landlord, Site, Unit
        from inventory.settings import InventorySettings

        self.source = InventorySettings().event_source
        ids = [u["id"] for u in self.stack.latency_units]
        cells = {u["id"]: u["cell"] for u in self.stack.latency_units}
        engine = make_engine(self.stack.db_url("inventory"))
        try:
            async with make_session_factory(engine)() as session:
                rows = (
                    await session.execute(
                        select(Unit, Site, Landlord)
                        .join(Site, Site.id == Unit.site_id)  # type: ignore[arg-type]
                        .join(Landlord, Landlord.id == Unit.landlord_id)  # type: ignore[arg-type]
                        .where(Unit.id.in_(ids))  # type: ignore[attr-defined]
                    )
                ).all()
        finally:
            await engine.dispose()
        for unit, site, landlord in rows:
            snapshot = UnitSnapshot.of(unit, site, landlord)
            self.snapshots.append(snapshot.model_copy(update={"status": "available"}))
            self.expected.append(searches_in_cell(cells[unit.id], self.stack.subscriptions))
            self.versions.append(unit.version)
        if not self.snapshots:
            raise RuntimeError("no cell units seeded for the sustained load")
        self.producer = make_producer(self.stack.platform.broker.bootstrap, "bench-vacancies")
        await self.producer.start()
        self._next = 0

    @property
    def webhooks_per_vacancy(self) -> float:
        return sum(self.expected) / len(self.expected)

    async def send(self) -> tuple[Any, int]:
        """Stage one vacancy (not awaited: the producer batches); returns its future and the
        webhooks it should bring."""
        from fabkit.events import CloudEvent, encode_data, to_kafka_headers
        from inventory.events.published import VacancyOpened

        i = self._next % len(self.snapshots)
        self._next += 1
        self.versions[i] += 1
        unit = self.snapshots[i].model_copy(update={"version": self.versions[i]})
        payload = VacancyOpened(
            vacancy_id=str(uuid.uuid4()), opened_at=datetime.now(UTC), unit=unit
        )
        event = CloudEvent.of(payload, source=self.source, subject=unit.unit_id)
        future = await self.producer.send(
            UNIT_TOPIC,
            value=encode_data(event),
            key=unit.unit_id.encode(),
            headers=to_kafka_headers(event),
        )
        return future, self.expected[i]

    async def close(self) -> None:
        if self.producer is not None:
            await self.producer.stop()


async def sustained_step(
    stack: Stack, source: VacancySource, lag: GroupLag, rate: float, seconds: float, drain_s: float
) -> dict[str, Any]:
    """`rate` vacancies/s for `seconds` (open loop), backlogs sampled every SAMPLE_S until
    they are all back at zero or `drain_s` after the load stopped."""
    await stack.receiver.take()
    load_before = load_average()
    samples: dict[str, list[tuple[float, float]]] = {g: [] for g in GROUPS}
    samples["webhooks"] = []
    state = {"expected": 0, "sent": 0}
    futures: list[Any] = []
    t0 = time.monotonic()

    async def sample() -> None:
        lags = await lag.lag()
        got = await stack.receiver.count()
        at = time.monotonic() - t0
        for group in GROUPS:
            samples[group].append((at, float(lags[group])))
        samples["webhooks"].append((at, float(max(0, state["expected"] - got))))

    cpu = CpuWindow(stack).start()
    stop_sampling = asyncio.Event()

    async def sampler() -> None:
        while not stop_sampling.is_set():
            await sample()
            await asyncio.sleep(SAMPLE_S)

    sampling = asyncio.create_task(sampler())
    count = int(rate * seconds)
    for i in range(count):
        delay = t0 + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        future, webhooks = await source.send()
        futures.append(future)
        state["expected"] += webhooks
        state["sent"] += 1
    sending = time.monotonic() - t0
    await asyncio.gather(*futures)
    cpu.stop()  # the steady part only: CPU per vacancy at this rate
    load_during = load_average()
    steady = {name: list(values) for name, values in samples.items()}
    # Drain: until every backlog is back at zero (or drain_s).
    drained_at: float | None = None
    deadline = time.monotonic() + drain_s
    while time.monotonic() < deadline:
        lags = await lag.lag()
        got = await stack.receiver.count()
        if all(v == 0 for v in lags.values()) and got >= state["expected"]:
            drained_at = time.monotonic() - t0 - sending
            break
        await asyncio.sleep(0.25)
    stop_sampling.set()
    await sampling
    notes = await stack.receiver.take()
    arrivals = {g: rate for g in GROUPS} | {"webhooks": rate * source.webhooks_per_vacancy}
    grew = {name: growing(values, arrivals[name]) for name, values in steady.items()}
    return {
        "offered_rate": rate,
        "achieved_rate": count / sending,
        "vacancies": count,
        "seconds": seconds,
        "expected_webhooks": state["expected"],
        "received": len(notes),
        "distinct": len({n[2] for n in notes}),
        "growing": grew,
        "slope_per_s": {name: round(slope_half(values), 2) for name, values in steady.items()},
        "max_backlog": {
            name: max((v for _, v in values), default=0) for name, values in steady.items()
        },
        "drained_s": drained_at,
        "ok": not any(grew.values()) and drained_at is not None,
        "cpu_percent": cpu.percent(),
        "cpu_ms_per_vacancy": cpu.ms_per(count),
        "load": [load_before, load_during],
    }


async def sustained(
    stack: Stack,
    source: VacancySource,
    lag: GroupLag,
    *,
    start_rate: float,
    max_rate: float,
    seconds: float,
    max_steps: int,
) -> dict[str, Any]:
    from bench.stack import settle

    steps: list[dict[str, Any]] = []
    passed: list[float] = []
    failed: list[float] = []
    while len(steps) < max_steps:
        rate = next_rate(passed, failed, start=start_rate, max_rate=max_rate)
        if rate is None:
            break
        step = await sustained_step(
            stack, source, lag, rate, seconds, drain_s=max(20.0, seconds * 2)
        )
        steps.append(step)
        (passed if step["ok"] else failed).append(rate)
        drained = "never" if step["drained_s"] is None else f"{step['drained_s']:.1f} s"
        say(
            f"    {rate:g}/s (achieved {step['achieved_rate']:.1f}): "
            f"{'ok' if step['ok'] else 'backlog grows'}; slopes "
            f"{', '.join(f'{k} {v:+.1f}/s' for k, v in step['slope_per_s'].items())}; "
            f"{step['received']}/{step['expected_webhooks']} webhooks; drained "
            f"{drained}; "
            f"load {step['load'][1]}"
        )
        await settle(stack, timeout=90)
    best = max(passed, default=None)
    best_step = next((s for s in steps if s["offered_rate"] == best and s["ok"]), None)
    return {
        "steps": steps,
        "highest_ok_rate": best,
        "lowest_failing_rate": min(failed, default=None),
        "at_highest": best_step,
    }


async def _wait_for_members(lag: GroupLag, wanted: int, timeout: float = 90.0) -> dict[str, Any]:
    """Until every group is Stable with `wanted` members (a replica's consumer has joined)."""
    deadline = time.monotonic() + timeout
    seen: dict[str, Any] = {}
    while time.monotonic() < deadline:
        seen = {g: await lag.members(g) for g in GROUPS}
        if all(state == "Stable" and n == wanted for state, n in seen.values()):
            return seen
        await asyncio.sleep(0.5)
    raise RuntimeError(f"consumer groups not settled with {wanted} members: {seen}")


# The whole section ----------------------------------------------------------------------------


async def run(
    work: Path,
    *,
    subscriptions: int,
    artisans: int,
    cell_units: int,
    fanout_timeout: float,
    start_rate: float,
    max_rate: float,
    step_seconds: float,
    max_steps: int,
) -> dict[str, Any]:
    from bench import stack as stacks

    out: dict[str, Any] = {
        "sizes": {
            "subscriptions": subscriptions,
            "artisans": artisans,
            "cell_units": cell_units,
            "step_seconds": step_seconds,
        }
    }
    say("replicas: starting the platform on PostgreSQL")
    s = await stacks.start(work, database="postgres")
    source = VacancySource(s)
    lag = GroupLag(s.platform.broker.bootstrap, UNIT_TOPIC, _partitions_of(UNIT_TOPIC))
    try:
        await stacks.seed_inventory(s, cell_units + 2, cell_units, 2)
        await stacks.seed_artisans(s, artisans)
        await stacks.seed_subscriptions(s, subscriptions)
        s.seeding["settle_s"] = await stacks.settle(s)
        out["seeding"] = s.seeding
        say(f"replicas: seeded {json.dumps(s.seeding)}")
        await source.load()
        await lag.start()
        out["webhooks_per_vacancy"] = source.webhooks_per_vacancy
        for replicas in (1, 2):
            if replicas == 2:
                say("replicas: starting leasing-2 and notifications-2")
                for service in ("leasing", "notifications"):
                    await stacks.start_replica(s, service)
                out["groups_with_two"] = await _wait_for_members(lag, 2)
                await stacks.settle(s)
            key = str(replicas)
            unit = s.fanout_units[replicas - 1]
            say(f"  fan-out to {subscriptions} webhooks, {replicas} delivery worker(s)")
            f = await fanout(s, unit, fanout_timeout)
            out.setdefault("fanout", {})[key] = f
            say(
                f"    {f['received']}/{f['expected']} in {f['last_s']:.1f} s "
                f"({f['per_s']:.0f}/s), per process {f['delivered_by_process']}, "
                f"load {f['load'][1]}"
            )
            await stacks.settle(s, timeout=max(120.0, fanout_timeout))
            say(f"  sustained vacancies/s, {replicas} replica(s) of leasing and notifications")
            out.setdefault("sustained", {})[key] = await sustained(
                s,
                source,
                lag,
                start_rate=start_rate,
                max_rate=max_rate,
                seconds=step_seconds,
                max_steps=max_steps,
            )
        out["ratios"] = ratios(out)
    finally:
        await source.close()
        try:
            await lag.close()
        finally:
            await s.close()
    return out


def ratios(out: dict[str, Any]) -> dict[str, float | None]:
    """Two processes over one, from the same run."""

    def ratio(a: float | None, b: float | None) -> float | None:
        return round(a / b, 2) if a and b else None

    f1, f2 = out["fanout"]["1"], out["fanout"]["2"]
    s1, s2 = out["sustained"]["1"], out["sustained"]["2"]
    return {
        "fanout_per_s": ratio(f2["per_s"], f1["per_s"]),
        "fanout_last_s": ratio(f2["last_s"], f1["last_s"]),
        "sustained_rate": ratio(s2["highest_ok_rate"], s1["highest_ok_rate"]),
    }
