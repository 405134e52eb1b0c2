"""The personal-data exports ("within seconds"): how long one heavy artisan's `GET /v1/me/export`
takes in leasing and in notifications, against reading one row of the same person.

    uv run python -m bench.export [--runs 20] [--database postgresql+asyncpg://…/postgres]

Each service gets a fresh migrated database (SQLite files by default; with `--database`, a
PostgreSQL server on which two databases are created). Leasing holds one artisan with 200
applications (each with its two decisions and its call's ranking row), 4 leases and 3 appeals,
among 200 other artisans with 20 applications each; notifications holds one artisan with 50
saved searches, 10,000 deliveries and 10,000 feed items, among 200 other artisans with 5
searches, 500 deliveries and 500 feed items each.

Timed, in the same run: the export use case as the API handler calls it (`privacy.export`),
the JSON encoding of its result as the endpoint does it (`JSONResponse(document)`), and the
baseline: the same person's profile row (leasing) or one of their searches (notifications)
read through the same session factory. A 10 ms ticker on the same event loop records, for each
export, how late it woke at worst: how long another request to that process would have waited
(the encoding, timed apart, is not under it). The endpoints need a Keycloak token, so they are not
called through the app. Leasing's export records itself in the audit log, so each run adds one
row to it (as a real export does).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.responses import JSONResponse
from sqlalchemy import insert, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from fabkit.auth import Principal, Role
from fabkit.db import make_engine, make_session_factory

CHUNK = 2_000
TICK = 0.010
OTHERS = 200
TARGET = str(uuid.uuid5(uuid.NAMESPACE_URL, "fabrique-bench-export-target"))


def _other(i: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"fabrique-bench-export-other-{i}"))


def _defaults(model: Any) -> dict[str, Any]:
    """The model's Python-side defaults, which a Core insert does not apply."""
    out: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        if field.default_factory is not None:
            out[name] = field.default_factory()
        elif not field.is_required():
            out[name] = field.default
    return out


async def _insert(sessions: Any, model: Any, rows: list[dict[str, Any]]) -> None:
    defaults = _defaults(model)
    rows = [{**defaults, **row} for row in rows]
    for start in range(0, len(rows), CHUNK):
        async with sessions() as session, session.begin():
            await session.execute(insert(model), rows[start : start + CHUNK])


def _breakdown(i: int) -> list[dict[str, Any]]:
    return [
        {"criterion_id": f"c{k}", "label": f"Critère {k}", "points": (i + k) % 5, "max": 5}
        for k in range(6)
    ]


# -- leasing ----------------------------------------------------------------------------------


