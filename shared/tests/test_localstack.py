"""The local stack against real servers: a Kafka broker (KRaft, from Maven jars) and PostgreSQL.

Run: ``uv run pytest shared/tests/test_localstack.py -p fabkit.testing``.
Also proves that aiokafka works against the broker version the project runs (idempotent
producer, headers, consumer groups with manual commit, admin create_topics).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

from fabkit.localstack import (
    KafkaBroker,
    LocalStackError,
    PostgresServer,
    TopicSpec,
    ensure_topics,
    free_port,
    load_topic_specs,
    repo_root,
)
from fabkit.localstack.cli import build_parser

TIMEOUT = 30.0


def _unique(prefix: str) -> str:
    return f"{prefix}.{uuid.uuid4().hex[:10]}"


async def _admin(bootstrap: str) -> AIOKafkaAdminClient:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    return admin


async def _consume(
    bootstrap: str, topic: str, group: str, count: int, *, commit: bool = True
) -> list:
    """Read ``count`` records as consumer group ``group`` and commit offset + 1 manually."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    records = []
    try:
        async with asyncio.timeout(TIMEOUT):
            while len(records) < count:
                batch = await consumer.getmany(timeout_ms=500)
                for tp, msgs in batch.items():
                    records.extend(msgs)
                    if commit and msgs:
                        await consumer.commit({tp: msgs[-1].offset + 1})
    finally:
        await consumer.stop()
    return records


# --------------------------------------------------------------------------------------------
# plain helpers (no servers)
# --------------------------------------------------------------------------------------------


def test_topic_specs_match_deploy_file() -> None:
    specs = load_topic_specs()
    raw = json.loads((repo_root() / "deploy" / "topics.json").read_text())
    assert [s.name for s in specs] == [t["name"] for t in raw["topics"]]
    assert all(isinstance(s, TopicSpec) and s.partitions >= 1 for s in specs)
    with pytest.raises(AttributeError):
        specs[0].partitions = 99  # type: ignore[misc]  # frozen


def test_free_port_is_bindable() -> None:
    import socket

    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_cli_parser_knows_subcommands() -> None:
    parser = build_parser()
    assert parser.parse_args(["fetch"]).command == "fetch"
    args = parser.parse_args(["broker", "--port", "19092", "--data-dir", "x"])
    assert (args.port, args.data_dir) == (19092, "x")
    args = parser.parse_args(["postgres", "--database", "a", "--database", "b"])
    assert args.database == ["a", "b"]


def test_cli_run_can_leave_keycloak_out() -> None:
    parser = build_parser()
    assert parser.parse_args(["run"]).no_keycloak is False
    assert parser.parse_args(["run", "--no-keycloak"]).no_keycloak is True


def _platform_on_paper(tmp_path: Path, *, keycloak: bool) -> Any:
    """A Platform whose parts are built but not started: enough for env and description."""
    from types import SimpleNamespace

    from fabkit.localstack.keycloak import KeycloakServer
    from fabkit.localstack.platform import MailCatcher, Platform

    broker = SimpleNamespace(bootstrap="127.0.0.1:19092", is_running=True)
    server = KeycloakServer(tmp_path / "kc", port=free_port()) if keycloak else None
    return Platform(
        broker=broker,  # type: ignore[arg-type]
        postgres=None,
        mail=MailCatcher(tmp_path / "mail"),
        keycloak=server,
    )


@pytest.mark.parametrize("keycloak", [True, False])
def test_every_service_gets_the_issuer_and_audience_of_the_launchers_keycloak(
    tmp_path: Path, keycloak: bool
) -> None:
    from fabkit.localstack.platform import _prepare, load_service_specs

    platform = _platform_on_paper(tmp_path, keycloak=keycloak)
    specs = load_service_specs()
    assert {s.name for s in specs} >= {"inventory", "leasing", "notifications", "portal"}
    for spec in specs:
        env = _prepare(spec, tmp_path, platform.broker, None, platform, False, None).env
        prefix = spec.env_prefix
        if keycloak:
            issuer = platform.keycloak.issuer("fabrique")
            assert issuer == f"http://127.0.0.1:{platform.keycloak.port}/realms/fabrique"
            assert env[f"{prefix}OIDC_ISSUER"] == issuer, spec.name
            assert env[f"{prefix}OIDC_AUDIENCE"] == "fabrique-api", spec.name
            assert env[f"{prefix}OIDC_JWKS_URL"] == platform.keycloak.jwks_url("fabrique")
        else:
            # Without Keycloak the entries are left out (the service keeps its default) and
            # nothing else is lost.
            assert not any("OIDC" in k for k in env if k.startswith(prefix)), spec.name
            assert env[f"{prefix}KAFKA_BOOTSTRAP"] == "127.0.0.1:19092"
    if not keycloak:
        env = _prepare(specs[2], tmp_path, platform.broker, None, platform, False, None).env
        assert env["NOTIFICATIONS_SMTP_PORT"] == str(platform.mail.port)


