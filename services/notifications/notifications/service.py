"""Notifications use cases. Each API use case is one transaction that it commits itself; the
event use cases run inside the consumer's transaction (which also records the event id)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.auth import Principal
from fabkit.db import on_commit
from fabkit.errors import ProblemError
from fabkit.events import CloudEvent
from notifications import repository as repo
from notifications.domain import (
    ArtisanProfile,
    Channel,
    Criteria,
    DeliveryKind,
    DeliveryStatus,
    Eligibility,
    Frequency,
    ProgrammeRules,
    SubscriptionStatus,
    UnitFacts,
    eligibility,
    explain_match,
    feature_mask,
    index_terms,
    next_digest_at,
)
from notifications.events.consumed import (
    ArtisanIn,
    ProgrammePublishedIn,
    UnitSnapshotIn,
    VacancyOpenedIn,
    artisan_id_of,
)
from notifications.mailer import read_unsubscribe_token
from notifications.metrics import DELIVERIES, MATCH_DURATION, observe_delivered
from notifications.models import Artisan, Delivery, FeedItem, Programme, Subscription
from notifications.repository import DeliveryQuery
from notifications.schemas import (
    ChannelIn,
    ChannelOut,
    CriteriaIn,
    DeliveryOut,
    EmailChannelIn,
    FeedChannelIn,
    FeedItemOut,
    FeedPage,
    Page,
    SubscriptionCreate,
    SubscriptionCreated,
    SubscriptionOut,
    SubscriptionPatch,
    TestSendOut,
    WebhookChannelIn,
)
from notifications.settings import NotificationsSettings
from notifications.signals import Signals
from notifications.webhooks import UnsafeUrl, generate_secret, resolve_target

Sessions = async_sessionmaker[AsyncSession]
# A row to insert, column name -> value (see `_deliveries_for`).
Row = dict[str, Any]


def _new_id() -> str:
    return str(uuid.uuid4())


def _now() -> datetime:
    return datetime.now(UTC)


# Subscriptions -------------------------------------------------------------------------------


def criteria_of(stored: dict[str, Any]) -> Criteria:
    """The criteria of a subscription, from the JSON its schema validated when it was saved."""
    return Criteria(
        arrondissements=tuple(stored.get("arrondissements") or ()),
        site_kinds=tuple(stored.get("site_kinds") or ()),
        trades=tuple(stored.get("trades") or ()),
        min_surface_m2=stored.get("min_surface_m2"),
        max_surface_m2=stored.get("max_surface_m2"),
        max_rent_eur_m2_year=stored.get("max_rent_eur_m2_year"),
        features=tuple(stored.get("features") or ()),
    )


def subscription_out(sub: Subscription) -> SubscriptionOut:
    channels = []
    if sub.webhook_url:
        channels.append(
            ChannelOut(type=Channel.WEBHOOK, enabled=sub.webhook_enabled, url=sub.webhook_url)
        )
    if sub.email_enabled or sub.email_address:
        channels.append(
            ChannelOut(type=Channel.EMAIL, enabled=sub.email_enabled, address=sub.email_address)
        )
    if sub.feed_enabled:
        channels.append(ChannelOut(type=Channel.FEED, enabled=True))
    return SubscriptionOut(
        id=sub.id,
        artisan_id=sub.artisan_id,
        name=sub.name,
        status=SubscriptionStatus(sub.status),
        frequency=Frequency(sub.frequency),
        criteria=sub.criteria,
        channels=channels,
        disabled_reason=sub.disabled_reason,
        version=sub.version,
        created_at=sub.created_at,
        updated_at=sub.updated_at,
    )


def _created(sub: Subscription, secret: str | None) -> SubscriptionCreated:
    return SubscriptionCreated(**subscription_out(sub).model_dump(), webhook_secret=secret)


async def _check_webhook_url(settings: NotificationsSettings, url: str) -> None:
    try:
        await resolve_target(
            url, settings.webhook_allowed_networks, require_https=settings.webhook_require_https
        )
    except UnsafeUrl as exc:
        raise ProblemError(
            422,
            f"The webhook URL is refused: {exc}.",
            errors=[{"field": "channels.url", "message": str(exc), "type": "unsafe_url"}],
        ) from exc


async def _apply_channels(
    settings: NotificationsSettings,
    sub: Subscription,
    channels: Sequence[ChannelIn],
    *,
    check_urls: bool = True,
) -> str | None:
    """Set the subscription's channels; return a webhook secret that is new (to show once)."""
    webhook = next((c for c in channels if isinstance(c, WebhookChannelIn)), None)
    email = next((c for c in channels if isinstance(c, EmailChannelIn)), None)
    new_secret: str | None = None
    if webhook is None:
        sub.webhook_url, sub.webhook_secret, sub.webhook_enabled = None, None, False
    else:
        url_changed = webhook.url != sub.webhook_url
        if url_changed and check_urls:
            await _check_webhook_url(settings, webhook.url)
        if webhook.secret is not None or url_changed or sub.webhook_secret is None:
            new_secret = webhook.secret or generate_secret()
            sub.webhook_secret = new_secret
        sub.webhook_url, sub.webhook_enabled = webhook.url, True
    sub.email_enabled = email is not None
    sub.email_address = str(email.address) if email is not None and email.address else None
    sub.feed_enabled = any(isinstance(c, FeedChannelIn) for c in channels)
    return new_secret