async def _fill_leasing(sessions: Any, now: datetime) -> None:
    from leasing.models import (
        Appeal,
        Application,
        ApplicationDecision,
        ArtisanProfile,
        Call,
        CallRanking,
        Lease,
        UnitListing,
    )

    people = [TARGET] + [_other(i) for i in range(OTHERS)]
    await _insert(
        sessions,
        ArtisanProfile,
        [
            {
                "id": a,
                "display_name": f"Artisan {n}",
                "business_name": f"Atelier {n}",
                "siret": f"{10_000_000_000_000 + n}",
                "trades": ["ceramics", "woodwork"],
                "business_created_on": date(2015, 1, 1),
                "legal_form": "EI",
                "labels": ["metiers_art"],
                "contact_email": f"artisan{n}@example.org",
                "contact_email_verified": True,
                "version": 3,
                "registered_at": now - timedelta(days=2000),
                "updated_at": now - timedelta(days=10),
                "last_active_at": now - timedelta(days=1),
            }
            for n, a in enumerate(people)
        ],
    )
    vacancies = 300
    await _insert(
        sessions,
        UnitListing,
        [
            {
                "unit_id": f"unit-{v:05d}",
                "site_id": f"site-{v % 30:03d}",
                "landlord_id": f"landlord-{v % 10}",
                "landlord_name": f"Bailleur {v % 10}",
                "site_name": f"Hôtel industriel {v % 30}",
                "site_kind": "industrial_hotel",
                "address": f"{v} rue du Faubourg Saint-Antoine",
                "postcode": "75011",
                "arrondissement": 11,
                "reference": f"U-{v:05d}",
                "floor": v % 4,
                "surface_m2": 40.0 + v % 60,
                "allowed_trades": ["ceramics", "woodwork"],
                "use_class": "workshop",
                "rent_eur_m2_year": 180.0,
                "charges_eur_m2_year": 20.0,
                "status": "vacant",
                "version": 1,
                "updated_at": now,
            }
            for v in range(vacancies)
        ],
    )
    await _insert(
        sessions,
        Call,
        [
            {
                "id": f"call-{v:05d}",
                "vacancy_id": f"vac-{v:05d}",
                "unit_id": f"unit-{v:05d}",
                "landlord_id": f"landlord-{v % 10}",
                "status": "decided",
                "opens_at": now - timedelta(days=1500 - v),
                "closes_at": now - timedelta(days=1470 - v),
                "catalogue_version": 1,
                "version": 1,
                "created_at": now - timedelta(days=1500 - v),
                "updated_at": now - timedelta(days=1400 - v),
            }
            for v in range(vacancies)
        ],
    )
    apps: list[dict[str, Any]] = []
    for n, a in enumerate(people):
        for k in range(200 if a == TARGET else 20):
            v = k if a == TARGET else (n * 7 + k) % vacancies
            apps.append(
                {
                    "id": str(uuid.uuid4()),
                    "artisan_id": a,
                    "unit_id": f"unit-{v:05d}",
                    "vacancy_id": f"vac-{v:05d}",
                    "landlord_id": f"landlord-{v % 10}",
                    "programme_id": "ateliers-de-paris",
                    "project": "Atelier de céramique et de tournage, deux apprentis. " * 8,
                    "status": "rejected",
                    "score": 14 + k % 10,
                    "max_score": 30,
                    "score_breakdown": _breakdown(k),
                    "submitted_at": now - timedelta(days=1480 - v),
                    "updated_at": now - timedelta(days=1460 - v),
                    "call_id": f"call-{v:05d}",
                }
            )
    await _insert(sessions, Application, apps)
    decisions: list[dict[str, Any]] = []
    rankings: list[dict[str, Any]] = []
    rank_of: dict[str, int] = {}
    for app in apps:
        for decision, status, role, actor, reason in (
            ("submitted", "submitted", "artisan", app["artisan_id"], None),
            ("rejected", "rejected", "landlord", app["landlord_id"], "Classement du jury."),
        ):
            decisions.append(
                {
                    "application_id": app["id"],
                    "decision": decision,
                    "status_after": status,
                    "actor_role": role,
                    "actor_id": actor,
                    "reason": reason,
                    "decided_at": app["updated_at"],
                }
            )
        rank = rank_of[app["call_id"]] = rank_of.get(app["call_id"], 0) + 1
        rankings.append(
            {
                "call_id": app["call_id"],
                "application_id": app["id"],
                "rank": rank,
                "score": app["score"],
                "max_score": 30,
                "score_breakdown": app["score_breakdown"],
                "programme_id": "ateliers-de-paris",
            }
        )
    await _insert(sessions, ApplicationDecision, decisions)
    await _insert(sessions, CallRanking, rankings)
    mine = [app for app in apps if app["artisan_id"] == TARGET]
    await _insert(
        sessions,
        Lease,
        [
            {
                "id": str(uuid.uuid4()),
                "unit_id": app["unit_id"],
                "vacancy_id": app["vacancy_id"],
                "application_id": app["id"],
                "artisan_id": TARGET,
                "landlord_id": app["landlord_id"],
                "programme_id": "ateliers-de-paris",
                "status": "active" if k == 3 else "ended",
                "monthly_rent_cents": 95_000,
                "start_date": date(2021 + k, 1, 1),
                "end_date": date(2024 + k, 1, 1),
                "message": "Bienvenue dans l'atelier.",
                "offered_by": app["landlord_id"],
                "offered_at": now - timedelta(days=1200 - 300 * k),
                "offer_expires_at": now - timedelta(days=1190 - 300 * k),
                "signed_at": now - timedelta(days=1195 - 300 * k),
                "ended_on": None if k == 3 else date(2024 + k, 1, 1),
                "end_reason": None if k == 3 else "Fin du bail.",
                "updated_at": now - timedelta(days=100),
            }
            for k, app in enumerate(mine[:4])
        ],
    )
    await _insert(
        sessions,
        Appeal,
        [
            {
                "id": str(uuid.uuid4()),
                "application_id": app["id"],
                "call_id": app["call_id"],
                "artisan_id": TARGET,
                "landlord_id": app["landlord_id"],
                "status": "answered",
                "grounds": "Mon expérience n'a pas été comptée. " * 5,
                "filed_at": app["updated_at"],
                "outcome": "upheld",
                "answer": "Le classement est maintenu.",
                "answered_by": "officer-1",
                "answered_at": app["updated_at"] + timedelta(days=10),
            }
            for app in mine[10:13]
        ],
    )


