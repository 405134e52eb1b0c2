"""Personal data: an artisan's export (everything leasing holds about them), their erasure
(pseudonymisation of the profile and of the texts they wrote, keeping what a legal duty
requires) and the audit log of both. Nothing personal is logged here: ids only."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlmodel import SQLModel, col
from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.auth import Principal, Role
from fabkit.errors import ProblemError
from fabkit.models import IdempotencyRecord
from fabkit.pagination import Page, PageParams
from leasing import repository as repo
from leasing.domain import OPEN_APPLICATION_STATUSES, ApplicationStatus, Decision
from leasing.events.published import (
    APPLICATION_TOPIC,
    ARTISAN_TOPIC,
    ApplicationWithdrawn,
    ArtisanErased,
    ArtisanErasureSealed,
    emit,
)
from leasing.models import AccountDeletion, ArtisanProfile, PrivacyRequest
from leasing.schemas import ErasureOut, KeptRecord, PrivacyRequestOut
from leasing.service.common import Actor, Sessions, utcnow
from leasing.service.decisions import decide, withdraw_offer
from leasing.service.identity_accounts import DELETION_PENDING, account_state

log = logging.getLogger(__name__)

PSEUDONYM = "Personne effacée"
ERASED_TEXT = "[Texte effacé à la demande de la personne]"
ERASED_EMAIL = "effacee@invalid.invalid"
WITHDRAWN_ON_ERASURE = "Withdrawn on the applicant's erasure request."
# Who erases an account inactive past its warning (service/retention.py): requested_by
# "retention" in the audit log and on the erased event.
RETENTION = Principal("leasing-retention", Role.ADMIN)
ERASED_DETAIL = (
    "This artisan profile was erased at its owner's request; nothing can be read or changed "
    "on it any more, and the account cannot register again."
)
KEPT = [
    KeptRecord(
        kind="leases",
        why="A signed lease is a contract: kept for the limitation period (5 years after it "
        "ends, Code civil art. 2224), with the artisan's id only, the name being erased.",
    ),
    KeptRecord(
        kind="decisions",
        why="The decisions on applications keep a call's published results checkable; they "
        "carry no name, and the free texts the artisan wrote are erased.",
    ),
    KeptRecord(
        kind="rankings",
        why="A call's ranking is published and may be appealed; it carries no name.",
    ),
    KeptRecord(
        kind="privacy_requests",
        why="The audit log of data-protection requests proves they were answered (ids only).",
    ),
]

_EXPORT_SECRET_FIELDS: frozenset[str] = frozenset()


def _row(model: SQLModel) -> dict[str, Any]:
    body = model.model_dump(mode="json")
    for name in _EXPORT_SECRET_FIELDS & body.keys():
        body[name] = "<kept, not exported>"
    return body


def refuse_erased(artisan: ArtisanProfile | None) -> None:
    """410 Gone for a profile that was erased (reads, changes, registering again)."""
    if artisan is not None and artisan.erased_at is not None:
        raise ProblemError(410, ERASED_DETAIL)


def _audit(
    principal: Principal,
    kind: str,
    artisan_id: str,
    now: datetime,
    reference: str | None = None,
    note: str | None = None,
) -> PrivacyRequest:
    is_self = principal.subject == artisan_id
    return PrivacyRequest(
        id=str(uuid.uuid4()),
        kind=kind,
        subject_artisan_id=artisan_id,
        requested_by="self" if is_self else "retention" if principal == RETENTION else "admin",
        requested_by_id=principal.subject,
        request_reference=reference,
        note=note,
        created_at=now,
        completed_at=None,
    )


async def _records(session: AsyncSession, artisan_id: str) -> dict[str, list[dict[str, Any]]]:
    profile = await repo.get_artisan(session, artisan_id)
    account = await repo.get_account_deletion(session, artisan_id)
    apps = await repo.applications_of_artisan(session, artisan_id)
    ids = [a.id for a in apps]
    return {
        "profile": [_row(profile)] if profile is not None else [],
        "applications": [_row(a) for a in apps],
        "decisions": [_row(d) for d in await repo.decisions_of_applications(session, ids)],
        "rankings": [_row(r) for r in await repo.ranking_rows_of_applications(session, ids)],
        "leases": [_row(lease) for lease in await repo.leases_of_artisan(session, artisan_id)],
        "appeals": [_row(a) for a in await repo.appeals_of_artisan(session, artisan_id)],
        "privacy_requests": [_row(p) for p in await repo.privacy_requests_of(session, artisan_id)],
        "account_deletions": [_row(a) for a in (account,) if a is not None],
    }


async def export(
    sessions: Sessions, principal: Principal, artisan_id: str, reference: str | None = None
) -> dict[str, Any]:
    """Everything leasing holds about `artisan_id`, grouped by kind; the export is recorded in
    the audit log (the row is in the export itself)."""
    now = utcnow()
    async with sessions() as session, session.begin():
        if principal.subject != artisan_id and await repo.get_artisan(session, artisan_id) is None:
            raise ProblemError(404, f"No artisan with id {artisan_id}.")
        row = _audit(principal, "export", artisan_id, now, reference)
        row.completed_at = now
        session.add(row)
        await session.flush()
        records = await _records(session, artisan_id)
        account = account_state(await repo.get_account_deletion(session, artisan_id))
    log.info("privacy export %s of artisan %s (%s)", row.id, artisan_id, row.requested_by)
    return {
        "service": "leasing",
        "subject": artisan_id,
        "generated_at": now.isoformat().replace("+00:00", "Z"),
        # The identity provider's account: active, or deletion pending / deleted once erased.
        "account": account or "active",
        "records": records,
    }


def _erased_out(row: PrivacyRequest, account: AccountDeletion | None) -> ErasureOut:
    assert row.completed_at is not None
    return ErasureOut(
        erasure_id=row.id,
        status="completed",
        artisan_id=row.subject_artisan_id,
        erased_at=row.completed_at,
        kept=KEPT,
        account=account_state(account) or DELETION_PENDING,
    )


async def _account_deletion(
    session: AsyncSession, artisan_id: str, erasure_id: str, now: datetime
) -> AccountDeletion:
    """The erasure's order to delete the identity provider's account (service/
    identity_accounts.py deletes it), written in the erasure's transaction: every erasure
    deletes the account, and an erasure made before the deleter existed gets its row too."""
    row = await repo.get_account_deletion(session, artisan_id, for_update=True)
    if row is None:
        row = AccountDeletion(
            artisan_id=artisan_id,
            erasure_id=erasure_id,
            created_at=now,
            attempts=0,
            next_attempt_at=now,
        )
        session.add(row)
    return row


async def _withdraw_open(
    session: AsyncSession, artisan_id: str, actor: Actor, now: datetime
) -> None:
    """Withdraw the artisan's open applications and drafts (and the offers they had)."""
    open_statuses = {s.value for s in OPEN_APPLICATION_STATUSES} | {ApplicationStatus.DRAFT.value}
    for app in await repo.applications_of_artisan(session, artisan_id, for_update=True):
        app.project = ERASED_TEXT
        if app.status in open_statuses:
            lease_id = await withdraw_offer(session, app, WITHDRAWN_ON_ERASURE, now)
            decide(session, app, Decision.WITHDRAWN, actor, WITHDRAWN_ON_ERASURE, lease_id, now)
        app.updated_at = now


