"""Artisan registration (a logged-in artisan account) and the artisan's own profile."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from fabkit.auth import Principal, Role, require_roles
from fabkit.errors import ProblemError
from fabkit.openapi import ETAG_HEADER, LOCATION_HEADER
from leasing.api.deps import IfMatch, SessionsDep, respond
from leasing.schemas import ArtisanCreate, ArtisanOut, ArtisanPatch
from leasing.service import artisans

router = APIRouter(prefix="/v1/artisans", tags=["artisans"])

ArtisanOnly = require_roles(Role.ARTISAN)
AdminOrOfficer = require_roles(Role.ADMIN, Role.OFFICER)
log = logging.getLogger(__name__)
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


async def record_activity(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Middleware: an artisan's successful write anywhere in the API is activity, which the
    inactive-account retention rule counts from (recorded after the write's own transaction;
    a failure to record it never fails the write)."""
    response = await call_next(request)
    auth = request.headers.get("authorization", "")
    if (
        request.method not in _WRITES
        or response.status_code >= 400
        or auth[:7].lower() != "bearer "
    ):
        return response
    try:
        # The route already verified this token; the keys are cached, so this is local work.
        principal: Principal = await request.app.state.verifier.verify(auth[7:].strip())
        if principal.role is Role.ARTISAN:
            await artisans.note_activity(request.app.state.runtime.sessions, principal.subject)
    except ProblemError:
        pass  # expired in between: the write stands, its activity is not recorded
    except Exception as exc:
        log.warning("recording an artisan's activity failed: %s", type(exc).__name__)
    return response


@router.post(
    "",
    status_code=201,
    response_model=ArtisanOut,
    summary="Register your artisan profile (logged in, e-mail verified), under your account's id",
    responses={201: {"headers": {**LOCATION_HEADER, **ETAG_HEADER}}},
)
async def register_artisan(
    payload: ArtisanCreate, sessions: SessionsDep, principal: Principal = ArtisanOnly
) -> JSONResponse:
    return respond(await artisans.register_artisan(sessions, principal, payload))


@router.get(
    "/me",
    response_model=ArtisanOut,
    summary="Your profile",
    responses={200: {"headers": ETAG_HEADER}},
)
async def get_my_profile(
    request: Request, sessions: SessionsDep, principal: Principal = ArtisanOnly
) -> JSONResponse:
    writes = request.app.state.runtime.sessions  # reading one's profile is activity (daily)
    return respond(await artisans.get_my_profile(sessions, writes, principal.subject))


@router.patch(
    "/me",
    response_model=ArtisanOut,
    summary="Update your profile (send If-Match with the ETag you read to avoid lost updates)",
    responses={200: {"headers": ETAG_HEADER}},
)
async def update_my_profile(
    payload: ArtisanPatch,
    sessions: SessionsDep,
    if_match: IfMatch = None,
    principal: Principal = ArtisanOnly,
) -> JSONResponse:
    return respond(await artisans.update_artisan(sessions, principal, payload, if_match))


@router.get(
    "/{artisan_id}",
    response_model=ArtisanOut,
    summary="One artisan (admin, officer)",
    responses={200: {"headers": ETAG_HEADER}},
)
async def get_artisan(
    artisan_id: str, sessions: SessionsDep, principal: Principal = AdminOrOfficer
) -> JSONResponse:
    return respond(await artisans.get_artisan(sessions, artisan_id))
