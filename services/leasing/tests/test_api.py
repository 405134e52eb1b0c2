"""Leasing API on a real database (SQLite and PostgreSQL) with the real broker running.

Units reach leasing the only way they can: inventory's unit events, applied here through the
service's own consumer runner (the broker path is covered in test_consumer and test_journey).
"""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from fabkit.auth import Role
from fabkit.testing import assert_problem
from leasing.models import Application, ArtisanProfile, Lease
from leasing.service import leases

from .conftest import (
    Api,
    FakeUnit,
    data_of,
    eventually,
    headers_of,
    make_settings,
    read_events,
    siret,
    started_app,
)


async def count(api: Api, model: Any) -> int:
    async with api.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


def today() -> Any:
    return datetime.now(UTC).date()


# Programmes ------------------------------------------------------------------------------------


async def test_programmes_rules_and_grids_are_public(api: Api) -> None:
    r = await api.client.get("/v1/programmes")
    assert r.status_code == 200
    body = r.json()
    assert len(body["config_hash"]) == 64
    by_id = {p["id"]: p for p in body["programmes"]}
    assert set(by_id) == {
        "ateliers-de-paris-incubator",
        "hotels-industriels-jeunes-artisans",
        "economie-sociale-et-solidaire",
    }
    incubator = by_id["ateliers-de-paris-incubator"]
    assert incubator["site_kinds"] == ["ateliers_de_paris", "pepiniere"]
    assert incubator["rules"]["max_business_age_years"] == 3
    assert incubator["rules"]["max_residency_months"] == 12
    assert incubator["rules"]["renewable_times"] == 1
    assert incubator["max_points"] == 100
    assert {c["kind"] for c in incubator["scoring"]} == {
        "business_age",
        "label",
        "legal_form",
        "trade_match",
        "waiting_time",
    }
    assert by_id["economie-sociale-et-solidaire"]["rules"]["allowed_legal_forms"] == [
        "scop", "scic", "cae", "cooperative_artisanale", "association"
    ]  # fmt: skip
    r = await api.client.get("/v1/programmes/hotels-industriels-jeunes-artisans")
    assert r.json()["rules"]["rent_cap_eur_m2_year"] == 180.0
    assert_problem(await api.client.get("/v1/programmes/nope"), 404, "nope")
    # published once at start-up, one event per programme, keyed by programme id
    published = await api.outbox(topic="leasing.programme.events")
    assert sorted(m.key for m in published) == sorted(by_id)
    data = published[0].envelope["data"]
    assert data["catalogue"]["config_hash"] == body["config_hash"]
    assert data["catalogue"]["programme_ids"] == [p["id"] for p in body["programmes"]]


# Artisans -------------------------------------------------------------------------------------


async def test_registration_gives_a_token_for_the_own_profile_only(api: Api) -> None:
    artisan, token = await api.register(display_name="Atelier Roux")
    other, other_token = await api.register(display_name="Bois Debout", legal_form="scop")

    r = await api.client.get("/v1/artisans/me", headers=token)
    assert r.status_code == 200 and r.json()["id"] == artisan["id"]
    assert r.headers["etag"] == '"1"'
    r = await api.client.get("/v1/artisans/me", headers=other_token)
    assert r.json()["display_name"] == "Bois Debout"

    r = await api.client.patch(
        "/v1/artisans/me",
        json={"labels": ["esus", "fabrique_a_paris"], "trades": ["glass", "ceramics"]},
        headers={**token, "If-Match": '"1"'},
    )
    assert r.status_code == 200, r.text
    assert r.headers["etag"] == '"2"'
    assert r.json()["trades"] == ["ceramics", "glass"]
    r = await api.client.patch(
        "/v1/artisans/me", json={"display_name": "Stale"}, headers={**token, "If-Match": '"1"'}
    )
    assert_problem(r, 412, '"2"')
    r = await api.client.patch("/v1/artisans/me", json={"siret": other["siret"]}, headers=token)
    assert_problem(r, 409, "SIRET")

    _, landlord = api.landlord()
    assert_problem(await api.client.get("/v1/artisans/me", headers=landlord), 403, "artisan")
    assert_problem(await api.client.get("/v1/artisans/me"), 401, "bearer token")
    assert_problem(await api.client.get(f"/v1/artisans/{other['id']}", headers=token), 403, "admin")
    r = await api.client.get(f"/v1/artisans/{other['id']}", headers=api.admin)
    assert r.json()["siret"] == other["siret"]

    events = await api.outbox(key=artisan["id"])
    assert [e.event_type for e in events] == [
        "leasing.artisan.registered.v1",
        "leasing.artisan.updated.v1",
    ]
    assert {e.topic for e in events} == {"leasing.artisan.events"}
    updated = events[1].envelope["data"]
    assert updated["changed"] == ["labels", "trades"]
    assert updated["artisan"]["contact_email"] == "camille@example.org"
    assert "siret" not in json.dumps(updated)


