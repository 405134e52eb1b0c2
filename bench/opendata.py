"""Inventory's open-data regeneration at city scale: how long one run takes, how long its one
write transaction holds the database, and how big the files are.

    uv run python -m bench.opendata [--units 20000] [--database postgresql+asyncpg://…]

Fills a fresh migrated inventory database (SQLite by default) with N/10 sites (a point each),
N units (a third available, trades on each), 5 ledger entries per unit (a registration, then
gains and losses with reasons) and N/20 compensations named by losses, then times
`regenerate`: the reads and the building of the six files, and the transaction that replaces the
stored files (timed from the engine's BEGIN to its COMMIT), and the longest the event loop
went unanswered meanwhile (a 10 ms ticker), which is what a request to the same process waits.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
import uuid
import warnings
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, insert, select

from fabkit.db import make_engine, make_session_factory
from inventory.cli import migrate
from inventory.models import (
    Landlord,
    OpenDataFile,
    Site,
    SurfaceCompensation,
    SurfaceLedgerEntry,
    Unit,
)
from inventory.service.opendata import regenerate
from inventory.settings import InventorySettings

CHUNK = 5_000
TRADES = ["woodwork", "ceramics", "textile", "leather", "metalwork", "glass", "printing"]


def _rows(units: int, rng: random.Random) -> dict[type, list[dict[str, Any]]]:
    now = datetime.now(UTC)
    landlord = {
        "id": str(uuid.uuid4()),
        "name": "RIVP",
        "kind": "social_landlord",
        "created_at": now,
    }
    sites, unit_rows, ledger, compensations = [], [], [], []
    for s in range(max(1, units // 10)):
        arrondissement = s % 20 + 1
        sites.append(
            {
                "id": str(uuid.uuid4()),
                "landlord_id": landlord["id"],
                "name": f"Site {s}",
                "kind": "hotel_industriel",
                "address": f"{s} rue de l'Industrie",
                "postcode": "75116" if arrondissement == 16 else f"750{arrondissement:02d}",
                "arrondissement": arrondissement,
                "latitude": round(rng.uniform(48.82, 48.89), 6),
                "longitude": round(rng.uniform(2.26, 2.41), 6),
                "opens_for_visits": False,
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
        )
    for u in range(units):
        site = sites[u % len(sites)]
        surface = float(rng.choice([40, 120, 200, 320]))
        unit_id = str(uuid.uuid4())
        unit_rows.append(
            {
                "id": unit_id,
                "site_id": site["id"],
                "landlord_id": landlord["id"],
                "arrondissement": site["arrondissement"],
                "site_kind": site["kind"],
                "reference": f"L{u}",
                "floor": u % 6,
                "surface_m2": surface,
                "goods_lift": True,
                "loading_dock": False,
                "extraction": False,
                "step_free_access": True,
                "allowed_trades": sorted(rng.sample(TRADES, 2)),
                "use_class": "production",
                "rent_eur_m2_year": 120.0,
                "charges_eur_m2_year": 20.0,
                "status": "available" if u % 3 == 0 else "leased",
                "current_vacancy_id": str(uuid.uuid4()) if u % 3 == 0 else None,
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
        )
        after = surface
        for k in range(5):
            delta = surface if k == 0 else rng.choice([-20.0, 20.0])
            after = max(0.0, after + (delta if k else 0))
            compensation_id = None
            if delta < 0 and len(compensations) < units // 20:
                compensation_id = str(uuid.uuid4())
                compensations.append(
                    {
                        "id": compensation_id,
                        "arrondissement": site["arrondissement"],
                        "m2": 20.0,
                        "status": "planned",
                        "due_on": date.today() + timedelta(days=365),
                        "description": "Ground-floor workshops of the next lot.",
                        "created_by": "officer:bench",
                        "version": 1,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
            ledger.append(
                {
                    "unit_id": unit_id,
                    "site_id": site["id"],
                    "arrondissement": site["arrondissement"],
                    "change": "registered" if k == 0 else "surface",
                    "delta_m2": delta,
                    "production_m2_after": after,
                    "reason": None if k == 0 else "Partition moved after the survey.",
                    "actor": "landlord:bench",
                    "recorded_at": now - timedelta(days=5 - k),
                    "compensation_id": compensation_id,
                    "uncompensated": delta < 0 and compensation_id is None and k == 4,
                    "uncompensated_reason": None,
                }
            )
    return {
        Landlord: [landlord],
        Site: sites,
        SurfaceCompensation: compensations,
        Unit: unit_rows,
        SurfaceLedgerEntry: ledger,
    }


async def run(units: int, database_url: str | None) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-opendata-"))
    url = database_url or f"sqlite+aiosqlite:///{work}/inventory.db"
    await asyncio.to_thread(migrate, InventorySettings(database_url=url))
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    rows = _rows(units, random.Random(75))
    async with sessions() as session, session.begin():
        for table, values in rows.items():
            for start in range(0, len(values), CHUNK):
                await session.execute(insert(table), values[start : start + CHUNK])
    spans: list[float] = []
    began: dict[int, float] = {}

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        began[id(conn)] = time.perf_counter()

    @event.listens_for(engine.sync_engine, "commit")
    def _commit(conn: Any) -> None:
        if id(conn) in began:
            spans.append(time.perf_counter() - began.pop(id(conn)))

    stalls: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        # What a request waiting on this process's event loop would wait, at worst.
        while not done.is_set():
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            stalls.append(time.perf_counter() - before - 0.01)

    ticking = asyncio.create_task(ticker())
    start = time.perf_counter()
    await regenerate(sessions)
    elapsed = time.perf_counter() - start
    done.set()
    await ticking
    async with sessions() as session:
        files = (await session.execute(select(OpenDataFile))).scalars().all()
    await engine.dispose()
    return {
        "units": units,
        "ledger_entries": len(rows[SurfaceLedgerEntry]),
        "run_s": round(elapsed, 2),
        "write_transaction_ms": round(max(spans) * 1000, 1) if spans else None,
        "longest_loop_stall_ms": round(max(stalls) * 1000, 1) if stalls else None,
        "files": {f.name: (f.rows, len(f.content)) for f in files},
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.opendata", description=__doc__)
    parser.add_argument("--units", type=int, default=20_000)
    parser.add_argument("--database", default=None)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    result = asyncio.run(run(args.units, args.database))
    print(
        f"{result['units']:,} units, {result['ledger_entries']:,} ledger entries: "
        f"regenerate {result['run_s']} s, write transaction {result['write_transaction_ms']} ms, "
        f"longest event-loop stall {result['longest_loop_stall_ms']} ms"
    )
    for name, (count, size) in sorted(result["files"].items()):
        print(f"  {name:32} {count:>8,} rows {size / 1024:>10,.0f} KiB")


if __name__ == "__main__":
    main()
