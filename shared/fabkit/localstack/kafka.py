"""Real Apache Kafka from Maven jars: one KRaft node (broker + controller in one JVM) or a cluster.

No Docker and no Kafka package exist on the project's machines, but Maven Central is reachable:
``tools/kafka/pom.xml`` names the broker's jars, :func:`fetch_kafka_jars` copies them once into
``<repo>/.cache/kafka/<version>/libs`` and :class:`KafkaBroker` runs ``java ... kafka.Kafka`` on
127.0.0.1. See ``docs/local-kafka.md`` for the verified recipe and measured timings.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import concurrent.futures
import fcntl
import json
import logging
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TypeVar

from .ports import LOOPBACK, free_ports, port_is_free
from .process import ServerProcess
from .process import signal_group as signal_group  # re-exported: the launcher imports them here
from .process import terminate as terminate

log = logging.getLogger(__name__)

#: The broker version the project runs (see docs/local-kafka.md for why). Keep in sync with
#: ``tools/kafka/pom.xml`` (the pom's default; the version is also passed as -Dkafka.version).
KAFKA_VERSION = "4.1.1"
#: Pinned: an unpinned ``dependency:copy-dependencies`` resolves a very old plugin.
MAVEN_DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
TOPICS_FILE = Path("deploy") / "topics.json"
POM_FILE = Path("tools") / "kafka" / "pom.xml"
_FETCHED_MARKER = ".fetched"
#: Kafka's CreateTopics "already exists" error code.
_TOPIC_ALREADY_EXISTS = 36

T = TypeVar("T")


class LocalStackError(RuntimeError):
    """A local server (Kafka, PostgreSQL) or its tooling could not be set up or started."""


# --------------------------------------------------------------------------------------------
# repository, jars
# --------------------------------------------------------------------------------------------


def repo_root(start: Path | str | None = None) -> Path:
    """The repository root: the nearest ancestor that contains ``deploy/topics.json``.

    Looks from ``start`` (if given), else ``$FABRIQUE_REPO_ROOT``, then this file's location
    (the workspace installs fabkit editable), then the current directory.
    """
    candidates: list[Path] = []
    if start is not None:
        candidates.append(Path(start))
    else:
        env = os.environ.get("FABRIQUE_REPO_ROOT")
        if env:
            candidates.append(Path(env))
        candidates += [Path(__file__).resolve().parent, Path.cwd()]
    for candidate in candidates:
        here = candidate.resolve()
        for directory in (here, *here.parents):
            if (directory / TOPICS_FILE).is_file():
                return directory
    raise LocalStackError(
        f"cannot find the repository root (a directory holding {TOPICS_FILE}) from "
        + ", ".join(str(c) for c in candidates)
    )


def kafka_cache_dir(version: str = KAFKA_VERSION, root: Path | None = None) -> Path:
    """``<repo>/.cache/kafka/<version>`` (``.cache/`` is git-ignored; ``$FABRIQUE_KAFKA_CACHE``
    replaces ``<repo>/.cache/kafka``)."""
    if root is None:
        env = os.environ.get("FABRIQUE_KAFKA_CACHE")
        root = Path(env) if env else repo_root() / ".cache" / "kafka"
    return root / version


def kafka_libs_dir(version: str = KAFKA_VERSION, root: Path | None = None) -> Path:
    """Where the broker's jars live once fetched: ``<repo>/.cache/kafka/<version>/libs``."""
    return kafka_cache_dir(version, root) / "libs"


def kafka_jars_cached(version: str = KAFKA_VERSION, root: Path | None = None) -> bool:
    cache = kafka_cache_dir(version, root)
    return (cache / _FETCHED_MARKER).is_file() and (cache / "libs").is_dir()


