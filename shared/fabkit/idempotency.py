"""Idempotency-Key support for creating POSTs: a retried request creates one thing."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from fastapi.responses import JSONResponse
from sqlmodel.ext.asyncio.session import AsyncSession

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
