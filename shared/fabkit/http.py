"""HTTP conventions every service shares: ETag / If-Match, Idempotency-Key, written responses."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header
from fastapi.responses import JSONResponse
from pydantic.json_schema import SkipJsonSchema

from fabkit.errors import ProblemError
from fabkit.idempotency import Written

# The key syntax fabkit.idempotency.validate_key enforces (400 otherwise) is written into the
# schema too, so clients generated from it and fuzzers send keys the services take.
IdempotencyKey = Annotated[
    str | SkipJsonSchema[None],
    Header(
        alias="Idempotency-Key",
        description="Retrying a POST with the same key returns the first answer: 1 to 200 "
        "visible ASCII characters, no spaces.",
        json_schema_extra={"pattern": "^[!-~]{1,200}$"},
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
