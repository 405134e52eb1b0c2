"""Matching cost against the number of saved searches: the inverted index vs a full scan.

    uv run python services/notifications/bench/bench_matching.py [--sizes 1000 10000 100000]

Fills a fresh SQLite database (or --database-url) with N random active subscriptions, then
times `service.match_vacancy` on random vacancies. The full scan (every active subscription
read and checked in Python) is the baseline the index avoids. Prints a Markdown table.

Scenarios: `spread` (default) draws every search from one distribution, so the matches of a
vacancy grow with N (about 4.5% of the searches) and so does any matcher's output; `fixed`
files 50 matching searches under the vacancy's arrondissement and the other N-50 elsewhere,
which shows the cost following the postings a vacancy reads rather than N.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
import uuid
import warnings
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select

from fabkit.db import make_engine, make_session_factory
from notifications import service
from notifications.cli import migrate
from notifications.domain import (
    SubscriptionStatus,
    UnitFacts,
    explain_match,
    feature_mask,
    index_terms,
)
from notifications.models import Subscription, SubscriptionTerm
from notifications.schemas import CriteriaIn
from notifications.settings import NotificationsSettings

KINDS = ["hotel_industriel", "hotel_activites", "cite_artisanale", "ateliers_de_paris", "pepiniere"]
TRADES = [
    "woodwork", "ceramics", "textile", "leather", "metalwork", "glass", "jewellery",
    "printing", "bookbinding", "upholstery", "lutherie", "food",
]  # fmt: skip
FEATURES = ["goods_lift", "loading_dock", "extraction", "step_free_access"]


def random_criteria(rng: random.Random) -> CriteriaIn:
    """Artisans mostly name a few arrondissements and their own trades."""
    return CriteriaIn(
        arrondissements=rng.sample(range(1, 21), rng.randint(1, 4)) if rng.random() < 0.8 else [],
        site_kinds=rng.sample(KINDS, rng.randint(1, 2)) if rng.random() < 0.4 else [],
        trades=rng.sample(TRADES, rng.randint(1, 2)) if rng.random() < 0.85 else [],
        min_surface_m2=rng.choice([None, 20, 50, 100]),
        max_surface_m2=rng.choice([None, None, 300, 1000]),
        max_rent_eur_m2_year=rng.choice([None, 100, 150, 200]),
        features=rng.sample(FEATURES, rng.choice([0, 0, 0, 1])),
    )


def random_unit(rng: random.Random) -> UnitFacts:
    return UnitFacts(
        unit_id=str(uuid.uuid4()),
        arrondissement=rng.randint(1, 20),
        site_kind=rng.choice(KINDS),
        surface_m2=rng.choice([30, 80, 120, 200, 500]),
        rent_eur_m2_year=rng.choice([60, 100, 150, 250]),
        allowed_trades=tuple(rng.sample(TRADES, rng.randint(1, 4))),
        features=frozenset(rng.sample(FEATURES, rng.randint(0, 4))),
    )


NEEDLES = 50
NEEDLE_ARRONDISSEMENT = 13


def fixed_criteria(rng: random.Random, needle: bool) -> CriteriaIn:
    if needle:
        return CriteriaIn(arrondissements=[NEEDLE_ARRONDISSEMENT])
    others = [a for a in range(1, 21) if a != NEEDLE_ARRONDISSEMENT]
    return CriteriaIn(
        arrondissements=rng.sample(others, rng.randint(1, 4)),
        trades=rng.sample(TRADES, rng.randint(1, 2)),
    )


async def fill(sessions: Any, n: int, rng: random.Random, scenario: str) -> None:
    async with sessions() as session, session.begin():
        await session.execute(delete(SubscriptionTerm))
        await session.execute(delete(Subscription))
    now = datetime.now(UTC)
    for start in range(0, n, 5000):
        subs, terms = [], []
        for i in range(start, min(start + 5000, n)):
            criteria = (
                random_criteria(rng) if scenario == "spread" else fixed_criteria(rng, i < NEEDLES)
            )
            sub_id = str(uuid.uuid4())
            subs.append(
                {
                    "id": sub_id,
                    "artisan_id": f"art-{rng.randint(1, max(n // 3, 1))}",
                    "name": "bench",
                    "status": SubscriptionStatus.ACTIVE.value,
                    "frequency": "instant",
                    "criteria": criteria.model_dump(mode="json"),
                    "min_surface_m2": criteria.min_surface_m2,
                    "max_surface_m2": criteria.max_surface_m2,
                    "max_rent_eur_m2_year": criteria.max_rent_eur_m2_year,
                    "feature_mask": feature_mask(f.value for f in criteria.features),
                    "feed_enabled": True,
                    "webhook_enabled": False,
                    "email_enabled": False,
                    "version": 1,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            terms += [
                {"dim": d, "value": v, "subscription_id": sub_id}
                for d, v in index_terms(service.criteria_of(subs[-1]["criteria"]))
            ]
        async with sessions() as session, session.begin():
            await session.execute(insert(Subscription), subs)
            await session.execute(insert(SubscriptionTerm), terms)


async def full_scan(session: Any, unit: UnitFacts) -> int:
    rows = (await session.execute(select(Subscription))).scalars().all()
    return sum(1 for s in rows if explain_match(service.criteria_of(s.criteria), unit) is not None)


async def measure(
    database_url: str, sizes: list[int], vacancies: int, scenario: str
) -> list[dict[str, Any]]:
    settings = NotificationsSettings(environment="test", database_url=database_url)
    await asyncio.to_thread(migrate, settings)
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    rng = random.Random(42)
    results = []
    try:
        for n in sizes:
            await fill(sessions, n, rng, scenario)
            units = [random_unit(rng) for _ in range(vacancies)]
            if scenario == "fixed":
                units = [replace(u, arrondissement=NEEDLE_ARRONDISSEMENT) for u in units]
            indexed, matched = [], []
            async with sessions() as session:
                await service.match_vacancy(session, units[0], date.today())  # warm-up
                for unit in units:
                    started = time.perf_counter()
                    found = await service.match_vacancy(session, unit, date.today())
                    indexed.append(time.perf_counter() - started)
                    matched.append(len(found))
                scans = []
                for unit in units[: max(3, vacancies // 20)]:
                    started = time.perf_counter()
                    await full_scan(session, unit)
                    scans.append(time.perf_counter() - started)
            indexed.sort()
            results.append(
                {
                    "n": n,
                    "median_ms": statistics.median(indexed) * 1000,
                    "p95_ms": indexed[int(len(indexed) * 0.95) - 1] * 1000,
                    "matches": statistics.mean(matched),
                    "scan_ms": statistics.median(scans) * 1000,
                }
            )
    finally:
        await engine.dispose()
    return results


def main() -> None:
    # The baseline reads rows with session.execute on purpose; sqlmodel would nag about it.
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--vacancies", type=int, default=200)
    parser.add_argument("--scenario", choices=["spread", "fixed"], default="spread")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        rows = asyncio.run(measure(url, args.sizes, args.vacancies, args.scenario))
    print("| subscriptions | index median ms | index p95 ms | matches / vacancy | full scan ms |")
    print("|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['n']:,} | {r['median_ms']:.2f} | {r['p95_ms']:.2f} | {r['matches']:.1f} "
            f"| {r['scan_ms']:.0f} |"
        )


if __name__ == "__main__":
    main()
