"""fabkit.metrics: the shared names, no _created series, build info, route-template labels."""

from __future__ import annotations

import platform

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY

from fabkit.metrics import (
    BUILD_INFO,
    REVISION_ENV,
    ServiceMetrics,
    install_metrics,
    record_build_info,
    shared_metric_names,
)


def _app() -> FastAPI:
    app = FastAPI()
    install_metrics(app, ServiceMetrics.for_service("fabkit_test"))

    @app.get("/v1/things/{thing_id}")
    async def thing(thing_id: str) -> dict[str, str]:
        return {"id": thing_id}

    return app


async def _get(app: FastAPI, *paths: str) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return [await client.get(path) for path in paths]


async def test_metrics_page_has_the_shared_names_and_no_created_series() -> None:
    *_, page = await _get(_app(), "/v1/things/a-secret-id", "/v1/things/other", "/metrics")
    text = page.text
    assert page.status_code == 200
    for name in shared_metric_names():
        assert f"# TYPE {name} " in text, name
    assert 'http_requests_total{method="GET",route="/v1/things/{thing_id}",status="200"}' in text
    assert (
        'http_request_duration_seconds_count{method="GET",route="/v1/things/{thing_id}",'
        'status="200"}'
    ) in text
    assert "a-secret-id" not in text
    assert "_created" not in text  # neither # TYPE lines nor samples


def test_shared_names_carry_no_service_name() -> None:
    names = shared_metric_names()
    assert "http_requests_total" in names and "outbox_pending_events" in names
    for name in names:
        assert not {"inventory", "leasing", "notifications", "portal"} & set(name.split("_"))


def test_one_set_of_collectors_whatever_the_service() -> None:
    """Two services in one process (tests, the bench) share the collectors: registering the
    same name twice would raise."""
    assert ServiceMetrics.for_service("a") is ServiceMetrics.for_service("b")


@pytest.mark.parametrize(("env", "revision"), [("0f1e2d3c", "0f1e2d3c"), ("", "unknown")])
def test_build_info_says_which_build_runs(
    monkeypatch: pytest.MonkeyPatch, env: str, revision: str
) -> None:
    monkeypatch.setenv(REVISION_ENV, env)
    record_build_info("fabkit_build_test")
    labels = {
        "service": "fabkit_build_test",
        "version": "unknown",  # no distribution of that name
        "revision": revision,
        "python": platform.python_version(),
    }
    assert REGISTRY.get_sample_value(BUILD_INFO, labels) == 1.0


def test_build_info_version_is_the_package_version() -> None:
    import importlib.metadata

    record_build_info("inventory")
    versions = {
        s.labels["version"]
        for metric in REGISTRY.collect()
        if metric.name == BUILD_INFO
        for s in metric.samples
        if s.labels["service"] == "inventory"
    }
    assert importlib.metadata.version("fabrique-inventory") in versions
