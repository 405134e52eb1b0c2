"""One trace from the landlord's PATCH to the artisan's webhook, exported by every process on
the path to a real OTLP/HTTP receiver.

The platform runs as real processes (Kafka, Keycloak, every service) with the standard
``OTEL_EXPORTER_OTLP_ENDPOINT`` pointed at a receiver this module runs on 127.0.0.1: it decodes
the protobuf ``ExportTraceServiceRequest`` bodies the services' OTLP/HTTP exporters POST to
``/v1/traces``, as the OpenTelemetry Collector would (no collector binary is installable on
this machine; the receiver speaks the same protocol the collector's ``otlp`` receiver does).

A landlord opens a vacancy with one PATCH; a subscribed artisan's webhook receiver gets the
alert. The webhook request's ``traceparent`` carries the trace id of inventory's SERVER span for
that PATCH, the Kafka record carries it in ``ce_traceparent``, and spans of that trace came from
inventory (request, outbox, Kafka send), leasing and notifications (consumers), and
notifications' deliveries (the webhook POST, the e-mail's SMTP send). The services' JSON log
lines carry the same trace id.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from fabkit.localstack.platform import Platform
from fabkit.testing import fail_or_skip

from .conftest import start_platform
from .harness import (
    FAST_DELIVERY_ENV,
    UNIT_TOPIC,
    VACANCY_OPENED,
    Api,
    KafkaTap,
    ReceiverHub,
    check,
    eventually,
    header_map,
    tag,
    wait_caught_up,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

SERVER, CLIENT, PRODUCER, CONSUMER = 2, 3, 4, 5  # opentelemetry.proto.trace.v1.Span.SpanKind


@dataclass(frozen=True)
class ExportedSpan:
    service: str
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]


def _value(any_value: Any) -> Any:
    which = any_value.WhichOneof("value")
    return getattr(any_value, which) if which else None


class OtlpReceiver:
    """An OTLP/HTTP traces endpoint (protobuf) keeping every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[ExportedSpan] = []
        self.requests = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces" or "protobuf" not in (
                    self.headers.get("Content-Type") or ""
                ):
                    self.send_error(404)
                    return
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                receiver.keep(request)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def keep(self, request: ExportTraceServiceRequest) -> None:
        spans = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            service = str(resource.get("service.name", "?"))
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    spans.append(
                        ExportedSpan(
                            service=service,
                            name=span.name,
                            kind=span.kind,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            attributes={a.key: _value(a.value) for a in span.attributes},
                        )
                    )
        with self._lock:
            self.requests += 1
            self.spans.extend(spans)

    def trace(self, trace_id: str) -> list[ExportedSpan]:
        with self._lock:
            return [s for s in self.spans if s.trace_id == trace_id]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def otlp() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def traced_platform(
    tmp_path_factory: pytest.TempPathFactory, otlp: OtlpReceiver
) -> Iterator[Platform]:
    env = {
        **FAST_DELIVERY_ENV,
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint,
        "OTEL_TRACES_SAMPLER": "parentbased_always_on",
        # Export within a fraction of a second instead of the default 5 s.
        "OTEL_BSP_SCHEDULE_DELAY": "200",
    }
    try:
        started = start_platform(
            tmp_path_factory.mktemp("traced"), fixed_ports=False, seed=False, extra_env=env
        )
    except Exception as exc:
        fail_or_skip(f"cannot start the traced platform: {exc}")
    yield started
    started.stop()


def trace_id_of(traceparent: str) -> str:
    version, trace_id, span_id, _flags = traceparent.split("-")
    assert version == "00" and len(trace_id) == 32 and len(span_id) == 16, traceparent
    return trace_id


def log_lines(platform: Platform, service: str) -> list[dict[str, Any]]:
    lines = []
    for raw in platform.services[service].log_path.read_text(encoding="utf-8").splitlines():
        if raw.startswith("{"):
            lines.append(json.loads(raw))
    return lines


