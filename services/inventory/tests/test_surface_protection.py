"""No net loss of production surface, through the API on a real database (SQLite and
PostgreSQL) with the real broker: a loss names its compensation or an officer records it as
uncompensated; late compensations are flagged until delivered; development projects show kept
against committed m²; the balance per arrondissement and month by month."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from fabkit.auth import Role
from fabkit.db import make_engine, make_session_factory
from fabkit.migrations import upgrade
from fabkit.testing import assert_problem
from inventory.cli import MIGRATIONS
from inventory.metrics import refresh_business_gauges

from .conftest import Api, headers_of, read_events

TODAY = datetime.now(UTC).date()
SOON = (TODAY + timedelta(days=400)).isoformat()
YESTERDAY = (TODAY - timedelta(days=1)).isoformat()
UNCOMPENSATED_METRIC = "inventory_uncompensated_production_surface_square_meters_total"


def compensation(**fields: Any) -> dict[str, Any]:
    return {
        "m2": 80,
        "arrondissement": 13,
        "status": "planned",
        "due_on": SOON,
        "description": "Ground-floor workshops of the new Bruneseau building.",
        **fields,
    }


@pytest.fixture
async def engine(api: Api) -> AsyncIterator[AsyncEngine]:
    """The test's own database, read directly to prove what was (not) written."""
    engine = make_engine(api.settings.database_url)
    yield engine
    await engine.dispose()


