"""CSV import of units on a real database (SQLite and PostgreSQL) with the real broker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fabkit.auth import Role
from fabkit.testing import assert_problem

from .conftest import Api, headers_of, read_events

# The sample the README shows, with good and bad rows.
SAMPLE = Path(__file__).parents[3] / "docs" / "samples" / "units_import.csv"
CSV = {"Content-Type": "text/csv; charset=utf-8"}


async def post_csv(
    api: Api, site_id: str, headers: dict[str, str], body: str | bytes, **params: Any
) -> Any:
    content = body.encode() if isinstance(body, str) else body
    return await api.client.post(
        f"/v1/sites/{site_id}/units/import",
        content=content,
        headers={**headers, **CSV},
        params={k: str(v).lower() for k, v in params.items()},
    )


async def site_units(api: Api, site_id: str) -> list[dict[str, Any]]:
    r = await api.client.get("/v1/units", params={"site_id": site_id, "limit": 100})
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


async def test_the_sample_file_imports_good_rows_and_reports_the_refused_ones(api: Api) -> None:
    _, owner = await api.new_landlord()
    site = await api.new_site(owner)
    await api.new_unit(site["id"], owner, reference="A001")  # line 6 repeats this reference
    r = await post_csv(api, site["id"], owner, SAMPLE.read_bytes())
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["written"] is True and report["rows"] == 6
    assert [(a["line"], a["reference"]) for a in report["accepted"]] == [(2, "B101"), (3, "B102")]
    refused = {row["line"]: row for row in report["refused"]}
    assert sorted(refused) == [4, 5, 6, 7]
    # line 4: a surface of 0 and a rent that is no number, both named with their column
    problems = {p["column"]: p for p in refused[4]["problems"]}
    assert problems["surface_m2"]["code"] == "greater_than"
    assert problems["surface_m2"]["params"] == {"gt": 0}
    assert problems["rent_eur_m2_year"]["code"] == "not_a_number"
    assert "must be a number" in problems["rent_eur_m2_year"]["reason"]
    # line 5: a unit cannot start leased; line 6: the reference exists; line 7: a bad trade
    assert refused[5]["problems"][0]["column"] == "status"
    assert "'available' or 'unavailable'" in refused[5]["problems"][0]["reason"]
    assert refused[6]["problems"][0]["code"] == "reference_taken"
    assert "already has a unit with reference 'A001'" in refused[6]["problems"][0]["reason"]
    assert refused[7]["problems"][0]["column"] == "allowed_trades"
    # Only the accepted rows exist, with every cell as written.
    stored = {u["reference"]: u for u in await site_units(api, site["id"])}
    assert sorted(stored) == ["A001", "B101", "B102"]
    b101 = stored["B101"]
    assert b101["allowed_trades"] == ["metalwork", "woodwork"]
    assert b101["goods_lift"] is True and b101["ceiling_height_m"] == 4.2
    assert b101["charges_eur_m2_year"] == 0  # an empty cell takes the default
    assert stored["B102"]["surface_m2"] == 95.5  # a decimal comma, quoted
    assert stored["B102"]["status"] == "available" and stored["B102"]["vacancy_id"]


async def test_an_accepted_row_publishes_its_events_as_a_single_post_does(api: Api) -> None:
    _, owner = await api.new_landlord()
    site = await api.new_site(owner)
    body = "reference,surface_m2,rent_eur_m2_year,status\nV1,120,100,available\n"
    r = await post_csv(api, site["id"], owner, body)
    assert r.status_code == 200, r.text
    unit_id = r.json()["accepted"][0]["unit_id"]
    records = await read_events(
        api.settings.kafka_bootstrap, "inventory.unit.events", unit_id, expect=2
    )
    types = [headers_of(rec)["ce_type"] for rec in records]
    assert types == ["inventory.unit.registered.v1", "inventory.unit.vacancy_opened.v1"]


async def test_atomic_refuses_the_whole_file_and_writes_nothing(api: Api) -> None:
    _, owner = await api.new_landlord()
    site = await api.new_site(owner)
    body = "reference;surface_m2;rent_eur_m2_year\nC1;100;90\nC2;-5;90\nC3;80;70\n"
    r = await post_csv(api, site["id"], owner, body, atomic=True)
    assert_problem(r, 422, "1 of 3 rows were refused", "nothing was imported")
    problem = r.json()
    assert problem["written"] is False
    assert [a["reference"] for a in problem["accepted"]] == ["C1", "C3"]
    assert problem["refused"][0]["line"] == 3
    assert problem["refused"][0]["problems"][0]["column"] == "surface_m2"
    assert await site_units(api, site["id"]) == []
    # The same file without atomic keeps the two good rows.
    r = await post_csv(api, site["id"], owner, body)
    assert r.status_code == 200, r.text
    assert sorted(u["reference"] for u in await site_units(api, site["id"])) == ["C1", "C3"]


async def test_dry_run_checks_database_rules_and_writes_nothing(api: Api) -> None:
    _, owner = await api.new_landlord()
    site = await api.new_site(owner)
    # Twice the same reference in one file: the second is refused as a second POST would be.
    body = "reference,surface_m2,rent_eur_m2_year\nD1,100,90\nD1,110,95\n"
    r = await post_csv(api, site["id"], owner, body, dry_run=True)
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["dry_run"] is True and report["written"] is False
    assert [a["line"] for a in report["accepted"]] == [2]
    assert report["refused"][0]["problems"][0]["code"] == "reference_taken"
    assert await site_units(api, site["id"]) == []


async def test_bad_files_are_clear_problems(api: Api) -> None:
    _, owner = await api.new_landlord()
    site = await api.new_site(owner)
    sid = site["id"]
    r = await post_csv(api, sid, owner, "reference,surface,rent_eur_m2_year\nX,1,1\n")
    assert_problem(r, 422, "unknown columns: 'surface'", "surface_m2")
    r = await post_csv(api, sid, owner, "reference,rent_eur_m2_year\nX,1\n")
    assert_problem(r, 422, "lacks the required columns surface_m2")
    r = await post_csv(api, sid, owner, "")
    assert_problem(r, 422, "The file is empty")
    r = await post_csv(
        api, sid, owner, "reference,surface_m2,rent_eur_m2_year\nÉ,1,1\n".encode("latin-1")
    )
    assert_problem(r, 422, "not UTF-8", "CSV UTF-8")
    r = await api.client.post(
        f"/v1/sites/{sid}/units/import", json={"reference": "X"}, headers=owner
    )
    assert_problem(r, 415, "text/csv")
    big = "reference,surface_m2,rent_eur_m2_year\n" + "X,1,1\n" * 200_000
    r = await post_csv(api, sid, owner, big)
    assert_problem(r, 413, "1,048,576 bytes")
    many = "reference,surface_m2,rent_eur_m2_year\n" + "".join(
        f"R{i},100,90\n" for i in range(2_001)
    )
    r = await post_csv(api, sid, owner, many)
    assert_problem(r, 413, "at most 2000 rows")
    r = await post_csv(api, sid, owner, "reference,surface_m2,rent_eur_m2_year\nX,1,1,extra\n")
    assert r.status_code == 200, r.text
    assert r.json()["refused"][0]["problems"][0]["code"] == "too_many_cells"
    assert await site_units(api, sid) == []


async def test_only_the_sites_landlord_or_an_admin_imports(api: Api) -> None:
    _, owner = await api.new_landlord()
    _, other = await api.new_landlord()
    site = await api.new_site(owner)
    body = "reference,surface_m2,rent_eur_m2_year\nE1,100,90\n"
    r = await post_csv(api, site["id"], other, body)
    assert_problem(r, 403, "belongs to another landlord")
    r = await post_csv(api, site["id"], api.identities.headers(Role.ARTISAN, "a-1"), body)
    assert_problem(r, 403, "roles")
    r = await post_csv(api, site["id"], {}, body)
    assert_problem(r, 401, "bearer token")
    r = await post_csv(api, "no-such-site", owner, body)
    assert_problem(r, 404, "No site with id no-such-site")
    assert await site_units(api, site["id"]) == []
    r = await post_csv(api, site["id"], api.admin, body)
    assert r.status_code == 200, r.text
    assert [u["reference"] for u in await site_units(api, site["id"])] == ["E1"]
