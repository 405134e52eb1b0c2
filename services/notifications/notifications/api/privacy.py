"""The caller's personal data: `GET /v1/me/export` (everything held about them, as one JSON
document) and `DELETE /v1/me` (their searches, feed and deliveries' personal fields erased)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from fabkit.auth import PrincipalDep, Role, require_roles
from fabkit.errors import ProblemError
from notifications.api.deps import AdminOnly, SessionsDep
from notifications.clock import retention_now
from notifications.schemas import ErasureOut, ExportOut, RetentionReportOut, RetentionRuleOut
from notifications.service import privacy, retention

router = APIRouter(prefix="/v1/me", tags=["privacy"])
# The retention rules and their job: for data protection officers (role officer) and admins.
retention_router = APIRouter(prefix="/v1/privacy/retention", tags=["privacy"])


def _subject(subject: str | None) -> str:
    if not subject:
        raise ProblemError(
            400,
            "Your token names no subject (`sub`), so there is no one whose data this could be; "
            "sign in again with a user account.",
        )
    return subject


@router.get(
    "/export",
    response_model=ExportOut,
    summary="Everything notifications holds about you, as one JSON document",
)
async def export_me(sessions: SessionsDep, principal: PrincipalDep) -> Any:
    document = await privacy.export(sessions, _subject(principal.subject))
    return JSONResponse(
        document,
        headers={
            "Content-Disposition": f'attachment; filename="fabrique-{privacy.SERVICE}-export.json"',
            "Cache-Control": "no-store",
        },
    )


@router.delete(
    "",
    status_code=202,
    response_model=ErasureOut,
    summary="Erase your saved searches, feed and the personal fields of your deliveries",
)
async def erase_me(sessions: SessionsDep, principal: PrincipalDep) -> Any:
    answer = await privacy.erase_self(sessions, _subject(principal.subject))
    return JSONResponse(answer, status_code=202, headers={"Cache-Control": "no-store"})


@retention_router.get(
    "",
    response_model=list[RetentionRuleOut],
    dependencies=[require_roles(Role.OFFICER, Role.ADMIN)],
    summary="How long each kind of personal data is kept here, and on which legal basis",
)
async def list_retention_rules() -> Any:
    return retention.rules()


@retention_router.post(
    "/run",
    response_model=RetentionReportOut,
    dependencies=[AdminOnly],
    summary="Apply the retention rules now (the daily job), and what each one did",
)
async def run_retention(sessions: SessionsDep) -> Any:
    report = await retention.apply_retention(sessions, retention_now())
    return report.out()