async def test_registering_links_the_profile_to_the_logged_in_verified_account(api: Api) -> None:
    body = {
        "display_name": "Camille Roux",
        "business_name": "Roux Céramique",
        "siret": siret(),
        "trades": ["ceramics"],
        "business_created_on": "2024-06-01",
        "legal_form": "micro_entreprise",
        "contact_email": "camille@example.org",
    }
    # nobody registers without logging in
    r = await api.client.post("/v1/artisans", json=body)
    assert_problem(r, 401, "bearer token")
    # a landlord's or an officer's token is no artisan account
    _, landlord = api.landlord()
    assert_problem(
        await api.client.post("/v1/artisans", json=body, headers=landlord), 403, "artisan"
    )
    officer = api.identities.headers(Role.OFFICER)
    assert_problem(
        await api.client.post("/v1/artisans", json=body, headers=officer), 403, "artisan"
    )
    # an account whose e-mail the provider has not verified
    unverified = api.identities.headers(Role.ARTISAN, email_verified=False)
    r = await api.client.post("/v1/artisans", json=body, headers=unverified)
    assert_problem(r, 403, "e-mail address is verified")
    assert await count(api, ArtisanProfile) == 0
    # the verified account: the profile takes its subject, and no token comes back
    subject, headers = api.artisan()
    r = await api.client.post("/v1/artisans", json=body, headers=headers)
    assert r.status_code == 201, r.text
    assert r.json()["id"] == subject
    assert "token" not in r.json()
    assert r.headers["location"] == "/v1/artisans/me"
    me = await api.client.get("/v1/artisans/me", headers=headers)
    assert me.json()["id"] == subject
    # once per account
    again = {**body, "siret": siret()}
    r = await api.client.post("/v1/artisans", json=again, headers=headers)
    assert_problem(r, 409, "already has an artisan profile", "PATCH /v1/artisans/me")
    assert await count(api, ArtisanProfile) == 1


def token_claims(headers: dict[str, str]) -> dict[str, Any]:
    """The claims of a bearer token the realm issued (read, not verified: the API verifies)."""
    payload = headers["Authorization"].removeprefix("Bearer ").split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


async def test_a_contact_address_is_verified_only_when_it_is_the_accounts_own(api: Api) -> None:
    """Notifications lets a profile take over a guest's e-mail alerts only when the identity
    provider verified its contact address: a typed address is not proof."""
    subject, headers = api.artisan()
    account_email = token_claims(headers)["email"]
    body = {
        "display_name": "Camille Roux",
        "business_name": "Roux Céramique",
        "siret": siret(),
        "trades": ["ceramics"],
        "business_created_on": "2024-06-01",
        "legal_form": "micro_entreprise",
        "contact_email": "someone.else@example.org",
    }
    r = await api.client.post("/v1/artisans", json=body, headers=headers)
    assert r.status_code == 201, r.text
    assert r.json()["contact_email_verified"] is False
    r = await api.client.patch(
        "/v1/artisans/me", json={"contact_email": account_email.upper()}, headers=headers
    )
    assert r.status_code == 200, r.text
    assert r.json()["contact_email_verified"] is True
    r = await api.client.patch(
        "/v1/artisans/me", json={"contact_email": "typed@example.org"}, headers=headers
    )
    assert r.json()["contact_email_verified"] is False
    events = await api.outbox(key=subject)
    assert [e.envelope["data"]["artisan"]["contact_email_verified"] for e in events] == [
        False,
        True,
        False,
    ]


async def test_a_city_officer_reads_allocation_records_and_writes_nothing(api: Api) -> None:
    landlord_id, owner = api.landlord()
    unit = await api.vacant_unit(landlord_id)
    _, alice = await api.register()
    app = await api.apply(alice, unit.unit_id)
    officer = api.identities.headers(Role.OFFICER)
    r = await api.client.get("/v1/applications", headers=officer)
    assert r.status_code == 200, r.text
    assert app["id"] in {a["id"] for a in r.json()["items"]}
    r = await api.client.get(f"/v1/applications/{app['id']}", headers=officer)
    assert r.status_code == 200, r.text
    r = await api.client.get(f"/v1/units/{unit.unit_id}/ranking", headers=officer)
    assert r.status_code == 200, r.text
    assert [e["application_id"] for e in r.json()["entries"]] == [app["id"]]
    r = await api.client.get(f"/v1/artisans/{app['artisan_id']}", headers=officer)
    assert r.status_code == 200, r.text
    assert (await api.client.get("/v1/leases", headers=officer)).status_code == 200
    # never a write
    assert_problem(await api.offer(officer, app["id"]), 403, "roles", "officer")
    r = await api.client.post(
        "/v1/applications",
        json={"unit_id": unit.unit_id, "project": "x" * 30},
        headers=officer,
    )
    assert_problem(r, 403, "roles", "officer")
    assert (await api.offer(owner, app["id"])).status_code == 201