def test_the_description_names_keycloak_after_the_portal_with_demo_accounts(
    tmp_path: Path,
) -> None:
    from fabkit.localstack.platform import ServiceProcess, describe, load_service_specs

    platform = _platform_on_paper(tmp_path, keycloak=True)
    for spec in load_service_specs():
        platform.services[spec.name] = ServiceProcess(spec, spec.port, {}, tmp_path / "x.log")
    text = describe(platform, {"admin": "eyJ.admin"})
    lines = text.splitlines()
    kc = platform.keycloak
    assert lines[1] == "Fabrique is running (Ctrl-C stops everything)."
    assert lines[2].split()[:2] == ["web", "portal"], "the portal comes first"
    assert lines[3].startswith(f"  Keycloak console   {kc.base_url}/admin/")
    assert "user admin, password admin" in lines[3]
    demo = json.loads((repo_root() / "deploy" / "keycloak" / "demo-directory.json").read_text())
    for username in demo["users"]:
        assert username in text
    assert f"password for each: {demo['password']}" in text
    secret = demo["clients"]["landlord-rivp"]["secret"]
    curl = (
        "curl -s -d grant_type=client_credentials -d client_id=landlord-rivp "
        f"-d client_secret={secret} {kc.token_endpoint('fabrique')}"
    )
    assert [line.strip() for line in lines].count(curl) == 1
    # The admin token the run command got from the demo realm's CLI client (client credentials).
    assert "  admin: eyJ.admin" in lines
    assert text.index("Keycloak console") < text.index("inventory ")


# --------------------------------------------------------------------------------------------
# Kafka
# --------------------------------------------------------------------------------------------


@pytest.mark.kafka
async def test_platform_topics_exist_with_partitions_and_retention(kafka_broker) -> None:
    specs = {s.name: s for s in load_topic_specs()}
    admin = await _admin(kafka_broker.bootstrap)
    try:
        described = {t["topic"]: t for t in await admin.describe_topics(list(specs))}
        configs = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in specs]
        )
    finally:
        await admin.close()
    for name, spec in specs.items():
        assert described[name]["error_code"] == 0, name
        assert len(described[name]["partitions"]) == spec.partitions, name
    retention = {}
    for response in configs:
        for resource in response.resources:
            entries = {entry[0]: entry[1] for entry in resource[4]}
            retention[resource[3]] = int(entries["retention.ms"])
    assert retention == {name: spec.retention_ms for name, spec in specs.items()}


@pytest.mark.kafka
async def test_ensure_topics_is_idempotent(kafka_broker) -> None:
    spec = TopicSpec(_unique("test.ensure"), 2, 3_600_000)
    assert await ensure_topics(kafka_broker.bootstrap, [spec]) == [spec.name]
    assert await ensure_topics(kafka_broker.bootstrap, [spec, *load_topic_specs()]) == []


@pytest.mark.kafka
async def test_auto_create_is_off(kafka_broker) -> None:
    topic = _unique("test.unknown")
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_broker.bootstrap, enable_idempotence=True, request_timeout_ms=2000
    )
    await producer.start()
    try:
        with pytest.raises((KafkaError, TimeoutError)):
            async with asyncio.timeout(15):
                await producer.send_and_wait(topic, b"nobody home")
    finally:
        await producer.stop()
    admin = await _admin(kafka_broker.bootstrap)
    try:
        assert topic not in await admin.list_topics()
    finally:
        await admin.close()


@pytest.mark.kafka
async def test_idempotent_produce_with_headers_and_manual_commit(kafka_broker) -> None:
    bootstrap = kafka_broker.bootstrap
    topic = _unique("test.roundtrip")
    await ensure_topics(bootstrap, [TopicSpec(topic, 3, 3_600_000)])
    group = _unique("test-group")
    headers = [("ce_type", b"fabrique.test.v1"), ("ce_id", uuid.uuid4().bytes)]

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        first = await producer.send_and_wait(topic, b'{"n":1}', key=b"unit-1", headers=headers)
    finally:
        await producer.stop()

    [record] = await _consume(bootstrap, topic, group, 1)
    assert (record.key, record.value, list(record.headers)) == (b"unit-1", b'{"n":1}', headers)
    assert (record.partition, record.offset) == (first.partition, first.offset)

    # The committed offset holds: the same group now sees only what comes next.
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b'{"n":2}', key=b"unit-1")
    finally:
        await producer.stop()
    [again] = await _consume(bootstrap, topic, group, 1)
    assert again.value == b'{"n":2}'

    admin = await _admin(bootstrap)
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    assert offsets[TopicPartition(topic, first.partition)].offset == again.offset + 1


