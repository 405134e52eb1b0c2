"""Every notifications query. Repositories flush; the use cases in service/ commit."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Float, Integer, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.orm import QueryableAttribute, aliased, defer
from sqlmodel import SQLModel, col
from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.pagination import PageParams, paginate
from notifications.domain import (
    DIM_ARRONDISSEMENT,
    DeliveryStatus,
    SubscriptionStatus,
    UnitFacts,
    probe_terms,
)
from notifications.models import (
    Artisan,
    Delivery,
    FeedItem,
    GuestConfirmation,
    GuestSubscriber,
    Programme,
    Subscription,
    SubscriptionTerm,
)

# SQLModel types `Delivery.payload` as the dict it holds; loader options want the attribute.
_PAYLOAD = cast("QueryableAttribute[Any]", Delivery.payload)
# The tables themselves, for Core statements (SQLModel does not declare `__table__`).
_DELIVERIES = SQLModel.metadata.tables[Delivery.__tablename__]
_FEED_ITEMS = SQLModel.metadata.tables[FeedItem.__tablename__]

# Bound on the values of one `IN (...)`: old SQLite builds allow 999 bound parameters.
IN_CHUNK = 500


def _chunks(values: Iterable[str]) -> list[list[str]]:
    ordered = sorted(set(values))
    return [ordered[i : i + IN_CHUNK] for i in range(0, len(ordered), IN_CHUNK)]


# Subscriptions -------------------------------------------------------------------------------


async def get_subscription(
    session: AsyncSession, subscription_id: str, *, for_update: bool = False
) -> Subscription | None:
    stmt = select(Subscription).where(col(Subscription.id) == subscription_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalars().first()


async def subscriptions_by_id(session: AsyncSession, ids: Iterable[str]) -> dict[str, Subscription]:
    """The subscriptions with these ids (missing ones are simply absent), one query per 500."""
    found: dict[str, Subscription] = {}
    for chunk in _chunks(ids):
        rows = await session.execute(select(Subscription).where(col(Subscription.id).in_(chunk)))
        found.update((sub.id, sub) for sub in rows.scalars())
    return found


async def list_subscriptions(
    session: AsyncSession, artisan_id: str, page: PageParams
) -> tuple[Sequence[Subscription], int]:
    """One page of an artisan's subscriptions (not deleted), newest first, and their number."""
    stmt = (
        select(Subscription)
        .where(
            col(Subscription.artisan_id) == artisan_id,
            col(Subscription.status) != SubscriptionStatus.DELETED.value,
        )
        .order_by(col(Subscription.created_at).desc(), col(Subscription.id))
    )
    return await paginate(session, stmt, page)


async def replace_terms(
    session: AsyncSession, subscription_id: str, terms: list[tuple[str, str]]
) -> None:
    """File an active subscription in the index (an empty list takes it out)."""
    await session.execute(
        delete(SubscriptionTerm).where(col(SubscriptionTerm.subscription_id) == subscription_id)
    )
    session.add_all(
        [SubscriptionTerm(dim=d, value=v, subscription_id=subscription_id) for d, v in terms]
    )
    await session.flush()


