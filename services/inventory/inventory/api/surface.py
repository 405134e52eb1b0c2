"""Production-surface reports: now, at an instant, over time."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from fabkit.schemas import IsoDate, IsoDateTime
from inventory.api.deps import SessionsDep
from inventory.schemas import SurfaceHistory, SurfaceReport
from inventory.service import surface

router = APIRouter(prefix="/v1/production-surface", tags=["production surface"])


@router.get("", response_model=SurfaceReport, summary="Production m² by arrondissement or site")
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


@router.get("/history", response_model=SurfaceHistory, summary="Production m² over time")
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
