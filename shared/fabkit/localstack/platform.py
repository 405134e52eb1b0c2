"""The whole platform on one machine: broker, optional PostgreSQL, Keycloak, and every service
as its own process. Used by `fabrique-stack run`, the end-to-end tests and the benchmarks."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import string
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fabkit.localstack.kafka import (
    KafkaBroker,
    KafkaCluster,
    repo_root,
    start_broker,
    start_cluster,
    terminate,
)
from fabkit.localstack.keycloak import KEYCLOAK_VERSION, KeycloakServer
from fabkit.localstack.ports import free_port, port_is_free
from fabkit.localstack.postgres import PostgresServer, start_postgres

log = logging.getLogger("fabrique-stack")

SERVICES_FILE = Path("deploy") / "services.json"
#: Demo accounts and client secrets of the committed realm (development only).
DEMO_DIRECTORY = Path("deploy") / "keycloak" / "demo-directory.json"
#: The realm the services trust and the audience its tokens carry (docs/identity.md).
OIDC_REALM = "fabrique"
OIDC_AUDIENCE = "fabrique-api"
#: Keycloak's usual port, taken when free so the console URL stays the same from run to run.
KEYCLOAK_PORT = 8080
#: services.json placeholders that only exist when Keycloak runs.
KEYCLOAK_PLACEHOLDERS = frozenset({"oidc_issuer", "oidc_audience", "oidc_jwks_url", "keycloak_url"})


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    env_prefix: str
    app: str
    port: int
    migrate: list[str]
    seed: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)


def load_service_specs(path: Path | None = None) -> list[ServiceSpec]:
    data = json.loads((path or repo_root() / SERVICES_FILE).read_text(encoding="utf-8"))
    return [ServiceSpec(**{k: v for k, v in s.items()}) for s in data["services"]]


@dataclass
class ServiceProcess:
    """One service running as a uvicorn process on 127.0.0.1."""

    spec: ServiceSpec
    port: int
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def run_step(self, args: list[str]) -> str:
        done = subprocess.run(  # noqa: S603 - our own interpreter and module names
            [sys.executable, *args], env=self.env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{self.spec.name}: {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
            )
        return done.stdout

    def setup(self, seed: bool) -> str | None:
        """Migrate the database, then load demo data if asked; returns the seed's output."""
        self.run_step(self.spec.migrate)
        if seed and self.spec.seed:
            return self.run_step(self.spec.seed).strip()
        return None

    def start(self, timeout: float = 90.0) -> None:
        handle = self.log_path.open("ab")
        self.proc = subprocess.Popen(  # noqa: S603
            [
                sys.executable, "-m", "uvicorn", "--factory", self.spec.app,
                "--host", "127.0.0.1", "--port", str(self.port),
                "--no-access-log", "--timeout-graceful-shutdown", "10",
            ],
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        handle.close()
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.spec.name} exited with {self.proc.returncode}; see {self.log_path}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.spec.name} not ready after {timeout}s; see {self.log_path}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            terminate(self.proc, timeout=20)

    def kill(self) -> None:
        """SIGKILL, for fault tests."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class MailCatcher:
    """A real SMTP server on 127.0.0.1 that keeps every message as an .eml file."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        self.folder = folder
        self.port = port or free_port()
        self._controller: Any = None

    def start(self) -> MailCatcher:
        from aiosmtpd.controller import Controller

        self.folder.mkdir(parents=True, exist_ok=True)
        folder = self.folder

        class _Keep:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
                name = f"{time.time_ns()}.eml"
                (folder / name).write_bytes(envelope.original_content or envelope.content)
                log.info("mail to %s kept in %s", ", ".join(envelope.rcpt_tos), folder / name)
                return "250 Message accepted"

        self._controller = Controller(_Keep(), hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def messages(self) -> list[Path]:
        return sorted(self.folder.glob("*.eml"))

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@dataclass
class Platform:
    broker: KafkaBroker | KafkaCluster
    postgres: PostgresServer | None
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    mail: MailCatcher | None = None
    keycloak: KeycloakServer | None = None
    # Each prepared service's URL, for the `{<name>_url}` placeholders of the services after it.
    urls: dict[str, str] = field(default_factory=dict)
    # Further processes of a service on the same database and broker (start_replica).
    replicas: dict[str, list[ServiceProcess]] = field(default_factory=dict)

    def stop(self) -> None:
        for extra in self.replicas.values():
            for replica in extra:
                replica.stop()
        for service in reversed(list(self.services.values())):
            service.stop()
        if self.keycloak is not None:
            self.keycloak.stop()
        self.broker.stop()
        if self.postgres is not None:
            self.postgres.stop()
        if self.mail is not None:
            self.mail.stop()

    @property
    def oidc_issuer(self) -> str | None:
        """The issuer the services trust (realm fabrique), or None without Keycloak."""
        return self.keycloak.issuer(OIDC_REALM) if self.keycloak is not None else None


def start_platform(
    run_dir: Path,
    *,
    database: str = "sqlite",
    kafka_port: int | None = None,
    seed: bool = True,
    services: list[str] | None = None,
    extra_env: dict[str, str] | None = None,
    fixed_ports: bool = True,
    brokers: int = 1,
    keycloak: bool = True,
) -> Platform:
    """Start the broker (or a cluster of `brokers` nodes), Keycloak (unless `keycloak=False`),
    the databases and the services; the caller stops the result. The services get every
    node's address and the issuer and audience of the realm `fabrique`."""
    run_dir.mkdir(parents=True, exist_ok=True)
    mail = MailCatcher(run_dir / "mail").start()
    identity: KeycloakServer | None = None
    # Keycloak (15-25 s on an idle two-core machine, docs/identity.md; nearly all of it the JVM)
    # starts in a thread while the broker starts and the services migrate and seed; it is
    # awaited last.
    starting: Future[KeycloakServer] | None = None
    background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="keycloak")
    if keycloak:
        kc_port = KEYCLOAK_PORT if fixed_ports and port_is_free(KEYCLOAK_PORT) else None
        identity = KeycloakServer(run_dir / "keycloak", port=kc_port)
        starting = background.submit(_start_keycloak, identity, mail)
    broker: KafkaBroker | KafkaCluster | None = None
    try:
        if brokers > 1:
            broker = start_cluster(run_dir / "kafka-cluster", brokers)
        else:
            if kafka_port is None and fixed_ports and port_is_free(9092) and port_is_free(9093):
                kafka_port = 9092
            # Two JVMs starting side by side on two cores: the broker gets twice its usual
            # minute (a loaded machine was seen to need more than 60 s with Keycloak beside).
            broker = start_broker(
                run_dir / "kafka", port=kafka_port, timeout=120.0 if keycloak else 60.0
            )
    except BaseException:
        _abandon(identity, starting, background)
        mail.stop()
        raise
    postgres = None
    platform = Platform(broker=broker, postgres=None, mail=mail, keycloak=identity)
    try:
        if database == "postgres":
            postgres = start_postgres(run_dir / "postgres")
            platform.postgres = postgres
        prepared: list[ServiceProcess] = []
        for spec in load_service_specs():
            if services is not None and spec.name not in services:
                continue
            prepared.append(
                _prepare(spec, run_dir, broker, postgres, platform, fixed_ports, extra_env)
            )
        # Services are independent: migrate, seed and start them side by side.
        with ThreadPoolExecutor(max_workers=len(prepared) or 1) as pool:
            for service, output in zip(
                prepared, pool.map(lambda s: s.setup(seed), prepared), strict=True
            ):
                if output:
                    log.info("%s: seeded %s", service.spec.name, _summary(output))
            for service in prepared:
                platform.services[service.spec.name] = service
            list(pool.map(lambda s: s.start(), prepared))
        if starting is not None:
            _await_keycloak(starting, platform.keycloak.log_path if platform.keycloak else None)
    except BaseException:
        _abandon(None, starting, background)
        platform.stop()
        raise
    finally:
        background.shutdown(wait=False)
    return platform


