"""Saved searches: create, read, change, pause/resume/delete, unsubscribe by e-mail, test."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.auth import Principal
from fabkit.errors import ProblemError
from fabkit.pagination import Page, PageParams
from notifications import repository as repo
from notifications.contracts import SubscriptionRef, SubscriptionTest, SubscriptionTestWebhook
from notifications.domain import (
    Channel,
    Criteria,
    DeliveryKind,
    SubscriptionStatus,
    feature_mask,
    index_terms,
    logistics_mask,
)
from notifications.mailer import read_unsubscribe_token
from notifications.models import Subscription
from notifications.schemas import (
    ChannelIn,
    CriteriaIn,
    DeliveryOut,
    EmailChannelIn,
    FeedChannelIn,
    SubscriptionCreate,
    SubscriptionCreated,
    SubscriptionOut,
    SubscriptionPatch,
    TestSendOut,
    WebhookChannelIn,
)
from notifications.service import staging
from notifications.service.common import (
    Sessions,
    enabled_channels,
    new_id,
    now,
    own_subscription,
)
from notifications.settings import NotificationsSettings
from notifications.signals import Signals
from notifications.webhooks import UnsafeUrl, generate_secret, resolve_target

TEST_MESSAGE = "Test message: alerts for this saved search will arrive like this."


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


def _apply_channels(sub: Subscription, channels: Sequence[ChannelIn]) -> str | None:
    """Set the subscription's channels; return a webhook secret that is new (to show once).

    A new webhook URL must have been checked (`_check_webhook_url`) before: DNS is resolved
    outside the transaction, so no lock is held while resolving.
    """
    webhook = next((c for c in channels if isinstance(c, WebhookChannelIn)), None)
    email = next((c for c in channels if isinstance(c, EmailChannelIn)), None)
    new_secret: str | None = None
    if webhook is None:
        sub.webhook_url, sub.webhook_secret, sub.webhook_enabled = None, None, False
    else:
        url_changed = webhook.url != sub.webhook_url
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
    stored = Criteria.from_stored(sub.criteria)
    sub.space_kind = stored.wanted_space_kind
    sub.logistics_mask = logistics_mask(stored.logistics)
    sub.river_quay_within_m = criteria.river_quay_within_m
    sub.min_freight_weight_t = criteria.min_freight_weight_t
    sub.min_freight_height_m = criteria.min_freight_height_m


async def _refile(session: AsyncSession, sub: Subscription) -> None:
    """Keep the index in step: only active subscriptions are in it."""
    active = sub.status == SubscriptionStatus.ACTIVE.value
    terms = index_terms(Criteria.from_stored(sub.criteria)) if active else []
    await repo.replace_terms(session, sub.id, terms)


async def create_subscription(
    sessions: Sessions,
    settings: NotificationsSettings,
    principal: Principal,
    data: SubscriptionCreate,
) -> SubscriptionCreated:
    """Save a search for the calling artisan; a new webhook secret is returned once."""
    sub = Subscription(
        id=new_id(),
        artisan_id=principal.subject,
        name=data.name,
        status=SubscriptionStatus.ACTIVE.value,
        frequency=data.frequency.value,
        criteria={},
    )
    _set_criteria(sub, data.criteria)
    webhook = next((c for c in data.channels if isinstance(c, WebhookChannelIn)), None)
    if webhook is not None:
        await _check_webhook_url(settings, webhook.url)
    secret = _apply_channels(sub, data.channels)
    async with sessions() as session, session.begin():
        session.add(sub)
        await session.flush()
        await _refile(session, sub)
    return SubscriptionCreated.with_secret(sub, secret)


async def get_subscription(
    sessions: Sessions, principal: Principal, subscription_id: str
) -> SubscriptionOut:
    """One of the caller's saved searches."""
    async with sessions() as session:
        return SubscriptionOut.of(await own_subscription(session, principal, subscription_id))


async def list_subscriptions(
    sessions: Sessions, principal: Principal, page: PageParams
) -> Page[SubscriptionOut]:
    """The caller's saved searches, newest first."""
    async with sessions() as session:
        rows, total = await repo.list_subscriptions(session, principal.subject, page)
    return Page.of(rows, total, page, SubscriptionOut.of)


async def update_subscription(
    sessions: Sessions,
    settings: NotificationsSettings,
    principal: Principal,
    subscription_id: str,
    patch: SubscriptionPatch,
) -> SubscriptionCreated:
    """Change a saved search; a webhook secret is returned only when a new one was made."""
    # DNS is checked before the transaction so no lock is held while resolving.
    if patch.channels is not None:
        async with sessions() as session:
            current = await own_subscription(session, principal, subscription_id)
        for channel in patch.channels:
            if isinstance(channel, WebhookChannelIn) and channel.url != current.webhook_url:
                await _check_webhook_url(settings, channel.url)
    async with sessions() as session, session.begin():
        sub = await own_subscription(session, principal, subscription_id, for_update=True)
        secret = None
        if patch.name is not None:
            sub.name = patch.name
        if patch.frequency is not None:
            sub.frequency = patch.frequency.value
        if patch.criteria is not None:
            _set_criteria(sub, patch.criteria)
        if patch.channels is not None:
            secret = _apply_channels(sub, patch.channels)
            if not sub.email_enabled:
                await repo.cancel_pending_of_subscription(
                    session, sub.id, "e-mail channel removed", Channel.EMAIL.value
                )
        sub.version += 1
        sub.updated_at = now()
        await _refile(session, sub)
    return SubscriptionCreated.with_secret(sub, secret)


async def set_status(
    sessions: Sessions, principal: Principal, subscription_id: str, status: SubscriptionStatus
) -> SubscriptionOut:
    """Pause, resume (also re-enables a disabled subscription) or delete."""
    async with sessions() as session, session.begin():
        sub = await own_subscription(session, principal, subscription_id, for_update=True)
        if sub.status != status.value:
            sub.status = status.value
            sub.disabled_reason = None
            sub.version += 1
            sub.updated_at = now()
            await _refile(session, sub)
            if status is SubscriptionStatus.DELETED:
                await repo.cancel_pending_of_subscription(session, sub.id, "subscription deleted")
    return SubscriptionOut.of(sub)


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
            sub.updated_at = now()
            await repo.cancel_pending_of_subscription(
                session, sub.id, "unsubscribed from e-mail", Channel.EMAIL.value
            )
    return sub


async def send_test(
    sessions: Sessions, signals: Signals, principal: Principal, subscription_id: str
) -> TestSendOut:
    """Send a sample message on every channel, now, whatever the frequency or pause."""
    at = now()
    async with sessions() as session, session.begin():
        sub = await own_subscription(session, principal, subscription_id)
        channels = enabled_channels(sub)
        if not channels:
            raise ProblemError(409, "This subscription has no enabled channel to test.")
        body = SubscriptionTestWebhook(
            timestamp=at,
            data=SubscriptionTest(
                subscription=SubscriptionRef(id=sub.id, name=sub.name), message=TEST_MESSAGE
            ),
        ).body()
        message = staging.Message(
            event_id=f"test:{new_id()}",
            recipient_key=sub.id,
            artisan_id=sub.artisan_id,
            subscription_id=sub.id,
            kind=DeliveryKind.TEST,
            payload=body,
            title=f"Test de votre alerte « {sub.name} »",
        )
        rows, feed = staging.rows_for(message, channels, at)
        await staging.write(session, rows, feed)
        signals.after_commit(session, wake_worker=True, feed_for=[sub.artisan_id])
    return TestSendOut(deliveries=[DeliveryOut.model_validate(row) for row in rows])
