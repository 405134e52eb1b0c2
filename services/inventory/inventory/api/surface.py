"""Production-surface reports (now, at an instant, over time) and the no-net-loss rule's
balance, flags and compensations."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from fabkit.auth import Principal, Role, require_roles
from fabkit.schemas import IsoDate, IsoDateTime
from inventory.api.deps import SessionsDep
from inventory.schemas import (
    CompensationDelivery,
    CompensationOut,
    SurfaceBalance,
    SurfaceFlags,
    SurfaceHistory,
    SurfaceReport,
)
from inventory.service import protection, surface

router = APIRouter(tags=["production surface"])

Officer = require_roles(Role.OFFICER, Role.ADMIN)


@router.get(
    "/v1/production-surface",
    response_model=SurfaceReport,
    summary="Production m² by arrondissement or site",
)
async def get_surface_report(
    sessions: SessionsDep,
    by: Literal["arrondissement", "site"] = "arrondissement",
    at: Annotated[
        IsoDateTime | None,
        Query(
            description="Totals as they stood at this instant (from the ledger), as an ISO 8601 "
            "date-time; without an offset it is read as UTC.",
            examples=["2026-12-31T23:59:59Z"],
        ),
    ] = None,
) -> SurfaceReport:
    return await surface.surface_report(sessions, by, at)


@router.get(
    "/v1/production-surface/history",
    response_model=SurfaceHistory,
    summary="Production m² over time",
)
async def get_surface_history(
    sessions: SessionsDep,
    arrondissement: Annotated[int | None, Query(ge=1, le=20)] = None,
    site_id: str | None = None,
    since: Annotated[IsoDate | None, Query(description="First day shown (ISO 8601 date)")] = None,
    until: Annotated[IsoDate | None, Query(description="Last day shown (ISO 8601 date)")] = None,
) -> SurfaceHistory:
    return await surface.surface_history(
        sessions, arrondissement=arrondissement, site_id=site_id, since=since, until=until
    )


@router.get(
    "/v1/surface/balance",
    response_model=SurfaceBalance,
    summary="Losses, gains and compensations of production m² by arrondissement, month by month",
)
async def get_surface_balance(
    sessions: SessionsDep,
    from_: Annotated[
        IsoDate | None,
        Query(alias="from", description="First day counted (ISO 8601 date, UTC)."),
    ] = None,
    to: Annotated[IsoDate | None, Query(description="Last day counted (ISO 8601 date).")] = None,
    arrondissement: Annotated[int | None, Query(ge=1, le=20)] = None,
) -> SurfaceBalance:
    return await protection.surface_balance(
        sessions, since=from_, until=to, arrondissement=arrondissement
    )


@router.get(
    "/v1/surface/flags",
    response_model=SurfaceFlags,
    summary="Uncompensated losses and late compensations, with what to do (officers, admins)",
)
async def get_surface_flags(sessions: SessionsDep, _: Principal = Officer) -> SurfaceFlags:
    return await protection.surface_flags(sessions)


@router.get(
    "/v1/surface/compensations/{compensation_id}",
    response_model=CompensationOut,
    summary="One compensation of lost production m²",
)
async def get_compensation(compensation_id: str, sessions: SessionsDep) -> CompensationOut:
    return await protection.get_compensation(sessions, compensation_id)


@router.post(
    "/v1/surface/compensations/{compensation_id}/delivery",
    response_model=CompensationOut,
    summary="Mark a planned compensation delivered by a unit (officers, admins)",
)
async def deliver_compensation(
    compensation_id: str,
    payload: CompensationDelivery,
    sessions: SessionsDep,
    principal: Principal = Officer,
) -> CompensationOut:
    return await protection.deliver_compensation(sessions, principal, compensation_id, payload)