def start_replica(
    platform: Platform, name: str, env: dict[str, str] | None = None, *, start: bool = True
) -> ServiceProcess:
    """One more process of service `name`: the same settings (database, broker, identity
    provider, public URLs) on another port, its own log; `env` overrides some (a Kafka
    client or group instance id). Its relay, consumers and workers share the database's work
    with the first process's. Platform.stop stops it; the caller may stop it sooner."""
    first = platform.services[name]
    extra = platform.replicas.setdefault(name, [])
    number = len(extra) + 2
    port = free_port()
    taken = {s.port for s in platform.services.values()}
    taken |= {r.port for rs in platform.replicas.values() for r in rs}
    while port in taken:
        port = free_port()
    replica = ServiceProcess(
        first.spec,
        port,
        {**first.env, **(env or {})},
        first.log_path.with_name(f"{name}-{number}.log"),
    )
    extra.append(replica)
    if start:
        replica.start()
    return replica


def _start_keycloak(server: KeycloakServer, mail: MailCatcher) -> KeycloakServer:
    server.start(progress=log.info)
    _point_smtp_at(server, mail)
    return server


def _point_smtp_at(server: KeycloakServer, mail: MailCatcher) -> None:
    """Send the realm's mails (e-mail verification, password reset) to the mail catcher.

    The realm file names the SMTP server by placeholders (``${FABRIQUE_SMTP_PORT:1025}``), but
    the catcher's port changes from run to run and the prepared store (the realm template) is
    keyed by those values: passing the port would build a new template (45-90 s) at every
    start. The template keeps the defaults; the realm's SMTP settings are updated here."""
    import httpx

    with httpx.Client(timeout=30) as client:
        headers = {"Authorization": f"Bearer {server.admin_token(client)}"}
        url = f"{server.base_url}/admin/realms/{OIDC_REALM}"
        answer = client.get(url, headers=headers)
        if answer.status_code == 404:
            return
        answer.raise_for_status()
        smtp = dict(answer.json().get("smtpServer") or {})
        wanted = {"host": "127.0.0.1", "port": str(mail.port)}
        if all(smtp.get(k) == v for k, v in wanted.items()):
            return
        smtp.update(wanted)
        client.put(url, headers=headers, json={"smtpServer": smtp}).raise_for_status()
        log.info("Keycloak sends the realm's mails to smtp://127.0.0.1:%s", mail.port)


