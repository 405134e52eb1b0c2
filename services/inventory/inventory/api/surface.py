"""Production-surface reports: now, at a date, and over time."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from inventory import service
from inventory.api.deps import SessionsDep
from inventory.schemas import SurfaceHistory, SurfaceReport

router = APIRouter(prefix="/v1/production-surface", tags=["production surface"])


@router.get("", response_model=SurfaceReport, summary="Production m² by arrondissement or site")
async def surface_report(
    sessions: SessionsDep,
    by: Literal["arrondissement", "site"] = "arrondissement",
    at: Annotated[
        datetime | None, Query(description="Totals as they stood at this instant (from the ledger)")
    ] = None,
) -> SurfaceReport:
    return await service.surface_report(sessions, by, at)


@router.get("/history", response_model=SurfaceHistory, summary="Production m² over time")
async def surface_history(
    sessions: SessionsDep,
    arrondissement: Annotated[int | None, Query(ge=1, le=20)] = None,
    site_id: str | None = None,
    since: date | None = None,
    until: date | None = None,
) -> SurfaceHistory:
    return await service.surface_history(
        sessions, arrondissement=arrondissement, site_id=site_id, since=since, until=until
    )
