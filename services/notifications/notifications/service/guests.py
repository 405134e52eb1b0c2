"""Alerts without an account: a guest asks with an e-mail address and criteria, confirms from
the e-mail (double opt-in: nothing else is sent before), gets e-mail alerts with no eligibility
check, and an artisan account later registered with the same address takes the searches over.

The confirmation token is random, single-use and expiring; only its SHA-256 is stored, so the
e-mail holds the one copy. Asking again for an address answers exactly as for a new one.
"""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiosmtplib
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.errors import ProblemError
from notifications import mailer
from notifications import repository as repo
from notifications.contracts import GuestConfirmationEmail
from notifications.domain import Criteria, Eligibility, Frequency, SubscriptionStatus
from notifications.events.consumed import ArtisanIn
from notifications.models import (
    GUEST_OWNER_PREFIX,
    GuestConfirmation,
    GuestSubscriber,
    Subscription,
)
from notifications.schemas import (
    CriteriaIn,
    GuestConfirmationOut,
    GuestConfirmed,
    GuestSubscriptionAccepted,
    GuestSubscriptionCreate,
)
from notifications.service.common import Sessions, new_id, now
from notifications.service.subscriptions import _refile as refile
from notifications.service.subscriptions import _set_criteria as set_criteria
from notifications.settings import NotificationsSettings

log = logging.getLogger(__name__)

PENDING, CONFIRMED = "pending", "confirmed"

#: The verdict every guest alert carries: guests have no profile to judge.
GUEST_ELIGIBILITY = Eligibility(
    True, False, "alerts without an account: no eligibility check was made"
)

DEFAULT_NAME = {"fr": "Alerte Fabrique", "en": "Fabrique alert"}

_INVALID = (
    "This confirmation link is not valid: check that the whole address from the e-mail was "
    "opened, or ask for alerts again from the board."
)
_EXPIRED = (
    "This confirmation link has expired: ask for alerts again from the board and a new "
    "e-mail will be sent."
)
_USED = "This confirmation link was already used: these alerts are confirmed."


def normalise_email(address: str) -> str:
    """The key of a guest: the address trimmed and in lower case."""
    return address.strip().lower()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def is_guest(owner: str) -> bool:
    """Whether a subscription or delivery owner is a guest rather than an artisan."""
    return owner.startswith(GUEST_OWNER_PREFIX)


def _retry_after(oldest: datetime | None, window: timedelta, at: datetime) -> int:
    if oldest is None:
        return math.ceil(window.total_seconds())
    return max(1, math.ceil((oldest + window - at).total_seconds()))


def _too_many(detail: str, seconds: int) -> ProblemError:
    return ProblemError(429, detail, headers={"Retry-After": str(seconds)}, retry_after_s=seconds)


async def _check_limits(
    session: AsyncSession,
    settings: NotificationsSettings,
    guest: GuestSubscriber | None,
    at: datetime,
) -> None:
    minute = timedelta(minutes=1)
    count, oldest = await repo.guest_confirmations_since(session, at - minute)
    if count >= settings.guest_requests_per_minute:
        wait = _retry_after(oldest, minute, at)
        raise _too_many(
            "Too many requests for alerts without an account are arriving right now: "
            f"try again in {wait} seconds.",
            wait,
        )
    if guest is None:
        return
    hour = timedelta(hours=1)
    count, oldest = await repo.guest_confirmations_since(session, at - hour, guest.id)
    if count >= settings.guest_confirmations_per_address_per_hour:
        wait = _retry_after(oldest, hour, at)
        raise _too_many(
            f"{count} confirmation e-mails were sent to this address within the hour: open the "
            f"latest one, or ask again in {math.ceil(wait / 60)} minutes.",
            wait,
        )


@dataclass(frozen=True)
class _Pending:
    token: str
    token_hash: str
    email: str
    name: str
    language: str
    expires_at: datetime


async def _record_request(
    sessions: Sessions, settings: NotificationsSettings, data: GuestSubscriptionCreate
) -> _Pending:
    email = normalise_email(str(data.email))
    token = secrets.token_urlsafe(32)
    at = now()
    pending = _Pending(
        token=token,
        token_hash=token_hash(token),
        email=email,
        name=data.name or DEFAULT_NAME[data.language],
        language=data.language,
        expires_at=at + timedelta(seconds=settings.guest_confirmation_ttl_s),
    )
    async with sessions() as session, session.begin():
        guest = await repo.get_guest_by_email(session, email, for_update=True)
        await _check_limits(session, settings, guest, at)
        if guest is None:
            guest = GuestSubscriber(id=new_id(), email=email, status=PENDING, language="fr")
            session.add(guest)
        guest.language = data.language
        guest.updated_at = at
        await session.flush()
        session.add(
            GuestConfirmation(
                token_hash=pending.token_hash,
                guest_id=guest.id,
                name=pending.name,
                criteria=data.criteria.model_dump(mode="json"),
                language=data.language,
                expires_at=pending.expires_at,
                created_at=at,
            )
        )
    return pending


