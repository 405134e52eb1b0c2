"""What the use cases share: the session factory, ids and the clock, and whose a subscription is."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.auth import Principal
from fabkit.errors import ProblemError
from notifications import repository as repo
from notifications.domain import Channel, SubscriptionStatus
from notifications.models import Subscription

Sessions = async_sessionmaker[AsyncSession]


def new_id() -> str:
    """A fresh random id (UUID 4)."""
    return str(uuid.uuid4())


def now() -> datetime:
    """The current instant, aware, in UTC."""
    return datetime.now(UTC)


async def own_subscription(
    session: AsyncSession, principal: Principal, subscription_id: str, *, for_update: bool = False
) -> Subscription:
    """The caller's subscription (any one for an admin); 404 when it is not theirs to see."""
    sub = await repo.get_subscription(session, subscription_id, for_update=for_update)
    # Another artisan's subscription is answered like a missing one: ids are not disclosed.
    if (
        sub is None
        or sub.status == SubscriptionStatus.DELETED.value
        or (sub.artisan_id != principal.subject and not principal.is_admin)
    ):
        raise ProblemError(404, f"No subscription with id {subscription_id}.")
    return sub


def enabled_channels(sub: Subscription) -> list[Channel]:
    """The channels a subscription's messages go out on now."""
    channels = []
    if sub.webhook_enabled and sub.webhook_url:
        channels.append(Channel.WEBHOOK)
    if sub.email_enabled:
        channels.append(Channel.EMAIL)
    if sub.feed_enabled:
        channels.append(Channel.FEED)
    return channels
