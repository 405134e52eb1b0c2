"""Personal data on SQLite and PostgreSQL: an artisan's export holds every record leasing keeps
about them (one of every kind), their erasure pseudonymises the profile and the texts they
wrote in one transaction (other artisans intact, a signed lease kept, open applications
withdrawn, an erasure event without personal data), answers the same twice, and gives 410 on
the profile afterwards; the admin's export and erasure on a written request, and the audit
log."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import pytest
from sqlalchemy import MetaData, select

from fabkit.auth import Role
from fabkit.testing import assert_problem
from leasing.models import ArtisanProfile

from .conftest import Api
from .test_results import JURY, decided_call

GROUNDS = "Les points de mon métier n'ont pas été comptés : je suis potière depuis 2019."


async def every_row_as_text(api: Api) -> str:
    """Every row of every table of the service's database, as one text."""
    meta = MetaData()
    async with api.app.state.runtime.engine.connect() as conn:
        await conn.run_sync(meta.reflect)
        texts = []
        for table in meta.sorted_tables:
            rows = (await conn.execute(select(table))).all()
            texts.append(json.dumps([list(r) for r in rows], default=str, ensure_ascii=False))
    return "\n".join(texts)


async def artisan_with_every_kind(api: Api) -> dict[str, Any]:
    """A decided call whose third applicant signed a lease, appealed the published results,
    and has another application still open elsewhere."""
    d = await decided_call(api)
    r = await api.client.put(f"/v1/calls/{d['call_id']}/jury", json=JURY, headers=d["landlord"])
    assert r.status_code == 200, r.text
    r = await api.client.post(f"/v1/calls/{d['call_id']}/results", headers=d["landlord"])
    assert r.status_code == 200, r.text
    token = d["tokens"][2]
    unique = uuid.uuid4().hex[:8]
    r = await api.client.patch(
        "/v1/artisans/me",
        json={"contact_email": f"deux-{unique}@example.org", "display_name": f"Deux {unique}"},
        headers=token,
    )
    assert r.status_code == 200, r.text
    d["artisans"][2] = r.json()
    r = await api.client.post(
        f"/v1/applications/{d['apps'][2]['id']}/appeal", json={"grounds": GROUNDS}, headers=token
    )
    assert r.status_code == 201, r.text
    d["appeal"] = r.json()
    landlord_id, _ = api.landlord()
    unit = await api.vacant_unit(landlord_id)
    d["open_project"] = f"Tournage de bols en grès {uuid.uuid4().hex[:6]}, four électrique."
    d["open_app"] = await api.apply(token, unit.unit_id, project=d["open_project"])
    return d


async def test_the_export_holds_one_record_of_every_kind(api: Api) -> None:
    d = await artisan_with_every_kind(api)
    me, token = d["artisans"][2], d["tokens"][2]
    r = await api.client.get("/v1/me/export", headers=token)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Disposition"] == (
        'attachment; filename="fabrique-leasing-export.json"'
    )
    assert r.headers["Cache-Control"] == "no-store"
    body = r.json()
    assert (body["service"], body["subject"]) == ("leasing", me["id"])
    assert body["generated_at"].endswith("Z")
    rec = body["records"]
    assert set(rec) == {
        "profile",
        "applications",
        "decisions",
        "rankings",
        "leases",
        "appeals",
        "privacy_requests",
        "account_deletions",
    }
    profile = rec["profile"][0]
    assert (profile["display_name"], profile["siret"]) == (me["display_name"], me["siret"])
    assert profile["contact_email"] == me["contact_email"]
    assert {a["id"] for a in rec["applications"]} == {d["apps"][2]["id"], d["open_app"]["id"]}
    assert d["open_project"] in {a["project"] for a in rec["applications"]}
    assert {x["application_id"] for x in rec["decisions"]} == {d["apps"][2]["id"]}
    assert {x["decision"] for x in rec["decisions"]} >= {"offered", "offer_accepted"}
    assert [x["application_id"] for x in rec["rankings"]] == [d["apps"][2]["id"]]
    assert [(x["artisan_id"], x["status"]) for x in rec["leases"]] == [(me["id"], "active")]
    assert [(x["id"], x["grounds"]) for x in rec["appeals"]] == [(d["appeal"]["id"], GROUNDS)]
    assert [(x["kind"], x["requested_by"]) for x in rec["privacy_requests"]] == [("export", "self")]
    # nothing of the other applicants
    text = json.dumps(body)
    for other in d["artisans"][:2]:
        assert other["id"] not in text and other["siret"] not in text