async def request_alerts(
    sessions: Sessions, settings: NotificationsSettings, data: GuestSubscriptionCreate
) -> GuestSubscriptionAccepted:
    """Record the request and mail its confirmation link; nothing else goes to the address
    until the link is confirmed. The answer is the same for a new, pending or confirmed one."""
    try:
        pending = await _record_request(sessions, settings, data)
    except IntegrityError:
        # Two first requests for one address at once: the other created the guest row.
        pending = await _record_request(sessions, settings, data)
    email = GuestConfirmationEmail(
        subject=mailer.guest_confirmation_subject(pending.language),
        language=pending.language,  # type: ignore[arg-type]
        search_name=pending.name,
        confirm_url=mailer.guest_confirm_url(settings, pending.token),
        expires_at=pending.expires_at,
    )
    message = mailer.build_message(
        settings,
        pending.email,
        mailer.render_guest(email),
        message_id=f"guest-{pending.token_hash[:32]}",
        unsubscribe=None,
    )
    try:
        await mailer.send(settings, message)
    except (aiosmtplib.SMTPException, OSError, TimeoutError, mailer.PermanentMailError) as exc:
        log.warning("guest confirmation e-mail not sent: %s", type(exc).__name__)
        # Not sent: the link does not exist and the request does not count against the limits.
        async with sessions() as session, session.begin():
            await repo.delete_guest_confirmation(session, pending.token_hash)
        raise ProblemError(
            503,
            "The confirmation e-mail could not be sent just now: try again in a few minutes.",
            headers={"Retry-After": "120"},
        ) from exc
    return GuestSubscriptionAccepted(
        detail="A confirmation e-mail is on its way to this address. Nothing else will be sent "
        "to it until its link is opened and the alerts confirmed.",
        expires_in_s=int(settings.guest_confirmation_ttl_s),
    )


def _usable(confirmation: GuestConfirmation | None, at: datetime) -> GuestConfirmation:
    if confirmation is None:
        raise ProblemError(404, _INVALID)
    if confirmation.used_at is not None:
        raise ProblemError(410, _USED, reason="used")
    if confirmation.expires_at <= at:
        raise ProblemError(410, _EXPIRED, reason="expired")
    return confirmation


async def read_confirmation(sessions: Sessions, token: str) -> GuestConfirmationOut:
    """What a pending request would save: reading it changes nothing (mail scanners open links)."""
    if len(token) > 200:
        raise ProblemError(404, _INVALID)
    async with sessions() as session:
        found = _usable(await repo.get_guest_confirmation(session, token_hash(token)), now())
    return GuestConfirmationOut(
        name=found.name,
        criteria=found.criteria,
        language=found.language,  # type: ignore[arg-type]
        expires_at=found.expires_at,
    )


async def confirm(
    sessions: Sessions, settings: NotificationsSettings, token: str
) -> GuestConfirmed:
    """Confirm a request: the guest is confirmed and its search saved, alerting from now on."""
    if len(token) > 200:
        raise ProblemError(404, _INVALID)
    at = now()
    async with sessions() as session, session.begin():
        found = await repo.get_guest_confirmation(session, token_hash(token), for_update=True)
        confirmation = _usable(found, at)
        guest = await repo.get_guest(session, confirmation.guest_id)
        if guest is None:  # pragma: no cover - the confirmation goes with its guest (cascade)
            raise ProblemError(404, _INVALID)
        sub = Subscription(
            id=new_id(),
            artisan_id=GUEST_OWNER_PREFIX + guest.id,
            name=confirmation.name,
            status=SubscriptionStatus.ACTIVE.value,
            frequency=Frequency.INSTANT.value,
            criteria={},
            email_address=guest.email,
            email_enabled=True,
            language=confirmation.language,
        )
        set_criteria(sub, CriteriaIn.model_validate(confirmation.criteria))
        session.add(sub)
        confirmation.used_at = at
        confirmation.subscription_id = sub.id
        if guest.status != CONFIRMED:
            guest.status, guest.confirmed_at = CONFIRMED, at
        guest.updated_at = at
        await session.flush()
        await refile(session, sub)
    return GuestConfirmed(
        subscription_id=sub.id,
        name=sub.name,
        criteria=sub.criteria,
        language=confirmation.language,  # type: ignore[arg-type]
        unsubscribe_url=mailer.unsubscribe_url(settings, sub.id),
    )


async def take_over(session: AsyncSession, artisan: ArtisanIn) -> int:
    """An artisan account whose verified e-mail is this contact address exists: the confirmed
    guest's searches become the artisan's (eligibility filtering applies from now on), searches
    the artisan already has with the same criteria are not doubled, and the guest row goes.
    Idempotent: a second run finds no guest. Returns how many searches moved."""
    if not artisan.contact_email or not artisan.contact_email_verified:
        # Only an address the identity provider verified for this account may claim a guest's
        # searches: anyone can type someone else's address as a contact.
        return 0
    guest = await repo.get_guest_by_email(
        session, normalise_email(artisan.contact_email), for_update=True
    )
    if guest is None or guest.status != CONFIRMED:
        # A pending guest never proved the address: its requests stay until confirmed.
        return 0
    owned = await repo.subscriptions_of_owner(session, artisan.artisan_id)
    kept = {
        Criteria.from_stored(s.criteria)
        for s in owned
        if s.status != SubscriptionStatus.DELETED.value and s.email_enabled
    }
    moved = 0
    at = now()
    for sub in await repo.subscriptions_of_owner(session, GUEST_OWNER_PREFIX + guest.id):
        live = sub.status == SubscriptionStatus.ACTIVE.value and sub.email_enabled
        if not live or Criteria.from_stored(sub.criteria) in kept:
            # Unsubscribed, or already among the artisan's searches (one e-mail per vacancy).
            sub.status = SubscriptionStatus.DELETED.value
            await repo.cancel_pending_of_subscription(session, sub.id, "taken over by an account")
        else:
            kept.add(Criteria.from_stored(sub.criteria))
            moved += 1
        # Same id: a vacancy already alerted is not alerted again (one delivery per event and
        # subscription), and the search's deliveries follow it into the artisan's log.
        sub.artisan_id = artisan.artisan_id
        sub.version += 1
        sub.updated_at = at
        await repo.move_deliveries(session, sub.id, artisan.artisan_id)
        await refile(session, sub)
    await repo.delete_guest(session, guest.id)
    await session.flush()
    log.info("guest searches taken over by an artisan account: %d moved", moved)
    return moved
