"""The local KRaft cluster launcher against real JVMs: replicated topics, per-node kill and
restart, leaders, and what the project's producer does when the brokers answer
NOT_ENOUGH_REPLICAS (it keeps the record and retries until a replica is back)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from fabkit.kafka import make_producer
from fabkit.localstack.cli import build_parser
from fabkit.localstack.kafka import KafkaBroker, KafkaCluster, load_topic_specs


def test_one_node_cluster_is_configured_like_the_single_broker(tmp_path: Path) -> None:
    node = KafkaCluster(tmp_path / "c", 1, heap="512m", ports=[40001, 40002]).node(1)
    single = KafkaBroker(tmp_path / "b", port=40001, controller_port=40002)
    ours, theirs = node.server_properties(), single.server_properties()
    assert ours.pop("log.dirs") != theirs.pop("log.dirs")
    assert ours.pop("unclean.leader.election.enable") == "false"  # Kafka's default anyway
    assert ours == theirs


def test_three_node_config_lists_every_voter_and_replicates(tmp_path: Path) -> None:
    cluster = KafkaCluster(tmp_path, 3, ports=[41001, 41002, 41003, 42001, 42002, 42003])
    assert cluster.bootstrap == "127.0.0.1:41001,127.0.0.1:41002,127.0.0.1:41003"
    props = [n.server_properties() for n in cluster.nodes]
    voters = "1@127.0.0.1:42001,2@127.0.0.1:42002,3@127.0.0.1:42003"
    assert {p["controller.quorum.voters"] for p in props} == {voters}
    assert [p["node.id"] for p in props] == ["1", "2", "3"]
    assert len({p["log.dirs"] for p in props}) == 3
    for p in props:
        assert p["default.replication.factor"] == p["offsets.topic.replication.factor"] == "3"
        assert p["min.insync.replicas"] == p["transaction.state.log.min.isr"] == "2"
    with pytest.raises(LookupError):
        cluster.node(4)


def test_cli_run_takes_a_broker_count() -> None:
    assert build_parser().parse_args(["run"]).brokers == 1
    assert build_parser().parse_args(["run", "--brokers", "3"]).brokers == 3
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--brokers", "0"])


class _Retries(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.mark.kafka
async def test_cluster_replicates_topics_and_the_producer_waits_out_not_enough_replicas(
    make_kafka_cluster: Callable[..., KafkaCluster],
) -> None:
    started = time.monotonic()
    cluster = await asyncio.to_thread(make_kafka_cluster, 3)
    print(f"\ncluster of 3 started with its topics in {time.monotonic() - started:.1f}s")

    # Every platform topic: 3 replicas, all in sync, min.insync.replicas=2.
    specs = load_topic_specs()
    admin = AIOKafkaAdminClient(bootstrap_servers=cluster.bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        configs = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, s.name) for s in specs]
        )
        found = {
            resource[3]: {entry[0]: entry[1] for entry in resource[4]}
            for response in configs
            for resource in response.resources
        }
        # A topic whose three replicas must all be in sync: one dead node is one too many,
        # while the quorum (two of three controllers) still elects and shrinks the ISR.
        strict = f"cluster.strict.{uuid.uuid4().hex[:8]}"
        await admin.create_topics(
            [NewTopic(strict, 1, 3, topic_configs={"min.insync.replicas": "3"})]
        )
    finally:
        await admin.close()
    for spec in specs:
        assert found[spec.name]["min.insync.replicas"] == "2", spec.name
        states = await cluster.partitions(spec.name)
        assert len(states) == spec.partitions
        assert all(len(s.replicas) == 3 and len(s.isr) == 3 for s in states), states

    leader = await _eventually(lambda: cluster.leader_of(strict, 0), lambda v: v > 0)
    follower = next(n for n in (1, 2, 3) if n != leader)
    await asyncio.to_thread(cluster.kill, follower)
    await _eventually(
        lambda: cluster.partitions(strict), lambda s: follower not in s[0].isr, timeout=30
    )

    retries = _Retries()
    sender = logging.getLogger("aiokafka.producer.sender")
    sender.addHandler(retries)
    producer = make_producer(cluster.bootstrap, "cluster-test")
    await producer.start()
    try:
        pending = await producer.send(strict, b"kept", key=b"k")
        await asyncio.sleep(5)
        assert not pending.done(), "acknowledged with fewer replicas in sync than required"
        assert any("NotEnoughReplicasError" in m for m in retries.messages), retries.messages
        t0 = time.monotonic()
        await asyncio.to_thread(cluster.restart, follower)
        metadata = await asyncio.wait_for(pending, 60)
        print(
            f"refused {sum('NotEnoughReplicas' in m for m in retries.messages)} times, "
            f"acknowledged {time.monotonic() - t0:.1f}s after the restart began"
        )
    finally:
        sender.removeHandler(retries)
        await producer.stop()

    consumer = AIOKafkaConsumer(bootstrap_servers=cluster.bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(strict, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        batch = await consumer.getmany(tp, timeout_ms=5000)
    finally:
        await consumer.stop()
    assert [r.value for r in batch.get(tp, [])] == [b"kept"]
    assert metadata.offset == 0


async def _eventually(fetch, accept, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = await fetch()
        except Exception as exc:
            last = exc
        else:
            if accept(last):
                return last
        await asyncio.sleep(0.25)
    raise AssertionError(f"not reached after {timeout:.0f}s: {last!r}")
