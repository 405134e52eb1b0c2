"""fabkit.logging: JSON lines with the trace, request and event ids, redacted; the access log."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from fabkit.logging import (
    ACCESS_LOGGER,
    JsonFormatter,
    RedactingFilter,
    configure_logging,
    event_context,
    install_access_log,
    request_id_var,
)

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXBhcnQ"
TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
SPAN_ID = 0x00F067AA0BA902B7


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger writing JSON lines (with the redacting filter) into a buffer."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter("inventory"))
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger(f"fabkit.test.{id(buffer)}")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, buffer
    logger.removeHandler(handler)


def lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_a_record_is_one_json_line_with_the_standard_fields(captured: Any) -> None:
    logger, buffer = captured
    logger.warning("unit %s is now %s", "u-1", "available")

    (line,) = lines(buffer)
    assert line["message"] == "unit u-1 is now available"
    assert line["level"] == "WARNING"
    assert line["service"] == "inventory"
    assert line["logger"] == logger.name
    assert line["timestamp"].endswith("+00:00") and "T" in line["timestamp"]
    # Outside a span, a request and an event: no ids at all (rather than nulls).
    assert not {"trace_id", "span_id", "request_id", "event_id"} & line.keys()


def test_the_current_span_request_and_event_ids_are_on_the_line(captured: Any) -> None:
    logger, buffer = captured
    span = NonRecordingSpan(SpanContext(TRACE_ID, SPAN_ID, True, TraceFlags(1)))
    token = request_id_var.set("req-42")
    try:
        with trace.use_span(span), event_context("ev-7"):
            logger.info("handled")
    finally:
        request_id_var.reset(token)
    logger.info("after")

    inside, after = lines(buffer)
    assert inside["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert inside["span_id"] == "00f067aa0ba902b7"
    assert inside["request_id"] == "req-42"
    assert inside["event_id"] == "ev-7"
    assert not {"trace_id", "span_id", "request_id", "event_id"} & after.keys()


def test_tokens_secrets_and_addresses_are_redacted_everywhere(captured: Any) -> None:
    logger, buffer = captured
    try:
        raise RuntimeError(f"refused Bearer {JWT} password=hunter2")
    except RuntimeError:
        logger.exception(
            "login of alice@example.org with token=%s", JWT, extra={"header": f"Bearer {JWT}"}
        )

    raw = buffer.getvalue()
    for secret in (JWT, "hunter2", "alice@example.org"):
        assert secret not in raw
    (line,) = lines(buffer)
    assert line["message"].startswith("login of [redacted-email] with token=")
    assert line["header"] == "Bearer [redacted]"
    assert "RuntimeError" in line["exception"] and "[redacted]" in line["exception"]


def make_app() -> FastAPI:
    app = FastAPI()

    @app.get("/v1/units/{unit_id}")
    async def unit(unit_id: str) -> dict[str, str]:
        logging.getLogger("fabkit.test.handler").info("reading %s", unit_id)
        return {"id": unit_id}

    @app.get("/livez")
    async def livez() -> dict[str, str]:
        return {"status": "ok"}

    install_access_log(app)
    return app


@pytest.fixture
def access() -> Iterator[list[logging.LogRecord]]:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        """Keeps each record with its JSON line, formatted when written (as a stream would)."""

        def emit(self, record: logging.LogRecord) -> None:
            record.json_line = self.format(record)
            records.append(record)

    handler = Keep(logging.DEBUG)
    handler.setFormatter(JsonFormatter("inventory"))
    for name in (ACCESS_LOGGER, "fabkit.test.handler"):
        logging.getLogger(name).addHandler(handler)
        logging.getLogger(name).setLevel(logging.DEBUG)
    yield records
    for name in (ACCESS_LOGGER, "fabkit.test.handler"):
        logging.getLogger(name).removeHandler(handler)


async def get(app: FastAPI, path: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        return await client.get(path, **kwargs)


async def test_one_access_line_per_request_by_route_template(
    access: list[logging.LogRecord],
) -> None:
    response = await get(make_app(), f"/v1/units/u-123?access_token={JWT}&secret=s3cr3t")

    assert response.status_code == 200
    request_id = response.headers["x-request-id"]
    handler_line, access_line = access
    assert access_line.name == ACCESS_LOGGER and access_line.levelno == logging.INFO
    fields = vars(access_line)
    assert fields["http_method"] == "GET"
    assert fields["http_route"] == "/v1/units/{unit_id}"
    assert fields["http_status"] == 200
    assert fields["duration_ms"] >= 0
    line = vars(access_line)["json_line"]
    for leaked in ("u-123", JWT, "s3cr3t", "access_token", "?"):
        assert leaked not in line, line
    parsed = json.loads(line)
    assert parsed["message"].startswith("GET /v1/units/{unit_id} 200 ")
    # Lines written while serving the request carry its id, as the access line does.
    assert parsed["request_id"] == request_id
    assert json.loads(vars(handler_line)["json_line"])["request_id"] == request_id


async def test_a_callers_request_id_is_kept_only_when_well_formed(
    access: list[logging.LogRecord],
) -> None:
    app = make_app()
    kept = await get(app, "/v1/units/u-1", headers={"X-Request-ID": "abc-123.def"})
    forged = await get(app, "/v1/units/u-1", headers={"X-Request-ID": 'x" level=ERROR\n'})

    assert kept.headers["x-request-id"] == "abc-123.def"
    assert forged.headers["x-request-id"] != 'x" level=ERROR\n'
    assert len(forged.headers["x-request-id"]) == 32


async def test_unmatched_paths_and_probes(access: list[logging.LogRecord]) -> None:
    app = make_app()
    missing = await get(app, "/wp-admin/secret-token=abc")
    probe = await get(app, "/livez")

    assert (missing.status_code, probe.status_code) == (404, 200)
    lost, live = access
    assert vars(lost)["http_route"] == "unmatched" and vars(lost)["http_status"] == 404
    assert "wp-admin" not in lost.getMessage()
    # Probes every few seconds are DEBUG lines, not INFO.
    assert vars(live)["http_route"] == "/livez" and live.levelno == logging.DEBUG


def test_configure_logging_writes_json_and_silences_uvicorns_access_log() -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    try:
        configure_logging("leasing", "INFO")
        assert any(isinstance(h.formatter, JsonFormatter) for h in root.handlers)
        assert logging.getLogger("uvicorn.access").disabled
        assert logging.getLogger("uvicorn.error").handlers == []
    finally:
        for handler in list(root.handlers):
            if handler not in before:
                root.removeHandler(handler)
        logging.getLogger("uvicorn.access").disabled = False