async def _leasing(url: str, runs: int) -> dict[str, Any]:
    from leasing import repository
    from leasing.cli import migrate
    from leasing.service import privacy
    from leasing.settings import LeasingSettings

    await asyncio.to_thread(migrate, LeasingSettings(environment="test", database_url=url))
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    principal = Principal(TARGET, Role.ARTISAN)

    async def baseline() -> None:
        async with sessions() as session, session.begin():
            assert await repository.get_artisan(session, TARGET) is not None

    try:
        await _fill_leasing(sessions, datetime.now(UTC))
        return await _measure(
            lambda: privacy.export(sessions, principal, TARGET), baseline, runs, "profile row"
        )
    finally:
        await engine.dispose()


# -- notifications ----------------------------------------------------------------------------


def _subscriptions(owner: str, count: int, now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "id": str(uuid.uuid4()),
            "artisan_id": owner,
            "name": f"Ateliers céramique {k}",
            "status": "active",
            "frequency": "instant",
            "criteria": {"arrondissements": [11, 12, 20], "trades": ["ceramics"], "max_rent": 900},
            "webhook_url": f"https://hooks.example.org/{owner}/{k}" if k % 5 == 0 else None,
            "webhook_secret": "s3cret-value" if k % 5 == 0 else None,
            "webhook_enabled": k % 5 == 0,
            "email_address": f"{owner}@example.org",
            "email_enabled": True,
            "feed_enabled": True,
            "language": "fr",
            "version": 1,
            "created_at": now - timedelta(days=1500),
            "updated_at": now - timedelta(days=100),
        }
        for k in range(count)
    ]


