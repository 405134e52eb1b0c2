"""Calls for applications on SQLite and PostgreSQL: a call per vacancy, drafts, the closing
worker freezing the ranking as the clock passes, offers in rank or out of rank on a published
ground, a decline passing to the next, a signed lease or the landlord deciding the call, a
withdrawn vacancy cancelling it; and the pure rules (transitions, tie-break, the clock file)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fabkit.auth import Role
from fabkit.testing import assert_problem
from leasing.domain import (
    CallEvent,
    CallStatus,
    Ranked,
    TransitionError,
    call_transition,
    frozen_order,
)
from leasing.service import calls, leases
from leasing.service.common import Clock

from .conftest import Api, FakeUnit

GROUND = {"ground": "technical_unfit", "explanation": "The first project needs 60 kVA of power."}


async def call_of(api: Api, unit: FakeUnit) -> dict[str, Any]:
    r = await api.client.get("/v1/calls", params={"unit_id": unit.unit_id})
    assert r.status_code == 200, r.text
    (call,) = r.json()["items"]
    return call  # type: ignore[no-any-return]


async def tick_at(api: Api, now: datetime) -> int:
    current = (await api.app.state.catalogues.current()).catalogue
    return await calls.tick(api.sessions, current, now=now)


async def event_types(api: Api, call_id: str) -> list[str]:
    return [e.event_type for e in await api.outbox(key=call_id, topic="leasing.call.events")]


# Pure rules ----------------------------------------------------------------------------------


def test_call_transitions_follow_the_published_life_cycle() -> None:
    path = [
        (CallStatus.SCHEDULED, CallEvent.OPEN, CallStatus.OPEN),
        (CallStatus.OPEN, CallEvent.CLOSE, CallStatus.CLOSED),
        (CallStatus.CLOSED, CallEvent.REVIEW, CallStatus.UNDER_REVIEW),
        (CallStatus.UNDER_REVIEW, CallEvent.DECIDE, CallStatus.DECIDED),
        (CallStatus.CLOSED, CallEvent.DECIDE, CallStatus.DECIDED),
        (CallStatus.DECIDED, CallEvent.PUBLISH, CallStatus.RESULTS_PUBLISHED),
        (CallStatus.OPEN, CallEvent.CANCEL, CallStatus.CANCELLED),
        (CallStatus.OPEN, CallEvent.RESCHEDULE, CallStatus.SCHEDULED),
    ]
    for before, event, after in path:
        assert call_transition(before, event) is after
    for before, event in [
        (CallStatus.OPEN, CallEvent.DECIDE),
        (CallStatus.SCHEDULED, CallEvent.CLOSE),
        (CallStatus.DECIDED, CallEvent.CANCEL),
        (CallStatus.CLOSED, CallEvent.OPEN),
    ]:
        with pytest.raises(TransitionError, match=f"'{before}' cannot {event}"):
            call_transition(before, event)


def test_the_frozen_order_is_score_then_earliest_submission() -> None:
    t = datetime(2027, 1, 1, tzinfo=UTC)
    entries = [
        Ranked("c", 40, t + timedelta(minutes=1)),
        Ranked("a", 55, t + timedelta(minutes=5)),
        Ranked("b", 40, t),
        Ranked("d", 40, t),
    ]
    assert [e.application_id for e in frozen_order(entries)] == ["a", "b", "d", "c"]


def test_the_clock_file_shifts_time_by_an_offset_or_to_an_instant(tmp_path: Path) -> None:
    clock, path = Clock(), tmp_path / "clock"
    assert abs(clock.now() - datetime.now(UTC)) < timedelta(seconds=1)
    clock.use(path)  # no file yet: no shift
    assert abs(clock.now() - datetime.now(UTC)) < timedelta(seconds=1)
    path.write_text("86400")
    assert abs(clock.now() - (datetime.now(UTC) + timedelta(days=1))) < timedelta(seconds=1)
    path.write_text("2030-05-01T12:00:00Z\n")
    os.utime(path, None)
    assert abs(clock.now() - datetime(2030, 5, 1, 12, tzinfo=UTC)) < timedelta(seconds=2)
    path.write_text("")
    assert abs(clock.now() - datetime.now(UTC)) < timedelta(seconds=1)


# On the app, SQLite and PostgreSQL -------------------------------------------------------------


async def test_a_vacancy_opens_one_call_that_takes_drafts_and_applications(api: Api) -> None:
    landlord_id, landlord = api.landlord()
    _, stranger = api.landlord()
    unit = await api.vacant_unit(landlord_id)
    call = await call_of(api, unit)
    assert call["status"] == "open" and call["vacancy_id"] == unit.vacancy_id
    assert call["catalogue_version"] >= 1
    opens, closes = (datetime.fromisoformat(call[k]) for k in ("opens_at", "closes_at"))
    assert closes - opens == timedelta(days=21)  # the programme's call_days
    assert await event_types(api, call["id"]) == ["leasing.call.opened.v1"]
    # the same vacancy again (another event id, same vacancy) opens no second call
    current = (await api.app.state.catalogues.current()).catalogue
    async with api.sessions() as session, session.begin():
        again = await calls.open_for_vacancy(session, current, unit.unit_id, unit.vacancy_id)
    assert again is None
    r = await api.client.get("/v1/calls", params={"unit_id": unit.unit_id})
    assert r.json()["total"] == 1

    _, token = await api.register()
    draft = await api.apply(token, unit.unit_id, draft=True)
    assert draft["status"] == "draft" and draft["call_id"] == call["id"]
    assert draft["call"]["status"] == "open" and draft["rank"] is None
    assert [e.event_type for e in await api.outbox(key=draft["id"])] == []
    r = await api.client.post(
        f"/v1/applications/{draft['id']}/submit",
        json={"project": "Stoneware and porcelain for Paris restaurants, two kilns."},
        headers=token,
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "submitted" and r.json()["project"].startswith("Stoneware and")
    assert [e.event_type for e in await api.outbox(key=draft["id"])] == [
        "leasing.application.submitted.v1"
    ]
    assert_problem(
        await api.client.post(f"/v1/applications/{draft['id']}/submit", headers=token),
        409,
        "only a draft",
    )
    r = await api.client.get(f"/v1/calls/{call['id']}")
    assert r.json()["counts"] == {"applications": 1, "drafts": 0, "ranked": 0}
    assert "display_name" not in r.text and "Camille" not in r.text  # public: never a name

    # dates: only its landlord (or an admin) moves them, with If-Match, never into the past
    etag = r.headers["ETag"]
    future = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    path = f"/v1/calls/{call['id']}"
    r = await api.client.patch(
        path, json={"closes_at": future}, headers={**stranger, "If-Match": etag}
    )
    assert_problem(r, 403, "another landlord")
    r = await api.client.patch(
        path, json={"closes_at": past}, headers={**landlord, "If-Match": etag}
    )
    assert_problem(r, 422, "in the past")
    r = await api.client.patch(
        path, json={"closes_at": future}, headers={**landlord, "If-Match": '"999"'}
    )
    assert r.status_code == 412, r.text
    r = await api.client.patch(path, json={"opens_at": future}, headers=landlord)
    assert_problem(r, 409, "has applications")
    r = await api.client.patch(
        path, json={"closes_at": future}, headers={**landlord, "If-Match": etag}
    )
    assert r.status_code == 200, r.text
    assert datetime.fromisoformat(r.json()["closes_at"]) == datetime.fromisoformat(future)
    r = await api.client.patch(path, json={"closes_at": "tomorrow"}, headers=landlord)
    assert_problem(r, 422, "closes_at")


async def test_a_call_scheduled_later_takes_drafts_only_until_it_opens(api: Api) -> None:
    landlord_id, landlord = api.landlord()
    unit = await api.vacant_unit(landlord_id)
    call = await call_of(api, unit)
    opens = datetime.now(UTC) + timedelta(days=2)
    r = await api.client.patch(
        f"/v1/calls/{call['id']}",
        json={"opens_at": opens.isoformat(), "closes_at": (opens + timedelta(days=21)).isoformat()},
        headers=landlord,
    )
    assert r.status_code == 200 and r.json()["status"] == "scheduled", r.text
    _, token = await api.register()
    body = {"unit_id": unit.unit_id, "project": "Stoneware for Paris restaurants, two kilns."}
    r = await api.client.post("/v1/applications", json=body, headers=token)
    assert_problem(r, 409, "opens at", opens.isoformat()[:16], "draft")
    draft = await api.apply(token, unit.unit_id, draft=True)
    r = await api.client.post(f"/v1/applications/{draft['id']}/submit", headers=token)
    assert_problem(r, 409, "opens at")

    assert await tick_at(api, opens + timedelta(seconds=1)) == 1  # the worker opens it
    r = await api.client.get(f"/v1/calls/{call['id']}")
    assert r.json()["status"] == "open"
    assert await event_types(api, call["id"]) == ["leasing.call.opened.v1"] * 2


async def test_closing_freezes_the_ranking_and_offers_follow_it(api: Api) -> None:
    landlord_id, landlord = api.landlord()
    _, other_landlord = api.landlord()
    officer = api.identities.headers(Role.OFFICER, "officer-1")
    unit = await api.vacant_unit(landlord_id)
    call = await call_of(api, unit)
    # three applicants: the cooperative scores most; two equal ones in submission order
    coop, coop_token = await api.register(legal_form="scop", display_name="Coop Terre")
    _, solo_token = await api.register(display_name="Solo Un")
    _, late_token = await api.register(display_name="Solo Deux")
    _, idle_token = await api.register()
    coop_app = await api.apply(coop_token, unit.unit_id)
    solo_app = await api.apply(solo_token, unit.unit_id)
    late_app = await api.apply(late_token, unit.unit_id)
    idle_draft = await api.apply(idle_token, unit.unit_id, draft=True)
    assert coop_app["score"] > solo_app["score"] == late_app["score"]

    # nothing is offered or rejected while the call is open
    r = await api.client.post(
        f"/v1/applications/{coop_app['id']}/offer",
        json={
            "monthly_rent_eur": 900,
            "start_date": datetime.now(UTC).date().isoformat(),
            "end_date": (datetime.now(UTC).date() + timedelta(days=700)).isoformat(),
        },
        headers=landlord,
    )
    assert_problem(r, 409, "open until", "frozen")
    assert await tick_at(api, datetime.now(UTC)) == 0  # not due yet

    closes = datetime.fromisoformat(call["closes_at"])
    assert await tick_at(api, closes + timedelta(seconds=1)) == 1
    r = await api.client.get(f"/v1/calls/{call['id']}")
    assert r.json()["status"] == "closed" and r.json()["ranking_frozen_at"]
    # the unsubmitted draft was closed: counted among applications, not ranked
    assert r.json()["counts"] == {"applications": 4, "drafts": 0, "ranked": 3}
    closed = (await api.outbox(key=call["id"], topic="leasing.call.events"))[-1]
    assert closed.event_type == "leasing.call.closed.v1"
    ranking = closed.envelope["data"]["ranking"]
    assert [(x["application_id"], x["rank"]) for x in ranking] == [
        (coop_app["id"], 1),
        (solo_app["id"], 2),
        (late_app["id"], 3),
    ]
    assert ranking[0]["artisan_id"] == coop["id"]
    r = await api.client.get(f"/v1/applications/{idle_draft['id']}", headers=idle_token)
    assert r.json()["status"] == "closed"  # a draft never submitted closes with the call
    r = await api.client.get(f"/v1/applications/{solo_app['id']}", headers=solo_token)
    assert r.json()["call"]["status"] == "closed"
    assert (r.json()["call"]["rank"], r.json()["call"]["ranked_among"]) == (2, 3)
    assert r.json()["call"]["score"] == solo_app["score"] and r.json()["call"]["criteria"]

    # the ranking: landlord and officer read it with names; nobody else
    r = await api.client.get(f"/v1/calls/{call['id']}/ranking", headers=officer)
    assert r.status_code == 200, r.text
    entries = r.json()["entries"]
    assert [e["applicant"]["display_name"] for e in entries] == [
        "Coop Terre",
        "Solo Un",
        "Solo Deux",
    ]
    assert all(e["in_the_running"] for e in entries)
    assert_problem(
        await api.client.get(f"/v1/calls/{call['id']}/ranking", headers=other_landlord), 403
    )
    assert_problem(await api.client.get(f"/v1/calls/{call['id']}/ranking", headers=solo_token), 403)

    # too late to apply, with the closing date said
    _, token = await api.register()
    body = {"unit_id": unit.unit_id, "project": "Stoneware for Paris restaurants, two kilns."}
    r = await api.client.post("/v1/applications", json=body, headers=token)
    assert_problem(r, 409, "closed at", closes.isoformat()[:16])

    # an offer to the third needs a reason, and names who comes first
    r = await api.offer(landlord, late_app["id"])
    assert_problem(r, 422, "Coop Terre", coop_app["id"], "rank 1", "out_of_rank")
    r = await api.offer(
        landlord, late_app["id"], out_of_rank={"ground": "no_such_ground", "explanation": "x" * 20}
    )
    assert_problem(r, 422, "no_such_ground", "technical_unfit")
    r = await api.offer(landlord, coop_app["id"], out_of_rank=GROUND)
    assert_problem(r, 422, "first in rank", "leave it out")
    # a rejection needs a published ground too
    r = await api.client.post(
        f"/v1/applications/{coop_app['id']}/reject",
        json={"reason": "The kilns need 60 kVA; the unit has 36."},
        headers=landlord,
    )
    assert_problem(r, 422, "ground", "technical_unfit")
    r = await api.client.post(
        f"/v1/applications/{coop_app['id']}/reject",
        json={"reason": "The kilns need 60 kVA; the unit has 36.", "ground": "technical_unfit"},
        headers=landlord,
    )
    assert r.status_code == 200 and r.json()["status"] == "rejected", r.text
    assert (await api.client.get(f"/v1/calls/{call['id']}")).json()["status"] == "under_review"
    # the first still in the running is now the second; an offer to the third needs a ground
    assert_problem(await api.offer(landlord, late_app["id"]), 422, "Solo Un", "rank 2")
    out_of_rank = {"ground": "jury_decision", "explanation": "The jury preferred this project."}
    r = await api.offer(landlord, late_app["id"], monthly_rent_eur=950, out_of_rank=out_of_rank)
    assert r.status_code == 201, r.text
    lease = r.json()
    r = await api.client.get(f"/v1/applications/{late_app['id']}", headers=late_token)
    offered = r.json()["decisions"][-1]
    assert (offered["decision"], offered["ground"]) == ("offered", "jury_decision")
    assert offered["reason"] == "The jury preferred this project."

    # the third declines: the offer passes to the next in the running (the second), same terms
    r = await api.client.post(f"/v1/leases/{lease['id']}/decline", headers=late_token)
    assert r.status_code == 200, r.text
    r = await api.client.get(f"/v1/applications/{solo_app['id']}", headers=solo_token)
    assert r.json()["status"] == "offered"
    passed = r.json()["decisions"][-1]
    assert (passed["actor_role"], passed["decision"]) == ("system", "offered")
    r = await api.client.get(f"/v1/leases/{r.json()['lease_id']}", headers=solo_token)
    assert r.json()["monthly_rent_eur"] == 950 and r.json()["end_date"] == lease["end_date"]

    # the second signs: the call is decided, every ranked applicant to be told
    r = await api.client.post(f"/v1/leases/{r.json()['id']}/accept", headers=solo_token)
    assert r.status_code == 200, r.text
    r = await api.client.get(f"/v1/calls/{call['id']}")
    assert r.json()["status"] == "decided" and r.json()["decided_at"]
    decided = (await api.outbox(key=call["id"], topic="leasing.call.events"))[-1]
    assert decided.event_type == "leasing.call.decided.v1"
    data = decided.envelope["data"]
    assert data["outcome"] == "leased" and data["application_id"] == solo_app["id"]
    assert len(data["ranking"]) == 3
    r = await api.client.get("/v1/calls", params={"status": "decided", "landlord_id": landlord_id})
    assert [c["id"] for c in r.json()["items"]] == [call["id"]]


async def test_a_landlord_may_decide_that_nobody_is_chosen(api: Api) -> None:
    landlord_id, landlord = api.landlord()
    unit = await api.vacant_unit(landlord_id)
    call = await call_of(api, unit)
    people = [await api.register() for _ in range(2)]
    apps = [await api.apply(token, unit.unit_id) for _, token in people]
    path = f"/v1/calls/{call['id']}"
    body = {"outcome": "unawarded", "reason": "No project fits the unit's floor load."}
    assert_problem(await api.client.post(f"{path}/decide", json=body, headers=landlord), 409)
    assert_problem(await api.client.post(f"{path}/review", headers=landlord), 409, "open")
    await api.close_call(call["id"])
    r = await api.client.post(f"{path}/review", headers=landlord)
    assert r.status_code == 200 and r.json()["status"] == "under_review", r.text
    lease = (await api.offer(landlord, apps[0]["id"])).json()
    assert_problem(
        await api.client.post(f"{path}/decide", json=body, headers=landlord), 409, "waits"
    )
    r = await api.client.post(
        f"/v1/applications/{apps[0]['id']}/reject",
        json={"reason": "Guarantees were not provided.", "ground": "guarantees_missing"},
        headers=landlord,
    )
    assert r.status_code == 200, r.text
    assert (await api.client.get(f"/v1/leases/{lease['id']}", headers=landlord)).json()[
        "status"
    ] == "withdrawn"
    r = await api.client.post(
        f"{path}/decide", json={"outcome": "other", "reason": "x" * 20}, headers=landlord
    )
    assert_problem(r, 422, "outcome")
    r = await api.client.post(f"{path}/decide", json=body, headers=landlord)
    assert r.status_code == 200 and r.json()["status"] == "decided", r.text
    r = await api.client.get(f"/v1/applications/{apps[1]['id']}", headers=people[1][1])
    assert r.json()["status"] == "closed"
    assert r.json()["decisions"][-1]["reason"] == body["reason"]
    decided = (await api.outbox(key=call["id"], topic="leasing.call.events"))[-1]
    assert decided.envelope["data"]["outcome"] == "unawarded"
    assert decided.envelope["data"]["reason"] == body["reason"]
    assert_problem(await api.client.post(f"{path}/decide", json=body, headers=landlord), 409)


async def test_a_vacancy_closed_before_a_decision_cancels_its_call(api: Api) -> None:
    landlord_id, _ = api.landlord()
    unit = await api.vacant_unit(landlord_id)
    call = await call_of(api, unit)
    _, token = await api.register()
    draft = await api.apply(token, unit.unit_id, draft=True)
    await api.feed(*unit.close("unavailable"))
    r = await api.client.get(f"/v1/calls/{call['id']}")
    assert r.json()["status"] == "cancelled"
    assert (await event_types(api, call["id"]))[-1] == "leasing.call.cancelled.v1"
    r = await api.client.get(f"/v1/applications/{draft['id']}", headers=token)
    assert r.json()["status"] == "closed"
    # a new vacancy of the unit opens a new call
    await api.feed(*unit.open())
    r = await api.client.get("/v1/calls", params={"unit_id": unit.unit_id, "status": "open"})
    assert r.json()["total"] == 1 and r.json()["items"][0]["id"] != call["id"]
    assert_problem(await api.client.get("/v1/calls/no-such-call"), 404, "GET /v1/calls")


async def test_an_expired_offer_whose_start_date_passed_waits_for_the_landlord(api: Api) -> None:
    """Passing to the next checks the terms as a landlord's offer is checked: an offer that
    expired after its start date does not go on as it is; the next in rank stays first, for
    the landlord to offer with dates ahead."""
    landlord_id, landlord = api.landlord()
    unit = await api.vacant_unit(landlord_id)
    call = await call_of(api, unit)
    _, first_token = await api.register(legal_form="scop")
    _, second_token = await api.register()
    first = await api.apply(first_token, unit.unit_id)
    second = await api.apply(second_token, unit.unit_id)
    r = await api.offer(landlord, first["id"])  # starts today
    assert r.status_code == 201, r.text
    lease = r.json()

    expired_at = datetime.fromisoformat(lease["offer_expires_at"]) + timedelta(seconds=1)
    assert expired_at.date() > datetime.now(UTC).date()  # the offer's start date is behind
    assert await leases.expire_offer(api.sessions, lease["id"], now=expired_at)
    r = await api.client.get(f"/v1/applications/{second['id']}", headers=second_token)
    assert r.json()["status"] == "submitted", r.text  # nothing offered on stale dates
    assert r.json()["decisions"] == []
    r = await api.client.get(f"/v1/calls/{call['id']}/ranking", headers=landlord)
    assert r.status_code == 200, r.text
    # the landlord's own offer to the next in rank, with dates ahead, needs no reason
    r = await api.offer(landlord, second["id"])
    assert r.status_code == 201, r.text
