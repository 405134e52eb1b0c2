"""The warning before leasing erases an inactive account (`leasing.artisan.inactivity_warned.v1`,
on `leasing.privacy.events`): one e-mail to the address of the artisan's profile copy, French
then English, with the date of the erasure and the portal's login. It runs in the consumer's
transaction, which also records the event id: one e-mail per warning, never two.

An artisan with no copy here (never known, or already erased): no e-mail, and a cancelled
delivery row saying why, so the warning is still on record. Logs carry ids only.
"""

from __future__ import annotations

import logging

from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.events import CloudEvent
from notifications import repository as repo
from notifications.domain import Channel, DeliveryKind, DeliveryStatus
from notifications.events.consumed import InactivityWarnedIn
from notifications.inactivity_email import inactivity_warning_email
from notifications.models import Delivery
from notifications.service.common import new_id, now
from notifications.service.privacy import is_erased
from notifications.settings import NotificationsSettings
from notifications.signals import Signals

log = logging.getLogger(__name__)

NO_COPY = "not sent: no profile copy of this artisan is held here (never received, or erased)"
NO_ADDRESS = "not sent: the artisan's profile has no contact address"


async def record_warning(
    session: AsyncSession,
    settings: NotificationsSettings,
    signals: Signals,
    event: CloudEvent,
    warned: InactivityWarnedIn,
) -> Delivery:
    """Stage the warning e-mail (or its record when it cannot go); returns the delivery row."""
    at = now()
    artisan = await repo.get_artisan(session, warned.artisan_id)
    email = inactivity_warning_email(
        last_active_at=warned.last_active_at,
        warned_at=warned.warned_at,
        erasure_due_at=warned.erasure_due_at,
        login_url=f"{settings.portal_base_url.rstrip('/')}/login",
    )
    why = None
    if artisan is None or await is_erased(session, warned.artisan_id):
        why = NO_COPY
    elif not artisan.contact_email:
        why = NO_ADDRESS
    delivery = Delivery(
        id=new_id(),
        event_id=event.id,
        recipient_key=f"artisan:{warned.artisan_id}",
        channel=Channel.EMAIL.value,
        kind=DeliveryKind.INACTIVITY_WARNING.value,
        artisan_id=warned.artisan_id,
        payload=email.model_dump(mode="json"),
        status=(DeliveryStatus.CANCELLED if why else DeliveryStatus.PENDING).value,
        last_error=why,
        next_attempt_at=at,
        created_at=at,
    )
    session.add(delivery)
    await session.flush()
    if why is None:
        signals.after_commit(session, wake_worker=True)
    log.info(
        "inactivity warning %s",
        "recorded, not sent" if why else "staged",
        extra={"artisan_id": warned.artisan_id, "event_id": event.id, "delivery_id": delivery.id},
    )
    return delivery
