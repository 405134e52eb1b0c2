"""Infrastructure tables of every service database: outbox, processed events, idempotency."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, String, Text
from sqlmodel import Field, SQLModel

from fabkit.db import UTCDateTime
from fabkit.events import utcnow


def _tz() -> Any:
    return UTCDateTime()


class OutboxMessage(SQLModel, table=True):
    """An event written in the business transaction, published later by the relay."""

    __tablename__ = "outbox_messages"
    __table_args__ = (Index("ix_outbox_messages_pending", "published_at", "id"),)

    # BigInteger on PostgreSQL; SQLite needs INTEGER PRIMARY KEY to autoincrement.
    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    )
    event_id: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    topic: str = Field(sa_column=Column(String(200), nullable=False))
    key: str = Field(sa_column=Column(String(200), nullable=False))
    event_type: str = Field(sa_column=Column(String(200), nullable=False))
    envelope: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(_tz(), nullable=False))
    published_at: datetime | None = Field(default=None, sa_column=Column(_tz(), nullable=True))
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False, default=0))
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class ProcessedEvent(SQLModel, table=True):
    """Inbox: the ids of events a consumer group has applied (or dead-lettered)."""

    __tablename__ = "processed_events"

    consumer: str = Field(sa_column=Column(String(120), primary_key=True))
    event_id: str = Field(sa_column=Column(String(64), primary_key=True))
    event_type: str = Field(sa_column=Column(String(200), nullable=False))
    outcome: str = Field(sa_column=Column(String(20), nullable=False))
    processed_at: datetime = Field(default_factory=utcnow, sa_column=Column(_tz(), nullable=False))


class IdempotencyRecord(SQLModel, table=True):
    """The stored response of a creating POST, replayed when the same Idempotency-Key comes back."""

    __tablename__ = "idempotency_keys"

    principal: str = Field(sa_column=Column(String(120), primary_key=True))
    key: str = Field(sa_column=Column(String(200), primary_key=True))
    method: str = Field(sa_column=Column(String(10), nullable=False))
    path: str = Field(sa_column=Column(String(500), nullable=False))
    request_hash: str = Field(sa_column=Column(String(64), nullable=False))
    status_code: int = Field(sa_column=Column(Integer, nullable=False))
    response_body: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    response_headers: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(_tz(), nullable=False))
