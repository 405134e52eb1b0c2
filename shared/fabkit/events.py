"""CloudEvents 1.0 envelope and its Kafka binary-mode mapping (`ce_*` headers, key = aggregate id)."""

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
    return headers


def encode_data(event: CloudEvent) -> bytes:
    return json.dumps(event.data, separators=(",", ":"), ensure_ascii=False).encode()


def from_kafka(
    headers: Sequence[tuple[str, bytes]] | Iterable[tuple[str, bytes]] | None, value: bytes | None
) -> CloudEvent:
    """Rebuild a CloudEvent from a binary-mode Kafka record, or raise InvalidEvent."""
    attrs: dict[str, str] = {}
    try:
        for name, raw in headers or ():
            if name.startswith("ce_"):
                attrs[name[3:]] = raw.decode()
            elif name == "content-type":
                attrs["datacontenttype"] = raw.decode()
    except UnicodeDecodeError as exc:
        raise InvalidEvent(f"header is not UTF-8: {exc}") from exc
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
        return CloudEvent(data=data, **attrs)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise InvalidEvent(f"invalid CloudEvent attributes: {exc.errors()}") from exc
