"""What the page handlers take from the app: upstreams, settings, who is signed in, CSRF.

@router.get("/me/things")
async def things(request: Request, user: UserDep, upstreams: UpstreamsDep) -> HTMLResponse:
    ...  # user.access_token is the bearer token for the APIs

@router.post("/me/things")
async def save(request: Request, user: UserDep, _: CsrfDep) -> Response:
    ...  # the form's csrf_token matched; render() puts csrf_token in every template
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request

from portal.clients import Upstreams
from portal.sessions import SignedIn, csrf_matches, web_context
from portal.settings import PortalSettings

__all__ = [
    "CsrfDep",
    "CsrfRejected",
    "LoginRequired",
    "OptionalUserDep",
    "SettingsDep",
    "SignedIn",
    "UpstreamsDep",
    "UserDep",
    "check_csrf",
    "current_user",
    "optional_user",
]


class LoginRequired(Exception):
    """The page needs a signed-in person: the portal answers 303 to /login?next=<here>."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.location = f"/login?next={quote(next_path, safe='/')}"


class CsrfRejected(Exception):
    """A form without the right CSRF token: the portal answers its 403 "form expired" page."""


# Dependencies are coroutines: FastAPI runs a plain `def` dependency in its thread pool, a hop
# per request that cost the board about a tenth of its CPU under load (docs/benchmarks.md §8).


async def get_upstreams(request: Request) -> Upstreams:
    return request.app.state.upstreams  # type: ignore[no-any-return]


async def get_settings(request: Request) -> PortalSettings:
    return request.app.state.settings  # type: ignore[no-any-return]


def signed_in(request: Request) -> SignedIn | None:
    web = web_context(request.state)
    return web.user if web is not None else None


async def optional_user(request: Request) -> SignedIn | None:
    return signed_in(request)


async def current_user(request: Request) -> SignedIn:
    user = signed_in(request)
    if user is None:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(here)
    return user


async def check_csrf(request: Request) -> None:
    """The form field ``csrf_token`` must be the session's token (signed in) or the visitor's
    signed double-submit cookie token (not signed in)."""
    web = web_context(request.state)
    if web is None:
        raise CsrfRejected
    expected = web.user.csrf_token if web.user is not None else web.guest_csrf
    try:
        form = await request.form()
    except Exception as exc:  # an unreadable body carries no token either
        raise CsrfRejected from exc
    if not csrf_matches(expected, form.get("csrf_token")):
        raise CsrfRejected


UpstreamsDep = Annotated[Upstreams, Depends(get_upstreams)]
SettingsDep = Annotated[PortalSettings, Depends(get_settings)]
UserDep = Annotated[SignedIn, Depends(current_user)]
OptionalUserDep = Annotated[SignedIn | None, Depends(optional_user)]
CsrfDep = Annotated[None, Depends(check_csrf)]
