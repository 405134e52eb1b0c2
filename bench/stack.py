"""The platform the end-to-end benchmarks run on, its bench data, and process tools.

The platform is the one `fabrique-stack run` starts (fabkit.localstack.platform): the broker
and every service as its own uvicorn process on 127.0.0.1, SQLite per service, demo data.
On top of it the benchmarks add, through the services' APIs where that is fast enough and
through the services' own tables where it is not (each case says which):

- a bench landlord and 120 sites (one per arrondissement and site kind): inventory API;
- 10,000 units under those sites: inserted into inventory's `units` / `unit_trades` tables the
  way `create_unit` writes them, without their `unit.registered` events (no service needs them:
  every vacancy event carries the whole unit). Creating them through the API runs at about
  50/s on this machine, i.e. minutes;
- 200 artisans (legal form SCOP, so leasing's "économie sociale et solidaire" programme covers
  every site kind for them): leasing API, so their `registered` events reach notifications'
  read model as in production;
- 10,000 saved searches with a webhook to the bench receiver: the first 100 through the
  notifications API (which also measures its creation rate), the rest inserted into
  `subscriptions` / `subscription_terms` exactly as `create_subscription` writes them (criteria
  JSON, copied range columns, feature mask, index terms, a fresh `whsec_` secret each).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, insert, select, text

from fabkit.auth import Role
from fabkit.db import make_engine, make_session_factory
from fabkit.localstack.platform import Platform, ServiceProcess, start_platform
from fabkit.oidc_testing import TestIdentities

ROOT = Path(__file__).resolve().parents[1]

ARRONDISSEMENTS = list(range(1, 21))
SITE_KINDS = [
    "hotel_industriel", "hotel_activites", "cite_artisanale", "ateliers_de_paris", "pepiniere",
    "other",
]  # fmt: skip
# The trades of inventory's demo seed.
TRADES = [
    "woodwork", "cabinetmaking", "ceramics", "textile", "leather", "metalwork", "jewellery",
    "printing", "bookbinding", "glass", "upholstery", "instrument_making", "electronics",
    "food_processing", "fashion", "design",
]  # fmt: skip
FEATURES = ["goods_lift", "loading_dock", "extraction", "step_free_access"]

# The saved searches of rows 1 and 2. Search i follows one "cell": arrondissements [a, 20],
# site kinds [k, other], trades [t], features [f] (a in 1-19, k one of five kinds, t one of 16
# trades, f one of 4 features: 6,080 cells, so 10,000 searches put one or two in each). A
# vacancy on a unit of cell (a, k, t, f) — arrondissement a, kind k, allowing only t, with only
# f — matches exactly that cell's searches; a unit in the 20e, kind "other", open to every
# trade and with every feature matches all 10,000 (the fan-out unit).
CELL_ARRONDISSEMENTS = list(range(1, 20))
CELL_KINDS = SITE_KINDS[:5]
FANOUT_ARRONDISSEMENT, FANOUT_KIND = 20, "other"
CELLS = [
    (a, k, t, f) for a in CELL_ARRONDISSEMENTS for k in CELL_KINDS for t in TRADES for f in FEATURES
]


def cell_of(i: int) -> tuple[int, str, str, str]:
    return CELLS[i % len(CELLS)]


def searches_in_cell(cell_index: int, subscriptions: int) -> int:
    return subscriptions // len(CELLS) + (1 if cell_index < subscriptions % len(CELLS) else 0)


# Processes -----------------------------------------------------------------------------------


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (one level), from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as handle:
                ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            found.append(int(entry))
    return found


def pin(pid: int, cpus: Iterable[int]) -> None:
    """Pin every thread of a process (new threads inherit it from their creator)."""
    mask = set(cpus)
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(ProcessLookupError, FileNotFoundError):
            os.sched_setaffinity(int(tid), mask)


def unpin(pid: int) -> None:
    pin(pid, range(os.cpu_count() or 1))


def _set_policy(pid: int, policy: int) -> None:
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(ProcessLookupError, FileNotFoundError, PermissionError):
            os.sched_setscheduler(int(tid), policy, os.sched_param(0))


@contextlib.contextmanager
def bystanders_idle(pids: Iterable[int]) -> Iterator[None]:
    """Run these processes under SCHED_IDLE for the block: they then get a core only when no
    normal task wants it, so their timers (a broker's, an identity provider's, an idle
    service's gauges) do not preempt the processes being measured; back to SCHED_OTHER after."""
    pids = [p for p in pids if p]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, FileNotFoundError):
            _set_policy(pid, os.SCHED_IDLE)
    try:
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, FileNotFoundError):
                _set_policy(pid, os.SCHED_OTHER)