def _set_criteria(sub: Subscription, criteria: CriteriaIn) -> None:
    sub.criteria = criteria.model_dump(mode="json")
    sub.min_surface_m2 = criteria.min_surface_m2
    sub.max_surface_m2 = criteria.max_surface_m2
    sub.max_rent_eur_m2_year = criteria.max_rent_eur_m2_year
    sub.feature_mask = feature_mask(f.value for f in criteria.features)


async def _refile(session: AsyncSession, sub: Subscription) -> None:
    """Keep the index in step: only active subscriptions are in it."""
    active = sub.status == SubscriptionStatus.ACTIVE.value
    await repo.replace_terms(
        session, sub.id, index_terms(criteria_of(sub.criteria)) if active else []
    )


async def create_subscription(
    sessions: Sessions,
    settings: NotificationsSettings,
    principal: Principal,
    data: SubscriptionCreate,
) -> SubscriptionCreated:
    sub = Subscription(
        id=_new_id(),
        artisan_id=principal.subject,
        name=data.name,
        status=SubscriptionStatus.ACTIVE.value,
        frequency=data.frequency.value,
        criteria={},
    )
    _set_criteria(sub, data.criteria)
    secret = await _apply_channels(settings, sub, data.channels)
    async with sessions() as session, session.begin():
        session.add(sub)
        await session.flush()
        await _refile(session, sub)
    return _created(sub, secret)


async def _own(
    session: AsyncSession, principal: Principal, subscription_id: str, *, for_update: bool = False
) -> Subscription:
    sub = await repo.get_subscription(session, subscription_id, for_update=for_update)
    # Another artisan's subscription is answered like a missing one: ids are not disclosed.
    if (
        sub is None
        or sub.status == SubscriptionStatus.DELETED.value
        or (sub.artisan_id != principal.subject and not principal.is_admin)
    ):
        raise ProblemError(404, f"No subscription with id {subscription_id}.")
    return sub


async def get_subscription(
    sessions: Sessions, principal: Principal, subscription_id: str
) -> SubscriptionOut:
    async with sessions() as session:
        return subscription_out(await _own(session, principal, subscription_id))


async def list_subscriptions(
    sessions: Sessions, principal: Principal, limit: int, offset: int
) -> Page[SubscriptionOut]:
    async with sessions() as session:
        rows, total = await repo.list_subscriptions(
            session, principal.subject, limit=limit, offset=offset
        )
    return Page(items=[subscription_out(s) for s in rows], total=total, limit=limit, offset=offset)


