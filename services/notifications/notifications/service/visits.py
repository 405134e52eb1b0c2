"""Workshop visits: inventory publishes the slots a site or a tenant opens (read model
`visit_slot_views`); anyone books places with an e-mail address (no account), gets a confirmation
with a cancellation link and a reminder the day before; a host's cancellation is mailed to
everyone booked (the mail job: `service/visit_mail.py`); hosts see their bookings; an iCalendar
feed lists what is coming.

Capacity: a booking takes its places with one conditional UPDATE (`booked + n <= capacity`),
so two bookings at once can never overbook, on SQLite (one writer) or PostgreSQL (the row
lock re-checks the condition). The cancellation token is signed (`visits_email.cancel_token`);
only its SHA-256 is stored. Time is `clock.visits_now()` (tests move it). Queries live here
rather than in `repository.py`, as for retention and erasure: they are this area's alone. Logs
carry ids and counts, never an address.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiosmtplib
from sqlalchemy import Select, String, case, cast, func, select, update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.auth import Principal, Role
from fabkit.errors import ProblemError
from fabkit.pagination import Page, PageParams, paginate
from notifications import mailer, visits_email
from notifications.clock import visits_now
from notifications.events.consumed import VISIT_SLOT_CANCELLED, VisitSlotEventIn
from notifications.metrics import VISIT_BOOKINGS, VISIT_PLACES
from notifications.models import VisitBooking, VisitSlot
from notifications.schemas import (
    HostedBookingOut,
    HostedVisitOut,
    VisitBookingCreate,
    VisitBookingOut,
    VisitCancelled,
    VisitOut,
)
from notifications.service.common import Sessions, new_id
from notifications.service.guests import normalise_email
from notifications.settings import NotificationsSettings
from notifications.visits_ical import calendar

log = logging.getLogger(__name__)

SCHEDULED, CANCELLED = "scheduled", "cancelled"
BOOKED = "booked"
#: Hosts see their visits that ended up to this long ago (retention deletes bookings after 30).
HOSTED_PAST = timedelta(days=30)

FULL = "This visit is full: every place is booked. Other visits are listed at /visites."
_NOT_FOUND = "No visit with id {slot_id}: other visits are listed at /visites."
_HOST_CANCELLED = "This visit was cancelled by its host: other visits are listed at /visites."
_STARTED = "This visit has already started or is over: other visits are listed at /visites."
_TOO_FEW = (
    "Only {left} place(s) are left on this visit: book {left} or fewer, or choose another "
    "visit at /visites."
)
_TWICE = (
    "This address already has places booked on this visit: cancel that booking from its "
    "e-mail first to book again with other numbers."
)
_INVALID_LINK = (
    "This cancellation link is not valid: check that the whole address from the e-mail was opened."
)


# Consumed: inventory's slots ---------------------------------------------------------------------


async def apply_slot_event(session: AsyncSession, event_type: str, data: VisitSlotEventIn) -> None:
    """Upsert inventory's slot (an older version than the one held is ignored). Bookings and
    `booked` are this service's: a host's update never resets them; a host's cancellation is
    mailed to the people booked by the mail job."""
    slot_in = data.slot
    slot = await session.get(VisitSlot, slot_in.slot_id, with_for_update=True)
    if slot is None:
        slot = VisitSlot(
            slot_id=slot_in.slot_id,
            site_id=slot_in.site_id,
            starts_at=slot_in.starts_at,
            ends_at=slot_in.ends_at,
        )
        session.add(slot)
    elif slot_in.version and slot.version and slot_in.version < slot.version:
        return
    for name in (
        "site_id", "site_name", "site_address", "postcode", "arrondissement", "latitude",
        "longitude", "host_kind", "host_landlord_id", "host_artisan_id", "unit_id", "title",
        "description", "starts_at", "ends_at", "capacity", "accessibility_notes", "version",
    ):  # fmt: skip
        setattr(slot, name, getattr(slot_in, name))
    slot.languages = list(slot_in.languages)
    slot.accessibility = list(slot_in.accessibility)
    slot.trades = list(slot_in.trades)
    cancelled = event_type == VISIT_SLOT_CANCELLED or slot_in.status == CANCELLED
    # A cancelled slot stays cancelled: a late `updated` does not reopen it.
    slot.status = CANCELLED if cancelled or slot.status == CANCELLED else SCHEDULED
    if cancelled and data.reason:
        slot.cancel_reason = data.reason
    slot.updated_at = visits_now()
    await session.flush()
    log.info("visit slot applied", extra={"slot_id": slot.slot_id, "status": slot.status})


# Reading -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VisitFilters:
    arrondissement: int | None = None
    trade: str | None = None
    language: str | None = None
    accessibility: str | None = None
    from_: datetime | None = None
    to: datetime | None = None


def _json_has(column: Any, value: str) -> Any:
    # The list's JSON text holds `"value"` (values are plain words: trades, languages, needs).
    return cast(column, String).like(f'%"{value}"%')


def _upcoming(at: datetime, filters: VisitFilters) -> Select[Any]:
    stmt = select(VisitSlot).where(
        col(VisitSlot.status) == SCHEDULED, col(VisitSlot.starts_at) > at
    )
    if filters.arrondissement is not None:
        stmt = stmt.where(col(VisitSlot.arrondissement) == filters.arrondissement)
    if filters.from_ is not None:
        stmt = stmt.where(col(VisitSlot.starts_at) >= filters.from_)
    if filters.to is not None:
        stmt = stmt.where(col(VisitSlot.starts_at) <= filters.to)
    for column, value in (
        (VisitSlot.trades, filters.trade),
        (VisitSlot.languages, filters.language),
        (VisitSlot.accessibility, filters.accessibility),
    ):
        if value is not None:
            stmt = stmt.where(_json_has(col(column), value))
    return stmt.order_by(col(VisitSlot.starts_at), col(VisitSlot.slot_id))


async def list_visits(
    sessions: Sessions, filters: VisitFilters, page: PageParams
) -> Page[VisitOut]:
    """Upcoming scheduled visits, soonest first, with the places left."""
    async with sessions() as session:
        rows, total = await paginate(session, _upcoming(visits_now(), filters), page)
    return Page[VisitOut].of(rows, total, page, VisitOut.of)


async def get_visit(sessions: Sessions, slot_id: str) -> VisitOut:
    async with sessions() as session:
        slot = await session.get(VisitSlot, slot_id)
    if slot is None:
        raise ProblemError(404, _NOT_FOUND.format(slot_id=slot_id))
    return VisitOut.of(slot)


async def ical_feed(
    sessions: Sessions, settings: NotificationsSettings, arrondissement: int | None
) -> str:
    """The upcoming visits as one RFC 5545 calendar (at most 1,000, soonest first)."""
    stmt = _upcoming(visits_now(), VisitFilters(arrondissement=arrondissement)).limit(1000)
    async with sessions() as session:
        slots = list((await session.execute(stmt)).scalars().all())
    return calendar(slots, portal_url=settings.portal_base_url, stamp=visits_now())


# Booking and cancelling --------------------------------------------------------------------------


async def _site_places(session: AsyncSession, site_id: str, at: datetime) -> int:
    stmt = select(func.coalesce(func.sum(col(VisitSlot.booked)), 0)).where(
        col(VisitSlot.site_id) == site_id,
        col(VisitSlot.status) == SCHEDULED,
        col(VisitSlot.ends_at) > at,
    )
    return int((await session.execute(stmt)).scalar_one())


async def _check_address(
    session: AsyncSession, settings: NotificationsSettings, email: str, slot_id: str, at: datetime
) -> None:
    hour = at - timedelta(hours=1)
    recent = select(func.count()).where(
        col(VisitBooking.email) == email, col(VisitBooking.created_at) > hour
    )
    count = int((await session.execute(recent)).scalar_one())
    if count >= settings.visit_bookings_per_address_per_hour:
        raise ProblemError(
            429,
            f"{count} visits were booked with this address within the hour: ask again in an "
            "hour, or cancel a booking you do not need.",
            headers={"Retry-After": "3600"},
            retry_after_s=3600,
        )
    twice = select(col(VisitBooking.id)).where(
        col(VisitBooking.email) == email,
        col(VisitBooking.slot_id) == slot_id,
        col(VisitBooking.status) == BOOKED,
    )
    if (await session.execute(twice.limit(1))).first() is not None:
        raise ProblemError(409, _TWICE)


async def _take_places(session: AsyncSession, slot: VisitSlot, places: int) -> None:
    """Take `places` on the slot in one conditional UPDATE; 409 when they are not free."""
    taken = await session.execute(
        update(VisitSlot)
        .where(
            col(VisitSlot.slot_id) == slot.slot_id,
            col(VisitSlot.status) == SCHEDULED,
            col(VisitSlot.booked) + places <= col(VisitSlot.capacity),
        )
        .values(booked=col(VisitSlot.booked) + places)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount == 1:  # type: ignore[attr-defined]
        return
    await session.refresh(slot)
    left = max(slot.capacity - slot.booked, 0)
    VISIT_BOOKINGS.labels("full").inc()
    if left == 0:
        raise ProblemError(409, FULL, reason="full")
    raise ProblemError(409, _TOO_FEW.format(left=left), reason="too_few", places_left=left)


@dataclass(frozen=True)
class _Booked:
    booking_id: str
    token: str
    email: str
    slot: VisitSlot
    site_places: int


async def _record_booking(
    sessions: Sessions, settings: NotificationsSettings, slot_id: str, data: VisitBookingCreate
) -> _Booked:
    at = visits_now()
    email = normalise_email(str(data.email))
    booking_id = new_id()
    token = visits_email.cancel_token(settings, booking_id)
    async with sessions() as session, session.begin():
        slot = await session.get(VisitSlot, slot_id)
        if slot is None:
            raise ProblemError(404, _NOT_FOUND.format(slot_id=slot_id))
        if slot.status != SCHEDULED:
            raise ProblemError(409, _HOST_CANCELLED, reason="cancelled")
        if slot.starts_at <= at:
            raise ProblemError(409, _STARTED, reason="started")
        await _check_address(session, settings, email, slot_id, at)
        await _take_places(session, slot, data.places)
        session.add(
            VisitBooking(
                id=booking_id,
                slot_id=slot_id,
                email=email,
                language=data.language,
                places=data.places,
                cancel_token_hash=visits_email.token_hash(token),
                status=BOOKED,
                created_at=at,
            )
        )
        await session.flush()
        await session.refresh(slot)
        site_places = await _site_places(session, slot.site_id, at)
    return _Booked(booking_id, token, email, slot, site_places)


async def _free_places(session: AsyncSession, slot_id: str, places: int) -> None:
    left = col(VisitSlot.booked) - places
    await session.execute(
        update(VisitSlot)
        .where(col(VisitSlot.slot_id) == slot_id)
        .values(booked=case((left < 0, 0), else_=left))
        .execution_options(synchronize_session=False)
    )


async def book(
    sessions: Sessions, settings: NotificationsSettings, slot_id: str, data: VisitBookingCreate
) -> VisitBookingOut:
    """Book places (409 when the visit is full, cancelled or started), then mail the
    confirmation with its cancellation link; a confirmation that cannot be sent undoes the
    booking (503), so nobody holds places they were never told about."""
    booked = await _record_booking(sessions, settings, slot_id, data)
    email = visits_email.booked_email(
        settings, booked.slot, data.language, data.places, booked.token
    )
    message = mailer.build_message(
        settings,
        booked.email,
        visits_email.render(email),
        message_id=f"visit-booked-{booked.booking_id}",
        unsubscribe=None,
    )
    try:
        await mailer.send(settings, message)
    except (aiosmtplib.SMTPException, OSError, TimeoutError, mailer.PermanentMailError) as exc:
        log.warning(
            "visit confirmation e-mail not sent: %s",
            type(exc).__name__,
            extra={"slot_id": slot_id, "booking_id": booked.booking_id},
        )
        async with sessions() as session, session.begin():
            await session.execute(
                update(VisitBooking)
                .where(col(VisitBooking.id) == booked.booking_id)
                .values(status=CANCELLED, cancelled_at=visits_now())
            )
            await _free_places(session, slot_id, data.places)
        raise ProblemError(
            503,
            "The confirmation e-mail could not be sent just now, so nothing was booked: try "
            "again in a few minutes.",
            headers={"Retry-After": "120"},
        ) from exc
    VISIT_BOOKINGS.labels("booked").inc()
    VISIT_PLACES.labels(booked.slot.site_id).set(booked.site_places)
    log.info("visit booked", extra={"slot_id": slot_id, "booking_id": booked.booking_id})
    return VisitBookingOut(
        booking_id=booked.booking_id,
        places=data.places,
        visit=VisitOut.of(booked.slot),
        detail="Your places are booked. A confirmation e-mail with the cancellation link is on "
        "its way, and a reminder comes the day before.",
    )


async def cancel(sessions: Sessions, token: str) -> VisitCancelled:
    """Cancel the booking of a link's token and free its places; a second call answers the
    same with no place freed."""
    if len(token) > 200:
        raise ProblemError(404, _INVALID_LINK)
    at = visits_now()
    async with sessions() as session, session.begin():
        stmt = select(VisitBooking).where(
            col(VisitBooking.cancel_token_hash) == visits_email.token_hash(token)
        )
        booking = (await session.execute(stmt.with_for_update())).scalars().first()
        if booking is None:
            raise ProblemError(404, _INVALID_LINK)
        if booking.status == CANCELLED:
            return VisitCancelled(
                slot_id=booking.slot_id,
                places_freed=0,
                detail="This booking was already cancelled: its places are free.",
            )
        booking.status, booking.cancelled_at = CANCELLED, at
        places, slot_id = booking.places, booking.slot_id
        await _free_places(session, slot_id, places)
        await session.flush()
        slot = await session.get(VisitSlot, slot_id)
        site_id = slot.site_id if slot is not None else None
        site_places = await _site_places(session, site_id, at) if site_id else 0
    VISIT_BOOKINGS.labels("cancelled").inc()
    if site_id:
        VISIT_PLACES.labels(site_id).set(site_places)
    log.info("visit booking cancelled", extra={"slot_id": slot_id})
    return VisitCancelled(
        slot_id=slot_id,
        places_freed=places,
        detail="Your booking is cancelled and its places are free again.",
    )


# Hosts ------------------------------------------------------------------------------------------


async def hosted(
    sessions: Sessions, principal: Principal, page: PageParams
) -> Page[HostedVisitOut]:
    """The caller's visits (a landlord: every slot of its sites; an artisan: the ones it opens),
    soonest first from 30 days back, with the places booked. The addresses booked are shown to
    the host only: a landlord sees them on the visits its site hosts, not on its tenants'."""
    at = visits_now()
    host = (
        col(VisitSlot.host_landlord_id)
        if principal.role is Role.LANDLORD
        else col(VisitSlot.host_artisan_id)
    )
    stmt = (
        select(VisitSlot)
        .where(host == principal.subject, col(VisitSlot.ends_at) > at - HOSTED_PAST)
        .order_by(col(VisitSlot.starts_at), col(VisitSlot.slot_id))
    )
    async with sessions() as session:
        slots, total = await paginate(session, stmt, page)
        ids = [s.slot_id for s in slots]
        bookings: dict[str, list[VisitBooking]] = {i: [] for i in ids}
        if ids:
            rows = await session.execute(
                select(VisitBooking)
                .where(col(VisitBooking.slot_id).in_(ids), col(VisitBooking.status) == BOOKED)
                .order_by(col(VisitBooking.created_at))
            )
            for b in rows.scalars().all():
                bookings[b.slot_id].append(b)
    items = []
    for slot in slots:
        own = (
            slot.host_kind != "tenant"
            if principal.role is Role.LANDLORD
            else slot.host_artisan_id == principal.subject
        )
        held = bookings[slot.slot_id]
        items.append(
            HostedVisitOut(
                visit=VisitOut.of(slot),
                places_booked=sum(b.places for b in held),
                bookings_count=len(held),
                bookings=[
                    HostedBookingOut(
                        email=b.email, places=b.places, language=b.language, booked_at=b.created_at
                    )
                    for b in held
                ]
                if own
                else [],
            )
        )
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)