def _candidates_statement(dims: tuple[str, ...]) -> Any:
    """The index query for units probing `dims` beyond the arrondissement, with bound values."""
    driver = aliased(SubscriptionTerm)
    s = Subscription
    surface: Any = bindparam("surface")
    rent: Any = bindparam("rent")
    quay: Any = bindparam("quay", type_=Integer())
    weight: Any = bindparam("weight", type_=Float())
    height: Any = bindparam("height", type_=Float())
    stmt = (
        select(s)
        .join(driver, col(driver.subscription_id) == col(s.id))
        .where(
            col(driver.dim) == DIM_ARRONDISSEMENT,
            col(driver.value).in_(bindparam(f"probe_{DIM_ARRONDISSEMENT}", expanding=True)),
            col(s.status) == SubscriptionStatus.ACTIVE.value,
            or_(col(s.min_surface_m2).is_(None), col(s.min_surface_m2) <= surface),
            or_(col(s.max_surface_m2).is_(None), col(s.max_surface_m2) >= surface),
            or_(col(s.max_rent_eur_m2_year).is_(None), col(s.max_rent_eur_m2_year) >= rent),
            col(s.feature_mask).op("&")(bindparam("feature_mask")) == col(s.feature_mask),
            col(s.space_kind) == bindparam("space_kind"),
            col(s.logistics_mask).op("&")(bindparam("logistics_mask")) == col(s.logistics_mask),
            # A figure the unit lacks (NULL) meets no minimum: the comparison is not true.
            or_(col(s.river_quay_within_m).is_(None), col(s.river_quay_within_m) >= quay),
            or_(col(s.min_freight_weight_t).is_(None), col(s.min_freight_weight_t) <= weight),
            or_(col(s.min_freight_height_m).is_(None), col(s.min_freight_height_m) <= height),
        )
    )
    for dim in dims:
        term = aliased(SubscriptionTerm)
        stmt = stmt.where(
            select(col(term.subscription_id))
            .where(
                col(term.dim) == dim,
                col(term.value).in_(bindparam(f"probe_{dim}", expanding=True)),
                col(term.subscription_id) == col(driver.subscription_id),
            )
            .exists()
        )
    return stmt


# Built once per shape (which dimensions a unit probes): building the aliased, correlated
# statement cost several times more than running it (benchmarks: matching).
_CANDIDATE_STATEMENTS: dict[tuple[str, ...], Any] = {}


async def candidate_subscriptions(session: AsyncSession, unit: UnitFacts) -> Sequence[Subscription]:
    """Active subscriptions whose criteria fit the unit, found through the inverted index.

    The arrondissement postings (the unit's arrondissement, or any) drive the query: one index
    range scan. Every other probed dimension is a primary-key lookup per candidate, and only the
    surviving rows are read and range-checked. The cost follows the number of subscriptions
    filed under the unit's arrondissement, not the number of subscriptions.
    """
    probes = probe_terms(unit)
    dims = tuple(d for d in probes if d != DIM_ARRONDISSEMENT)
    stmt = _CANDIDATE_STATEMENTS.get(dims)
    if stmt is None:
        stmt = _CANDIDATE_STATEMENTS[dims] = _candidates_statement(dims)
    params: dict[str, Any] = {f"probe_{dim}": values for dim, values in probes.items()}
    params.update(
        surface=unit.surface_m2,
        rent=unit.rent_eur_m2_year,
        feature_mask=unit.feature_mask,
        space_kind=unit.space_kind,
        logistics_mask=unit.logistics_mask,
        quay=unit.river_quay_distance_m,
        weight=unit.freight_max_weight_t,
        height=unit.freight_max_height_m,
    )
    return (await session.execute(stmt, params)).scalars().all()


# Read models ---------------------------------------------------------------------------------


async def get_artisan(session: AsyncSession, artisan_id: str) -> Artisan | None:
    return await session.get(Artisan, artisan_id)


async def artisans_by_id(session: AsyncSession, ids: Iterable[str]) -> dict[str, Artisan]:
    found: dict[str, Artisan] = {}
    for chunk in _chunks(ids):
        rows = await session.execute(select(Artisan).where(col(Artisan.artisan_id).in_(chunk)))
        found.update((a.artisan_id, a) for a in rows.scalars())
    return found


async def get_programme(session: AsyncSession, programme_id: str) -> Programme | None:
    return await session.get(Programme, programme_id)


async def retire_programmes_not_in(
    session: AsyncSession, keep: set[str], *, up_to_version: int
) -> None:
    await session.execute(
        update(Programme)
        .where(
            col(Programme.programme_id).not_in(keep),
            col(Programme.catalogue_version) <= up_to_version,
        )
        .values(retired=True)
    )


async def list_programmes(session: AsyncSession) -> Sequence[Programme]:
    return (
        (await session.execute(select(Programme).order_by(col(Programme.programme_id))))
        .scalars()
        .all()
    )


# Deliveries ----------------------------------------------------------------------------------


