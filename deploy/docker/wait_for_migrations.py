"""Wait until a service's database is at the newest migration, then exit 0 (exit 1 on timeout).

The init container of every Deployment runs this, so a new version never serves on the old
schema while its migration Job is still running. It only reads: migrations stay an explicit
step (`python -m <service>.cli migrate`, the Job), never something a serving pod does.

    python wait_for_migrations.py inventory --timeout 600
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import sys
import time
from pathlib import Path

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import create_async_engine

from fabkit.migrations import alembic_config


def expected_heads(service: str) -> set[str]:
    """The head revisions shipped with the service's package (`<service>/migrations`)."""
    spec = importlib.util.find_spec(service)
    if spec is None or spec.origin is None:
        raise SystemExit(f"package {service!r} is not installed")
    migrations = Path(spec.origin).parent / "migrations"
    script = ScriptDirectory.from_config(alembic_config(migrations, "sqlite://"))
    return set(script.get_heads())


async def current_heads(url: str) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            heads = await conn.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_heads()
            )
    finally:
        await engine.dispose()
    return set(heads)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("service", help="inventory, leasing or notifications")
    parser.add_argument("--timeout", type=float, default=float(os.environ.get("WAIT_TIMEOUT", 600)))
    parser.add_argument("--interval", type=float, default=2.0)
    args = parser.parse_args(argv)

    variable = f"{args.service.upper()}_DATABASE_URL"
    url = os.environ.get(variable)
    if not url:
        print(f"{variable} is not set", file=sys.stderr)
        return 2
    wanted = expected_heads(args.service)
    deadline = time.monotonic() + args.timeout
    last = ""
    while True:
        try:
            found = asyncio.run(current_heads(url))
            state = f"database at {sorted(found) or 'no revision'}, want {sorted(wanted)}"
            if found == wanted:
                print(f"{args.service}: {state}", flush=True)
                return 0
        except Exception as exc:  # the database may not accept connections yet
            state = f"database not reachable ({type(exc).__name__}: {exc})"
        if state != last:
            print(f"{args.service}: waiting for migrations: {state}", flush=True)
            last = state
        if time.monotonic() >= deadline:
            print(f"{args.service}: gave up after {args.timeout:.0f}s: {state}", file=sys.stderr)
            return 1
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