async def compensations_stored(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        found = await conn.execute(text("SELECT count(*) FROM surface_compensations"))
        return int(found.scalar_one())


async def metric(api: Api, name: str, arrondissement: int) -> float:
    body = (await api.client.get("/metrics")).text
    found = re.search(rf'^{name}{{arrondissement="{arrondissement}"}} (\S+)$', body, re.M)
    return float(found.group(1)) if found else 0.0


async def ledger(api: Api, unit_id: str) -> list[dict[str, Any]]:
    r = await api.client.get(f"/v1/units/{unit_id}/surface-ledger")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def balance(api: Api, **params: Any) -> dict[int, dict[str, Any]]:
    r = await api.client.get("/v1/surface/balance", params=params)
    assert r.status_code == 200, r.text
    return {row["arrondissement"]: row for row in r.json()["rows"]}


async def flags(api: Api) -> list[dict[str, Any]]:
    r = await api.client.get("/v1/surface/flags", headers=api.identities.headers(Role.OFFICER))
    assert r.status_code == 200, r.text
    return r.json()["flags"]  # type: ignore[no-any-return]


async def new_project(api: Api, **fields: Any) -> dict[str, Any]:
    body = {
        "name": f"Projet {uuid.uuid4().hex[:8]}",
        "arrondissement": 13,
        "committed_m2": 500,
        "delivery_on": SOON,
        **fields,
    }
    r = await api.client.post("/v1/projects", json=body, headers=api.admin)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


# The rule ----------------------------------------------------------------------------------


async def test_a_loss_without_compensation_is_refused_and_nothing_is_written(
    api: Api, engine: AsyncEngine
) -> None:
    _, owner = await api.new_landlord()
    site = await api.new_site(owner)
    unit = await api.new_unit(site["id"], owner, surface_m2=200)
    other = await api.new_unit(site["id"], owner, surface_m2=60)
    path = f"/v1/units/{unit['id']}"
    cases = [
        ({"surface_m2": 150}, "shrinking a production unit removes 50 m²"),
        ({"use_class": "other"}, "turning a production unit into another use removes 200 m²"),
        ({"status": "withdrawn"}, "withdrawing a production unit removes 200 m²"),
    ]
    for change, why in cases:
        for headers in (owner, api.admin):
            r = await api.client.patch(path, json={**change, "reason": "works"}, headers=headers)
            assert_problem(r, 422, why, "'compensation'", "'uncompensated'", "13th")
    refusals = [
        # refused by the compensation's own checks
        ({"surface_m2": 150, "compensation": compensation(arrondissement=12)}, 422, "12th"),
        ({"surface_m2": 150, "compensation": compensation(m2=20)}, 422, "at least 50"),
        ({"surface_m2": 150, "compensation": compensation(project_id="nope")}, 422, "project"),
        (
            {"surface_m2": 150, "compensation": compensation(status="delivered", due_on=SOON)},
            422,
            "future",
        ),
        # refused after the compensation was staged: the transaction takes it back
        (
            {"surface_m2": 150, "reference": other["reference"], "compensation": compensation()},
            409,
            "already has a unit with reference",
        ),
        # what only a loss needs, on a change that removes nothing
        ({"surface_m2": 250, "compensation": compensation()}, 422, "removes no production m²"),
        (
            {"surface_m2": 150, "compensation": compensation(), "uncompensated": {"reason": "x"}},
            422,
            "not both",
        ),
    ]
    for body, status, fragment in refusals:
        r = await api.client.patch(path, json=body, headers=owner)
        assert_problem(r, status, fragment)
    now = (await api.client.get(path)).json()
    assert (now["surface_m2"], now["version"], now["use_class"]) == (200, 1, "production")
    assert [e["change"] for e in await ledger(api, unit["id"])] == ["registered"]
    assert await compensations_stored(engine) == 0
    async with engine.connect() as conn:
        updates = await conn.execute(
            text("SELECT count(*) FROM outbox_messages WHERE key = :k AND event_type = :t"),
            {"k": unit["id"], "t": "inventory.unit.updated.v1"},
        )
        assert updates.scalar_one() == 0


async def test_only_an_officer_or_an_admin_records_an_uncompensated_loss(api: Api) -> None:
    _, owner = await api.new_landlord()
    site = await api.new_site(owner)
    unit = await api.new_unit(site["id"], owner, surface_m2=200)
    path = f"/v1/units/{unit['id']}"
    officer = api.identities.headers(Role.OFFICER)
    reason = {"reason": "Building condemned after the structural survey."}

    r = await api.client.patch(
        path, json={"surface_m2": 150, "uncompensated": reason}, headers=owner
    )
    assert_problem(r, 403, "city officer", "'compensation'")
    r = await api.client.patch(
        path, json={"surface_m2": 150, "uncompensated": {"reason": "short"}}, headers=officer
    )
    assert_problem(r, 422, "uncompensated.reason", "10 characters")
    # an officer changes a unit only to record a loss
    for body in ({"rent_eur_m2_year": 10}, {"surface_m2": 150, "rent_eur_m2_year": 10}):
        r = await api.client.patch(path, json={**body, "uncompensated": reason}, headers=officer)
        assert_problem(r, 403, "city officer may change a unit only")
    r = await api.client.patch(path, json={"floor": 3}, headers=officer)
    assert_problem(r, 403, "city officer may change a unit only")

    before = await metric(api, UNCOMPENSATED_METRIC, 13)
    r = await api.client.patch(
        path, json={"surface_m2": 150, "uncompensated": reason}, headers=officer
    )
    assert r.status_code == 200, r.text
    assert await metric(api, UNCOMPENSATED_METRIC, 13) == before + 50
    entry = (await ledger(api, unit["id"]))[-1]
    assert (entry["delta_m2"], entry["uncompensated"], entry["compensation_id"]) == (
        -50.0,
        True,
        None,
    )
    assert entry["uncompensated_reason"] == reason["reason"]
    assert entry["actor"].startswith("officer:")
    # an admin may too
    r = await api.client.patch(
        path, json={"status": "withdrawn", "uncompensated": reason}, headers=api.admin
    )
    assert r.status_code == 200, r.text
    assert await metric(api, UNCOMPENSATED_METRIC, 13) == before + 200

    found = [f for f in await flags(api) if f["kind"] == "uncompensated_loss"]
    assert [(f["unit_id"], f["m2"], f["arrondissement"]) for f in found] == [
        (unit["id"], 50.0, 13),
        (unit["id"], 150.0, 13),
    ]
    assert all("production m²" in f["what_to_do"] for f in found)
    r = await api.client.get("/v1/surface/flags", headers=owner)
    assert_problem(r, 403, "roles")
    row = (await balance(api))[13]
    assert (row["losses_m2"], row["uncompensated_m2"], row["uncompensated_losses"]) == (
        200.0,
        200.0,
        2,
    )
    assert (row["gains_m2"], row["net_m2"], row["compensated_m2"]) == (200.0, 0.0, 0.0)

    records = await read_events(
        api.settings.kafka_bootstrap, "inventory.surface.events", unit["id"], expect=3
    )
    published = [json.loads(r.value) for r in records]
    assert [(p["delta_m2"], p["uncompensated"]) for p in published] == [
        (200.0, False),
        (-50.0, True),
        (-150.0, True),
    ]
    assert published[1]["uncompensated_reason"] == reason["reason"]
    assert published[1]["compensation_id"] is None


async def test_a_compensated_loss_is_balanced_and_published_with_its_compensation(
    api: Api,
) -> None:
    _, owner = await api.new_landlord()
    site = await api.new_site(owner)
    unit = await api.new_unit(site["id"], owner, surface_m2=200)
    project = await new_project(api)
    r = await api.client.patch(
        f"/v1/units/{unit['id']}",
        json={
            "surface_m2": 120,
            "reason": "Storage carved out of the workshop",
            "compensation": compensation(m2=80, project_id=project["id"]),
        },
        headers=owner,
    )
    assert r.status_code == 200, r.text
    entry = (await ledger(api, unit["id"]))[-1]
    assert (entry["delta_m2"], entry["uncompensated"]) == (-80.0, False)
    assert entry["reason"] == "Storage carved out of the workshop"
    r = await api.client.get(f"/v1/surface/compensations/{entry['compensation_id']}")
    assert r.status_code == 200, r.text
    made_good = r.json()
    assert (made_good["m2"], made_good["status"], made_good["late"]) == (80.0, "planned", False)
    assert made_good["project_id"] == project["id"]
    # a compensation carried by the project keeps it in its arrondissement
    r = await api.client.patch(
        f"/v1/projects/{project['id']}", json={"arrondissement": 12}, headers=api.admin
    )
    assert_problem(r, 409, "compensations")

    row = (await balance(api))[13]
    assert (row["losses_m2"], row["compensated_m2"], row["uncompensated_m2"]) == (80.0, 80.0, 0)
    assert (row["compensations_planned_m2"], row["late_m2"]) == (80.0, 0.0)
    assert row["net_m2"] == 120.0  # 200 registered, 80 removed
    assert [f for f in await flags(api) if f["unit_id"] == unit["id"]] == []

    records = await read_events(
        api.settings.kafka_bootstrap, "inventory.surface.events", unit["id"], expect=2
    )
    changed = json.loads(records[-1].value)
    assert headers_of(records[-1])["ce_type"] == "inventory.production_surface.changed.v1"
    assert changed["compensation_id"] == made_good["id"]
    assert (changed["compensation_m2"], changed["compensation_status"]) == (80.0, "planned")
    assert changed["compensation_due_on"] == SOON
    assert changed["compensation_project_id"] == project["id"]
    assert changed["uncompensated"] is False


def gauge(name: str, arrondissement: int) -> float | None:
    return REGISTRY.get_sample_value(name, {"arrondissement": str(arrondissement)})


async def test_a_late_compensation_is_flagged_until_a_unit_delivers_it(
    api: Api, engine: AsyncEngine
) -> None:
    _, owner = await api.new_landlord()
    site = await api.new_site(owner)
    unit = await api.new_unit(site["id"], owner, surface_m2=90)
    r = await api.client.patch(
        f"/v1/units/{unit['id']}",
        json={"status": "withdrawn", "compensation": compensation(m2=90, due_on=YESTERDAY)},
        headers=owner,
    )
    assert r.status_code == 200, r.text
    compensation_id = (await ledger(api, unit["id"]))[-1]["compensation_id"]

    late = [f for f in await flags(api) if f["kind"] == "late_compensation"]
    assert [(f["compensation_id"], f["unit_id"], f["m2"]) for f in late] == [
        (compensation_id, unit["id"], 90.0)
    ]
    assert f"/v1/surface/compensations/{compensation_id}/delivery" in late[0]["what_to_do"]
    row = (await balance(api))[13]
    assert (row["late_m2"], row["late_compensations"]) == (90.0, 1)
    sessions = make_session_factory(engine)
    await refresh_business_gauges(sessions)
    assert gauge("inventory_surface_compensations_late", 13) == 1
    assert gauge("inventory_production_surface_net_square_meters", 13) == 0

    delivery = f"/v1/surface/compensations/{compensation_id}/delivery"
    newcomer = await api.new_unit(site["id"], owner, surface_m2=95)
    r = await api.client.post(delivery, json={"unit_id": newcomer["id"]}, headers=owner)
    assert_problem(r, 403, "roles")
    _, far_owner = await api.new_landlord()
    far_site = await api.new_site(far_owner, postcode="75011", arrondissement=11)
    far = await api.new_unit(far_site["id"], far_owner)
    officer = api.identities.headers(Role.OFFICER)
    r = await api.client.post(delivery, json={"unit_id": far["id"]}, headers=officer)
    assert_problem(r, 422, "11th", "13th")
    r = await api.client.post(delivery, json={"unit_id": "nope"}, headers=officer)
    assert_problem(r, 422, "No unit with id nope")
    r = await api.client.post(
        delivery, json={"unit_id": newcomer["id"], "delivered_on": SOON}, headers=officer
    )
    assert_problem(r, 422, "future")
    r = await api.client.post(delivery, json={"unit_id": newcomer["id"]}, headers=officer)
    assert r.status_code == 200, r.text
    done = r.json()
    assert (done["status"], done["late"], done["unit_id"]) == ("delivered", False, newcomer["id"])
    assert done["delivered_on"] == TODAY.isoformat()
    r = await api.client.post(delivery, json={"unit_id": newcomer["id"]}, headers=officer)
    assert_problem(r, 409, "already delivered")

    assert [f for f in await flags(api) if f["kind"] == "late_compensation"] == []
    row = (await balance(api))[13]
    assert (row["late_m2"], row["compensations_delivered_m2"], row["net_m2"]) == (0, 90.0, 95.0)
    await refresh_business_gauges(sessions)
    assert gauge("inventory_surface_compensations_late", 13) == 0
    assert gauge("inventory_production_surface_net_square_meters", 13) == 95


# Development projects ----------------------------------------------------------------------


async def test_a_project_shows_what_its_units_keep_against_its_commitment(api: Api) -> None:
    _, owner = await api.new_landlord()
    site = await api.new_site(owner)
    officer = api.identities.headers(Role.OFFICER)
    body = {"name": "ZAC Bruneseau", "arrondissement": 13, "committed_m2": 500}
    r = await api.client.post(
        "/v1/projects", json={**body, "delivery_on": YESTERDAY}, headers=owner
    )
    assert_problem(r, 403, "roles")
    r = await api.client.post(
        "/v1/projects", json={**body, "delivery_on": YESTERDAY}, headers=officer
    )
    assert r.status_code == 201, r.text
    project = r.json()
    assert r.headers["location"] == f"/v1/projects/{project['id']}"
    assert (project["kept_m2"], project["shortfall_m2"], project["behind"]) == (0, 500, True)
    r = await api.client.post(
        "/v1/projects", json={**body, "delivery_on": YESTERDAY}, headers=officer
    )
    assert_problem(r, 409, "ZAC Bruneseau")
    elsewhere = await new_project(api, arrondissement=12)

    kept = await api.new_unit(site["id"], owner, surface_m2=300, project_id=project["id"])
    assert kept["project_id"] == project["id"]
    r = await api.client.post(
        f"/v1/sites/{site['id']}/units",
        json={"reference": "X1", "surface_m2": 50, "rent_eur_m2_year": 90,
              "project_id": elsewhere["id"]},
        headers=owner,
    )  # fmt: skip
    assert_problem(r, 422, "12th arrondissement, not the 13th")
    r = await api.client.get(f"/v1/projects/{project['id']}")
    assert (r.json()["kept_m2"], r.json()["units"], r.json()["shortfall_m2"]) == (300, 1, 200)
    assert r.json()["behind"] is True

    second = await api.new_unit(site["id"], owner, surface_m2=250)
    r = await api.client.patch(
        f"/v1/units/{second['id']}", json={"project_id": project["id"]}, headers=owner
    )
    assert r.status_code == 200, r.text
    r = await api.client.get(f"/v1/projects/{project['id']}")
    assert (r.json()["kept_m2"], r.json()["units"], r.json()["behind"]) == (550, 2, False)
    etag = r.headers["etag"]

    r = await api.client.patch(
        f"/v1/projects/{project['id']}",
        json={"committed_m2": 600},
        headers={**officer, "If-Match": '"99"'},
    )
    assert r.status_code == 412, r.text
    r = await api.client.patch(
        f"/v1/projects/{project['id']}",
        json={"committed_m2": 600, "status": "under_construction"},
        headers={**officer, "If-Match": etag},
    )
    assert r.status_code == 200, r.text
    assert (r.json()["shortfall_m2"], r.json()["behind"], r.json()["version"]) == (50, True, 2)
    r = await api.client.patch(
        f"/v1/projects/{project['id']}", json={"arrondissement": 12}, headers=officer
    )
    assert_problem(r, 409, "unlink the units")
    r = await api.client.patch(
        f"/v1/projects/{project['id']}", json={"committed_m2": None}, headers=officer
    )
    assert_problem(r, 422, "committed_m2")

    # a unit withdrawn no longer keeps anything
    r = await api.client.patch(
        f"/v1/units/{second['id']}",
        json={"status": "withdrawn", "compensation": compensation(m2=250)},
        headers=owner,
    )
    assert r.status_code == 200, r.text
    r = await api.client.get("/v1/projects", params={"arrondissement": 13})
    listed = r.json()
    assert listed["total"] == 1
    assert (listed["items"][0]["kept_m2"], listed["items"][0]["units"]) == (300, 1)
    r = await api.client.get("/v1/projects")
    assert r.json()["total"] == 2
    r = await api.client.get("/v1/projects/nope")
    assert_problem(r, 404, "No development project")


# Balance -------------------------------------------------------------------------------------


async def test_the_balance_per_arrondissement_and_month_by_month(
    api: Api, engine: AsyncEngine
) -> None:
    _, owner = await api.new_landlord()
    site13 = await api.new_site(owner)
    site11 = await api.new_site(owner, postcode="75011", arrondissement=11)
    a = await api.new_unit(site13["id"], owner, surface_m2=200)
    b = await api.new_unit(site11["id"], owner, surface_m2=100)
    officer = api.identities.headers(Role.OFFICER)
    r = await api.client.patch(
        f"/v1/units/{a['id']}",
        json={"surface_m2": 150, "compensation": compensation(m2=60)},
        headers=owner,
    )
    assert r.status_code == 200, r.text
    r = await api.client.patch(
        f"/v1/units/{b['id']}",
        json={"use_class": "other", "uncompensated": {"reason": "Turned into a shop by decree."}},
        headers=officer,
    )
    assert r.status_code == 200, r.text
    # The units were registered in October: move those entries back, as a ledger that has
    # been running for months holds them.
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE production_surface_ledger SET recorded_at = :at WHERE change = :c"),
            {"at": datetime(2026, 10, 15, 9, tzinfo=UTC), "c": "registered"},
        )

    rows = await balance(api)
    assert sorted(rows) == [11, 13]
    r13, r11 = rows[13], rows[11]
    assert (r13["gains_m2"], r13["losses_m2"], r13["net_m2"]) == (200, 50, 150)
    assert (r13["compensated_m2"], r13["compensations_planned_m2"]) == (50, 60)
    assert (r11["losses_m2"], r11["uncompensated_m2"], r11["net_m2"]) == (100, 100, 0)
    this_month = TODAY.strftime("%Y-%m")
    assert [(m["month"], m["net_m2"], m["cumulative_net_m2"]) for m in r13["series"]] == [
        ("2026-10", 200, 200),
        (this_month, -50, 150),
    ]
    assert [(m["month"], m["uncompensated_m2"]) for m in r11["series"]] == [
        ("2026-10", 0),
        (this_month, 100),
    ]
    only13 = await balance(api, arrondissement=13)
    assert list(only13) == [13]
    october = await balance(api, **{"from": "2026-10-01", "to": "2026-10-31"})
    assert (october[13]["gains_m2"], october[13]["losses_m2"]) == (200, 0)
    assert october[11]["uncompensated_m2"] == 0
    since = await balance(api, **{"from": "2026-11-01"})
    assert (since[13]["gains_m2"], since[13]["net_m2"]) == (0, -50)
    r = await api.client.get(
        "/v1/surface/balance", params={"from": "2026-11-01", "to": "2026-10-01"}
    )
    assert_problem(r, 422, "'to' is before 'from'")
    r = await api.client.get("/v1/surface/balance", params={"from": "yesterday"})
    assert_problem(r, 422, "from")