async def test_an_erasure_pseudonymises_keeps_the_lease_and_answers_the_same_twice(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    d = await artisan_with_every_kind(api)
    me, token = d["artisans"][2], d["tokens"][2]
    others = d["artisans"][:2]
    caplog.clear()
    caplog.set_level(logging.DEBUG)
    r = await api.client.get("/v1/me/export", headers=token)
    assert r.status_code == 200
    r = await api.client.delete("/v1/me", headers=token)
    assert r.status_code == 202, r.text
    erased = r.json()
    assert erased["status"] == "completed" and erased["artisan_id"] == me["id"]
    assert {k["kind"] for k in erased["kept"]} >= {"leases", "decisions", "rankings"}
    assert all(k["why"].endswith(".") for k in erased["kept"])
    again = await api.client.delete("/v1/me", headers=token)
    assert again.status_code == 202 and again.json() == erased

    # nothing personal in the log lines of the export and the erasure
    logged = "\n".join(rec.getMessage() for rec in caplog.records)
    assert "privacy erasure" in logged and me["id"] in logged
    for value in (me["display_name"], me["siret"], me["contact_email"], d["open_project"]):
        assert value not in logged, value

    # gone from every table, other artisans intact
    text = await every_row_as_text(api)
    for value in (me["display_name"], me["business_name"], me["siret"], me["contact_email"]):
        assert value not in text, value
    assert d["open_project"] not in text and GROUNDS not in text
    assert "Personne effacée" in text
    async with api.sessions() as session:
        for other in others:
            row = await session.get(ArtisanProfile, other["id"])
            assert row is not None and row.erased_at is None
            assert (row.display_name, row.siret) == (other["display_name"], other["siret"])
        mine = await session.get(ArtisanProfile, me["id"])
        assert mine is not None and mine.erased_at is not None and mine.siret.startswith("X")

    # the lease is kept (a contract), the open application withdrawn, with its event
    r = await api.client.get("/v1/leases", headers=d["landlord"])
    assert [x["status"] for x in r.json()["items"]] == ["active"]
    r = await api.client.get(f"/v1/applications/{d['open_app']['id']}", headers=api.admin)
    assert r.json()["status"] == "withdrawn"
    withdrawn = await api.outbox(key=d["open_app"]["id"])
    assert withdrawn[-1].event_type == "leasing.application.withdrawn.v1"

    # the erasure event: through the outbox, keyed by the artisan, no personal data
    events = await api.outbox(key=me["id"], topic="leasing.artisan.events")
    assert [e.event_type for e in events].count("leasing.artisan.erased.v1") == 1
    event = events[-1]
    assert event.event_type == "leasing.artisan.erased.v1"
    data = event.envelope["data"]
    assert set(data) == {"artisan_id", "erasure_id", "erased_at", "requested_by"}
    assert (data["artisan_id"], data["erasure_id"]) == (me["id"], erased["erasure_id"])
    assert data["requested_by"] == "self"
    serialized = json.dumps(event.envelope, ensure_ascii=False)
    for value in (me["display_name"], me["business_name"], me["siret"], me["contact_email"]):
        assert value not in serialized

    # the profile is gone for its account: 410 with a sentence, no silent re-registration
    assert_problem(await api.client.get("/v1/artisans/me", headers=token), 410, "erased")
    r = await api.client.patch("/v1/artisans/me", json={"display_name": "X Y"}, headers=token)
    assert_problem(r, 410, "erased")
    new_profile = {
        "display_name": "Camille Roux",
        "business_name": "Roux Céramique",
        "siret": me["siret"],
        "trades": ["ceramics"],
        "business_created_on": "2024-06-01",
        "legal_form": "micro_entreprise",
        "contact_email": "camille@example.org",
    }
    r = await api.client.post("/v1/artisans", json=new_profile, headers=token)
    assert_problem(r, 410, "cannot register again")
    # the export still answers, with what is kept, pseudonymised
    r = await api.client.get("/v1/me/export", headers=token)
    assert r.status_code == 200
    assert r.json()["records"]["profile"][0]["display_name"] == "Personne effacée"


async def test_only_the_artisan_or_an_admin_exports_and_erases(api: Api) -> None:
    a, a_token = await api.register(display_name="Aline Arbre", business_name="Arbre SARL")
    _, b_token = await api.register(display_name="Bruno Bois", business_name="Bois SAS")
    _, landlord = api.landlord()
    officer = api.identities.headers(Role.OFFICER, "officer-1")
    body = {"request_reference": "DPO-2026-0142", "note": "Letter of 2 December, identity checked."}
    for headers in (b_token, landlord, officer):
        assert_problem(await api.client.get(f"/v1/artisans/{a['id']}/export", headers=headers), 403)
        r = await api.client.post(f"/v1/artisans/{a['id']}/erasure", json=body, headers=headers)
        assert_problem(r, 403)
        assert_problem(await api.client.get("/v1/privacy/requests", headers=headers), 403)
    for headers in (landlord, officer):
        assert_problem(await api.client.delete("/v1/me", headers=headers), 403)
    # an officer's own export holds nothing of anyone
    r = await api.client.get("/v1/me/export", headers=officer)
    assert r.status_code == 200 and r.json()["records"]["profile"] == []

    # bad bodies: a clear 422, nothing erased
    path = f"/v1/artisans/{a['id']}/erasure"
    assert_problem(
        await api.client.post(path, json={}, headers=api.admin), 422, "request_reference"
    )
    r = await api.client.post(path, json={**body, "reason": "x"}, headers=api.admin)
    assert_problem(r, 422, "reason")
    r = await api.client.post(path, json={"request_reference": ""}, headers=api.admin)
    assert_problem(r, 422, "request_reference")
    r = await api.client.post(f"/v1/artisans/{uuid.uuid4()}/erasure", json=body, headers=api.admin)
    assert_problem(r, 404, "No artisan")
    assert (await api.client.get("/v1/artisans/me", headers=a_token)).status_code == 200

    # the admin's export and erasure, recorded
    r = await api.client.get(
        f"/v1/artisans/{a['id']}/export",
        params={"request_reference": "DPO-2026-0141"},
        headers=api.admin,
    )
    assert r.status_code == 200 and r.json()["subject"] == a["id"]
    assert r.json()["records"]["profile"][0]["display_name"] == "Aline Arbre"
    r = await api.client.post(path, json=body, headers=api.admin)
    assert r.status_code == 202, r.text
    erasure = r.json()
    again = await api.client.post(path, json=body, headers=api.admin)
    assert again.status_code == 202 and again.json() == erasure
    r = await api.client.delete("/v1/me", headers=a_token)
    assert r.status_code == 202 and r.json()["erasure_id"] == erasure["erasure_id"]
    event = (await api.outbox(key=a["id"], topic="leasing.artisan.events"))[-1]
    assert event.envelope["data"]["requested_by"] == "admin"

    r = await api.client.get("/v1/privacy/requests", params={"limit": 100}, headers=api.admin)
    assert r.status_code == 200, r.text
    rows = [x for x in r.json()["items"] if x["subject_artisan_id"] == a["id"]]
    assert [(x["kind"], x["requested_by"], x["request_reference"]) for x in rows] == [
        ("erasure", "admin", "DPO-2026-0142"),
        ("export", "admin", "DPO-2026-0141"),
    ]
    assert rows[0]["requested_by_id"] == "admin-1" and rows[0]["completed_at"]
    assert "Aline" not in json.dumps(r.json())
    r = await api.client.get(
        "/v1/privacy/requests", params={"kind": "erasure", "limit": 1}, headers=api.admin
    )
    assert r.json()["limit"] == 1 and all(x["kind"] == "erasure" for x in r.json()["items"])
    # the other artisan is untouched
    r = await api.client.get("/v1/artisans/me", headers=b_token)
    assert r.status_code == 200 and r.json()["display_name"] == "Bruno Bois"


async def test_an_erasure_is_sealed_once_after_the_compaction_lag(api: Api) -> None:
    """The second id-only record on the artisan's key (it rolls the compacted topic's segment
    that holds the erasure): not before `after_s`, once after it, never twice."""
    from datetime import timedelta

    from sqlmodel import col

    from fabkit.models import OutboxMessage
    from leasing.models import PrivacyRequest
    from leasing.service.privacy import seal_due_erasures

    me, token = await api.register()
    other, other_token = await api.register()
    assert (await api.client.delete("/v1/me", headers=token)).status_code == 202
    async with api.sessions() as session:
        (row,) = (
            (
                await session.execute(
                    select(PrivacyRequest).where(col(PrivacyRequest.kind) == "erasure")
                )
            )
            .scalars()
            .all()
        )
    assert row.completed_at is not None and row.sealed_at is None
    after = 3700.0

    assert (
        await seal_due_erasures(api.sessions, after, now=row.completed_at + timedelta(seconds=3600))
        == 0
    )
    at = row.completed_at + timedelta(seconds=after + 1)
    assert await seal_due_erasures(api.sessions, after, now=at) == 1
    assert await seal_due_erasures(api.sessions, after, now=at + timedelta(hours=1)) == 0

    async with api.sessions() as session:
        sealed = (
            (
                await session.execute(
                    select(OutboxMessage).where(
                        col(OutboxMessage.event_type) == "leasing.artisan.erasure_sealed.v1"
                    )
                )
            )
            .scalars()
            .all()
        )
        stored = await session.get(PrivacyRequest, row.id)
    assert [m.key for m in sealed] == [me["id"]]  # on the artisan's key, once
    assert sealed[0].topic == "leasing.artisan.events"
    assert sealed[0].envelope["data"] == {
        "artisan_id": me["id"],
        "erasure_id": row.id,
        "sealed_at": sealed[0].envelope["data"]["sealed_at"],
    }
    assert stored is not None and stored.sealed_at is not None
    text = json.dumps(sealed[0].envelope)
    for value in (me["display_name"], me["siret"], me["contact_email"]):
        assert value not in text
    assert (await api.client.get("/v1/artisans/me", headers=other_token)).status_code == 200
    assert other["id"] != me["id"]
