"""Async database engine and sessions (SQLite by default, PostgreSQL by URL)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, MetaData, TypeDecorator, event
from sqlalchemy.ext import asyncio as sa_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.orm import Session
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

# Explicit constraint names so Alembic migrations are reproducible on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLModel.metadata.naming_convention = NAMING_CONVENTION
metadata: MetaData = SQLModel.metadata

AFTER_COMMIT_HOOKS = "fabkit_after_commit"
# Execution option marking connections of read-only sessions (see make_session_factory).
READ_ONLY = "fabkit_read_only"


def is_sqlite_url(url: str) -> bool:
    return url.startswith("sqlite")


def make_engine(url: str, *, echo: bool = False, pool_size: int = 10) -> AsyncEngine:
    """Create the service's engine; SQLite gets WAL, foreign keys and a busy timeout.

    `create_async_engine` is looked up on its module at each call, so that the SQLAlchemy
    instrumentation (fabkit.tracing, when tracing is on) traces the engine.
    """
    create_async_engine = sa_asyncio.create_async_engine
    if is_sqlite_url(url):
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy emit BEGIN itself so BEGIN IMMEDIATE below takes effect.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            if conn.get_execution_options().get(READ_ONLY):
                # Readers take a WAL snapshot and never wait for the write lock.
                conn.exec_driver_sql("BEGIN")
            else:
                # Writers serialise at BEGIN instead of failing on lock upgrade mid-transaction.
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_async_engine(
        url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
    )


def make_session_factory(
    engine: AsyncEngine, info: dict[str, Any] | None = None, *, read_only: bool = False
) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit; `info` reaches every session.

    `read_only` sessions are for work that never writes (GET handlers, gauges, the relay's
    look-ahead). On SQLite they begin with a deferred `BEGIN`, so they read a consistent WAL
    snapshot without queueing behind writers on the write lock (`BEGIN IMMEDIATE`, which
    writers need so that they serialise at BEGIN rather than fail on a lock upgrade). A write
    attempted in one may fail with "database is locked" under contention: do not write there.
    On PostgreSQL both kinds are the same.
    """
    bind = engine.execution_options(**{READ_ONLY: True}) if read_only else engine
    return async_sessionmaker(
        bind, class_=AsyncSession, expire_on_commit=False, info=dict(info or {})
    )


def on_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Run `callback` once after the session's current transaction commits."""
    session.sync_session.info.setdefault(AFTER_COMMIT_HOOKS, []).append(callback)


@event.listens_for(Session, "after_commit")
def _run_after_commit_hooks(session: Session) -> None:
    hooks = session.info.pop(AFTER_COMMIT_HOOKS, [])
    for hook in hooks:
        hook()


@event.listens_for(Session, "after_rollback")
def _drop_after_commit_hooks(session: Session) -> None:
    session.info.pop(AFTER_COMMIT_HOOKS, None)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every database (SQLite keeps no offset of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
