"""HTTP conventions every service shares: ETag / If-Match, Idempotency-Key, written responses."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header
from fastapi.responses import JSONResponse

from fabkit.errors import ProblemError
from fabkit.idempotency import Written

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Retrying a POST with the same key returns the first answer.",
    ),
]
IfMatch = Annotated[
    str | None,
    Header(alias="If-Match", description="The ETag you read; 412 if the resource changed since."),
]


def etag_of(version: int) -> str:
    return f'"{version}"'


def check_if_match(if_match: str | None, version: int) -> None:
    """412 when If-Match names another version; no header means last write wins."""
    if if_match is None:
        return
    candidates = [c.strip() for c in if_match.split(",")]
    if "*" in candidates or etag_of(version) in candidates:
        return
    raise ProblemError(
        412,
        f"The resource changed since you read it: its current ETag is {etag_of(version)}. "
        "Read it again and retry with that value in If-Match.",
        current_etag=etag_of(version),
    )


def respond(written: Written) -> JSONResponse:
    return JSONResponse(written.body, status_code=written.status, headers=written.headers())
