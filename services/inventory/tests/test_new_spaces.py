"""New spaces (issue 18): fab labs, tiers-lieux, last-mile logistics premises with their
logistics attributes, and seasonal stalls, on a real database (SQLite and PostgreSQL) with the
real broker; and migration 0004 up and down."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from fabkit.db import make_engine
from fabkit.migrations import alembic_config
from fabkit.testing import assert_problem
from inventory import models
from inventory.cli import MIGRATIONS, migrate
from inventory.settings import InventorySettings

from .conftest import Api, headers_of, read_events
from .test_opendata import download, regenerate, validate_csv, validate_geojson

LOGISTICS = {
    "rail_siding": True,
    "river_quay_distance_m": 800,
    "petite_ceinture_station": "Gare de Charonne",
    "freight_max_weight_t": 19.0,
    "freight_max_height_m": 4.0,
    "cargo_bike_spaces": 12,
}
NO_LOGISTICS = {
    "rail_siding": False,
    "river_quay_distance_m": None,
    "petite_ceinture_station": None,
    "freight_max_weight_t": None,
    "freight_max_height_m": None,
    "cargo_bike_spaces": 0,
}
MARKET = {
    "name": "Marché de Noël — essai",
    "kind": "marche_saisonnier",
    "address": "Place Joffre",
    "postcode": "75007",
    "arrondissement": 7,
}
DECEMBER = {"period_start": "2026-11-27", "period_end": "2026-12-31"}


async def stall(api: Api, site_id: str, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    body = {"space_kind": "stall", "surface_m2": 12, **DECEMBER, **fields}
    return await api.new_unit(site_id, headers, **body)


# Sites: kinds and logistics ------------------------------------------------------------


async def test_logistics_are_written_read_patched_and_copied_onto_units(api: Api) -> None:
    _, owner = await api.new_landlord()
    site = await api.new_site(owner, kind="logistique_urbaine", logistics=LOGISTICS)
    assert site["kind"] == "logistique_urbaine"
    assert site["logistics"] == LOGISTICS
    unit = await api.new_unit(site["id"], owner)
    assert unit["logistics"] == LOGISTICS
    assert unit["space_kind"] == "workshop"
    assert (unit["period_start"], unit["period_end"]) == (None, None)
    for kind in ("fab_lab", "tiers_lieu"):
        other = await api.new_site(owner, kind=kind)
        assert other["kind"] == kind
        assert other["logistics"] == NO_LOGISTICS

    r = await api.client.patch(
        f"/v1/sites/{site['id']}",
        json={"logistics": {"cargo_bike_spaces": 30, "river_quay_distance_m": None}},
        headers=owner,
    )
    assert r.status_code == 200, r.text
    expected = {**LOGISTICS, "cargo_bike_spaces": 30, "river_quay_distance_m": None}
    assert r.json()["logistics"] == expected
    assert r.json()["version"] == site["version"] + 1
    assert (await api.client.get(f"/v1/sites/{site['id']}")).json()["logistics"] == expected
    read = (await api.client.get(f"/v1/units/{unit['id']}")).json()
    assert read["logistics"] == expected
    assert read["version"] == unit["version"] + 1

    # The same values again change nothing (no new version, no event).
    r = await api.client.patch(
        f"/v1/sites/{site['id']}", json={"logistics": {"cargo_bike_spaces": 30}}, headers=owner
    )
    assert r.json()["version"] == site["version"] + 1


BAD_LOGISTICS = [
    ({"river_quay_distance_m": -1}, "river_quay_distance_m"),
    ({"river_quay_distance_m": 5001}, "river_quay_distance_m"),
    ({"petite_ceinture_station": "X"}, "petite_ceinture_station"),
    ({"petite_ceinture_station": "x" * 101}, "petite_ceinture_station"),
    ({"freight_max_weight_t": 0.4}, "freight_max_weight_t"),
    ({"freight_max_weight_t": 61}, "freight_max_weight_t"),
    ({"freight_max_height_m": 0.9}, "freight_max_height_m"),
    ({"freight_max_height_m": 6.5}, "freight_max_height_m"),
    ({"cargo_bike_spaces": -1}, "cargo_bike_spaces"),
    ({"cargo_bike_spaces": 501}, "cargo_bike_spaces"),
    ({"rail_siding": "yes"}, "rail_siding"),
    ({"helipad": True}, "helipad"),
]


async def test_logistics_out_of_bounds_are_422s_naming_the_field(api: Api) -> None:
    _, owner = await api.new_landlord()
    site = await api.new_site(owner)
    body = {k: site[k] for k in ("name", "kind", "address", "postcode", "arrondissement")}
    for bad, field in BAD_LOGISTICS:
        r = await api.client.post("/v1/sites", json={**body, "logistics": bad}, headers=owner)
        assert_problem(r, 422, field)
        r = await api.client.patch(
            f"/v1/sites/{site['id']}", json={"logistics": bad}, headers=owner
        )
        assert_problem(r, 422, field)
    for field in ("rail_siding", "cargo_bike_spaces"):
        r = await api.client.patch(
            f"/v1/sites/{site['id']}", json={"logistics": {field: None}}, headers=owner
        )
        assert_problem(r, 422, field, "cannot be null")
    r = await api.client.post("/v1/sites", json={**body, "kind": "entrepot"}, headers=owner)
    assert_problem(r, 422, "kind")
    for params, field in (
        ({"river_quay_within_m": 5001}, "river_quay_within_m"),
        ({"river_quay_within_m": -3}, "river_quay_within_m"),
        ({"min_freight_weight_t": 0.1}, "min_freight_weight_t"),
        ({"min_freight_weight_t": 100}, "min_freight_weight_t"),
        ({"min_freight_height_m": 7}, "min_freight_height_m"),
        ({"space_kind": "kiosk"}, "space_kind"),
        ({"rail_siding": "maybe"}, "rail_siding"),
    ):
        assert_problem(await api.client.get("/v1/units", params=params), 422, field)
    assert (await api.client.get(f"/v1/sites/{site['id']}")).json()["logistics"] == NO_LOGISTICS


# Search --------------------------------------------------------------------------------


async def test_unit_search_filters_on_logistics_and_space_kind(api: Api) -> None:
    _, owner = await api.new_landlord()
    depot = await api.new_site(owner, kind="logistique_urbaine", logistics=LOGISTICS)
    near_quay = await api.new_site(
        owner,
        kind="tiers_lieu",
        logistics={"river_quay_distance_m": 200, "freight_max_weight_t": 3.5},
    )
    plain = await api.new_site(owner)
    market = await api.new_site(owner, **MARKET)
    ids = {
        "depot": (await api.new_unit(depot["id"], owner))["id"],
        "quay": (await api.new_unit(near_quay["id"], owner))["id"],
        "plain": (await api.new_unit(plain["id"], owner))["id"],
        "stall": (await stall(api, market["id"], owner))["id"],
    }
    names = {v: k for k, v in ids.items()}

    async def found(**params: Any) -> set[str]:
        r = await api.client.get("/v1/units", params={"limit": 100, **params})
        assert r.status_code == 200, r.text
        return {names[u["id"]] for u in r.json()["items"]}

    assert await found() == {"depot", "quay", "plain", "stall"}  # both kinds by default
    assert await found(rail_siding="true") == {"depot"}
    assert await found(rail_siding="false") == {"quay", "plain", "stall"}
    assert await found(river_quay_within_m=800) == {"depot", "quay"}
    assert await found(river_quay_within_m=500) == {"quay"}
    assert await found(river_quay_within_m=0) == set()
    assert await found(petite_ceinture="true") == {"depot"}
    assert await found(petite_ceinture="false") == {"quay", "plain", "stall"}
    assert await found(min_freight_weight_t=3.5) == {"depot", "quay"}
    assert await found(min_freight_weight_t=20) == set()
    assert await found(min_freight_height_m=4) == {"depot"}
    assert await found(min_freight_height_m=4.5) == set()
    assert await found(cargo_bike_parking="true") == {"depot"}
    assert await found(cargo_bike_parking="false") == {"quay", "plain", "stall"}
    assert await found(space_kind="stall") == {"stall"}
    assert await found(space_kind="workshop") == {"depot", "quay", "plain"}
    assert await found(site_kind="marche_saisonnier") == {"stall"}
    assert await found(rail_siding="true", min_freight_height_m=4, cargo_bike_parking="true") == {
        "depot"
    }

    # A site's new logistics reach the search at once (the units' copied columns).
    r = await api.client.patch(
        f"/v1/sites/{plain['id']}",
        json={"logistics": {"rail_siding": True, "cargo_bike_spaces": 4}},
        headers=owner,
    )
    assert r.status_code == 200, r.text
    assert await found(rail_siding="true", cargo_bike_parking="true") == {"depot", "plain"}


# Stalls --------------------------------------------------------------------------------


async def test_stalls_are_let_for_a_period_only_on_a_seasonal_market(api: Api) -> None:
    _, owner = await api.new_landlord()
    market = await api.new_site(owner, **MARKET)
    workshop_site = await api.new_site(owner)
    base = {"reference": "S1", "surface_m2": 10, "rent_eur_m2_year": 300}
    cases: list[tuple[str, dict[str, Any], int, tuple[str, ...]]] = [
        (workshop_site["id"], {"space_kind": "stall", **DECEMBER}, 409, ("marche_saisonnier",)),
        (market["id"], {"space_kind": "stall"}, 422, ("period_start and period_end",)),
        (
            market["id"],
            {"space_kind": "stall", "period_start": "2026-12-01"},
            422,
            ("period_start and period_end",),
        ),
        (
            market["id"],
            {"space_kind": "stall", "period_start": "2026-12-10", "period_end": "2026-12-10"},
            422,
            ("period_end must be after period_start",),
        ),
        (
            market["id"],
            {"space_kind": "stall", "period_start": "2026-01-01", "period_end": "2026-07-04"},
            422,
            ("at most 183 days",),
        ),
        (market["id"], {**DECEMBER}, 422, ("A workshop has no period",)),
        (market["id"], {"space_kind": "kiosk", **DECEMBER}, 422, ("space_kind",)),
        (
            market["id"],
            {"space_kind": "stall", "period_start": "1999-12-01", "period_end": "1999-12-24"},
            422,
            ("period_start",),
        ),
    ]
    for site_id, fields, status, fragments in cases:
        r = await api.client.post(
            f"/v1/sites/{site_id}/units", json={**base, **fields}, headers=owner
        )
        assert_problem(r, status, *fragments)
    assert (await api.client.get("/v1/units")).json()["total"] == 0  # nothing half-written

    # 183 days exactly is accepted.
    long = await stall(api, market["id"], owner, period_start="2026-06-01", period_end="2026-12-01")
    assert long["space_kind"] == "stall"
    unit = await stall(api, market["id"], owner)
    assert (unit["period_start"], unit["period_end"]) == ("2026-11-27", "2026-12-31")
    path = f"/v1/units/{unit['id']}"
    r = await api.client.patch(path, json={"period_end": "2027-01-04"}, headers=owner)
    assert r.status_code == 200, r.text
    assert r.json()["period_end"] == "2027-01-04"
    r = await api.client.patch(path, json={"period_end": "2026-11-20"}, headers=owner)
    assert_problem(r, 422, "period_end must be after period_start")
    r = await api.client.patch(path, json={"period_end": "2027-12-31"}, headers=owner)
    assert_problem(r, 422, "at most 183 days")
    r = await api.client.patch(path, json={"period_start": None}, headers=owner)
    assert_problem(r, 422, "period_start", "cannot be null")
    r = await api.client.patch(path, json={"space_kind": "workshop"}, headers=owner)
    assert_problem(r, 422, "space_kind")
    assert (await api.client.get(path)).json()["period_end"] == "2027-01-04"

    workshop = await api.new_unit(workshop_site["id"], owner)
    r = await api.client.patch(
        f"/v1/units/{workshop['id']}", json={"period_start": "2026-12-01"}, headers=owner
    )
    assert_problem(r, 422, "A workshop has no period")

    # A market with stalls cannot become another kind of site.
    r = await api.client.patch(f"/v1/sites/{market['id']}", json={"kind": "other"}, headers=owner)
    assert_problem(r, 409, "stalls", "marche_saisonnier")
    assert (await api.client.get(f"/v1/sites/{market['id']}")).json()["kind"] == "marche_saisonnier"


async def test_a_stall_does_not_move_the_production_surface_ledger(api: Api) -> None:
    _, owner = await api.new_landlord()
    market = await api.new_site(owner, **MARKET)

    async def surface() -> tuple[float, dict[str, float]]:
        report = (await api.client.get("/v1/production-surface", params={"by": "site"})).json()
        return report["total_production_m2"], {r["key"]: r["production_m2"] for r in report["rows"]}

    before = await surface()
    unit = await stall(api, market["id"], owner, status="available", use_class="production")
    assert await surface() == before
    path = f"/v1/units/{unit['id']}"
    assert (await api.client.get(f"{path}/surface-ledger")).json() == []
    # Shrinking or withdrawing a stall is no loss of production surface: no compensation asked.
    r = await api.client.patch(path, json={"surface_m2": 6}, headers=owner)
    assert r.status_code == 200, r.text
    r = await api.client.patch(path, json={"status": "withdrawn"}, headers=owner)
    assert r.status_code == 200, r.text
    assert (await api.client.get(f"{path}/surface-ledger")).json() == []
    assert await surface() == before
    # A workshop on the same site does count, so the report is not blind to the site.
    await api.new_unit(market["id"], owner, surface_m2=40)
    total, by_site = await surface()
    assert total == before[0] + 40
    assert by_site[market["id"]] == 40


# Events --------------------------------------------------------------------------------


async def test_unit_and_site_events_carry_space_kind_period_and_logistics(api: Api) -> None:
    _, owner = await api.new_landlord()
    market = await api.new_site(owner, **MARKET, logistics={"cargo_bike_spaces": 6})
    unit = await stall(api, market["id"], owner, status="available")
    r = await api.client.patch(
        f"/v1/sites/{market['id']}",
        json={"logistics": {"freight_max_height_m": 3.5}},
        headers=owner,
    )
    assert r.status_code == 200, r.text
    bootstrap = api.settings.kafka_bootstrap
    records = await read_events(bootstrap, "inventory.unit.events", unit["id"], expect=3)
    types = [headers_of(r)["ce_type"] for r in records]
    assert types == [
        "inventory.unit.registered.v1",
        "inventory.unit.vacancy_opened.v1",
        "inventory.unit.updated.v1",
    ]
    opened = json.loads(records[1].value)["unit"]
    assert opened["space_kind"] == "stall"
    assert (opened["period_start"], opened["period_end"]) == ("2026-11-27", "2026-12-31")
    assert opened["site_kind"] == "marche_saisonnier"
    assert opened["logistics"] == {**NO_LOGISTICS, "cargo_bike_spaces": 6}
    updated = json.loads(records[2].value)
    assert updated["changed"] == ["site"]
    assert updated["unit"]["logistics"]["freight_max_height_m"] == 3.5
    assert updated["unit"]["logistics"]["cargo_bike_spaces"] == 6

    site_records = await read_events(bootstrap, "inventory.site.events", market["id"], expect=2)
    registered, site_updated = (json.loads(r.value) for r in site_records)
    assert registered["site"]["logistics"]["cargo_bike_spaces"] == 6
    assert site_updated["changed"] == ["freight_max_height_m"]
    assert site_updated["site"]["logistics"]["freight_max_height_m"] == 3.5


# Open data -----------------------------------------------------------------------------


async def test_open_data_files_carry_the_new_kinds_logistics_and_stalls(api: Api) -> None:
    _, owner = await api.new_landlord()
    depot = await api.new_site(
        owner, kind="logistique_urbaine", logistics=LOGISTICS, latitude=48.85, longitude=2.40
    )
    market = await api.new_site(owner, **MARKET, latitude=48.855, longitude=2.30)
    workshop = await api.new_unit(depot["id"], owner, status="available")
    booth = await stall(api, market["id"], owner, status="available")
    await regenerate(api)

    vacancies = {
        v["unit_id"]: v for v in validate_csv("vacancies", await download(api, "vacancies.csv"))
    }
    assert vacancies[workshop["id"]]["type_site"] == "logistique_urbaine"
    assert vacancies[workshop["id"]]["type_local"] == "workshop"
    assert vacancies[workshop["id"]]["embranchement_ferre"] == "true"
    assert vacancies[workshop["id"]]["distance_quai_fluvial_m"] == "800"
    assert vacancies[workshop["id"]]["gare_petite_ceinture"] == "Gare de Charonne"
    assert vacancies[workshop["id"]]["fret_poids_max_t"] == "19"
    assert vacancies[workshop["id"]]["places_velos_cargo"] == "12"
    assert vacancies[workshop["id"]]["periode_debut"] == ""
    assert vacancies[booth["id"]]["type_site"] == "marche_saisonnier"
    assert vacancies[booth["id"]]["type_local"] == "stall"
    assert (vacancies[booth["id"]]["periode_debut"], vacancies[booth["id"]]["periode_fin"]) == (
        "2026-11-27",
        "2026-12-31",
    )
    sites = {s["site_id"]: s for s in validate_csv("sites", await download(api, "sites.csv"))}
    assert sites[depot["id"]]["fret_hauteur_max_m"] == "4"
    assert sites[market["id"]]["embranchement_ferre"] == "false"
    assert sites[market["id"]]["surface_production_m2"] == "0"  # a stall is no production
    for dataset in ("vacancies", "sites"):
        validate_geojson(dataset, await download(api, f"{dataset}.geojson"))


# Migration 0004 ------------------------------------------------------------------------

NEW_SITE_COLUMNS = set(models.LOGISTICS_COLUMNS)
NEW_UNIT_COLUMNS = {*models.LOGISTICS_COLUMNS, "space_kind", "period_start", "period_end"}


def _columns(database_url: str) -> dict[str, set[str]]:
    async def read() -> dict[str, set[str]]:
        engine = make_engine(database_url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(
                    lambda c: {
                        table: {col["name"] for col in inspect(c).get_columns(table)}
                        for table in ("sites", "units")
                    }
                )
        finally:
            await engine.dispose()

    return asyncio.run(read())


def _differences(database_url: str) -> list[Any]:
    """What separates the database's sites and units from the models' (nothing, after 0004)."""

    def diff(connection: Any) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, models.SQLModel.metadata))

    async def read() -> list[Any]:
        engine = make_engine(database_url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(diff)
        finally:
            await engine.dispose()

    def about_sites_or_units(d: Any) -> bool:
        flat = repr(d)
        return "'sites'" in flat or "'units'" in flat or "ix_units_" in flat

    return [d for d in asyncio.run(read()) if about_sites_or_units(d)]


def test_migration_0004_goes_up_and_down(database_url: str) -> None:
    settings = InventorySettings(environment="test", database_url=database_url)
    migrate(settings)
    columns = _columns(database_url)
    assert columns["sites"] >= NEW_SITE_COLUMNS
    assert columns["units"] >= NEW_UNIT_COLUMNS
    assert _differences(database_url) == []

    command.downgrade(alembic_config(MIGRATIONS, database_url), "0003")
    columns = _columns(database_url)
    assert not NEW_SITE_COLUMNS & columns["sites"]
    assert not NEW_UNIT_COLUMNS & columns["units"]
    assert _differences(database_url) != []  # the comparison sees what 0004 adds

    migrate(settings)
    assert _columns(database_url)["units"] >= NEW_UNIT_COLUMNS
