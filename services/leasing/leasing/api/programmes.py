"""Programmes, their eligibility rules and scoring grids: public, so allocation is auditable."""

from __future__ import annotations

from fastapi import APIRouter

from fabkit.errors import ProblemError
from leasing.api.deps import CatalogueDep
from leasing.schemas import CatalogueOut, ProgrammeOut

router = APIRouter(prefix="/v1/programmes", tags=["programmes"])


@router.get("", response_model=CatalogueOut, summary="Every programme with its rules and grid")
async def list_programmes(catalogue: CatalogueDep) -> CatalogueOut:
    return CatalogueOut.of(catalogue)


@router.get("/{programme_id}", response_model=ProgrammeOut, summary="One programme")
async def get_programme(programme_id: str, catalogue: CatalogueDep) -> ProgrammeOut:
    programme = catalogue.get(programme_id)
    if programme is None:
        raise ProblemError(404, f"No programme with id {programme_id!r}.")
    return ProgrammeOut.model_validate(programme, from_attributes=True)
