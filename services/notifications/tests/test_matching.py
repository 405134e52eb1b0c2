"""The inverted index finds exactly the subscriptions a full scan would (SQLite and
PostgreSQL), and the migration matches the models."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import date
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

from fabkit.auth import Principal, Role
from notifications import models
from notifications.domain import Criteria, SubscriptionStatus, UnitFacts, explain_match
from notifications.models import SQLModel, Subscription
from notifications.schemas import SubscriptionCreate
from notifications.service import alerts, subscriptions

from .conftest import make_settings, running

KINDS = ["hotel_industriel", "hotel_activites", "cite_artisanale", "pepiniere"]
TRADES = ["woodwork", "ceramics", "textile", "leather", "metalwork", "glass"]
FEATURES = ["goods_lift", "loading_dock", "extraction", "step_free_access"]


def random_criteria(rng: random.Random) -> dict[str, Any]:
    criteria: dict[str, Any] = {
        "arrondissements": rng.sample(range(1, 21), rng.choice([0, 0, 1, 2, 4])),
        "site_kinds": rng.sample(KINDS, rng.choice([0, 0, 1, 2])),
        "trades": rng.sample(TRADES, rng.choice([0, 1, 2])),
        "features": rng.sample(FEATURES, rng.choice([0, 0, 0, 1, 2])),
    }
    if rng.random() < 0.5:
        criteria["min_surface_m2"] = rng.choice([20, 50, 100])
    if rng.random() < 0.3:
        criteria["max_surface_m2"] = rng.choice([150, 300, 1000])
    if rng.random() < 0.5:
        criteria["max_rent_eur_m2_year"] = rng.choice([80, 120, 200])
    return criteria


def random_unit(rng: random.Random) -> UnitFacts:
    return UnitFacts(
        unit_id=str(uuid.uuid4()),
        arrondissement=rng.randint(1, 20),
        site_kind=rng.choice(KINDS),
        surface_m2=rng.choice([30, 80, 120, 200, 500]),
        rent_eur_m2_year=rng.choice([60, 100, 150, 250]),
        allowed_trades=tuple(rng.sample(TRADES, rng.choice([0, 1, 2, 3]))),
        features=frozenset(rng.sample(FEATURES, rng.randint(0, 4))),
    )


async def test_the_index_finds_what_a_full_scan_finds(database_url: str) -> None:
    rng = random.Random(2026)
    async with running(make_settings(database_url)) as svc:
        sessions = svc.app.state.runtime.sessions
        for i in range(150):
            data = SubscriptionCreate.model_validate(
                {"name": f"s{i}", "criteria": random_criteria(rng), "channels": [{"type": "feed"}]}
            )
            principal = Principal(f"art-{i % 40}", Role.ARTISAN)
            created = await subscriptions.create_subscription(
                sessions, svc.settings, principal, data
            )
            if i % 7 == 0:
                await subscriptions.set_status(
                    sessions, principal, created.id, SubscriptionStatus.PAUSED
                )
        async with sessions() as session:
            every = (await session.execute(select(Subscription))).scalars().all()
            active = [s for s in every if s.status == SubscriptionStatus.ACTIVE.value]
            total_matches = 0
            for _ in range(80):
                unit = random_unit(rng)
                found = {
                    m.subscription.id
                    for m in await alerts.match_vacancy(session, unit, date.today())
                }
                expected = {
                    s.id
                    for s in active
                    if explain_match(Criteria.from_stored(s.criteria), unit) is not None
                }
                assert found == expected, unit
                total_matches += len(found)
        assert total_matches > 50, "the random data should produce matches"


async def test_the_migration_matches_the_models(database_url: str) -> None:
    async with running(make_settings(database_url)) as svc:
        engine = svc.app.state.runtime.engine

        # The metadata is shared by every service imported in this process: compare ours.
        ours = {getattr(models, name).__tablename__ for name in models.__all__}

        def include(obj: Any, name: str | None, type_: str, reflected: bool, other: Any) -> bool:
            table = obj if type_ == "table" else getattr(obj, "table", None)
            return table is None or table.name in ours

        def diff(connection: Any) -> list[Any]:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "include_object": include}
            )
            return compare_metadata(context, SQLModel.metadata)

        async with engine.connect() as connection:
            differences = await connection.run_sync(diff)
    assert differences == []
    await asyncio.sleep(0)
