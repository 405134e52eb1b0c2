"""Juries, published results and appeals on SQLite and PostgreSQL: a call decided through the
calls API (a rejection and an out-of-rank offer on published grounds, a signed lease), its jury
recorded, its anonymised results published and read by anyone, an appeal filed within the
period and answered by an officer, refused once the period is over (the injectable clock)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fabkit.auth import Role
from fabkit.testing import assert_problem
from leasing.service.common import CLOCK

from .conftest import Api

JURY = {
    "members": [
        {"name": "Claire Martin", "organisation": "Ville de Paris, DAE", "role": "chair"},
        {
            "name": "Paul Durand",
            "organisation": "Ateliers de Paris",
            "role": "member",
            "conflict_of_interest": True,
            "declaration": "Mentored the cooperative Coop Terre in 2025.",
        },
    ],
    "session_date": "2027-02-03",
    "minutes": "The jury read the ranking; Coop Terre's kilns exceed the unit's power.",
    "decision": "The jury prefers the third-ranked project for its apprentices.",
}
PROJECT = "Stoneware for Paris restaurants, two kilns."


async def call_events(api: Api, call_id: str) -> list[Any]:
    return await api.outbox(key=call_id, topic="leasing.call.events")


async def decided_call(api: Api) -> dict[str, Any]:
    """A call of three applicants decided through the calls API: the first rejected on a
    published ground, the third offered out of rank on another and signing."""
    landlord_id, landlord = api.landlord()
    unit = await api.vacant_unit(landlord_id)
    coop, coop_token = await api.register(
        legal_form="scop", display_name="Coop Terre", business_name="Terre SCOP"
    )
    solo, solo_token = await api.register(display_name="Solo Un", business_name="Un Atelier")
    late, late_token = await api.register(display_name="Solo Deux", business_name="Deux Bois")
    apps = [await api.apply(t, unit.unit_id) for t in (coop_token, solo_token, late_token)]
    call_id = apps[0]["call_id"]
    await api.close_call(call_id)
    r = await api.client.post(
        f"/v1/applications/{apps[0]['id']}/reject",
        json={"reason": "The kilns need 60 kVA; the unit has 36.", "ground": "technical_unfit"},
        headers=landlord,
    )
    assert r.status_code == 200, r.text
    out_of_rank = {"ground": "jury_decision", "explanation": "The jury preferred this project."}
    r = await api.offer(landlord, apps[2]["id"], out_of_rank=out_of_rank)
    assert r.status_code == 201, r.text
    r = await api.client.post(f"/v1/leases/{r.json()['id']}/accept", headers=late_token)
    assert r.status_code == 200, r.text
    assert (await api.client.get(f"/v1/calls/{call_id}")).json()["status"] == "decided"
    return {
        "call_id": call_id,
        "landlord_id": landlord_id,
        "landlord": landlord,
        "apps": apps,
        "artisans": [coop, solo, late],
        "tokens": [coop_token, solo_token, late_token],
    }


async def test_a_jury_is_recorded_by_the_landlord_and_read_by_officers(api: Api) -> None:
    landlord_id, landlord = api.landlord()
    _, stranger = api.landlord()
    officer = api.identities.headers(Role.OFFICER, "officer-1")
    unit = await api.vacant_unit(landlord_id)
    _, token = await api.register()
    app = await api.apply(token, unit.unit_id)
    path = f"/v1/calls/{app['call_id']}/jury"

    assert_problem(await api.client.get(path, headers=landlord), 404, "No jury")
    undeclared = {**JURY, "members": [{**JURY["members"][1], "declaration": None}]}
    r = await api.client.put(path, json=undeclared, headers=landlord)
    assert_problem(r, 422, "Paul Durand", "without saying what it is")
    assert_problem(await api.client.put(path, json=JURY, headers=stranger), 403, "landlord")
    assert_problem(await api.client.put(path, json=JURY, headers=officer), 403, "officer")
    assert_problem(await api.client.put(path, json=JURY, headers=token), 403)
    r = await api.client.put(path, json={**JURY, "unknown": 1}, headers=landlord)
    assert_problem(r, 422, "unknown")

    r = await api.client.put(path, json=JURY, headers=landlord)
    assert r.status_code == 200, r.text
    assert [(m["name"], m["recused"]) for m in r.json()["members"]] == [
        ("Claire Martin", False),
        ("Paul Durand", True),
    ]
    assert r.headers["ETag"] == '"1"'
    # a correction replaces the members and bumps the version
    fewer = {**JURY, "members": JURY["members"][:1], "minutes": "Corrected minutes, one member."}
    r = await api.client.put(path, json=fewer, headers=landlord)
    assert r.status_code == 200 and r.json()["version"] == 2, r.text
    r = await api.client.get(path, headers=officer)
    assert r.status_code == 200, r.text
    assert [m["name"] for m in r.json()["members"]] == ["Claire Martin"]
    assert r.json()["minutes"] == "Corrected minutes, one member."
    assert_problem(await api.client.get(path, headers=stranger), 403)
    assert_problem(await api.client.get(path, headers=token), 403)
    assert_problem(await api.client.get("/v1/calls/nope/jury", headers=officer), 404, "nope")


async def test_results_are_published_anonymised_and_appeals_answered(
    api: Api, tmp_path: Path
) -> None:
    d = await decided_call(api)
    call_id, landlord = d["call_id"], d["landlord"]
    coop_token, solo_token, late_token = d["tokens"]
    _, stranger = api.landlord()
    officer = api.identities.headers(Role.OFFICER, "officer-1")
    results = f"/v1/calls/{call_id}/results"

    assert_problem(await api.client.get(results), 404, "not published yet", "decided")
    assert_problem(await api.client.post(results, headers=stranger), 403)
    assert_problem(await api.client.post(results, headers=officer), 403)
    assert_problem(await api.client.post(results, headers=solo_token), 403)
    r = await api.client.post(
        f"/v1/applications/{d['apps'][1]['id']}/appeal",
        json={"grounds": "My points for the trade were not counted."},
        headers=solo_token,
    )
    assert_problem(r, 409, "not published yet")
    r = await api.client.put(f"/v1/calls/{call_id}/jury", json=JURY, headers=landlord)
    assert r.status_code == 200, r.text

    r = await api.client.post(results, headers=landlord)
    assert r.status_code == 200, r.text
    published = r.json()
    assert published["status"] == "results_published" and published["outcome"] == "leased"
    assert r.headers["Location"] == results
    assert_problem(await api.client.post(results, headers=landlord), 409, "were published at")
    assert_problem(
        await api.client.put(f"/v1/calls/{call_id}/jury", json=JURY, headers=landlord),
        409,
        "results_published",
    )

    # anyone reads the results: candidates by rank, points, outcome, grounds; no name
    r = await api.client.get(results)
    assert r.status_code == 200, r.text
    body = r.json()
    rows = body["rows"]
    assert [(x["candidate"], x["outcome"], x["order_followed"]) for x in rows] == [
        ("Candidate 1", "rejected", False),
        ("Candidate 2", "not_reached", True),
        ("Candidate 3", "leased", False),
    ]
    assert rows[0]["departures"][0]["ground"] == "technical_unfit"
    assert rows[0]["departures"][0]["explanation"] == "The kilns need 60 kVA; the unit has 36."
    third = rows[2]["departures"][0]
    assert (third["decision"], third["ground"]) == ("offered", "jury_decision")
    assert third["ground_label"] and third["explanation"] == "The jury preferred this project."
    assert rows[0]["score"] == d["apps"][0]["score"] and rows[0]["criteria"]
    assert set(rows[0]["criteria"][0]) == {"criterion_id", "label", "points", "max_points"}
    assert [(m["name"], m["recused"]) for m in body["jury"]["members"]] == [
        ("Claire Martin", False),
        ("Paul Durand", True),
    ]
    assert body["jury"]["decision"] == JURY["decision"]
    text = json.dumps(body)
    for artisan in d["artisans"]:
        for secret in (artisan["display_name"], artisan["business_name"], artisan["siret"]):
            assert secret not in text, secret
        assert artisan["id"] not in text
    for app in d["apps"]:
        assert app["id"] not in text
    assert PROJECT not in text and "Coop Terre" not in text
    assert "minutes" not in body["jury"] and "declaration" not in text
    r = await api.client.get("/v1/results", params={"limit": 100})
    assert call_id in [x["call_id"] for x in r.json()["items"]]

    event = (await call_events(api, call_id))[-1]
    assert event.event_type == "leasing.call.results_published.v1"
    lines = event.envelope["data"]["results"]
    assert [(x["artisan_id"], x["rank"], x["outcome"]) for x in lines] == [
        (d["artisans"][0]["id"], 1, "rejected"),
        (d["artisans"][1]["id"], 2, "not_reached"),
        (d["artisans"][2]["id"], 3, "leased"),
    ]
    assert event.envelope["data"]["appeals_close_at"] == body["appeals_close_at"]

    # an appeal within the period, by the applicant only, once
    appeal_path = f"/v1/applications/{d['apps'][1]['id']}/appeal"
    grounds = {"grounds": "My points for the trade were not counted although I make pottery."}
    assert_problem(await api.client.post(appeal_path, json=grounds, headers=coop_token), 404)
    assert_problem(await api.client.post(appeal_path, json=grounds, headers=landlord), 403)
    r = await api.client.post(appeal_path, json={"grounds": "short"}, headers=solo_token)
    assert_problem(r, 422, "grounds")
    r = await api.client.post(appeal_path, json=grounds, headers=solo_token)
    assert r.status_code == 201, r.text
    appeal = r.json()
    assert appeal["status"] == "filed" and appeal["call_id"] == call_id
    assert_problem(
        await api.client.post(appeal_path, json=grounds, headers=solo_token), 409, "already"
    )
    filed = (await call_events(api, call_id))[-1]
    assert filed.event_type == "leasing.appeal.filed.v1"
    assert grounds["grounds"] not in json.dumps(filed.envelope)

    # who sees it
    async def listed(headers: dict[str, str]) -> list[str]:
        r = await api.client.get("/v1/appeals", params={"call_id": call_id}, headers=headers)
        assert r.status_code == 200, r.text
        return [x["id"] for x in r.json()["items"]]

    assert await listed(officer) == [appeal["id"]]
    assert await listed(landlord) == [appeal["id"]]
    assert await listed(solo_token) == [appeal["id"]]
    assert await listed(stranger) == [] and await listed(coop_token) == []
    one = f"/v1/appeals/{appeal['id']}"
    assert (await api.client.get(one, headers=officer)).json()["grounds"] == grounds["grounds"]
    assert_problem(await api.client.get(one, headers=coop_token), 404)

    # an officer answers, once
    answer = {"outcome": "dismissed", "answer": "The trade points were counted: see line two."}
    answer_path = f"{one}/answer"
    assert_problem(await api.client.post(answer_path, json=answer, headers=landlord), 403)
    assert_problem(await api.client.post(answer_path, json=answer, headers=solo_token), 403)
    r = await api.client.post(answer_path, json={**answer, "outcome": "maybe"}, headers=officer)
    assert_problem(r, 422, "outcome")
    r = await api.client.post(answer_path, json=answer, headers=officer)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["outcome"]) == ("answered", "dismissed")
    assert r.json()["answered_by"] == "officer-1"
    assert_problem(await api.client.post(answer_path, json=answer, headers=officer), 409, "once")
    answered = (await call_events(api, call_id))[-1]
    assert answered.event_type == "leasing.appeal.answered.v1"
    data = answered.envelope["data"]
    assert data["answer"] == answer["answer"]
    assert data["appeal"]["artisan_id"] == d["artisans"][1]["id"]
    r = await api.client.get("/v1/appeals", params={"status": "answered"}, headers=solo_token)
    assert [x["id"] for x in r.json()["items"]] == [appeal["id"]]

    # once the period is over (the clock moved past it), appeals are refused
    clock = tmp_path / "clock"
    clock.write_text(str(61 * 86400))
    CLOCK.use(clock)
    try:
        r = await api.client.post(
            f"/v1/applications/{d['apps'][2]['id']}/appeal", json=grounds, headers=late_token
        )
        assert_problem(r, 409, "ended at", body["appeals_close_at"][:16])
    finally:
        CLOCK.use(None)
    r = await api.client.get("/v1/appeals", params={"call_id": call_id}, headers=officer)
    assert r.json()["total"] == 1


async def test_an_unawarded_call_publishes_results_with_nobody_leased(api: Api) -> None:
    landlord_id, landlord = api.landlord()
    unit = await api.vacant_unit(landlord_id)
    people = [await api.register() for _ in range(2)]
    apps = [await api.apply(token, unit.unit_id) for _, token in people]
    call_id = apps[0]["call_id"]
    assert_problem(
        await api.client.post(f"/v1/calls/{call_id}/results", headers=landlord), 409, "open"
    )
    await api.close_call(call_id)
    body = {"outcome": "unawarded", "reason": "No project fits the unit's floor load."}
    r = await api.client.post(f"/v1/calls/{call_id}/decide", json=body, headers=landlord)
    assert r.status_code == 200, r.text
    r = await api.client.post(f"/v1/calls/{call_id}/results", headers=api.admin)
    assert r.status_code == 200, r.text
    assert r.json()["outcome"] == "unawarded" and r.json()["jury"] is None
    assert [x["outcome"] for x in r.json()["rows"]] == ["not_chosen", "not_chosen"]
    assert all(x["order_followed"] for x in r.json()["rows"])