def fetch_kafka_jars(
    version: str = KAFKA_VERSION,
    *,
    cache_root: Path | None = None,
    pom: Path | None = None,
    mvn: str | None = None,
    force: bool = False,
    timeout: float = 900.0,
) -> Path:
    """Copy the broker's runtime jars from Maven Central into the cache; return the libs dir.

    Runs ``mvn -B -q -f tools/kafka/pom.xml maven-dependency-plugin:3.8.1:copy-dependencies``
    once; later calls return at once (a marker file is written after a successful copy).
    Safe against concurrent callers (file lock; the jars are copied into a temporary directory
    and renamed into place).
    """
    cache = kafka_cache_dir(version, cache_root)
    libs = cache / "libs"
    marker = cache / _FETCHED_MARKER
    if not force and marker.is_file() and libs.is_dir():
        return libs
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not force and marker.is_file() and libs.is_dir():
            return libs
        mvn_exe = mvn or shutil.which("mvn")
        if not mvn_exe:
            raise LocalStackError(
                "Maven (mvn) is not installed; it is needed once to fetch the Kafka jars "
                "(Debian: apt-get install -y maven)"
            )
        pom_path = pom or (repo_root() / POM_FILE)
        if not pom_path.is_file():
            raise LocalStackError(f"Kafka packaging pom not found: {pom_path}")
        tmp = cache / f"libs.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        cmd = [
            mvn_exe,
            "-B",
            "-q",
            "-Dstyle.color=never",
            "-f",
            str(pom_path),
            f"-Dkafka.version={version}",
            f"{MAVEN_DEPENDENCY_PLUGIN}:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={tmp}",
        ]
        log.info("fetching Kafka %s jars: %s", version, " ".join(cmd))
        started = time.monotonic()
        try:
            proc = subprocess.run(  # noqa: S603 - fixed argv, no shell
                cmd,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise LocalStackError(f"fetching Kafka jars timed out after {timeout:.0f}s") from exc
        if proc.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            output = (proc.stdout + proc.stderr).strip()[-4000:]
            raise LocalStackError(
                f"mvn copy-dependencies failed (exit {proc.returncode}):\n{output}"
            )
        core = tmp / f"kafka_2.13-{version}.jar"
        if not core.is_file():
            shutil.rmtree(tmp, ignore_errors=True)
            raise LocalStackError(f"mvn succeeded but {core.name} was not copied")
        shutil.rmtree(libs, ignore_errors=True)
        tmp.rename(libs)
        jars = sorted(p.name for p in libs.glob("*.jar"))
        marker.write_text(
            json.dumps(
                {
                    "version": version,
                    "seconds": round(time.monotonic() - started, 1),
                    "jars": jars,
                },
                indent=1,
            )
            + "\n"
        )
        log.info("fetched %d Kafka jars in %.1fs", len(jars), time.monotonic() - started)
        return libs


def find_java(java: str | None = None) -> str:
    """The ``java`` executable: ``java`` argument, else ``$JAVA_HOME/bin/java``, else PATH."""
    if java:
        return java
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if not found:
        raise LocalStackError(
            "java is not installed (Kafka 4.x needs Java 17+; Debian: openjdk-17-jre-headless)"
        )
    return found


# --------------------------------------------------------------------------------------------
# topics
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    retention_ms: int
    # Further topic configs (``cleanup.policy`` and the compaction settings of a topic that
    # carries personal data), as Kafka spells them; they win over the defaults.
    configs: tuple[tuple[str, str], ...] = ()
    # The topic carries personal data: its consumers dead-letter pointers, never values.
    personal_data: bool = False


def load_topic_specs(path: Path | str | None = None) -> list[TopicSpec]:
    """Read ``deploy/topics.json`` (``{"topics": [{"name", "partitions", "retention_ms",
    "configs"?, "personal_data"?}]}``)."""
    file = Path(path) if path is not None else repo_root() / TOPICS_FILE
    data = json.loads(file.read_text(encoding="utf-8"))
    specs = [
        TopicSpec(
            name=str(t["name"]),
            partitions=int(t["partitions"]),
            retention_ms=int(t["retention_ms"]),
            configs=tuple((str(k), str(v)) for k, v in (t.get("configs") or {}).items()),
            personal_data=bool(t.get("personal_data", False)),
        )
        for t in data["topics"]
    ]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate topic names in {file}")
    return specs


async def ensure_topics(
    bootstrap: str,
    specs: Iterable[TopicSpec],
    *,
    timeout: float = 30.0,
    replication_factor: int = 1,
    min_insync_replicas: int | None = None,
) -> list[str]:
    """Create the topics that do not exist yet (``retention.ms`` set; replication 1 unless
    given, ``min.insync.replicas`` only when given).

    Topics that already exist keep their partitions; those that declare configs get them.
    Waits until every requested topic has a leader for each partition (and, when replicated,
    every replica in sync). Returns the names actually created.
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import for_code

    wanted = list(specs)
    if not wanted:
        return []
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    created: list[str] = []
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [s for s in wanted if s.name not in existing]
        if missing:
            response = await admin.create_topics(
                [
                    NewTopic(
                        name=s.name,
                        num_partitions=s.partitions,
                        replication_factor=replication_factor,
                        topic_configs=_topic_configs(s, min_insync_replicas),
                    )
                    for s in missing
                ],
                timeout_ms=int(timeout * 1000),
            )
            for topic_error in response.topic_errors:
                name, code = topic_error[0], topic_error[1]
                message = topic_error[2] if len(topic_error) > 2 else None
                if code == 0:
                    created.append(name)
                elif code != _TOPIC_ALREADY_EXISTS:
                    raise for_code(code)(f"creating topic {name!r}: {message}")
        await _wait_topics_led(
            admin, {s.name: s.partitions for s in wanted}, timeout, replication_factor
        )
        await _reconcile_configs(
            admin, [s for s in wanted if s.configs and s.name in existing], min_insync_replicas
        )
    finally:
        await admin.close()
    if created:
        log.info("created Kafka topics: %s", ", ".join(created))
    return created


async def _reconcile_configs(
    admin: Any, specs: list[TopicSpec], min_insync_replicas: int | None
) -> None:
    """Bring existing topics' declared configs (``configs`` in deploy/topics.json) to what the
    file says — a topic made compacted for erasure must not stay on ``delete`` on a broker that
    had it before. Only topics that declare configs are touched."""
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    if not specs:
        return
    described = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, s.name) for s in specs]
    )
    current: dict[str, dict[str, str]] = {}
    for response in described:
        for resource in response.resources:
            name, entries = resource[3], resource[4]
            current[name] = {entry[0]: entry[1] for entry in entries}
    stale = [
        s
        for s in specs
        if any(current.get(s.name, {}).get(k) != v for k, v in _topic_configs(s, None).items())
    ]
    if not stale:
        return
    await admin.alter_configs(
        [
            ConfigResource(
                ConfigResourceType.TOPIC, s.name, configs=_topic_configs(s, min_insync_replicas)
            )
            for s in stale
        ]
    )
    log.info("updated Kafka topic configs: %s", ", ".join(s.name for s in stale))


def _topic_configs(spec: TopicSpec, min_insync_replicas: int | None) -> dict[str, str]:
    configs = {"retention.ms": str(spec.retention_ms), **dict(spec.configs)}
    if min_insync_replicas is not None:
        configs["min.insync.replicas"] = str(min_insync_replicas)
    return configs


def ensure_topics_sync(
    bootstrap: str,
    specs: Iterable[TopicSpec],
    *,
    timeout: float = 30.0,
    replication_factor: int = 1,
    min_insync_replicas: int | None = None,
) -> list[str]:
    """Blocking :func:`ensure_topics` (usable with or without a running event loop)."""
    specs = list(specs)
    return run_sync(
        lambda: ensure_topics(
            bootstrap,
            specs,
            timeout=timeout,
            replication_factor=replication_factor,
            min_insync_replicas=min_insync_replicas,
        )
    )


async def _wait_topics_led(
    admin: Any, partitions: Mapping[str, int], timeout: float, replicas: int = 1
) -> None:
    deadline = time.monotonic() + timeout
    pending = dict(partitions)
    while True:
        described = await admin.describe_topics(list(pending))
        for topic in described:
            parts = topic.get("partitions") or []
            if (
                topic.get("error_code") == 0
                and len(parts) >= pending.get(topic["topic"], 1)
                and all(p.get("leader", -1) >= 0 for p in parts)
                and all(len(p.get("isr") or ()) >= replicas for p in parts)
            ):
                pending.pop(topic["topic"], None)
        if not pending:
            return
        if time.monotonic() > deadline:
            raise LocalStackError(f"topics without leaders after {timeout:.0f}s: {sorted(pending)}")
        await asyncio.sleep(0.1)


def run_sync(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion from sync code, even inside a running event loop.

    ``factory`` builds the coroutine; inside a running loop it runs on a helper thread with a
    loop of its own (the calling loop is blocked meanwhile).
    """

    async def _main() -> T:
        return await factory()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_main())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, _main()).result()


