"""Every metric the dashboards and alert rules query is exported by a running service, every
name a service exports follows the Prometheus naming guide, and a real Prometheus scrapes those
services, evaluates the rules and runs every query.

The services are the ones `start_platform` starts (deploy/services.json): their /metrics is
scraped and each referenced name must be there. Names of a service that is not started yet
are reported as skipped, naming the service, so nothing passes unverified in silence; set
FABRIQUE_DEPLOY_STRICT_METRICS=1 to make a missing service a failure instead.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from fabkit.localstack.ports import free_port
from fabkit.metrics import BUILD_INFO, REVISION_ENV, shared_metric_names
from fabkit.testing import fail_or_skip

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("inventory", "leasing", "notifications")
#: Series Prometheus makes itself (not exported by a service).
PROMETHEUS_BUILTINS = {"up"}
STRICT = os.environ.get("FABRIQUE_DEPLOY_STRICT_METRICS") == "1"


def monitoring_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "deploy_test_monitoring", Path(__file__).with_name("test_monitoring.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def exported_names(text: str) -> set[str]:
    """Sample names a /metrics page can carry, from its # TYPE lines (labelled series with no
    sample yet still have their TYPE line)."""
    names = set()
    for line in text.splitlines():
        if not line.startswith("# TYPE "):
            continue
        _, _, name, kind = line.split(maxsplit=3)
        names.add(name)
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
        elif kind == "summary":
            names |= {f"{name}_sum", f"{name}_count"}
    return names


def scrape(url: str) -> str:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:  # noqa: S310 - loopback
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return response.read().decode()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def referenced(kit: ModuleType) -> dict[str, set[str]]:
    promql = kit.need("promql_parser")
    return monitoring_module().referenced_metrics(promql)  # type: ignore[no-any-return]


def shared_names() -> set[str]:
    """What every service exports under the same name (fabkit.metrics), histogram series too."""
    names = set(shared_metric_names())
    return names | {f"{n}_{suffix}" for n in names for suffix in ("bucket", "sum", "count")}


def owners(metric: str) -> set[str]:
    """The services that export `metric`: all of them for a shared name, else its prefix's."""
    if metric in shared_names():
        return set(SERVICES)
    prefix = metric.split("_", 1)[0]
    return {prefix} if prefix in SERVICES else set()


def test_every_referenced_metric_belongs_to_a_service(referenced: dict[str, set[str]]) -> None:
    strays = {
        m: sorted(w)
        for m, w in referenced.items()
        if not owners(m) and m not in PROMETHEUS_BUILTINS
    }
    assert not strays, f"metrics of no service (typo?): {strays}"


@pytest.mark.parametrize("service", SERVICES)
def test_referenced_metrics_are_exported(
    live_platform: Any, referenced: dict[str, set[str]], service: str
) -> None:
    wanted = sorted(m for m in referenced if service in owners(m))
    assert any(not m.startswith(f"{service}_") for m in wanted), "no shared metric is used"
    assert any(m.startswith(f"{service}_") for m in wanted), f"{service}'s metrics are unused"
    process = live_platform.services.get(service)
    if process is None:
        started = ", ".join(live_platform.services) or "none"
        reason = (
            f"{service} is not started by start_platform (deploy/services.json lists: {started}); "
            f"cannot verify yet: {', '.join(wanted)}"
        )
        if STRICT:
            pytest.fail(reason)
        pytest.skip(reason)
    # One request first, so the HTTP series exist with samples too.
    urllib.request.urlopen(f"{process.url}/livez", timeout=10).close()  # noqa: S310
    exported = exported_names(scrape(process.url))
    missing = {m: sorted(referenced[m]) for m in wanted if m not in exported}
    assert not missing, f"{service} does not export: {missing}"


