"""pytest plugin: real Kafka and PostgreSQL for tests (register with ``-p fabkit.testing``).

Session-scoped fixtures start one server of each kind per test session (isolate tests by topic,
consumer-group and database names, not by restarting the server) and stop them at session end:

- ``kafka_broker``: a started :class:`~fabkit.localstack.kafka.KafkaBroker` with every topic of
  ``deploy/topics.json`` created. With ``FABRIQUE_TEST_KAFKA_BOOTSTRAP=host:port`` an external
  broker is used instead (topics are ensured there too) and an :class:`ExternalKafka` is given.
- ``kafka_bootstrap``: just the bootstrap address of ``kafka_broker``.
- ``postgres_server``: a started :class:`~fabkit.localstack.postgres.PostgresServer`. With
  ``FABRIQUE_TEST_POSTGRES_URL_BASE=postgresql+asyncpg://user@host:port`` an external server is
  used instead (an :class:`ExternalPostgres`). Both offer ``url(dbname)``, ``dsn(dbname)`` and
  ``create_database(name)``.
- ``make_kafka_broker``: function-scoped factory for fault tests that kill/restart a broker of
  their own; every broker it made is stopped after the test.

When a server cannot be started, :func:`fail_or_skip` fails the tests on CI (``CI=true``) and
skips them elsewhere.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit, urlunsplit

import pytest

from fabkit.localstack.kafka import (
    KafkaBroker,
    ensure_topics_sync,
    load_topic_specs,
    run_sync,
    start_broker,
)
from fabkit.localstack.postgres import (
    PostgresServer,
    create_database_via,
    quote_ident,
)

KAFKA_ENV = "FABRIQUE_TEST_KAFKA_BOOTSTRAP"
POSTGRES_ENV = "FABRIQUE_TEST_POSTGRES_URL_BASE"


def fail_or_skip(reason: str) -> NoReturn:
    """``pytest.fail`` on CI (env ``CI == "true"``), ``pytest.skip`` elsewhere."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


# --------------------------------------------------------------------------------------------
# Kafka
# --------------------------------------------------------------------------------------------


@dataclass
class ExternalKafka:
    """A broker somebody else runs (``FABRIQUE_TEST_KAFKA_BOOTSTRAP``); cannot be killed."""

    bootstrap: str

    @property
    def is_running(self) -> bool:
        return True

    def kill(self) -> None:
        pytest.skip("the external Kafka broker cannot be killed by tests")

    def restart(self, timeout: float = 60.0) -> ExternalKafka:
        pytest.skip("the external Kafka broker cannot be restarted by tests")

    def stop(self, timeout: float = 30.0) -> None:
        return None


@pytest.fixture(scope="session")
def kafka_broker(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[KafkaBroker | ExternalKafka]:
    external = os.environ.get(KAFKA_ENV, "").strip()
    specs = load_topic_specs()
    if external:
        try:
            ensure_topics_sync(external, specs)
        except Exception as exc:
            fail_or_skip(f"external Kafka {external} ({KAFKA_ENV}) unusable: {exc!r}")
        yield ExternalKafka(external)
        return
    try:
        broker = start_broker(tmp_path_factory.mktemp("kafka"), topics=specs)
    except Exception as exc:
        fail_or_skip(f"cannot start a local Kafka broker: {exc}")
    STARTED.append(f"Kafka {broker.version} broker (KRaft) on {broker.bootstrap}, pid {broker.pid}")
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: KafkaBroker | ExternalKafka) -> str:
    return kafka_broker.bootstrap


@pytest.fixture
def make_kafka_broker(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., KafkaBroker]]:
    """Factory: ``make_kafka_broker(create_topics=True, **KafkaBroker kwargs)`` -> started."""
    made: list[KafkaBroker] = []

    def make(*, create_topics: bool = True, **kwargs: Any) -> KafkaBroker:
        broker = KafkaBroker(tmp_path_factory.mktemp("kafka-own"), **kwargs)
        made.append(broker)
        try:
            broker.start()
            if create_topics:
                ensure_topics_sync(broker.bootstrap, load_topic_specs())
        except Exception as exc:
            fail_or_skip(f"cannot start a local Kafka broker: {exc}")
        return broker

    yield make
    for broker in reversed(made):
        broker.stop()


