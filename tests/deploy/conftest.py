"""Fixtures of the deployment checks: the repository's deploy files, rendered and parsed.

Everything here works offline. The one live check (metrics really exported) needs the local
platform; it is started in a background thread as soon as collection ends, so the broker's
start-up overlaps the static checks, and the tests that use it run last.
"""

from __future__ import annotations

import concurrent.futures
import functools
import importlib
import json
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from fabkit.testing import fail_or_skip

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if p.is_dir())
SERVICES = ("inventory", "leasing", "notifications")
SCHEMAS = Path(__file__).parent / "schemas"
#: Python package that provides each module the checks import (the lead adds them to the
#: workspace's dev dependency group).
PACKAGES = {
    "kubernetes_validate": "kubernetes-validate",
    "jsonschema": "jsonschema",
    "promql_parser": "promql-parser",
}


def need(module: str) -> Any:
    """Import a checker library, or fail (CI) / skip (elsewhere) saying which package is missing."""
    try:
        return importlib.import_module(module)
    except ImportError:
        fail_or_skip(
            f"{module} is not installed: add the PyPI package {PACKAGES.get(module, module)!r} "
            "to the dev dependency group"
        )


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def topics() -> list[dict[str, Any]]:
    return list(load_json(DEPLOY / "topics.json")["topics"])


def settings_env_names(service: str) -> set[str]:
    """Every environment variable a service's settings class reads (`<PREFIX><FIELD>`)."""
    module = importlib.import_module(f"{service}.settings")
    from pydantic_settings import BaseSettings

    from fabkit.settings import ServiceSettings

    # The services' settings derive from fabkit's ServiceSettings; the portal's (no broker, no
    # outbox) directly from pydantic-settings' BaseSettings.
    base = BaseSettings if service == "portal" else ServiceSettings
    classes = [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, base)
        and value not in (ServiceSettings, BaseSettings)
        and value.__module__ == module.__name__
    ]
    assert len(classes) == 1, f"{service}.settings should define one settings class"
    cls = classes[0]
    prefix = cls.model_config.get("env_prefix", "")
    from fabkit.tracing import OTEL_VARIABLES  # read by fabkit.tracing, not by the settings

    return {f"{prefix}{name}".upper() for name in cls.model_fields} | OTEL_VARIABLES


# --------------------------------------------------------------------------------------------
# Kubernetes
# --------------------------------------------------------------------------------------------


def render(overlay: str) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        fail_or_skip("kubectl is not installed (it renders the kustomize overlays)")
    done = subprocess.run(
        [kubectl, "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, f"kubectl kustomize overlays/{overlay} failed:\n{done.stderr}"
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="session")
def kit() -> ModuleType:
    """This module: the paths and helpers above, for the test modules (which cannot import a
    conftest under --import-mode=importlib)."""
    return sys.modules[__name__]


@pytest.fixture(scope="session")
def kubernetes_validate() -> ModuleType:
    """The `kubernetes-validate` package, reading each schema file once per session (it re-reads
    and re-parses the multi-megabyte definitions for every resource otherwise: 4x slower)."""
    kv = need("kubernetes_validate")
    utils = importlib.import_module("kubernetes_validate.utils")
    if not hasattr(utils.schema_contents, "cache_info"):
        utils.schema_contents = functools.lru_cache(maxsize=None)(utils.schema_contents)
    return kv


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict[str, Any]]]:
    """Every overlay rendered once: {overlay: [resources]}."""
    return {overlay: render(overlay) for overlay in OVERLAYS}


# --------------------------------------------------------------------------------------------
# the live platform (started early, in the background)
# --------------------------------------------------------------------------------------------

LIVE_FIXTURE = "live_platform"
_platform: dict[str, Any] = {}
_lock = threading.Lock()


def _start_platform(run_dir: Path) -> Any:
    from fabkit.localstack.platform import start_platform

    # No demo data: the checks need the processes, their metrics and the identity wiring, not
    # the Paris sites.
    return start_platform(run_dir, fixed_ports=False, seed=False)


def _start_in_background() -> None:
    with _lock:
        if "future" not in _platform:
            run_dir = Path(tempfile.mkdtemp(prefix="fabrique-deploy-checks-"))
            pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
            future = pool.submit(_start_platform, run_dir)
            _platform.update(run_dir=run_dir, pool=pool, future=future)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In a run of these checks alone (make check-deploy), start the platform now and run the
    live checks last, so the broker's start-up overlaps the static checks. Within the whole
    suite the platform starts when first needed, not minutes ahead."""
    live = [item for item in items if LIVE_FIXTURE in getattr(item, "fixturenames", ())]
    here = Path(__file__).parent
    if not live or not all(Path(str(item.path)).is_relative_to(here) for item in items):
        return
    items[:] = [item for item in items if item not in live] + live
    _start_in_background()


def pytest_sessionfinish(session: pytest.Session) -> None:
    future = _platform.get("future")
    if future is None:
        return
    try:
        started = future.result(timeout=400)
    except Exception:
        started = None
    if started is not None:
        started.stop()
    _platform["pool"].shutdown(wait=True)
    shutil.rmtree(_platform["run_dir"], ignore_errors=True)


@pytest.fixture(scope="session")
def live_platform() -> Any:
    """The platform of `fabrique-stack run` (broker + every service of deploy/services.json,
    SQLite, no demo data), as real processes on free ports."""
    _start_in_background()  # already started when these checks run alone
    try:
        return _platform["future"].result(timeout=400)  # stopped by pytest_sessionfinish
    except Exception as exc:
        fail_or_skip(f"cannot start the platform: {exc}")