BAD_REGISTRATIONS = [
    ({"siret": "73282932000075"}, "Luhn"),
    ({"siret": "1234"}, "siret"),
    ({"siret": "35600000012356"}, "La Poste"),
    ({"trades": ["Wood Work"]}, "trades"),
    ({"trades": []}, "trades"),
    ({"trades": ["glass", "glass"]}, "repeat"),
    ({"business_created_on": "2999-01-01"}, "future"),
    ({"legal_form": "kingdom"}, "legal_form"),
    ({"labels": ["best_in_show"]}, "labels"),
    ({"contact_email": "not-an-email"}, "contact_email"),
    ({"display_name": ""}, "display_name"),
    ({"password": "x"}, "password"),
]


async def test_bad_registrations_get_a_clear_422_and_write_nothing(api: Api) -> None:
    artisan, _ = await api.register()
    _, newcomer = api.artisan()
    before = await count(api, ArtisanProfile)
    good = {
        "display_name": "Camille Roux",
        "business_name": "Roux Céramique",
        "siret": siret(),
        "trades": ["ceramics"],
        "business_created_on": "2024-06-01",
        "legal_form": "micro_entreprise",
        "contact_email": "camille@example.org",
    }
    for override, fragment in BAD_REGISTRATIONS:
        r = await api.client.post("/v1/artisans", json={**good, **override}, headers=newcomer)
        body = assert_problem(r, 422, fragment)
        assert body["errors"], body
    r = await api.client.post(
        "/v1/artisans",
        content=b"{nope",
        headers={**newcomer, "content-type": "application/json"},
    )
    assert_problem(r, 422)
    # spaces as printed on a Kbis are fine; the same SIRET twice is not
    spaced = " ".join([artisan["siret"][:3], artisan["siret"][3:6], artisan["siret"][6:]])
    r = await api.client.post("/v1/artisans", json={**good, "siret": spaced}, headers=newcomer)
    assert_problem(r, 409, "SIRET")
    assert await count(api, ArtisanProfile) == before
    assert len(await api.outbox(topic="leasing.artisan.events")) == before


# Read model --------------------------------------------------------------------------------


async def test_units_come_from_inventory_events_and_stale_ones_are_ignored(api: Api) -> None:
    landlord_id, _ = api.landlord()
    unit = await api.vacant_unit(landlord_id, site_kind="ateliers_de_paris", surface_m2=40)

    r = await api.client.get(f"/v1/units/{unit.unit_id}")
    assert r.status_code == 200, r.text
    listing = r.json()
    assert listing["status"] == "available"
    assert listing["vacancy_id"] == unit.vacancy_id
    assert listing["version"] == 2
    assert listing["programme_ids"] == [
        "ateliers-de-paris-incubator",
        "economie-sociale-et-solidaire",
    ]
    r = await api.client.get("/v1/units", params={"landlord_id": landlord_id})
    assert [u["unit_id"] for u in r.json()["items"]] == [unit.unit_id]

    # an older snapshot (version 1, unavailable) arriving late changes nothing
    stale = FakeUnit(landlord_id=landlord_id, unit_id=unit.unit_id, site_id=unit.site_id)
    await api.feed(stale.registered())
    r = await api.client.get(f"/v1/units/{unit.unit_id}")
    assert r.json()["status"] == "available" and r.json()["version"] == 2

    await api.feed(*unit.close("reserved"))
    r = await api.client.get(f"/v1/units/{unit.unit_id}")
    assert r.json()["status"] == "reserved" and r.json()["vacancy_id"] is None
    r = await api.client.get("/v1/units", params={"landlord_id": landlord_id})
    assert r.json()["total"] == 0
    r = await api.client.get("/v1/units", params={"landlord_id": landlord_id, "status": "reserved"})
    assert r.json()["total"] == 1
    assert_problem(await api.client.get("/v1/units/nope"), 404, "inventory")
    r = await api.client.get("/v1/units", params={"status": "sold", "site_kind": "castle"})
    assert_problem(r, 422, "status", "site_kind")


# The allocation journey inside leasing --------------------------------------------------------


