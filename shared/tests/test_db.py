"""SQLite sessions on a real database file: writers serialise at BEGIN, readers do not wait."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text

from fabkit.db import make_engine, make_session_factory


@pytest.fixture
async def engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/db.sqlite")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
        await conn.execute(text("INSERT INTO t (v) VALUES ('committed')"))
    yield engine
    await engine.dispose()


async def test_read_only_session_reads_its_snapshot_while_a_writer_holds_the_lock(engine) -> None:  # type: ignore[no-untyped-def]
    writes = make_session_factory(engine)
    reads = make_session_factory(engine, read_only=True)
    async with writes() as writer, writer.begin():
        await writer.execute(text("INSERT INTO t (v) VALUES ('uncommitted')"))
        async with reads() as reader:
            # Would wait up to the 30 s busy timeout if it began with BEGIN IMMEDIATE.
            rows = await asyncio.wait_for(reader.execute(text("SELECT v FROM t ORDER BY id")), 5)
            assert rows.scalars().all() == ["committed"]
    async with reads() as reader:
        rows = await reader.execute(text("SELECT v FROM t ORDER BY id"))
        assert rows.scalars().all() == ["committed", "uncommitted"]


async def test_writers_wait_for_each_other_at_begin(engine) -> None:  # type: ignore[no-untyped-def]
    writes = make_session_factory(engine)
    release = asyncio.Event()
    order: list[str] = []

    async def first() -> None:
        async with writes() as session, session.begin():
            await session.execute(text("INSERT INTO t (v) VALUES ('first')"))
            order.append("first holds the lock")
            await release.wait()
        order.append("first committed")

    async def second() -> None:
        async with writes() as session, session.begin():
            # A plain read in a write session still takes the write lock at BEGIN.
            await session.execute(text("SELECT count(*) FROM t"))
            order.append("second began")

    holder = asyncio.create_task(first())
    while not order:
        await asyncio.sleep(0.01)
    waiter = asyncio.create_task(second())
    await asyncio.sleep(0.5)
    assert order == ["first holds the lock"]
    release.set()
    await asyncio.gather(holder, waiter)
    assert order == ["first holds the lock", "first committed", "second began"]
