"""fabkit.tracing: configured by the standard variables, off by default; W3C trace context read
from Kafka headers and CloudEvents attributes; background queries make no traces. (The whole
path, exported by real processes, is tests/e2e/test_tracing.py.)"""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Decision
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from fabkit import tracing
from fabkit.events import CloudEvent, envelope_of, from_kafka, to_kafka_headers

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
SEND_PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01"


@pytest.mark.parametrize(
    ("env", "on"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "inventory"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
    ],
)
def test_tracing_is_on_only_when_an_otlp_endpoint_is_configured(
    env: dict[str, str], on: bool
) -> None:
    assert tracing.tracing_configured(env) is on


def test_off_there_is_nothing_to_propagate() -> None:
    # The test process never configures an endpoint: no provider, no instrumentation.
    assert not tracing.tracing_enabled()
    span = NonRecordingSpan(SpanContext(0x4BF9, 0x00F0, True, TraceFlags(1)))
    with trace.use_span(span):
        assert tracing.current_trace_headers() == {}


def span_of(ctx: object) -> SpanContext:
    return trace.get_current_span(ctx).get_span_context()  # type: ignore[arg-type]


def test_a_traceparent_names_a_remote_parent() -> None:
    ctx = tracing.context_from(TRACEPARENT, "fabrique=1")
    parent = span_of(ctx)
    assert parent.is_remote and format(parent.trace_id, "032x") == TRACEPARENT.split("-")[1]
    assert format(parent.span_id, "016x") == "00f067aa0ba902b7"
    assert parent.trace_state.get("fabrique") == "1"
    for bad in (None, "", "garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"):
        assert tracing.context_from(bad) is None


def test_a_records_own_traceparent_wins_over_the_cloudevents_one() -> None:
    both = [("ce_traceparent", TRACEPARENT.encode()), ("traceparent", SEND_PARENT.encode())]
    assert format(span_of(tracing.context_from_headers(both)).span_id, "016x") == (
        "b7ad6b7169203331"
    )
    only_ce = [("ce_id", b"1"), ("ce_traceparent", TRACEPARENT.encode()), ("x", None)]
    assert format(span_of(tracing.context_from_headers(only_ce)).span_id, "016x") == (
        "00f067aa0ba902b7"
    )
    broken = [("traceparent", b"\xff\xfe"), ("ce_traceparent", TRACEPARENT.encode())]
    assert tracing.context_from_headers(broken) is not None
    assert tracing.context_from_headers([("ce_id", b"1")]) is None
    assert tracing.context_from_headers(None) is None


def test_the_tracing_extension_travels_as_ce_headers_and_back() -> None:
    event = CloudEvent(
        source="/fabrique/inventory",
        type="inventory.unit.vacancy_opened.v1",
        subject="u-1",
        data={"unit_id": "u-1"},
        traceparent=TRACEPARENT,
        tracestate="fabrique=1",
    )
    headers = to_kafka_headers(event)
    assert ("ce_traceparent", TRACEPARENT.encode()) in headers
    assert ("ce_tracestate", b"fabrique=1") in headers
    back = from_kafka(headers, b'{"unit_id":"u-1"}')
    assert (back.traceparent, back.tracestate) == (TRACEPARENT, "fabrique=1")
    assert envelope_of(event)["traceparent"] == TRACEPARENT


def test_an_event_staged_without_tracing_is_unchanged() -> None:
    event = CloudEvent(source="/s", type="a.b.v1", data={})
    assert not any(name.startswith("ce_trace") for name, _ in to_kafka_headers(event))
    envelope = envelope_of(event)
    assert "traceparent" not in envelope and "tracestate" not in envelope
    assert CloudEvent.model_validate(envelope) == event


def test_queries_and_sends_without_a_parent_are_not_recorded() -> None:
    sampler = tracing._NoOrphanClients(ALWAYS_ON)
    remote = trace.set_span_in_context(
        NonRecordingSpan(SpanContext(0x4BF9, 0x00F0, True, TraceFlags(1)))
    )

    def decision(kind: SpanKind, parent: object = None) -> Decision:
        return sampler.should_sample(parent, 0x1234, "SELECT", kind).decision  # type: ignore[arg-type]

    # The relay's polling, the workers' claims, the gauges: no request, no trace.
    assert decision(SpanKind.CLIENT) is Decision.DROP
    assert decision(SpanKind.PRODUCER) is Decision.DROP
    # Requests and consumers start traces; anything inside a trace is the delegate's call.
    assert decision(SpanKind.SERVER) is Decision.RECORD_AND_SAMPLE
    assert decision(SpanKind.CONSUMER) is Decision.RECORD_AND_SAMPLE
    assert decision(SpanKind.CLIENT, remote) is Decision.RECORD_AND_SAMPLE
    assert "AlwaysOnSampler" in sampler.get_description()


def test_spans_keep_no_raw_path_query_string_or_webhook_path() -> None:
    import httpx
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider().get_tracer("test")  # a recording span, the global left alone
    with tracer.start_as_current_span(
        "GET /v1/unsubscribe/{token}",
        attributes={
            "http.target": "/v1/unsubscribe/s3cr3t?sig=abc",
            "http.url": "http://notifications:8000/v1/unsubscribe/s3cr3t?sig=abc",
            "url.query": "sig=abc",
        },
    ) as server:
        tracing._server_request_hook(server, {"query_string": b"sig=abc"})
        tracing.keep_route_not_path("/v1/unsubscribe/{token}")
    assert server.attributes == {  # type: ignore[attr-defined]
        "http.target": "/v1/unsubscribe/{token}",
        "http.url": "http://notifications:8000/v1/unsubscribe/{token}",
        "url.query": "[redacted]",
    }
    with tracer.start_as_current_span(
        "POST", attributes={"http.url": "https://hooks.example:8443/T0/B0/XyZsecret?k=1"}
    ) as client:
        request = httpx.Request("POST", "https://hooks.example:8443/T0/B0/XyZsecret?k=1")
        tracing._client_request_hook(client, request)
    assert client.attributes == {"http.url": "https://hooks.example:8443"}  # type: ignore[attr-defined]
