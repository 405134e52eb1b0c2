"""End-to-end fixtures: the platform as real processes, started by the run command's launcher.

- ``platform`` (session): the run command's platform as ``make run`` starts it (seeded, SQLite),
  started a second time when the first start fails (``started_platform``). One platform serves
  every module that asks for it (each start costs a minute of CI's 45), so those tests read the
  seeded data they need from the APIs and make their own changes on their own units; it stops
  after the last test that uses it (``pytest_runtest_teardown``), not at the session's end.
- ``clock_platform`` (session): not seeded, leasing's clock read from ``clock_file`` (calls).
- ``e2e_platform`` (session): SQLite, not seeded, fast notification retries; shared by the
  scenarios, which isolate themselves by their own landlords, artisans and trades. The fault
  scenarios kill and restart its broker and services and leave them running.
- ``pg_platform`` (session): the same on PostgreSQL — Kafka and PostgreSQL from testcontainers
  when a Docker engine is there (see ``containers.py``), else from the local launcher.
- ``scenario_platform``: parametrised over both.
- ``report``: records a scenario's counts; they are printed at the end of the session and
  written as JSON lines to ``$FABRIQUE_E2E_RESULTS`` (default ``.run/e2e-results.jsonl``).
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fabkit.localstack.kafka import repo_root
from fabkit.localstack.keycloak import KeycloakServer
from fabkit.localstack.platform import Platform
from fabkit.localstack.platform import start_platform as launch
from fabkit.testing import STARTED, fail_or_skip

from .browser import axe_tab, browser, page  # noqa: F401 - the browser tests' fixtures
from .containers import containers_usable, mode, start_platform_on_containers
from .harness import FAST_DELIVERY_ENV, KEYCLOAKS, SCALE, Api, Counts, Mailbox, ReceiverHub

OIDC_PREFIXES = ("INVENTORY_", "LEASING_", "NOTIFICATIONS_", "PORTAL_")


def start_platform(run_dir: Path, **kwargs: Any) -> Platform:
    """The launcher's platform with its identity provider: the launcher's own Keycloak when it
    starts one (``Platform.keycloak``), otherwise one started here whose realm ``fabrique``
    the services are told to trust (``<PREFIX>OIDC_ISSUER``)."""
    if "keycloak" in inspect.signature(launch).parameters:
        return launch(run_dir, **kwargs)
    return with_keycloak(run_dir, kwargs.pop("extra_env", None) or {}, launch, **kwargs)


def with_keycloak(
    run_dir: Path, extra_env: dict[str, str], starter: Callable[..., Platform], **kwargs: Any
) -> Platform:
    """Start a Keycloak with the committed realms, then ``starter(run_dir, extra_env=...)``
    with the services told to trust its realm ``fabrique``; the platform stops both."""
    server = KeycloakServer(run_dir / "keycloak")
    server.start()
    issuer = server.issuer("fabrique")
    env = {f"{prefix}OIDC_ISSUER": issuer for prefix in OIDC_PREFIXES}
    try:
        platform = starter(run_dir, extra_env={**extra_env, **env}, **kwargs)
    except BaseException:
        server.stop()
        raise
    KEYCLOAKS[id(platform)] = server
    stop_services = platform.stop

    def stop() -> None:
        stop_services()
        server.stop()

    platform.stop = stop  # type: ignore[method-assign]
    return platform


def started_platform(
    tmp_path_factory: pytest.TempPathFactory, label: str, attempts: int = 1, **kwargs: Any
) -> Iterator[Platform]:
    """A fixture's platform: started (again after a failed start, up to ``attempts`` times: on a
    shared two-core machine Keycloak's start sometimes passes the launcher's bound), yielded,
    stopped; ``fail_or_skip`` when no attempt starts."""
    reasons = []
    for attempt in range(1, attempts + 1):
        try:
            started = start_platform(tmp_path_factory.mktemp(f"{label}-{attempt}"), **kwargs)
            break
        except Exception as exc:
            reasons.append(f"attempt {attempt}: {exc}"[:2000])
    else:
        fail_or_skip(f"cannot start the platform ({label}): " + " | ".join(reasons))
    yield started
    started.stop()


# The session platforms that stop after the last test using them, not at the session's end.
_EARLY = ("platform", "clock_platform")
_SHARED = pytest.StashKey[dict[str, Platform]]()
_LAST = pytest.StashKey[dict[str, pytest.Item]]()


def _shared(request: pytest.FixtureRequest, started: Platform) -> Platform:
    """Registers a session platform for the early stop; its ``stop`` runs once, whether the
    last test's teardown or the session's end calls it first."""
    stop, stopped = started.stop, []

    def stop_once() -> None:
        if not stopped:
            stopped.append(True)
            stop()

    started.stop = stop_once  # type: ignore[method-assign]
    request.config.stash.setdefault(_SHARED, {})[request.fixturename] = started
    return started


@pytest.fixture(scope="session")
def platform(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Platform]:
    """The seeded platform (broker, Keycloak, seeded services on SQLite), shared by the modules
    that use it."""
    for started in started_platform(tmp_path_factory, "platform", attempts=2, fixed_ports=False):
        yield _shared(request, started)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``spends_login_budget`` (the login rate limit, spent per client address for
    a minute) run after every other test of the shared seeded platform; the last test of each
    platform in ``_EARLY`` is remembered, so that the platform stops once it has run."""
    users = [i for i in items if "platform" in getattr(i, "fixturenames", ())]
    spenders = [i for i in users if i.get_closest_marker("spends_login_budget")]
    if spenders and len(spenders) < len(users):
        last = max(items.index(i) for i in users if i not in spenders)
        kept = [i for i in items if i not in spenders]
        at = kept.index(items[last]) + 1
        items[:] = kept[:at] + spenders + kept[at:]
    last_of = config.stash.setdefault(_LAST, {})
    for item in items:
        for name in _EARLY:
            if name in getattr(item, "fixturenames", ()):
                last_of[name] = item


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    shared = item.config.stash.get(_SHARED, {})
    for name, last in item.config.stash.get(_LAST, {}).items():
        if last is item and name in shared:
            shared.pop(name).stop()