async def test_apply_rank_offer_accept_and_the_vacancy_closing(api: Api) -> None:
    landlord_id, landlord = api.landlord()
    unit = await api.vacant_unit(landlord_id, site_kind="hotel_industriel", surface_m2=100)
    # a SCOP with the label, against a young micro-entreprise without it
    coop, coop_token = await api.register(
        legal_form="scop", labels=["fabrique_a_paris"], trades=["ceramics"]
    )
    solo, solo_token = await api.register(legal_form="micro_entreprise", labels=[])
    coop_app = await api.apply(coop_token, unit.unit_id)
    solo_app = await api.apply(solo_token, unit.unit_id)
    assert coop_app["programme_id"] == "hotels-industriels-jeunes-artisans"
    assert coop_app["status"] == "submitted"
    assert coop_app["score"] > solo_app["score"]

    r = await api.client.get(f"/v1/units/{unit.unit_id}/ranking", headers=landlord)
    assert r.status_code == 200, r.text
    ranking = r.json()
    assert ranking["vacancy_id"] == unit.vacancy_id
    assert [e["application_id"] for e in ranking["entries"]] == [coop_app["id"], solo_app["id"]]
    first = ranking["entries"][0]
    assert first["rank"] == 1
    assert first["applicant"]["legal_form"] == "scop"
    points = {c["criterion_id"]: c["points"] for c in first["criteria"]}
    assert points["fabrique_a_paris"] == 25 and points["social_economy"] == 15
    assert sum(points.values()) == first["score"]

    r = await api.offer(landlord, coop_app["id"], monthly_rent_eur=1450.5)
    assert r.status_code == 201, r.text
    lease = r.json()
    assert lease["status"] == "offered" and lease["monthly_rent_eur"] == 1450.5
    assert r.headers["location"] == f"/v1/leases/{lease['id']}"
    r = await api.client.post(f"/v1/leases/{lease['id']}/accept", headers=coop_token)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "active" and r.json()["signed_at"]

    r = await api.client.get(f"/v1/applications/{coop_app['id']}", headers=coop_token)
    mine = r.json()
    assert mine["status"] == "accepted" and mine["lease_id"] == lease["id"]
    assert [(d["decision"], d["actor_role"]) for d in mine["decisions"]] == [
        ("offered", "landlord"),
        ("offer_accepted", "artisan"),
    ]

    # inventory marks the unit leased; its vacancy_closed closes the other application
    await api.feed(*unit.close("leased"))
    r = await api.client.get(f"/v1/applications/{solo_app['id']}", headers=solo_token)
    closed = r.json()
    assert closed["status"] == "closed"
    assert closed["decisions"][-1]["actor_role"] == "system"
    assert "now leased" in closed["decisions"][-1]["reason"]
    r = await api.client.get(f"/v1/units/{unit.unit_id}/ranking", headers=landlord)
    assert r.json()["entries"] == []

    lease_events = await api.outbox(key=unit.unit_id, topic="leasing.lease.events")
    assert [e.event_type for e in lease_events] == [
        "leasing.lease.offered.v1",
        "leasing.lease.signed.v1",
    ]
    signed = lease_events[1].envelope["data"]
    assert signed["lease"]["unit_id"] == unit.unit_id
    assert signed["lease"]["landlord_id"] == landlord_id
    assert signed["lease"]["artisan_id"] == coop["id"]
    assert signed["lease"]["monthly_rent_eur"] == 1450.5
    decided = [
        e.envelope["data"]
        for e in await api.outbox(key=solo_app["id"])
        if e.event_type == "leasing.application.decided.v1"
    ]
    assert [(d["decision"], d["artisan_id"]) for d in decided] == [("closed", solo["id"])]


async def test_each_applicant_reads_its_own_rank_as_the_ranking_orders_it(api: Api) -> None:
    landlord_id, landlord = api.landlord()
    unit = await api.vacant_unit(landlord_id, site_kind="hotel_industriel", surface_m2=100)
    other = await api.vacant_unit(landlord_id, site_kind="hotel_industriel", surface_m2=80)
    # submitted in this order; the SCOP with the label outranks both micro-entreprises
    _, first_token = await api.register(legal_form="micro_entreprise", labels=[])
    _, second_token = await api.register(legal_form="micro_entreprise", labels=[])
    _, coop_token = await api.register(legal_form="scop", labels=["fabrique_a_paris"])
    first_app = await api.apply(first_token, unit.unit_id)
    assert (first_app["rank"], first_app["ranked_among"]) == (1, 1)
    second_app = await api.apply(second_token, unit.unit_id)
    coop_app = await api.apply(coop_token, unit.unit_id)
    assert (coop_app["rank"], coop_app["ranked_among"]) == (1, 3)
    await api.apply(first_token, other.unit_id)  # another vacancy: ranked apart

    r = await api.client.get(f"/v1/units/{unit.unit_id}/ranking", headers=landlord)
    order = [e["application_id"] for e in r.json()["entries"]]
    assert order == [coop_app["id"], first_app["id"], second_app["id"]]
    mine_of = ((coop_token, coop_app), (first_token, first_app), (second_token, second_app))
    for token, app in mine_of:
        r = await api.client.get(f"/v1/applications/{app['id']}", headers=token)
        mine = r.json()
        assert (mine["rank"], mine["ranked_among"]) == (order.index(app["id"]) + 1, 3), mine
    r = await api.client.get("/v1/applications", headers=first_token)
    ranks = {a["unit_id"]: (a["rank"], a["ranked_among"]) for a in r.json()["items"]}
    assert ranks == {unit.unit_id: (2, 3), other.unit_id: (1, 1)}

    # a withdrawn application leaves the ranking: it has no rank, the others move up
    r = await api.client.post(f"/v1/applications/{coop_app['id']}/withdraw", headers=coop_token)
    assert r.status_code == 200, r.text
    assert r.json()["rank"] is None and r.json()["ranked_among"] is None
    r = await api.client.get(f"/v1/applications/{second_app['id']}", headers=second_token)
    assert (r.json()["rank"], r.json()["ranked_among"]) == (2, 2)
    # an offered application is still in the running, and keeps its place
    assert (await api.offer(landlord, first_app["id"])).status_code == 201
    r = await api.client.get(f"/v1/applications/{first_app['id']}", headers=first_token)
    assert r.json()["status"] == "offered"
    assert (r.json()["rank"], r.json()["ranked_among"]) == (1, 2)