class CpuMeter:
    """CPU time each named process used between start() and stop(), as % of one core."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self._start: dict[str, float] = {}
        self._t0 = 0.0
        self.result: dict[str, float] = {}

    def start(self) -> CpuMeter:
        self._t0 = time.monotonic()
        self._start = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        return self

    def stop(self) -> dict[str, float]:
        wall = max(time.monotonic() - self._t0, 1e-9)
        self.result = {
            name: round(100 * (cpu_seconds(pid) - self._start[name]) / wall, 1)
            for name, pid in self.pids.items()
        }
        return self.result


class RssSampler:
    """Peak resident memory of processes, sampled every `interval` seconds in the background."""

    def __init__(self, pids: dict[str, int], interval: float = 0.25) -> None:
        self.pids = pids
        self.interval = interval
        self.peak: dict[str, float] = {name: 0.0 for name in pids}
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            for name, pid in self.pids.items():
                self.peak[name] = max(self.peak[name], rss_mib(pid))
            await asyncio.sleep(self.interval)

    def __enter__(self) -> RssSampler:
        self._task = asyncio.create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
        for name, pid in self.pids.items():
            self.peak[name] = max(self.peak[name], rss_mib(pid))


def spawn_module(
    module: str, args: list[str], ready_file: Path, timeout: float = 30.0
) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """Start `python -m module` and wait for the JSON it writes to `ready_file`."""
    ready_file.unlink(missing_ok=True)
    proc = subprocess.Popen(  # noqa: S603 - our interpreter, our module
        [sys.executable, "-m", module, *args, "--ready-file", str(ready_file)],
        cwd=ROOT,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    while not ready_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"{module} did not start")
        time.sleep(0.05)
    return proc, json.loads(ready_file.read_text(encoding="utf-8"))


def stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Receiver:
    """The webhook receiver (bench/receiver.py) as a separate process."""

    def __init__(self, work: Path) -> None:
        self.proc, info = spawn_module("bench.receiver", [], work / "receiver.json")
        self.port: int = info["port"]
        self.pid: int = self.proc.pid
        self.url = f"http://127.0.0.1:{self.port}"
        self._client = httpx.AsyncClient(timeout=30, trust_env=False)

    async def count(self) -> int:
        return int((await self._client.get(f"{self.url}/__count")).json()["count"])

    async def take(self) -> list[tuple[float, str, str, float]]:
        return [tuple(x) for x in (await self._client.post(f"{self.url}/__take")).json()]

    async def wait_for(self, expected: int, timeout: float, quiet: float = 1.0) -> int:
        """Until `expected` requests arrived (then `quiet` more seconds to catch extras), or
        `timeout`; returns the count."""
        deadline = time.monotonic() + timeout
        count = await self.count()
        while count < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            count = await self.count()
        await asyncio.sleep(quiet)
        return await self.count()

    async def close(self) -> None:
        await self._client.aclose()
        stop_process(self.proc)


# Platform and bench data ---------------------------------------------------------------------


@dataclass
class Stack:
    platform: Platform
    work: Path
    # Accounts made in the platform's Keycloak, tokens by real grants (refreshed as they near
    # their five-minute expiry, so a long bench keeps valid ones).
    identities: TestIdentities
    receiver: Receiver
    landlord_id: str = ""
    sites: dict[tuple[int, str], str] = field(default_factory=dict)
    latency_units: list[dict[str, Any]] = field(default_factory=list)
    fanout_units: list[str] = field(default_factory=list)
    artisans: list[str] = field(default_factory=list)
    subscriptions: int = 0
    seeding: dict[str, float] = field(default_factory=dict)
    # Extra processes of a service (`start_replica`), by name: "notifications-2", ...
    replicas: dict[str, ServiceProcess] = field(default_factory=dict)

    def url(self, service: str) -> str:
        if service in self.replicas:
            return self.replicas[service].url
        return self.platform.services[service].url

    @property
    def admin(self) -> str:
        return self.identities.token(Role.ADMIN, "bench-admin")

    @property
    def landlord_token(self) -> str:
        return self.identities.token(Role.LANDLORD, self.landlord_id)

    def artisan_token(self, i: int) -> str:
        return self.identities.token(Role.ARTISAN, self.artisans[i % len(self.artisans)])

    def pids(self) -> dict[str, int]:
        pids = {name: s.proc.pid for name, s in self.platform.services.items() if s.proc}
        pids |= {name: s.proc.pid for name, s in self.replicas.items() if s.proc}
        if self.platform.broker.pid:
            pids["broker"] = self.platform.broker.pid
        return pids

    def postgres_pids(self) -> list[int]:
        """The PostgreSQL server's processes: the postmaster and its children (one backend per
        connection, the checkpointer, the WAL writer...), empty on SQLite. A process's CPU time
        counts only its own threads, so PostgreSQL's CPU is the sum over these."""
        server = self.platform.postgres
        if server is None:
            return []
        pid_file = server.data_dir / "postmaster.pid"
        try:
            postmaster = int(pid_file.read_text(encoding="ascii").split()[0])
        except (OSError, ValueError, IndexError):
            return []
        return [postmaster, *children(postmaster)]

    def db_url(self, service: str) -> str:
        """The service's own database URL, as the launcher gave it (SQLite file or PostgreSQL)."""
        proc = self.platform.services[service]
        return proc.env[f"{proc.spec.env_prefix}DATABASE_URL"]

    async def close(self) -> None:
        await self.receiver.close()
        self.identities.close()
        for name in list(self.replicas):
            await stop_replica(self, name)
        await asyncio.to_thread(self.platform.stop)