async def update_subscription(
    sessions: Sessions,
    settings: NotificationsSettings,
    principal: Principal,
    subscription_id: str,
    patch: SubscriptionPatch,
) -> SubscriptionCreated:
    # DNS is checked before the transaction so no lock is held while resolving.
    if patch.channels is not None:
        async with sessions() as session:
            current = await _own(session, principal, subscription_id)
        for channel in patch.channels:
            if isinstance(channel, WebhookChannelIn) and channel.url != current.webhook_url:
                await _check_webhook_url(settings, channel.url)
    async with sessions() as session, session.begin():
        sub = await _own(session, principal, subscription_id, for_update=True)
        secret = None
        if patch.name is not None:
            sub.name = patch.name
        if patch.frequency is not None:
            sub.frequency = patch.frequency.value
        if patch.criteria is not None:
            _set_criteria(sub, patch.criteria)
        if patch.channels is not None:
            # Checked above, before the row was locked.
            secret = await _apply_channels(settings, sub, patch.channels, check_urls=False)
            if not sub.email_enabled:
                await repo.cancel_pending_of_subscription(
                    session, sub.id, "e-mail channel removed", Channel.EMAIL.value
                )
        sub.version += 1
        sub.updated_at = _now()
        await _refile(session, sub)
    return _created(sub, secret)


async def set_status(
    sessions: Sessions, principal: Principal, subscription_id: str, status: SubscriptionStatus
) -> SubscriptionOut | None:
    """Pause, resume (also re-enables a disabled subscription) or delete."""
    async with sessions() as session, session.begin():
        sub = await _own(session, principal, subscription_id, for_update=True)
        if sub.status != status.value:
            sub.status = status.value
            sub.disabled_reason = None
            sub.version += 1
            sub.updated_at = _now()
            await _refile(session, sub)
            if status is SubscriptionStatus.DELETED:
                await repo.cancel_pending_of_subscription(session, sub.id, "subscription deleted")
    return None if status is SubscriptionStatus.DELETED else subscription_out(sub)


async def unsubscribe_email(
    sessions: Sessions, settings: NotificationsSettings, token: str
) -> Subscription:
    """Switch off the e-mail channel named by a signed unsubscribe token."""
    subscription_id = read_unsubscribe_token(settings, token)
    if subscription_id is None:
        raise ProblemError(404, "This unsubscribe link is not valid.")
    async with sessions() as session, session.begin():
        sub = await repo.get_subscription(session, subscription_id, for_update=True)
        if sub is None:
            raise ProblemError(404, "This unsubscribe link is not valid.")
        if sub.email_enabled:
            sub.email_enabled = False
            sub.version += 1
            sub.updated_at = _now()
            await repo.cancel_pending_of_subscription(
                session, sub.id, "unsubscribed from e-mail", Channel.EMAIL.value
            )
    return sub


def _enabled_channels(sub: Subscription) -> list[Channel]:
    channels = []
    if sub.webhook_enabled and sub.webhook_url:
        channels.append(Channel.WEBHOOK)
    if sub.email_enabled:
        channels.append(Channel.EMAIL)
    if sub.feed_enabled:
        channels.append(Channel.FEED)
    return channels


def delivery_out(d: Delivery) -> DeliveryOut:
    return DeliveryOut.model_validate(d, from_attributes=True)


async def send_test(
    sessions: Sessions, signals: Signals, principal: Principal, subscription_id: str
) -> TestSendOut:
    """Send a sample message on every channel, now, whatever the frequency or pause."""
    now = _now()
    async with sessions() as session, session.begin():
        sub = await _own(session, principal, subscription_id)
        channels = _enabled_channels(sub)
        if not channels:
            raise ProblemError(409, "This subscription has no enabled channel to test.")
        payload = {
            "type": "subscription.test",
            "timestamp": now.isoformat(),
            "data": {
                "subscription": {"id": sub.id, "name": sub.name},
                "message": "Test message: alerts for this saved search will arrive like this.",
            },
        }
        rows, feed = _deliveries_for(
            event_id=f"test:{_new_id()}",
            recipient_key=sub.id,
            artisan_id=sub.artisan_id,
            subscription_id=sub.id,
            kind=DeliveryKind.TEST,
            channels=channels,
            payload=payload,
            title=f"Test de votre alerte « {sub.name} »",
            now=now,
        )
        await _insert(session, rows, feed)
        signals.after_commit(session, wake_worker=True, feed_for=[sub.artisan_id])
    return TestSendOut(deliveries=[DeliveryOut.model_validate(row) for row in rows])