async def test_an_ineligible_artisan_is_told_every_rule_it_fails(api: Api) -> None:
    landlord_id, _ = api.landlord()
    unit = await api.vacant_unit(
        landlord_id, site_kind="ateliers_de_paris", allowed_trades=["ceramics"]
    )
    _, token = await api.register(
        legal_form="sarl", business_created_on="2012-01-01", trades=["leather"]
    )
    r = await api.client.post(
        "/v1/applications",
        json={"unit_id": unit.unit_id, "project": "Leather goods for the neighbourhood."},
        headers=token,
    )
    body = assert_problem(r, 422, "not eligible", "less than 3 years old", "legal form")
    assert body["title"] == "Not eligible"
    assert [(e["programme_id"], e["rule"]) for e in body["errors"]] == [
        ("ateliers-de-paris-incubator", "max_business_age_years"),
        ("ateliers-de-paris-incubator", "requires_trade_match"),
        ("economie-sociale-et-solidaire", "allowed_legal_forms"),
    ]
    assert await count(api, Application) == 0

    r = await api.client.get(f"/v1/units/{unit.unit_id}/eligibility", headers=token)
    verdicts = {v["programme_id"]: v for v in r.json()["programmes"]}
    assert not any(v["eligible"] for v in verdicts.values())
    assert len(verdicts["ateliers-de-paris-incubator"]["failures"]) == 2
    # asking for a programme that does not cover the unit says so
    r = await api.client.post(
        "/v1/applications",
        json={
            "unit_id": unit.unit_id,
            "programme_id": "hotels-industriels-jeunes-artisans",
            "project": "Leather goods for the neighbourhood.",
        },
        headers=token,
    )
    assert_problem(r, 422, "site_kinds")


async def test_one_application_per_artisan_per_vacancy(api: Api) -> None:
    landlord_id, _ = api.landlord()
    unit = await api.vacant_unit(landlord_id)
    _, token = await api.register()
    app = await api.apply(token, unit.unit_id)
    body = {"unit_id": unit.unit_id, "project": "A second try at the same vacancy."}

    assert_problem(await api.client.post("/v1/applications", json=body, headers=token), 409)
    r = await api.client.post(
        f"/v1/applications/{app['id']}/withdraw", json={"reason": "Found elsewhere"}, headers=token
    )
    assert r.status_code == 200 and r.json()["status"] == "withdrawn"
    assert_problem(await api.client.post("/v1/applications", json=body, headers=token), 409)
    assert_problem(
        await api.client.post(f"/v1/applications/{app['id']}/withdraw", headers=token), 409
    )
    withdrawn = await api.outbox(key=app["id"])
    assert withdrawn[-1].event_type == "leasing.application.withdrawn.v1"

    await api.feed(*unit.close("unavailable"))
    assert_problem(
        await api.client.post("/v1/applications", json=body, headers=token), 409, "not open"
    )
    await api.feed(*unit.open())  # a new vacancy: a new chance
    assert (await api.client.post("/v1/applications", json=body, headers=token)).status_code == 201


async def test_what_the_fuzzer_found_is_answered_as_documented(api: Api) -> None:
    landlord_id, landlord = api.landlord()
    unit = await api.vacant_unit(landlord_id)
    _, token = await api.register()
    body = {"unit_id": unit.unit_id, "project": "Stoneware for Paris restaurants, two kilns."}

    # an unknown programme is a missing resource, like an unknown unit
    r = await api.client.post(
        "/v1/applications", json={**body, "programme_id": "no-such-programme"}, headers=token
    )
    assert_problem(r, 404, "no-such-programme", "GET /v1/programmes")
    app = await api.apply(token, unit.unit_id)
    # the rent is a number or a plain decimal string, as documented: not "3e2"
    r = await api.offer(landlord, app["id"], monthly_rent_eur="3e2")
    assert_problem(r, 422, "monthly_rent_eur must be a number", '"1250.50"')
    # a SIRET is 14 digits however it is spaced (the schema's pattern says so)
    r = await api.client.post("/v1/artisans", json={"siret": "0" * 19}, headers=token)
    assert_problem(r, 422, "siret")
    assert (await api.offer(landlord, app["id"], monthly_rent_eur="300.00")).status_code == 201


async def test_idempotency_key_replays_an_application(api: Api) -> None:
    landlord_id, _ = api.landlord()
    unit = await api.vacant_unit(landlord_id)
    _, token = await api.register()
    body = {"unit_id": unit.unit_id, "project": "Stoneware for Paris restaurants."}
    headers = {**token, "Idempotency-Key": "apply-1"}
    first, second = await asyncio.gather(
        api.client.post("/v1/applications", json=body, headers=headers),
        api.client.post("/v1/applications", json=body, headers=headers),
    )
    assert {first.status_code, second.status_code} == {201}, [first.text, second.text]
    assert first.json()["id"] == second.json()["id"]
    assert await count(api, Application) == 1