# --------------------------------------------------------------------------------------------
# process helpers (shared with postgres.py)
# --------------------------------------------------------------------------------------------


def tail_file(path: Path, lines: int = 40) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(data.splitlines()[-lines:])


def tcp_accepts(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------------------------
# the broker
# --------------------------------------------------------------------------------------------

_LOG4J2_PROPERTIES = """\
# Written by fabkit.localstack.kafka; the broker's stdout goes to broker.log in the workdir.
status = warn
name = fabrique-local-kafka
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
logger.authorizer.name = kafka.authorizer.logger
logger.authorizer.level = WARN
"""


def new_cluster_id() -> str:
    """A Kafka cluster id: a random UUID as 22 characters of URL-safe base64."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")


class KafkaBroker(ServerProcess):
    """One local Kafka broker + KRaft controller in a single JVM, listening on 127.0.0.1 only.

    ``workdir`` holds ``server.properties``, ``log4j2.properties``, the data (``data/``) and the
    broker's output (``broker.log``). Ports are chosen once (free ports unless given), so
    :meth:`restart` (also after :meth:`kill`) brings the same broker back on the same address
    with the same data.
    """

    label = "Kafka broker"

    def __init__(
        self,
        workdir: Path | str,
        port: int | None = None,
        controller_port: int | None = None,
        heap: str = "512m",
        *,
        version: str = KAFKA_VERSION,
        libs_dir: Path | None = None,
        java: str | None = None,
        node_id: int = 1,
        extra_properties: Mapping[str, str] | None = None,
        jvm_args: Sequence[str] = (),
    ) -> None:
        self.workdir = Path(workdir).resolve()
        if port is None or controller_port is None:
            given = {p for p in (port, controller_port) if p is not None}
            pool = [p for p in free_ports(3) if p not in given]
            if port is None:
                port = pool.pop(0)
            if controller_port is None:
                controller_port = pool.pop(0)
        if port == controller_port:
            raise ValueError("port and controller_port must differ")
        self.port: int = port
        self.controller_port: int = controller_port
        self.heap = heap
        self.version = version
        self.libs_dir = libs_dir
        self.java = java
        self.node_id = node_id
        self.extra_properties = dict(extra_properties or {})
        self.jvm_args = list(jvm_args)
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_fh: IO[bytes] | None = None

    # paths ----------------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def log_path(self) -> Path:
        return self.workdir / "broker.log"

    @property
    def properties_path(self) -> Path:
        return self.workdir / "server.properties"

    @property
    def log4j_path(self) -> Path:
        return self.workdir / "log4j2.properties"

    # state ----------------------------------------------------------------------------------
    @property
    def address(self) -> str:
        return self.bootstrap

    @property
    def bootstrap(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def is_formatted(self) -> bool:
        return (self.data_dir / "meta.properties").is_file()

    @property
    def cluster_id(self) -> str | None:
        meta = self.data_dir / "meta.properties"
        if not meta.is_file():
            return None
        for line in meta.read_text().splitlines():
            if line.startswith("cluster.id="):
                return line.split("=", 1)[1].strip()
        return None

    def __repr__(self) -> str:
        state = "running" if self.is_running else "stopped"
        return f"<KafkaBroker {self.bootstrap} {state} {self.workdir}>"

    # config ---------------------------------------------------------------------------------
    def server_properties(self) -> dict[str, str]:
        props = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": f"{self.node_id}@{LOOPBACK}:{self.controller_port}",
            "listeners": (
                f"PLAINTEXT://{LOOPBACK}:{self.port},CONTROLLER://{LOOPBACK}:{self.controller_port}"
            ),
            "advertised.listeners": f"PLAINTEXT://{LOOPBACK}:{self.port}",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": "3",
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            # After a SIGKILL the controller refuses the restarted broker's registration
            # (DUPLICATE_BROKER_REGISTRATION) until the old session expires: 9 s by default.
            "broker.heartbeat.interval.ms": "1000",
            "broker.session.timeout.ms": "4000",
            "log.cleaner.dedupe.buffer.size": "1048577",
            "num.network.threads": "2",
            "num.io.threads": "4",
            "num.recovery.threads.per.data.dir": "1",
        }
        props.update(self.extra_properties)
        return props

    def write_config(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "logs").mkdir(exist_ok=True)
        lines = ["# Written by fabkit.localstack.kafka.KafkaBroker"]
        lines += [f"{k}={v}" for k, v in self.server_properties().items()]
        self.properties_path.write_text("\n".join(lines) + "\n")
        self.log4j_path.write_text(_LOG4J2_PROPERTIES)

    def _classpath(self) -> str:
        libs = self.libs_dir or fetch_kafka_jars(self.version)
        return f"{libs}/*"

    def _java_cmd(self, main: str, *args: str, heap: str | None = None) -> list[str]:
        cmd = [find_java(self.java)]
        if heap:
            cmd.append(f"-Xmx{heap}")
        cmd += [
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExplicitGCInvokesConcurrent",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile=file:{self.log4j_path}",
            f"-Dkafka.logs.dir={self.workdir / 'logs'}",
            *self.jvm_args,
            "-cp",
            self._classpath(),
            main,
            *args,
        ]
        return cmd

    def format_storage(self, cluster_id: str | None = None) -> None:
        """``kafka.tools.StorageTool format`` the data dir (no-op when already formatted)."""
        if self.is_formatted:
            return
        self.write_config()
        cmd = self._java_cmd(
            "kafka.tools.StorageTool",
            "format",
            # One argument: a random id may start with "-", which a separate value would turn
            # into an unknown option.
            f"--cluster-id={cluster_id or new_cluster_id()}",
            "-c",
            str(self.properties_path),
            "--ignore-formatted",
            heap="256m",
        )
        with open(self.log_path, "ab") as out:
            out.write(f"\n=== format: {' '.join(cmd)}\n".encode())
            out.flush()
            rc = subprocess.run(  # noqa: S603
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, check=False
            ).returncode
        if rc != 0 or not self.is_formatted:
            raise LocalStackError(
                f"formatting Kafka storage failed (exit {rc}):\n{tail_file(self.log_path)}"
            )

    # lifecycle ------------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> KafkaBroker:
        """Write config, format storage if needed, start the JVM and wait until it serves."""
        if self.is_running:
            return self
        self.launch()
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.kill()
            raise
        return self

    def launch(self, cluster_id: str | None = None) -> None:
        """Write config, format storage if needed and start the JVM, without waiting.

        A node of a cluster cannot serve before a majority of its controllers runs, so
        :class:`KafkaCluster` launches every node first and waits afterwards.
        """
        if self.is_running:
            return
        self.write_config()
        self.format_storage(cluster_id)
        for port in (self.port, self.controller_port):
            if not port_is_free(port):
                raise LocalStackError(f"port {LOOPBACK}:{port} is already in use")
        cmd = self._java_cmd("kafka.Kafka", str(self.properties_path), heap=self.heap)
        self._log_fh = open(self.log_path, "ab")  # noqa: SIM115 - kept open while running
        self._log_fh.write(f"\n=== start: {' '.join(cmd)}\n".encode())
        self._log_fh.flush()
        log.info("starting Kafka %s on %s (%s)", self.version, self.bootstrap, self.workdir)
        self._proc = subprocess.Popen(  # noqa: S603
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._log_fh,
            stderr=subprocess.STDOUT,
            process_group=0,
            cwd=self.workdir,
        )
        atexit.unregister(self._atexit)
        atexit.register(self._atexit)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Block until a metadata request to the broker succeeds.

        Raises :class:`LocalStackError` with the tail of ``broker.log`` if the JVM exits or
        the broker is not ready within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        last_error: BaseException | None = None
        expected_cluster = self.cluster_id
        while True:
            if self._proc is None:
                raise LocalStackError("Kafka broker was not started")
            rc = self._proc.poll()
            if rc is not None:
                raise LocalStackError(
                    f"Kafka broker exited with code {rc} while starting; "
                    f"end of {self.log_path}:\n{tail_file(self.log_path)}"
                )
            if tcp_accepts(LOOPBACK, self.port):
                try:
                    cluster = run_sync(lambda: _probe_metadata(self.bootstrap, 5.0))
                except Exception as exc:  # not ready yet
                    last_error = exc
                else:
                    node_ids = [b["node_id"] for b in cluster.get("brokers", [])]
                    if expected_cluster and cluster.get("cluster_id") != expected_cluster:
                        raise LocalStackError(
                            f"{self.bootstrap} answers for cluster {cluster.get('cluster_id')}, "
                            f"not ours ({expected_cluster}): port taken by another broker?"
                        )
                    if self.node_id in node_ids:
                        return
            if time.monotonic() > deadline:
                raise LocalStackError(
                    f"Kafka broker not ready on {self.bootstrap} after {timeout:.0f}s "
                    f"(last error: {last_error!r}); end of {self.log_path}:\n"
                    f"{tail_file(self.log_path)}"
                )
            time.sleep(0.2)


async def _probe_metadata(bootstrap: str, timeout: float) -> dict[str, Any]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    try:
        async with asyncio.timeout(timeout):
            await admin.start()
            return await admin.describe_cluster()
    finally:
        await admin.close()


def start_broker(
    workdir: Path | str,
    port: int | None = None,
    *,
    topics: Iterable[TopicSpec] | None = None,
    create_topics: bool = True,
    heap: str = "512m",
    timeout: float = 60.0,
) -> KafkaBroker:
    """Start a broker and create the platform's topics (``deploy/topics.json`` by default).

    Building block for the ``fabrique-stack`` CLI and the test fixtures; the caller stops it.
    """
    broker = KafkaBroker(workdir, port=port, heap=heap)
    broker.start(timeout)
    try:
        if create_topics:
            specs = list(topics) if topics is not None else load_topic_specs()
            ensure_topics_sync(broker.bootstrap, specs)
    except BaseException:
        broker.stop()
        raise
    return broker


# --------------------------------------------------------------------------------------------
# a cluster of brokers
# --------------------------------------------------------------------------------------------


#: JVM flags of a cluster's nodes: C1 only. Three JVMs JIT-compiling at once on two shared cores
#: were ready in 83-104 s with the default tiered compilation and in 35-38 s with C1 alone
#: (same machine, back to back, load average ~20); a local cluster never runs long enough for
#: C2's faster code to pay that back.
CLUSTER_JVM_ARGS = ("-XX:TieredStopAtLevel=1",)
#: Seconds a cluster may take to serve: 35-46 s is usual on two busy cores, 120 s was seen at a
#: load average of ~45.
CLUSTER_START_TIMEOUT = 240.0


@dataclass(frozen=True)
class PartitionState:
    """Who leads one partition and which replicas are in sync (node ids; leader -1: none)."""

    topic: str
    partition: int
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


class KafkaCluster:
    """N local KRaft nodes, each broker and controller, voting in one quorum on 127.0.0.1.

    Node ``i`` (1..N) lives in ``<workdir>/node-<i>`` with its own ports, data and
    ``broker.log``; every node is formatted with the same cluster id. Topics get replication
    factor ``min(3, N)`` and, from three nodes, ``min.insync.replicas=2``, so that an
    ``acks=all`` write is acknowledged only once two replicas hold it. Each node can be
    SIGKILLed and restarted on its own (:meth:`kill`, :meth:`restart`): same ports, same data.

    A majority of the N controllers must run for anything to change: with three nodes, two
    dead nodes stop leader elections and ISR changes until one of them is back.
    """

    def __init__(
        self,
        workdir: Path | str,
        size: int = 3,
        heap: str = "384m",
        *,
        version: str = KAFKA_VERSION,
        libs_dir: Path | None = None,
        java: str | None = None,
        extra_properties: Mapping[str, str] | None = None,
        jvm_args: Sequence[str] = CLUSTER_JVM_ARGS,
        ports: Sequence[int] | None = None,
    ) -> None:
        if size < 1:
            raise ValueError("a cluster needs at least one node")
        self.workdir = Path(workdir).resolve()
        self.size = size
        chosen = list(ports) if ports is not None else free_ports(2 * size)
        if len(chosen) != 2 * size or len(set(chosen)) != len(chosen):
            raise ValueError(f"a cluster of {size} needs {2 * size} distinct ports")
        client_ports, controller_ports = chosen[:size], chosen[size:]
        voters = ",".join(
            f"{i}@{LOOPBACK}:{port}" for i, port in enumerate(controller_ports, start=1)
        )
        overrides = {**self.replication_properties(size), "controller.quorum.voters": voters}
        overrides.update(extra_properties or {})
        self.nodes: list[KafkaBroker] = [
            KafkaBroker(
                self.workdir / f"node-{i}",
                port=client_ports[i - 1],
                controller_port=controller_ports[i - 1],
                heap=heap,
                version=version,
                libs_dir=libs_dir,
                java=java,
                node_id=i,
                extra_properties=overrides,
                jvm_args=jvm_args,
            )
            for i in range(1, size + 1)
        ]

    # replication ----------------------------------------------------------------------------
    @property
    def replication_factor(self) -> int:
        return min(3, self.size)

    @property
    def min_insync_replicas(self) -> int:
        return 2 if self.size >= 3 else 1

    @staticmethod
    def replication_properties(size: int) -> dict[str, str]:
        """Broker defaults for internal and new topics: replicated like the platform's."""
        rf = str(min(3, size))
        min_isr = "2" if size >= 3 else "1"
        return {
            "default.replication.factor": rf,
            "min.insync.replicas": min_isr,
            "offsets.topic.replication.factor": rf,
            "transaction.state.log.replication.factor": rf,
            "transaction.state.log.min.isr": min_isr,
            "share.coordinator.state.topic.replication.factor": rf,
            "share.coordinator.state.topic.min.isr": min_isr,
            "unclean.leader.election.enable": "false",
        }

    # state ----------------------------------------------------------------------------------
    def node(self, node_id: int) -> KafkaBroker:
        """The node with this id (1..N)."""
        if not 1 <= node_id <= self.size:
            raise LookupError(f"this cluster has nodes 1..{self.size}, not {node_id}")
        return self.nodes[node_id - 1]

    @property
    def bootstrap(self) -> str:
        """Every node's address, comma-separated, as clients take it."""
        return ",".join(n.bootstrap for n in self.nodes)

    @property
    def live_bootstrap(self) -> str:
        """The addresses of the nodes that run now (for admin calls while some are dead)."""
        return ",".join(n.bootstrap for n in self.nodes if n.is_running) or self.bootstrap

    @property
    def is_running(self) -> bool:
        """Every node runs."""
        return all(n.is_running for n in self.nodes)

    @property
    def running(self) -> list[int]:
        return [n.node_id for n in self.nodes if n.is_running]

    @property
    def log_path(self) -> Path:
        """Where the nodes' logs are (``node-<i>/broker.log`` below it)."""
        return self.workdir

    @property
    def cluster_id(self) -> str | None:
        return self.nodes[0].cluster_id

    @property
    def version(self) -> str:
        return self.nodes[0].version

    def __repr__(self) -> str:
        return f"<KafkaCluster {self.size} nodes, running {self.running} {self.workdir}>"

    # lifecycle ------------------------------------------------------------------------------
    def start(self, timeout: float = CLUSTER_START_TIMEOUT) -> KafkaCluster:
        """Format every node with one cluster id, start all JVMs, wait until each serves."""
        cluster_id = next((n.cluster_id for n in self.nodes if n.cluster_id), None)
        cluster_id = cluster_id or new_cluster_id()
        # Formatting is a JVM start of its own (1-2 s): side by side, not one after the other.
        with concurrent.futures.ThreadPoolExecutor(max_workers=self.size) as pool:
            list(pool.map(lambda n: n.launch(cluster_id), self.nodes))
        try:
            deadline = time.monotonic() + timeout
            for node in self.nodes:
                node.wait_ready(max(deadline - time.monotonic(), 1.0))
        except BaseException:
            for node in self.nodes:
                node.kill()
            raise
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM every node at once, then wait (SIGKILL after ``timeout``)."""
        with concurrent.futures.ThreadPoolExecutor(max_workers=self.size) as pool:
            list(pool.map(lambda n: n.stop(timeout), self.nodes))

    def kill(self, node_id: int | None = None) -> None:
        """SIGKILL one node (``node_id``) or, without it, every node. Data stays."""
        for node in [self.node(node_id)] if node_id is not None else self.nodes:
            node.kill()

    def restart(
        self, node_id: int | None = None, timeout: float = CLUSTER_START_TIMEOUT
    ) -> KafkaCluster:
        """Start one node (or every stopped node) again on its ports and data."""
        if node_id is not None:
            self.node(node_id).restart(timeout)
            return self
        stopped = [n for n in self.nodes if not n.is_running]
        for node in stopped:
            node.launch()
        deadline = time.monotonic() + timeout
        for node in stopped:
            node.wait_ready(max(deadline - time.monotonic(), 1.0))
        return self

    def __enter__(self) -> KafkaCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # topics and leaders -------------------------------------------------------------------
    def ensure_topics(self, specs: Iterable[TopicSpec], *, timeout: float = 60.0) -> list[str]:
        """Create missing topics at this cluster's replication factor and min ISR."""
        return ensure_topics_sync(
            self.bootstrap,
            specs,
            timeout=timeout,
            replication_factor=self.replication_factor,
            min_insync_replicas=self.min_insync_replicas if self.size >= 3 else None,
        )

    async def partitions(self, topic: str, *, timeout: float = 10.0) -> list[PartitionState]:
        """Leader, replicas and ISR of each partition of ``topic``, as the live nodes see it."""
        return await describe_partitions(self.live_bootstrap, topic, timeout=timeout)

    async def leader_of(self, topic: str, partition: int, *, timeout: float = 10.0) -> int:
        """The node id leading ``topic``/``partition`` now (-1 while it has none)."""
        for state in await self.partitions(topic, timeout=timeout):
            if state.partition == partition:
                return state.leader
        raise LookupError(f"{topic} has no partition {partition}")

    def leader_of_sync(self, topic: str, partition: int, *, timeout: float = 10.0) -> int:
        """Blocking :meth:`leader_of`."""
        return run_sync(lambda: self.leader_of(topic, partition, timeout=timeout))


async def describe_partitions(
    bootstrap: str, topic: str, *, timeout: float = 10.0
) -> list[PartitionState]:
    """A metadata request for ``topic``: each partition's leader, replicas and ISR."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import for_code

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    try:
        async with asyncio.timeout(timeout):
            await admin.start()
            (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if described.get("error_code"):
        raise for_code(described["error_code"])(f"describing topic {topic!r}")
    return sorted(
        (
            PartitionState(
                topic=topic,
                partition=int(p["partition"]),
                leader=int(p["leader"]),
                replicas=tuple(int(r) for r in p.get("replicas") or ()),
                isr=tuple(int(r) for r in p.get("isr") or ()),
            )
            for p in described.get("partitions") or ()
        ),
        key=lambda s: s.partition,
    )


def start_cluster(
    workdir: Path | str,
    size: int = 3,
    *,
    ports: Sequence[int] | None = None,
    topics: Iterable[TopicSpec] | None = None,
    create_topics: bool = True,
    heap: str = "384m",
    timeout: float = CLUSTER_START_TIMEOUT,
) -> KafkaCluster:
    """Start ``size`` nodes and create the platform's topics, replicated (see KafkaCluster).

    The cluster counterpart of :func:`start_broker`; the caller stops it.
    """
    cluster = KafkaCluster(workdir, size, heap=heap, ports=ports)
    cluster.start(timeout)
    try:
        if create_topics:
            cluster.ensure_topics(list(topics) if topics is not None else load_topic_specs())
    except BaseException:
        cluster.stop()
        raise
    return cluster
