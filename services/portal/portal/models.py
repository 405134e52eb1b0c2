"""The portal's tables: web sessions and rate-limit counters. The portal owns nothing else."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Column, Index, Integer, String, Text
from sqlmodel import Field, SQLModel

from fabkit.db import UTCDateTime


def _tz(**kwargs: Any) -> Any:
    return Column(UTCDateTime(), nullable=False, **kwargs)


class WebSession(SQLModel, table=True):
    """One signed-in browser. The cookie holds a random id; only its SHA-256 is stored, so a
    copy of the table cannot be replayed as cookies. The tokens are encrypted (AES-GCM, key
    derived from PORTAL_SESSION_SECRET, bound to the row's id hash)."""

    __tablename__ = "web_sessions"
    __table_args__ = (
        Index("ix_web_sessions_expires_at", "expires_at"),
        Index("ix_web_sessions_last_seen_at", "last_seen_at"),
    )

    id_hash: str = Field(sa_column=Column(String(64), primary_key=True))
    subject: str = Field(sa_column=Column(String(255), nullable=False))
    name: str = Field(sa_column=Column(String(255), nullable=False))
    email: str | None = Field(default=None, sa_column=Column(String(320), nullable=True))
    email_verified: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    roles: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    tokens: str = Field(sa_column=Column(Text, nullable=False))
    access_expires_at: datetime = Field(sa_column=_tz())
    refresh_expires_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    csrf_token: str = Field(sa_column=Column(String(64), nullable=False))
    created_at: datetime = Field(sa_column=_tz())
    last_seen_at: datetime = Field(sa_column=_tz())
    expires_at: datetime = Field(sa_column=_tz())


class RateWindow(SQLModel, table=True):
    """A fixed-window counter: how many times ``key`` (a hash: client addresses are personal
    data) used ``name`` in window number ``window_start`` (seconds since the epoch divided by
    the window's length, rounded down)."""

    __tablename__ = "rate_windows"

    name: str = Field(sa_column=Column(String(60), primary_key=True))
    key: str = Field(sa_column=Column(String(64), primary_key=True))
    window_start: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    count: int = Field(default=0, sa_column=Column(Integer, nullable=False))