def _await_keycloak(
    starting: Future[KeycloakServer], log_path: Path | None, timeout: float = 300.0
) -> None:
    """Wait for the Keycloak start, saying every few seconds that it is still going."""
    began = time.monotonic()
    while True:
        try:
            starting.result(timeout=5)
            return
        except FutureTimeout:
            waited = time.monotonic() - began
            if waited > timeout:
                raise RuntimeError(
                    f"Keycloak was not ready {timeout:.0f}s after the services started; "
                    f"see {log_path}"
                ) from None
            log.info("waiting for Keycloak (%.0f s so far)...", waited)


def _abandon(
    server: KeycloakServer | None,
    starting: Future[KeycloakServer] | None,
    background: ThreadPoolExecutor,
) -> None:
    """Let a Keycloak start that is no longer wanted finish (or fail), then stop it."""
    if starting is not None:
        # Its own log says why it failed, if it did; we are unwinding anyway.
        with contextlib.suppress(Exception):
            starting.result(timeout=200)
    if server is not None:
        server.stop()
    background.shutdown(wait=False)


def _summary(output: str) -> str:
    try:
        data = json.loads(output)
    except ValueError:
        return output[:200]
    if isinstance(data, list):
        return f"{len(data)} records"
    return json.dumps(data)[:200]


def _prepare(
    spec: ServiceSpec,
    run_dir: Path,
    broker: KafkaBroker | KafkaCluster,
    postgres: PostgresServer | None,
    platform: Platform,
    fixed_ports: bool,
    extra_env: dict[str, str] | None,
) -> ServiceProcess:
    if spec.name not in platform.urls:
        _choose_ports(platform, [*load_service_specs(), spec], fixed_ports)
    port = int(platform.urls[spec.name].rsplit(":", 1)[1])
    if postgres is not None:
        postgres.create_database(spec.name)
        db_url = postgres.url(spec.name)
    else:
        db_url = f"sqlite+aiosqlite:///{run_dir / f'{spec.name}.db'}"
    assert platform.mail is not None
    values = {
        "url": f"http://127.0.0.1:{port}",
        "port": str(port),
        "smtp_host": "127.0.0.1",
        "smtp_port": str(platform.mail.port),
        **{f"{name}_url": url for name, url in platform.urls.items()},
    }
    if platform.keycloak is not None:
        values |= {
            "oidc_issuer": platform.keycloak.issuer(OIDC_REALM),
            "oidc_audience": OIDC_AUDIENCE,
            "oidc_jwks_url": platform.keycloak.jwks_url(OIDC_REALM),
            "keycloak_url": platform.keycloak.base_url,
        }
    platform.urls[spec.name] = values["url"]
    env = {
        **os.environ,
        f"{spec.env_prefix}DATABASE_URL": db_url,
        f"{spec.env_prefix}KAFKA_BOOTSTRAP": broker.bootstrap,
        **{
            k: v.format(**values)
            for k, v in spec.env.items()
            if platform.keycloak is not None or not _fields(v) & KEYCLOAK_PLACEHOLDERS
        },
        **(extra_env or {}),
    }
    return ServiceProcess(spec, port, env, run_dir / f"{spec.name}.log")


