"""Personal data held here about one person: its export, its erasure by the person
(`DELETE /v1/me`) and by leasing (`leasing.artisan.erased.v1`), and the tombstone that keeps an
erased artisan's read-model copy from coming back when an old profile event is replayed.

Nothing here logs a name, an address or a text: only ids and counts (docs/privacy.md).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from notifications import repository as repo
from notifications.domain import DeliveryStatus
from notifications.events.consumed import ArtisanErasedIn, ArtisanIn
from notifications.models import (
    GUEST_OWNER_PREFIX,
    Artisan,
    Delivery,
    ErasedArtisan,
    Erasure,
    FeedItem,
    GuestConfirmation,
    GuestSubscriber,
    Subscription,
    SubscriptionTerm,
)
from notifications.service import read_models
from notifications.service.common import Sessions, now
from notifications.service.guests import normalise_email

log = logging.getLogger(__name__)

SERVICE = "notifications"
NOT_EXPORTED = "<kept, not exported>"
#: What an erased delivery's payload becomes (the column is required).
ERASED_PAYLOAD: dict[str, Any] = {"erased": True}

#: What an erasure keeps, and why (the `kept` of the answer).
KEPT_DELIVERIES = {
    "kind": "deliveries",
    "why": "Ids, channel, status, attempt counts and timestamps of each message sent stay, "
    "without the address, URL, content or error text: they are the exactly-once record that "
    "keeps a replayed event from sending the message again, and the delivery counts.",
}
KEPT_ARTISAN_COPY = {
    "kind": "artisan_copy",
    "why": "The copy of your leasing profile stays while leasing holds the profile: it is "
    "erased here when leasing erases your account.",
}


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (date, datetime)) else value


def _row(obj: Any, *, hide: Sequence[str] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in type(obj).model_fields:
        value = getattr(obj, name)
        out[name] = NOT_EXPORTED if name in hide and value is not None else _json(value)
    return out


async def _guest_of(session: AsyncSession, artisan: Artisan | None) -> GuestSubscriber | None:
    if artisan is None or not artisan.contact_email:
        return None
    return await repo.get_guest_by_email(session, normalise_email(artisan.contact_email))


async def _owned(session: AsyncSession, model: Any, owner_column: Any, owner: str) -> list[Any]:
    return list((await session.execute(select(model).where(owner_column == owner))).scalars())


def _delivery_out(d: Delivery, subs: dict[str, Subscription], artisan: Artisan | None) -> Any:
    out = _row(d)
    # Where it went: the personal parts of its target (address or URL), as known now.
    target: dict[str, Any] = {"channel": d.channel}
    sub = subs.get(d.subscription_id or "")
    if d.channel == "email":
        if sub is not None:
            target["email_address"] = sub.email_address
        elif artisan is not None:
            target["email_address"] = artisan.contact_email
    elif d.channel == "webhook" and sub is not None:
        target["webhook_url"] = sub.webhook_url
    out["target"] = target
    return out


async def export(sessions: Sessions, subject: str) -> dict[str, Any]:
    """Every record held about `subject`, grouped by kind (the export contract)."""
    async with sessions() as session:
        subs = await _owned(session, Subscription, col(Subscription.artisan_id), subject)
        feed = await _owned(session, FeedItem, col(FeedItem.artisan_id), subject)
        deliveries = await _owned(session, Delivery, col(Delivery.artisan_id), subject)
        artisan = await repo.get_artisan(session, subject)
        erasures = await _owned(session, Erasure, col(Erasure.subject), subject)
        tombstone = await session.get(ErasedArtisan, subject)
        guest_records: list[dict[str, Any]] = []
        # Guest alerts under the account's address, only when the identity provider verified
        # that address for this account (anyone may type someone else's address).
        guest = (
            await _guest_of(session, artisan)
            if artisan and artisan.contact_email_verified
            else None
        )
        if guest is not None:
            owner = GUEST_OWNER_PREFIX + guest.id
            g_subs = await _owned(session, Subscription, col(Subscription.artisan_id), owner)
            g_deliveries = await _owned(session, Delivery, col(Delivery.artisan_id), owner)
            confirmations = await _owned(
                session, GuestConfirmation, col(GuestConfirmation.guest_id), guest.id
            )
            by_id = {s.id: s for s in g_subs}
            guest_records.append(
                {
                    "subscriber": _row(guest),
                    "subscriptions": [_row(s, hide=("webhook_secret",)) for s in g_subs],
                    "confirmations": [_row(c, hide=("token_hash",)) for c in confirmations],
                    "deliveries": [_delivery_out(d, by_id, None) for d in g_deliveries],
                }
            )
    by_id = {s.id: s for s in subs}
    records: dict[str, list[Any]] = {
        "subscriptions": [_row(s, hide=("webhook_secret",)) for s in subs],
        "feed": [_row(f) for f in feed],
        "deliveries": [_delivery_out(d, by_id, artisan) for d in deliveries],
        "artisan_copy": [_row(artisan)] if artisan is not None else [],
        "guest_subscriptions": guest_records,
        "erasures": [_row(e) for e in erasures],
        "erased_artisan": [_row(tombstone)] if tombstone is not None else [],
    }
    log.info(
        "personal data exported",
        extra={"subject_id": subject, "counts": {k: len(v) for k, v in records.items()}},
    )
    return {
        "service": SERVICE,
        "subject": subject,
        "generated_at": now().isoformat(),
        "records": records,
    }


async def _erase_owner(session: AsyncSession, owner: str) -> int:
    """Deletes the owner's searches and feed, strips their deliveries' personal fields and
    cancels those not sent yet. Returns how many rows changed."""
    sub_ids = [
        s.id for s in await _owned(session, Subscription, col(Subscription.artisan_id), owner)
    ]
    changed = 0
    if sub_ids:
        await session.execute(
            delete(SubscriptionTerm).where(col(SubscriptionTerm.subscription_id).in_(sub_ids))
        )
        await session.execute(delete(Subscription).where(col(Subscription.id).in_(sub_ids)))
        changed += len(sub_ids)
    result: Any = await session.execute(delete(FeedItem).where(col(FeedItem.artisan_id) == owner))
    changed += result.rowcount or 0
    # Not sent yet: never sent now (its content is gone).
    await session.execute(
        update(Delivery)
        .where(col(Delivery.artisan_id) == owner)
        .where(
            col(Delivery.status).in_([DeliveryStatus.PENDING.value, DeliveryStatus.SENDING.value])
        )
        .values(status=DeliveryStatus.CANCELLED.value, claimed_until=None)
    )
    # JSON columns have no equality on PostgreSQL: which payloads remain is judged here.
    for d in await _owned(session, Delivery, col(Delivery.artisan_id), owner):
        if d.payload != ERASED_PAYLOAD or d.last_error is not None or d.traceparent is not None:
            d.payload = dict(ERASED_PAYLOAD)
            d.last_error = None
            d.traceparent = None
            changed += 1
    await session.flush()
    return changed


async def _erase_guest(session: AsyncSession, guest: GuestSubscriber) -> None:
    await _erase_owner(session, GUEST_OWNER_PREFIX + guest.id)
    await session.execute(
        delete(GuestConfirmation).where(col(GuestConfirmation.guest_id) == guest.id)
    )
    await session.execute(delete(GuestSubscriber).where(col(GuestSubscriber.id) == guest.id))


def _answer(erasure: Erasure, kept: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "erasure_id": erasure.erasure_id,
        "status": "done",
        "erased_at": _json(erasure.erased_at),
        "kept": kept,
    }


async def erase_self(sessions: Sessions, subject: str) -> dict[str, Any]:
    """`DELETE /v1/me`: the caller's searches, feed and deliveries' personal fields go, at once.
    Idempotent: when nothing is left to erase, the last erasure is answered again."""
    async with sessions() as session, session.begin():
        changed = await _erase_owner(session, subject)
        stmt = (
            select(Erasure)
            .where(col(Erasure.subject) == subject)
            .order_by(col(Erasure.erased_at).desc())
        )
        last = (await session.execute(stmt)).scalars().first()
        if changed or last is None:
            last = Erasure(
                erasure_id=str(uuid.uuid4()),
                subject=subject,
                requested_by="self",
                source="api",
                erased_at=now(),
            )
            session.add(last)
            await session.flush()
        kept = [KEPT_DELIVERIES]
        if await repo.get_artisan(session, subject) is not None:
            kept.append(KEPT_ARTISAN_COPY)
        answer = _answer(last, kept)
    log.info("personal data erased", extra={"subject_id": subject, "erasure_id": last.erasure_id})
    return answer


async def apply_erased(session: AsyncSession, erased: ArtisanErasedIn) -> None:
    """`leasing.artisan.erased.v1`, in the consumer's transaction: what `DELETE /v1/me` does,
    plus the read-model copy and the guest alerts under its address — only when the identity
    provider verified that address for the account, as for the export: an unverified address
    may be someone else's, whose alerts are theirs — and a tombstone."""
    artisan_id = erased.artisan_id
    await _erase_owner(session, artisan_id)
    artisan = await repo.get_artisan(session, artisan_id)
    guest = (
        await _guest_of(session, artisan) if artisan and artisan.contact_email_verified else None
    )
    if guest is not None:
        await _erase_guest(session, guest)
    if artisan is not None:
        await session.delete(artisan)
    if await session.get(ErasedArtisan, artisan_id) is None:
        session.add(
            ErasedArtisan(
                artisan_id=artisan_id, erasure_id=erased.erasure_id, erased_at=erased.erased_at
            )
        )
    if await session.get(Erasure, erased.erasure_id) is None:
        session.add(
            Erasure(
                erasure_id=erased.erasure_id,
                subject=artisan_id,
                requested_by=erased.requested_by,
                source="leasing",
                erased_at=erased.erased_at,
            )
        )
    await session.flush()
    log.info(
        "artisan erased by leasing",
        extra={"artisan_id": artisan_id, "erasure_id": erased.erasure_id},
    )


async def is_erased(session: AsyncSession, artisan_id: str) -> bool:
    return await session.get(ErasedArtisan, artisan_id) is not None


async def apply_artisan_event(session: AsyncSession, data: ArtisanIn) -> bool:
    """A profile event: ignored for an erased artisan (an old event replayed must not bring
    the copy back); otherwise the copy is upserted with its verified flag. True if applied."""
    if await is_erased(session, data.artisan_id):
        log.info(
            "profile event of an erased artisan ignored", extra={"artisan_id": data.artisan_id}
        )
        return False
    await read_models.apply_artisan(session, data)
    artisan = await repo.get_artisan(session, data.artisan_id)
    if artisan is not None and artisan.version == data.version:
        artisan.contact_email_verified = data.contact_email_verified
        await session.flush()
    return True