# --------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------


class ExternalPostgres:
    """A PostgreSQL server somebody else runs (``FABRIQUE_TEST_POSTGRES_URL_BASE``)."""

    def __init__(self, url_base: str) -> None:
        parts = urlsplit(url_base.rstrip("/"))
        if not parts.scheme or not parts.netloc:
            raise ValueError(f"{POSTGRES_ENV} must look like postgresql+asyncpg://user@host:port")
        self._scheme = parts.scheme
        self._netloc = parts.netloc
        self.url_base = urlunsplit((parts.scheme, parts.netloc, "", "", ""))

    @property
    def is_running(self) -> bool:
        return True

    @property
    def port(self) -> int:
        return urlsplit(self.url_base).port or 5432

    def url(self, dbname: str = "postgres", driver: str | None = None) -> str:
        return urlunsplit((driver or self._scheme, self._netloc, "/" + dbname, "", ""))

    def dsn(self, dbname: str = "postgres") -> str:
        return self.url(dbname, driver="postgresql")

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run one statement with asyncpg; rows as ``|``-joined lines (like ``psql -tA``)."""
        import asyncpg

        from fabkit.localstack.kafka import LocalStackError

        async def run() -> str:
            conn = await asyncpg.connect(self.dsn(dbname), timeout=10)
            try:
                rows = await conn.fetch(sql)
            except asyncpg.PostgresError as exc:
                raise LocalStackError(str(exc)) from exc
            finally:
                await conn.close()
            return "".join("|".join(str(v) for v in row.values()) + "\n" for row in rows)

        return run_sync(run)

    def create_database(self, name: str) -> bool:
        return create_database_via(self.psql, name)

    def drop_database(self, name: str) -> None:
        self.psql(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")

    def stop(self, timeout: float = 30.0) -> None:
        return None


@pytest.fixture(scope="session")
def postgres_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[PostgresServer | ExternalPostgres]:
    external = os.environ.get(POSTGRES_ENV, "").strip()
    if external:
        try:
            server_ext = ExternalPostgres(external)
            server_ext.psql("SELECT 1")
        except Exception as exc:
            fail_or_skip(f"external PostgreSQL {external} ({POSTGRES_ENV}) unusable: {exc!r}")
        yield server_ext
        return
    server = PostgresServer(Path(tmp_path_factory.mktemp("postgres")))
    try:
        server.start()
    except Exception as exc:
        server.stop(timeout=5)
        fail_or_skip(f"cannot start a local PostgreSQL server: {exc}")
    STARTED.append(f"PostgreSQL ({server.bindir}) on 127.0.0.1:{server.port}")
    try:
        yield server
    finally:
        server.stop()


# Real servers this session started, reported at the end so a CI log shows what really ran.
STARTED: list[str] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if STARTED:
        terminalreporter.write_sep("-", "real servers started by this test session")
        for line in STARTED:
            terminalreporter.write_line(line)


async def start_group_at_end(bootstrap: str, group: str, *topics: str) -> None:
    """Commit the end of `topics` for a new consumer group, so an app started on the shared
    session broker reads only what its own test publishes."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        partitions = [
            TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()
        ]
        consumer.assign(partitions)
        await consumer.commit(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()


async def read_http_request(
    reader: asyncio.StreamReader,
) -> tuple[str, dict[str, str], bytes] | None:
    """One HTTP/1.1 request off a test receiver's stream: path, lower-cased headers, body;
    None when the client closed the connection. (Receivers in tests answer by hand, so that a
    test decides exactly what the sender sees.)"""
    request_line = await reader.readline()
    if not request_line:
        return None
    _, path, _ = request_line.decode().split(" ", 2)
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return path, headers, body


def assert_problem(response: Any, status: int, *fragments: str) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status that mentions every fragment."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["title"]
    text = json.dumps(body, ensure_ascii=False).replace('\\"', '"')
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in {text}"
    return body  # type: ignore[no-any-return]


SNAPSHOT_ENV = "FABRIQUE_UPDATE_SNAPSHOTS"


def check_snapshot(actual: Any, path: Path) -> None:
    """`actual` (JSON-able) equals the committed snapshot at `path`.

    A change fails the test with a diff until it is reviewed: rerun with
    ``FABRIQUE_UPDATE_SNAPSHOTS=1`` to write the new snapshot, then commit it.
    """
    rendered = json.dumps(actual, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if os.environ.get(SNAPSHOT_ENV) == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rendered, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(f"no snapshot at {path}: run with {SNAPSHOT_ENV}=1 and commit it", False)
    committed = path.read_text(encoding="utf-8")
    if committed != rendered:
        diff = "".join(
            difflib.unified_diff(
                committed.splitlines(keepends=True),
                rendered.splitlines(keepends=True),
                fromfile=f"{path} (committed)",
                tofile="now",
                n=2,
            )
        )
        pytest.fail(
            f"{path.name} changed; review the diff, then rerun with {SNAPSHOT_ENV}=1 and commit:\n"
            + diff[:20_000],
            False,
        )


@pytest.fixture
def make_kafka_cluster(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., Any]]:
    """Factory: ``make_kafka_cluster(size=3, create_topics=True, **KafkaCluster kwargs)`` ->
    a started :class:`~fabkit.localstack.kafka.KafkaCluster` with the platform's topics
    replicated (factor min(3, size), ``min.insync.replicas=2`` from three nodes). Blocking:
    call it with ``asyncio.to_thread`` from async tests. Every cluster it made is stopped
    after the test."""
    from fabkit.localstack.kafka import KafkaCluster

    made: list[KafkaCluster] = []

    def make(size: int = 3, *, create_topics: bool = True, **kwargs: Any) -> KafkaCluster:
        cluster = KafkaCluster(tmp_path_factory.mktemp("kafka-cluster"), size, **kwargs)
        made.append(cluster)
        try:
            cluster.start()
            if create_topics:
                cluster.ensure_topics(load_topic_specs())
        except Exception as exc:
            fail_or_skip(f"cannot start a local Kafka cluster of {size}: {exc}")
        STARTED.append(f"Kafka {cluster.version} cluster of {size} (KRaft) on {cluster.bootstrap}")
        return cluster

    yield make
    for cluster in reversed(made):
        cluster.stop()


# --------------------------------------------------------------------------------------------
# Keycloak (OpenID Connect provider)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def keycloak(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A started :class:`~fabkit.localstack.keycloak.KeycloakServer` with the committed realms
    (``deploy/keycloak/*-realm.json``: ``fabrique`` and ``proconnect-sim``), one per session.

    Tokens: :func:`fabkit.oidc_testing.client_credentials_token` and
    :func:`fabkit.oidc_testing.login_with_pkce` against ``keycloak.issuer("fabrique")``; the
    demo accounts and secrets are in ``deploy/keycloak/demo-directory.json``.
    """
    from fabkit.localstack.keycloak import KeycloakServer

    server = KeycloakServer(tmp_path_factory.mktemp("keycloak"))
    try:
        server.start()
    except Exception as exc:
        server.stop(timeout=5)
        fail_or_skip(f"cannot start a local Keycloak: {exc}")
    STARTED.append(
        f"Keycloak {server.version} on {server.base_url}, pid {server.pid}, "
        f"ready in {server.started_in:.1f}s"
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def identities(keycloak: Any) -> Iterator[Any]:
    """:class:`fabkit.oidc_testing.TestIdentities` on the session's Keycloak: ``token(role,
    subject)`` / ``headers(role, subject)`` make the landlord client or the user once and get
    its token by a real grant (client credentials, or the password grant of a test-only
    client this fixture adds to the test server)."""
    from fabkit.oidc_testing import TestIdentities

    made = TestIdentities(
        keycloak.base_url,
        admin_user=keycloak.admin_user,
        admin_password=keycloak.admin_password,
    )
    try:
        yield made
    finally:
        made.close()
