"""Artisan registration (public) and the artisan's own profile."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from fabkit.auth import Principal, Role, require_roles
from fabkit.openapi import ETAG_HEADER, LOCATION_HEADER
from leasing.api.deps import IfMatch, SessionsDep, SettingsDep, respond
from leasing.schemas import ArtisanCreate, ArtisanOut, ArtisanPatch, RegistrationOut
from leasing.service import artisans

router = APIRouter(prefix="/v1/artisans", tags=["artisans"])

ArtisanOnly = require_roles(Role.ARTISAN)
AdminOnly = require_roles(Role.ADMIN)


@router.post(
    "",
    status_code=201,
    response_model=RegistrationOut,
    summary="Register as an artisan; the answer carries your bearer token",
    responses={201: {"headers": {**LOCATION_HEADER, **ETAG_HEADER}}},
)
async def register_artisan(
    payload: ArtisanCreate, request: Request, sessions: SessionsDep, settings: SettingsDep
) -> JSONResponse:
    tokens = request.app.state.tokens
    return respond(await artisans.register_artisan(sessions, settings, tokens, payload))


@router.get(
    "/me",
    response_model=ArtisanOut,
    summary="Your profile",
    responses={200: {"headers": ETAG_HEADER}},
)
async def get_my_profile(sessions: SessionsDep, principal: Principal = ArtisanOnly) -> JSONResponse:
    return respond(await artisans.get_artisan(sessions, principal.subject))


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
    return respond(await artisans.update_artisan(sessions, principal.subject, payload, if_match))


@router.get(
    "/{artisan_id}",
    response_model=ArtisanOut,
    summary="One artisan (admin)",
    responses={200: {"headers": ETAG_HEADER}},
)
async def get_artisan(
    artisan_id: str, sessions: SessionsDep, principal: Principal = AdminOnly
) -> JSONResponse:
    return respond(await artisans.get_artisan(sessions, artisan_id))
