"""Open data: the catalogue and the files (public, cacheable), their schemas, and an admin's
regeneration."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Response
from fastapi.responses import JSONResponse

from fabkit.auth import Principal
from inventory.api.deps import AdminOnly, SessionsDep
from inventory.schemas import OpenDataCatalogue, OpenDataFileOut
from inventory.service import opendata

router = APIRouter(prefix="/v1/open-data", tags=["open data"])

# Files change at most once a regeneration (nightly); an hour of caching, then revalidation
# with the ETag (the file's SHA-256) costs a reader a 304.
CACHE_CONTROL = "public, max-age=3600"
FILE_HEADERS = {
    "ETag": {"description": "The file's SHA-256, quoted.", "schema": {"type": "string"}},
    "Cache-Control": {"description": CACHE_CONTROL, "schema": {"type": "string"}},
}
Dataset = Annotated[
    str,
    Path(
        pattern=r"^[a-z][a-z-]{1,59}$",
        description="vacancies, sites, surface-ledger or surface-by-arrondissement.",
        examples=["vacancies"],
    ),
]


async def _catalogue(sessions: SessionsDep) -> OpenDataCatalogue:
    entries = await opendata.catalogue(sessions)
    return OpenDataCatalogue(
        licence=opendata.LICENCE,
        files=[OpenDataFileOut.model_validate(e, from_attributes=True) for e in entries],
    )


@router.get("", response_model=OpenDataCatalogue, summary="The open-data catalogue")
async def get_open_data_catalogue(sessions: SessionsDep, response: Response) -> OpenDataCatalogue:
    response.headers["Cache-Control"] = "public, max-age=300"
    return await _catalogue(sessions)


@router.get(
    "/schemas/{dataset}.json",
    summary="The Table Schema of a dataset",
    responses={200: {"content": {"application/schema+json": {}}}},
)
async def get_open_data_schema(dataset: Dataset) -> JSONResponse:
    return JSONResponse(
        opendata.schema_document(dataset),
        media_type="application/schema+json",
        headers={"Cache-Control": CACHE_CONTROL},
    )


async def _file(
    sessions: SessionsDep, dataset: str, fmt: str, if_none_match: str | None
) -> Response:
    found = await opendata.open_data_file(sessions, dataset, fmt)
    etag = f'"{found.sha256}"'
    headers = {
        "ETag": etag,
        "Cache-Control": CACHE_CONTROL,
        "Last-Modified": found.generated_at.strftime("%a, %d %b %Y %H:%M:%S GMT"),
        "Content-Disposition": f'inline; filename="fabrique-{found.name}"',
    }
    if if_none_match and etag in [t.strip() for t in if_none_match.split(",")]:
        return Response(status_code=304, headers=headers)
    return Response(found.content, media_type=opendata.MEDIA_TYPES[fmt], headers=headers)


@router.get(
    "/{dataset}.csv",
    summary="A dataset as CSV",
    response_class=Response,
    responses={
        200: {"content": {"text/csv": {}}, "headers": FILE_HEADERS},
        304: {"description": "Not modified (If-None-Match matched the ETag)."},
    },
)
async def get_open_data_csv(
    dataset: Dataset,
    sessions: SessionsDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    return await _file(sessions, dataset, "csv", if_none_match)


@router.get(
    "/{dataset}.geojson",
    summary="A dataset as GeoJSON (the rows that have a point)",
    response_class=Response,
    responses={
        200: {"content": {"application/geo+json": {}}, "headers": FILE_HEADERS},
        304: {"description": "Not modified (If-None-Match matched the ETag)."},
    },
)
async def get_open_data_geojson(
    dataset: Dataset,
    sessions: SessionsDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    return await _file(sessions, dataset, "geojson", if_none_match)


@router.post(
    "/regenerate",
    response_model=OpenDataCatalogue,
    summary="Regenerate every open-data file now (admin)",
)
async def regenerate_open_data(
    sessions: SessionsDep, principal: Principal = AdminOnly
) -> OpenDataCatalogue:
    await opendata.regenerate(sessions)
    return await _catalogue(sessions)
