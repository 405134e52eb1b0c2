"""Dependencies shared by the leasing endpoints."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.auth import Principal
from fabkit.idempotency import fingerprint, validate_key
from leasing.eligibility import Catalogue
from leasing.service import Idempotency, Written
from leasing.settings import LeasingSettings


def get_sessions(request: Request) -> async_sessionmaker[AsyncSession]:
    return request.app.state.runtime.sessions  # type: ignore[no-any-return]


def get_settings(request: Request) -> LeasingSettings:
    return request.app.state.settings  # type: ignore[no-any-return]


def get_catalogue(request: Request) -> Catalogue:
    return request.app.state.catalogue  # type: ignore[no-any-return]


SessionsDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_sessions)]
SettingsDep = Annotated[LeasingSettings, Depends(get_settings)]
CatalogueDep = Annotated[Catalogue, Depends(get_catalogue)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Retrying a POST with the same key returns the first answer.",
    ),
]
IfMatch = Annotated[
    str | None,
    Header(alias="If-Match", description="The ETag you read; 412 if the resource changed since."),
]


def idempotency(
    principal: Principal, key: str | None, request: Request, payload: Any
) -> Idempotency | None:
    key = validate_key(key)
    if key is None:
        return None
    return Idempotency(
        principal=f"{principal.role.value}:{principal.subject}",
        key=key,
        method=request.method,
        path=request.url.path,
        request_hash=fingerprint(payload),
    )


def respond(written: Written) -> JSONResponse:
    return JSONResponse(written.body, status_code=written.status, headers=written.headers())
