"""Personal data held here about one person: its export, its erasure by the person
(`DELETE /v1/me`) and by leasing (`leasing.artisan.erased.v1`), and the tombstone that keeps an
erased artisan's read-model copy from coming back when an old profile event is replayed.

Nothing here logs a name, an address or a text: only ids and counts (docs/privacy.md).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, DateTime, TypeDecorator, delete, select, update
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


#: Column value types that are never a date (`_json` leaves them as they are).
_NEVER_DATES = (str, int, float, bool, dict, list)


def _python_type(kind: Any) -> type:
    """The Python type of a column's values; a decorated datetime (`UTCDateTime`) is judged by
    the type it decorates, `object` when the type does not say."""
    if isinstance(kind, TypeDecorator) and isinstance(kind.impl_instance, (Date, DateTime)):
        return datetime if isinstance(kind.impl_instance, DateTime) else date
    if isinstance(kind, JSON):  # decoded JSON: never a date
        return dict
    try:
        return kind.python_type  # type: ignore[no-any-return]
    except NotImplementedError:
        return object


class _Shape:
    """How one table's rows become the export's records, built once per model: the columns in
    the model's field order (the keys of `_row`), which of them hold dates (written ISO 8601, as
    `_json` does) and which hold secrets (`NOT_EXPORTED` when set, as `_row(hide=…)` does)."""

    def __init__(self, model: Any, *, hide: Sequence[str] = ()) -> None:
        table = model.__table__
        self.names: list[str] = list(model.model_fields)
        self.columns: list[Any] = [table.c[name] for name in self.names]
        self.dates: list[str] = []
        self.others: list[str] = []
        for name, column in zip(self.names, self.columns, strict=True):
            if name in hide:
                continue
            kind = _python_type(column.type)
            if issubclass(kind, (date, datetime)):
                self.dates.append(name)
            elif kind not in _NEVER_DATES or isinstance(column.type, TypeDecorator):
                self.others.append(name)  # a type that does not say: judged value by value
        self.hide: list[str] = list(hide)

    def records(self, rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
        names, dates, others, hide = self.names, self.dates, self.others, self.hide
        out: list[dict[str, Any]] = []
        for row in rows:
            record = dict(zip(names, row, strict=True))
            for name in dates:
                value = record[name]
                if value is not None:
                    record[name] = value.isoformat()
            for name in others:
                record[name] = _json(record[name])
            for name in hide:
                if record[name] is not None:
                    record[name] = NOT_EXPORTED
            out.append(record)
        return out


_SUBSCRIPTIONS = _Shape(Subscription, hide=("webhook_secret",))
_FEED = _Shape(FeedItem)
_DELIVERIES = _Shape(Delivery)
_ERASURES = _Shape(Erasure)
_CONFIRMATIONS = _Shape(GuestConfirmation, hide=("token_hash",))


async def _owned_rows(session: AsyncSession, shape: _Shape, owner_column: Any, owner: str) -> Any:
    """The owner's rows of one table as a result of plain columns (no ORM instances), executed
    on the session's connection rather than through the ORM: the ORM's async execution decodes
    every row (JSON, dates) on the event loop before answering, a Core result only where it is
    read — in the export's worker thread. Its rows are already fetched (the async drivers
    buffer them), so reading them there needs no I/O."""
    connection = await session.connection()
    return await connection.execute(select(*shape.columns).where(owner_column == owner))


#: `_deliveries_out`'s "no artisan copy" (an artisan's address may itself be None).
_NO_ARTISAN: Any = object()


def _deliveries_out(
    rows: Iterable[Sequence[Any]], subs: list[dict[str, Any]], artisan_email: str | None
) -> list[dict[str, Any]]:
    """`_DELIVERIES.records` plus each one's `target`: where it went, the personal parts of its
    target (address or URL) as known now — its search's, else the account's address."""
    by_id = {s["id"]: s for s in subs}
    out = _DELIVERIES.records(rows)
    for record in out:
        channel = record["channel"]
        target: dict[str, Any] = {"channel": channel}
        sub = by_id.get(record["subscription_id"] or "")
        if channel == "email":
            if sub is not None:
                target["email_address"] = sub["email_address"]
            elif artisan_email is not _NO_ARTISAN:
                target["email_address"] = artisan_email
        elif channel == "webhook" and sub is not None:
            target["webhook_url"] = sub["webhook_url"]
        record["target"] = target
    return out


def _build(
    subs: Any,
    feed: Any,
    deliveries: Any,
    erasures: Any,
    artisan: Artisan | None,
    tombstone: ErasedArtisan | None,
    guest: GuestSubscriber | None,
    guest_results: tuple[Any, Any, Any] | None,
) -> dict[str, list[Any]]:
    """The export's records from the SELECTs' buffered results: CPU only (decoding the rows,
    building the dicts), run in a worker thread so the event loop keeps serving requests."""
    guest_records: list[dict[str, Any]] = []
    if guest is not None and guest_results is not None:
        g_subs_result, g_deliveries_result, confirmations_result = guest_results
        g_subs = _SUBSCRIPTIONS.records(g_subs_result.all())
        guest_records.append(
            {
                "subscriber": _row(guest),
                "subscriptions": g_subs,
                "confirmations": _CONFIRMATIONS.records(confirmations_result.all()),
                "deliveries": _deliveries_out(g_deliveries_result.all(), g_subs, _NO_ARTISAN),
            }
        )
    sub_records = _SUBSCRIPTIONS.records(subs.all())
    return {
        "subscriptions": sub_records,
        "feed": _FEED.records(feed.all()),
        "deliveries": _deliveries_out(
            deliveries.all(),
            sub_records,
            artisan.contact_email if artisan is not None else _NO_ARTISAN,
        ),
        "artisan_copy": [_row(artisan)] if artisan is not None else [],
        "guest_subscriptions": guest_records,
        "erasures": _ERASURES.records(erasures.all()),
        "erased_artisan": [_row(tombstone)] if tombstone is not None else [],
    }


async def _guest_of(session: AsyncSession, artisan: Artisan | None) -> GuestSubscriber | None:
    if artisan is None or not artisan.contact_email:
        return None
    return await repo.get_guest_by_email(session, normalise_email(artisan.contact_email))


async def _owned(session: AsyncSession, model: Any, owner_column: Any, owner: str) -> list[Any]:
    return list((await session.execute(select(model).where(owner_column == owner))).scalars())


async def export(sessions: Sessions, subject: str) -> dict[str, Any]:
    """Every record held about `subject`, grouped by kind (the export contract).

    The SELECTs read plain columns (no ORM instances: an heavy artisan has tens of thousands of
    rows); decoding them and building the records is CPU work done in a worker thread, so the
    process's other requests are not held up behind it (docs/benchmarks.md)."""
    async with sessions() as session:
        subs = await _owned_rows(session, _SUBSCRIPTIONS, col(Subscription.artisan_id), subject)
        feed = await _owned_rows(session, _FEED, col(FeedItem.artisan_id), subject)
        deliveries = await _owned_rows(session, _DELIVERIES, col(Delivery.artisan_id), subject)
        artisan = await repo.get_artisan(session, subject)
        erasures = await _owned_rows(session, _ERASURES, col(Erasure.subject), subject)
        tombstone = await session.get(ErasedArtisan, subject)
        # Guest alerts under the account's address, only when the identity provider verified
        # that address for this account (anyone may type someone else's address).
        guest = (
            await _guest_of(session, artisan)
            if artisan and artisan.contact_email_verified
            else None
        )
        guest_results = None
        if guest is not None:
            owner = GUEST_OWNER_PREFIX + guest.id
            guest_results = (
                await _owned_rows(session, _SUBSCRIPTIONS, col(Subscription.artisan_id), owner),
                await _owned_rows(session, _DELIVERIES, col(Delivery.artisan_id), owner),
                await _owned_rows(
                    session, _CONFIRMATIONS, col(GuestConfirmation.guest_id), guest.id
                ),
            )
        # The results are buffered: the thread reads no connection, and nothing else uses
        # this session while it runs.
        records = await asyncio.to_thread(
            _build, subs, feed, deliveries, erasures, artisan, tombstone, guest, guest_results
        )
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
