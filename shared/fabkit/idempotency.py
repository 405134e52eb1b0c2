"""Idempotency-Key support for creating POSTs: a retried request creates one thing."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.auth import Principal
from fabkit.errors import ProblemError
from fabkit.models import IdempotencyRecord

_KEY_RE = re.compile(r"^[\x21-\x7e]{1,200}$")


def validate_key(key: str | None) -> str | None:
    if key is None:
        return None
    if not _KEY_RE.match(key):
        raise ProblemError(
            400, "Idempotency-Key must be 1 to 200 visible ASCII characters without spaces."
        )
    return key


def fingerprint(payload: Any) -> str:
    return hashlib.sha256(
        json.dumps(payload, sort_keys=True, default=str, separators=(",", ":")).encode()
    ).hexdigest()


async def stored_response(
    session: AsyncSession, *, principal: str, key: str, method: str, path: str, request_hash: str
) -> JSONResponse | None:
    """The response first given for this key, or None; 422 if the key came with another body."""
    record = await session.get(IdempotencyRecord, (principal, key))
    if record is None:
        return None
    if (record.method, record.path, record.request_hash) != (method, path, request_hash):
        raise ProblemError(
            422,
            "This Idempotency-Key was already used for a different request; "
            "use a new key for a new request.",
        )
    headers = {**record.response_headers, "Idempotent-Replayed": "true"}
    return JSONResponse(record.response_body, status_code=record.status_code, headers=headers)


def remember(
    session: AsyncSession,
    *,
    principal: str,
    key: str,
    method: str,
    path: str,
    request_hash: str,
    status_code: int,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> None:
    """Store the response in the creating transaction (a concurrent twin fails on the key)."""
    session.add(
        IdempotencyRecord(
            principal=principal,
            key=key,
            method=method,
            path=path,
            request_hash=request_hash,
            status_code=status_code,
            response_body=body,
            response_headers=headers or {},
        )
    )


@dataclass(frozen=True)
class Idempotency:
    """An Idempotency-Key and the request it came with."""

    principal: str
    key: str
    method: str
    path: str
    request_hash: str


@dataclass(frozen=True)
class Written:
    """A created or updated resource: its status, body, version (ETag) and location."""

    status: int
    body: dict[str, Any]
    etag: str | None = None
    location: str | None = None
    replayed: bool = False

    def headers(self) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.etag:
            out["ETag"] = self.etag
        if self.location:
            out["Location"] = self.location
        if self.replayed:
            out["Idempotent-Replayed"] = "true"
        return out


def idempotency_of(
    principal: Principal, key: str | None, request: Request, payload: Any
) -> Idempotency | None:
    """The Idempotency-Key context of a creating request, or None without the header."""
    key = validate_key(key)
    if key is None:
        return None
    return Idempotency(
        principal=f"{principal.role.value}:{principal.subject}",
        key=key,
        method=request.method,
        path=request.url.path,
        request_hash=fingerprint(payload),
    )


class _Replay(Exception):
    """The key was recorded by a transaction that committed after our first look."""


async def run_idempotent(
    sessions: async_sessionmaker[AsyncSession],
    idem: Idempotency | None,
    create: Callable[[AsyncSession], Awaitable[Written]],
    *,
    conflict: str | None = None,
) -> Written:
    """Run a creating use case in one transaction, once per Idempotency-Key; replay the first
    answer after that, also to a concurrent twin that lost the race.

    `conflict` is the 409 detail when a unique constraint refuses the write (someone created
    the same thing first); without it the IntegrityError propagates to the 409 handler.
    """

    async def replay() -> Written | None:
        if idem is None:
            return None
        async with sessions() as session:
            stored = await stored_response(
                session,
                principal=idem.principal,
                key=idem.key,
                method=idem.method,
                path=idem.path,
                request_hash=idem.request_hash,
            )
        if stored is None:
            return None
        headers = dict(stored.headers)
        return Written(
            status=stored.status_code,
            body=json.loads(bytes(stored.body)),
            etag=headers.get("etag"),
            location=headers.get("location"),
            replayed=True,
        )

    if (previous := await replay()) is not None:
        return previous
    try:
        async with sessions() as session, session.begin():
            if idem is not None and await session.get(
                IdempotencyRecord, (idem.principal, idem.key)
            ):
                raise _Replay
            written = await create(session)
            if idem is not None:
                remember(
                    session,
                    principal=idem.principal,
                    key=idem.key,
                    method=idem.method,
                    path=idem.path,
                    request_hash=idem.request_hash,
                    status_code=written.status,
                    body=written.body,
                    headers={
                        k: v for k, v in written.headers().items() if k != "Idempotent-Replayed"
                    },
                )
        return written
    except (IntegrityError, ProblemError, _Replay) as exc:
        # A concurrent request with the same key got in first (its key, or the thing it
        # created): answer what it answered.
        if (previous := await replay()) is not None:
            return previous
        if isinstance(exc, _Replay):
            raise RuntimeError("idempotency record vanished") from exc
        if isinstance(exc, IntegrityError) and conflict is not None:
            raise ProblemError(409, conflict) from exc
        raise
