"""Development projects: officers and admins record them; anyone reads their kept and
committed production m²."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from fabkit.auth import Principal, Role, require_roles
from fabkit.http import etag_of
from fabkit.openapi import CREATED_HEADERS, ETAG_HEADER
from fabkit.pagination import Page, PageDep
from inventory.api.deps import IdempotencyKey, IfMatch, SessionsDep, idempotency, respond
from inventory.schemas import ProjectCreate, ProjectOut, ProjectPatch
from inventory.service import projects

router = APIRouter(prefix="/v1/projects", tags=["development projects"])

Officer = require_roles(Role.OFFICER, Role.ADMIN)


@router.post(
    "",
    status_code=201,
    response_model=ProjectOut,
    summary="Record a development project and its production-m² commitment",
    responses={201: {"headers": CREATED_HEADERS}},
)
async def create_project(
    payload: ProjectCreate,
    request: Request,
    sessions: SessionsDep,
    idempotency_key: IdempotencyKey = None,
    principal: Principal = Officer,
) -> JSONResponse:
    idem = idempotency(principal, idempotency_key, request, payload.model_dump(mode="json"))
    return respond(await projects.create_project(sessions, principal, payload, idem))


@router.get("", response_model=Page[ProjectOut], summary="List development projects")
async def list_projects(
    sessions: SessionsDep,
    page: PageDep,
    arrondissement: Annotated[int | None, Query(ge=1, le=20)] = None,
) -> Page[ProjectOut]:
    return await projects.list_projects(sessions, arrondissement=arrondissement, page=page)


@router.get(
    "/{project_id}",
    response_model=ProjectOut,
    summary="One development project: kept against committed production m²",
    responses={200: {"headers": ETAG_HEADER}},
)
async def get_project(project_id: str, sessions: SessionsDep, response: Response) -> ProjectOut:
    project = await projects.get_project(sessions, project_id)
    response.headers["ETag"] = etag_of(project.version)
    return project


@router.patch(
    "/{project_id}",
    response_model=ProjectOut,
    summary="Update a development project",
    responses={200: {"headers": ETAG_HEADER}},
)
async def update_project(
    project_id: str,
    payload: ProjectPatch,
    sessions: SessionsDep,
    if_match: IfMatch = None,
    principal: Principal = Officer,
) -> JSONResponse:
    return respond(await projects.update_project(sessions, project_id, payload, if_match))
