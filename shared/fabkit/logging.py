"""Logging: JSON lines that keep bearer tokens, secrets and e-mail addresses out of the logs.

Every record is one JSON object on one line: ``timestamp`` (UTC, RFC 3339, milliseconds),
``level``, ``service``, ``logger``, ``message``, and when known ``trace_id`` / ``span_id`` (the
current OpenTelemetry span, see ``fabkit.tracing``), ``request_id`` (the HTTP request being
served) and ``event_id`` (the CloudEvent being handled). The access log (``install_access_log``)
writes one line per request with the method, the route template (never the raw path nor its
query string), the status and the duration.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fabkit import tracing

_SECRET_PATTERNS = [
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1[redacted]"),
    (re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"), "[redacted-jwt]"),
    (
        re.compile(r"(?i)((?:secret|password|token)[\"']?\s*[:=]\s*[\"']?)[^\s\"',;]+"),
        r"\1[redacted]",
    ),
    (re.compile(r"(://[^:/\s]+:)[^@/\s]+@"), r"\1[redacted]@"),
    # Personal data: an e-mail address (a URL's user@host has no dot-separated domain after it
    # in the cases above, and a userinfo before "@" is already handled).
    (
        re.compile(
            r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
        ),
        "[redacted-email]",
    ),
]

#: The request a record was written while serving (set by the access-log middleware).
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "fabkit_request_id", default=None
)
#: The CloudEvent a record was written while handling (set by the consumer runner).
event_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "fabkit_event_id", default=None
)

ACCESS_LOGGER = "fabkit.access"
REQUEST_ID_HEADER = "x-request-id"
# A caller's request id is kept only if it looks like one (no room for log injection).
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
# Probes and scrapes come every few seconds: their lines are DEBUG, not INFO.
_QUIET_ROUTES = frozenset({"/livez", "/readyz", "/metrics"})


def redact(text: str) -> str:
    for pattern, repl in _SECRET_PATTERNS:
        text = pattern.sub(repl, text)
    return text


@contextlib.contextmanager
def event_context(event_id: str | None) -> Iterator[None]:
    """Log records written inside carry `event_id`."""
    token = event_id_var.set(event_id)
    try:
        yield
    finally:
        event_id_var.reset(token)


class RedactingFormatter(logging.Formatter):
    """Redacts the whole formatted record, tracebacks included."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line; the message, extras and traceback redacted."""

    # Attributes every LogRecord has: not copied as extra fields.
    _STANDARD = frozenset(
        vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
        | {"message", "asctime", "taskName"}
    )

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            line["trace_id"] = format(context.trace_id, "032x")
            line["span_id"] = format(context.span_id, "016x")
        request_id = request_id_var.get()
        if request_id:
            line["request_id"] = request_id
        event_id = event_id_var.get()
        if event_id:
            line["event_id"] = event_id
        for key, value in vars(record).items():
            if key not in self._STANDARD and not key.startswith("_") and key not in line:
                line[key] = redact(value) if isinstance(value, str) else _plain(value)
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            line["exception"] = redact(record.exc_text)
        if record.stack_info:
            line["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(line, ensure_ascii=False, default=str)


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact(str(value))


class RedactingFilter(logging.Filter):
    """Rewrites every record so a token or password never reaches a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def configure_logging(service: str, level: str = "INFO") -> None:
    """JSON lines on stderr for the whole process (idempotent)."""
    root = logging.getLogger()
    if not any(isinstance(f, RedactingFilter) for h in root.handlers for f in h.filters):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter(service))
        handler.addFilter(RedactingFilter())
        root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Uvicorn's own handlers go: its records reach the root's JSON handler instead, and its
    # access log (raw path and query string) is replaced by ours.
    for name in ("uvicorn", "uvicorn.error"):
        uv = logging.getLogger(name)
        uv.handlers.clear()
        uv.propagate = True
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
    access.disabled = True


class _AccessLogMiddleware:
    """Pure ASGI middleware: one line per request, by route template, with a request id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.log = logging.getLogger(ACCESS_LOGGER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id_of(scope)
        token = request_id_var.set(request_id)
        start = time.perf_counter()
        status = 500

        async def _send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # Routed by now, and the server span still open (it ends with the response).
                route = getattr(scope.get("route"), "path", None)
                if route:
                    tracing.keep_route_not_path(route)
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, _send)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            duration_ms = round((time.perf_counter() - start) * 1000, 2)
            level = logging.DEBUG if route in _QUIET_ROUTES and status < 400 else logging.INFO
            self.log.log(
                level,
                "%s %s %d %.1f ms",
                scope["method"],
                route,
                status,
                duration_ms,
                extra={
                    "http_method": scope["method"],
                    "http_route": route,
                    "http_status": status,
                    "duration_ms": duration_ms,
                },
            )
            request_id_var.reset(token)


def _request_id_of(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if _REQUEST_ID.match(candidate):
                return candidate
            break
    return uuid.uuid4().hex


def install_access_log(app: Any) -> None:
    """One access-log line per request (method, route template, status, duration in ms) and an
    ``X-Request-ID`` on every answer (the caller's, when it sent a well-formed one)."""
    app.add_middleware(_AccessLogMiddleware)