def test_prometheus_scrapes_the_platform_and_runs_every_query(
    live_platform: Any, tmp_path: Path
) -> None:
    """A real Prometheus (Debian's, when installed) scrapes the running services with the
    compose scrape labels, loads the alert rules and evaluates them, and answers every
    dashboard and rule query without error — errors no parser sees, such as many-to-many
    matches or duplicate series, show up here."""
    binary = shutil.which("prometheus")
    if binary is None:
        fail_or_skip(
            "prometheus is not installed (Debian package prometheus, see scripts/bootstrap.sh)"
        )
    monitoring = monitoring_module()
    # As compose does it: one job per service, the job label telling them apart.
    jobs = [
        {
            "job_name": name,
            "static_configs": [
                {"targets": [process.url.removeprefix("http://")], "labels": {"process": "all"}}
            ],
        }
        for name, process in live_platform.services.items()
    ]
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(path) for path in monitoring.RULE_FILES],
        "scrape_configs": jobs,
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    port = free_port()
    api = f"http://127.0.0.1:{port}/api/v1"

    def get(path: str) -> Any:
        with urllib.request.urlopen(f"{api}/{path}", timeout=10) as response:  # noqa: S310
            return json.loads(response.read())

    server = subprocess.Popen(
        [
            binary,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "prometheus.log").open("wb"),
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                active = get("targets")["data"]["activeTargets"]
                if active and all(t["health"] == "up" for t in active):
                    rules = get("rules")["data"]["groups"]
                    if rules and all(g["lastEvaluation"][:4] != "0001" for g in rules):
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "prometheus.log").read_text()[-3000:]
            time.sleep(0.3)
        assert {t["labels"]["job"] for t in active} == set(live_platform.services)
        for group in rules:
            for rule in group["rules"]:
                assert rule["health"] == "ok", f"{rule['name']}: {rule.get('lastError')}"
        failures = {}
        for where, expr in monitoring.all_expressions():
            answer = get(f"query?query={urllib.parse.quote(expr)}")
            if answer["status"] != "success":
                failures[where] = answer.get("error")
        assert not failures, failures
        # The shared names come apart by job: one series of requests handled per service.
        answer = get("query?query=" + urllib.parse.quote("count by (job) (fabrique_build_info)"))
        per_job = {r["metric"]["job"]: r["value"][1] for r in answer["data"]["result"]}
        assert per_job == dict.fromkeys(live_platform.services, "1"), per_job
        # A freshly started platform is healthy: no alert fires.
        firing = [a for a in get("alerts")["data"]["alerts"] if a["state"] == "firing"]
        assert not firing, firing
    finally:
        server.terminate()
        server.wait(timeout=20)


# --------------------------------------------------------------------------------------------
# names, as the Prometheus naming guide has them
# --------------------------------------------------------------------------------------------

#: Families prometheus_client exports for any process (process_cpu_seconds_total, ...).
CLIENT_DEFAULT_PREFIXES = ("process_", "python_")
#: Suffixes of units that are not base units (seconds, bytes, meters) or a misspelt one.
NOT_BASE_UNITS = re.compile(
    r"_(milliseconds|microseconds|ms|minutes|hours|days|kilobytes|megabytes|gigabytes|"
    r"percent|metres|square_metres|kilometers|centimeters)(_|$)"
)


def families(text: str) -> dict[str, str]:
    """{name: type} from the # TYPE lines of a /metrics page."""
    found = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            found[name] = kind
    return found


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    pattern = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
    found = []
    for line in text.splitlines():
        match = pattern.match(line)
        if match:
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
            found.append((match.group(1), labels, float(match.group(3))))
    return found


@pytest.mark.parametrize("service", SERVICES)
def test_exported_names_follow_the_naming_guide(live_platform: Any, service: str) -> None:
    """On the real /metrics of each service: counters end in _total and nothing else does, no
    _created series, base units only (square_meters, not square_metres), the shared names carry
    no service name and every other name of the service starts with its prefix."""
    process = live_platform.services.get(service)
    if process is None:
        pytest.fail(f"{service} is not started by start_platform (deploy/services.json)")
    urllib.request.urlopen(f"{process.url}/livez", timeout=10).close()  # noqa: S310
    text = scrape(process.url)
    kinds = families(text)
    shared = shared_metric_names()
    assert shared <= set(kinds), f"{service} lacks {sorted(shared - set(kinds))}"
    problems = []
    for name, kind in sorted(kinds.items()):
        if (kind == "counter") != name.endswith("_total"):
            problems.append(f"{name} ({kind}): _total is for counters, and every counter has it")
        if name.endswith("_created"):
            problems.append(f"{name}: a _created series")
        if NOT_BASE_UNITS.search(name):
            problems.append(f"{name}: not a base unit")
        if name.startswith(CLIENT_DEFAULT_PREFIXES):
            continue
        if name in shared:
            if any(s in name.split("_") for s in (*SERVICES, "portal")):
                problems.append(f"{name}: a shared name with a service's name in it")
        elif not name.startswith(f"{service}_"):
            problems.append(f"{name}: neither shared (fabkit.metrics) nor prefixed {service}_")
    names = {name for name, _, _ in samples(text)}
    problems += [f"{n}: a _created sample" for n in sorted(names) if n.endswith("_created")]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("service", SERVICES)
def test_build_info_says_which_build_runs(live_platform: Any, service: str) -> None:
    """fabrique_build_info{service,version,revision,python} 1: the package's version, the
    revision the image sets (FABRIQUE_REVISION, inherited here from this process), Python's."""
    process = live_platform.services.get(service)
    if process is None:
        pytest.fail(f"{service} is not started by start_platform (deploy/services.json)")
    infos = [
        (labels, value)
        for name, labels, value in samples(scrape(process.url))
        if name == BUILD_INFO
    ]
    assert infos == [
        (
            {
                "service": service,
                "version": importlib.metadata.version(f"fabrique-{service}"),
                "revision": os.environ.get(REVISION_ENV, "").strip() or "unknown",
                "python": platform.python_version(),
            },
            1.0,
        )
    ], infos
