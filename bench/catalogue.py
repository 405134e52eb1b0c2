"""What leasing's catalogue cache saves a request: `python -m bench.catalogue [--database URL]`.

Every leasing handler that applies the rules (units, eligibility, applications, offers,
renewals) reads the programme catalogue in force. The catalogue lives in the database
(`programme_versions`); `CatalogueCache` re-checks its version at most every
LEASING_CATALOGUE_TTL_S and reads and validates the body only when the version moved. This
measures, on a real migrated database (SQLite by default, or PostgreSQL with --database),
the cost per request of the three paths: a cache hit (inside the TTL), a version check (TTL
over, same version: one primary-key read) and a reload (a new version: the body read and
validated by the rule language). Prints the figures (µs per call, median of `--repeats`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from fabkit.db import make_engine, make_session_factory
from leasing.cli import migrate
from leasing.programmes import load_catalogue
from leasing.service.programmes import CatalogueCache, seed_programmes
from leasing.settings import LeasingSettings


async def _per_call_us(calls: int, step: object) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        await step()  # type: ignore[operator]
    return (time.perf_counter() - started) / calls * 1e6


async def measure(database_url: str, calls: int, repeats: int) -> dict[str, float]:
    await asyncio.to_thread(migrate, LeasingSettings(environment="test", database_url=database_url))
    engine = make_engine(database_url)
    try:
        sessions = make_session_factory(engine)
        reads = make_session_factory(engine, read_only=True)
        await seed_programmes(sessions, load_catalogue())
        now = [0.0]
        cache = CatalogueCache(reads, load_catalogue(), 2.0, lambda: now[0])
        await cache.refresh()

        async def hit() -> None:
            await cache.current()

        async def check() -> None:
            now[0] += 3.0  # past the TTL: the version is read again, unchanged
            await cache.current()

        async def reload() -> None:
            cache._current = type(cache._current)(None, cache._current.catalogue)  # forget it
            await cache.refresh()

        figures: dict[str, list[float]] = {"hit": [], "version_check": [], "reload": []}
        for _ in range(repeats):
            figures["hit"].append(await _per_call_us(calls * 10, hit))
            figures["version_check"].append(await _per_call_us(calls, check))
            figures["reload"].append(await _per_call_us(calls, reload))
        return {name: round(statistics.median(values), 2) for name, values in figures.items()}
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", help="a database URL (default: a fresh SQLite file)")
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        url = args.database or f"sqlite+aiosqlite:///{Path(work) / 'leasing.db'}"
        figures = asyncio.run(measure(url, args.calls, args.repeats))
    print(json.dumps({"database": url.split(":", 1)[0], "us_per_call": figures}))


if __name__ == "__main__":
    main()
