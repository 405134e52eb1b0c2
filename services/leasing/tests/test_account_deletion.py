"""The identity provider's account goes too, on the session's real Keycloak: an artisan made
in Keycloak, registered in leasing and erased (self or admin) loses their Keycloak user (the
admin API answers 404, a password login fails); with Keycloak stopped or a wrong secret the
row stays and its attempts grow, then the account is deleted once it works; an account
already gone counts as done; two deleters at once (replicas, PostgreSQL) delete it once.
SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from fabkit.auth import Role
from fabkit.localstack.kafka import repo_root
from fabkit.oidc_testing import TEST_CLIENT, TEST_PASSWORD
from leasing.metrics import ACCOUNT_DELETIONS
from leasing.models import AccountDeletion
from leasing.service.common import utcnow
from leasing.service.identity_accounts import IdentityAccounts, backoff, delete_due_accounts

from .conftest import Api, eventually, make_settings, started_app

DIRECTORY = json.loads(
    (repo_root() / "deploy" / "keycloak" / "demo-directory.json").read_text(encoding="utf-8")
)
CLIENT_ID = "fabrique-privacy"
SECRET = str(DIRECTORY["clients"][CLIENT_ID]["secret"])
BACKOFF_S, BACKOFF_MAX_S = 30.0, 120.0


@pytest.fixture
async def deleting(database_url: str, kafka_broker: Any) -> AsyncIterator[Api]:
    """The app with its background account deleter on, polling every 0.2 s."""
    settings = make_settings(
        database_url,
        kafka_broker.bootstrap,
        idp_admin_client_id=CLIENT_ID,
        idp_admin_client_secret=SECRET,
        account_deletion_poll_s=0.2,
    )
    async with started_app(settings) as ready:
        yield ready


@pytest.fixture
async def manual(database_url: str, kafka_broker: Any) -> AsyncIterator[Api]:
    """The app without background workers: the tests run the deleter's passes themselves."""
    settings = make_settings(database_url, kafka_broker.bootstrap, run_call_worker=False)
    async with started_app(settings) as ready:
        yield ready


def accounts(api: Api, secret: str = SECRET) -> IdentityAccounts:
    base = api.identities.base_url
    return IdentityAccounts(
        f"{base}/admin/realms/fabrique",
        f"{base}/realms/fabrique/protocol/openid-connect/token",
        CLIENT_ID,
        secret,
    )


def keycloak_user(api: Api, user_id: str) -> int:
    """The status of the admin API's GET of the user (200 while it exists, 404 once gone)."""
    try:
        return api.identities.admin("GET", f"/users/{user_id}").status_code
    except AssertionError as refused:  # the helper raises on any 4xx with the status in it
        if ": 404 " in str(refused):
            return 404
        raise


def password_login(api: Api, user_id: str) -> httpx.Response:
    """A password login of the artisan's account (the test-only public client)."""
    ids = api.identities
    username = ids.identity(Role.ARTISAN, user_id).username
    return httpx.post(
        f"{ids.issuer}/protocol/openid-connect/token",
        data={
            "grant_type": "password",
            "client_id": TEST_CLIENT,
            "username": username,
            "password": TEST_PASSWORD,
            "scope": "openid",
        },
        timeout=30,
    )


async def row_of(api: Api, artisan_id: str) -> AccountDeletion | None:
    async with api.sessions() as session:
        stmt = select(AccountDeletion).where(AccountDeletion.artisan_id == artisan_id)  # type: ignore[arg-type]
        return (await session.execute(stmt)).scalars().first()


async def registered(api: Api) -> tuple[dict[str, Any], dict[str, str]]:
    """An artisan made in Keycloak (a real user, password login) with a leasing profile."""
    unique = uuid.uuid4().hex[:8]
    me, headers = await api.register(
        display_name=f"Inès Verrier {unique}", contact_email=f"ines-{unique}@example.org"
    )
    assert keycloak_user(api, me["id"]) == 200
    assert password_login(api, me["id"]).status_code == 200
    return me, headers


