"""Leasing business metrics: applications by status, pending offers, vacancy-to-lease time."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.metrics import gauge, histogram
from leasing import repository as repo
from leasing.domain import ApplicationStatus

log = logging.getLogger(__name__)

APPLICATIONS = gauge("leasing_applications", "Applications by status", ("status",))
OFFERS_PENDING = gauge("leasing_offers_pending", "Offers waiting for the artisan's answer")
_HOUR, _DAY = 3600.0, 86400.0
VACANCY_TO_SIGNED_LEASE = histogram(
    "leasing_vacancy_to_signed_lease_seconds",
    "Time from a vacancy opening to a lease on it being signed",
    buckets=(
        60.0,
        _HOUR,
        _DAY,
        7 * _DAY,
        14 * _DAY,
        30 * _DAY,
        60 * _DAY,
        90 * _DAY,
        180 * _DAY,
        365 * _DAY,
    ),
)


async def refresh_business_gauges(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        by_status = await repo.count_applications_by_status(session)
        pending = await repo.count_pending_offers(session)
    for status in ApplicationStatus:
        APPLICATIONS.labels(status.value).set(by_status.get(status.value, 0))
    OFFERS_PENDING.set(pending)
