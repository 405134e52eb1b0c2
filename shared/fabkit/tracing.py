"""OpenTelemetry traces over the whole path of an event, configured by the standard variables.

Tracing is on when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``)
names an OTLP/HTTP receiver, usually the OpenTelemetry Collector, and neither
``OTEL_SDK_DISABLED=true`` nor ``OTEL_TRACES_EXPORTER=none`` says otherwise. Off, nothing is
instrumented and the spans below are the API's no-op ones: no cost beyond a function call.

On, a process exports (``service.name`` = ``OTEL_SERVICE_NAME``, else the service's name):

- a SERVER span per request (FastAPI), a CLIENT span per SQL statement (SQLAlchemy) and per
  outgoing HTTP request (httpx, which also sends the W3C ``traceparent``);
- ``outbox publish <type>``: the relay publishing one outbox row, a child of the request that
  staged it (its ``traceparent`` and ``tracestate`` are stored with the event, as the
  CloudEvents distributed-tracing extension attributes) and parent of aiokafka's
  ``<topic> send`` PRODUCER span; the Kafka record carries both ``ce_traceparent`` (the staging
  request's span) and ``traceparent`` (the send span);
- ``<topic> receive`` (aiokafka) and ``consume <type>``: a consumer handling one event, a child
  of the record's context; what the handler does (SQL, staged events, deliveries) nests in it;
- in notifications, ``deliver <channel>`` (a child of the consumer span that created the
  delivery), with the webhook POST (httpx, with its own ``traceparent``) or ``smtp send``.

Spans with no parent of kinds CLIENT and PRODUCER are not recorded (see ``_NoOrphanClients``):
the relay's, the workers' and the gauges' polling would otherwise make a trace of every query,
every second, in every process. ``OTEL_TRACES_SAMPLER`` (default ``parentbased_always_on``)
decides the rest.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes

log = logging.getLogger(__name__)

TRACER_NAME = "fabkit"
#: The standard OpenTelemetry variables a deployment may set for fabkit's tracing.
OTEL_VARIABLES = frozenset(
    {
        "OTEL_SDK_DISABLED",
        "OTEL_SERVICE_NAME",
        "OTEL_RESOURCE_ATTRIBUTES",
        "OTEL_TRACES_EXPORTER",
        "OTEL_TRACES_SAMPLER",
        "OTEL_TRACES_SAMPLER_ARG",
        "OTEL_PROPAGATORS",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
        "OTEL_EXPORTER_OTLP_COMPRESSION",
        "OTEL_BSP_SCHEDULE_DELAY",
        "OTEL_BSP_MAX_QUEUE_SIZE",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
    }
)
#: Requests whose spans are not worth recording (probes, scrapes).
EXCLUDED_URLS = "/livez,/readyz,/metrics"
_W3C = TraceContextTextMapPropagator()
_state: dict[str, Any] = {"enabled": None, "provider": None}


def tracing_configured(env: Mapping[str, str] | None = None) -> bool:
    """Whether the environment asks for traces to be exported."""
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() in ("none", ""):
        return False
    return bool(
        env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
        or env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    )


def tracing_enabled() -> bool:
    return bool(_state["enabled"])


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


def setup_tracing(service_name: str) -> bool:
    """Set the process's tracer provider and instrument httpx and aiokafka, once; returns
    whether tracing is on. Safe to call from every app factory of a process."""
    if _state["enabled"] is not None:
        return bool(_state["enabled"])
    if not tracing_configured():
        _state["enabled"] = False
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.aiokafka import AIOKafkaInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import _get_from_env_or_default

    resource = Resource.create(
        {
            "service.name": os.environ.get("OTEL_SERVICE_NAME") or service_name,
            "service.namespace": "fabrique",
        }
    )
    provider = TracerProvider(
        resource=resource, sampler=_NoOrphanClients(_get_from_env_or_default())
    )
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    HTTPXClientInstrumentor().instrument(
        request_hook=_client_request_hook, async_request_hook=_async_client_request_hook
    )
    AIOKafkaInstrumentor().instrument()
    # Wraps sqlalchemy.ext.asyncio.create_async_engine: fabkit.db.make_engine calls it through
    # the module, so every engine made from now on is traced. The instrumentation declares
    # SQLAlchemy < 2.1 and would do nothing on our 2.1; the engine events it listens to are
    # the same in 2.1 (fabkit's tests and tests/e2e/test_tracing.py see its spans).
    SQLAlchemyInstrumentor().instrument(skip_dep_check=True)
    _state.update(enabled=True, provider=provider)
    log.info("tracing on: spans exported over OTLP/HTTP as %s", resource.attributes["service.name"])
    return True


def install_tracing(app: Any, service_name: str) -> bool:
    """Trace the app's requests (FastAPI SERVER spans) when tracing is configured."""
    if not setup_tracing(service_name):
        return False
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        excluded_urls=EXCLUDED_URLS,
        exclude_spans=["receive", "send"],
        server_request_hook=_server_request_hook,
    )
    return True


def shutdown_tracing() -> None:
    """Flush the spans still buffered (the SDK also does it at interpreter exit)."""
    provider = _state["provider"]
    if provider is not None:
        provider.force_flush()


