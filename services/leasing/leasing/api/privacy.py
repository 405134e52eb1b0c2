"""Personal data: the caller's export and erasure, the admin's on a written request, and the
audit log of both (admin)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from fabkit.auth import Principal, Role, require_roles
from fabkit.pagination import Page, PageDep
from leasing.api.deps import SessionsDep, SettingsDep, WriteSessionsDep
from leasing.schemas import (
    ErasureOut,
    ErasureRequest,
    PrivacyRequestOut,
    RetentionReport,
    RetentionRuleOut,
)
from leasing.service import privacy, retention
from leasing.service.common import utcnow

router = APIRouter(tags=["privacy"])

AnyUser = require_roles(*Role)
ArtisanOnly = require_roles(Role.ARTISAN)
AdminOnly = require_roles(Role.ADMIN)
AdminOrOfficer = require_roles(Role.ADMIN, Role.OFFICER)

_EXPORT_HEADERS = {
    "Content-Disposition": 'attachment; filename="fabrique-leasing-export.json"',
    "Cache-Control": "no-store",
}


def _export_response(body: dict[str, object]) -> JSONResponse:
    return JSONResponse(body, headers=_EXPORT_HEADERS)


@router.get(
    "/v1/me/export",
    summary="Everything leasing holds about you, as one JSON document (any logged-in user)",
)
async def export_me(sessions: WriteSessionsDep, principal: Principal = AnyUser) -> JSONResponse:
    return _export_response(await privacy.export(sessions, principal, principal.subject))


@router.get(
    "/v1/artisans/{artisan_id}/export",
    summary="Everything leasing holds about one artisan (admin, on a written request)",
)
async def export_artisan(
    artisan_id: str,
    sessions: WriteSessionsDep,
    request_reference: str | None = Query(default=None, max_length=120),
    principal: Principal = AdminOnly,
) -> JSONResponse:
    body = await privacy.export(sessions, principal, artisan_id, request_reference)
    return _export_response(body)


@router.delete(
    "/v1/me",
    status_code=202,
    response_model=ErasureOut,
    summary="Erase your artisan profile (idempotent: a second call answers the first erasure)",
)
async def erase_me(sessions: SessionsDep, principal: Principal = ArtisanOnly) -> ErasureOut:
    return await privacy.erase(sessions, principal, principal.subject)


@router.post(
    "/v1/artisans/{artisan_id}/erasure",
    status_code=202,
    response_model=ErasureOut,
    summary="Erase an artisan on a written request (admin; recorded in the audit log)",
)
async def erase_artisan(
    artisan_id: str,
    payload: ErasureRequest,
    sessions: SessionsDep,
    principal: Principal = AdminOnly,
) -> ErasureOut:
    return await privacy.erase(
        sessions, principal, artisan_id, payload.request_reference, payload.note
    )


@router.get(
    "/v1/privacy/requests",
    response_model=Page[PrivacyRequestOut],
    summary="The audit log of exports and erasures, the latest first (admin)",
)
async def list_privacy_requests(
    page: PageDep,
    sessions: SessionsDep,
    kind: Literal["export", "erasure"] | None = None,
    principal: Principal = AdminOnly,
) -> Page[PrivacyRequestOut]:
    return await privacy.list_requests(sessions, page, kind)


@router.get(
    "/v1/privacy/retention",
    response_model=list[RetentionRuleOut],
    summary="The retention rules: per table, what is kept, how long and why (officer, admin)",
)
async def list_retention_rules(
    settings: SettingsDep, principal: Principal = AdminOrOfficer
) -> list[RetentionRuleOut]:
    return retention.rules(retention.Periods.of(settings))


@router.post(
    "/v1/privacy/retention/run",
    response_model=RetentionReport,
    summary="Run the retention job now (admin; it also runs daily): what each rule did",
)
async def run_retention(
    sessions: SessionsDep, settings: SettingsDep, principal: Principal = AdminOnly
) -> RetentionReport:
    return await retention.apply_retention(sessions, utcnow(), retention.Periods.of(settings))