def assert_gone(api: Api, user_id: str) -> None:
    assert keycloak_user(api, user_id) == 404
    login = password_login(api, user_id)
    assert login.status_code == 401, login.text
    assert login.json()["error"] == "invalid_grant"


async def test_an_erasure_deletes_the_keycloak_account(
    deleting: Api, caplog: pytest.LogCaptureFixture
) -> None:
    api = deleting
    deleted_before = ACCOUNT_DELETIONS.labels("deleted")._value.get()
    me, headers = await registered(api)
    other, _ = await registered(api)
    caplog.clear()
    caplog.set_level(logging.DEBUG)

    r = await api.client.delete("/v1/me", headers=headers)
    assert r.status_code == 202, r.text
    assert r.json()["account"] == "deletion pending"
    erasure_id = r.json()["erasure_id"]

    async def deleted() -> AccountDeletion | None:
        row = await row_of(api, me["id"])
        return row if row is not None and row.deleted_at is not None else None

    row = await eventually(deleted)
    assert (row.erasure_id, row.attempts, row.last_error) == (erasure_id, 1, None)
    assert_gone(api, me["id"])
    assert keycloak_user(api, other["id"]) == 200  # the other artisan keeps their account
    assert password_login(api, other["id"]).status_code == 200
    assert ACCOUNT_DELETIONS.labels("deleted")._value.get() == deleted_before + 1

    # The audit log and the admin's export say the account's state.
    r = await api.client.get("/v1/privacy/requests?kind=erasure&limit=100", headers=api.admin)
    assert r.status_code == 200, r.text
    mine = next(x for x in r.json()["items"] if x["id"] == erasure_id)
    assert mine["account"] == "deleted"
    r = await api.client.get(f"/v1/artisans/{me['id']}/export", headers=api.admin)
    assert r.status_code == 200, r.text
    assert r.json()["account"] == "deleted"
    (exported,) = r.json()["records"]["account_deletions"]
    assert exported["erasure_id"] == erasure_id and exported["deleted_at"]
    # A second erasure call answers the first, with the account's state now.
    r = await api.client.post(
        f"/v1/artisans/{me['id']}/erasure", json={"request_reference": "DPO-1"}, headers=api.admin
    )
    assert (r.status_code, r.json()["account"]) == (202, "deleted")

    logged = "\n".join(rec.getMessage() for rec in caplog.records)
    assert "already gone" not in logged and f"{me['id']} deleted" in logged
    for secret in (SECRET, me["display_name"], me["contact_email"], me["siret"]):
        assert secret not in logged


async def test_an_admin_erasure_deletes_the_account_too(deleting: Api) -> None:
    api = deleting
    me, _ = await registered(api)
    body = {"request_reference": "DPO-2026-0199", "note": "Written request, identity checked."}
    r = await api.client.post(f"/v1/artisans/{me['id']}/erasure", json=body, headers=api.admin)
    assert r.status_code == 202, r.text
    assert r.json()["account"] == "deletion pending"

    async def deleted() -> bool:
        row = await row_of(api, me["id"])
        return row is not None and row.deleted_at is not None

    await eventually(deleted)
    assert_gone(api, me["id"])


async def test_an_account_already_gone_counts_as_done(manual: Api) -> None:
    api = manual
    me, headers = await registered(api)
    r = await api.client.delete("/v1/me", headers=headers)
    assert r.status_code == 202, r.text
    api.identities.admin("DELETE", f"/users/{me['id']}")  # someone removed it by hand
    client = accounts(api)
    try:
        assert await delete_due_accounts(
            api.sessions, client, backoff_s=BACKOFF_S, backoff_max_s=BACKOFF_MAX_S
        ) == (1, 0)
        # Nothing is due any more: a second pass does nothing.
        assert await delete_due_accounts(
            api.sessions, client, backoff_s=BACKOFF_S, backoff_max_s=BACKOFF_MAX_S
        ) == (0, 0)
    finally:
        await client.aclose()
    row = await row_of(api, me["id"])
    assert row is not None and row.deleted_at is not None
    assert (row.attempts, row.last_error) == (1, None)