def _deliveries_for(
    *,
    event_id: str,
    recipient_key: str,
    artisan_id: str,
    subscription_id: str | None,
    kind: DeliveryKind,
    channels: Sequence[Channel],
    payload: dict[str, Any],
    title: str,
    now: datetime,
    vacancy_id: str | None = None,
    occurred_at: datetime | None = None,
    digest_at: datetime | None = None,
) -> tuple[list[Row], list[Row]]:
    """One delivery per channel, as rows for `_insert`, and the feed items: the feed is written
    at once (its delivery is born delivered), the others wait for the worker.

    Every row names every column, so that rows of one batch insert together (an executemany
    takes its columns from the rows) and so that a row reads like the Delivery it becomes.
    """
    deliveries: list[Row] = []
    feed: list[Row] = []
    for channel in channels:
        digest = digest_at is not None and channel is not Channel.FEED
        delivered = channel is Channel.FEED
        delivery: Row = {
            "id": _new_id(),
            "event_id": event_id,
            "recipient_key": recipient_key,
            "channel": channel.value,
            "kind": kind.value,
            "artisan_id": artisan_id,
            "subscription_id": subscription_id,
            "vacancy_id": vacancy_id,
            "payload": payload,
            "status": (DeliveryStatus.DELIVERED if delivered else DeliveryStatus.PENDING).value,
            "digest": digest,
            "batch_id": None,
            "attempts": 0,
            "next_attempt_at": digest_at if digest and digest_at else now,
            "claimed_until": None,
            "last_error": None,
            "last_status_code": None,
            "occurred_at": occurred_at,
            "created_at": now,
            "delivered_at": now if delivered else None,
        }
        if delivered:
            feed.append(
                {
                    "artisan_id": artisan_id,
                    "delivery_id": delivery["id"],
                    "subscription_id": subscription_id,
                    "kind": kind.value,
                    "title": title[:300],
                    "body": payload,
                    "created_at": now,
                    "read_at": None,
                }
            )
        deliveries.append(delivery)
    return deliveries, feed


async def _insert(session: AsyncSession, deliveries: list[Row], feed: list[Row]) -> None:
    """Write deliveries and feed items with one Core INSERT (executemany) per table.

    A vacancy matching 10,000 searches writes 10,000 deliveries or more in the consumer's
    transaction, before the worker can send the first one: as ORM objects (construction, unit of
    work) that took seconds (benchmarks, fan-out). The statements are on the tables, so column
    types still apply (JSON, aware UTC datetimes); the unique (event_id, recipient_key, channel)
    still refuses a second copy of a delivery, failing the transaction as the ORM flush did.
    """
    if deliveries:
        await session.execute(insert(Delivery.__table__), deliveries)
    if feed:
        await session.execute(insert(FeedItem.__table__), feed)


# Read models ---------------------------------------------------------------------------------


async def apply_artisan(session: AsyncSession, data: ArtisanIn) -> None:
    """Upsert leasing's artisan profile; an older version than the one held is ignored."""
    artisan = await repo.get_artisan(session, data.artisan_id)
    if artisan is None:
        artisan = Artisan(artisan_id=data.artisan_id)
        session.add(artisan)
    elif data.version and artisan.version and data.version < artisan.version:
        return
    artisan.display_name = data.display_name
    artisan.business_name = data.business_name
    artisan.trades = list(data.trades)
    artisan.business_created_on = data.business_created_on
    artisan.legal_form = data.legal_form
    artisan.labels = list(data.labels)
    artisan.contact_email = data.contact_email
    artisan.version = data.version
    artisan.updated_at = _now()
    await session.flush()


