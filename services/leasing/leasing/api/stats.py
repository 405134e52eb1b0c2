"""Letting statistics for city officers and admins (read-only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from fabkit.auth import Principal, Role, require_roles
from fabkit.schemas import IsoDate
from leasing.api.deps import SessionsDep
from leasing.schemas import LettingStats
from leasing.service import stats

router = APIRouter(prefix="/v1/stats", tags=["stats"])

OfficerOrAdmin = require_roles(Role.OFFICER, Role.ADMIN)


@router.get(
    "/letting",
    response_model=LettingStats,
    summary="Open vacancies and time to let, by arrondissement and site kind (officers)",
)
async def get_letting_stats(
    sessions: SessionsDep,
    since: Annotated[
        IsoDate | None,
        Query(description="First day of the period (ISO 8601 date); default 364 days before until"),
    ] = None,
    until: Annotated[
        IsoDate | None, Query(description="Last day of the period, included; default today (UTC)")
    ] = None,
    _: Principal = OfficerOrAdmin,
) -> LettingStats:
    return await stats.letting_stats(sessions, since, until)
