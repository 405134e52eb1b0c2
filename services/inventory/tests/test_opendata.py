"""Open data: files regenerated after a change, each validated with frictionless against its
committed Table Schema, GeoJSON read back, public and cacheable, regenerated only by an admin;
on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from frictionless import Resource, Schema

from fabkit.auth import Role
from fabkit.testing import assert_problem
from tests.conftest import Api

SCHEMAS = Path(__file__).parents[1] / "inventory" / "opendata" / "schemas"
FILES = {
    "vacancies.csv",
    "vacancies.geojson",
    "sites.csv",
    "sites.geojson",
    "surface-ledger.csv",
    "surface-by-arrondissement.csv",
}


def schema(dataset: str) -> Schema:
    return Schema.from_descriptor(json.loads((SCHEMAS / f"{dataset}.json").read_text("utf-8")))


def validate_csv(dataset: str, content: bytes) -> list[dict[str, Any]]:
    """The file's rows, once frictionless found it valid against the committed schema."""
    resource = Resource(data=content, format="csv", encoding="utf-8", schema=schema(dataset))
    report = resource.validate()
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])
    return list(csv.DictReader(io.StringIO(content.decode("utf-8"))))


def validate_geojson(dataset: str, content: bytes) -> dict[str, Any]:
    """An RFC 7946 FeatureCollection of Points whose properties fit the committed schema."""
    document = json.loads(content)
    assert document["type"] == "FeatureCollection"
    assert document["licence"]["name"] == "etalab-2.0"
    assert document["schema"] == f"/v1/open-data/schemas/{dataset}.json"
    names = [f.name for f in schema(dataset).fields]
    rows = [names]
    for feature in document["features"]:
        assert feature["type"] == "Feature"
        assert feature["geometry"]["type"] == "Point"
        lon, lat = feature["geometry"]["coordinates"]
        assert (lat, lon) == (feature["properties"]["latitude"], feature["properties"]["longitude"])
        assert list(feature["properties"]) == names
        rows.append([feature["properties"][n] for n in names])
    report = Resource(data=rows, schema=schema(dataset)).validate()
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])
    return document  # type: ignore[no-any-return]


async def regenerate(api: Api) -> dict[str, dict[str, Any]]:
    r = await api.client.post("/v1/open-data/regenerate", headers=api.admin)
    assert r.status_code == 200, r.text
    return {f["name"]: f for f in r.json()["files"]}


async def download(api: Api, name: str) -> bytes:
    r = await api.client.get(f"/v1/open-data/{name}")
    assert r.status_code == 200, r.text
    return r.content


async def test_every_file_is_valid_against_its_schema_and_a_new_vacancy_appears(
    api: Api,
) -> None:
    _, owner = await api.new_landlord("Bailleur open data")
    site = await api.new_site(owner, latitude=48.8262, longitude=2.3867)
    unplaced = await api.new_site(
        owner, name="Cour sans coordonnées", address="37bis rue de Montreuil", postcode="75011",
        arrondissement=11,
    )  # fmt: skip
    first = await api.new_unit(
        site["id"], owner, surface_m2=210, allowed_trades=["ceramics"], status="available"
    )
    await api.new_unit(unplaced["id"], owner, surface_m2=40, allowed_trades=[], status="available")

    before = await regenerate(api)

    assert set(before) == FILES
    for name, entry in before.items():
        content = await download(api, name)
        dataset, fmt = name.rsplit(".", 1)
        if fmt == "csv":
            rows = validate_csv(dataset, content)
            assert entry["rows"] == len(rows)
        else:
            assert entry["rows"] == len(validate_geojson(dataset, content)["features"])
        assert entry["licence"]["name"] == "etalab-2.0"
        assert entry["schema_url"] == f"/v1/open-data/schemas/{dataset}.json"
        assert entry["size_bytes"] == len(content)
    vacancies = validate_csv("vacancies", await download(api, "vacancies.csv"))
    assert {v["unit_id"] for v in vacancies} >= {first["id"]}
    mine = next(v for v in vacancies if v["unit_id"] == first["id"])
    assert (mine["arrondissement"], mine["code_insee"], mine["metiers"]) == (
        "13",
        "75113",
        "ceramics",
    )
    assert mine["bailleur"] == "Bailleur open data"
    points = validate_geojson("vacancies", await download(api, "vacancies.geojson"))
    assert [f["id"] for f in points["features"]] == [first["id"]], "only sites with a point"
    assert points["features"][0]["geometry"]["coordinates"] == [2.3867, 48.8262]

    later = await api.new_unit(
        site["id"], owner, status="available", available_from=str(date.today() + timedelta(30))
    )
    stale = validate_csv("vacancies", await download(api, "vacancies.csv"))
    assert later["id"] not in {v["unit_id"] for v in stale}, "files change only when regenerated"

    after = await regenerate(api)

    fresh = validate_csv("vacancies", await download(api, "vacancies.csv"))
    assert later["id"] in {v["unit_id"] for v in fresh}
    assert after["vacancies.csv"]["rows"] == before["vacancies.csv"]["rows"] + 1
    assert after["vacancies.csv"]["sha256"] != before["vacancies.csv"]["sha256"]
    sites = {s["site_id"]: s for s in validate_csv("sites", await download(api, "sites.csv"))}
    assert (sites[site["id"]]["locaux"], sites[site["id"]]["locaux_vacants"]) == ("2", "2")
    assert sites[site["id"]]["surface_production_m2"] == "410"


