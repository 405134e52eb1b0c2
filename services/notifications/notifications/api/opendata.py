"""Open data: the anonymised demand file (public, cacheable), its schema, an admin's refresh."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import JSONResponse

from fabkit.auth import Principal
from notifications.api.deps import AdminOnly, SessionsDep
from notifications.schemas import DemandCatalogue, DemandFileOut
from notifications.service import demand
from notifications.service.demand import DemandFile, DemandPublisher

router = APIRouter(prefix="/v1/open-data", tags=["open data"])

CACHE_CONTROL = "public, max-age=3600"


def _publisher(request: Request) -> DemandPublisher:
    return request.app.state.demand  # type: ignore[no-any-return]


def _catalogue(file: DemandFile) -> DemandCatalogue:
    return DemandCatalogue(
        licence=demand.LICENCE,
        files=[
            DemandFileOut(
                name=demand.NAME,
                dataset="demand",
                title=str(demand.schema()["title"]),
                format="csv",
                media_type="text/csv; charset=utf-8",
                url=f"/v1/open-data/{demand.NAME}",
                schema_url="/v1/open-data/schemas/demand.json",
                licence=demand.LICENCE,
                generated_at=file.generated_at,
                sha256=file.sha256,
                rows=file.rows,
                min_people=demand.K_ANONYMITY,
                supply=file.supply,
            )
        ],
    )


@router.get("", response_model=DemandCatalogue, summary="The open-data catalogue (demand)")
async def get_open_data_catalogue(
    request: Request, sessions: SessionsDep, response: Response
) -> DemandCatalogue:
    response.headers["Cache-Control"] = "public, max-age=300"
    return _catalogue(await _publisher(request).current(sessions))


@router.get(
    "/schemas/demand.json",
    summary="The Table Schema of the demand file",
    responses={200: {"content": {"application/schema+json": {}}}},
)
async def get_demand_schema() -> JSONResponse:
    return JSONResponse(
        demand.schema(),
        media_type="application/schema+json",
        headers={"Cache-Control": CACHE_CONTROL},
    )


@router.get(
    "/demand.csv",
    summary="Saved searches by arrondissement and trade, against supply (CSV)",
    response_class=Response,
    responses={
        200: {
            "content": {"text/csv": {}},
            "headers": {
                "ETag": {"description": "The file's SHA-256, quoted.", "schema": {"type": "string"}}
            },
        },
        304: {"description": "Not modified (If-None-Match matched the ETag)."},
    },
)
async def get_demand_csv(
    request: Request,
    sessions: SessionsDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    file = await _publisher(request).current(sessions)
    etag = f'"{file.sha256}"'
    headers = {
        "ETag": etag,
        "Cache-Control": CACHE_CONTROL,
        "Content-Disposition": 'inline; filename="fabrique-demand.csv"',
    }
    if if_none_match and etag in [t.strip() for t in if_none_match.split(",")]:
        return Response(status_code=304, headers=headers)
    return Response(file.content, media_type="text/csv; charset=utf-8", headers=headers)


@router.post(
    "/regenerate",
    response_model=DemandCatalogue,
    summary="Recompute the demand file now (admin)",
)
async def regenerate_open_data(
    request: Request, sessions: SessionsDep, principal: Principal = AdminOnly
) -> DemandCatalogue:
    return _catalogue(await _publisher(request).regenerate(sessions))
