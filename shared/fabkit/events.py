"""CloudEvents 1.0 envelope mapped to Kafka binary mode (`ce_*` headers, key = aggregate id).

The distributed-tracing extension's `traceparent` / `tracestate` attributes (W3C Trace Context)
name the span in which the event was staged, when tracing is on (fabkit.tracing); they travel
as `ce_traceparent` / `ce_tracestate` like any other attribute.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

SPECVERSION = "1.0"
JSON = "application/json"


class InvalidEvent(ValueError):
    """A Kafka record that is not a well-formed CloudEvent (a poison message)."""


class EventPayload(BaseModel):
    """Base of every published payload: frozen, past tense, versioned by its `event_type`."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    event_type: ClassVar[str]


class ConsumedPayload(BaseModel):
    """Base of payloads a consumer parses: tolerant of fields it does not know."""

    model_config = ConfigDict(frozen=True, extra="ignore")


def utcnow() -> datetime:
    return datetime.now(UTC)


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 event with a JSON `data` object."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), min_length=1)
    source: str = Field(min_length=1)
    type: str = Field(min_length=1)
    specversion: str = SPECVERSION
    time: datetime = Field(default_factory=utcnow)
    subject: str | None = None
    datacontenttype: str = JSON
    data: dict[str, Any] = Field(default_factory=dict)
    # CloudEvents distributed tracing extension (W3C Trace Context of the staging span).
    traceparent: str | None = Field(default=None, max_length=55)
    tracestate: str | None = Field(default=None, max_length=512)

    @classmethod
    def of(cls, payload: EventPayload, *, source: str, subject: str | None) -> CloudEvent:
        return cls(
            source=source,
            type=payload.event_type,
            subject=subject,
            data=payload.model_dump(mode="json"),
        )


def to_kafka_headers(event: CloudEvent) -> list[tuple[str, bytes]]:
    """Binary content mode: every attribute but data becomes a `ce_` header."""
    headers = [
        ("ce_specversion", event.specversion.encode()),
        ("ce_id", event.id.encode()),
        ("ce_source", event.source.encode()),
        ("ce_type", event.type.encode()),
        ("ce_time", event.time.isoformat().encode()),
        ("content-type", event.datacontenttype.encode()),
    ]
    if event.subject is not None:
        headers.append(("ce_subject", event.subject.encode()))
    if event.traceparent is not None:
        headers.append(("ce_traceparent", event.traceparent.encode()))
        if event.tracestate:
            headers.append(("ce_tracestate", event.tracestate.encode()))
    return headers


def envelope_of(event: CloudEvent) -> dict[str, Any]:
    """The event as stored in an outbox row (JSON), without unset tracing attributes."""
    unset = {name for name in ("traceparent", "tracestate") if getattr(event, name) is None}
    return event.model_dump(mode="json", exclude=unset)


def encode_data(event: CloudEvent) -> bytes:
    return json.dumps(event.data, separators=(",", ":"), ensure_ascii=False).encode()


def from_kafka(
    headers: Sequence[tuple[str, bytes | None]] | Iterable[tuple[str, bytes | None]] | None,
    value: bytes | None,
) -> CloudEvent:
    """Rebuild a CloudEvent from a binary-mode Kafka record, or raise InvalidEvent."""
    try:
        return _from_kafka(headers, value)
    except InvalidEvent:
        raise
    except Exception as exc:  # a poison record must never escape as another exception type
        raise InvalidEvent(f"unreadable record: {type(exc).__name__}: {exc}"[:500]) from exc


def _from_kafka(
    headers: Iterable[tuple[str, bytes | None]] | None, value: bytes | None
) -> CloudEvent:
    attrs: dict[str, str] = {}
    for name, raw in headers or ():
        if not (name.startswith("ce_") or name == "content-type"):
            continue  # other headers (tracing, DLQ notes) are not ours to judge
        if raw is None:
            raise InvalidEvent(f"header {name!r} has no value")
        try:
            text = raw.decode()
        except UnicodeDecodeError as exc:
            raise InvalidEvent(f"header {name!r} is not UTF-8: {exc}") from exc
        if name.startswith("ce_"):
            attrs[name[3:]] = text
        elif name == "content-type":
            attrs["datacontenttype"] = text
    if "data" in attrs:
        raise InvalidEvent("ce_data is not a CloudEvents attribute in binary mode")
    if attrs.get("specversion") != SPECVERSION:
        raise InvalidEvent(f"missing or unsupported ce_specversion: {attrs.get('specversion')!r}")
    for required in ("id", "source", "type"):
        if not attrs.get(required):
            raise InvalidEvent(f"missing ce_{required} header")
    if value is None:
        raise InvalidEvent("record has no value")
    try:
        data = json.loads(value)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidEvent(f"value is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidEvent("value is not a JSON object")
    try:
        event = CloudEvent(data=data, **attrs)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise InvalidEvent(f"invalid CloudEvent attributes: {exc.errors()}") from exc
    if event.time.tzinfo is None:
        raise InvalidEvent("ce_time must carry a UTC offset (RFC 3339)")
    return event