async def get_delivery(
    session: AsyncSession, delivery_id: str, *, for_update: bool = False
) -> Delivery | None:
    stmt = select(Delivery).where(col(Delivery.id) == delivery_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalars().first()


async def deliveries_to_record(
    session: AsyncSession, ids: Iterable[str], *, for_update: bool
) -> dict[str, Delivery]:
    """The rows whose send outcomes the worker records, locked in id order on PostgreSQL.

    The payload is not loaded (recording never reads it): do not touch `payload` on these rows.
    """
    found: dict[str, Delivery] = {}
    for chunk in _chunks(ids):
        stmt = (
            select(Delivery)
            .options(defer(_PAYLOAD))
            .where(col(Delivery.id).in_(chunk))
            .order_by(col(Delivery.id))
        )
        if for_update:
            stmt = stmt.with_for_update()
        found.update((d.id, d) for d in (await session.execute(stmt)).scalars())
    return found


@dataclass(frozen=True)
class DeliveryFilter:
    """Which deliveries to list; a filter left out accepts any value."""

    artisan_id: str | None = None
    subscription_id: str | None = None
    status: str | None = None


async def list_deliveries(
    session: AsyncSession, where: DeliveryFilter, page: PageParams
) -> tuple[Sequence[Delivery], int]:
    """One page of the deliveries matching `where`, newest first, and their number."""
    stmt = select(Delivery)
    if where.artisan_id:
        stmt = stmt.where(col(Delivery.artisan_id) == where.artisan_id)
    if where.subscription_id:
        stmt = stmt.where(col(Delivery.subscription_id) == where.subscription_id)
    if where.status:
        stmt = stmt.where(col(Delivery.status) == where.status)
    stmt = stmt.order_by(col(Delivery.created_at).desc(), col(Delivery.id))
    return await paginate(session, stmt, page)


async def claim_due(
    session: AsyncSession, *, now: datetime, lease: timedelta, limit: int, skip_locked: bool
) -> Sequence[Delivery]:
    """Mark up to `limit` due deliveries as being sent by the caller: claims whose lease ran out
    first (they were due before they were claimed), then pending rows, oldest due first.

    Two queries on the (status, next_attempt_at) index: the claimed rows (few: those in flight)
    and a range scan of the pending ones that stops at `limit`. One query OR-ing both kinds and
    ordered by (next_attempt_at, id) read and sorted every due row to return the first few:
    ~30 ms a claim on SQLite with the 10,000 rows of a fan-out due.
    """
    # A claim whose worker died (or hung) past its lease is due again.
    expired = (
        select(Delivery)
        .where(
            col(Delivery.status) == DeliveryStatus.SENDING.value, col(Delivery.claimed_until) < now
        )
        .order_by(col(Delivery.claimed_until))
        .limit(limit)
    )
    if skip_locked:
        expired = expired.with_for_update(skip_locked=True)
    rows = list((await session.execute(expired)).scalars().all())
    if len(rows) < limit:
        pending = (
            select(Delivery)
            .where(
                col(Delivery.status) == DeliveryStatus.PENDING.value,
                col(Delivery.next_attempt_at) <= now,
            )
            .order_by(col(Delivery.next_attempt_at))
            .limit(limit - len(rows))
        )
        if skip_locked:
            pending = pending.with_for_update(skip_locked=True)
        rows += (await session.execute(pending)).scalars().all()
    for row in rows:
        row.status = DeliveryStatus.SENDING.value
        row.claimed_until = now + lease
        row.attempts += 1
    await session.flush()
    return rows


async def insert_deliveries(
    session: AsyncSession, deliveries: list[dict[str, Any]], feed: list[dict[str, Any]]
) -> None:
    """Write deliveries and feed items (column -> value rows) with one Core INSERT
    (executemany) per table.

    A vacancy matching 10,000 searches writes 10,000 deliveries or more in the consumer's
    transaction, before the worker can send the first one: as ORM objects (construction, unit of
    work) that took seconds (benchmarks, fan-out). The statements are on the tables, so column
    types still apply (JSON, aware UTC datetimes); the unique (event_id, recipient_key, channel)
    still refuses a second copy of a delivery, failing the transaction as the ORM flush did.
    """
    if deliveries:
        await session.execute(insert(_DELIVERIES), deliveries)
    if feed:
        await session.execute(insert(_FEED_ITEMS), feed)


async def release_claims(session: AsyncSession) -> int:
    """Give every claimed delivery back (only safe when this is the database's single worker)."""
    result = await session.execute(
        update(Delivery)
        .where(col(Delivery.status) == DeliveryStatus.SENDING.value)
        .values(status=DeliveryStatus.PENDING.value, claimed_until=None)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def due_digest_rows(
    session: AsyncSession,
    *,
    subscription_id: str,
    channel: str,
    now: datetime,
    exclude: str,
    skip_locked: bool,
) -> Sequence[Delivery]:
    """The other due digest entries of one subscription and channel, to fold into one message."""
    stmt = (
        select(Delivery)
        .where(
            col(Delivery.subscription_id) == subscription_id,
            col(Delivery.channel) == channel,
            col(Delivery.digest).is_(True),
            col(Delivery.batch_id).is_(None),
            col(Delivery.status) == DeliveryStatus.PENDING.value,
            col(Delivery.next_attempt_at) <= now,
            col(Delivery.id) != exclude,
        )
        .order_by(col(Delivery.created_at), col(Delivery.id))
        .limit(200)
    )
    if skip_locked:
        stmt = stmt.with_for_update(skip_locked=True)
    return (await session.execute(stmt)).scalars().all()


async def batched_under_leads(
    session: AsyncSession, lead_ids: Iterable[str]
) -> dict[str, list[Delivery]]:
    """The digest entries batched under these leads (not the leads themselves), still
    `batched`: lead id -> its entries. The payload is not loaded."""
    found: dict[str, list[Delivery]] = {}
    for chunk in _chunks(lead_ids):
        stmt = (
            select(Delivery)
            .options(defer(_PAYLOAD))
            .where(
                col(Delivery.batch_id).in_(chunk),
                col(Delivery.id) != col(Delivery.batch_id),
                col(Delivery.status) == DeliveryStatus.BATCHED.value,
            )
        )
        for row in (await session.execute(stmt)).scalars():
            assert row.batch_id is not None
            found.setdefault(row.batch_id, []).append(row)
    return found


async def cancel_pending_of_subscription(
    session: AsyncSession, subscription_id: str, reason: str, channel: str | None = None
) -> None:
    stmt = update(Delivery).where(
        col(Delivery.subscription_id) == subscription_id,
        col(Delivery.status) == DeliveryStatus.PENDING.value,
    )
    if channel is not None:
        stmt = stmt.where(col(Delivery.channel) == channel)
    await session.execute(stmt.values(status=DeliveryStatus.CANCELLED.value, last_error=reason))


async def make_digests_due(session: AsyncSession, now: datetime) -> int:
    result = await session.execute(
        update(Delivery)
        .where(
            col(Delivery.status) == DeliveryStatus.PENDING.value,
            col(Delivery.digest).is_(True),
            col(Delivery.next_attempt_at) > now,
        )
        .values(next_attempt_at=now)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def count_by_status(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(
        select(col(Delivery.status), func.count()).group_by(col(Delivery.status))
    )
    return {status: count for status, count in rows.all()}


# Feed ----------------------------------------------------------------------------------------


async def list_feed(
    session: AsyncSession,
    artisan_id: str,
    *,
    unread_only: bool,
    before_id: int | None,
    after_id: int | None = None,
    limit: int,
) -> Sequence[FeedItem]:
    stmt = select(FeedItem).where(col(FeedItem.artisan_id) == artisan_id)
    if unread_only:
        stmt = stmt.where(col(FeedItem.read_at).is_(None))
    if before_id is not None:
        stmt = stmt.where(col(FeedItem.id) < before_id)
    if after_id is not None:
        stmt = stmt.where(col(FeedItem.id) > after_id)
    return (
        (await session.execute(stmt.order_by(col(FeedItem.id).desc()).limit(limit))).scalars().all()
    )


async def unread_count(session: AsyncSession, artisan_id: str) -> int:
    stmt = select(func.count()).where(
        col(FeedItem.artisan_id) == artisan_id, col(FeedItem.read_at).is_(None)
    )
    return int((await session.execute(stmt)).scalar_one())


async def get_feed_item(session: AsyncSession, item_id: int) -> FeedItem | None:
    return await session.get(FeedItem, item_id)


async def mark_all_read(session: AsyncSession, artisan_id: str, now: datetime) -> int:
    result = await session.execute(
        update(FeedItem)
        .where(col(FeedItem.artisan_id) == artisan_id, col(FeedItem.read_at).is_(None))
        .values(read_at=now)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# Guest subscribers ---------------------------------------------------------------------------


async def get_guest_by_email(
    session: AsyncSession, email: str, *, for_update: bool = False
) -> GuestSubscriber | None:
    stmt = select(GuestSubscriber).where(col(GuestSubscriber.email) == email)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalars().first()


async def get_guest(session: AsyncSession, guest_id: str) -> GuestSubscriber | None:
    return await session.get(GuestSubscriber, guest_id)


async def get_guest_confirmation(
    session: AsyncSession, token_hash: str, *, for_update: bool = False
) -> GuestConfirmation | None:
    stmt = select(GuestConfirmation).where(col(GuestConfirmation.token_hash) == token_hash)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalars().first()


async def guest_confirmations_since(
    session: AsyncSession, since: datetime, guest_id: str | None = None
) -> tuple[int, datetime | None]:
    """How many confirmation e-mails went out since `since` (to one guest, or to anyone), and
    when the oldest of them did: the rate limits' window."""
    stmt = select(func.count(), func.min(col(GuestConfirmation.created_at))).where(
        col(GuestConfirmation.created_at) >= since
    )
    if guest_id is not None:
        stmt = stmt.where(col(GuestConfirmation.guest_id) == guest_id)
    count, oldest = (await session.execute(stmt)).one()
    return int(count), oldest


async def delete_guest_confirmation(session: AsyncSession, token_hash: str) -> None:
    await session.execute(
        delete(GuestConfirmation).where(col(GuestConfirmation.token_hash) == token_hash)
    )


async def subscriptions_of_owner(session: AsyncSession, owner: str) -> Sequence[Subscription]:
    """Every subscription (deleted ones included) of one artisan or guest, for update."""
    stmt = select(Subscription).where(col(Subscription.artisan_id) == owner).with_for_update()
    return (await session.execute(stmt)).scalars().all()


async def move_deliveries(session: AsyncSession, subscription_id: str, owner: str) -> None:
    """Give a subscription's deliveries to its new owner (their log follows the search)."""
    await session.execute(
        update(Delivery)
        .where(col(Delivery.subscription_id) == subscription_id)
        .values(artisan_id=owner)
    )


async def delete_guest(session: AsyncSession, guest_id: str) -> None:
    """The guest row and (by cascade) its pending confirmations."""
    await session.execute(
        delete(GuestConfirmation).where(col(GuestConfirmation.guest_id) == guest_id)
    )
    await session.execute(delete(GuestSubscriber).where(col(GuestSubscriber.id) == guest_id))


# Open data (anonymised demand) ---------------------------------------------------------------


async def active_search_criteria(session: AsyncSession) -> Sequence[tuple[str, dict[str, Any]]]:
    """(owner, criteria) of every active saved search, accounts' and guests' alike."""
    stmt = select(col(Subscription.artisan_id), col(Subscription.criteria)).where(
        col(Subscription.status) == SubscriptionStatus.ACTIVE.value
    )
    return [(owner, criteria) for owner, criteria in (await session.execute(stmt)).all()]


async def guest_ids_with_status(session: AsyncSession, status: str) -> set[str]:
    stmt = select(col(GuestSubscriber.id)).where(col(GuestSubscriber.status) == status)
    return set((await session.execute(stmt)).scalars().all())
