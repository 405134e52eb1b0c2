"""Every metric the dashboards and alert rules query is exported by a running service, and a
real Prometheus scrapes those services, evaluates the rules and runs every query.

The services are the ones `start_platform` starts (deploy/services.json): their /metrics is
scraped and each referenced name must be there. Names of a service that is not started yet
are reported as skipped, naming the service, so nothing passes unverified in silence; set
FABRIQUE_DEPLOY_STRICT_METRICS=1 to make a missing service a failure instead.
"""

from __future__ import annotations

import importlib.util
import json
import os
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


def owner(metric: str) -> str | None:
    prefix = metric.split("_", 1)[0]
    return prefix if prefix in SERVICES else None


def test_every_referenced_metric_belongs_to_a_service(referenced: dict[str, set[str]]) -> None:
    strays = {
        m: sorted(w)
        for m, w in referenced.items()
        if owner(m) is None and m not in PROMETHEUS_BUILTINS
    }
    assert not strays, f"metrics of no service (typo?): {strays}"


@pytest.mark.parametrize("service", SERVICES)
def test_referenced_metrics_are_exported(
    live_platform: Any, referenced: dict[str, set[str]], service: str
) -> None:
    wanted = sorted(m for m in referenced if owner(m) == service)
    assert wanted, f"no dashboard or rule uses {service}'s metrics"
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
    targets = [
        {
            "targets": [process.url.removeprefix("http://")],
            "labels": {"fabrique_service": name, "process": "all"},
        }
        for name, process in live_platform.services.items()
    ]
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(path) for path in monitoring.RULE_FILES],
        "scrape_configs": [{"job_name": "fabrique", "static_configs": targets}],
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
        assert {t["labels"]["fabrique_service"] for t in active} == set(live_platform.services)
        for group in rules:
            for rule in group["rules"]:
                assert rule["health"] == "ok", f"{rule['name']}: {rule.get('lastError')}"
        failures = {}
        for where, expr in monitoring.all_expressions():
            answer = get(f"query?query={urllib.parse.quote(expr)}")
            if answer["status"] != "success":
                failures[where] = answer.get("error")
        assert not failures, failures
        # A freshly started platform is healthy: no alert fires.
        firing = [a for a in get("alerts")["data"]["alerts"] if a["state"] == "firing"]
        assert not firing, firing
    finally:
        server.terminate()
        server.wait(timeout=20)
