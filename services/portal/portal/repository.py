"""The portal's database: the web-session rows and the rate-limit counters (SQLite by default,
PostgreSQL by URL; `python -m portal.cli migrate` creates the tables)."""

from __future__ import annotations

from contextvars import ContextVar
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.db import is_sqlite_url, make_engine, make_session_factory
from portal.models import RateWindow, WebSession


class Database:
    """The engine and its session factory; one per app (see ``portal.main``)."""

    def __init__(self, url: str, *, pool_size: int = 5) -> None:
        self.url = url
        self.engine: AsyncEngine = make_engine(url, pool_size=pool_size)
        self.sessions: async_sessionmaker[AsyncSession] = make_session_factory(self.engine)
        self.reads: async_sessionmaker[AsyncSession] = make_session_factory(
            self.engine, read_only=True
        )

    async def aclose(self) -> None:
        await self.engine.dispose()


#: The database of the app serving the current request (set by the web-session middleware),
#: so a module-level :class:`portal.ratelimit.RateLimit` needs no handle of its own.
CURRENT: ContextVar[Database | None] = ContextVar("portal_database", default=None)


# web sessions --------------------------------------------------------------------------------


async def insert_session(db: Database, row: WebSession) -> None:
    async with db.sessions() as session:
        session.add(row)
        await session.commit()


async def get_session(db: Database, id_hash: str) -> WebSession | None:
    async with db.reads() as session:
        return await session.get(WebSession, id_hash)


async def delete_session(db: Database, id_hash: str) -> None:
    async with db.sessions() as session:
        await session.execute(delete(WebSession).where(WebSession.id_hash == id_hash))  # type: ignore[arg-type]
        await session.commit()


async def sessions_of(db: Database, subject: str) -> list[WebSession]:
    """Every web session of one person (the provider's subject), oldest first."""
    async with db.reads() as session:
        found = await session.execute(
            select(WebSession).where(WebSession.subject == subject).order_by(WebSession.created_at)  # type: ignore[arg-type]
        )
        return list(found.scalars())


async def delete_sessions_of(db: Database, subject: str) -> int:
    """End every web session of one person; how many there were."""
    async with db.sessions() as session:
        result = await session.execute(delete(WebSession).where(WebSession.subject == subject))  # type: ignore[arg-type]
        await session.commit()
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def touch_session(db: Database, id_hash: str, seen_at: datetime) -> None:
    async with db.sessions() as session:
        await session.execute(
            update(WebSession)
            .where(WebSession.id_hash == id_hash)  # type: ignore[arg-type]
            .values(last_seen_at=seen_at)
        )
        await session.commit()


async def update_tokens(
    db: Database,
    id_hash: str,
    tokens: str,
    access_expires_at: datetime,
    refresh_expires_at: datetime | None,
    seen_at: datetime,
) -> None:
    async with db.sessions() as session:
        await session.execute(
            update(WebSession)
            .where(WebSession.id_hash == id_hash)  # type: ignore[arg-type]
            .values(
                tokens=tokens,
                access_expires_at=access_expires_at,
                refresh_expires_at=refresh_expires_at,
                last_seen_at=seen_at,
            )
        )
        await session.commit()


async def prune_sessions(db: Database, now: datetime, idle_deadline: datetime) -> int:
    """Delete the sessions past their absolute lifetime or idle since before ``idle_deadline``."""
    async with db.sessions() as session:
        result: Any = await session.execute(
            delete(WebSession).where(
                or_(
                    WebSession.expires_at <= now,  # type: ignore[arg-type]
                    WebSession.last_seen_at < idle_deadline,  # type: ignore[arg-type]
                )
            )
        )
        await session.commit()
        return int(result.rowcount or 0)


async def oldest_session_created(db: Database) -> datetime | None:
    """When the oldest web session still kept was opened (None when there is none)."""
    async with db.reads() as session:
        return await session.scalar(select(func.min(WebSession.created_at)))  # type: ignore[arg-type]


async def count_sessions(db: Database) -> int:
    async with db.reads() as session:
        rows = (await session.execute(select(WebSession.id_hash))).all()  # type: ignore[call-overload]
        return len(rows)


# rate-limit windows --------------------------------------------------------------------------


async def hit_window(db: Database, name: str, key: str, window_start: int) -> int:
    """Add one to the counter of (name, key, window_start) and return its new value; the
    windows of ``name`` that ended are deleted in the same transaction."""
    table = RateWindow.__table__  # type: ignore[attr-defined]
    dialect = sqlite if is_sqlite_url(db.url) else postgresql
    insert = dialect.insert(table).values(name=name, key=key, window_start=window_start, count=1)
    upsert = insert.on_conflict_do_update(
        index_elements=["name", "key", "window_start"],
        set_={"count": table.c.count + 1},
    ).returning(table.c.count)
    async with db.sessions() as session:
        count = (await session.execute(upsert)).scalar_one()
        await session.execute(
            delete(RateWindow).where(
                RateWindow.name == name,  # type: ignore[arg-type]
                RateWindow.window_start < window_start,  # type: ignore[arg-type]
            )
        )
        await session.commit()
        return int(count)


async def count_windows(db: Database, name: str) -> int:
    async with db.reads() as session:
        rows = (
            await session.execute(select(RateWindow.key).where(RateWindow.name == name))  # type: ignore[call-overload]
        ).all()
        return len(rows)