# Ownership ---------------------------------------------------------------------------------


async def test_ownership_matrix(api: Api) -> None:
    owner_id, owner = api.landlord()
    _, stranger = api.landlord()
    unit = await api.vacant_unit(owner_id)
    _, alice = await api.register()
    _, bob = await api.register()
    app = await api.apply(alice, unit.unit_id)
    path = f"/v1/applications/{app['id']}"

    # another artisan cannot see, withdraw or answer Alice's application or offer
    assert_problem(await api.client.get(path, headers=bob), 404)
    assert_problem(await api.client.post(f"{path}/withdraw", headers=bob), 404)
    assert (await api.client.get("/v1/applications", headers=bob)).json()["total"] == 0
    assert (await api.client.get("/v1/applications", headers=alice)).json()["total"] == 1
    # another landlord cannot rank, reject or offer on the unit
    assert_problem(
        await api.client.get(f"/v1/units/{unit.unit_id}/ranking", headers=stranger),
        403,
        "another landlord",
    )
    assert_problem(
        await api.client.post(
            f"{path}/reject", json={"reason": "Not my unit but still"}, headers=stranger
        ),
        403,
        "another landlord",
    )
    assert_problem(await api.offer(stranger, app["id"]), 403, "another landlord")
    assert_problem(await api.client.get(path, headers=stranger), 404)
    assert (await api.client.get("/v1/applications", headers=stranger)).json()["total"] == 0
    # artisans cannot act as landlords, and nobody acts without a token
    assert_problem(await api.offer(alice, app["id"]), 403, "roles")
    assert_problem(await api.client.get(f"/v1/units/{unit.unit_id}/ranking", headers=alice), 403)
    for method, url, body in [
        ("POST", "/v1/applications", {"unit_id": unit.unit_id, "project": "x" * 30}),
        ("GET", "/v1/applications", None),
        ("POST", f"{path}/offer", {}),
        ("POST", f"{path}/withdraw", None),
        ("GET", f"/v1/units/{unit.unit_id}/eligibility", None),
        ("PATCH", "/v1/artisans/me", {}),
        ("GET", "/v1/leases", None),
    ]:
        r = await api.client.request(method, url, json=body)
        assert_problem(r, 401, "bearer token")
    forged = {"Authorization": alice["Authorization"].rsplit(".", 1)[0] + ".Zm9yZ2Vk"}
    assert_problem(await api.client.get("/v1/applications", headers=forged), 401, "altered")

    # the owner offers; Bob cannot accept Alice's offer; the stranger cannot see the lease
    r = await api.offer(owner, app["id"])
    assert r.status_code == 201, r.text
    lease_id = r.json()["id"]
    assert_problem(await api.client.post(f"/v1/leases/{lease_id}/accept", headers=bob), 404)
    assert_problem(await api.client.get(f"/v1/leases/{lease_id}", headers=stranger), 404)
    assert (await api.client.get(f"/v1/leases/{lease_id}", headers=alice)).status_code == 200
    assert (await api.client.get(f"/v1/leases/{lease_id}", headers=api.admin)).status_code == 200
    assert (await api.client.get("/v1/leases", headers=bob)).json()["total"] == 0


# Offers ---------------------------------------------------------------------------------------


async def test_offer_terms_are_checked_and_nothing_is_half_written(api: Api) -> None:
    landlord_id, landlord = api.landlord()
    # incubator: cap 120 €/m²/year, 12 months; 40 m² -> at most 400 € a month
    unit = await api.vacant_unit(landlord_id, site_kind="ateliers_de_paris", surface_m2=40)
    _, token = await api.register()
    app = await api.apply(token, unit.unit_id)
    _, other = await api.register()
    other_app = await api.apply(other, unit.unit_id)
    start = today()
    cases = [
        ({"monthly_rent_eur": 400.01}, 422, "400.00"),
        ({"end_date": (start + timedelta(days=400)).isoformat()}, 422, "12 months"),
        ({"start_date": (start - timedelta(days=1)).isoformat()}, 422, "past"),
        ({"end_date": start.isoformat()}, 422, "after start_date"),
        ({"monthly_rent_eur": 100.123}, 422, "monthly_rent_eur"),
        ({"monthly_rent_eur": -5}, 422, "monthly_rent_eur"),
        ({"rent": 5}, 422, "rent"),
    ]
    good_end = (start + timedelta(days=300)).isoformat()
    for override, status, fragment in cases:
        terms = {"end_date": good_end, "monthly_rent_eur": 300, **override}
        r = await api.offer(landlord, app["id"], **terms)
        assert_problem(r, status, fragment)
    assert await count(api, Lease) == 0
    r = await api.client.get(f"/v1/applications/{app['id']}", headers=token)
    assert r.json()["status"] == "submitted" and r.json()["decisions"] == []

    r = await api.offer(landlord, app["id"], monthly_rent_eur=400, end_date=good_end)
    assert r.status_code == 201, r.text
    r = await api.offer(landlord, other_app["id"], monthly_rent_eur=300, end_date=good_end)
    assert_problem(r, 409, "open offer")
    assert_problem(
        await api.offer(landlord, app["id"], monthly_rent_eur=300, end_date=good_end), 409
    )
    assert_problem(await api.offer(landlord, "no-such-application"), 404)


