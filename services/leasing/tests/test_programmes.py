"""Programmes editable by officers and admins: every change a new catalogue version, stored and
published; If-Match on the catalogue version; the rule language checked on the way in; the
catalogue served from the database, cached, and seen by every replica (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import httpx

from fabkit.auth import Role
from fabkit.db import make_engine, make_session_factory
from fabkit.testing import assert_problem
from leasing import repository as repo
from leasing.eligibility import Catalogue
from leasing.programmes import load_catalogue
from leasing.service.programmes import CatalogueCache, seed_programmes

from .conftest import Api, eventually, make_settings, started_app

INCUBATOR = "ateliers-de-paris-incubator"
ESS = "economie-sociale-et-solidaire"


def officer(api: Api) -> dict[str, str]:
    return api.identities.headers(Role.OFFICER, "officer-1")


async def catalogue(api: Api) -> tuple[dict[str, Any], str]:
    r = await api.client.get("/v1/programmes")
    assert r.status_code == 200, r.text
    return r.json(), r.headers["ETag"]


async def programme(api: Api, programme_id: str) -> dict[str, Any]:
    r = await api.client.get(f"/v1/programmes/{programme_id}")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def put(
    api: Api, body: dict[str, Any], etag: str | None, headers: dict[str, str] | None = None
) -> httpx.Response:
    sent = {**(headers if headers is not None else officer(api))}
    if etag is not None:
        sent["If-Match"] = etag
    return await api.client.put(f"/v1/programmes/{body['id']}", json=body, headers=sent)


def new_programme(programme_id: str = "ateliers-bois-paris-est") -> dict[str, Any]:
    return {
        "id": programme_id,
        "name": "Ateliers bois Paris Est",
        "site_kinds": ["hotel_activites"],
        "rules": {"rent_cap_eur_m2_year": 160.0, "max_residency_months": 36},
        "scoring": [
            {"id": "trade_fit", "kind": "trade_match", "label": "Trade allowed", "points": 50}
        ],
        "note": "Voted on 12 November.",
    }


async def programme_events(api: Api) -> list[Any]:
    return await api.outbox(topic="leasing.programme.events")


async def test_the_file_seeds_version_1_served_and_stored(api: Api) -> None:
    body, etag = await catalogue(api)
    assert (body["version"], etag) == (1, '"1"')
    assert [p["id"] for p in body["programmes"]] == [p.id for p in load_catalogue().programmes]
    first = body["programmes"][0]
    assert (first["call_days"], first["appeal_days"]) == (21, 60)
    assert {g["id"] for g in first["out_of_rank_grounds"]} >= {"unreachable", "jury_decision"}

    versions = (await api.client.get("/v1/programmes/versions")).json()
    assert versions["total"] == 1
    assert versions["items"][0]["created_by"] == "seed"
    assert versions["items"][0]["config_hash"] == body["config_hash"]
    stored = (await api.client.get("/v1/programmes/versions/1")).json()
    assert stored["programmes"] == body["programmes"]
    assert_problem(await api.client.get("/v1/programmes/versions/2"), 404, "version 2")
    assert len(await programme_events(api)) == 3


async def test_an_officer_replaces_a_programme_as_a_new_published_version(api: Api) -> None:
    before, etag = await catalogue(api)
    changed = await programme(api, INCUBATOR)  # what GET answers goes back as it is
    changed["rules"]["rent_cap_eur_m2_year"] = 110.0
    changed["call_days"] = 28
    changed["note"] = "Rent cap lowered by the council's deliberation 2026 DAE 12."

    r = await put(api, changed, etag)
    assert r.status_code == 200, r.text
    assert r.headers["ETag"] == '"2"'
    assert r.json()["rules"]["rent_cap_eur_m2_year"] == 110.0

    after, etag2 = await catalogue(api)
    assert (after["version"], etag2) == (2, '"2"')
    assert after["config_hash"] != before["config_hash"]
    assert after["programmes"][0]["call_days"] == 28
    assert after["programmes"][1:] == before["programmes"][1:]

    summary = (await api.client.get("/v1/programmes/versions")).json()["items"][0]
    assert summary["version"] == 2
    assert summary["created_by"] == "officer-1"
    assert summary["note"] == changed["note"]
    old = (await api.client.get("/v1/programmes/versions/1")).json()
    assert old["programmes"] == before["programmes"]

    async with api.sessions() as session:
        v1 = await repo.get_catalogue_version(session, 1)
        v2 = await repo.get_catalogue_version(session, 2)
        assert await repo.get_catalogue_version(session, 3) is None
    assert v1 is not None and v2 is not None
    assert v1.programmes[0].rules.rent_cap_eur_m2_year == 120.0
    assert v2.programmes[0].rules.rent_cap_eur_m2_year == 110.0

    events = await programme_events(api)
    new = events[3:]
    assert [m.key for m in new] == [p["id"] for p in after["programmes"]]
    data = new[0].envelope["data"]
    assert data["catalogue"]["version"] == 2
    assert data["catalogue"]["config_hash"] == after["config_hash"]
    assert data["programme"]["rules"]["rent_cap_eur_m2_year"] == 110.0

    # the same body again changes nothing: no version, no event
    again = await put(api, changed, '"2"')
    assert again.status_code == 200 and again.headers["ETag"] == '"2"'
    assert len(await programme_events(api)) == len(events)


async def test_only_officers_and_admins_change_programmes(api: Api) -> None:
    body, etag = await catalogue(api)
    changed = body["programmes"][0]
    _, artisan = api.artisan()
    _, landlord = api.landlord()
    for headers in (artisan, landlord):
        assert_problem(await put(api, changed, etag, headers), 403, "officer")
        r = await api.client.post("/v1/programmes", json=new_programme(), headers=headers)
        assert_problem(r, 403, "officer")
        r = await api.client.delete(f"/v1/programmes/{ESS}", headers={**headers, "If-Match": etag})
        assert_problem(r, 403, "officer")
    assert (await put(api, changed, etag, {})).status_code == 401
    assert (await api.client.post("/v1/programmes", json=new_programme())).status_code == 401
    changed["rules"]["renewable_times"] = 2
    r = await put(api, changed, etag, api.admin)
    assert r.status_code == 200, r.text
    assert (await catalogue(api))[0]["version"] == 2


async def test_if_match_keeps_two_officers_from_overwriting_each_other(api: Api) -> None:
    _, etag = await catalogue(api)
    base = await programme(api, INCUBATOR)
    assert_problem(await put(api, base, None), 428, "If-Match")

    first, second = copy.deepcopy(base), copy.deepcopy(base)
    first["rules"]["rent_cap_eur_m2_year"] = 100.0
    second["rules"]["rent_cap_eur_m2_year"] = 130.0
    answers = await asyncio.gather(put(api, first, etag), put(api, second, etag))
    codes = sorted(r.status_code for r in answers)
    assert codes[0] == 200, [r.text for r in answers]
    assert codes[1] in (409, 412), [r.text for r in answers]
    won = next(r for r in answers if r.status_code == 200).json()
    body, etag2 = await catalogue(api)
    assert etag2 == '"2"' and body["version"] == 2
    assert body["programmes"][0]["rules"] == won["rules"]

    stale = await put(api, second, etag)
    assert_problem(stale, 412, 'current ETag is "2"')
    r = await api.client.delete(f"/v1/programmes/{ESS}", headers=officer(api))
    assert_problem(r, 428, "If-Match")


async def test_a_rule_breaking_the_language_is_a_422_naming_the_field(api: Api) -> None:
    before, etag = await catalogue(api)
    good = await programme(api, INCUBATOR)

    too_many = copy.deepcopy(good)
    too_many["scoring"][0]["points"] = 300
    r = await put(api, too_many, etag)
    assert_problem(r, 422)
    assert any(e["field"] == "body.scoring.0.points" for e in r.json()["errors"]), r.json()

    # a number or a flag written as something else is refused, not coerced (false is not 0)
    for field, wrong in (("renewable_times", False), ("max_residency_months", "36")):
        bad_type = copy.deepcopy(good)
        bad_type["rules"][field] = wrong
        r = await put(api, bad_type, etag)
        assert_problem(r, 422)
        assert any(e["field"] == f"body.rules.{field}" for e in r.json()["errors"]), r.json()
    bad_flag = copy.deepcopy(good)
    bad_flag["rules"]["requires_trade_match"] = "yes"
    assert_problem(await put(api, bad_flag, etag), 422)

    missing_param = copy.deepcopy(good)
    del missing_param["scoring"][1]["labels"]
    assert_problem(await put(api, missing_param, etag), 422, "fabrique_a_paris", "needs labels")

    over_100 = copy.deepcopy(good)
    over_100["scoring"][0]["points"] = 90
    over_100.pop("max_points")
    assert_problem(await put(api, over_100, etag), 422, "up to 160 points", "the most is 100")

    wrong_total = copy.deepcopy(good)
    wrong_total["max_points"] = 12
    assert_problem(await put(api, wrong_total, etag), 422, "max_points is the sum")

    unknown_kind = copy.deepcopy(good)
    unknown_kind["site_kinds"] = ["castle"]
    assert_problem(await put(api, unknown_kind, etag), 422, "unknown site kinds")

    twin_grounds = copy.deepcopy(good)
    twin_grounds["out_of_rank_grounds"] = [
        {"id": "unreachable", "label": "Could not be reached"},
        {"id": "unreachable", "label": "Not reachable"},
    ]
    assert_problem(await put(api, twin_grounds, etag), 422, "out-of-rank grounds share an id")

    renamed = copy.deepcopy(good)
    renamed["id"] = "another-id"
    r = await api.client.put(
        f"/v1/programmes/{INCUBATOR}", json=renamed, headers={**officer(api), "If-Match": etag}
    )
    assert_problem(r, 422, "cannot change")

    absent = new_programme("not-in-the-catalogue")
    assert_problem(await put(api, absent, etag), 404, "POST /v1/programmes")

    after, etag_after = await catalogue(api)
    assert (after, etag_after) == (before, etag)  # nothing half-written
    assert len(await programme_events(api)) == 3


async def test_adding_and_retiring_programmes(api: Api) -> None:
    r = await api.client.post("/v1/programmes", json=new_programme(), headers=officer(api))
    assert r.status_code == 201, r.text
    assert r.headers["Location"] == "/v1/programmes/ateliers-bois-paris-est"
    assert r.headers["ETag"] == '"2"'
    added = r.json()
    assert added["max_points"] == 50 and added["call_days"] == 21  # defaults filled in
    assert len(added["out_of_rank_grounds"]) >= 4
    again = await api.client.post("/v1/programmes", json=new_programme(), headers=officer(api))
    assert_problem(again, 409, "already exists")

    body, etag = await catalogue(api)
    assert body["programmes"][-1]["id"] == "ateliers-bois-paris-est"
    r = await api.client.delete(
        f"/v1/programmes/{ESS}?note=Merged%20into%20the%20others",
        headers={**officer(api), "If-Match": etag},
    )
    assert r.status_code == 204, r.text
    assert r.headers["ETag"] == '"3"'
    assert_problem(await api.client.get(f"/v1/programmes/{ESS}"), 404)
    ids = [p["id"] for p in (await catalogue(api))[0]["programmes"]]
    assert ESS not in ids and len(ids) == 3

    last = (await programme_events(api))[-1].envelope["data"]
    assert last["catalogue"]["version"] == 3
    assert last["catalogue"]["programme_ids"] == ids  # the retired one is left out
    assert (await api.client.get("/v1/programmes/versions/2")).json()["programmes"][2]["id"] == ESS

    # down to the last programme, which cannot go
    for programme_id in ids[:-1]:
        _, etag = await catalogue(api)
        r = await api.client.delete(
            f"/v1/programmes/{programme_id}", headers={**officer(api), "If-Match": etag}
        )
        assert r.status_code == 204, r.text
    _, etag = await catalogue(api)
    r = await api.client.delete(
        f"/v1/programmes/{ids[-1]}", headers={**officer(api), "If-Match": etag}
    )
    assert_problem(r, 409, "only programme")


async def test_a_change_in_one_replica_is_seen_by_another_within_the_ttl(
    database_url: str, kafka_broker: Any
) -> None:
    settings = make_settings(database_url, kafka_broker.bootstrap)
    async with (
        started_app(settings.model_copy(update={"catalogue_ttl_s": 0.3})) as a,
        started_app(settings.model_copy(update={"catalogue_ttl_s": 0.3})) as b,
        started_app(settings.model_copy(update={"catalogue_ttl_s": 300.0})) as slow,
    ):
        assert len(await programme_events(a)) == 3  # three replicas, seeded once
        assert (await catalogue(slow))[0]["version"] == 1
        changed = await programme(a, INCUBATOR)
        changed["rules"]["max_residency_months"] = 18
        assert (await put(a, changed, '"1"')).status_code == 200
        assert (await catalogue(a))[0]["version"] == 2  # the writer at once

        async def b_sees_it() -> bool:
            return (await programme(b, INCUBATOR))["rules"]["max_residency_months"] == 18

        await eventually(b_sees_it, timeout=5)
        # a replica whose TTL has not run out still serves what it holds
        assert (await catalogue(slow))[0]["version"] == 1


async def test_the_cache_reads_the_body_only_when_the_version_moves(api: Api) -> None:
    now = [0.0]
    body = {k: v for k, v in new_programme().items() if k != "note"}
    fallback = Catalogue.model_validate({"programmes": [body]})
    cache = CatalogueCache(api.app.state.runtime.read_sessions, fallback, 10.0, lambda: now[0])
    first = await cache.current()
    assert first.version == 1 and first.catalogue.get(INCUBATOR) is not None

    changed = await programme(api, INCUBATOR)
    changed["rules"]["renewable_times"] = 3
    assert (await put(api, changed, '"1"')).status_code == 200
    now[0] = 9.9
    assert (await cache.current()) is first  # within the TTL: no read at all
    now[0] = 10.0
    moved = await cache.current()
    assert moved.version == 2
    assert moved.catalogue.programmes[0].rules.renewable_times == 3
    now[0] = 25.0
    assert (await cache.current()) is moved  # same version: the body is not read again


async def test_two_replicas_starting_at_once_seed_one_version(
    database_url: str, kafka_broker: Any
) -> None:
    settings = make_settings(database_url, kafka_broker.bootstrap, publish_programmes=False)
    async with started_app(settings) as api:
        r = await api.client.get("/v1/programmes")
        assert r.json()["version"] is None and "ETag" not in r.headers  # the file served
        engines = [make_engine(database_url), make_engine(database_url)]
        try:
            seeded = await asyncio.gather(
                *(seed_programmes(make_session_factory(e), load_catalogue()) for e in engines)
            )
        finally:
            for engine in engines:
                await engine.dispose()
        assert sorted(seeded) == [False, True]
        versions = (await api.client.get("/v1/programmes/versions")).json()
        assert [v["version"] for v in versions["items"]] == [1]
        assert len(await programme_events(api)) == 3
        await api.app.state.catalogues.refresh()
        assert (await catalogue(api))[0]["version"] == 1


async def test_a_failed_version_check_serves_the_catalogue_held(tmp_path: Any) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/missing/dir/leasing.db")
    try:
        held = load_catalogue()
        cache = CatalogueCache(make_session_factory(engine), held, 0.0)
        current = await cache.current()  # the database cannot be opened
        assert current.version is None and current.catalogue is held
    finally:
        await engine.dispose()