@pytest.fixture(scope="session")
def clock_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The file leasing reads its clock from on ``clock_platform`` (an offset or an instant)."""
    return tmp_path_factory.mktemp("clock") / "leasing-clock"


@pytest.fixture(scope="session")
def clock_platform(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, clock_file: Path
) -> Iterator[Platform]:
    """A platform, not seeded, whose leasing reads its clock from ``clock_file`` and ticks its
    call worker twice a second (calls' closing dates and appeal periods pass). Shared by the
    calls' modules: each test writes the clock it starts from and works on its own landlord's
    units and its own artisans."""
    env = {**FAST_DELIVERY_ENV, "LEASING_CLOCK_FILE": str(clock_file), "LEASING_CALL_TICK_S": "0.5"}
    for started in started_platform(
        tmp_path_factory, "e2e-clock", fixed_ports=False, seed=False, extra_env=env
    ):
        yield _shared(request, started)


# --------------------------------------------------------------------------------------------
# the scenarios' platforms
# --------------------------------------------------------------------------------------------


def _started(label: str, platform: Platform) -> None:
    services = ", ".join(f"{n} {s.url}" for n, s in platform.services.items())
    STARTED.append(f"e2e platform ({label}): Kafka {platform.broker.bootstrap}; {services}")


@pytest.fixture(scope="session")
def e2e_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    try:
        started = start_platform(
            tmp_path_factory.mktemp("e2e-sqlite"),
            fixed_ports=False,
            seed=False,
            extra_env=FAST_DELIVERY_ENV,
        )
    except Exception as exc:
        fail_or_skip(f"cannot start the SQLite platform: {exc}")
    _started("SQLite, local launcher", started)
    yield started
    started.stop()


@pytest.fixture(scope="session")
def pg_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    run_dir = tmp_path_factory.mktemp("e2e-postgres")
    use_containers, why = containers_usable()
    if mode() == "require" and not use_containers:
        fail_or_skip(f"containers required (FABRIQUE_E2E_CONTAINERS=require) but: {why}")
    try:
        if use_containers:
            started = with_keycloak(
                run_dir,
                FAST_DELIVERY_ENV,
                lambda d, extra_env: start_platform_on_containers(d, extra_env),
            )
            label = f"PostgreSQL, testcontainers ({why})"
        else:
            started = start_platform(
                run_dir,
                database="postgres",
                fixed_ports=False,
                seed=False,
                extra_env=FAST_DELIVERY_ENV,
            )
            label = f"PostgreSQL, local launcher (no containers: {why})"
    except Exception as exc:
        fail_or_skip(f"cannot start the PostgreSQL platform: {exc}")
    _started(label, started)
    yield started
    started.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def scenario_platform(request: pytest.FixtureRequest) -> Platform:
    name = "e2e_platform" if request.param == "sqlite" else "pg_platform"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


def database_of(platform: Platform) -> str:
    return "postgres" if platform.postgres is not None else "sqlite"


@pytest.fixture(scope="session")
def receiver_hub() -> Iterator[ReceiverHub]:
    hub = ReceiverHub()
    yield hub
    hub.close()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=20) as client:
        yield client


@pytest.fixture
def api_for(http: httpx.AsyncClient) -> Callable[[Platform], Api]:
    return lambda platform: Api(platform, http)


@pytest.fixture
def mailbox_for() -> Callable[[Platform], Mailbox]:
    def make(platform: Platform) -> Mailbox:
        assert platform.mail is not None, "the platform runs no mail catcher"
        return Mailbox(platform.mail.folder)

    return make


# --------------------------------------------------------------------------------------------
# scenario counts: recorded, printed at the end (with or without -s), written as JSON lines
# --------------------------------------------------------------------------------------------

RESULTS = pytest.StashKey[list[dict[str, Any]]]()
_RESULTS_ENV = "FABRIQUE_E2E_RESULTS"


def _results_file() -> Path:
    env = os.environ.get(_RESULTS_ENV, "").strip()
    return Path(env) if env else repo_root() / ".run" / "e2e-results.jsonl"


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Callable[[Counts], None]:
    def write(counts: Counts) -> None:
        line = {"test": request.node.nodeid, **counts.line()}
        stash = request.config.stash
        if RESULTS not in stash:
            stash[RESULTS] = []
            mode_ = "w"  # a new session starts a new file
        else:
            mode_ = "a"
        stash[RESULTS].append(line)
        path = _results_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open(mode_, encoding="utf-8") as fh:
            fh.write(json.dumps(line, ensure_ascii=False) + "\n")
        print("scenario counts:", json.dumps(line, ensure_ascii=False))

    return write


COLUMNS = (
    "sent",
    "acknowledged",
    "published",
    "expected",
    "delivered",
    "duplicates",
    "distinct_duplicates",
    "lost",
    "seconds",
)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    results = config.stash.get(RESULTS, [])
    if not results:
        return
    terminalreporter.write_sep("-", f"end-to-end scenario counts (scale {SCALE.name})")
    header = f"{'scenario':<44} {'db':<8} " + " ".join(f"{c[:9]:>9}" for c in COLUMNS)
    terminalreporter.write_line(header)
    for line in results:
        name = f"{line['scenario']}"[:44]
        cells = " ".join(f"{line.get(c, ''):>9}" for c in COLUMNS)
        terminalreporter.write_line(f"{name:<44} {line['database']:<8} {cells}")
    terminalreporter.write_line(f"(JSON lines in {_results_file()})")