async def test_decline_reject_and_withdraw_free_the_unit_for_the_next_offer(api: Api) -> None:
    landlord_id, landlord = api.landlord()
    unit = await api.vacant_unit(landlord_id)
    people = [await api.register() for _ in range(4)]
    apps = [await api.apply(token, unit.unit_id) for _, token in people]

    # declined by the artisan: the offer passes to the next in rank, on the same terms
    lease = (await api.offer(landlord, apps[0]["id"])).json()
    r = await api.client.post(
        f"/v1/leases/{lease['id']}/decline",
        json={"reason": "Too far from home"},
        headers=people[0][1],
    )
    assert r.status_code == 200 and r.json()["status"] == "declined"
    assert_problem(
        await api.client.post(f"/v1/leases/{lease['id']}/accept", headers=people[0][1]),
        409,
        "declined",
    )
    r = await api.client.get(f"/v1/applications/{apps[1]['id']}", headers=people[1][1])
    assert r.json()["status"] == "offered" and r.json()["decisions"][-1]["actor_role"] == "system"
    passed = (await api.client.get(f"/v1/leases/{r.json()['lease_id']}", headers=landlord)).json()
    assert passed["monthly_rent_eur"] == lease["monthly_rent_eur"]
    assert passed["end_date"] == lease["end_date"]
    # rejected by the landlord while offered: the offer is taken back
    lease = passed
    r = await api.client.post(
        f"/v1/applications/{apps[1]['id']}/reject",
        json={"reason": "The project needs a loading dock", "ground": "technical_unfit"},
        headers=landlord,
    )
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    assert (await api.client.get(f"/v1/leases/{lease['id']}", headers=landlord)).json()[
        "status"
    ] == "withdrawn"
    assert_problem(
        await api.client.post(
            f"/v1/applications/{apps[1]['id']}/reject", json={"reason": "short"}, headers=landlord
        ),
        422,
        "reason",
    )
    # withdrawn by the artisan while offered
    lease = (await api.offer(landlord, apps[2]["id"])).json()
    r = await api.client.post(f"/v1/applications/{apps[2]['id']}/withdraw", headers=people[2][1])
    assert r.json()["status"] == "withdrawn"
    # and the fourth can still get an offer
    r = await api.offer(landlord, apps[3]["id"])
    assert r.status_code == 201, r.text

    r = await api.client.get(f"/v1/applications/{apps[1]['id']}", headers=people[1][1])
    decisions = r.json()["decisions"]
    assert [d["decision"] for d in decisions] == ["offered", "rejected"]
    assert decisions[1]["reason"] == "The project needs a loading dock"
    assert decisions[1]["actor_id"] == landlord_id
    assert decisions[1]["ground"] == "technical_unfit"
    r = await api.client.get(
        f"/v1/units/{unit.unit_id}/ranking", params={"include_closed": True}, headers=landlord
    )
    assert {e["status"] for e in r.json()["entries"]} == {
        "declined",
        "rejected",
        "withdrawn",
        "offered",
    }