async def test_one_trace_from_the_patch_to_the_webhook(
    traced_platform: Platform,
    otlp: OtlpReceiver,
    api_for: Callable[[Platform], Api],
    receiver_hub: ReceiverHub,
) -> None:
    platform = traced_platform
    api = api_for(platform)
    receiver = receiver_hub.make("ok")
    trade = tag("trace")

    _, landlord = await api.new_landlord()
    site = await api.new_site(landlord, arrondissement=11)
    unit = await api.new_unit(landlord, site["id"], trades=[trade])
    artisan = await api.register_artisan([trade], name="Traced")
    await wait_caught_up(platform.broker.bootstrap, "notifications", ["leasing.artisan.events"])
    sub = await api.subscribe(
        artisan,
        criteria={"arrondissements": [11], "trades": [trade]},
        receiver=receiver,
        feed=False,
    )
    tap = await KafkaTap.open(platform.broker.bootstrap, UNIT_TOPIC)

    started = time.monotonic()
    opened = check(await api.set_status(landlord, unit["id"], "available"), 200)
    assert opened["vacancy_id"]

    async def webhook_hit() -> Any:
        hits = [h for h in receiver.hits_for([sub.path or ""]) if h.answered == 200]
        return hits[0] if hits else None

    hit = await eventually(webhook_hit, timeout=60, what="the webhook alert")
    assert hit.payload()["data"]["unit"]["unit_id"] == unit["id"]
    traceparent = hit.headers.get("traceparent")
    assert traceparent, f"the webhook request carries no traceparent: {sorted(hit.headers)}"
    trace_id = trace_id_of(traceparent)
    post_span_id = traceparent.split("-")[2]

    # The PATCH's SERVER span in inventory has that trace id: one trace from PATCH to webhook.
    def spans_of_path() -> Any:
        spans = otlp.trace(trace_id)
        names = {(s.service, s.name) for s in spans}
        wanted = {
            ("inventory", "PATCH /v1/units/{unit_id}"),
            ("notifications", "deliver webhook"),
            ("notifications", "deliver email"),
            ("notifications", "smtp send"),
        }
        if not wanted <= names or not any(s.span_id == post_span_id for s in spans):
            return None
        return spans

    async def exported() -> Any:
        return spans_of_path()

    spans = await eventually(exported, timeout=30, what="the spans of the trace to be exported")
    elapsed = time.monotonic() - started
    by_id = {s.span_id: s for s in spans}
    services = {s.service for s in spans}
    assert {"inventory", "leasing", "notifications"} <= services, services

    patch = next(s for s in spans if s.name == "PATCH /v1/units/{unit_id}")
    assert patch.service == "inventory" and patch.kind == SERVER
    assert patch.attributes.get("http.route") == "/v1/units/{unit_id}"
    # The raw path (the unit's id) is not on the span: the route template stands in for it.
    assert unit["id"] not in json.dumps(patch.attributes), patch.attributes
    post_attributes = json.dumps(by_id[post_span_id].attributes)
    assert sub.path and sub.path not in post_attributes, "a webhook URL's path stays out"
    # The outbox row was written inside the request, and published in its trace.
    inserts = [
        s
        for s in spans
        if s.service == "inventory"
        and s.kind == CLIENT
        and "outbox_messages"
        in str(s.attributes.get("db.statement", "")) + str(s.attributes.get("db.query.text", ""))
    ]
    assert inserts, f"no outbox INSERT in the trace: {sorted((s.service, s.name) for s in spans)}"
    publish = next(
        s
        for s in spans
        if s.service == "inventory"
        and s.name == f"outbox publish {VACANCY_OPENED}"
        and s.attributes.get("cloudevents.event_type") == VACANCY_OPENED
    )
    sends = [s for s in spans if s.kind == PRODUCER and s.parent_span_id == publish.span_id]
    assert sends and sends[0].name == f"{UNIT_TOPIC} send", sends
    # Each consumer of the record handles it in a CONSUMER span of the same trace.
    consumers = {
        s.service for s in spans if s.kind == CONSUMER and s.name == f"consume {VACANCY_OPENED}"
    }
    assert {"leasing", "notifications"} <= consumers, consumers
    # The webhook POST is notifications' httpx CLIENT span, inside the delivery's span, which
    # descends from notifications' consumer span.
    post = by_id[post_span_id]
    assert post.service == "notifications" and post.kind == CLIENT, post
    deliver = by_id[post.parent_span_id]
    assert deliver.name == "deliver webhook", deliver
    assert deliver.attributes.get("fabrique.delivery.outcome") == "delivered"
    assert deliver.attributes.get("fabrique.delivery.id") == hit.webhook_id
    ancestor, seen = deliver, 0
    while ancestor.parent_span_id in by_id and seen < 50:
        ancestor, seen = by_id[ancestor.parent_span_id], seen + 1
        if ancestor.name == f"consume {VACANCY_OPENED}":
            break
    assert ancestor.name == f"consume {VACANCY_OPENED}" and ancestor.service == "notifications"
    smtp = next(s for s in spans if s.name == "smtp send")
    assert by_id[smtp.parent_span_id].name == "deliver email"

    # The Kafka record carries the trace: CloudEvents extension and aiokafka's own header.
    records = [
        r
        for r in await tap.read(UNIT_TOPIC)
        if header_map(r).get("ce_type") == VACANCY_OPENED
        and header_map(r).get("ce_subject") == unit["id"]
    ]
    assert len(records) == 1, records
    headers = header_map(records[0])
    assert trace_id_of(headers["ce_traceparent"]) == trace_id
    assert trace_id_of(headers["traceparent"]) == trace_id
    assert headers["traceparent"].split("-")[2] == sends[0].span_id

    # The JSON log lines carry the trace: inventory's access line for the PATCH, by template.
    access = [
        line
        for line in log_lines(platform, "inventory")
        if line.get("logger") == "fabkit.access" and line.get("trace_id") == trace_id
    ]
    assert access, "inventory's access-log line of the PATCH carries the trace id"
    line = access[0]
    assert line["http_method"] == "PATCH" and line["http_route"] == "/v1/units/{unit_id}"
    assert line["http_status"] == 200 and line["service"] == "inventory"
    assert line["span_id"] and line["request_id"] and line["duration_ms"] >= 0
    assert unit["id"] not in json.dumps(line), "the access log names the route, not the path"
    print(
        f"trace {trace_id}: {len(spans)} spans from {sorted(services)}; "
        f"PATCH to exported webhook trace in {elapsed:.1f}s; {otlp.requests} OTLP requests"
    )