async def _erase_texts(session: AsyncSession, artisan_id: str) -> None:
    apps = await repo.applications_of_artisan(session, artisan_id)
    for d in await repo.decisions_of_applications(session, [a.id for a in apps]):
        if d.actor_id == artisan_id and d.reason and d.reason != WITHDRAWN_ON_ERASURE:
            d.reason = ERASED_TEXT
    for lease in await repo.leases_of_artisan(session, artisan_id, for_update=True):
        # A reason given for declining an offer is the artisan's text; a signed lease's
        # ending belongs to the contract and is kept.
        if (
            lease.signed_at is None
            and lease.end_reason
            and lease.end_reason != WITHDRAWN_ON_ERASURE
        ):
            lease.end_reason = ERASED_TEXT
    for appeal in await repo.appeals_of_artisan(session, artisan_id, for_update=True):
        appeal.grounds = ERASED_TEXT


async def _scrub_outbox(session: AsyncSession, artisan_id: str) -> None:
    """The outbox keeps what it relayed: the artisan's profile events get the pseudonym, and
    the reasons they gave on withdrawing are replaced (the topics' records are compaction's).
    The stored answers of their Idempotency-Key POSTs (an application's answer holds its
    project text) are deleted: an erased account gets 410, so nothing is replayed any more."""
    await session.execute(
        delete(IdempotencyRecord).where(
            col(IdempotencyRecord.principal).endswith(f":{artisan_id}", autoescape=True)
        )
    )
    for msg in await repo.outbox_of(session, ARTISAN_TOPIC, [artisan_id]):
        data = dict(msg.envelope.get("data") or {})
        if isinstance(data.get("artisan"), dict):
            data["artisan"] = {
                **data["artisan"],
                "display_name": PSEUDONYM,
                "business_name": PSEUDONYM,
                "contact_email": ERASED_EMAIL,
                "labels": [],
            }
            msg.envelope = {**msg.envelope, "data": data}
    apps = [a.id for a in await repo.applications_of_artisan(session, artisan_id)]
    for msg in await repo.outbox_of(session, APPLICATION_TOPIC, apps):
        data = dict(msg.envelope.get("data") or {})
        if msg.event_type == ApplicationWithdrawn.event_type and data.get("reason") not in (
            None,
            WITHDRAWN_ON_ERASURE,
        ):
            data["reason"] = ERASED_TEXT
            msg.envelope = {**msg.envelope, "data": data}