async def start_replica(stack: Stack, service: str, extra_env: dict[str, str] | None = None) -> str:
    """Start one more process of `service` (the launcher's `start_replica`: the same settings,
    database, broker and consumer groups on another free port) and wait until it is ready;
    returns its name (`notifications-2`, ...). Replicas need a database every process shares:
    PostgreSQL (on SQLite the rule is one process per database file)."""
    from fabkit.localstack.platform import start_replica as launch

    if stack.platform.postgres is None:
        raise RuntimeError(f"a second {service} process needs the PostgreSQL platform")
    replica = await asyncio.to_thread(launch, stack.platform, service, extra_env)
    name = replica.log_path.stem
    stack.replicas[name] = replica
    return name


async def stop_replica(stack: Stack, name: str) -> None:
    replica = stack.replicas.pop(name)
    await asyncio.to_thread(replica.stop)


def _start_platform(run_dir: Path, database: str) -> tuple[Platform, Any]:
    """The launcher's platform and its Keycloak: the launcher's own (``Platform.keycloak``)
    when it starts one, otherwise one started here whose realm the services trust."""
    if "keycloak" in inspect.signature(start_platform).parameters:
        platform = start_platform(run_dir, database=database, fixed_ports=False)
        return platform, getattr(platform, "keycloak", None)
    from fabkit.localstack.keycloak import KeycloakServer

    server = KeycloakServer(run_dir / "keycloak")
    server.start()
    issuer = server.issuer("fabrique")
    env = {f"{p}OIDC_ISSUER": issuer for p in ("INVENTORY_", "LEASING_", "NOTIFICATIONS_")}
    try:
        platform = start_platform(run_dir, database=database, fixed_ports=False, extra_env=env)
    except BaseException:
        server.stop()
        raise
    stop_services = platform.stop

    def stop() -> None:
        stop_services()
        server.stop()

    platform.stop = stop  # type: ignore[method-assign]
    return platform, server


async def start(work: Path, database: str = "sqlite") -> Stack:
    started = time.monotonic()
    platform, server = await asyncio.to_thread(_start_platform, work / "platform", database)
    try:
        assert server is not None, "the bench needs the platform's Keycloak"
        identities = TestIdentities(server.base_url)
        await asyncio.to_thread(identities.token, Role.ADMIN, "bench-admin")
        receiver = Receiver(work)
    except BaseException:
        await asyncio.to_thread(platform.stop)
        raise
    stack = Stack(platform, work, identities, receiver)
    stack.seeding["platform_start_s"] = time.monotonic() - started
    return stack


