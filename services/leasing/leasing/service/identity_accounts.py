"""The identity provider's account of an erased artisan goes too: every erasure (self, admin,
retention) writes an `account_deletions` row in its transaction (service/privacy.py), and the
account deleter here deletes the Keycloak user through the realm's admin REST API, retrying
with a capped exponential backoff until it is gone, so a provider that is down at that moment
gets it later and nothing is lost.

The deleter authenticates by the client-credentials grant of a confidential client whose
service account has realm-management's manage-users (fabrique-privacy in the committed realm).
A DELETE answered 204 (deleted) or 404 (already gone) is done. Failures are recorded as a kind
(an exception type or an HTTP status), never a response body; logs carry ids only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import quote

import httpx

from leasing import repository as repo
from leasing.metrics import ACCOUNT_DELETIONS, ACCOUNT_DELETIONS_PENDING
from leasing.models import AccountDeletion
from leasing.service.common import Sessions, utcnow
from leasing.settings import LeasingSettings

log = logging.getLogger(__name__)

#: A token is taken again this long before the provider says it expires.
_TOKEN_MARGIN_S = 30.0
#: The account states the erasure's answer and the audit log show.
AccountState = Literal["deletion pending", "deleted"]
DELETION_PENDING: AccountState = "deletion pending"
DELETED: AccountState = "deleted"


class AccountDeletionFailed(Exception):
    """The provider did not delete the account; `kind` says why without any response body."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class IdentityAccounts:
    """The few admin REST calls of the account deleter, with its client-credentials token."""

    def __init__(
        self,
        admin_base: str,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.admin_base = admin_base.rstrip("/")
        self.token_url = token_url
        self._credentials = (client_id, client_secret)
        self._http = client or httpx.AsyncClient(timeout=timeout)
        self._owns_client = client is None
        self._token: str | None = None
        self._token_expires = 0.0

    @classmethod
    def from_settings(cls, settings: LeasingSettings) -> IdentityAccounts | None:
        """The deleter's client, or None when the client id or secret is unset."""
        secret = settings.idp_admin_client_secret
        if not settings.idp_admin_client_id or secret is None or not secret.get_secret_value():
            return None
        return cls(
            settings.idp_admin_base,
            settings.idp_token_url,
            settings.idp_admin_client_id,
            secret.get_secret_value(),
        )

    async def _access_token(self) -> str:
        if self._token is not None and time.monotonic() < self._token_expires:
            return self._token
        try:
            answer = await self._http.post(
                self.token_url, data={"grant_type": "client_credentials"}, auth=self._credentials
            )
        except httpx.HTTPError as exc:
            raise AccountDeletionFailed(f"token: {type(exc).__name__}") from exc
        if answer.status_code != 200:
            raise AccountDeletionFailed(f"token: HTTP {answer.status_code}")
        try:
            body = answer.json()
            token = str(body["access_token"])
            lifespan = float(body.get("expires_in", 60))
        except (ValueError, KeyError, TypeError) as exc:
            raise AccountDeletionFailed(f"token: {type(exc).__name__}") from exc
        self._token = token
        self._token_expires = time.monotonic() + max(0.0, lifespan - _TOKEN_MARGIN_S)
        return token

    async def delete_user(self, user_id: str) -> bool:
        """Delete the user; True when it was deleted now, False when it was already gone.
        Raises :class:`AccountDeletionFailed` otherwise."""
        url = f"{self.admin_base}/users/{quote(user_id, safe='')}"
        for attempt in (1, 2):
            headers = {"Authorization": f"Bearer {await self._access_token()}"}
            try:
                answer = await self._http.delete(url, headers=headers)
            except httpx.HTTPError as exc:
                raise AccountDeletionFailed(type(exc).__name__) from exc
            if answer.status_code == 401 and attempt == 1:
                self._token = None  # revoked or expired early: one more try with a new token
                continue
            if answer.status_code in (200, 204):
                return True
            if answer.status_code == 404:
                return False
            raise AccountDeletionFailed(f"HTTP {answer.status_code}")
        raise AccountDeletionFailed("HTTP 401")

    async def aclose(self) -> None:
        if self._owns_client:
            await self._http.aclose()


def account_state(row: AccountDeletion | None) -> AccountState | None:
    """What the erasure's answer says of the account: deletion pending, deleted (or None)."""
    if row is None:
        return None
    return DELETED if row.deleted_at is not None else DELETION_PENDING


def backoff(attempts: int, base_s: float, max_s: float) -> timedelta:
    """The wait after the `attempts`-th failure: base, doubled each time, capped."""
    return timedelta(seconds=min(max_s, base_s * 2 ** min(max(attempts - 1, 0), 30)))


async def delete_due_accounts(
    sessions: Sessions,
    accounts: IdentityAccounts,
    *,
    backoff_s: float,
    backoff_max_s: float,
    now: datetime | None = None,
    batch: int = 50,
) -> tuple[int, int]:
    """Try each due account deletion once, one transaction each; (done, failed).

    The row stays locked during the provider's call, so another replica skips it (SKIP LOCKED)
    rather than deleting the same account; on SQLite one process runs the deleter."""
    now = now or utcnow()
    async with sessions() as session:
        due = await repo.due_account_deletion_ids(session, now, batch)
    done = failed = 0
    for artisan_id in due:
        async with sessions() as session, session.begin():
            row = await repo.get_account_deletion(
                session, artisan_id, for_update=True, skip_locked=True
            )
            if row is None or row.deleted_at is not None or row.next_attempt_at > now:
                continue  # another replica has it, or did it meanwhile
            row.attempts += 1
            try:
                deleted_now = await accounts.delete_user(artisan_id)
            except AccountDeletionFailed as exc:
                row.last_error = exc.kind[:200]
                row.next_attempt_at = now + backoff(row.attempts, backoff_s, backoff_max_s)
                failed += 1
                ACCOUNT_DELETIONS.labels("failed").inc()
                log.warning(
                    "account of erased artisan %s not deleted (attempt %d: %s); next try at %s",
                    artisan_id,
                    row.attempts,
                    row.last_error,
                    row.next_attempt_at.isoformat(timespec="seconds"),
                )
                continue
            row.deleted_at = now
            row.last_error = None
            done += 1
            ACCOUNT_DELETIONS.labels("deleted").inc()
            log.info(
                "account of erased artisan %s %s (erasure %s)",
                artisan_id,
                "deleted" if deleted_now else "already gone",
                row.erasure_id,
            )
    return done, failed


async def _refresh_pending(sessions: Sessions) -> int:
    async with sessions() as session:
        pending = await repo.count_pending_account_deletions(session)
    ACCOUNT_DELETIONS_PENDING.set(pending)
    return pending


async def run_account_deleter(
    sessions: Sessions, stop: asyncio.Event, settings: LeasingSettings
) -> None:
    """Background task of the lifespan: deletes due accounts every account_deletion_poll_s.
    Without the deleter's client id and secret, the rows wait and one warning says so."""
    accounts = IdentityAccounts.from_settings(settings)
    if accounts is None:
        with contextlib.suppress(Exception):
            pending = await _refresh_pending(sessions)
            log.warning(
                "LEASING_IDP_ADMIN_CLIENT_ID / LEASING_IDP_ADMIN_CLIENT_SECRET are unset: the "
                "identity-provider accounts of erased artisans are not deleted; they wait "
                "(%d now) until the deleter's client is configured",
                pending,
            )
        return
    try:
        while not stop.is_set():
            try:
                await delete_due_accounts(
                    sessions,
                    accounts,
                    backoff_s=settings.account_deletion_backoff_s,
                    backoff_max_s=settings.account_deletion_backoff_max_s,
                )
                await _refresh_pending(sessions)
            except Exception as exc:
                log.warning("account deleter failed: %s", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), settings.account_deletion_poll_s)
    finally:
        await accounts.aclose()