def _pseudonymise(artisan: ArtisanProfile, now: datetime) -> None:
    artisan.display_name = PSEUDONYM
    artisan.business_name = PSEUDONYM
    # The SIRET column is unique: "X" and 13 random hex digits are no SIRET and never collide.
    artisan.siret = "X" + uuid.uuid4().hex[:13].upper()
    artisan.contact_email = ERASED_EMAIL
    artisan.contact_email_verified = False
    artisan.labels = []
    artisan.erased_at = now
    artisan.updated_at = now
    artisan.version += 1


async def erase(
    sessions: Sessions,
    principal: Principal,
    artisan_id: str,
    reference: str | None = None,
    note: str | None = None,
) -> ErasureOut:
    """Erase an artisan in one transaction: profile pseudonymised, the texts they wrote
    replaced, open applications and offers withdrawn, the erasure recorded and announced
    (leasing.artisan.erased.v1). A second call answers the first erasure."""
    now = utcnow()
    async with sessions() as session, session.begin():
        artisan = await repo.get_artisan(session, artisan_id, for_update=True)
        if artisan is None:
            raise ProblemError(404, f"No artisan with id {artisan_id}.")
        if artisan.erased_at is not None:
            done = await repo.erasure_of(session, artisan_id)
            if done is not None:
                account = await _account_deletion(session, artisan_id, done.id, now)
                return _erased_out(done, account)
        row = _audit(principal, "erasure", artisan_id, now, reference, note)
        session.add(row)
        await _withdraw_open(session, artisan_id, Actor.of(principal), now)
        await _erase_texts(session, artisan_id)
        _pseudonymise(artisan, now)
        await _scrub_outbox(session, artisan_id)
        row.completed_at = now
        account = await _account_deletion(session, artisan_id, row.id, now)
        await session.flush()
        emit(
            session,
            artisan_id,
            ArtisanErased(
                artisan_id=artisan_id,
                erasure_id=row.id,
                erased_at=now,
                requested_by=row.requested_by,
            ),
        )
    log.info("privacy erasure %s of artisan %s (%s)", row.id, artisan_id, row.requested_by)
    return _erased_out(row, account)


async def list_requests(
    sessions: Sessions, page: PageParams, kind: str | None
) -> Page[PrivacyRequestOut]:
    async with sessions() as session:
        rows, total = await repo.list_privacy_requests(session, page, kind)
        erased = [r.subject_artisan_id for r in rows if r.kind == "erasure"]
        accounts = await repo.account_deletions_of(session, erased)

    def out(r: PrivacyRequest) -> PrivacyRequestOut:
        body = PrivacyRequestOut.model_validate(r, from_attributes=True)
        if r.kind == "erasure":
            state = account_state(accounts.get(r.subject_artisan_id)) or DELETION_PENDING
            body.account = state
        return body

    return Page.of(rows, total, page, out)


__all__ = [
    "ERASED_DETAIL",
    "KEPT",
    "PSEUDONYM",
    "erase",
    "export",
    "list_requests",
    "refuse_erased",
]


# Sealing erasures on the compacted topic --------------------------------------------------------


async def seal_due_erasures(
    sessions: Sessions, after_s: float, now: datetime | None = None, batch: int = 100
) -> int:
    """Write `leasing.artisan.erasure_sealed.v1` for each erasure older than `after_s` not yet
    sealed, one transaction each; how many were sealed.

    Kafka rolls a compacted topic's active segment only on an append past its roll time
    (`max.compaction.lag.ms`), and never compacts the active segment: this second record on the
    artisan's key, written after that time, is the append that rolls the segment holding the
    erasure, so the cleaner then drops every earlier record of the person even when nobody else
    writes to the topic. Safe in several replicas (row locks, SKIP LOCKED)."""
    now = now or utcnow()
    due_before = now - timedelta(seconds=after_s)
    async with sessions() as session:
        ids = await repo.unsealed_erasure_ids(session, due_before, batch)
    sealed = 0
    for request_id in ids:
        async with sessions() as session, session.begin():
            row = await repo.get_privacy_request(session, request_id, skip_locked=True)
            if row is None or row.sealed_at is not None:
                continue  # another replica has it, or sealed it meanwhile
            row.sealed_at = now
            emit(
                session,
                row.subject_artisan_id,
                ArtisanErasureSealed(
                    artisan_id=row.subject_artisan_id, erasure_id=row.id, sealed_at=now
                ),
            )
            sealed += 1
    return sealed


async def run_erasure_sealer(
    sessions: Sessions, stop: asyncio.Event, after_s: float, every: float
) -> None:
    """Background task of the lifespan: seals due erasures every `every` seconds."""
    while not stop.is_set():
        try:
            sealed = await seal_due_erasures(sessions, after_s)
            if sealed:
                log.info("sealed %d erasures on %s", sealed, ARTISAN_TOPIC)
        except Exception as exc:
            log.warning("erasure sealer failed: %s", type(exc).__name__)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