async def apply_programme(session: AsyncSession, published: ProgrammePublishedIn) -> None:
    """Upsert a published programme; retire those its catalogue no longer lists."""
    data, version = published.programme, published.catalogue.version
    programme = await repo.get_programme(session, data.programme_id)
    if programme is None:
        programme = Programme(programme_id=data.programme_id, name=data.name)
        session.add(programme)
    elif version < programme.catalogue_version:
        return  # a newer catalogue was applied already
    programme.name = data.name or data.programme_id
    programme.site_kinds = list(data.site_kinds)
    programme.rules = data.rules.model_dump(mode="json")
    programme.catalogue_version = version
    programme.retired = False
    programme.updated_at = _now()
    await session.flush()
    if published.catalogue.programme_ids is not None:
        await repo.retire_programmes_not_in(
            session, set(published.catalogue.programme_ids), up_to_version=version
        )


def programme_rules(programme: Programme) -> ProgrammeRules:
    rules = programme.rules or {}
    forms = rules.get("allowed_legal_forms")
    return ProgrammeRules(
        programme_id=programme.programme_id,
        name=programme.name,
        site_kinds=tuple(programme.site_kinds),
        max_business_age_years=rules.get("max_business_age_years"),
        allowed_legal_forms=tuple(forms) if forms is not None else None,
        requires_trade_match=bool(rules.get("requires_trade_match", False)),
        rent_cap_eur_m2_year=rules.get("rent_cap_eur_m2_year"),
    )


def artisan_profile(artisan: Artisan) -> ArtisanProfile:
    return ArtisanProfile(
        artisan_id=artisan.artisan_id,
        trades=tuple(artisan.trades),
        business_created_on=artisan.business_created_on,
        legal_form=artisan.legal_form,
    )


# Matching ------------------------------------------------------------------------------------


def unit_facts(unit: UnitSnapshotIn) -> UnitFacts:
    features = {
        name
        for name in ("goods_lift", "loading_dock", "extraction", "step_free_access")
        if getattr(unit, name)
    }
    return UnitFacts(
        unit_id=unit.unit_id,
        arrondissement=unit.arrondissement,
        site_kind=unit.site_kind,
        surface_m2=unit.surface_m2,
        rent_eur_m2_year=unit.rent_eur_m2_year,
        allowed_trades=tuple(unit.allowed_trades),
        features=frozenset(features),
    )


@dataclass(frozen=True)
class Match:
    subscription: Subscription
    criteria: tuple[str, ...]
    eligibility: Eligibility


async def match_vacancy(session: AsyncSession, unit: UnitFacts, on: date) -> list[Match]:
    """The active subscriptions a vacancy is for, with why, after the eligibility pre-filter.

    The inverted index narrows the subscriptions to those filed under the unit's arrondissement,
    site kind and trades (or the wildcard), so the cost follows the number of candidates, not
    the number of subscriptions.
    """
    started = time.perf_counter()
    candidates = await repo.candidate_subscriptions(session, unit)
    matches: list[Match] = []
    if candidates:
        known = await repo.list_programmes(session)
        # With no programme known at all there is nothing to filter on (see `eligibility`);
        # once some are known, only those still in leasing's catalogue qualify anyone.
        programmes = [programme_rules(p) for p in known if not p.retired]
        artisans = await repo.artisans_by_id(session, {s.artisan_id for s in candidates})
        verdicts: dict[str, Eligibility] = {}
        for sub in candidates:
            why = explain_match(criteria_of(sub.criteria), unit)
            if why is None:
                continue
            verdict = verdicts.get(sub.artisan_id)
            if verdict is None:
                artisan = artisans.get(sub.artisan_id)
                profile = artisan_profile(artisan) if artisan else None
                verdict = verdicts[sub.artisan_id] = eligibility(
                    profile, programmes, unit, on, any_known=bool(known)
                )
            if verdict.eligible:
                matches.append(Match(sub, tuple(why), verdict))
    MATCH_DURATION.observe(time.perf_counter() - started)
    return matches


def _eligibility_json(verdict: Eligibility) -> dict[str, Any]:
    return {
        "summary": verdict.summary,
        "filtered": verdict.filtered,
        "programmes": [
            {"programme_id": p.programme_id, "name": p.name, "reasons": list(p.reasons)}
            for p in verdict.programmes
        ],
    }


