"""What every use case shares: who acts, who may see or change what, and the eligibility inputs."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.auth import Principal, Role
from fabkit.clock import Clock
from fabkit.errors import ProblemError
from leasing.eligibility import Applicant, UnitFacts
from leasing.models import ArtisanProfile, UnitListing

Sessions = async_sessionmaker[AsyncSession]
AVAILABLE = "available"  # inventory's unit status of an open vacancy


@dataclass(frozen=True)
class Actor:
    """Who took a decision: a principal, or leasing itself (expiries, closed vacancies)."""

    role: str
    id: str

    @classmethod
    def of(cls, principal: Principal) -> Actor:
        return cls(principal.role.value, principal.subject)


SYSTEM = Actor("system", "leasing")


# Leasing's time (LEASING_CLOCK_FILE, bound at start-up).
CLOCK = Clock()


def utcnow() -> datetime:
    """The current time, timezone-aware (shifted by LEASING_CLOCK_FILE when set)."""
    return CLOCK.now()


def new_id() -> str:
    """A fresh random id for a new row."""
    return str(uuid.uuid4())


def reads_everything(principal: Principal) -> bool:
    """Admins, and city officers (read-only: the allocation records), see every record."""
    return principal.is_admin or principal.role is Role.OFFICER


def can_see(principal: Principal, artisan_id: str, landlord_id: str) -> bool:
    """Whether the principal is a party (the artisan or the landlord), an admin or an officer
    (the routes that write never let an officer through)."""
    if reads_everything(principal):
        return True
    if principal.role is Role.ARTISAN:
        return principal.subject == artisan_id
    return principal.role is Role.LANDLORD and principal.subject == landlord_id


def check_landlord(principal: Principal, landlord_id: str) -> None:
    """403 unless the principal is this landlord or an admin."""
    if principal.is_admin:
        return
    if principal.role is not Role.LANDLORD or principal.subject != landlord_id:
        raise ProblemError(
            403, "This unit belongs to another landlord; only its landlord or an admin can act."
        )


def scope(principal: Principal) -> tuple[str | None, str | None]:
    """(artisan_id, landlord_id) a principal's lists are limited to; admins and officers see
    everything."""
    if principal.role is Role.ARTISAN:
        return principal.subject, None
    if principal.role is Role.LANDLORD:
        return None, principal.subject
    return None, None


def no_unit(unit_id: str) -> str:
    """The 404 message for a unit leasing has not heard of."""
    return (
        f"No unit with id {unit_id}. Leasing knows the units inventory has published; "
        "a new unit appears here within seconds."
    )


def applicant_of(a: ArtisanProfile) -> Applicant:
    """The artisan as the eligibility rules see it."""
    return Applicant(
        legal_form=a.legal_form,
        trades=frozenset(a.trades),
        labels=frozenset(a.labels),
        business_created_on=a.business_created_on,
        registered_on=a.registered_at.date(),
    )


def facts_of(listing: UnitListing) -> UnitFacts:
    """The unit as the eligibility rules see it."""
    return UnitFacts(site_kind=listing.site_kind, allowed_trades=frozenset(listing.allowed_trades))
