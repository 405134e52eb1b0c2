"""Matching cost per vacancy event against the number of saved searches (benchmarks row 4).

Moved here from services/notifications/bench/bench_matching.py (the notifications engineer's
measurements) and run by `python -m bench`; it still runs alone:

    uv run python -m bench.matching [--sizes 1000 10000 100000] [--scenario fixed|spread|both]

Fills a fresh SQLite database with N active subscriptions through the service's own tables
(the rows and index terms `create_subscription` writes), plus leasing's published programmes
(services/leasing/leasing/programmes.toml) and an artisan profile for every subscriber, so the
eligibility pre-filter runs as in production. Then it times `alerts.match_vacancy` — index
query, criteria check with explanation, eligibility — on random vacancies, one at a time. The
baseline is a full scan: every active subscription read and checked in Python.

Scenarios: `fixed` files 50 matching searches under the vacancy's arrondissement and the other
N-50 elsewhere, so the work a vacancy must do is the same at every N and any growth is the
matcher's own (this is the row the target applies to); `spread` draws every search from one
distribution, so about 4.5% of all searches match each vacancy and any matcher's output grows
with N.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
import tomllib
import uuid
import warnings
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select

from bench import say
from fabkit.db import make_engine, make_session_factory
from notifications import repository
from notifications.cli import migrate
from notifications.domain import (
    Criteria,
    SubscriptionStatus,
    UnitFacts,
    explain_match,
    feature_mask,
    index_terms,
)
from notifications.models import Artisan, Programme, Subscription, SubscriptionTerm
from notifications.schemas import CriteriaIn
from notifications.service import alerts
from notifications.settings import NotificationsSettings

ROOT = Path(__file__).resolve().parents[1]
PROGRAMMES = ROOT / "services/leasing/leasing/programmes.toml"

KINDS = ["hotel_industriel", "hotel_activites", "cite_artisanale", "ateliers_de_paris", "pepiniere"]
TRADES = [
    "woodwork", "ceramics", "textile", "leather", "metalwork", "glass", "jewellery",
    "printing", "bookbinding", "upholstery", "lutherie", "food",
]  # fmt: skip
FEATURES = ["goods_lift", "loading_dock", "extraction", "step_free_access"]
LEGAL_FORMS = ["scop", "sarl", "sas", "micro_entreprise", "association", "ei"]


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


def programme_rows() -> list[dict[str, Any]]:
    """Leasing's catalogue as notifications' read model holds it after the published events."""
    catalogue = tomllib.loads(PROGRAMMES.read_text(encoding="utf-8"))
    now = datetime.now(UTC)
    rows = []
    for p in catalogue["programmes"]:
        rules = p.get("rules", {})
        rows.append(
            {
                "programme_id": p["id"],
                "name": p["name"],
                "site_kinds": list(p["site_kinds"]),
                "rules": {
                    "max_business_age_years": rules.get("max_business_age_years"),
                    "allowed_legal_forms": rules.get("allowed_legal_forms"),
                    "requires_trade_match": rules.get("requires_trade_match", False),
                    "rent_cap_eur_m2_year": rules.get("rent_cap_eur_m2_year"),
                },
                "catalogue_version": 1,
                "retired": False,
                "updated_at": now,
            }
        )
    return rows


async def fill(sessions: Any, n: int, rng: random.Random, scenario: str) -> None:
    async with sessions() as session, session.begin():
        await session.execute(delete(SubscriptionTerm))
        await session.execute(delete(Subscription))
        await session.execute(delete(Artisan))
        await session.execute(delete(Programme))
        await session.execute(insert(Programme), programme_rows())
    now = datetime.now(UTC)
    artisans = max(n // 3, 1)
    today = date.today()
    for start in range(0, artisans, 5000):
        rows = [
            {
                "artisan_id": f"art-{i}",
                "display_name": f"Artisan {i}",
                "trades": rng.sample(TRADES, rng.randint(1, 3)),
                "business_created_on": today - timedelta(days=rng.randint(100, 4000)),
                "legal_form": rng.choice(LEGAL_FORMS),
                "labels": [],
                "contact_email": f"art-{i}@example.org",
                "version": 1,
                "updated_at": now,
            }
            for i in range(start + 1, min(start + 5000, artisans) + 1)
        ]
        async with sessions() as session, session.begin():
            await session.execute(insert(Artisan), rows)
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
                    "artisan_id": f"art-{rng.randint(1, artisans)}",
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
                for d, v in index_terms(Criteria.from_stored(subs[-1]["criteria"]))
            ]
        async with sessions() as session, session.begin():
            await session.execute(insert(Subscription), subs)
            await session.execute(insert(SubscriptionTerm), terms)


async def full_scan(session: Any, unit: UnitFacts) -> int:
    rows = (await session.execute(select(Subscription))).scalars().all()
    return sum(1 for s in rows if explain_match(Criteria.from_stored(s.criteria), unit) is not None)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


async def measure(
    database_url: str,
    sizes: list[int],
    vacancies: int,
    scenario: str,
    scans: int = 3,
) -> list[dict[str, Any]]:
    settings = NotificationsSettings(environment="test", database_url=database_url)
    await asyncio.to_thread(migrate, settings)
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    rng = random.Random(42)
    results = []
    try:
        for n in sizes:
            filled = time.perf_counter()
            await fill(sessions, n, rng, scenario)
            filled = time.perf_counter() - filled
            units = [random_unit(rng) for _ in range(vacancies)]
            if scenario == "fixed":
                units = [replace(u, arrondissement=NEEDLE_ARRONDISSEMENT) for u in units]
            indexed, alerted, candidates = [], [], []
            async with sessions() as session:
                for unit in units[:3]:  # warm-up: statement caches, SQLite page cache
                    await alerts.match_vacancy(session, unit, date.today())
                for unit in units:
                    started = time.perf_counter()
                    found = await alerts.match_vacancy(session, unit, date.today())
                    indexed.append(time.perf_counter() - started)
                    alerted.append(len(found))
                for unit in units[:20]:
                    rows = await repository.candidate_subscriptions(session, unit)
                    candidates.append(len(rows))
                scan_times = []
                for unit in units[:scans]:
                    started = time.perf_counter()
                    await full_scan(session, unit)
                    scan_times.append(time.perf_counter() - started)
            results.append(
                {
                    "n": n,
                    "scenario": scenario,
                    "vacancies": len(units),
                    "median_ms": statistics.median(indexed) * 1000,
                    "p95_ms": _pct(indexed, 0.95) * 1000,
                    "candidates": statistics.mean(candidates),
                    "alerted": statistics.mean(alerted),
                    "scan_ms": statistics.median(scan_times) * 1000 if scan_times else None,
                    "fill_s": filled,
                }
            )
            say(
                f"matching {scenario} n={n}: {results[-1]['median_ms']:.2f} ms median "
                f"(scan {results[-1]['scan_ms'] or 0:.0f} ms)"
            )
    finally:
        await engine.dispose()
    return results


async def run(
    work: Path, sizes: list[int], vacancies: int = 200, spread_max: int = 10_000
) -> dict[str, Any]:
    """Both scenarios: `fixed` for the target (200 vacancies, full-scan baseline at each size),
    `spread` for the cost per matched search (20 vacancies, sizes up to `spread_max`: at
    100,000 each vacancy matches ~4,500 searches and costs about a second, which the full run's
    time budget does not afford; `python -m bench.matching --scenario spread` measures it)."""
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    fixed = await measure(
        f"sqlite+aiosqlite:///{work}/matching-fixed.db", sizes, vacancies, "fixed"
    )
    spread = await measure(
        f"sqlite+aiosqlite:///{work}/matching-spread.db",
        [n for n in sizes if n <= spread_max] or sizes[:1],
        max(20, vacancies // 10),
        "spread",
        scans=0,
    )
    return {"fixed": fixed, "spread": spread}


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| subscriptions | median ms | p95 ms | candidates | alerted | full scan ms | ratio |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        scan = r["scan_ms"]
        scan_text = f"{scan:,.0f}" if scan else "—"
        ratio = f"{r['median_ms'] / scan:.4f}" if scan else "—"
        lines.append(
            f"| {r['n']:,} | {r['median_ms']:.2f} | {r['p95_ms']:.2f} | {r['candidates']:.1f} "
            f"| {r['alerted']:.1f} | {scan_text} | {ratio} |"
        )
    return "\n".join(lines)


def main() -> None:
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    parser = argparse.ArgumentParser(prog="python -m bench.matching", description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--vacancies", type=int, default=200)
    parser.add_argument("--scenario", choices=["fixed", "spread", "both"], default="both")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fabrique-matching-") as tmp:
        if args.scenario == "both":
            out = asyncio.run(run(Path(tmp), args.sizes, args.vacancies))
        else:
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
            rows = asyncio.run(measure(url, args.sizes, args.vacancies, args.scenario))
            out = {args.scenario: rows}
    for scenario, rows in out.items():
        print(f"\n{scenario}\n{table(rows)}")


if __name__ == "__main__":
    main()
