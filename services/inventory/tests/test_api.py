"""Inventory API on a real database (SQLite and PostgreSQL) with the real broker running."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import jwt
import pytest

from fabkit.auth import Role
from fabkit.testing import assert_problem

from .conftest import Api, headers_of, read_events


async def unit_count(api: Api) -> int:
    r = await api.client.get("/v1/units", params={"limit": 1})
    return int(r.json()["total"])


# Authentication and ownership --------------------------------------------------------------


async def test_write_endpoints_need_a_token_and_the_right_role(api: Api) -> None:
    _, owner = await api.new_landlord()
    site = await api.new_site(owner)
    unit = await api.new_unit(site["id"], owner)
    artisan = api.identities.headers(Role.ARTISAN, "artisan-1")
    officer = api.identities.headers(Role.OFFICER)
    writes = [
        ("POST", "/v1/landlords", {"name": "Semaest bis"}),
        ("POST", "/v1/sites", {"name": "x"}),
        ("PATCH", f"/v1/sites/{site['id']}", {"name": "Renamed"}),
        ("POST", f"/v1/sites/{site['id']}/units", {"reference": "X"}),
        ("PATCH", f"/v1/units/{unit['id']}", {"floor": 2}),
    ]
    for method, path, body in writes:
        r = await api.client.request(method, path, json=body)
        assert_problem(r, 401, "bearer token")
        assert r.headers["www-authenticate"].startswith("Bearer")
        r = await api.client.request(method, path, json=body, headers=artisan)
        assert_problem(r, 403, "roles")
        r = await api.client.request(method, path, json=body, headers=officer)
        assert_problem(r, 403, "roles", "officer")
    r = await api.client.request(
        "PATCH",
        f"/v1/units/{unit['id']}",
        json={"floor": 1},
        headers={"Authorization": "Bearer nope"},
    )
    assert_problem(r, 401, "not a well-formed JWT")


async def test_no_token_is_minted_here_and_shared_secret_tokens_are_refused(api: Api) -> None:
    landlord_id, _ = await api.new_landlord()
    r = await api.client.post(f"/v1/landlords/{landlord_id}/tokens", headers=api.admin)
    assert r.status_code in (404, 405), r.text
    # What the retired TokenService signed: HS256 with the old development secret.
    now = int(time.time())
    forged = jwt.encode(
        {"sub": "admin-1", "role": "admin", "iss": "fabrique", "iat": now, "exp": now + 600},
        "dev-only-insecure-secret-change-me-0000",
        algorithm="HS256",
    )
    r = await api.client.get("/v1/landlords", headers=api.auth(forged))
    assert_problem(r, 401, "HS256", "never a shared secret")


async def test_a_city_officer_reads_every_landlord(api: Api) -> None:
    landlord_id, owner = await api.new_landlord()
    officer = api.identities.headers(Role.OFFICER)
    r = await api.client.get("/v1/landlords", headers=officer)
    assert r.status_code == 200, r.text
    assert landlord_id in {x["id"] for x in r.json()}
    r = await api.client.get(f"/v1/landlords/{landlord_id}", headers=officer)
    assert r.status_code == 200, r.text
    other_id, _ = await api.new_landlord()
    r = await api.client.get(f"/v1/landlords/{other_id}", headers=owner)
    assert_problem(r, 403, "its own")


async def test_a_landlord_cannot_touch_another_landlords_sites_or_units(api: Api) -> None:
    _, owner = await api.new_landlord()
    other_id, other = await api.new_landlord()
    site = await api.new_site(owner)
    unit = await api.new_unit(site["id"], owner)

    r = await api.client.patch(f"/v1/sites/{site['id']}", json={"name": "Mine now"}, headers=other)
    assert_problem(r, 403, "another landlord")
    r = await api.client.patch(
        f"/v1/units/{unit['id']}", json={"status": "available"}, headers=other
    )
    assert_problem(r, 403, "another landlord")
    r = await api.client.post(
        f"/v1/sites/{site['id']}/units",
        json={"reference": "Z1", "surface_m2": 50, "rent_eur_m2_year": 90},
        headers=other,
    )
    assert_problem(r, 403, "another landlord")
    r = await api.client.post(
        "/v1/sites",
        json={
            "name": "Cour",
            "kind": "cite_artisanale",
            "address": "37bis rue de Montreuil",
            "postcode": "75011",
            "arrondissement": 11,
            "landlord_id": "someone-else",
        },
        headers=other,
    )
    assert_problem(r, 403, "its own")
    # nothing changed
    r = await api.client.get(f"/v1/units/{unit['id']}")
    assert r.json()["status"] == "unavailable" and r.json()["version"] == 1
    # an admin may act for any landlord
    r = await api.client.patch(f"/v1/units/{unit['id']}", json={"floor": 3}, headers=api.admin)
    assert r.status_code == 200 and r.json()["floor"] == 3
    assert other_id != unit["landlord_id"]


# Validation --------------------------------------------------------------------------------


BAD_UNITS = [
    ({"surface_m2": -5}, "surface_m2"),
    ({"surface_m2": 0}, "surface_m2"),
    ({"ceiling_height_m": 40}, "ceiling_height_m"),
    ({"floor_load_kg_m2": 10}, "floor_load_kg_m2"),
    ({"rent_eur_m2_year": -1}, "rent_eur_m2_year"),
    ({"power_kva": 99999}, "power_kva"),
    ({"floor": 120}, "floor"),
    ({"allowed_trades": ["Wood Work"]}, "allowed_trades"),
    ({"allowed_trades": ["woodwork", "woodwork"]}, "repeat"),
    ({"goods_lift": 1}, "goods_lift"),
    ({"status": "leased"}, "status"),
    ({"use_class": "housing"}, "use_class"),
    ({"available_from": "1850-01-01"}, "available_from"),
    ({"colour": "blue"}, "colour"),
    ({"reference": ""}, "reference"),
]


async def test_bad_unit_input_gets_a_clear_422_and_writes_nothing(api: Api) -> None:
    _, owner = await api.new_landlord()
    site = await api.new_site(owner)
    before = await unit_count(api)
    base = {"reference": "B1", "surface_m2": 100, "rent_eur_m2_year": 100}
    for override, field in BAD_UNITS:
        r = await api.client.post(
            f"/v1/sites/{site['id']}/units", json={**base, **override}, headers=owner
        )
        body = assert_problem(r, 422, field)
        assert body["errors"], body
    r = await api.client.post(
        f"/v1/sites/{site['id']}/units",
        content=b"{not json",
        headers={**owner, "content-type": "application/json"},
    )
    assert_problem(r, 422)
    r = await api.client.post("/v1/sites/does-not-exist/units", json=base, headers=owner)
    assert_problem(r, 404, "No site")
    assert await unit_count(api) == before


async def test_bad_site_input_gets_a_clear_422(api: Api) -> None:
    _, owner = await api.new_landlord()
    good = {
        "name": "Métropole 19",
        "kind": "hotel_industriel",
        "address": "134 rue d'Aubervilliers",
        "postcode": "75019",
        "arrondissement": 19,
    }
    cases = [
        ({"arrondissement": 21}, "arrondissement"),
        ({"arrondissement": 0}, "arrondissement"),
        ({"postcode": "93100"}, "postcode"),
        ({"postcode": "75011"}, "not in arrondissement 19"),
        ({"kind": "castle"}, "kind"),
        ({"latitude": 48.88}, "both latitude and longitude"),
        ({"latitude": 51.5, "longitude": -0.12}, "latitude"),
        ({"name": ""}, "name"),
    ]
    for override, fragment in cases:
        r = await api.client.post("/v1/sites", json={**good, **override}, headers=owner)
        assert_problem(r, 422, fragment)
    # true and false only (found by fuzzing: 0 was taken as false)
    for flag in (0, 1, "yes", "false"):
        r = await api.client.post(
            "/v1/sites", json={**good, "opens_for_visits": flag}, headers=owner
        )
        assert_problem(r, 422, "opens_for_visits", "valid boolean")
    r = await api.client.get("/v1/sites", params={"limit": 100})
    assert all(s["name"] != "Métropole 19" for s in r.json()["items"])


NOT_NULL_UNIT_FIELDS = [
    "allowed_trades", "reference", "floor", "surface_m2", "goods_lift", "loading_dock",
    "extraction", "step_free_access", "use_class", "rent_eur_m2_year", "charges_eur_m2_year",
    "status",
]  # fmt: skip


async def test_patching_a_unit_field_to_null_is_a_clear_422(api: Api) -> None:
    # `"allowed_trades": null` used to reach replace_trades and fail there (500); every field a
    # unit cannot lack is refused the same way, and nothing is written.
    _, owner = await api.new_landlord()
    site = await api.new_site(owner)
    unit = await api.new_unit(site["id"], owner)
    path = f"/v1/units/{unit['id']}"
    r = await api.client.patch(path, json={"allowed_trades": None}, headers=owner)
    body = assert_problem(r, 422, "allowed_trades cannot be null", "send [] to allow no trade")
    assert body["errors"][0]["field"] == "body.allowed_trades"
    for name in NOT_NULL_UNIT_FIELDS:
        r = await api.client.patch(path, json={name: None}, headers=owner)
        assert_problem(r, 422, f"{name} cannot be null", "leave it out")
    after = (await api.client.get(path)).json()
    assert after["version"] == 1 and after["allowed_trades"] == ["ceramics", "woodwork"]
    # the measurements a unit may lack can still be cleared, and [] clears the trades
    r = await api.client.patch(
        path, json={"ceiling_height_m": None, "allowed_trades": []}, headers=owner
    )
    assert r.status_code == 200, r.text
    assert r.json()["ceiling_height_m"] is None and r.json()["allowed_trades"] == []
    r = await api.client.get("/v1/units", params={"trade": "woodwork", "site_id": site["id"]})
    assert r.json()["total"] == 0


async def test_patching_a_site_field_to_null_is_a_clear_422(api: Api) -> None:
    _, owner = await api.new_landlord()
    site = await api.new_site(owner)
    for name in ("name", "kind", "address", "postcode", "arrondissement", "opens_for_visits"):
        r = await api.client.patch(f"/v1/sites/{site['id']}", json={name: None}, headers=owner)
        assert_problem(r, 422, f"{name} cannot be null")
    assert (await api.client.get(f"/v1/sites/{site['id']}")).json()["version"] == 1


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/production-surface", {"at": "0.5"}),
        ("/v1/production-surface", {"at": "1767225599"}),
        ("/v1/production-surface", {"at": "2026-12-31"}),
        ("/v1/production-surface/history", {"until": "0"}),
        ("/v1/production-surface/history", {"since": "20261231"}),
    ],
)
async def test_surface_reports_want_iso_8601_dates(
    api: Api, path: str, params: dict[str, str]
) -> None:
    # Pydantic reads bare numbers as seconds since 1970: `at=0.5` was the ledger of 1970.
    r = await api.client.get(path, params=params)
    assert_problem(r, 422, next(iter(params)), "ISO 8601")


async def test_surface_reports_take_iso_8601_dates(api: Api) -> None:
    r = await api.client.get("/v1/production-surface", params={"at": "2026-12-31T23:59:59Z"})
    assert r.status_code == 200, r.text
    assert r.json()["at"] == "2026-12-31T23:59:59Z"
    r = await api.client.get("/v1/production-surface", params={"at": "2026-12-31T23:59:59"})
    assert r.json()["at"] == "2026-12-31T23:59:59Z"  # no offset: read as UTC
    r = await api.client.get(
        "/v1/production-surface/history", params={"since": "2026-01-01", "until": "2026-12-31"}
    )
    assert r.status_code == 200, r.text


async def test_the_create_schema_offers_only_the_statuses_a_new_unit_may_take(api: Api) -> None:
    spec = (await api.client.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    assert schemas["UnitCreate"]["properties"]["status"]["enum"] == ["available", "unavailable"]
    # a patch may name any status; the life cycle decides (409) whether the move is allowed
    assert set(schemas["UnitStatus"]["enum"]) == {
        "available", "reserved", "leased", "unavailable", "withdrawn"
    }  # fmt: skip
    _, owner = await api.new_landlord()
    site = await api.new_site(owner)
    for status in ("reserved", "leased", "withdrawn"):
        r = await api.client.post(
            f"/v1/sites/{site['id']}/units",
            json={"reference": "S1", "surface_m2": 50, "rent_eur_m2_year": 90, "status": status},
            headers=owner,
        )
        assert_problem(r, 422, "starts as 'available' or 'unavailable'")


async def test_method_not_allowed_lists_every_method_of_the_path(api: Api) -> None:
    _, owner = await api.new_landlord()
    site = await api.new_site(owner)
    unit = await api.new_unit(site["id"], owner)
    cases = [
        ("DELETE", f"/v1/units/{unit['id']}", "GET, PATCH"),
        ("PUT", f"/v1/sites/{site['id']}", "GET, PATCH"),
        ("DELETE", "/v1/sites", "GET, POST"),
        ("POST", f"/v1/units/{unit['id']}/surface-ledger", "GET"),
    ]
    for method, path, allowed in cases:
        r = await api.client.request(method, path, headers=owner)
        assert_problem(r, 405, f"{method} is not allowed on {path}", allowed)
        assert r.headers["allow"] == allowed
    spec = (await api.client.get("/openapi.json")).json()
    for _, path, allowed in cases:
        template = path.replace(unit["id"], "{unit_id}").replace(site["id"], "{site_id}")
        documented = [m.upper() for m in spec["paths"][template]]
        assert sorted(documented) == sorted(allowed.split(", ")), template


async def test_duplicate_reference_conflicts(api: Api) -> None:
    _, owner = await api.new_landlord()
    site = await api.new_site(owner)
    await api.new_unit(site["id"], owner, reference="L101")
    r = await api.client.post(
        f"/v1/sites/{site['id']}/units",
        json={"reference": "L101", "surface_m2": 80, "rent_eur_m2_year": 90},
        headers=owner,
    )
    assert_problem(r, 409, "L101")


# Status, ETags and idempotency -------------------------------------------------------------


async def test_status_transitions_are_validated(api: Api) -> None:
    _, owner = await api.new_landlord()
    site = await api.new_site(owner)
    unit = await api.new_unit(site["id"], owner)
    path = f"/v1/units/{unit['id']}"
    r = await api.client.patch(path, json={"status": "leased"}, headers=owner)
    assert_problem(r, 409, "cannot go from 'unavailable' to 'leased'")
    for status in ("available", "reserved", "leased", "available"):
        r = await api.client.patch(path, json={"status": status}, headers=owner)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == status
    r = await api.client.patch(path, json={"status": "leased"}, headers=owner)
    assert r.status_code == 200
    r = await api.client.patch(
        path,
        json={"status": "withdrawn", "reason": "demolition of the building"},
        headers=api.admin,
    )
    assert_problem(r, 409, "cannot go from 'leased' to 'withdrawn'")


async def test_if_match_rejects_a_stale_version(api: Api) -> None:
    _, owner = await api.new_landlord()
    site = await api.new_site(owner)
    unit = await api.new_unit(site["id"], owner)
    path = f"/v1/units/{unit['id']}"
    r = await api.client.get(path)
    etag = r.headers["etag"]
    assert etag == '"1"'
    r = await api.client.patch(path, json={"floor": 2}, headers={**owner, "If-Match": etag})
    assert r.status_code == 200 and r.headers["etag"] == '"2"'
    r = await api.client.patch(path, json={"floor": 4}, headers={**owner, "If-Match": etag})
    body = assert_problem(r, 412, '"2"')
    assert body["current_etag"] == '"2"'
    assert (await api.client.get(path)).json()["floor"] == 2
    r = await api.client.patch(
        f"/v1/sites/{site['id']}", json={"name": "Berlier"}, headers={**owner, "If-Match": '"9"'}
    )
    assert_problem(r, 412)


async def test_idempotency_key_creates_one_unit_even_concurrently(api: Api) -> None:
    _, owner = await api.new_landlord()
    site = await api.new_site(owner)
    before = await unit_count(api)
    body = {"reference": "IDEM-1", "surface_m2": 150, "rent_eur_m2_year": 110}
    headers = {**owner, "Idempotency-Key": "create-idem-1"}
    responses = await asyncio.gather(
        *[
            api.client.post(f"/v1/sites/{site['id']}/units", json=body, headers=headers)
            for _ in range(8)
        ]
    )
    assert {r.status_code for r in responses} == {201}, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert any(r.headers.get("idempotent-replayed") == "true" for r in responses)
    assert await unit_count(api) == before + 1
    r = await api.client.post(
        f"/v1/sites/{site['id']}/units", json={**body, "surface_m2": 151}, headers=headers
    )
    assert_problem(r, 422, "different request")
    r = await api.client.post(
        f"/v1/sites/{site['id']}/units", json=body, headers={**owner, "Idempotency-Key": "bad key"}
    )
    assert_problem(r, 400, "Idempotency-Key")


# Search ---------------------------------------------------------------------------------


async def test_search_filters_and_stable_pagination(api: Api) -> None:
    _, owner = await api.new_landlord()
    site13 = await api.new_site(owner)
    site11 = await api.new_site(
        owner,
        name="Cour de l'Industrie",
        kind="cite_artisanale",
        address="37bis rue de Montreuil",
        postcode="75011",
        arrondissement=11,
    )
    made = []
    for i in range(7):
        made.append(
            await api.new_unit(
                site13["id"],
                owner,
                surface_m2=100 + 10 * i,
                rent_eur_m2_year=100,
                status="available",
                goods_lift=i % 2 == 0,
                allowed_trades=["woodwork"] if i < 3 else ["textile"],
            )
        )
    await api.new_unit(
        site11["id"],
        owner,
        surface_m2=40,
        rent_eur_m2_year=300,
        status="available",
        allowed_trades=["leather"],
    )

    async def search(**params: Any) -> dict[str, Any]:
        r = await api.client.get("/v1/units", params={"landlord_id": owner_id, **params})
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    owner_id = made[0]["landlord_id"]
    assert (await search())["total"] == 8
    assert (await search(arrondissement=11))["total"] == 1
    assert (await search(arrondissement=[11, 13]))["total"] == 8
    assert (await search(min_surface=130, max_surface=150))["total"] == 3
    assert (await search(max_rent=150))["total"] == 7
    assert (await search(trade="woodwork"))["total"] == 3
    assert (await search(feature="goods_lift"))["total"] == 4
    assert (await search(feature=["goods_lift"], trade="woodwork"))["total"] == 2
    assert (await search(site_kind="cite_artisanale"))["total"] == 1
    assert (await search(status="leased"))["total"] == 0
    # equal rents: the id tie-breaker keeps pages disjoint and complete
    seen: list[str] = []
    for offset in range(0, 8, 3):
        page = await search(sort="rent", limit=3, offset=offset)
        seen.extend(u["id"] for u in page["items"])
    assert len(seen) == 8 == len(set(seen))
    # a page past the end still says how many match
    past = await search(trade="textile", offset=50)
    assert past["items"] == [] and past["total"] == 4
    # searches of one shape share a statement: the values are bound per request
    assert (await search(arrondissement=13, max_rent=100))["total"] == 7
    assert (await search(arrondissement=11, max_rent=300))["total"] == 1
    assert {u["site"]["arrondissement"] for u in (await search(arrondissement=11))["items"]} == {11}
    surfaces = [u["surface_m2"] for u in (await search(sort="-surface", limit=100))["items"]]
    assert surfaces == sorted(surfaces, reverse=True)
    r = await api.client.get("/v1/units", params={"arrondissement": 25, "sort": "price"})
    assert_problem(r, 422, "arrondissement", "sort")


async def test_search_by_minimum_ceiling_floor_load_and_power(api: Api) -> None:
    _, owner = await api.new_landlord()
    site = await api.new_site(owner)
    figures = [
        (3.0, 600, 12),
        (4.2, 800, 36),
        (5.5, 1_000, 100),
        (6.3, 1_100, None),
        (None, None, 250),
    ]
    made = [
        await api.new_unit(
            site["id"],
            owner,
            ceiling_height_m=ceiling,
            floor_load_kg_m2=load,
            power_kva=power,
            status="available",
        )
        for ceiling, load, power in figures
    ]
    refs = {u["id"]: i for i, u in enumerate(made)}

    async def found(**params: Any) -> list[int]:
        r = await api.client.get(
            "/v1/units", params={"landlord_id": made[0]["landlord_id"], "limit": 100, **params}
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["total"] == len(body["items"])
        return sorted(refs[u["id"]] for u in body["items"])

    # a minimum is inclusive, and a unit whose figure is unknown does not meet it
    assert await found(min_ceiling_height_m=4.2) == [1, 2, 3]
    assert await found(min_ceiling_height_m=2) == [0, 1, 2, 3]
    assert await found(min_floor_load_kg_m2=1_000) == [2, 3]
    assert await found(min_power_kva=36) == [1, 2, 4]
    assert await found(min_power_kva=0) == [0, 1, 2, 4]
    # the three together, and with the other filters, in the same search
    assert await found(min_ceiling_height_m=4, min_floor_load_kg_m2=700, min_power_kva=50) == [2]
    assert await found(min_ceiling_height_m=5, max_rent=100) == []
    assert await found(min_ceiling_height_m=5, min_surface=150, sort="-surface") == [2, 3]
    # one shape, other values: bound per request, not frozen in the cached statement
    assert await found(min_ceiling_height_m=6, min_power_kva=0) == []
    assert await found(min_ceiling_height_m=3, min_power_kva=30) == [1, 2]

    for params, fragments in [
        ({"min_ceiling_height_m": 1.5}, ("min_ceiling_height_m", "greater than or equal to 2")),
        ({"min_ceiling_height_m": 13}, ("min_ceiling_height_m", "less than or equal to 12")),
        ({"min_floor_load_kg_m2": 100}, ("min_floor_load_kg_m2", "greater than or equal to 150")),
        ({"min_floor_load_kg_m2": 6_000}, ("min_floor_load_kg_m2", "less than or equal to 5000")),
        ({"min_power_kva": -1}, ("min_power_kva", "greater than or equal to 0")),
        ({"min_power_kva": 2_001}, ("min_power_kva", "less than or equal to 2000")),
        ({"min_power_kva": "lots"}, ("min_power_kva", "valid number")),
        ({"min_ceiling_height_m": "nan"}, ("min_ceiling_height_m", "finite number")),
        ({"min_power_kva": "inf"}, ("min_power_kva", "finite number")),
    ]:
        r = await api.client.get("/v1/units", params=params)
        body = assert_problem(r, 422, *fragments)
        assert body["errors"], body


# Production-surface protection -------------------------------------------------------------


async def test_reducing_production_surface_needs_a_compensation_or_an_officer(api: Api) -> None:
    _, owner = await api.new_landlord()
    site = await api.new_site(owner)
    unit = await api.new_unit(site["id"], owner, surface_m2=200)
    path = f"/v1/units/{unit['id']}"
    uncompensated = {"reason": "Converted to a showroom by council decision"}
    for change in ({"use_class": "other"}, {"surface_m2": 150}, {"status": "withdrawn"}):
        r = await api.client.patch(
            path, json={**change, "uncompensated": uncompensated}, headers=owner
        )
        assert_problem(r, 403, "Only a city officer or an admin")
        r = await api.client.patch(path, json=change, headers=api.admin)
        assert_problem(r, 422, "No net loss of production surface", "compensation")
    # growing a production unit is never blocked
    r = await api.client.patch(path, json={"surface_m2": 240}, headers=owner)
    assert r.status_code == 200
    made_good = {
        "m2": 60,
        "arrondissement": 13,
        "status": "delivered",
        "due_on": "2026-01-15",
        "description": "The ground floor of the same site, let since January.",
    }
    r = await api.client.patch(
        path,
        json={
            "surface_m2": 180,
            "reason": "Partition wall rebuilt after survey",
            "compensation": made_good,
        },
        headers=owner,
    )
    assert r.status_code == 200, r.text
    r = await api.client.patch(
        path,
        json={"use_class": "other", "uncompensated": uncompensated},
        headers=api.admin,
    )
    assert r.status_code == 200
    ledger = (await api.client.get(f"{path}/surface-ledger")).json()
    assert [(e["change"], e["delta_m2"], e["production_m2_after"]) for e in ledger] == [
        ("registered", 200.0, 200.0),
        ("resized", 40.0, 240.0),
        ("resized", -60.0, 180.0),
        ("use_changed", -180.0, 0.0),
    ]
    assert ledger[2]["reason"] == "Partition wall rebuilt after survey"
    assert ledger[3]["actor"] == "admin:admin-1"

    report = (await api.client.get("/v1/production-surface", params={"by": "site"})).json()
    assert all(row["key"] != site["id"] for row in report["rows"])
    at = ledger[1]["recorded_at"]
    past = (await api.client.get("/v1/production-surface", params={"by": "site", "at": at})).json()
    assert {row["key"]: row["production_m2"] for row in past["rows"]}[site["id"]] == 240.0
    history = (
        await api.client.get("/v1/production-surface/history", params={"site_id": site["id"]})
    ).json()
    assert history["points"][-1]["production_m2"] == 0.0


# Events ----------------------------------------------------------------------------------


async def test_opening_a_vacancy_publishes_a_cloudevent(api: Api) -> None:
    _, owner = await api.new_landlord()
    site = await api.new_site(owner)
    unit = await api.new_unit(site["id"], owner)
    r = await api.client.patch(
        f"/v1/units/{unit['id']}", json={"status": "available"}, headers=owner
    )
    assert r.status_code == 200
    records = await read_events(
        api.settings.kafka_bootstrap, "inventory.unit.events", unit["id"], expect=3
    )
    types = [headers_of(r)["ce_type"] for r in records]
    assert types == [
        "inventory.unit.registered.v1",
        "inventory.unit.updated.v1",
        "inventory.unit.vacancy_opened.v1",
    ]
    opened = records[-1]
    headers = headers_of(opened)
    assert headers["ce_specversion"] == "1.0"
    assert headers["ce_source"] == "/fabrique/inventory"
    assert headers["ce_subject"] == unit["id"]
    assert headers["content-type"] == "application/json"
    assert opened.key == unit["id"].encode()
    data = json.loads(opened.value)
    assert data["vacancy_id"] == r.json()["vacancy_id"]
    assert data["unit"]["arrondissement"] == 13
    assert data["unit"]["site_kind"] == "hotel_industriel"
    assert data["unit"]["rent_eur_m2_year"] == 120
    assert data["unit"]["allowed_trades"] == ["ceramics", "woodwork"]
    assert len({headers_of(r)["ce_id"] for r in records}) == 3