def vacancy_title(unit: UnitSnapshotIn | dict[str, Any]) -> str:
    u = unit.model_dump() if isinstance(unit, UnitSnapshotIn) else unit
    return (
        f"Atelier disponible : {u['site_name']}, {u['surface_m2']:g} m², "
        f"Paris {u['arrondissement']}e"
    )


async def record_vacancy(
    session: AsyncSession,
    settings: NotificationsSettings,
    signals: Signals,
    event: CloudEvent,
    vacancy: VacancyOpenedIn,
) -> list[Row]:
    """Match a vacancy and write one delivery per (subscription, channel), in the caller's
    transaction: the consumer commits them together with the event id. Returns the delivery
    rows written (column -> value)."""
    unit = unit_facts(vacancy.unit)
    matches = await match_vacancy(session, unit, vacancy.opened_at.date())
    now = _now()
    digest_at = next_digest_at(now, settings.digest_hour_utc)
    # The same for every match: computed once (the payloads share them, and nothing mutates a
    # payload once built).
    unit_json = vacancy.unit.model_dump(mode="json")
    opened_at = vacancy.opened_at.isoformat()
    title = vacancy_title(vacancy.unit)
    # `match_vacancy` judges each artisan once: one eligibility JSON per artisan too.
    eligibility_json: dict[str, dict[str, Any]] = {}
    rows: list[Row] = []
    feed: list[Row] = []
    for match in matches:
        sub = match.subscription
        if sub.artisan_id not in eligibility_json:
            eligibility_json[sub.artisan_id] = _eligibility_json(match.eligibility)
        payload = {
            "type": "vacancy.opened",
            "timestamp": opened_at,
            "data": {
                "vacancy_id": vacancy.vacancy_id,
                "opened_at": opened_at,
                "unit": unit_json,
                "subscription": {"id": sub.id, "name": sub.name},
                "why": {
                    "criteria": list(match.criteria),
                    "eligibility": eligibility_json[sub.artisan_id],
                },
            },
        }
        deliveries, items = _deliveries_for(
            event_id=event.id,
            recipient_key=sub.id,
            artisan_id=sub.artisan_id,
            subscription_id=sub.id,
            kind=DeliveryKind.VACANCY_ALERT,
            channels=_enabled_channels(sub),
            payload=payload,
            title=title,
            now=now,
            vacancy_id=vacancy.vacancy_id,
            occurred_at=vacancy.opened_at,
            digest_at=digest_at if sub.frequency == Frequency.DAILY.value else None,
        )
        rows += deliveries
        feed += items
    await _insert(session, rows, feed)
    _after_commit(session, signals, rows)
    return rows


def _after_commit(session: AsyncSession, signals: Signals, rows: list[Row]) -> None:
    feed = [r for r in rows if r["channel"] == Channel.FEED.value]
    signals.after_commit(
        session,
        wake_worker=len(feed) < len(rows),
        feed_for={r["artisan_id"] for r in feed},
    )
    if feed:

        def count() -> None:
            now = _now()
            for r in feed:
                observe_delivered(r["channel"], r["occurred_at"], now)

        on_commit(session, count)


APPLICANT_MESSAGES = {
    "leasing.application.decided.v1": (
        DeliveryKind.APPLICATION_DECIDED,
        "application.decided",
        "Décision sur votre candidature",
    ),
    "leasing.lease.offered.v1": (
        DeliveryKind.LEASE_OFFERED,
        "lease.offered",
        "Un bail vous est proposé",
    ),
}


async def record_applicant_message(
    session: AsyncSession, signals: Signals, event: CloudEvent
) -> list[Row]:
    """An e-mail (and a feed item) to the applicant; the address is looked up when sending,
    so a decision that arrives before the artisan's profile still reaches them. Returns the
    delivery rows written (column -> value)."""
    kind, message_type, title = APPLICANT_MESSAGES[event.type]
    artisan_id = artisan_id_of(event.data)
    payload = {"type": message_type, "timestamp": event.time.isoformat(), "data": event.data}
    rows, feed = _deliveries_for(
        event_id=event.id,
        recipient_key=f"artisan:{artisan_id}",
        artisan_id=artisan_id,
        subscription_id=None,
        kind=kind,
        channels=[Channel.EMAIL, Channel.FEED],
        payload=payload,
        title=title,
        now=_now(),
    )
    await _insert(session, rows, feed)
    _after_commit(session, signals, rows)
    return rows


