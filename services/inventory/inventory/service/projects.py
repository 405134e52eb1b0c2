"""Development projects: an officer records what production m² an urban project must keep or
create by its delivery date; the units linked to it count against that commitment."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.auth import Principal
from fabkit.errors import ProblemError
from fabkit.http import check_if_match, etag_of
from fabkit.idempotency import Idempotency, Written, run_idempotent
from fabkit.pagination import Page, PageParams
from inventory import repository as repo
from inventory.models import DevelopmentProject
from inventory.schemas import ProjectCreate, ProjectOut, ProjectPatch, ProjectStatus
from inventory.service.common import Sessions, actor, new_id, stored
from inventory.service.protection import today


def project_out(project: DevelopmentProject, kept: float, units: int, on: date) -> ProjectOut:
    """The project with what its linked units keep against what it promised."""
    shortfall = max(project.committed_m2 - kept, 0.0)
    behind = (
        project.status != ProjectStatus.CANCELLED.value
        and project.delivery_on < on
        and shortfall > 0
    )
    return ProjectOut(
        id=project.id,
        name=project.name,
        arrondissement=project.arrondissement,
        committed_m2=project.committed_m2,
        delivery_on=project.delivery_on,
        status=ProjectStatus(project.status),
        description=project.description,
        kept_m2=round(kept, 2),
        units=units,
        shortfall_m2=round(shortfall, 2),
        behind=behind,
        version=project.version,
        created_at=project.created_at,
        updated_at=project.updated_at,
    )


async def _out(session: AsyncSession, project: DevelopmentProject) -> ProjectOut:
    kept, units = (await repo.production_of_projects(session, {project.id})).get(
        project.id, (0.0, 0)
    )
    return project_out(project, kept, units, today())


def _name_taken(name: str) -> ProblemError:
    return ProblemError(
        409, f"A development project named {name!r} exists already; give this one another name."
    )


async def create_project(
    sessions: Sessions, principal: Principal, data: ProjectCreate, idem: Idempotency | None
) -> Written:
    """Record a development project and its production-m² commitment."""

    async def create(session: AsyncSession) -> Written:
        if await repo.project_name_taken(session, data.name):
            raise _name_taken(data.name)
        project = DevelopmentProject(
            id=new_id(),
            name=data.name,
            arrondissement=data.arrondissement,
            committed_m2=data.committed_m2,
            delivery_on=data.delivery_on,
            status=data.status.value,
            description=data.description,
            created_by=actor(principal),
        )
        session.add(project)
        await session.flush()
        out = await _out(session, project)
        return Written(
            201,
            out.model_dump(mode="json"),
            etag=etag_of(project.version),
            location=f"/v1/projects/{project.id}",
        )

    conflict = "A development project with that name was just recorded; give this one another name."
    return await run_idempotent(sessions, idem, create, conflict=conflict)


async def get_project(sessions: Sessions, project_id: str) -> ProjectOut:
    async with sessions() as session:
        project = await repo.get_project(session, project_id)
        if project is None:
            raise ProblemError(404, f"No development project with id {project_id}.")
        return await _out(session, project)


async def list_projects(
    sessions: Sessions, *, arrondissement: int | None, page: PageParams
) -> Page[ProjectOut]:
    """One page of projects by delivery date, each with its kept and committed m²."""
    on = today()
    async with sessions() as session:
        rows, total = await repo.list_projects(session, arrondissement=arrondissement, page=page)
        kept = await repo.production_of_projects(session, {p.id for p in rows})
    return Page[ProjectOut](
        items=[project_out(p, *kept.get(p.id, (0.0, 0)), on) for p in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


async def update_project(
    sessions: Sessions, project_id: str, patch: ProjectPatch, if_match: str | None
) -> Written:
    """Change a project's commitment, dates or status (officers and admins)."""
    changes = patch.model_dump(exclude_unset=True)
    async with sessions() as session, session.begin():
        project = await repo.get_project(session, project_id, for_update=True)
        if project is None:
            raise ProblemError(404, f"No development project with id {project_id}.")
        check_if_match(if_match, project.version)
        changed = {k: stored(v) for k, v in changes.items() if stored(v) != getattr(project, k)}
        if "name" in changed and await repo.project_name_taken(
            session, changed["name"], but=project.id
        ):
            raise _name_taken(changed["name"])
        if "arrondissement" in changed and await repo.project_is_linked(session, project.id):
            raise ProblemError(
                409,
                "Units or compensations of its present arrondissement count towards this "
                "project; unlink the units (PATCH each with project_id null) before moving the "
                "project, or record a new project for the other arrondissement.",
            )
        if changed:
            for key, value in changed.items():
                setattr(project, key, value)
            project.version += 1
            project.updated_at = datetime.now(UTC)
            await session.flush()
        out = await _out(session, project)
        return Written(200, out.model_dump(mode="json"), etag=etag_of(project.version))
