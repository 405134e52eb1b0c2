"""Artisan registration (public) and the artisan's own profile."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from fabkit.auth import Principal, Role, require_roles
from leasing import service
from leasing.api.deps import IfMatch, SessionsDep, SettingsDep, respond
from leasing.schemas import ArtisanCreate, ArtisanOut, ArtisanPatch, RegistrationOut

router = APIRouter(prefix="/v1/artisans", tags=["artisans"])

ArtisanOnly = require_roles(Role.ARTISAN)
AdminOnly = require_roles(Role.ADMIN)


@router.post(
    "",
    status_code=201,
    response_model=RegistrationOut,
    summary="Register as an artisan; the answer carries your bearer token",
)
async def register(
    payload: ArtisanCreate, request: Request, sessions: SessionsDep, settings: SettingsDep
) -> JSONResponse:
    tokens = request.app.state.tokens
    return respond(await service.register_artisan(sessions, settings, tokens, payload))


@router.get("/me", response_model=ArtisanOut, summary="Your profile")
async def get_me(
    sessions: SessionsDep, response: Response, principal: Principal = ArtisanOnly
) -> ArtisanOut:
    artisan = await service.get_artisan(sessions, principal.subject)
    response.headers["ETag"] = service.etag_of(artisan.version)
    return service.artisan_out(artisan)


@router.patch("/me", response_model=ArtisanOut, summary="Update your profile")
async def update_me(
    payload: ArtisanPatch,
    sessions: SessionsDep,
    settings: SettingsDep,
    if_match: IfMatch = None,
    principal: Principal = ArtisanOnly,
) -> JSONResponse:
    return respond(
        await service.update_artisan(sessions, settings, principal.subject, payload, if_match)
    )


@router.get("/{artisan_id}", response_model=ArtisanOut, summary="One artisan (admin)")
async def get_artisan(
    artisan_id: str, sessions: SessionsDep, principal: Principal = AdminOnly
) -> ArtisanOut:
    return service.artisan_out(await service.get_artisan(sessions, artisan_id))