# Deliveries and feed -------------------------------------------------------------------------


async def list_deliveries(sessions: Sessions, q: DeliveryQuery) -> Page[DeliveryOut]:
    async with sessions() as session:
        rows, total = await repo.list_deliveries(session, q)
    return Page(items=[delivery_out(d) for d in rows], total=total, limit=q.limit, offset=q.offset)


async def subscription_deliveries(
    sessions: Sessions, principal: Principal, subscription_id: str, limit: int, offset: int
) -> Page[DeliveryOut]:
    async with sessions() as session:
        await _own(session, principal, subscription_id)
    return await list_deliveries(
        sessions, DeliveryQuery(subscription_id=subscription_id, limit=limit, offset=offset)
    )


async def redeliver(sessions: Sessions, signals: Signals, delivery_id: str) -> DeliveryOut:
    """Send a dead delivery again, as the same message (same webhook-id), with fresh attempts."""
    async with sessions() as session, session.begin():
        delivery = await repo.get_delivery(session, delivery_id, for_update=True)
        if delivery is None:
            raise ProblemError(404, f"No delivery with id {delivery_id}.")
        if delivery.status != DeliveryStatus.DEAD.value:
            raise ProblemError(
                409, f"Only dead deliveries can be redelivered; this one is {delivery.status}."
            )
        delivery.status = DeliveryStatus.PENDING.value
        delivery.attempts = 0
        delivery.next_attempt_at = _now()
        delivery.claimed_until = None
        signals.after_commit(session, wake_worker=True)
    DELIVERIES.labels(delivery.channel, "redelivered").inc()
    return delivery_out(delivery)


async def flush_digests(sessions: Sessions, signals: Signals) -> int:
    async with sessions() as session, session.begin():
        made_due = await repo.make_digests_due(session, _now())
        signals.after_commit(session, wake_worker=made_due > 0)
    return made_due


def feed_item_out(item: FeedItem) -> FeedItemOut:
    assert item.id is not None
    return FeedItemOut(
        id=item.id,
        kind=DeliveryKind(item.kind),
        title=item.title,
        body=item.body,
        subscription_id=item.subscription_id,
        created_at=item.created_at,
        read=item.read_at is not None,
        read_at=item.read_at,
    )


async def feed_page(
    sessions: Sessions, artisan_id: str, *, unread_only: bool, before: int | None, limit: int
) -> FeedPage:
    async with sessions() as session:
        items = await repo.list_feed(
            session, artisan_id, unread_only=unread_only, before_id=before, limit=limit
        )
        unread = await repo.unread_count(session, artisan_id)
    next_before = items[-1].id if len(items) == limit else None
    return FeedPage(items=[feed_item_out(i) for i in items], unread=unread, next_before=next_before)


async def mark_read(sessions: Sessions, artisan_id: str, item_id: int, read: bool) -> FeedItemOut:
    async with sessions() as session, session.begin():
        item = await repo.get_feed_item(session, item_id)
        if item is None or item.artisan_id != artisan_id:
            raise ProblemError(404, f"No feed item with id {item_id}.")
        if read and item.read_at is None:
            item.read_at = _now()
        elif not read:
            item.read_at = None
    return feed_item_out(item)


async def mark_all_read(sessions: Sessions, artisan_id: str) -> int:
    async with sessions() as session, session.begin():
        return await repo.mark_all_read(session, artisan_id, _now())


async def feed_after(sessions: Sessions, artisan_id: str, after_id: int) -> list[FeedItemOut]:
    """Items newer than `after_id`, oldest first (for the event stream)."""
    async with sessions() as session:
        items = await repo.list_feed(
            session, artisan_id, unread_only=False, before_id=None, after_id=after_id, limit=100
        )
    return [feed_item_out(i) for i in reversed(items)]
