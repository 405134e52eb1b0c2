"""On a three-node Kafka cluster (replication factor 3, ``min.insync.replicas=2``) the leader of
the partitions in use is SIGKILLed in the middle of a stream of unit changes, and a second node
for a moment after it. Every change the API acknowledged is published, each event id once, in
per-unit order; while only one replica runs nothing written is acknowledged and the outbox keeps
the rows until the cluster can take them; inventory's consumer goes on after the leaders moved.

The real inventory app runs in-process (as in test_broker_outage.py): the test reads its outbox
and metrics directly, and the time goes to the three JVMs rather than to three more services.
One cluster serves both databases (starting three JVMs costs 20-50 s on two shared cores); each
run finds the leaders where the previous one left them.

CI runs 150 changes; the issue's 500 with ``FABRIQUE_E2E_SCALE=full`` (any length with
``FABRIQUE_CLUSTER_CHANGES``). See docs/reliability.md."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import murmur2
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from fabkit.events import encode_data, to_kafka_headers
from fabkit.localstack.kafka import KafkaCluster, load_topic_specs, start_cluster
from fabkit.models import OutboxMessage
from fabkit.testing import STARTED, fail_or_skip
from inventory.cli import migrate
from inventory.main import create_app

from .conftest import Api, headers_of, make_settings
from .test_lease_events import LEASE_TOPIC, lease_event

UNIT_TOPIC = "inventory.unit.events"
FULL = os.environ.get("FABRIQUE_E2E_SCALE", "ci").strip().lower() == "full"
CHANGES = int(os.environ.get("FABRIQUE_CLUSTER_CHANGES") or (500 if FULL else 150))
UNITS = 6
#: How long the second node stays dead ("a moment"), at least.
SECOND_DOWN_S = 10.0 if FULL else 6.0

pytestmark = pytest.mark.timeout(240 + CHANGES)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    started = time.monotonic()
    try:
        cluster = start_cluster(tmp_path_factory.mktemp("kafka-cluster"), 3)
    except Exception as exc:
        fail_or_skip(f"cannot start a local Kafka cluster of 3: {exc}")
    cluster.started_in_s = time.monotonic() - started  # type: ignore[attr-defined]
    STARTED.append(f"Kafka {cluster.version} cluster of 3 (KRaft) on {cluster.bootstrap}")
    try:
        yield cluster
    finally:
        cluster.stop()


def partition_of(key: str, partitions: int) -> int:
    """The partition aiokafka's default partitioner picks for `key` (Java's murmur2)."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


class ProducerErrors(logging.Handler):
    """Counts, by error class, what the brokers answered aiokafka's producer (it retries)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.kinds: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        found = re.findall(r"(\w+Error)\b", record.getMessage())
        self.kinds[found[-1] if found else "other"] += 1

    @classmethod
    @contextmanager
    def attached(cls) -> Iterator[ProducerErrors]:
        handler = cls()
        sender = logging.getLogger("aiokafka.producer.sender")
        sender.addHandler(handler)
        try:
            yield handler
        finally:
            sender.removeHandler(handler)


@dataclass
class Stream:
    """PATCHes toggling the units' status, paced over `seconds`."""

    client: httpx.AsyncClient
    owner: dict[str, str]
    units: list[dict[str, Any]]
    sent: int = 0
    acknowledged: Counter[str] = field(default_factory=Counter)
    refused: list[str] = field(default_factory=list)

    async def run(self, changes: int, seconds: float) -> None:
        started = time.monotonic()
        for i in range(changes):
            unit = self.units[i % len(self.units)]
            status = "available" if (i // len(self.units)) % 2 == 0 else "unavailable"
            self.sent += 1
            r = await self.client.patch(
                f"/v1/units/{unit['id']}", json={"status": status}, headers=self.owner
            )
            if r.status_code == 200:
                self.acknowledged[unit["id"]] += 1
            else:
                self.refused.append(f"{r.status_code} {r.text[:200]}")
            delay = started + (i + 1) * seconds / changes - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)

    async def reach(self, n: int) -> None:
        while self.sent < n:
            await asyncio.sleep(0.05)


async def outbox_state(app: Any) -> tuple[int, int, int]:
    """(max outbox id, rows published, rows pending) right now."""
    async with app.state.runtime.sessions() as session:
        top, published, total = (
            await session.execute(
                select(
                    func.max(OutboxMessage.id),
                    func.count(OutboxMessage.published_at),
                    func.count(),
                )
            )
        ).one()
    return int(top or 0), int(published), int(total) - int(published)


async def published_after(app: Any, first_id: int) -> int:
    async with app.state.runtime.sessions() as session:
        return int(
            (
                await session.execute(
                    select(func.count()).where(
                        OutboxMessage.id > first_id,
                        OutboxMessage.published_at.is_not(None),  # type: ignore[union-attr]
                    )
                )
            ).scalar_one()
        )


async def _published_upto(app: Any, last_id: int) -> bool:
    async with app.state.runtime.sessions() as session:
        left = (
            await session.execute(
                select(func.count()).where(
                    OutboxMessage.id <= last_id,
                    OutboxMessage.published_at.is_(None),  # type: ignore[union-attr]
                )
            )
        ).scalar_one()
    return int(left) == 0


