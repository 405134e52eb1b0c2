"""Prometheus metrics: HTTP by route template, outbox backlog, events published/consumed/failed,
and the build every process runs.

Names follow the Prometheus naming guide (https://prometheus.io/docs/practices/naming/): base
units (`_seconds`), `_total` on counters, and what every service has under one set of names —
Prometheus's `job` label (one scrape job per service) tells the services apart, so no shared
name carries a service's. A service's own business metrics keep its prefix
(`notifications_deliveries_total`). docs/operations.md#metric-names maps the former names to these.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from fastapi import FastAPI, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# A `<name>_created` series per counter and histogram doubles the series count for a timestamp
# that Prometheus does not need (it detects counter resets itself); the guide's names have none.
disable_created_metrics()

_CACHE: dict[str, Any] = {}

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BUILD_INFO = "fabrique_build_info"
#: Set by the image (deploy/docker/Dockerfile, build argument REVISION): the commit built.
REVISION_ENV = "FABRIQUE_REVISION"


def _cached(name: str, factory: Callable[[], Any]) -> Any:
    # Apps are created more than once per process in tests; a collector registers only once.
    if name not in _CACHE:
        _CACHE[name] = factory()
    return _CACHE[name]


def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
    return _cached(name, lambda: Counter(name, doc, labels))  # type: ignore[no-any-return]


def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
    return _cached(name, lambda: Gauge(name, doc, labels))  # type: ignore[no-any-return]


def histogram(
    name: str, doc: str, labels: tuple[str, ...] = (), buckets: tuple[float, ...] = LATENCY_BUCKETS
) -> Histogram:
    return _cached(  # type: ignore[no-any-return]
        name, lambda: Histogram(name, doc, labels, buckets=buckets)
    )


def personal_data_oldest() -> Gauge:
    """`fabrique_personal_data_oldest_seconds{table}`: one name in every service (the scrape
    job tells them apart), set by each service's retention job (docs/privacy.md)."""
    return gauge(
        "fabrique_personal_data_oldest_seconds",
        "Age of the oldest record holding personal data, per table, counted from where its "
        "retention period starts (0: none); retention keeps it under each table's period",
        ("table",),
    )


@dataclass(frozen=True)
class ServiceMetrics:
    """The infrastructure metrics every service has, under the same names in every process."""

    http_requests: Counter
    http_duration: Histogram
    outbox_pending: Gauge
    outbox_oldest_age: Gauge
    events_published: Counter
    publish_failures: Counter
    events_consumed: Counter
    events_failed: Counter
    events_dead_lettered: Counter
    consumer_lag: Gauge
    personal_data_oldest: Gauge

    @classmethod
    def for_service(cls, service: str) -> ServiceMetrics:
        """The process's infrastructure metrics; records `fabrique_build_info` for `service`."""
        record_build_info(service)
        return _cached("service-metrics", cls._build)  # type: ignore[no-any-return]

    @classmethod
    def _build(cls) -> ServiceMetrics:
        return cls(
            http_requests=counter(
                "http_requests_total",
                "HTTP requests answered, by method, route template and status",
                ("method", "route", "status"),
            ),
            http_duration=histogram(
                "http_request_duration_seconds",
                "HTTP request latency, by method, route template and status",
                ("method", "route", "status"),
            ),
            outbox_pending=gauge("outbox_pending_events", "Outbox events not yet published"),
            outbox_oldest_age=gauge(
                "outbox_oldest_event_age_seconds", "Age of the oldest unpublished outbox event"
            ),
            events_published=counter(
                "events_published_total",
                "Events acknowledged by the broker, by topic and event type",
                ("topic", "type"),
            ),
            publish_failures=counter(
                "outbox_publish_failures_total", "Relay batches that failed to publish"
            ),
            events_consumed=counter(
                "events_consumed_total",
                "Events consumed, by outcome (applied, duplicate, ignored)",
                ("topic", "type", "outcome"),
            ),
            events_failed=counter(
                "events_failed_total", "Handler attempts that raised", ("topic", "type")
            ),
            events_dead_lettered=counter(
                "events_dead_lettered_total",
                "Events sent to the dead-letter topic, by source topic",
                ("topic",),
            ),
            consumer_lag=gauge(
                "consumer_lag_records",
                "Records between the consumer's position and the partition end",
                ("topic", "partition"),
            ),
            personal_data_oldest=personal_data_oldest(),
        )


def shared_metric_names() -> frozenset[str]:
    """The metric names every Fabrique process exports (infrastructure and build info), as
    `/metrics` spells them (counters with `_total`, histograms without `_bucket`)."""
    metrics = _cached("service-metrics", ServiceMetrics._build)
    names = {
        family.name + ("_total" if family.type == "counter" else "")
        for field in fields(ServiceMetrics)
        for family in getattr(metrics, field.name).describe()
    }
    return frozenset(names | {BUILD_INFO})


def _version(service: str) -> str:
    for distribution in (f"fabrique-{service}", service):
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "unknown"


def record_build_info(service: str) -> None:
    """`fabrique_build_info{service,version,revision,python} 1`: which build a process runs."""
    info = gauge(
        BUILD_INFO,
        "Always 1: the service, its package version, the source revision and Python version",
        ("service", "version", "revision", "python"),
    )
    revision = os.environ.get(REVISION_ENV, "").strip() or "unknown"
    info.labels(service, _version(service), revision, platform.python_version()).set(1)


class _MetricsMiddleware:
    """Pure ASGI middleware: labels by the matched route template, never the raw path."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def _send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, _send)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            if route != "/metrics":
                labels = (scope["method"], route, str(status))
                self.metrics.http_requests.labels(*labels).inc()
                self.metrics.http_duration.labels(*labels).observe(time.perf_counter() - start)


def install_metrics(
    app: FastAPI, metrics: ServiceMetrics, registry: CollectorRegistry = REGISTRY
) -> None:
    """Count every request by route template and serve `/metrics`."""
    app.add_middleware(_MetricsMiddleware, metrics=metrics)

    @app.get("/metrics", include_in_schema=False)
    async def _metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