async def test_a_wrong_secret_keeps_the_row_until_it_works(manual: Api) -> None:
    api = manual
    me, headers = await registered(api)
    r = await api.client.delete("/v1/me", headers=headers)
    assert r.status_code == 202, r.text
    now = utcnow()
    wrong = accounts(api, secret="not-the-secret")
    try:
        assert await delete_due_accounts(
            api.sessions, wrong, backoff_s=BACKOFF_S, backoff_max_s=BACKOFF_MAX_S, now=now
        ) == (0, 1)
        row = await row_of(api, me["id"])
        assert row is not None and row.deleted_at is None
        assert (row.attempts, row.last_error) == (1, "token: HTTP 401")
        assert row.next_attempt_at == now + timedelta(seconds=BACKOFF_S)
        # Not due before its backoff has passed.
        soon = now + timedelta(seconds=BACKOFF_S - 1)
        assert await delete_due_accounts(
            api.sessions, wrong, backoff_s=BACKOFF_S, backoff_max_s=BACKOFF_MAX_S, now=soon
        ) == (0, 0)
        # Each failure doubles the wait, up to the cap.
        at = row.next_attempt_at
        for attempts in (2, 3, 4):
            assert await delete_due_accounts(
                api.sessions, wrong, backoff_s=BACKOFF_S, backoff_max_s=BACKOFF_MAX_S, now=at
            ) == (0, 1)
            row = await row_of(api, me["id"])
            assert row is not None and row.attempts == attempts
            assert row.next_attempt_at - at == backoff(attempts, BACKOFF_S, BACKOFF_MAX_S)
            at = row.next_attempt_at
        assert row.next_attempt_at - now > timedelta(seconds=BACKOFF_MAX_S)
        assert backoff(4, BACKOFF_S, BACKOFF_MAX_S) == timedelta(seconds=BACKOFF_MAX_S)
    finally:
        await wrong.aclose()
    assert keycloak_user(api, me["id"]) == 200  # still there: nothing was lost or faked

    right = accounts(api)
    try:
        assert await delete_due_accounts(
            api.sessions, right, backoff_s=BACKOFF_S, backoff_max_s=BACKOFF_MAX_S, now=at
        ) == (1, 0)
    finally:
        await right.aclose()
    row = await row_of(api, me["id"])
    assert row is not None and row.deleted_at is not None
    assert (row.attempts, row.last_error) == (5, None)
    assert_gone(api, me["id"])


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_keycloak_down_gets_the_deletion_once_it_is_back(manual: Api, keycloak: Any) -> None:
    api = manual
    me, headers = await registered(api)
    r = await api.client.delete("/v1/me", headers=headers)
    assert r.status_code == 202, r.text
    client = accounts(api)
    now = utcnow()
    try:
        keycloak.stop()
        try:
            assert await delete_due_accounts(
                api.sessions, client, backoff_s=BACKOFF_S, backoff_max_s=BACKOFF_MAX_S, now=now
            ) == (0, 1)
            row = await row_of(api, me["id"])
            assert row is not None and row.deleted_at is None
            assert row.attempts == 1 and row.last_error == "token: ConnectError"
        finally:
            keycloak.restart()
        later = now + timedelta(seconds=BACKOFF_S)
        assert await delete_due_accounts(
            api.sessions, client, backoff_s=BACKOFF_S, backoff_max_s=BACKOFF_MAX_S, now=later
        ) == (1, 0)
    finally:
        await client.aclose()
    row = await row_of(api, me["id"])
    assert row is not None and row.deleted_at is not None and row.attempts == 2
    assert_gone(api, me["id"])


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_two_deleters_at_once_delete_each_account_once(manual: Api) -> None:
    api = manual
    erased = []
    for _ in range(4):
        me, headers = await registered(api)
        r = await api.client.delete("/v1/me", headers=headers)
        assert r.status_code == 202, r.text
        erased.append(me["id"])
    one, two = accounts(api), accounts(api)
    try:
        results = await asyncio.gather(
            *(
                delete_due_accounts(
                    api.sessions, c, backoff_s=BACKOFF_S, backoff_max_s=BACKOFF_MAX_S
                )
                for c in (one, two)
            )
        )
    finally:
        await one.aclose()
        await two.aclose()
    assert sum(done for done, _ in results) == 4 and all(f == 0 for _, f in results)
    for artisan_id in erased:
        row = await row_of(api, artisan_id)
        assert row is not None and row.deleted_at is not None and row.attempts == 1
        assert keycloak_user(api, artisan_id) == 404


