"""The visits' mail job: each booking's reminder once, 24 to 12 hours before its visit, and the
host's cancellation to every booking of a cancelled visit. The process that runs the delivery
worker runs it every NOTIFICATIONS_VISIT_MAIL_INTERVAL_S, on `clock.visits_now()`.

Each booking is claimed by one conditional UPDATE (its mark still empty) before its e-mail goes,
so two replicas never mail it twice; a send that fails releases the claim for the next run. The
cancellation link of a reminder is the confirmation's (the token is signed, never stored).
Logs carry counts and ids only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiosmtplib
from sqlalchemy import select, update
from sqlmodel import col

from notifications import mailer, visits_email
from notifications.clock import visits_now
from notifications.models import VisitBooking, VisitSlot
from notifications.service.common import Sessions
from notifications.service.visits import BOOKED, CANCELLED, SCHEDULED
from notifications.settings import NotificationsSettings

log = logging.getLogger(__name__)

#: The reminder goes between these two lead times before the visit.
REMINDER_FROM, REMINDER_UNTIL = timedelta(hours=24), timedelta(hours=12)
#: Bookings mailed per kind and run.
MAIL_BATCH = 200


@dataclass
class VisitMailReport:
    reminded: int = 0
    told_cancelled: int = 0
    failed: int = 0


async def _claim(
    sessions: Sessions, stmt: Any, values: dict[str, Any], claimed: Any
) -> list[tuple[VisitBooking, VisitSlot]]:
    """Mark each due booking claimed (one conditional UPDATE each, so two replicas never mail
    one booking twice) and return those this run took."""
    took: list[tuple[VisitBooking, VisitSlot]] = []
    async with sessions() as session, session.begin():
        for booking, slot in (await session.execute(stmt.limit(MAIL_BATCH))).all():
            done = await session.execute(
                update(VisitBooking)
                .where(col(VisitBooking.id) == booking.id, claimed.is_(None))
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if done.rowcount == 1:  # type: ignore[attr-defined]
                took.append((booking, slot))
    return took


async def _mail(settings: NotificationsSettings, to: str, email: Any, message_id: str) -> bool:
    message = mailer.build_message(
        settings, to, visits_email.render(email), message_id=message_id, unsubscribe=None
    )
    try:
        await mailer.send(settings, message)
    except (aiosmtplib.SMTPException, OSError, TimeoutError, mailer.PermanentMailError) as exc:
        log.warning(
            "visit e-mail not sent: %s", type(exc).__name__, extra={"message_id": message_id}
        )
        return False
    return True


async def send_due_mails(
    sessions: Sessions, settings: NotificationsSettings, at: datetime
) -> VisitMailReport:
    """Mail each booking's reminder once (its visit starts 24 to 12 hours after `at`) and tell
    each booking of a visit its host cancelled; a failed send is released for the next run."""
    report = VisitMailReport()
    joined = select(VisitBooking, VisitSlot).join(
        VisitSlot, col(VisitSlot.slot_id) == col(VisitBooking.slot_id)
    )
    due = joined.where(
        col(VisitBooking.status) == BOOKED,
        col(VisitBooking.reminded_at).is_(None),
        col(VisitSlot.status) == SCHEDULED,
        col(VisitSlot.starts_at) > at + REMINDER_UNTIL,
        col(VisitSlot.starts_at) <= at + REMINDER_FROM,
    )
    for booking, slot in await _claim(
        sessions, due, {"reminded_at": at}, col(VisitBooking.reminded_at)
    ):
        token = visits_email.cancel_token(settings, booking.id)
        email = visits_email.reminder_email(settings, slot, booking.language, booking.places, token)
        if await _mail(settings, booking.email, email, f"visit-reminder-{booking.id}"):
            report.reminded += 1
            continue
        report.failed += 1
        async with sessions() as session, session.begin():
            await session.execute(
                update(VisitBooking)
                .where(col(VisitBooking.id) == booking.id)
                .values(reminded_at=None)
            )
    told = joined.where(
        col(VisitBooking.status) == BOOKED,
        col(VisitBooking.slot_cancel_mailed_at).is_(None),
        col(VisitSlot.status) == CANCELLED,
        col(VisitSlot.ends_at) > at,
    )
    claim = {"slot_cancel_mailed_at": at, "status": CANCELLED, "cancelled_at": at}
    for booking, slot in await _claim(
        sessions, told, claim, col(VisitBooking.slot_cancel_mailed_at)
    ):
        told_email = visits_email.cancelled_email(settings, slot, booking.language)
        if await _mail(settings, booking.email, told_email, f"visit-cancelled-{booking.id}"):
            report.told_cancelled += 1
            continue
        report.failed += 1
        async with sessions() as session, session.begin():
            await session.execute(
                update(VisitBooking)
                .where(col(VisitBooking.id) == booking.id)
                .values(slot_cancel_mailed_at=None, status=BOOKED, cancelled_at=None)
            )
    if report.reminded or report.told_cancelled or report.failed:
        log.info(
            "visit e-mails sent",
            extra={
                "reminded": report.reminded,
                "told_cancelled": report.told_cancelled,
                "failed": report.failed,
            },
        )
    return report


async def run_visit_mail_loop(
    sessions: Sessions, settings: NotificationsSettings, stop: asyncio.Event
) -> None:
    """`send_due_mails` every NOTIFICATIONS_VISIT_MAIL_INTERVAL_S until `stop`."""
    while not stop.is_set():
        try:
            await send_due_mails(sessions, settings, visits_now())
        except Exception as exc:
            log.warning("visit e-mail run failed (%s)", type(exc).__name__)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.visit_mail_interval_s)
