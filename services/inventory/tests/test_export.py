"""GET /v1/me/export: what inventory holds about the caller, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime

from fabkit.auth import Role
from tests.conftest import Api


async def test_a_landlord_exports_its_record_sites_units_and_ledger_entries(api: Api) -> None:
    landlord_id, headers = await api.new_landlord("Bailleur export")
    site = await api.new_site(headers)
    unit = await api.new_unit(site["id"], headers)
    other_id, other = await api.new_landlord()
    other_site = await api.new_site(other)
    await api.new_unit(other_site["id"], other)

    r = await api.client.get("/v1/me/export", headers=headers)

    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["content-disposition"] == (
        'attachment; filename="fabrique-inventory-export.json"'
    )
    doc = r.json()
    assert doc["service"] == "inventory"
    assert doc["subject"] == landlord_id
    assert datetime.fromisoformat(doc["generated_at"]).utcoffset() is not None
    records = doc["records"]
    assert [x["id"] for x in records["landlord"]] == [landlord_id]
    assert records["landlord"][0]["name"] == "Bailleur export"
    assert [x["id"] for x in records["sites"]] == [site["id"]]
    assert [x["id"] for x in records["units"]] == [unit["id"]]
    assert records["ledger_entries"], "creating a unit records a ledger entry by its landlord"
    assert {e["actor"] for e in records["ledger_entries"]} == {f"landlord:{landlord_id}"}
    assert {e["unit_id"] for e in records["ledger_entries"]} == {unit["id"]}
    assert other_id not in r.text


async def test_an_artisan_gets_every_kind_empty(api: Api) -> None:
    _, headers = await api.new_landlord()
    site = await api.new_site(headers)
    await api.new_unit(site["id"], headers)

    r = await api.client.get(
        "/v1/me/export", headers=api.identities.headers(Role.ARTISAN, "artisan-export-1")
    )

    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["subject"] == "artisan-export-1"
    assert doc["records"] == {"landlord": [], "sites": [], "units": [], "ledger_entries": []}


async def test_an_admin_exports_the_ledger_entries_it_recorded(api: Api) -> None:
    _, headers = await api.new_landlord()
    site = await api.new_site(headers)
    await api.new_unit(site["id"], api.admin)

    r = await api.client.get("/v1/me/export", headers=api.admin)

    assert r.status_code == 200, r.text
    records = r.json()["records"]
    assert records["landlord"] == [] and records["sites"] == []
    assert records["ledger_entries"]
    assert {e["actor"] for e in records["ledger_entries"]} == {"admin:admin-1"}


async def test_the_export_wants_a_token(api: Api) -> None:
    r = await api.client.get("/v1/me/export")
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