# Migration -----------------------------------------------------------------------------------


async def test_losses_from_before_the_rule_are_migrated_as_uncompensated(
    database_url: str, tmp_path: Path
) -> None:
    await asyncio.to_thread(upgrade, MIGRATIONS, database_url, "0001")
    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            for delta, change, reason in [
                (200.0, "registered", None),
                (-60.0, "resized", "Partition wall rebuilt"),
                (-40.0, "relocated_out", None),
                (-100.0, "withdrawn", None),
            ]:
                await conn.execute(
                    text(
                        "INSERT INTO production_surface_ledger (unit_id, site_id, arrondissement,"
                        " change, delta_m2, production_m2_after, reason, actor, recorded_at)"
                        " VALUES ('u1', 's1', 13, :c, :d, 0, :r, 'admin:a', :at)"
                    ),
                    {"c": change, "d": delta, "r": reason, "at": datetime(2026, 1, 5, tzinfo=UTC)},
                )
        await asyncio.to_thread(upgrade, MIGRATIONS, database_url, "0002")
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT change, uncompensated, uncompensated_reason, compensation_id"
                        " FROM production_surface_ledger ORDER BY id"
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    assert [(c, bool(u), r, comp) for c, u, r, comp in rows] == [
        ("registered", False, None, None),
        ("resized", True, "Partition wall rebuilt", None),
        ("relocated_out", False, None, None),
        ("withdrawn", True, "Recorded before the no-net-loss rule (migration 0002).", None),
    ]


def test_due_dates_outside_the_plausible_range_are_refused() -> None:
    from inventory.schemas import CompensationIn, ProjectCreate

    with pytest.raises(ValueError, match="between 2000-01-01 and 2100-01-01"):
        CompensationIn.model_validate(compensation(due_on="2200-01-01"))
    with pytest.raises(ValueError, match="between 2000-01-01 and 2100-01-01"):
        ProjectCreate.model_validate(
            {"name": "X", "arrondissement": 1, "committed_m2": 1, "delivery_on": "1999-12-31"}
        )
    assert date.fromisoformat(SOON) > TODAY