def _siret(i: int) -> str:
    """A Luhn-valid SIRET of the 9xx range, unique per i."""
    base = f"9{i:012d}"
    for digit in "0123456789":
        candidate = base + digit
        total = 0
        for k, c in enumerate(reversed(candidate)):
            n = int(c) * (2 if k % 2 else 1)
            total += n - 9 if n > 9 else n
        if total % 10 == 0:
            return candidate
    raise AssertionError("unreachable")


async def _gather_limited(limit: int, coros: Iterable[Any]) -> list[Any]:
    gate = asyncio.Semaphore(limit)

    async def one(coro: Any) -> Any:
        async with gate:
            return await coro

    return await asyncio.gather(*(one(c) for c in coros))


async def _post(
    client: httpx.AsyncClient, url: str, body: dict[str, Any], headers: dict[str, str]
) -> httpx.Response:
    """POST, retried once when the service does not know the token's signing key yet: it
    fetched the realm's keys while Keycloak was still starting (the launcher awaits it last)
    and fetches them again only 10 s later (fabkit.oidc's min_refresh_interval)."""
    response = await client.post(url, json=body, headers=headers)
    if response.status_code == 401 and "does not publish" in response.text:
        await asyncio.sleep(11)
        response = await client.post(url, json=body, headers=headers)
    return response


def _expect(response: httpx.Response, status: int) -> dict[str, Any]:
    if response.status_code != status:
        raise RuntimeError(
            f"{response.request.method} {response.request.url}: {response.status_code} "
            f"{response.text[:500]}"
        )
    return response.json()  # type: ignore[no-any-return]


async def _bulk_load(
    url: str, loads: list[tuple[Any, list[dict[str, Any]], int]], count: Any
) -> int:
    """Insert each (model, rows, chunk size) in chunked transactions, refresh the planner's
    statistics, and return what the `count` query says is there.

    The ANALYZE is what an operator loading data would run: without it PostgreSQL plans the
    first queries for empty tables until autovacuum's next ANALYZE (a stall of 10–20 s in the
    first latency run on PostgreSQL). SQLite keeps no statistics unless asked, and the services
    never ask: left as it is there.
    """
    engine = make_engine(url)
    try:
        sessions = make_session_factory(engine)
        for model, rows, size in loads:
            for chunk in range(0, len(rows), size):
                async with sessions() as session, session.begin():
                    await session.execute(insert(model), rows[chunk : chunk + size])
        if engine.dialect.name == "postgresql":
            async with engine.begin() as conn:
                for model, _, _ in loads:
                    await conn.execute(text(f"ANALYZE {model.__tablename__}"))
        async with sessions() as session:
            return int((await session.execute(count)).scalar_one())
    finally:
        await engine.dispose()