async def test_signed_leases_end_and_renew_within_their_programme(api: Api) -> None:
    landlord_id, landlord = api.landlord()
    _, stranger = api.landlord()
    unit = await api.vacant_unit(landlord_id, site_kind="pepiniere", surface_m2=30)
    artisan, token = await api.register()
    app = await api.apply(token, unit.unit_id)
    end = today() + timedelta(days=200)
    lease = (
        await api.offer(landlord, app["id"], monthly_rent_eur=250, end_date=end.isoformat())
    ).json()
    assert_problem(
        await api.client.post(
            f"/v1/leases/{lease['id']}/end", json={"reason": "x" * 5}, headers=token
        ),
        409,
        "offered",
    )
    await api.client.post(f"/v1/leases/{lease['id']}/accept", headers=token)

    # the incubator renews once, by up to 12 more months
    renew = f"/v1/leases/{lease['id']}/renew"
    too_far = (end + timedelta(days=400)).isoformat()
    assert_problem(await api.client.post(renew, json={"end_date": too_far}, headers=landlord), 422)
    assert_problem(await api.client.post(renew, json={"end_date": too_far}, headers=stranger), 403)
    new_end = (end + timedelta(days=300)).isoformat()
    r = await api.client.post(renew, json={"end_date": new_end}, headers=landlord)
    assert r.status_code == 200, r.text
    assert r.json()["renewals"] == 1 and r.json()["end_date"] == new_end
    r = await api.client.post(
        renew, json={"end_date": (end + timedelta(days=320)).isoformat()}, headers=landlord
    )
    assert_problem(r, 409, "1 renewal")

    r = await api.client.post(
        f"/v1/leases/{lease['id']}/end",
        json={"reason": "Moving to a bigger workshop", "terminate": True},
        headers=token,
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "terminated" and r.json()["ended_on"] == today().isoformat()
    events = await api.outbox(key=unit.unit_id, topic="leasing.lease.events")
    assert [e.event_type.rsplit(".", 2)[1] for e in events] == [
        "offered",
        "signed",
        "renewed",
        "ended",
    ]
    ended = events[-1].envelope["data"]
    assert ended["ending"] == "terminated" and ended["lease"]["artisan_id"] == artisan["id"]


async def test_lease_events_reach_the_broker_keyed_by_unit(api: Api) -> None:
    landlord_id, landlord = api.landlord()
    unit = await api.vacant_unit(landlord_id)
    _, token = await api.register()
    app = await api.apply(token, unit.unit_id)
    lease = (await api.offer(landlord, app["id"])).json()
    await api.client.post(f"/v1/leases/{lease['id']}/accept", headers=token)

    records = await read_events(
        api.settings.kafka_bootstrap, "leasing.lease.events", unit.unit_id, expect=2
    )
    assert [headers_of(r)["ce_type"] for r in records] == [
        "leasing.lease.offered.v1",
        "leasing.lease.signed.v1",
    ]
    headers = headers_of(records[1])
    assert headers["ce_source"] == "/fabrique/leasing"
    assert headers["ce_subject"] == unit.unit_id
    signed = data_of(records[1])
    assert signed["lease"]["lease_id"] == lease["id"]
    assert signed["lease"]["vacancy_id"] == unit.vacancy_id


async def test_metrics_show_applications_and_offers(api: Api) -> None:
    landlord_id, landlord = api.landlord()
    unit = await api.vacant_unit(landlord_id)
    _, token = await api.register()
    app = await api.apply(token, unit.unit_id)
    await api.offer(landlord, app["id"])

    async def scraped() -> str | None:
        text = (await api.client.get("/metrics")).text
        return text if 'leasing_applications{status="offered"} 1.0' in text else None

    text = await eventually(scraped, timeout=15)
    assert "leasing_offers_pending 1.0" in text
    assert "leasing_vacancy_to_signed_lease_seconds_bucket" in text
    assert 'http_requests_total{method="POST",route="/v1/applications"' in text


async def test_unanswered_offers_expire_and_leases_end_at_their_end_date(
    database_url: str, kafka_broker: Any
) -> None:
    # a 2-second offer; the background sweeper is slowed down so both paths can be watched
    settings = make_settings(
        database_url, kafka_broker.bootstrap, offer_ttl_hours=2 / 3600, sweep_interval_s=3600
    )
    async with started_app(settings) as api:
        assert "sweeper" in {t.get_name() for t in api.app.state.runtime.tasks}
        landlord_id, landlord = api.landlord()
        unit = await api.vacant_unit(landlord_id)
        (_, late), (_, slow), (_, quick) = [await api.register() for _ in range(3)]
        late_app = await api.apply(late, unit.unit_id)
        slow_app = await api.apply(slow, unit.unit_id)
        quick_app = await api.apply(quick, unit.unit_id)

        # accepting after the deadline expires the offer on the spot
        lease = (await api.offer(landlord, late_app["id"])).json()
        await asyncio.sleep(2.1)
        r = await api.client.post(f"/v1/leases/{lease['id']}/accept", headers=late)
        assert_problem(r, 409, "expired")
        r = await api.client.get(f"/v1/applications/{late_app['id']}", headers=late)
        assert r.json()["status"] == "expired"
        assert r.json()["decisions"][-1]["actor_role"] == "system"

        # the expired offer passed to the next in rank; the sweeper closes offers nobody answers
        r = await api.client.get(f"/v1/applications/{slow_app['id']}", headers=slow)
        assert r.json()["status"] == "offered", r.text
        lease = {"id": r.json()["lease_id"]}
        await asyncio.sleep(2.1)
        assert await leases.sweep(api.sessions) == 1
        r = await api.client.get(f"/v1/leases/{lease['id']}", headers=slow)
        assert r.json()["status"] == "expired"

        # and ends signed leases whose end date has passed (the offer passed on again)
        r = await api.client.get(f"/v1/applications/{quick_app['id']}", headers=quick)
        assert r.json()["status"] == "offered", r.text
        lease = {"id": r.json()["lease_id"]}
        r = await api.client.post(f"/v1/leases/{lease['id']}/accept", headers=quick)
        assert r.status_code == 200, r.text
        async with api.sessions() as session, session.begin():
            row = await session.get(Lease, lease["id"])
            row.start_date = today() - timedelta(days=400)
            row.end_date = today() - timedelta(days=1)
        assert await leases.sweep(api.sessions) == 1
        r = await api.client.get(f"/v1/leases/{lease['id']}", headers=quick)
        assert r.json()["status"] == "ended"
        assert r.json()["ended_on"] == (today() - timedelta(days=1)).isoformat()
        ended = (await api.outbox(key=unit.unit_id, topic="leasing.lease.events"))[-1]
        assert ended.event_type == "leasing.lease.ended.v1"
        assert ended.envelope["data"]["ending"] == "ended"