def _choose_ports(platform: Platform, specs: list[ServiceSpec], fixed_ports: bool) -> None:
    """Give every service without one its port and URL at once, so that a service's
    `{<name>_url}` may name one prepared after it (notifications links its guests'
    confirmation e-mails to the portal, which comes after it)."""
    taken = {int(url.rsplit(":", 1)[1]) for url in platform.urls.values()}
    for spec in specs:
        if spec.name in platform.urls:
            continue
        free = fixed_ports and spec.port not in taken and port_is_free(spec.port)
        port = spec.port if free else free_port()
        while port in taken:
            port = free_port()
        taken.add(port)
        platform.urls[spec.name] = f"http://127.0.0.1:{port}"


def _fields(template: str) -> set[str]:
    """The placeholders a services.json value uses. A value naming Keycloak is left out when
    the platform runs without it (keycloak=False), so the service keeps its default."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def describe(platform: Platform, tokens: dict[str, Any]) -> str:
    lines = [
        "",
        "Fabrique is running (Ctrl-C stops everything).",
        (
            f"  Kafka cluster      {platform.broker.bootstrap} ({platform.broker.size} nodes)"
            if isinstance(platform.broker, KafkaCluster)
            else f"  Kafka broker       {platform.broker.bootstrap}"
        ),
    ]
    if platform.postgres is not None:
        lines.append(f"  PostgreSQL         {platform.postgres.url('postgres')}")
    if platform.mail is not None:
        lines.append(
            f"  mail catcher       smtp://127.0.0.1:{platform.mail.port} (mails kept in "
            f"{platform.mail.folder})"
        )
    portal = platform.services.get("portal")
    if portal is not None:
        # People start here; the APIs below are for integrators.
        lines.insert(2, f"  web portal         {portal.url}   (open it in a browser)")
    if platform.keycloak is not None:
        kc = platform.keycloak
        lines.insert(
            3 if portal is not None else 2,
            f"  Keycloak console   {kc.base_url}/admin/   (user {kc.admin_user}, password "
            f"{kc.admin_password}; issuer {kc.issuer(OIDC_REALM)})",
        )
    for name, service in platform.services.items():
        if name == "portal":
            continue
        lines.append(
            f"  {name:<18} {service.url}   (API docs {service.url}/docs, metrics /metrics)"
        )
    if platform.keycloak is not None:
        lines += identity_lines(platform.keycloak)
    if tokens:
        lines += ["", "Tokens for trying the API (from the demo realm's clients; valid 5 minutes):"]
    for label, token in tokens.items():
        lines.append(f"  {label}: {token}")
    return "\n".join(lines)


def identity_lines(keycloak: KeycloakServer, directory: Path | None = None) -> list[str]:
    """The demo accounts of deploy/keycloak/demo-directory.json and one curl that gets a
    landlord token by client credentials (development secrets, public by design)."""
    demo = json.loads((directory or repo_root() / DEMO_DIRECTORY).read_text(encoding="utf-8"))
    by_role: dict[str, list[str]] = {}
    for username, user in demo["users"].items():
        by_role.setdefault(user["roles"][0], []).append(username)
    client, secret = next(
        (name, c["secret"]) for name, c in demo["clients"].items() if c.get("landlord_id")
    )
    people = "; ".join(f"{role}: {', '.join(names)}" for role, names in by_role.items())
    return [
        "",
        f"Demo accounts (Keycloak {KEYCLOAK_VERSION}, realm {OIDC_REALM}; development only):",
        f"  {people}",
        f"  password for each: {demo['password']}",
        f"A landlord token ({client}, client credentials, audience {OIDC_AUDIENCE}):",
        f"  curl -s -d grant_type=client_credentials -d client_id={client} "
        f"-d client_secret={secret} {keycloak.token_endpoint(OIDC_REALM)}",
    ]


def _http_json(method: str, url: str, token: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 - loopback URLs we built
        url,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.loads(response.read())


#: The demo realm's confidential clients and their (public, development-only) secrets.
DEMO_CLIENT_SECRETS = {
    "fabrique-cli": "dev-fabrique-cli-secret",
    "landlord-rivp": "dev-landlord-rivp-secret",
    "landlord-paris-habitat": "dev-landlord-paris-habitat-secret",
}


def demo_client_token(platform: Platform, client_id: str) -> str | None:
    """A token of one of the demo realm's clients by the client-credentials grant, or None
    when the platform runs no identity provider (or it refuses)."""
    from fabkit.oidc import IdentityProviderUnavailable, client_credentials_access_token

    issuer = platform.oidc_issuer
    if not issuer:
        return None
    try:
        return client_credentials_access_token(issuer, client_id, DEMO_CLIENT_SECRETS[client_id])
    except IdentityProviderUnavailable as exc:
        log.warning("no %s token: %s", client_id, exc)
        return None


def demo_hints(platform: Platform, admin_token: str) -> list[str]:
    """A landlord token and a ready-to-paste PATCH that opens a vacancy in the demo data."""
    inventory = platform.services.get("inventory")
    if inventory is None:
        return []
    landlords = _http_json("GET", f"{inventory.url}/v1/landlords", admin_token)
    rivp = next((x for x in landlords if x["name"] == "RIVP"), landlords[0] if landlords else None)
    if rivp is None:
        return []
    landlord_token = demo_client_token(platform, "landlord-rivp")
    if landlord_token is None:
        return []
    token = {"token": landlord_token}
    units = _http_json(
        "GET",
        f"{inventory.url}/v1/units?status=unavailable&landlord_id={rivp['id']}&limit=1",
        admin_token,
    )
    lines = [f"  landlord {rivp['name']}: {token['token']}"]
    if units["items"]:
        unit = units["items"][0]
        lines += [
            "",
            f"Open a vacancy on {unit['site']['name']}, unit {unit['reference']}:",
            f"  curl -X PATCH {inventory.url}/v1/units/{unit['id']} \\",
            f"       -H 'Authorization: Bearer {token['token']}' \\",
            "       -H 'Content-Type: application/json' -d '{\"status\": \"available\"}'",
            "and watch the CloudEvent arrive:",
            "  uv run fabrique-stack tail inventory.unit.events",
        ]
    return lines


def write_state(run_dir: Path, platform: Platform) -> Path:
    """Where things listen, for `fabrique-stack tail` and other tools."""
    state = {
        "kafka_bootstrap": platform.broker.bootstrap,
        "services": {name: s.url for name, s in platform.services.items()},
        "oidc_issuer": platform.oidc_issuer,
    }
    path = run_dir / "stack.json"
    path.write_text(json.dumps(state, indent=2), encoding="utf-8")
    return path


def read_state(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "stack.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: is `fabrique-stack run` running?")
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


async def tail_topic(bootstrap: str, topic: str, from_beginning: bool, limit: int | None) -> None:
    """Print each CloudEvent of a topic as one JSON line (headers, key and data)."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest" if from_beginning else "latest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen = 0
    try:
        async for record in consumer:
            headers = {k: v.decode(errors="replace") for k, v in record.headers}
            try:
                data: Any = json.loads(record.value) if record.value else None
            except ValueError:
                data = repr(record.value)
            line = {
                "partition": record.partition,
                "offset": record.offset,
                "key": record.key.decode(errors="replace") if record.key else None,
                "headers": headers,
                "data": data,
            }
            print(json.dumps(line, ensure_ascii=False), flush=True)
            seen += 1
            if limit is not None and seen >= limit:
                return
    finally:
        await consumer.stop()