# What spans never carry ------------------------------------------------------------------------

# A query string may hold a token (the unsubscribe links, a webhook URL's own secret), and a
# path may too (a confirmation link, a webhook URL): server spans keep no query string and, once
# routed, the route template in place of the path (keep_route_not_path); client spans keep only
# the origin (the server's span names the route).
_SERVER_URL_KEYS = ("http.url", "url.full", "http.target")
_CLIENT_URL_KEYS = ("http.url", "url.full")


def _attributes(span: Any) -> Mapping[str, Any]:
    return getattr(span, "attributes", None) or {}


def _server_request_hook(span: Any, scope: dict[str, Any]) -> None:
    if span is None or not span.is_recording() or not scope.get("query_string"):
        return
    attributes = _attributes(span)
    for key in _SERVER_URL_KEYS:
        value = attributes.get(key)
        if isinstance(value, str) and "?" in value:
            span.set_attribute(key, value.split("?", 1)[0])
    if "url.query" in attributes:
        span.set_attribute("url.query", "[redacted]")


def _client_request_hook(span: Any, request: Any) -> None:
    if span is None or not span.is_recording():
        return
    url = request.url
    try:
        scheme, host, port = url.scheme, url.host, url.port
    except AttributeError:  # the (scheme, host, port, target) tuple of older transports
        scheme, host, port = url[0].decode(), url[1].decode(), url[2]
    origin = f"{scheme}://{host}" + (f":{port}" if port else "")
    attributes = _attributes(span)
    for key in _CLIENT_URL_KEYS:
        if key in attributes:
            span.set_attribute(key, origin)


async def _async_client_request_hook(span: Any, request: Any) -> None:
    _client_request_hook(span, request)


_RAW_PATH_KEYS = ("http.target", "url.path", "http.url", "url.full")


def keep_route_not_path(route: str) -> None:
    """Put the route template in place of the raw path on the current (server) span: a path
    may carry a token (an unsubscribe or confirmation link). Called by the access log when the
    response starts: routed by then, and the span still open."""
    span = trace.get_current_span()
    if not span.is_recording():
        return
    attributes = _attributes(span)
    for key in _RAW_PATH_KEYS:
        value = attributes.get(key)
        if not isinstance(value, str):
            continue
        if "://" in value:
            scheme, rest = value.split("://", 1)
            span.set_attribute(key, f"{scheme}://{rest.split('/', 1)[0]}{route}")
        else:
            span.set_attribute(key, route)


# Propagation --------------------------------------------------------------------------------


def current_trace_headers() -> dict[str, str]:
    """The current span's W3C ``traceparent`` (and ``tracestate``), or {} outside any span."""
    if not tracing_enabled():
        return {}
    carrier: dict[str, str] = {}
    _W3C.inject(carrier)
    return carrier


def context_from(traceparent: str | None, tracestate: str | None = None) -> Context | None:
    """The remote context a ``traceparent`` names, or None when there is none (or it is bad)."""
    if not traceparent:
        return None
    carrier = {"traceparent": traceparent}
    if tracestate:
        carrier["tracestate"] = tracestate
    ctx = _W3C.extract(carrier)
    if not trace.get_current_span(ctx).get_span_context().is_valid:
        return None
    return ctx


def context_from_headers(headers: Sequence[tuple[str, bytes | None]] | None) -> Context | None:
    """The context of a Kafka record: its ``traceparent`` header (aiokafka's send span), else
    the CloudEvents ``ce_traceparent`` extension (the span that staged the event)."""
    found: dict[str, str] = {}
    for name, raw in headers or ():
        if raw is None or name not in (
            "traceparent",
            "tracestate",
            "ce_traceparent",
            "ce_tracestate",
        ):
            continue
        try:
            found[name] = raw.decode("ascii")
        except UnicodeDecodeError:
            continue
    return context_from(found.get("traceparent"), found.get("tracestate")) or context_from(
        found.get("ce_traceparent"), found.get("ce_tracestate")
    )


def start_span(
    name: str,
    *,
    parent: Context | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Attributes = None,
):  # type: ignore[no-untyped-def]
    """A span made current for the ``with`` block, child of ``parent`` when given (a remote
    context) and of the current span otherwise."""
    return tracer().start_as_current_span(name, context=parent, kind=kind, attributes=attributes)


def attach(ctx: Context | None) -> object | None:
    return otel_context.attach(ctx) if ctx is not None else None


def detach(token: object | None) -> None:
    if token is not None:
        otel_context.detach(token)  # type: ignore[arg-type]


class _NoOrphanClients(Sampler):
    """A sampler that drops CLIENT and PRODUCER spans that have no parent, and asks the
    configured sampler about everything else."""

    def __init__(self, delegate: Sampler) -> None:
        self._delegate = delegate

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        parent = trace.get_current_span(parent_context).get_span_context()
        if not parent.is_valid and kind in (SpanKind.CLIENT, SpanKind.PRODUCER):
            return SamplingResult(Decision.DROP)
        return self._delegate.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"NoOrphanClients{{{self._delegate.get_description()}}}"
