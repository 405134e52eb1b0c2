"""Deliveries: an artisan's own, an operator's view with filters, and redelivery of dead ones."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.auth import Principal
from fabkit.errors import ProblemError
from fabkit.pagination import Page, PageParams
from notifications import repository as repo
from notifications.domain import DeliveryStatus, SubscriptionStatus
from notifications.metrics import DELIVERIES
from notifications.models import Delivery
from notifications.repository import DeliveryFilter
from notifications.schemas import DeliveryOut
from notifications.service.common import Sessions, now, own_subscription
from notifications.signals import Signals


def _out(delivery: object) -> DeliveryOut:
    return DeliveryOut.model_validate(delivery, from_attributes=True)


async def list_deliveries(
    sessions: Sessions, where: DeliveryFilter, page: PageParams
) -> Page[DeliveryOut]:
    """Deliveries matching `where`, newest first."""
    async with sessions() as session:
        rows, total = await repo.list_deliveries(session, where, page)
    return Page.of(rows, total, page, _out)


async def subscription_deliveries(
    sessions: Sessions, principal: Principal, subscription_id: str, page: PageParams
) -> Page[DeliveryOut]:
    """What was sent for one of the caller's saved searches, newest first."""
    async with sessions() as session:
        await own_subscription(session, principal, subscription_id)
        rows, total = await repo.list_deliveries(
            session, DeliveryFilter(subscription_id=subscription_id), page
        )
    return Page.of(rows, total, page, _out)


async def redeliver(
    sessions: Sessions, signals: Signals, delivery_id: str, owner: Principal | None = None
) -> DeliveryOut:
    """Send a dead delivery again, as the same message (same webhook-id), with fresh attempts.

    With `owner`, only a delivery of that artisan's own saved search (or sent to that artisan
    directly) is found; another's is answered like a missing one, as for subscriptions.
    """
    async with sessions() as session, session.begin():
        delivery = await repo.get_delivery(session, delivery_id, for_update=True)
        if delivery is None or (owner is not None and not await _owns(session, owner, delivery)):
            raise ProblemError(404, f"No delivery with id {delivery_id}.")
        if delivery.status != DeliveryStatus.DEAD.value:
            raise ProblemError(
                409, f"Only dead deliveries can be redelivered; this one is {delivery.status}."
            )
        if delivery.cleared_at is not None:
            raise ProblemError(
                409,
                "This delivery's message was cleared by retention after it died: there is "
                "nothing left to send; later alerts are not affected.",
            )
        delivery.status = DeliveryStatus.PENDING.value
        delivery.attempts = 0
        delivery.next_attempt_at = now()
        delivery.claimed_until = None
        signals.after_commit(session, wake_worker=True)
    DELIVERIES.labels(delivery.channel, "redelivered").inc()
    return _out(delivery)


async def _owns(session: AsyncSession, principal: Principal, delivery: Delivery) -> bool:
    """Whether the delivery belongs to the caller: its saved search is theirs (a search taken
    over from a guest included), or, without a search, it was addressed to them."""
    if delivery.subscription_id is None:
        return delivery.artisan_id == principal.subject
    sub = await repo.get_subscription(session, delivery.subscription_id)
    return (
        sub is not None
        and sub.status != SubscriptionStatus.DELETED.value
        and sub.artisan_id == principal.subject
    )
