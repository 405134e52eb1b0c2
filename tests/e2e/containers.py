"""Optional testcontainers backends (Kafka and PostgreSQL) for the end-to-end suite.

When a Docker engine answers and the ``testcontainers`` package is installed (it is not a
dependency of the workspace: add ``testcontainers[kafka,postgres]`` to the dev group to use it),
the PostgreSQL platform of the suite runs its broker and database in containers; otherwise the
local launcher (``start_platform``, the run command's) starts them from the Kafka jars and the
Debian PostgreSQL binaries. ``FABRIQUE_E2E_CONTAINERS`` chooses: ``auto`` (default), ``never``,
or ``require`` (fail — or skip outside CI — when Docker or testcontainers is missing).

The services themselves always run as local processes, started like the launcher starts them
(``deploy/services.json``, one uvicorn each, on 127.0.0.1), and a container's published port
is bound to 127.0.0.1 only. The broker-kill scenario always uses the local broker: a container
restart would publish the broker on another host port, and the services would lose it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fabkit.localstack.kafka import ensure_topics_sync, load_topic_specs
from fabkit.localstack.platform import MailCatcher, Platform, load_service_specs
from fabkit.testing import ExternalPostgres

log = logging.getLogger(__name__)

MODE_ENV = "FABRIQUE_E2E_CONTAINERS"
KAFKA_IMAGE = os.environ.get("FABRIQUE_E2E_KAFKA_IMAGE", "confluentinc/cp-kafka:7.6.0")
POSTGRES_IMAGE = os.environ.get("FABRIQUE_E2E_POSTGRES_IMAGE", "postgres:16-alpine")


def mode() -> str:
    value = os.environ.get(MODE_ENV, "auto").strip().lower() or "auto"
    if value not in ("auto", "never", "require"):
        raise ValueError(f"{MODE_ENV} must be auto, never or require, not {value!r}")
    return value


def _docker_socket_answers(path: str) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(3)
            sock.connect(path)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            answer = sock.recv(1024)
    except OSError:
        return False
    return answer.startswith(b"HTTP/1.") and b" 200 " in answer.split(b"\r\n", 1)[0] + b" "


def docker_engine() -> tuple[bool, str]:
    """Whether a Docker engine answers: its socket (``DOCKER_HOST`` or /var/run/docker.sock),
    else ``docker info``. Returns (answers, how it was decided)."""
    host = os.environ.get("DOCKER_HOST", "")
    if host.startswith("unix://") or not host:
        path = host.removeprefix("unix://") or "/var/run/docker.sock"
        if os.path.exists(path):
            if _docker_socket_answers(path):
                return True, f"Docker engine answers on {path}"
            return False, f"{path} exists but no Docker engine answers /_ping"
    docker = shutil.which("docker")
    if docker is None:
        return False, "no Docker socket and no docker command"
    try:
        done = subprocess.run(
            [docker, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=15,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"docker info failed: {exc}"
    if done.returncode == 0 and done.stdout.strip():
        return True, f"docker info: server {done.stdout.strip()}"
    return False, f"docker info: {(done.stderr or done.stdout).strip()[:200]}"


def containers_usable() -> tuple[bool, str]:
    """(use containers?, why) according to ``FABRIQUE_E2E_CONTAINERS`` and the machine."""
    chosen = mode()
    if chosen == "never":
        return False, f"{MODE_ENV}=never"
    if importlib.util.find_spec("testcontainers") is None:
        return False, "the testcontainers package is not installed"
    answers, why = docker_engine()
    return answers, why


class ContainerKafka:
    """A Kafka broker in a container, shaped like the launcher's broker for `Platform`."""

    def __init__(self, image: str = KAFKA_IMAGE) -> None:
        from testcontainers.kafka import KafkaContainer

        os.environ.setdefault("TC_HOST", "127.0.0.1")
        self.container = KafkaContainer(image).with_kraft()
        # Published on loopback only (docker-py: (host ip, host port); None = any free port).
        self.container.with_bind_ports(self.container.port, ("127.0.0.1", None))  # type: ignore[arg-type]
        self.bootstrap = ""
        self.version = image

    def start(self) -> ContainerKafka:
        self.container.start(timeout=120)
        self.bootstrap = self.container.get_bootstrap_server()
        ensure_topics_sync(self.bootstrap, load_topic_specs())
        return self

    @property
    def is_running(self) -> bool:
        return bool(self.bootstrap)

    @property
    def pid(self) -> None:
        return None

    def kill(self) -> None:
        raise RuntimeError("a container broker is not killed by these tests (its port would move)")

    def restart(self, timeout: float = 60.0) -> ContainerKafka:
        raise RuntimeError("a container broker is not restarted by these tests")

    def stop(self, timeout: float = 30.0) -> None:
        with contextlib.suppress(Exception):
            self.container.stop()
        self.bootstrap = ""


class ContainerPostgres(ExternalPostgres):
    """PostgreSQL in a container, offering what the launcher's server offers (url, dsn,
    create_database, stop)."""

    def __init__(self, image: str = POSTGRES_IMAGE) -> None:
        from testcontainers.postgres import PostgresContainer

        os.environ.setdefault("TC_HOST", "127.0.0.1")
        self.container = PostgresContainer(
            image, username="postgres", password="postgres", dbname="postgres", driver="asyncpg"
        )
        self.container.with_bind_ports(5432, ("127.0.0.1", None))  # type: ignore[arg-type]

    def start(self) -> ContainerPostgres:
        self.container.start()
        parts = urlsplit(self.container.get_connection_url())
        super().__init__(f"postgresql+asyncpg://{parts.netloc}")
        return self

    def stop(self, timeout: float = 30.0) -> None:
        with contextlib.suppress(Exception):
            self.container.stop()


def start_platform_on_containers(run_dir: Path, extra_env: dict[str, str]) -> Platform:
    """Kafka and PostgreSQL in containers, the services as local processes prepared, migrated
    and started by the launcher's own steps (``deploy/services.json``, one uvicorn each)."""
    from concurrent.futures import ThreadPoolExecutor

    # The launcher's per-service preparation (ports, database, env), so both paths agree.
    from fabkit.localstack.platform import _prepare

    run_dir.mkdir(parents=True, exist_ok=True)
    broker = ContainerKafka()
    postgres = ContainerPostgres()
    platform = Platform(broker=broker, postgres=None)  # type: ignore[arg-type]
    try:
        broker.start()
        postgres.start()
        platform.postgres = postgres  # type: ignore[assignment]
        platform.mail = MailCatcher(run_dir / "mail").start()
        prepared = [
            _prepare(spec, run_dir, broker, postgres, platform, False, extra_env)  # type: ignore[arg-type]
            for spec in load_service_specs()
        ]
        with ThreadPoolExecutor(max_workers=len(prepared)) as pool:
            list(pool.map(lambda s: s.setup(False), prepared))
            for service in prepared:
                platform.services[service.spec.name] = service
            list(pool.map(lambda s: s.start(), prepared))
    except BaseException:
        platform.stop()
        raise
    return platform


def describe(platform: Platform) -> str:
    broker: Any = platform.broker
    where = "container" if isinstance(broker, ContainerKafka) else "local launcher"
    return f"Kafka on {broker.bootstrap} ({where})"