async def test_the_ledger_says_what_each_arrondissement_gained_and_lost_and_why(
    api: Api,
) -> None:
    _, owner = await api.new_landlord()
    site = await api.new_site(owner)
    unit = await api.new_unit(site["id"], owner, surface_m2=200)
    reason = "Storage carved out of the workshop for the new ventilation."
    compensation = {
        "m2": 80,
        "arrondissement": 13,
        "status": "planned",
        "due_on": str(date.today() + timedelta(days=365)),
        "description": "Ground-floor workshops of the new Bruneseau building.",
    }
    r = await api.client.patch(
        f"/v1/units/{unit['id']}",
        json={"surface_m2": 120, "reason": reason, "compensation": compensation},
        headers=owner,
    )
    assert r.status_code == 200, r.text

    await regenerate(api)

    ledger = validate_csv("surface-ledger", await download(api, "surface-ledger.csv"))
    entries = [e for e in ledger if e["unit_id"] == unit["id"]]
    assert (entries[0]["changement"], entries[0]["variation_m2"]) == ("registered", "200")
    loss = entries[-1]
    assert (loss["variation_m2"], loss["surface_apres_m2"], loss["motif"]) == ("-80", "120", reason)
    assert (loss["compensation_m2"], loss["compensation_statut"]) == ("80", "planned")
    assert loss["compensation_description"] == compensation["description"]
    assert loss["non_compensee"] == "false"
    assert {e["auteur"] for e in entries} == {"landlord"}, "a role, never a person"
    text = (await download(api, "surface-ledger.csv")).decode()
    assert "landlord:" not in text
    summary = validate_csv(
        "surface-by-arrondissement", await download(api, "surface-by-arrondissement.csv")
    )
    assert [int(row["arrondissement"]) for row in summary] == list(range(1, 21))
    thirteenth = next(row for row in summary if row["arrondissement"] == "13")
    assert float(thirteenth["perdu_m2"]) >= 80
    assert float(thirteenth["perdu_compense_m2"]) >= 80
    assert float(thirteenth["solde_m2"]) == pytest.approx(
        float(thirteenth["gagne_m2"]) - float(thirteenth["perdu_m2"])
    )


async def test_files_are_public_cacheable_and_revalidated_by_etag(api: Api) -> None:
    _, owner = await api.new_landlord()
    await api.new_unit((await api.new_site(owner))["id"], owner, status="available")
    files = await regenerate(api)

    r = await api.client.get("/v1/open-data/vacancies.csv")

    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["etag"] == f'"{files["vacancies.csv"]["sha256"]}"'
    assert r.headers["cache-control"].startswith("public")
    again = await api.client.get(
        "/v1/open-data/vacancies.csv", headers={"If-None-Match": r.headers["etag"]}
    )
    assert again.status_code == 304
    assert again.content == b""
    geo = await api.client.get("/v1/open-data/sites.geojson")
    assert geo.headers["content-type"].startswith("application/geo+json")
    catalogue = await api.client.get("/v1/open-data")
    assert catalogue.status_code == 200
    assert catalogue.json()["licence"]["name"] == "etalab-2.0"
    assert {f["name"] for f in catalogue.json()["files"]} == FILES
    served = await api.client.get("/v1/open-data/schemas/vacancies.json")
    assert served.json() == json.loads((SCHEMAS / "vacancies.json").read_text(encoding="utf-8"))


async def test_an_unknown_file_is_a_404_that_lists_the_files(api: Api) -> None:
    r = await api.client.get("/v1/open-data/surface-ledger.geojson")
    assert_problem(r, 404, "surface-ledger.geojson", "vacancies.csv")
    r = await api.client.get("/v1/open-data/schemas/leases.json")
    assert_problem(r, 404, "leases", "surface-ledger")


@pytest.mark.parametrize("role", [Role.LANDLORD, Role.ARTISAN, Role.OFFICER, None])
async def test_only_an_admin_regenerates(api: Api, role: Role | None) -> None:
    headers = api.identities.headers(role, f"opendata-{uuid.uuid4().hex[:8]}") if role else {}

    r = await api.client.post("/v1/open-data/regenerate", headers=headers)

    assert r.status_code == (403 if role else 401), r.text
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_the_committed_schemas_follow_the_format_of_schema_data_gouv_fr() -> None:
    for path in SCHEMAS.glob("*.json"):
        descriptor = json.loads(path.read_text(encoding="utf-8"))
        for key in ("name", "title", "description", "licenses", "fields", "resources"):
            assert descriptor.get(key), f"{path.name} lacks {key}"
        assert descriptor["licenses"][0]["name"] == "etalab-2.0"
        for field in descriptor["fields"]:
            assert {"name", "description", "type", "example"} <= field.keys(), field["name"]
        Schema.from_descriptor(descriptor)  # frictionless refuses an invalid schema


def test_the_sample_notifications_reads_as_supply_is_in_our_vacancies_format() -> None:
    # notifications sets its demand against this file over HTTP; its tests use this sample, so
    # a change of our columns must show here first.
    sample = Path(__file__).parents[3] / "services/notifications/tests/data/vacancies.csv"
    rows = validate_csv("vacancies", sample.read_bytes())
    assert list(rows[0]) == [f.name for f in schema("vacancies").fields]