async def eventually(what: str, check: Callable[[], Awaitable[Any]], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = await check()
        except Exception as exc:  # a node of the cluster may be down
            last = exc
        else:
            if last:
                return last
        await asyncio.sleep(0.25)
    raise AssertionError(f"{what} not seen after {timeout:.0f}s (last: {last!r})")


async def read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every record of `topic`, from the beginning to the end offsets of now."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[Any] = []
        async with asyncio.timeout(60):
            while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    records.extend(batch)
        return records
    finally:
        await consumer.stop()


async def sign_lease(bootstrap: str, unit: dict[str, Any]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        event = lease_event("signed", unit)
        await producer.send_and_wait(
            LEASE_TOPIC,
            value=encode_data(event),
            key=unit["id"].encode(),
            headers=to_kafka_headers(event),
        )
    finally:
        await producer.stop()


async def test_leader_and_a_second_node_killed_mid_stream_lose_nothing(
    database_url: str, cluster: KafkaCluster
) -> None:
    started = time.monotonic()
    timeline: dict[str, float] = {"cluster_start_s": cluster.started_in_s}  # type: ignore[attr-defined]
    partitions = {s.name: s.partitions for s in load_topic_specs()}[UNIT_TOPIC]
    states = await eventually("every replica in sync", lambda: _all_in_sync(cluster), 60)

    settings = make_settings(database_url, cluster.bootstrap)
    await asyncio.to_thread(migrate, settings)
    app = create_app(settings)
    with ProducerErrors.attached() as errors:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://inventory", timeout=30
            ) as client:
                api = Api(client, settings)
                _, owner = await api.new_landlord()
                site = await api.new_site(owner)
                # The units in use all hash to partitions one node leads: that node is killed.
                leaders = {s.partition: s.leader for s in states}
                victim = -1
                units: list[dict[str, Any]] = []
                for _ in range(60):
                    unit = await api.new_unit(site["id"], owner)
                    leader = leaders[partition_of(unit["id"], partitions)]
                    victim = leader if victim < 0 else victim
                    if leader == victim:
                        units.append(unit)
                    if len(units) == UNITS:
                        break
                assert len(units) == UNITS, "could not place the units on one leader"
                in_use = sorted({partition_of(u["id"], partitions) for u in units})
                leased_before = await api.new_unit(site["id"], owner, status="available")
                leased_after = await api.new_unit(site["id"], owner, status="available")

                # The consumer runs before the faults: a signed lease closes a vacancy.
                await sign_lease(cluster.bootstrap, leased_before)
                await eventually(
                    "the lease signed before the faults applied",
                    lambda: unit_status(client, leased_before, "leased"),
                    60,
                )
                await eventually(
                    "the outbox drained before the stream",
                    lambda: _drained(app),
                    60,
                )
                failures_before = publish_failures()

                stream = Stream(client, owner, units)
                seconds = max(35.0, CHANGES / 5)
                window: dict[str, int] = {}
                t0 = time.monotonic()

                async def in_use_leaders() -> list[int]:
                    states = await cluster.partitions(UNIT_TOPIC, timeout=5)
                    return [s.leader for s in states if s.partition in in_use]

                async def faults() -> None:
                    await stream.reach(CHANGES // 5)
                    timeline["first_kill_at_change"] = stream.sent
                    await asyncio.to_thread(cluster.kill, victim)
                    timeline["first_kill_s"] = time.monotonic() - t0
                    moved = await eventually(
                        "new leaders for the partitions in use",
                        lambda: _moved(in_use_leaders, victim),
                        60,
                    )
                    timeline["leaders_moved_after_s"] = (
                        time.monotonic() - t0 - timeline["first_kill_s"]
                    )
                    # With two replicas in sync the writes are acknowledged again.
                    mark, _, _ = await outbox_state(app)
                    await eventually(
                        "rows acknowledged by the two nodes left",
                        lambda: _published_upto(app, mark),
                        60,
                    )
                    timeline["acked_by_two_after_s"] = (
                        time.monotonic() - t0 - timeline["first_kill_s"]
                    )
                    await stream.reach((2 * CHANGES) // 5)
                    # The second node: the one now leading most of the partitions in use.
                    second = Counter(moved).most_common(1)[0][0]
                    timeline["second_node"] = second
                    timeline["second_kill_at_change"] = stream.sent
                    await asyncio.to_thread(cluster.kill, second)
                    (
                        window["outbox_id_at_second_kill"],
                        window["published_at_second_kill"],
                        window["pending_at_second_kill"],
                    ) = await outbox_state(app)
                    window["pending_gauge_at_second_kill"] = int(pending_gauge())
                    down = time.monotonic()
                    await stream.reach((11 * CHANGES) // 20)
                    await asyncio.sleep(max(0.0, SECOND_DOWN_S - (time.monotonic() - down)))
                    _, _, window["pending_before_restart"] = await outbox_state(app)
                    window["pending_gauge_before_restart"] = int(pending_gauge())
                    window["published_in_window"] = await published_after(
                        app, window["outbox_id_at_second_kill"]
                    )
                    timeline["second_down_s"] = time.monotonic() - down
                    timeline["second_restart_at_change"] = stream.sent
                    restart = time.monotonic()
                    await asyncio.to_thread(cluster.restart, second)
                    timeline["second_restart_took_s"] = time.monotonic() - restart
                    await stream.reach((4 * CHANGES) // 5)
                    timeline["first_restart_at_change"] = stream.sent
                    restart = time.monotonic()
                    await asyncio.to_thread(cluster.restart, victim)
                    timeline["first_restart_took_s"] = time.monotonic() - restart

                fault_task = asyncio.create_task(faults())
                try:
                    await stream.run(CHANGES, seconds)
                    await fault_task
                finally:
                    if not fault_task.done():
                        fault_task.cancel()
                    for node in cluster.nodes:
                        if not node.is_running:
                            await asyncio.to_thread(cluster.restart, node.node_id)
                timeline["stream_s"] = time.monotonic() - t0

                await eventually(
                    "the outbox drained after the faults", lambda: _drained(app), 120 + CHANGES
                )
                timeline["drained_s"] = time.monotonic() - t0
                failures = publish_failures() - failures_before

                # The consumer survived the leader changes: a lease signed now is applied.
                await sign_lease(cluster.bootstrap, leased_after)
                await eventually(
                    "the lease signed after the faults applied",
                    lambda: unit_status(client, leased_after, "leased"),
                    90,
                )

                async with app.state.runtime.sessions() as session:
                    rows = (
                        await session.execute(
                            select(OutboxMessage.key, OutboxMessage.event_id)
                            .where(OutboxMessage.topic == UNIT_TOPIC)
                            .order_by(OutboxMessage.id)  # type: ignore[arg-type]
                        )
                    ).all()

    records = await read_topic(cluster.bootstrap, UNIT_TOPIC)
    on_kafka: dict[str, list[str]] = {}
    for record in records:
        on_kafka.setdefault(record.key.decode(), []).append(headers_of(record)["ce_id"])
    all_ids = [i for ids in on_kafka.values() for i in ids]

    expected_total = lost = out_of_order = 0
    for unit in units:
        expected = [event_id for key, event_id in rows if key == unit["id"]]
        # registered, then per acknowledged change: updated + vacancy opened/closed
        assert len(expected) == 1 + 2 * stream.acknowledged[unit["id"]]
        published = on_kafka.get(unit["id"], [])
        expected_total += len(expected)
        lost += len(set(expected) - set(published))
        if list(dict.fromkeys(published)) != expected:
            out_of_order += 1
    duplicates = len(all_ids) - len(set(all_ids))
    counts = {
        "db": database_url.split(":", 1)[0],
        "sent": stream.sent,
        "acknowledged": sum(stream.acknowledged.values()),
        "expected_events": expected_total,
        "published": len({i for u in units for i in on_kafka.get(u["id"], [])}),
        "duplicates": duplicates,
        "lost": lost,
        "units_out_of_order": out_of_order,
        "victim": victim,
        "partitions_in_use": len(in_use),
        **{k: round(v, 1) for k, v in timeline.items()},
        **window,
        "relay_publish_failures": failures,
        "producer_errors": dict(errors.kinds),
        "seconds": round(time.monotonic() - started, 1),
    }
    print(f"\ncluster outage: {counts}")

    assert stream.acknowledged.total() == stream.sent, stream.refused[:5]
    assert window["published_in_window"] == 0, (
        "rows written while one replica ran were acknowledged",
        counts,
    )
    assert window["pending_before_restart"] > window["pending_at_second_kill"], (
        "the outbox did not keep the rows written while one replica ran",
        counts,
    )
    # The backlog gauge (what the FabriqueOutboxGrowing alert watches) grew while sends waited
    # (it is refreshed every second, so it is compared with the exact count at the kill).
    assert window["pending_gauge_before_restart"] > window["pending_at_second_kill"], counts
    assert errors.kinds, "the producer saw no refusal at all while nodes were down"
    assert lost == 0, counts
    assert duplicates == 0, counts
    assert out_of_order == 0, counts


async def _moved(leaders: Callable[[], Awaitable[list[int]]], victim: int) -> list[int] | None:
    now = await leaders()
    return now if now and victim not in now and -1 not in now else None


def publish_failures() -> float:
    return REGISTRY.get_sample_value("outbox_publish_failures_total") or 0.0


def pending_gauge() -> float:
    return REGISTRY.get_sample_value("outbox_pending_events") or 0.0


async def _all_in_sync(cluster: KafkaCluster) -> list[Any] | None:
    states = await cluster.partitions(UNIT_TOPIC, timeout=5)
    return states if all(len(s.isr) == len(s.replicas) == 3 for s in states) else None


async def _drained(app: Any) -> bool:
    _, _, pending = await outbox_state(app)
    return pending == 0


async def unit_status(client: httpx.AsyncClient, unit: dict[str, Any], status: str) -> bool:
    r = await client.get(f"/v1/units/{unit['id']}")
    return r.status_code == 200 and r.json()["status"] == status
