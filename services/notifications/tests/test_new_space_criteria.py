"""Issue 18's saved-search criteria: a site's logistics, and seasonal stalls kept apart from
workshops. The rules one by one, the index against a full scan (SQLite and PostgreSQL), and a
stall's vacancy through the real broker to a real webhook receiver, SMTP server and feed."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import date
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from fabkit.auth import Principal, Role
from notifications.domain import Criteria, SubscriptionStatus, UnitFacts, explain_match
from notifications.events.consumed import UnitSnapshotIn
from notifications.models import Subscription
from notifications.schemas import CriteriaIn, SubscriptionCreate
from notifications.service import alerts, subscriptions
from notifications.webhooks import verify

from .conftest import (
    Producer,
    Receiver,
    Smtp,
    Topics,
    eventually,
    make_settings,
    running,
    text_part,
    unit_snapshot,
    vacancy,
)
from .test_alerts import broker_settings

VACANCY = "inventory.unit.vacancy_opened.v1"


def unit(**overrides: Any) -> UnitFacts:
    facts: dict[str, Any] = {
        "unit_id": "u-1",
        "arrondissement": 12,
        "site_kind": "logistique_urbaine",
        "surface_m2": 120.0,
        "rent_eur_m2_year": 100.0,
    }
    facts.update(overrides)
    return UnitFacts(**facts)


def stall(**overrides: Any) -> UnitFacts:
    return unit(
        site_kind="marche_saisonnier",
        space_kind="stall",
        period_start=date(2026, 12, 1),
        period_end=date(2026, 12, 31),
        **overrides,
    )


# (criterion, value, a unit meeting it, units missing it: one without the figure at all)
CASES: list[tuple[str, Any, dict[str, Any], list[dict[str, Any]]]] = [
    ("rail_siding", True, {"rail_siding": True}, [{"rail_siding": False}]),
    (
        "river_quay_within_m",
        500,
        {"river_quay_distance_m": 500},
        [{"river_quay_distance_m": 501}, {"river_quay_distance_m": None}],
    ),
    (
        "petite_ceinture",
        True,
        {"petite_ceinture_station": "Gare de Charonne"},
        [{"petite_ceinture_station": None}],
    ),
    (
        "min_freight_weight_t",
        19.0,
        {"freight_max_weight_t": 19.0},
        [{"freight_max_weight_t": 3.5}, {"freight_max_weight_t": None}],
    ),
    (
        "min_freight_height_m",
        4.0,
        {"freight_max_height_m": 4.2},
        [{"freight_max_height_m": 3.9}, {"freight_max_height_m": None}],
    ),
    ("cargo_bike_parking", True, {"cargo_bike_spaces": 1}, [{"cargo_bike_spaces": 0}]),
]


@pytest.mark.parametrize(("name", "value", "meets", "misses"), CASES, ids=[c[0] for c in CASES])
def test_each_logistics_criterion_matches_and_mismatches(
    name: str, value: Any, meets: dict[str, Any], misses: list[dict[str, Any]]
) -> None:
    criteria = Criteria.from_stored(CriteriaIn.model_validate({name: value}).model_dump())
    why = explain_match(criteria, unit(**meets))
    assert why is not None
    assert why != ["your search accepts every vacancy"], "the criterion should say why"
    for missing in misses:
        assert explain_match(criteria, unit(**missing)) is None, missing
    # Left out, the criterion accepts the units that miss it.
    for missing in misses:
        assert explain_match(Criteria(), unit(**missing)) is not None


def test_stalls_and_workshops_reach_the_searches_of_their_own_kind() -> None:
    workshop_search = Criteria.from_stored(CriteriaIn().model_dump())
    explicit_workshop = Criteria.from_stored(CriteriaIn(space_kind="workshop").model_dump())
    stall_search = Criteria.from_stored(
        CriteriaIn.model_validate({"space_kind": "stall"}).model_dump()
    )
    assert explain_match(workshop_search, unit()) is not None
    assert explain_match(explicit_workshop, unit()) is not None
    assert explain_match(workshop_search, stall()) is None
    assert explain_match(explicit_workshop, stall()) is None
    assert explain_match(stall_search, unit()) is None
    why = explain_match(stall_search, stall())
    assert why is not None
    assert "a stall let from 2026-12-01 to 2026-12-31" in why


def test_an_event_from_before_the_new_fields_is_a_workshop_without_logistics() -> None:
    old = UnitSnapshotIn.model_validate(unit_snapshot())
    facts = alerts.unit_facts(old)
    assert facts.space_kind == "workshop"
    assert facts.logistics == frozenset()
    new = UnitSnapshotIn.model_validate(
        unit_snapshot(
            space_kind="stall",
            period_start="2026-12-01",
            period_end="2026-12-31",
            logistics={"rail_siding": True, "cargo_bike_spaces": 4, "unknown_later": 1},
        )
    )
    facts = alerts.unit_facts(new)
    assert (facts.space_kind, facts.period_end) == ("stall", date(2026, 12, 31))
    assert facts.logistics == frozenset({"rail_siding", "cargo_bike_parking"})


def test_the_new_criteria_are_validated() -> None:
    ok = CriteriaIn.model_validate(
        {
            "site_kinds": ["fab_lab", "tiers_lieu", "logistique_urbaine", "marche_saisonnier"],
            "trades": ["delivery"],
            "space_kind": "stall",
            "river_quay_within_m": 0,
            "min_freight_weight_t": 60,
            "min_freight_height_m": 1,
        }
    )
    assert ok.space_kind == "stall"
    for bad in (
        {"space_kind": "office"},
        {"river_quay_within_m": 5001},
        {"river_quay_within_m": "500"},
        {"min_freight_weight_t": 0.1},
        {"min_freight_height_m": 7},
        {"rail_siding": "yes"},
        {"cargo_bike_parking": 1},
    ):
        with pytest.raises(ValidationError):
            CriteriaIn.model_validate(bad)


def random_criteria(rng: random.Random) -> dict[str, Any]:
    criteria: dict[str, Any] = {
        "arrondissements": rng.sample(range(10, 14), rng.choice([0, 1])),
    }
    if rng.random() < 0.4:
        criteria["space_kind"] = rng.choice(["workshop", "stall"])
    for flag in ("rail_siding", "petite_ceinture", "cargo_bike_parking"):
        if rng.random() < 0.25:
            criteria[flag] = True
    if rng.random() < 0.3:
        criteria["river_quay_within_m"] = rng.choice([100, 800])
    if rng.random() < 0.3:
        criteria["min_freight_weight_t"] = rng.choice([3.5, 19])
    if rng.random() < 0.3:
        criteria["min_freight_height_m"] = rng.choice([2.5, 4])
    return criteria


def random_unit(rng: random.Random) -> UnitFacts:
    kind = rng.choice(["workshop", "workshop", "stall"])
    return UnitFacts(
        unit_id=str(uuid.uuid4()),
        arrondissement=rng.randint(10, 13),
        site_kind="marche_saisonnier" if kind == "stall" else "logistique_urbaine",
        surface_m2=50,
        rent_eur_m2_year=100,
        space_kind=kind,
        period_start=date(2026, 12, 1) if kind == "stall" else None,
        period_end=date(2026, 12, 31) if kind == "stall" else None,
        rail_siding=rng.random() < 0.5,
        river_quay_distance_m=rng.choice([None, 50, 500, 2000]),
        petite_ceinture_station=rng.choice([None, "Gare de Charonne"]),
        freight_max_weight_t=rng.choice([None, 3.5, 12, 19, 44]),
        freight_max_height_m=rng.choice([None, 2.2, 3.5, 4.5]),
        cargo_bike_spaces=rng.choice([0, 0, 6]),
    )


async def test_the_index_finds_what_the_rules_find_on_the_new_criteria(database_url: str) -> None:
    """The SQL pre-filter (space kind, logistics mask and figures) drops nothing the rules
    accept and keeps nothing they refuse."""
    rng = random.Random(18)
    async with running(make_settings(database_url)) as svc:
        sessions = svc.app.state.runtime.sessions
        for i in range(120):
            data = SubscriptionCreate.model_validate(
                {"name": f"s{i}", "criteria": random_criteria(rng), "channels": [{"type": "feed"}]}
            )
            principal = Principal(f"art-{i % 30}", Role.ARTISAN)
            await subscriptions.create_subscription(sessions, svc.settings, principal, data)
        async with sessions() as session:
            every = (await session.execute(select(Subscription))).scalars().all()
            active = [s for s in every if s.status == SubscriptionStatus.ACTIVE.value]
            assert {s.space_kind for s in active} == {"workshop", "stall"}
            matched_stalls = total = 0
            for _ in range(80):
                facts = random_unit(rng)
                found = {
                    m.subscription.id
                    for m in await alerts.match_vacancy(session, facts, date.today())
                }
                expected = {
                    s.id
                    for s in active
                    if explain_match(Criteria.from_stored(s.criteria), facts) is not None
                }
                assert found == expected, facts
                total += len(found)
                matched_stalls += len(found) if facts.space_kind == "stall" else 0
        assert total > 50 and matched_stalls > 0, "the random data should produce matches"


LOGISTICS = {
    "rail_siding": True,
    "river_quay_distance_m": 300,
    "petite_ceinture_station": "Gare de Charonne",
    "freight_max_weight_t": 19.0,
    "freight_max_height_m": 4.0,
    "cargo_bike_spaces": 6,
}


async def test_a_stall_reaches_the_stall_search_with_its_period_and_logistics(
    database_url: str,
    kafka_broker: Any,
    topics: Topics,
    producer: Producer,
    smtp: Smtp,
    receivers: Any,
) -> None:
    receiver: Receiver = await receivers()
    settings = broker_settings(
        database_url, kafka_broker, topics, smtp_host=smtp.host, smtp_port=smtp.port
    )
    async with running(settings) as svc:
        stalls = await svc.subscribe(
            "art-s",
            name="Stand de Noël",
            criteria={"space_kind": "stall", "arrondissements": [4], "cargo_bike_parking": True},
            channels=[
                {"type": "webhook", "url": receiver.url},
                {"type": "email", "address": "art-s@artisans-paris.fr"},
                {"type": "feed"},
            ],
        )
        workshops = await svc.subscribe(
            "art-w", name="Atelier 4e", criteria={"arrondissements": [4]}
        )
        data = vacancy(
            arrondissement=4,
            postcode="75004",
            site_kind="marche_saisonnier",
            site_name="Marché de Noël de l'Hôtel de Ville",
            space_kind="stall",
            period_start="2026-12-01",
            period_end="2026-12-31",
            logistics=LOGISTICS,
        )
        # An event from before issue 18 in the same arrondissement: a workshop.
        workshop = vacancy(arrondissement=4, postcode="75004")
        await producer.send(topics.unit, VACANCY, data, data["unit"]["unit_id"])
        await producer.send(topics.unit, VACANCY, workshop, workshop["unit"]["unit_id"])

        await eventually(lambda: _ready(receiver.requests))
        await eventually(lambda: _ready(smtp.mailbox.to("art-s@artisans-paris.fr")))
        await eventually(lambda: svc.deliveries(subscription_id=workshops["id"]))
        await asyncio.sleep(0.5)  # room for a wrong delivery to show up, if there were one

        [request] = receiver.requests
        body = verify(stalls["webhook_secret"], request.headers, request.body)
        sent = body["data"]["unit"]
        assert sent["unit_id"] == data["unit"]["unit_id"]
        assert (sent["space_kind"], sent["period_start"], sent["period_end"]) == (
            "stall",
            "2026-12-01",
            "2026-12-31",
        )
        assert sent["logistics"] == LOGISTICS
        assert "a stall let from 2026-12-01 to 2026-12-31" in body["data"]["why"]["criteria"]

        [mail] = smtp.mailbox.to("art-s@artisans-paris.fr")
        assert mail["Subject"].startswith("Stand disponible : Marché de Noël")
        assert "du 2026-12-01 au 2026-12-31" in mail["Subject"]
        text = text_part(mail, "plain")
        assert "Stand saisonnier loué du 2026-12-01 au 2026-12-31" in text
        assert "6 place(s) vélo-cargo" in text and "embranchement ferré" in text

        r = await svc.client.get("/v1/feed", headers=svc.artisan("art-s"))
        assert r.status_code == 200, r.text
        [item] = r.json()["items"]
        assert item["title"].startswith("Stand disponible")
        assert item["body"]["data"]["unit"]["logistics"]["cargo_bike_spaces"] == 6

        # Each search got its own kind only.
        stall_rows = await svc.deliveries(subscription_id=stalls["id"])
        assert {d.vacancy_id for d in stall_rows} == {data["vacancy_id"]}
        workshop_rows = await svc.deliveries(subscription_id=workshops["id"])
        assert {d.vacancy_id for d in workshop_rows} == {workshop["vacancy_id"]}


async def _ready(value: Any) -> Any:
    return value