def _alerts(
    owner: str, subs: list[dict[str, Any]], count: int, now: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    deliveries: list[dict[str, Any]] = []
    feed: list[dict[str, Any]] = []
    for i in range(count):
        sub = subs[i % len(subs)]
        at = now - timedelta(hours=3 * i)
        payload = {
            "type": "vacancy.opened",
            "data": {
                "subscription": {"id": sub["id"], "name": sub["name"]},
                "vacancy": {"id": f"vac-{i}", "unit": f"U-{i:05d}", "surface_m2": 42.5},
            },
        }
        delivery_id = str(uuid.uuid4())
        deliveries.append(
            {
                "id": delivery_id,
                "event_id": f"ev-{owner}-{i}",
                "recipient_key": sub["id"],
                "channel": "email",
                "kind": "vacancy_alert",
                "artisan_id": owner,
                "subscription_id": sub["id"],
                "vacancy_id": f"vac-{i}",
                "payload": payload,
                "status": "delivered",
                "digest": False,
                "attempts": 1,
                "next_attempt_at": at,
                "last_status_code": 250,
                "occurred_at": at,
                "created_at": at,
                "delivered_at": at,
            }
        )
        feed.append(
            {
                "artisan_id": owner,
                "delivery_id": delivery_id,
                "subscription_id": sub["id"],
                "kind": "vacancy_alert",
                "title": f"Nouvel atelier vacant : U-{i:05d}",
                "body": payload["data"],
                "created_at": at,
                "read_at": at + timedelta(hours=1) if i % 3 else None,
            }
        )
    return deliveries, feed


async def _fill_notifications(sessions: Any, now: datetime) -> str:
    from notifications.models import Artisan, Delivery, FeedItem, Subscription

    first = ""
    for owner, n_subs, n_alerts in [(TARGET, 50, 10_000)] + [
        (_other(i), 5, 500) for i in range(OTHERS)
    ]:
        subs = _subscriptions(owner, n_subs, now)
        deliveries, feed = _alerts(owner, subs, n_alerts, now)
        first = first or subs[0]["id"]
        await _insert(sessions, Subscription, subs)
        await _insert(sessions, Delivery, deliveries)
        await _insert(sessions, FeedItem, feed)
        await _insert(
            sessions,
            Artisan,
            [
                {
                    "artisan_id": owner,
                    "display_name": "Artisan",
                    "trades": ["ceramics"],
                    "labels": [],
                    "contact_email": f"{owner}@example.org",
                    "contact_email_verified": True,
                    "version": 1,
                    "updated_at": now,
                }
            ],
        )
    return first


async def _notifications(url: str, runs: int) -> dict[str, Any]:
    from notifications.cli import migrate
    from notifications.models import Subscription
    from notifications.service import privacy
    from notifications.settings import NotificationsSettings

    await asyncio.to_thread(migrate, NotificationsSettings(environment="test", database_url=url))
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    try:
        search_id = await _fill_notifications(sessions, datetime.now(UTC))

        async def baseline() -> None:
            async with sessions() as session:
                assert await session.get(Subscription, search_id) is not None
                session.expunge_all()  # like the export's fresh session: no identity-map hit

        return await _measure(
            lambda: privacy.export(sessions, TARGET), baseline, runs, "one search"
        )
    finally:
        await engine.dispose()


# -- timing -----------------------------------------------------------------------------------


class _Ticker:
    """A task on the same event loop waking every 10 ms: its longest lateness is how long a
    request to that process would have waited behind the export (not counting the encoding)."""

    def __init__(self) -> None:
        self.longest = 0.0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + TICK
            await asyncio.sleep(TICK)
            self.longest = max(self.longest, loop.time() - due)


async def _measure(
    export: Callable[[], Awaitable[dict[str, Any]]],
    baseline: Callable[[], Awaitable[None]],
    runs: int,
    baseline_name: str,
) -> dict[str, Any]:
    await export()  # warm-up: connections, statement caches
    await baseline()
    use_case: list[float] = []
    encode: list[float] = []
    base: list[float] = []
    size = 0
    counts: dict[str, int] = {}
    stalls: list[float] = []
    for _ in range(runs):
        ticker = _Ticker()
        ticking = asyncio.create_task(ticker.run())
        await asyncio.sleep(0)
        started = time.perf_counter()
        document = await export()
        use_case.append(time.perf_counter() - started)
        ticking.cancel()
        stalls.append(ticker.longest)
        started = time.perf_counter()
        size = len(JSONResponse(document).body)
        encode.append(time.perf_counter() - started)
        started = time.perf_counter()
        await baseline()
        base.append(time.perf_counter() - started)
        counts = {k: len(v) for k, v in document["records"].items()}
    total = [u + e for u, e in zip(use_case, encode, strict=True)]
    return {
        "use_case_p50_ms": statistics.median(use_case) * 1000,
        "use_case_max_ms": max(use_case) * 1000,
        "encode_p50_ms": statistics.median(encode) * 1000,
        "export_p50_ms": statistics.median(total) * 1000,
        "export_max_ms": max(total) * 1000,
        "stall_p50_ms": statistics.median(stalls) * 1000,
        "stall_max_ms": max(stalls) * 1000,
        "baseline": baseline_name,
        "baseline_p50_ms": statistics.median(base) * 1000,
        "baseline_max_ms": max(base) * 1000,
        "ratio": statistics.median(total) / statistics.median(base),
        "size_bytes": size,
        "records": counts,
    }


async def _postgres_databases(server_url: str) -> tuple[str, str]:
    """Two fresh databases on the server of `server_url`."""
    url = make_url(server_url)
    suffix = uuid.uuid4().hex[:8]
    names = (f"bench_export_leasing_{suffix}", f"bench_export_notifications_{suffix}")
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            for name in names:
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await admin.dispose()
    return tuple(url.set(database=name).render_as_string(hide_password=False) for name in names)  # type: ignore[return-value]


async def run(runs: int, database: str | None, tmp: Path) -> dict[str, dict[str, Any]]:
    if database:
        leasing_url, notifications_url = await _postgres_databases(database)
    else:
        leasing_url = f"sqlite+aiosqlite:///{tmp / 'leasing.db'}"
        notifications_url = f"sqlite+aiosqlite:///{tmp / 'notifications.db'}"
    return {
        "leasing": await _leasing(leasing_url, runs),
        "notifications": await _notifications(notifications_url, runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument(
        "--database",
        default=None,
        help="a PostgreSQL server URL (postgresql+asyncpg://…/postgres); default: SQLite files",
    )
    args = parser.parse_args()
    # sqlmodel's advice to prefer `exec()` for ORM selects; the fill uses Core statements.
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    with tempfile.TemporaryDirectory() as tmp:
        figures = asyncio.run(run(args.runs, args.database, Path(tmp)))
    print(f"{'SQLite' if args.database is None else 'PostgreSQL'}, {args.runs} runs each")
    print(
        f"{'service':<14}{'export p50':>11}{'max':>9}{'(encode)':>10}{'size':>10}"
        f"  baseline{'p50':>9}{'max':>8}{'ratio':>8}{'stall p50':>11}{'max':>8}"
    )
    for service, f in figures.items():
        print(
            f"{service:<14}{f['export_p50_ms']:>9.1f}ms{f['export_max_ms']:>7.1f}ms"
            f"{f['encode_p50_ms']:>8.1f}ms{f['size_bytes'] / 1e6:>8.2f}MB"
            f"  {f['baseline']:<12}{f['baseline_p50_ms']:>5.2f}ms{f['baseline_max_ms']:>6.2f}ms"
            f"{f['ratio']:>8.0f}{f['stall_p50_ms']:>9.0f}ms{f['stall_max_ms']:>6.0f}ms"
        )
    for service, f in figures.items():
        print(f"{service} records: {f['records']}")


if __name__ == "__main__":
    main()
