"""One way to page a list: `Page[T]` out, `PageParams` in, `paginate()` in the repository."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")
R = TypeVar("R")

MAX_LIMIT = 100
MAX_OFFSET = 1_000_000


class Page(BaseModel, Generic[T]):
    """A page of a list: the items, how many there are in all, and where this page starts."""

    items: list[T]
    total: int = Field(ge=0, description="How many items match, over every page")
    limit: int = Field(ge=1, description="The page size asked for")
    offset: int = Field(ge=0, description="How many matching items come before this page")

    @classmethod
    def of(
        cls, rows: Sequence[R], total: int, params: PageParams, mapper: Callable[[R], T]
    ) -> Page[T]:
        return cls(
            items=[mapper(r) for r in rows], total=total, limit=params.limit, offset=params.offset
        )


@dataclass(frozen=True)
class PageParams:
    """`limit` and `offset` query parameters with the bounds every list endpoint shares."""

    limit: int = 20
    offset: int = 0


def _page_params(
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description=f"Page size (1 to {MAX_LIMIT})")
    ] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="How many items to skip")] = 0,
) -> PageParams:
    return PageParams(limit=limit, offset=offset)


PageDep = Annotated[PageParams, Depends(_page_params)]


async def paginate(
    session: AsyncSession, stmt: Select[Any], params: PageParams
) -> tuple[Sequence[Any], int]:
    """One page of an ordered `select(Model)` and the number of rows the whole query matches."""
    total = (await session.execute(select(func.count()).select_from(stmt.subquery()))).scalar_one()
    if total == 0 or params.offset >= total:
        return [], total
    rows = await session.execute(stmt.limit(params.limit).offset(params.offset))
    return rows.scalars().all(), total
