"""Dependencies shared by the leasing endpoints."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.http import IdempotencyKey, IfMatch, respond
from fabkit.idempotency import idempotency_of as idempotency
from leasing.eligibility import Catalogue
from leasing.service.programmes import CatalogueCache
from leasing.settings import LeasingSettings


def get_sessions(request: Request) -> async_sessionmaker[AsyncSession]:
    # GET and HEAD handlers only read: they get read-only sessions (see fabkit.db).
    return request.app.state.runtime.sessions_for(request.method)  # type: ignore[no-any-return]


def get_write_sessions(request: Request) -> async_sessionmaker[AsyncSession]:
    # For the few GET handlers that also write (a personal-data export records itself in the
    # audit log): on SQLite a read-only session cannot take the write lock.
    return request.app.state.runtime.sessions  # type: ignore[no-any-return]


def get_settings(request: Request) -> LeasingSettings:
    return request.app.state.settings  # type: ignore[no-any-return]


def get_catalogues(request: Request) -> CatalogueCache:
    return request.app.state.catalogues  # type: ignore[no-any-return]


async def get_catalogue(
    catalogues: Annotated[CatalogueCache, Depends(get_catalogues)],
) -> Catalogue:
    # The database holds the catalogue; the cache re-checks its version every
    # LEASING_CATALOGUE_TTL_S, so a change made in another replica is served within that.
    return (await catalogues.current()).catalogue


def links(parameter: str, *operation_ids: str) -> dict[str, Any]:
    """OpenAPI links from a response's `id` to the operations taking it as `parameter`."""
    return {
        op: {"operationId": op, "parameters": {parameter: "$response.body#/id"}}
        for op in operation_ids
    }


SessionsDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_sessions)]
WriteSessionsDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_write_sessions)]
SettingsDep = Annotated[LeasingSettings, Depends(get_settings)]
CatalogueDep = Annotated[Catalogue, Depends(get_catalogue)]
CataloguesDep = Annotated[CatalogueCache, Depends(get_catalogues)]


__all__ = [
    "CatalogueDep",
    "CataloguesDep",
    "IdempotencyKey",
    "IfMatch",
    "SessionsDep",
    "SettingsDep",
    "get_catalogue",
    "get_catalogues",
    "get_sessions",
    "get_settings",
    "idempotency",
    "links",
    "respond",
]
