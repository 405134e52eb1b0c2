"""Leasing business metrics: applications by status, offers (and those made out of rank), the
decisions taken on applications, and the time from a vacancy opening to its lease being signed."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.metrics import counter, gauge, histogram, personal_data_oldest
from leasing import repository as repo
from leasing.domain import ApplicationStatus, Decision
from leasing.service.common import utcnow

log = logging.getLogger(__name__)

APPLICATIONS = gauge("leasing_applications", "Applications by status", ("status",))
OFFERS_PENDING = gauge("leasing_offers_pending", "Offers waiting for the artisan's answer")
# The platform's name (every service sets it for its own tables): a value past a table's
# retention period (docs/privacy.md) means the retention job is not doing its work.
PERSONAL_DATA_OLDEST = personal_data_oldest()
DECISIONS = counter(
    "leasing_decisions_total",
    "Decisions taken on applications (offered, rejected, offer_accepted, offer_declined, "
    "offer_expired, withdrawn, closed)",
    ("decision",),
)
OFFERS_MADE = counter(
    "leasing_offers_made_total",
    "Offers made, by the application's place in its vacancy's ranking when offered: first of "
    "the applications still open, or out_of_rank (another open application ranked higher)",
    ("ranking",),
)
_HOUR, _DAY = 3600.0, 86400.0
VACANCY_TO_SIGNED_LEASE = histogram(
    "leasing_vacancy_to_signed_lease_seconds",
    "Time from a vacancy opening to a lease on it being signed, by arrondissement and site kind",
    ("arrondissement", "site_kind"),
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
ACCOUNT_DELETIONS_PENDING = gauge(
    "leasing_account_deletions_pending",
    "Erased artisans whose identity-provider account is not deleted yet",
)
ACCOUNT_DELETIONS = counter(
    "leasing_account_deletions_total",
    "Attempts to delete an erased artisan's identity-provider account, by outcome (deleted, "
    "failed: retried later)",
    ("outcome",),
)
for _outcome in ("deleted", "failed"):
    ACCOUNT_DELETIONS.labels(_outcome)
for _decision in Decision:  # every decision's series exists (at 0) before the first one
    DECISIONS.labels(_decision.value)
for _ranking in ("first", "out_of_rank"):
    OFFERS_MADE.labels(_ranking)


def offer_ranking(rank: int) -> str:
    """The `ranking` label of an offer made to the application ranked `rank` (1 = first)."""
    return "first" if rank <= 1 else "out_of_rank"


async def refresh_business_gauges(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        by_status = await repo.count_applications_by_status(session)
        pending = await repo.count_pending_offers(session)
        oldest = await repo.oldest_personal_records(session)
        accounts_pending = await repo.count_pending_account_deletions(session)
    for status in ApplicationStatus:
        APPLICATIONS.labels(status.value).set(by_status.get(status.value, 0))
    OFFERS_PENDING.set(pending)
    now = utcnow()
    for table, since in oldest.items():
        PERSONAL_DATA_OLDEST.labels(table).set(
            max(0.0, (now - since).total_seconds()) if since else 0.0
        )
    ACCOUNT_DELETIONS_PENDING.set(accounts_pending)
