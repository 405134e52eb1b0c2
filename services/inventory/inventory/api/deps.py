"""Dependencies shared by the inventory endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.auth import Role, require_roles
from fabkit.http import IdempotencyKey, IfMatch, respond
from fabkit.idempotency import idempotency_of as idempotency
from inventory.settings import InventorySettings


def get_sessions(request: Request) -> async_sessionmaker[AsyncSession]:
    # GET and HEAD handlers only read: they get read-only sessions (see fabkit.db).
    return request.app.state.runtime.sessions_for(request.method)  # type: ignore[no-any-return]


def get_settings(request: Request) -> InventorySettings:
    return request.app.state.settings  # type: ignore[no-any-return]


SessionsDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_sessions)]
SettingsDep = Annotated[InventorySettings, Depends(get_settings)]
# Landlords write their own sites and units; an admin may write anyone's.
Writer = require_roles(Role.LANDLORD, Role.ADMIN)
AdminOnly = require_roles(Role.ADMIN)


__all__ = [
    "AdminOnly",
    "IdempotencyKey",
    "IfMatch",
    "SessionsDep",
    "SettingsDep",
    "Writer",
    "get_sessions",
    "get_settings",
    "idempotency",
    "respond",
]
