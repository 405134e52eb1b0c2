"""Prometheus metrics: HTTP by route template, outbox backlog, events published/consumed/failed."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_CACHE: dict[str, Any] = {}

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


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


@dataclass(frozen=True)
class ServiceMetrics:
    """The infrastructure metrics of one service, named `<service>_<thing>_<unit>`."""

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

    @classmethod
    def for_service(cls, service: str) -> ServiceMetrics:
        return _cached(f"service:{service}", lambda: cls._build(service))  # type: ignore[no-any-return]

    @classmethod
    def _build(cls, s: str) -> ServiceMetrics:
        return cls(
            http_requests=counter(
                f"{s}_http_requests_total", "HTTP requests", ("method", "route", "status")
            ),
            http_duration=histogram(
                f"{s}_http_request_duration_seconds", "HTTP request latency", ("method", "route")
            ),
            outbox_pending=gauge(f"{s}_outbox_pending_messages", "Outbox rows not yet published"),
            outbox_oldest_age=gauge(
                f"{s}_outbox_oldest_pending_age_seconds", "Age of the oldest unpublished outbox row"
            ),
            events_published=counter(
                f"{s}_events_published_total",
                "Events acknowledged by the broker",
                ("topic", "type"),
            ),
            publish_failures=counter(
                f"{s}_outbox_publish_failures_total", "Relay batches that failed to publish"
            ),
            events_consumed=counter(
                f"{s}_events_consumed_total",
                "Events consumed, by outcome (applied, duplicate, ignored)",
                ("topic", "type", "outcome"),
            ),
            events_failed=counter(
                f"{s}_events_failed_total", "Handler attempts that raised", ("topic", "type")
            ),
            events_dead_lettered=counter(
                f"{s}_events_dead_lettered_total",
                "Events sent to the dead-letter topic",
                ("topic",),
            ),
            consumer_lag=gauge(
                f"{s}_consumer_lag_messages",
                "Records behind the partition end",
                ("topic", "partition"),
            ),
        )


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
                method = scope["method"]
                self.metrics.http_requests.labels(method, route, str(status)).inc()
                self.metrics.http_duration.labels(method, route).observe(
                    time.perf_counter() - start
                )


def install_metrics(
    app: FastAPI, metrics: ServiceMetrics, registry: CollectorRegistry = REGISTRY
) -> None:
    """Count every request by route template and serve `/metrics`."""
    app.add_middleware(_MetricsMiddleware, metrics=metrics)

    @app.get("/metrics", include_in_schema=False)
    async def _metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