async def seed_inventory(stack: Stack, units: int, latency_units: int, fanout_units: int) -> None:
    """Landlord and sites through the API; units into inventory's tables (see module doc)."""
    from inventory.models import Unit, UnitTrade

    started = time.monotonic()
    inventory = stack.url("inventory")
    admin = {"Authorization": f"Bearer {stack.admin}"}
    async with httpx.AsyncClient(timeout=60, trust_env=False) as client:
        landlord = _expect(
            await client.post(
                f"{inventory}/v1/landlords",
                headers=admin,
                json={"name": f"Bench landlord {uuid.uuid4().hex[:8]}", "kind": "sem"},
            ),
            201,
        )
        stack.landlord_id = landlord["id"]
        owner = {"Authorization": f"Bearer {stack.landlord_token}"}

        async def site(arrondissement: int, kind: str) -> None:
            body = {
                "name": f"Bench {kind} {arrondissement}e",
                "kind": kind,
                "address": f"{arrondissement} rue du Banc d'Essai",
                "postcode": f"750{arrondissement:02d}",
                "arrondissement": arrondissement,
            }
            made = _expect(
                await client.post(f"{inventory}/v1/sites", headers=owner, json=body), 201
            )
            stack.sites[(arrondissement, kind)] = made["id"]

        await _gather_limited(8, (site(a, k) for a in ARRONDISSEMENTS for k in SITE_KINDS))
    stack.seeding["sites_s"] = time.monotonic() - started

    started = time.monotonic()
    rng = random.Random(2026)
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    trades: list[dict[str, Any]] = []
    landlord_id = landlord["id"]

    def unit(arrondissement: int, kind: str, allowed: list[str], features: set[str], **kw: Any):  # type: ignore[no-untyped-def]
        unit_id = str(uuid.uuid4())
        status = kw.pop("status", "unavailable")
        rows.append(
            {
                "id": unit_id,
                "site_id": stack.sites[(arrondissement, kind)],
                "landlord_id": landlord_id,
                "arrondissement": arrondissement,
                "site_kind": kind,
                "reference": f"B{len(rows):05d}",
                "floor": rng.randint(0, 5),
                "surface_m2": float(
                    kw.pop("surface", rng.choice([25, 40, 60, 120, 180, 260, 400]))
                ),
                "ceiling_height_m": round(rng.uniform(2.8, 6.0), 1),
                "floor_load_kg_m2": float(rng.choice([400, 600, 800, 1000])),
                "power_kva": float(rng.choice([12, 36, 60])),
                **{f: f in features for f in FEATURES},
                "allowed_trades": sorted(allowed),
                "use_class": "production" if rng.random() < 0.9 else "other",
                "rent_eur_m2_year": float(rng.randrange(60, 251, 5)),
                "charges_eur_m2_year": float(rng.randrange(10, 41, 5)),
                "status": status,
                "available_from": None,
                "current_vacancy_id": str(uuid.uuid4()) if status == "available" else None,
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
        )
        trades.extend({"unit_id": unit_id, "trade": t} for t in sorted(allowed))
        return unit_id

    for _ in range(fanout_units):
        stack.fanout_units.append(unit(FANOUT_ARRONDISSEMENT, FANOUT_KIND, [], set(FEATURES)))
    cells = (
        rng.sample(range(len(CELLS)), latency_units)
        if latency_units <= len(CELLS)
        else [rng.randrange(len(CELLS)) for _ in range(latency_units)]
    )
    for index in cells:
        a, k, t, f = CELLS[index]
        unit_id = unit(a, k, [t], {f})
        stack.latency_units.append({"id": unit_id, "cell": index})
    while len(rows) < units:
        a, k = rng.choice(ARRONDISSEMENTS), rng.choice(SITE_KINDS)
        features = {f for f in FEATURES if rng.random() < 0.4}
        allowed = rng.sample(TRADES, rng.randint(1, 4))
        unit(a, k, allowed, features, status="available" if rng.random() < 0.3 else "unavailable")
    total = await _bulk_load(
        stack.db_url("inventory"),
        [(Unit, rows, 2000), (UnitTrade, trades, 5000)],
        select(func.count()).select_from(Unit),
    )
    stack.seeding["units_s"] = time.monotonic() - started
    stack.seeding["units_total"] = total


async def seed_artisans(stack: Stack, count: int) -> None:
    started = time.monotonic()
    leasing = stack.url("leasing")
    tag = uuid.uuid4().int % 10**9

    async with httpx.AsyncClient(timeout=60, trust_env=False) as client:

        async def register(i: int) -> str:
            # A new artisan account (verified e-mail) in Keycloak registers its profile.
            artisan_id, token = await asyncio.to_thread(
                stack.identities.subject_and_token, Role.ARTISAN
            )
            body = {
                "display_name": f"Atelier banc {i}",
                "business_name": f"Coopérative banc d'essai {i}",
                "siret": _siret(tag * 1000 + i),
                "trades": [TRADES[i % len(TRADES)]],
                "business_created_on": "2019-03-01",
                "legal_form": "scop",
                "contact_email": f"atelier{i}@example.org",
            }
            headers = {"Authorization": f"Bearer {token}"}
            response = await _post(client, f"{leasing}/v1/artisans", body, headers)
            made = _expect(response, 201)
            assert made["id"] == artisan_id, made
            return artisan_id

        done = await _gather_limited(8, (register(i) for i in range(count)))
    stack.artisans = list(done)
    stack.seeding["artisans_s"] = time.monotonic() - started
    # Alerts need the artisans in notifications' read model (from leasing's events).
    from notifications.models import Artisan, Programme

    engine = make_engine(stack.db_url("notifications"))
    try:
        sessions = make_session_factory(engine)
        deadline = time.monotonic() + 120
        while True:
            async with sessions() as session:
                known = (
                    await session.execute(
                        select(func.count()).where(Artisan.artisan_id.in_(stack.artisans))
                    )
                ).scalar_one()
                programmes = (
                    await session.execute(select(func.count()).select_from(Programme))
                ).scalar_one()
            if known == len(stack.artisans) and programmes > 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"notifications knows {known}/{count} bench artisans")
            await asyncio.sleep(0.2)
    finally:
        await engine.dispose()
    stack.seeding["artisans_known_s"] = time.monotonic() - started


