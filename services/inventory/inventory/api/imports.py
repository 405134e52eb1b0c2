"""Bulk import of units from a CSV file, written by the site's landlord (or an admin)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from fabkit.auth import Principal
from fabkit.errors import ProblemError
from inventory.api.deps import SessionsDep, SettingsDep, Writer
from inventory.schemas import ImportReport
from inventory.service import imports

router = APIRouter(tags=["units"])

SAMPLE = (
    "reference,floor,surface_m2,ceiling_height_m,allowed_trades,rent_eur_m2_year,goods_lift,status\n"
    "B101,1,210,4.2,woodwork;metalwork,120,true,unavailable\n"
    "B102,1,95.5,3.8,ceramics,135,false,available\n"
)
_CSV_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "A header row of unit fields (those of POST /v1/sites/{site_id}/units), "
        "then one unit per row. Comma- or semicolon-separated, UTF-8; an empty cell takes the "
        "field's default; allowed_trades are separated by ';'; booleans are true/false "
        "(yes/no, oui/non, 1/0); decimals take '.' or ','.",
        "content": {"text/csv": {"schema": {"type": "string"}, "example": SAMPLE}},
    }
}


@router.post(
    "/v1/sites/{site_id}/units/import",
    response_model=ImportReport,
    summary="Import units from a CSV file",
    description="Each row is checked exactly as POST of one unit. A refused row writes "
    "nothing and is listed with its line, column and reason; an accepted row is written with "
    "its events. With atomic=true any refused row means nothing is written (a 422 carrying "
    "the same report); dry_run=true checks every row and writes none.",
    openapi_extra=_CSV_BODY,
)
async def import_units(
    site_id: str,
    request: Request,
    sessions: SessionsDep,
    settings: SettingsDep,
    atomic: Annotated[bool, Query(description="All rows or none.")] = False,
    dry_run: Annotated[bool, Query(description="Check every row, write none.")] = False,
    principal: Principal = Writer,
) -> ImportReport:
    # Who may write this site is known before the body is read: an intruder's file is not.
    await imports.check_site(sessions, principal, site_id)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "text/csv":
        raise ProblemError(
            415,
            f"An import takes a CSV file (Content-Type: text/csv), not {media or 'no type'}; "
            "send the file's bytes as the body with that header.",
        )
    body = await _read_limited(request, settings.import_max_bytes)
    rows = imports.parse(imports.decode(body), settings.import_max_rows)
    options = imports.ImportOptions(atomic=atomic, dry_run=dry_run)
    return await imports.import_units(sessions, principal, site_id, rows, options)


async def _read_limited(request: Request, limit: int) -> bytes:
    """The body, or a 413 as soon as it passes `limit` bytes (said or sent)."""
    too_large = ProblemError(
        413,
        f"The file is larger than the {limit:,} bytes an import accepts; split it into "
        "several files and send them one by one.",
        max_bytes=limit,
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)
