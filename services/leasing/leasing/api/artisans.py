"""Artisan registration (a logged-in artisan account) and the artisan's own profile."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from fabkit.auth import Principal, Role, require_roles
from fabkit.openapi import ETAG_HEADER, LOCATION_HEADER
from leasing.api.deps import IfMatch, SessionsDep, respond
from leasing.schemas import ArtisanCreate, ArtisanOut, ArtisanPatch
from leasing.service import artisans

router = APIRouter(prefix="/v1/artisans", tags=["artisans"])

ArtisanOnly = require_roles(Role.ARTISAN)
AdminOrOfficer = require_roles(Role.ADMIN, Role.OFFICER)


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
