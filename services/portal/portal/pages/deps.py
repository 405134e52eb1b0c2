"""What the page handlers take from the app."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from portal.clients import Upstreams
from portal.settings import PortalSettings


def get_upstreams(request: Request) -> Upstreams:
    return request.app.state.upstreams  # type: ignore[no-any-return]


def get_settings(request: Request) -> PortalSettings:
    return request.app.state.settings  # type: ignore[no-any-return]


UpstreamsDep = Annotated[Upstreams, Depends(get_upstreams)]
SettingsDep = Annotated[PortalSettings, Depends(get_settings)]