async def test_without_the_client_the_rows_wait_with_one_warning(
    database_url: str, kafka_broker: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    settings = make_settings(database_url, kafka_broker.bootstrap, account_deletion_poll_s=0.1)
    async with started_app(settings) as api:
        me, headers = await registered(api)
        r = await api.client.delete("/v1/me", headers=headers)
        assert r.status_code == 202, r.text
        await asyncio.sleep(0.5)
        row = await row_of(api, me["id"])
        assert row is not None and row.deleted_at is None and row.attempts == 0
    warnings = [
        r.getMessage() for r in caplog.records if "LEASING_IDP_ADMIN_CLIENT_ID" in r.getMessage()
    ]
    assert len(warnings) == 1
    assert keycloak_user(api, me["id"]) == 200


async def test_erasures_made_before_the_deleter_get_their_row_at_migration(
    database_url: str,
) -> None:
    from fabkit.db import make_engine
    from fabkit.migrations import upgrade
    from leasing.cli import MIGRATIONS

    await asyncio.to_thread(upgrade, MIGRATIONS, database_url, "0007")
    erased, exported = str(uuid.uuid4()), str(uuid.uuid4())
    when = utcnow()
    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            for kind, subject in (("erasure", erased), ("export", exported)):
                await conn.execute(
                    text(
                        "INSERT INTO privacy_requests (id, kind, subject_artisan_id, "
                        "requested_by, requested_by_id, created_at, completed_at) VALUES "
                        "(:id, :kind, :subject, 'self', :subject, :at, :at)"
                    ),
                    {"id": str(uuid.uuid4()), "kind": kind, "subject": subject, "at": when},
                )
        await asyncio.to_thread(upgrade, MIGRATIONS, database_url, "0008")
        async with engine.connect() as conn:
            rows = (
                await conn.execute(text("SELECT artisan_id, attempts FROM account_deletions"))
            ).all()
    finally:
        await engine.dispose()
    assert [tuple(r) for r in rows] == [(erased, 0)]


def test_prod_refuses_the_development_secret_of_the_deleter() -> None:
    from pydantic import ValidationError

    from leasing.settings import LeasingSettings

    prod = {"environment": "prod", "oidc_issuer": "https://id.fabrique.paris/realms/fabrique"}
    with pytest.raises(ValidationError, match="committed development secret"):
        LeasingSettings(**prod, idp_admin_client_id=CLIENT_ID, idp_admin_client_secret=SECRET)
    settings = LeasingSettings(**prod, idp_admin_client_secret="generated-by-keycloak")
    assert settings.idp_admin_base == "https://id.fabrique.paris/admin/realms/fabrique"
    assert settings.idp_token_url == (
        "https://id.fabrique.paris/realms/fabrique/protocol/openid-connect/token"
    )
    inside = LeasingSettings(
        **prod, idp_admin_url="http://fabrique-keycloak-service:8080/admin/realms/fabrique"
    )
    assert inside.idp_token_url == (
        "http://fabrique-keycloak-service:8080/realms/fabrique/protocol/openid-connect/token"
    )