@pytest.mark.kafka
async def test_kill_and_restart_keep_records_and_offsets(make_kafka_broker) -> None:
    broker: KafkaBroker = make_kafka_broker(create_topics=False)
    port, controller_port = broker.port, broker.controller_port
    topic = "test.fault"
    await ensure_topics(broker.bootstrap, [TopicSpec(topic, 1, 3_600_000)])

    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for i in range(20):
            await producer.send_and_wait(topic, f"r{i}".encode(), headers=[("i", b"%d" % i)])
    finally:
        await producer.stop()
    first = await _consume(broker.bootstrap, topic, "fault-group", 5, commit=False)
    assert [r.value for r in first[:5]] == [b"r0", b"r1", b"r2", b"r3", b"r4"]

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=broker.bootstrap, group_id="fault-group",
        enable_auto_commit=False, auto_offset_reset="earliest",
    )  # fmt: skip
    await consumer.start()
    try:
        await consumer.commit({TopicPartition(topic, 0): 10})
    finally:
        await consumer.stop()

    pid = broker.pid
    broker.kill()
    assert not broker.is_running
    broker.restart()
    assert broker.is_running
    assert broker.pid != pid
    assert (broker.port, broker.controller_port) == (port, controller_port)

    records = await _consume(broker.bootstrap, topic, _unique("after-restart"), 20, commit=False)
    assert [r.value for r in records] == [f"r{i}".encode() for i in range(20)]
    assert records[7].headers == (("i", b"7"),)
    resumed = await _consume(broker.bootstrap, topic, "fault-group", 10, commit=False)
    assert resumed[0].offset == 10

    assert broker.stop() is not None
    assert not broker.is_running


@pytest.mark.kafka
def test_broker_that_dies_fails_fast_with_its_log(kafka_broker, tmp_path: Path) -> None:
    if not isinstance(kafka_broker, KafkaBroker):
        pytest.skip("external Kafka configured: no local jars to start a broker from")
    broker = KafkaBroker(tmp_path / "bad")
    broker.format_storage()
    broker.extra_properties["num.network.threads"] = "not-a-number"
    started = time.monotonic()
    try:
        with pytest.raises(LocalStackError, match="exited with code") as info:
            broker.start(timeout=60)
    finally:
        broker.kill()
    assert time.monotonic() - started < 30
    assert "num.network.threads" in str(info.value)
    assert not broker.is_running


# --------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------


@pytest.mark.postgres
async def test_postgres_create_database_and_query(postgres_server) -> None:
    name = "fab_" + uuid.uuid4().hex[:8]
    assert postgres_server.create_database(name) is True
    assert postgres_server.create_database(name) is False  # idempotent
    url = postgres_server.url(name)
    assert url.endswith(f"/{name}")
    if isinstance(postgres_server, PostgresServer):
        assert url == f"postgresql+asyncpg://postgres@127.0.0.1:{postgres_server.port}/{name}"

    conn = await asyncpg.connect(postgres_server.dsn(name))
    try:
        await conn.execute("CREATE TABLE spaces (id serial PRIMARY KEY, label text NOT NULL)")
        await conn.execute("INSERT INTO spaces (label) VALUES ($1), ($2)", "atelier", "studio")
        rows = await conn.fetch("SELECT label FROM spaces ORDER BY id")
        assert [r["label"] for r in rows] == ["atelier", "studio"]
        assert await conn.fetchval("SHOW max_connections") == "200"
        assert await conn.fetchval("SELECT current_database()") == name
    finally:
        await conn.close()


@pytest.mark.postgres
async def test_postgres_url_works_with_sqlalchemy(postgres_server) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    name = "fab_" + uuid.uuid4().hex[:8]
    postgres_server.create_database(name)
    engine = create_async_engine(postgres_server.url(name))
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT 41 + 1"))).scalar_one() == 42
    finally:
        await engine.dispose()


@pytest.mark.postgres
def test_cli_postgres_runs_in_foreground_and_stops_on_sigterm(postgres_server, tmp_path) -> None:
    if os.environ.get("FABRIQUE_TEST_POSTGRES_URL_BASE"):
        pytest.skip("external PostgreSQL configured")
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "fabkit.localstack.cli", "postgres",
            "--port", str(port), "--data-dir", str(tmp_path / "pg"), "--database", "cli_db",
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == f"POSTGRES_URL_BASE=postgresql+asyncpg://postgres@127.0.0.1:{port}"
        proc.send_signal(signal.SIGTERM)
        # The CLI gives PostgreSQL 30 s for its fast shutdown (then SIGKILL): wait longer than
        # that, so a slow checkpoint on a busy machine is told apart from a CLI that hangs.
        assert proc.wait(timeout=75) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        server_log = tmp_path / "pg" / "postgres.log"
        tail = server_log.read_text(errors="replace")[-3000:] if server_log.exists() else ""
    err = proc.stderr.read() if proc.stderr else ""
    assert "stopped (exit 0)" in err, f"{err}\n--- end of the server's log:\n{tail}"
