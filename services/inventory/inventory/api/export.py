"""GET /v1/me/export: everything inventory holds about the caller, as a JSON attachment."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from fabkit.auth import Principal, Role, require_roles
from inventory.api.deps import SessionsDep
from inventory.service import export

router = APIRouter(prefix="/v1/me", tags=["me"])


@router.get("/export", summary="Download what inventory holds about me (any authenticated user)")
async def export_me(
    sessions: SessionsDep,
    principal: Principal = require_roles(Role.ADMIN, Role.LANDLORD, Role.ARTISAN, Role.OFFICER),
) -> JSONResponse:
    document = await export.export_for(sessions, principal)
    return JSONResponse(
        document,
        headers={
            "Content-Disposition": 'attachment; filename="fabrique-inventory-export.json"',
            "Cache-Control": "no-store",
        },
    )
