"""Leasing's retention rules on SQLite and PostgreSQL, with an injected `now`: an artisan
inactive for two years is warned once (the event read back from the broker, ids only), then
erased thirty days later (requested_by retention); activity after the warning cancels it; a
tenant is kept with their lease; an application not selected is pseudonymised after two years
(a selected one untouched); published outbox rows, old audit-log rows and old leases' texts
go; the oldest-record gauge per table; the admin's run and the rules list; migration 0009
backfills the last activity."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY
from sqlalchemy import update
from sqlmodel import col, select

from fabkit.auth import Role
from fabkit.db import UTCDateTime, make_engine
from fabkit.migrations import upgrade
from fabkit.models import OutboxMessage
from fabkit.testing import assert_problem
from leasing import repository as repo
from leasing.cli import MIGRATIONS
from leasing.metrics import refresh_business_gauges
from leasing.models import Appeal, Application, ArtisanProfile, Call, PrivacyRequest
from leasing.service import retention
from leasing.service.privacy import ERASED_TEXT, PSEUDONYM
from leasing.service.retention import apply_retention

from .conftest import (
    Api,
    data_of,
    eventually,
    headers_of,
    make_settings,
    read_events,
    started_app,
)
from .test_results import JURY, decided_call

PRIVACY_TOPIC = "leasing.privacy.events"
ARTISAN_TOPIC = "leasing.artisan.events"
DAY = timedelta(days=1)
GROUNDS = "Mes quinze ans de tournage n'ont pas été comptés dans la grille."


@pytest.fixture
async def api(database_url: str, kafka_broker: Any) -> AsyncIterator[Api]:
    # No background work: the retention job runs only when a test calls it, at its `now`.
    settings = make_settings(database_url, kafka_broker.bootstrap, run_call_worker=False)
    async with started_app(settings) as ready:
        yield ready


def now_() -> datetime:
    return datetime.now(UTC)


async def set_last_active(api: Api, artisan_id: str, when: datetime) -> None:
    async with api.sessions() as session, session.begin():
        await session.execute(
            update(ArtisanProfile)
            .where(col(ArtisanProfile.id) == artisan_id)
            .values(last_active_at=when)
        )


async def profile(api: Api, artisan_id: str) -> ArtisanProfile:
    async with api.sessions() as session:
        row = await repo.get_artisan(session, artisan_id)
    assert row is not None
    return row


async def published(api: Api, topic: str, key: str) -> list[OutboxMessage]:
    """The outbox rows of `key` on `topic`, once the relay has published them all."""

    async def check() -> list[OutboxMessage] | None:
        rows = await api.outbox(key=key, topic=topic)
        return rows if rows and all(r.published_at for r in rows) else None

    return await eventually(check)  # type: ignore[no-any-return]


# Inactive accounts ---------------------------------------------------------------------------


async def test_an_inactive_artisan_is_warned_once_then_erased_after_the_notice(
    api: Api, kafka_broker: Any
) -> None:
    me, _ = await api.register(display_name=f"Inès {uuid.uuid4().hex[:6]}")
    other, other_token = await api.register(display_name="Bruno Bois")
    now = now_()
    await set_last_active(api, me["id"], now - 731 * DAY)

    report = await apply_retention(api.sessions, now)
    assert report.count("inactive_accounts", "warned") == 1
    assert all(r.error is None for r in report.rules), report
    again = await apply_retention(api.sessions, now + DAY)
    assert again.count("inactive_accounts", "warned") == 0  # warned once

    stored = await profile(api, me["id"])
    assert stored.inactivity_warned_at == now
    assert stored.inactivity_erasure_due_at == now + 30 * DAY
    (row,) = await published(api, PRIVACY_TOPIC, me["id"])
    (record,) = await read_events(kafka_broker.bootstrap, PRIVACY_TOPIC, me["id"], expect=1)
    assert headers_of(record)["ce_type"] == "leasing.artisan.inactivity_warned.v1"
    data = data_of(record)
    assert data == row.envelope["data"]
    assert set(data) == {"artisan_id", "warned_at", "erasure_due_at", "last_active_at"}
    assert data["artisan_id"] == me["id"]
    assert datetime.fromisoformat(data["erasure_due_at"]) == now + 30 * DAY
    text = record.value.decode()
    for value in (me["display_name"], me["business_name"], me["siret"], me["contact_email"]):
        assert value not in text, value

    # not before the date announced, then erased like any erasure
    early = await apply_retention(api.sessions, now + 30 * DAY - timedelta(minutes=1))
    assert early.count("inactive_accounts", "erased") == 0
    assert (await profile(api, me["id"])).erased_at is None
    late = await apply_retention(api.sessions, now + 30 * DAY)
    assert late.count("inactive_accounts", "erased") == 1
    erased = await profile(api, me["id"])
    assert erased.erased_at is not None
    assert (erased.display_name, erased.business_name) == (PSEUDONYM, PSEUDONYM)
    assert erased.siret != me["siret"] and erased.contact_email != me["contact_email"]
    async with api.sessions() as session:
        (audit,) = await repo.privacy_requests_of(session, me["id"])
    assert (audit.kind, audit.requested_by) == ("erasure", "retention")
    assert audit.note is not None and me["display_name"] not in audit.note
    # (the run's outbox rule, 30 days on, already pruned the published rows: read the topic)
    records = await read_events(kafka_broker.bootstrap, ARTISAN_TOPIC, me["id"], expect=2)
    assert [headers_of(r)["ce_type"] for r in records] == [
        "leasing.artisan.registered.v1",
        "leasing.artisan.erased.v1",
    ]
    assert data_of(records[-1])["requested_by"] == "retention"
    assert data_of(records[-1])["erasure_id"] == audit.id

    # the other artisan is untouched, and a later run erases nobody twice
    later = await apply_retention(api.sessions, now + 31 * DAY)
    assert later.count("inactive_accounts", "erased") == 0
    r = await api.client.get("/v1/artisans/me", headers=other_token)
    assert r.status_code == 200 and r.json()["display_name"] == other["display_name"]


async def test_activity_after_the_warning_cancels_the_erasure(api: Api) -> None:
    me, token = await api.register()
    now = now_()
    await set_last_active(api, me["id"], now - 800 * DAY)
    assert (await apply_retention(api.sessions, now)).count("inactive_accounts", "warned") == 1

    # the artisan logs in and changes their profile after the warning
    r = await api.client.get("/v1/artisans/me", headers=token)
    r = await api.client.patch(
        "/v1/artisans/me", json={"display_name": "Camille R."}, headers=token
    )
    assert r.status_code == 200, r.text
    report = await apply_retention(api.sessions, now + 31 * DAY)
    assert report.count("inactive_accounts", "erased") == 0
    assert report.count("inactive_accounts", "cancelled") == 1
    kept = await profile(api, me["id"])
    assert kept.erased_at is None and kept.display_name == "Camille R."
    assert kept.inactivity_warned_at is None and kept.inactivity_erasure_due_at is None

    # the next warning only after another two years without activity
    active = kept.last_active_at
    soon = await apply_retention(api.sessions, active + 729 * DAY)
    assert soon.count("inactive_accounts", "warned") == 0
    late = await apply_retention(api.sessions, active + 731 * DAY)
    assert late.count("inactive_accounts", "warned") == 1


async def test_activity_is_every_write_of_the_artisan_and_a_daily_read(api: Api) -> None:
    me, token = await api.register()
    registered = (await profile(api, me["id"])).last_active_at
    assert abs(registered - now_()) < timedelta(minutes=1)

    # reading one's profile counts once a day
    await set_last_active(api, me["id"], now_() - 2 * DAY)
    assert (await api.client.get("/v1/artisans/me", headers=token)).status_code == 200
    read = (await profile(api, me["id"])).last_active_at
    assert now_() - read < timedelta(minutes=1)
    assert (await api.client.get("/v1/artisans/me", headers=token)).status_code == 200
    assert (await profile(api, me["id"])).last_active_at == read  # no write per request

    # any write of theirs elsewhere in the API (an application), not someone else's
    old = now_() - 10 * DAY
    await set_last_active(api, me["id"], old)
    landlord_id, landlord = api.landlord()
    unit = await api.vacant_unit(landlord_id)
    app = await api.apply(token, unit.unit_id)
    applied = (await profile(api, me["id"])).last_active_at
    assert now_() - applied < timedelta(minutes=1)
    await set_last_active(api, me["id"], old)
    r = await api.client.post(
        f"/v1/applications/{app['id']}/reject",
        json={"reason": "The unit is let.", "ground": "technical_unfit"},
        headers=landlord,
    )
    assert r.status_code in (200, 409), r.text
    assert (await profile(api, me["id"])).last_active_at == old
    # a refused write is no activity either
    r = await api.client.patch("/v1/artisans/me", json={"siret": "123"}, headers=token)
    assert r.status_code == 422
    assert (await profile(api, me["id"])).last_active_at == old


async def test_a_tenant_is_kept_with_their_lease_until_it_ended_five_years_ago(api: Api) -> None:
    d = await decided_call(api)
    tenant = d["artisans"][2]
    now = now_()
    for artisan in d["artisans"]:
        await set_last_active(api, artisan["id"], now - 900 * DAY)

    report = await apply_retention(api.sessions, now)
    assert report.count("inactive_accounts", "warned") == 2  # the two not selected
    assert report.count("inactive_accounts", "kept_for_lease") == 1
    assert (await profile(api, tenant["id"])).inactivity_warned_at is None
    rules = {r.rule: r.kept for r in retention.rules(retention.Periods())}
    assert "kept with the lease" in rules["inactive_accounts"]

    # the lease ended five years and a day ago: its texts are cleared, the tenant warned
    async with api.sessions() as session, session.begin():
        (lease,) = await repo.leases_of_artisan(session, tenant["id"], for_update=True)
        lease.status, lease.ended_on = "ended", (now - 1827 * DAY).date()
        lease.start_date = lease.ended_on - 400 * DAY
        lease.end_reason, lease.message = "Fin du bail, départ en province.", "Bienvenue !"
    later = await apply_retention(api.sessions, now + DAY)
    assert later.count("ended_leases", "cleared") == 1
    assert later.count("inactive_accounts", "warned") == 1
    assert (await profile(api, tenant["id"])).inactivity_warned_at == now + DAY
    async with api.sessions() as session:
        (lease,) = await repo.leases_of_artisan(session, tenant["id"])
    assert (lease.message, lease.end_reason) == (None, None)
    assert (await apply_retention(api.sessions, now + DAY)).count("ended_leases", "cleared") == 0


# Applications ---------------------------------------------------------------------------------


async def test_an_unselected_application_is_pseudonymised_after_two_years(api: Api) -> None:
    d = await decided_call(api)
    officer = api.identities.headers(Role.OFFICER, "officer-1")
    r = await api.client.put(f"/v1/calls/{d['call_id']}/jury", json=JURY, headers=d["landlord"])
    assert r.status_code == 200, r.text
    r = await api.client.post(f"/v1/calls/{d['call_id']}/results", headers=d["landlord"])
    assert r.status_code == 200, r.text
    rejected, selected = d["apps"][0], d["apps"][2]
    r = await api.client.post(
        f"/v1/applications/{rejected['id']}/appeal",
        json={"grounds": GROUNDS},
        headers=d["tokens"][0],
    )
    assert r.status_code == 201, r.text
    appeal_id = r.json()["id"]
    async with api.sessions() as session:
        call = await repo.get_call(session, d["call_id"])
    assert call is not None and call.decided_at is not None
    decided = call.decided_at

    # an appeal awaiting its answer holds the application back
    held = await apply_retention(api.sessions, now_() + 731 * DAY)
    assert held.count("unselected_applications", "pseudonymised") == 1  # the second applicant
    answer = {"outcome": "dismissed", "answer": "The grid counts years since registration."}
    r = await api.client.post(f"/v1/appeals/{appeal_id}/answer", json=answer, headers=officer)
    assert r.status_code == 200, r.text

    async with api.sessions() as session:
        changed = (await session.get(Application, rejected["id"])).updated_at  # type: ignore[union-attr]
    cut = max(decided, changed) + 730 * DAY
    early = await apply_retention(api.sessions, cut - timedelta(minutes=1))
    assert early.count("unselected_applications", "pseudonymised") == 0
    report = await apply_retention(api.sessions, cut + timedelta(minutes=1))
    assert report.count("unselected_applications", "pseudonymised") == 1
    again = await apply_retention(api.sessions, cut + 2 * DAY)
    assert again.count("unselected_applications", "pseudonymised") == 0  # once

    async with api.sessions() as session:
        gone = await session.get(Application, rejected["id"])
        kept = await session.get(Application, selected["id"])
        appeal = await session.get(Appeal, appeal_id)
        decisions = await repo.decisions_of_applications(session, [rejected["id"]])
    assert gone is not None and kept is not None and appeal is not None
    assert gone.project == ERASED_TEXT and gone.pseudonymised_at == cut + timedelta(minutes=1)
    assert (gone.score, gone.status) == (rejected["score"], "rejected")  # the row is kept
    assert appeal.grounds == ERASED_TEXT and appeal.answer == answer["answer"]
    # the landlord's reason is the landlord's, not the applicant's text
    assert "60 kVA" in " ".join(x.reason or "" for x in decisions)
    assert kept.project == selected["project"] and kept.pseudonymised_at is None
    r = await api.client.get(f"/v1/calls/{d['call_id']}/results")
    assert r.status_code == 200 and r.json()["ranked"] == 3


# Outbox, audit log ---------------------------------------------------------------------------


async def test_published_outbox_rows_and_old_audit_rows_go(api: Api) -> None:
    me, token = await api.register()
    assert (await api.client.get("/v1/me/export", headers=token)).status_code == 200
    rows = await published(api, ARTISAN_TOPIC, me["id"])
    last = max(r.published_at for r in rows if r.published_at)
    async with api.sessions() as session:
        total = len((await session.execute(select(OutboxMessage))).scalars().all())

    early = await apply_retention(api.sessions, last + 8 * DAY - timedelta(minutes=1))
    assert early.count("published_outbox", "deleted") < total
    report = await apply_retention(api.sessions, last + 8 * DAY + timedelta(minutes=1))
    assert (
        early.count("published_outbox", "deleted") + report.count("published_outbox", "deleted")
        == total
    )
    assert await api.outbox(key=me["id"]) == []

    async with api.sessions() as session:
        (audit,) = await repo.privacy_requests_of(session, me["id"])
    kept = await apply_retention(api.sessions, audit.created_at + 1825 * DAY)
    assert kept.count("privacy_requests", "deleted") == 0
    gone = await apply_retention(api.sessions, audit.created_at + 1827 * DAY)
    assert gone.count("privacy_requests", "deleted") == 1
    async with api.sessions() as session:
        assert await session.get(PrivacyRequest, audit.id) is None


async def test_one_failing_rule_does_not_stop_the_others(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, token = await api.register()
    assert (await api.client.get("/v1/me/export", headers=token)).status_code == 200

    async def broken(*args: Any, **kwargs: Any) -> list[str]:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(repo, "unselected_application_ids", broken)
    report = await apply_retention(api.sessions, now_() + 1827 * DAY)
    by_rule = {r.rule: r for r in report.rules}
    assert by_rule["unselected_applications"].error == "RuntimeError"
    assert by_rule["privacy_requests"].counts == {"deleted": 1}
    assert by_rule["inactive_accounts"].counts["warned"] == 1


async def test_one_failing_erasure_does_not_stop_the_others(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _ = await api.register()
    second, _ = await api.register()
    now = now_()
    for artisan in (first, second):
        await set_last_active(api, artisan["id"], now - 731 * DAY)
    assert (await apply_retention(api.sessions, now)).count("inactive_accounts", "warned") == 2
    real_erase = retention.privacy.erase

    async def erase_but_first(sessions: Any, principal: Any, artisan_id: str, **kw: Any) -> Any:
        if artisan_id == first["id"]:
            raise RuntimeError("the identity provider's row could not be written")
        return await real_erase(sessions, principal, artisan_id, **kw)

    monkeypatch.setattr(retention.privacy, "erase", erase_but_first)
    report = await apply_retention(api.sessions, now + 30 * DAY)
    assert report.count("inactive_accounts", "erased") == 1
    assert report.count("inactive_accounts", "failed") == 1
    assert (await profile(api, second["id"])).erased_at is not None
    assert (await profile(api, first["id"])).erased_at is None
    monkeypatch.setattr(retention.privacy, "erase", real_erase)
    again = await apply_retention(api.sessions, now + 31 * DAY)
    assert again.count("inactive_accounts", "erased") == 1  # the next run takes it
    assert (await profile(api, first["id"])).erased_at is not None


# Metric --------------------------------------------------------------------------------------


def gauge(table: str) -> float:
    value = REGISTRY.get_sample_value("fabrique_personal_data_oldest_seconds", {"table": table})
    assert value is not None, table
    return value


async def test_the_oldest_personal_record_of_each_table(api: Api) -> None:
    d = await decided_call(api)
    now = now_()
    await set_last_active(api, d["artisans"][0]["id"], now - 100 * DAY)
    async with api.sessions() as session, session.begin():
        # the unselected applications count from the later of their call's decision and
        # their last change: 40 days here, not the call's 50
        await session.execute(
            update(Call).where(col(Call.id) == d["call_id"]).values(decided_at=now - 50 * DAY)
        )
        await session.execute(
            update(Application)
            .where(col(Application.id).in_([d["apps"][0]["id"], d["apps"][1]["id"]]))
            .values(updated_at=now - 40 * DAY)
        )
        session.add(
            PrivacyRequest(
                id=str(uuid.uuid4()),
                kind="export",
                subject_artisan_id=d["artisans"][0]["id"],
                requested_by="self",
                requested_by_id=d["artisans"][0]["id"],
                created_at=now - 10 * DAY,
                completed_at=now - 10 * DAY,
            )
        )

    await refresh_business_gauges(api.sessions)
    assert gauge("artisan_profiles") == pytest.approx(100 * 86400, abs=120)
    assert gauge("applications") == pytest.approx(40 * 86400, abs=120)
    assert gauge("privacy_requests") == pytest.approx(10 * 86400, abs=120)
    assert 0 <= gauge("outbox_messages") < 600

    # once pseudonymised, an application no longer counts
    await apply_retention(api.sessions, now + 731 * DAY)
    await refresh_business_gauges(api.sessions)
    assert gauge("applications") == 0.0
    r = await api.client.get("/metrics")
    assert 'fabrique_personal_data_oldest_seconds{table="privacy_requests"}' in r.text


# Endpoints -----------------------------------------------------------------------------------


async def test_only_an_admin_runs_the_job_and_officers_read_the_rules(api: Api) -> None:
    _, artisan = await api.register()
    officer = api.identities.headers(Role.OFFICER, "officer-1")
    _, landlord = api.landlord()

    for headers in (artisan, officer, landlord):
        assert_problem(
            await api.client.post("/v1/privacy/retention/run", headers=headers), 403, "admin"
        )
    r = await api.client.post("/v1/privacy/retention/run", headers=api.admin)
    assert r.status_code == 200, r.text
    body = r.json()
    assert datetime.fromisoformat(body["ran_at"]) <= now_()
    assert [x["rule"] for x in body["rules"]] == [
        "inactive_accounts",
        "unselected_applications",
        "ended_leases",
        "privacy_requests",
        "published_outbox",
    ]
    assert all(x["error"] is None for x in body["rules"])
    assert body["rules"][0]["counts"] == {
        "warned": 0,
        "erased": 0,
        "cancelled": 0,
        "kept_for_lease": 0,
        "failed": 0,
    }

    assert_problem(await api.client.get("/v1/privacy/retention", headers=artisan), 403)
    assert_problem(await api.client.get("/v1/privacy/retention", headers=landlord), 403)
    for headers in (officer, api.admin):
        r = await api.client.get("/v1/privacy/retention", headers=headers)
        assert r.status_code == 200, r.text
    rules = {x["table"]: x for x in r.json()}
    assert set(rules) == {
        "artisan_profiles",
        "applications",
        "leases",
        "privacy_requests",
        "outbox_messages",
    }
    assert rules["artisan_profiles"]["period_days"] == 730
    assert rules["artisan_profiles"]["setting"] == "LEASING_RETENTION_INACTIVE_AFTER_DAYS"
    assert rules["outbox_messages"]["period_days"] == 8
    assert rules["privacy_requests"]["period"].startswith("1826 days after")
    assert all(x["legal_basis"].endswith(".") and x["kept"].endswith(".") for x in rules.values())
    assert "art. 6(1)(e)" in rules["applications"]["legal_basis"]
    assert json.dumps(r.json())  # plain JSON


async def test_the_periods_follow_the_settings(database_url: str, kafka_broker: Any) -> None:
    settings = make_settings(
        database_url,
        kafka_broker.bootstrap,
        run_call_worker=False,
        retention_inactive_after_days=400,
        retention_warning_days=14,
    )
    async with started_app(settings) as api:
        me, _ = await api.register()
        now = now_()
        await set_last_active(api, me["id"], now - 401 * DAY)
        r = await api.client.get("/v1/privacy/retention", headers=api.admin)
        assert r.json()[0]["period_days"] == 400
        r = await api.client.post("/v1/privacy/retention/run", headers=api.admin)
        assert r.json()["rules"][0]["counts"]["warned"] == 1
        stored = await profile(api, me["id"])
        assert stored.inactivity_erasure_due_at is not None and stored.inactivity_warned_at
        assert stored.inactivity_erasure_due_at - stored.inactivity_warned_at == 14 * DAY
        assert len(await api.outbox(key=me["id"], topic=PRIVACY_TOPIC)) == 1


async def test_migration_0009_backfills_the_last_activity_from_the_last_change(
    database_url: str,
) -> None:
    await asyncio.to_thread(upgrade, MIGRATIONS, database_url, "0008")
    changed = datetime(2024, 3, 1, 9, 30, tzinfo=UTC)
    profiles = sa.table(
        "artisan_profiles",
        *(sa.column(n) for n in ("id", "display_name", "business_name", "siret", "legal_form")),
        *(sa.column(n) for n in ("trades", "labels", "contact_email", "contact_email_verified")),
        sa.column("business_created_on", sa.Date()),
        sa.column("version", sa.Integer()),
        sa.column("registered_at", UTCDateTime()),
        sa.column("updated_at", UTCDateTime()),
    )
    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                profiles.insert().values(
                    id="a-1",
                    display_name="Old",
                    business_name="Old",
                    siret="12345678901234",
                    legal_form="ei",
                    trades="[]",
                    labels="[]",
                    contact_email="old@example.org",
                    contact_email_verified=False,
                    business_created_on=changed.date(),
                    version=3,
                    registered_at=changed - 90 * DAY,
                    updated_at=changed,
                )
            )
        await asyncio.to_thread(upgrade, MIGRATIONS, database_url, "0009")
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    select(
                        col(ArtisanProfile.last_active_at),
                        col(ArtisanProfile.inactivity_warned_at),
                    ).where(col(ArtisanProfile.id) == "a-1")
                )
            ).one()
    finally:
        await engine.dispose()
    assert row == (changed, None)