def cell_criteria(i: int) -> dict[str, Any]:
    a, k, t, f = cell_of(i)
    return {
        "arrondissements": [a, FANOUT_ARRONDISSEMENT],
        "site_kinds": [k, FANOUT_KIND],
        "trades": [t],
        "features": [f],
    }


async def seed_subscriptions(stack: Stack, count: int, through_api: int = 100) -> None:
    """`through_api` searches through the API, the rest into the service's tables."""
    from notifications.domain import Criteria, feature_mask, index_terms
    from notifications.models import Subscription, SubscriptionTerm
    from notifications.schemas import CriteriaIn
    from notifications.webhooks import generate_secret

    hook = f"{stack.receiver.url}/hooks/fabrique"
    notifications = stack.url("notifications")
    through_api = min(through_api, count)
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=60, trust_env=False) as client:

        async def create(i: int) -> None:
            token = await asyncio.to_thread(stack.artisan_token, i)
            body = {
                "name": f"Banc d'essai {i}",
                "criteria": cell_criteria(i),
                "channels": [{"type": "webhook", "url": hook}],
            }
            headers = {"Authorization": f"Bearer {token}"}
            _expect(await _post(client, f"{notifications}/v1/subscriptions", body, headers), 201)

        await _gather_limited(8, (create(i) for i in range(through_api)))
    api_s = time.monotonic() - started
    stack.seeding["subscriptions_api_per_s"] = through_api / api_s if through_api else 0.0

    started = time.monotonic()
    now = datetime.now(UTC)
    subs, terms = [], []
    for i in range(through_api, count):
        criteria = CriteriaIn.model_validate(cell_criteria(i))
        stored = criteria.model_dump(mode="json")
        sub_id = str(uuid.uuid4())
        subs.append(
            {
                "id": sub_id,
                "artisan_id": stack.artisans[i % len(stack.artisans)],
                "name": f"Banc d'essai {i}",
                "status": "active",
                "frequency": "instant",
                "criteria": stored,
                "min_surface_m2": criteria.min_surface_m2,
                "max_surface_m2": criteria.max_surface_m2,
                "max_rent_eur_m2_year": criteria.max_rent_eur_m2_year,
                "feature_mask": feature_mask(f.value for f in criteria.features),
                "webhook_url": hook,
                "webhook_secret": generate_secret(),
                "webhook_enabled": True,
                "email_address": None,
                "email_enabled": False,
                "feed_enabled": False,
                "disabled_reason": None,
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
        )
        terms += [
            {"dim": d, "value": v, "subscription_id": sub_id}
            for d, v in index_terms(Criteria.from_stored(stored))
        ]
    total = await _bulk_load(
        stack.db_url("notifications"),
        [(Subscription, subs, 2000), (SubscriptionTerm, terms, 10000)],
        select(func.count()).where(
            Subscription.status == "active", Subscription.webhook_url == hook
        ),
    )
    if total != count:
        raise RuntimeError(f"{total} bench subscriptions in notifications, expected {count}")
    stack.subscriptions = total
    stack.seeding["subscriptions_bulk_s"] = time.monotonic() - started


async def backlog(stack: Stack) -> float:
    """Outbox rows not yet published plus records behind the partition ends, all services."""
    total = 0.0
    async with httpx.AsyncClient(timeout=10, trust_env=False) as client:
        for name in [*stack.platform.services, *stack.replicas]:
            text = (await client.get(f"{stack.url(name)}/metrics")).text
            for line in text.splitlines():
                if line.startswith(("consumer_lag_records{", "outbox_pending_events ")):
                    total += float(line.rsplit(" ", 1)[1])
    return total


async def settle(stack: Stack, timeout: float = 120.0) -> float:
    """Wait until every outbox is published and every consumer caught up (the gauges refresh
    about once a second), so one phase's work does not spill into the next one's figures."""
    started = time.monotonic()
    quiet = 0
    while time.monotonic() - started < timeout:
        quiet = quiet + 1 if await backlog(stack) == 0 else 0
        if quiet >= 3:
            break
        await asyncio.sleep(0.7)
    return time.monotonic() - started
