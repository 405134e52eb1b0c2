"""The inverted index finds exactly the subscriptions a full scan would (SQLite and
PostgreSQL), and the migration matches the models."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import date
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from pydantic import ValidationError
from sqlalchemy import select

from fabkit.auth import Principal, Role
from notifications import models
from notifications.domain import Criteria, SubscriptionStatus, UnitFacts, explain_match
from notifications.events.consumed import UnitSnapshotIn
from notifications.models import SQLModel, Subscription
from notifications.schemas import CriteriaIn, SubscriptionCreate
from notifications.service import alerts, subscriptions

from .conftest import make_settings, running

KINDS = ["hotel_industriel", "hotel_activites", "cite_artisanale", "pepiniere"]
TRADES = ["woodwork", "ceramics", "textile", "leather", "metalwork", "glass"]
FEATURES = ["goods_lift", "loading_dock", "extraction", "step_free_access"]
SITES = ["site-a", "site-b", "site-c"]


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
    if rng.random() < 0.2:
        criteria["min_ceiling_height_m"] = rng.choice([3, 4.5])
    if rng.random() < 0.2:
        criteria["min_floor_load_kg_m2"] = rng.choice([300, 800])
    if rng.random() < 0.2:
        criteria["min_power_kva"] = rng.choice([12, 60])
    if rng.random() < 0.15:
        criteria["site_ids"] = rng.sample(SITES, rng.choice([1, 2]))
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
        ceiling_height_m=rng.choice([None, 2.8, 4.0, 6.0]),
        floor_load_kg_m2=rng.choice([None, 250, 500, 1000]),
        power_kva=rng.choice([None, 9, 36, 120]),
        site_id=rng.choice(SITES),
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


# The three minimums the board filters on (ceiling height, floor load, power) -----------------

FIGURED = UnitFacts(
    "u-fig",
    11,
    "hotel_industriel",
    150,
    100,
    ceiling_height_m=4.0,
    floor_load_kg_m2=800,
    power_kva=36,
)
UNFIGURED = UnitFacts("u-none", 11, "hotel_industriel", 150, 100)
MINIMUMS = {"min_ceiling_height_m": 4.0, "min_floor_load_kg_m2": 800, "min_power_kva": 36}
ABOVE = {"min_ceiling_height_m": 4.1, "min_floor_load_kg_m2": 801, "min_power_kva": 36.5}


def test_a_unit_at_each_minimum_meets_it_and_says_why() -> None:
    for name, value in MINIMUMS.items():
        why = explain_match(Criteria.from_stored({name: value}), FIGURED)
        assert why is not None, name
        assert any("≥ your minimum" in line for line in why), why
    why = explain_match(Criteria.from_stored(MINIMUMS), FIGURED)
    assert why == [
        "4 m ceiling height ≥ your minimum 4",
        "800 kg/m² floor load ≥ your minimum 800",
        "36 kVA power ≥ your minimum 36",
    ]


def test_a_unit_below_any_minimum_does_not_match() -> None:
    for name, value in ABOVE.items():
        assert explain_match(Criteria.from_stored({name: value}), FIGURED) is None, name


def test_an_unknown_figure_meets_no_minimum() -> None:
    """As inventory's unit search: a landlord who left a figure out does not get alerts from
    searches that need it."""
    for name, value in MINIMUMS.items():
        assert explain_match(Criteria.from_stored({name: value}), UNFIGURED) is None, name
    assert explain_match(Criteria(), UNFIGURED) == ["your search accepts every vacancy"]


def test_the_vacancy_event_carries_the_figures_into_matching() -> None:
    snapshot = UnitSnapshotIn.model_validate(
        {
            "unit_id": "u1",
            "site_id": "s1",
            "surface_m2": 150,
            "rent_eur_m2_year": 100,
            "site_kind": "hotel_industriel",
            "arrondissement": 11,
            "ceiling_height_m": 4.0,
            "floor_load_kg_m2": 800,
            "power_kva": 36,
        }
    )
    facts = alerts.unit_facts(snapshot)
    assert (facts.ceiling_height_m, facts.floor_load_kg_m2, facts.power_kva) == (4.0, 800, 36)
    assert facts.site_id == "s1"
    assert explain_match(Criteria.from_stored(MINIMUMS), facts) is not None


def test_a_search_on_sites_matches_units_on_those_sites_only() -> None:
    on_a = UnitFacts("u-a", 11, "hotel_industriel", 150, 100, site_id="site-a")
    on_b = UnitFacts("u-b", 11, "hotel_industriel", 150, 100, site_id="site-b")
    criteria = Criteria.from_stored(
        CriteriaIn.model_validate({"site_ids": ["site-a"]}).model_dump(mode="json")
    )
    assert explain_match(criteria, on_a) == ["on a site you follow"]
    assert explain_match(criteria, on_b) is None
    assert explain_match(Criteria(), on_b) is not None
    for bad in (["site a"], ["x"] * 21, ["site-a", "site-a"]):
        with pytest.raises(ValidationError):
            CriteriaIn.model_validate({"site_ids": bad})


def test_the_criteria_take_the_board_bounds() -> None:
    """Every search the portal's board can run can be saved: its bounds are the board's."""
    widest = CriteriaIn.model_validate(
        {
            "min_surface_m2": 0,
            "max_surface_m2": 100_000,
            "max_rent_eur_m2_year": 100_000,
            "min_ceiling_height_m": 12,
            "min_floor_load_kg_m2": 5_000,
            "min_power_kva": 2_000,
        }
    )
    assert Criteria.from_stored(widest.model_dump(mode="json")).min_power_kva == 2_000
    for name, bad in (
        ("max_surface_m2", 100_001),
        ("max_rent_eur_m2_year", -1),
        ("min_ceiling_height_m", 1.9),
        ("min_ceiling_height_m", 12.5),
        ("min_floor_load_kg_m2", 149),
        ("min_floor_load_kg_m2", 5_001),
        ("min_power_kva", -0.5),
        ("min_power_kva", 2_001),
        ("min_power_kva", float("nan")),
    ):
        with pytest.raises(ValidationError):
            CriteriaIn.model_validate({name: bad})
