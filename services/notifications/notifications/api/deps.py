"""Dependencies shared by the notifications endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.auth import Role, require_roles
from notifications.settings import NotificationsSettings
from notifications.signals import Signals


def get_sessions(request: Request) -> async_sessionmaker[AsyncSession]:
    # GET and HEAD handlers only read: they get read-only sessions (see fabkit.db).
    return request.app.state.runtime.sessions_for(request.method)  # type: ignore[no-any-return]


def get_settings(request: Request) -> NotificationsSettings:
    return request.app.state.settings  # type: ignore[no-any-return]


def get_signals(request: Request) -> Signals:
    return request.app.state.signals  # type: ignore[no-any-return]


SessionsDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_sessions)]
SettingsDep = Annotated[NotificationsSettings, Depends(get_settings)]
SignalsDep = Annotated[Signals, Depends(get_signals)]

# The token's subject is the artisan id leasing gave the artisan.
ArtisanOnly = require_roles(Role.ARTISAN)
AdminOnly = require_roles(Role.ADMIN)
