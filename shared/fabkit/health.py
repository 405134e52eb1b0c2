"""Liveness and readiness endpoints."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

router = APIRouter(tags=["health"])


@router.get("/livez", summary="The process is up")
async def livez() -> dict[str, str]:
    return {"status": "ok"}


async def _broker_reachable(bootstrap: str, timeout: float = 1.0) -> bool:
    for address in bootstrap.split(","):
        host, _, port = address.strip().rpartition(":")
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), timeout)
        except (OSError, TimeoutError, ValueError):
            continue
        writer.close()
        return True
    return False


@router.get("/readyz", summary="The database answers; the broker's state is reported")
async def readyz(request: Request) -> JSONResponse:
    """503 when the database is down. A broker outage is reported but keeps the service ready:
    writes still land in the outbox and are published once the broker is back."""
    runtime = request.app.state.runtime
    checks: dict[str, Any] = {}
    try:
        async with runtime.engine.connect() as conn:
            await asyncio.wait_for(conn.execute(text("SELECT 1")), 2.0)
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"down: {type(exc).__name__}"
    broker_ok = await _broker_reachable(runtime.settings.kafka_bootstrap)
    checks["broker"] = "ok" if broker_ok else "unreachable"
    ready = checks["database"] == "ok"
    status = "ok" if ready and broker_ok else ("degraded" if ready else "unavailable")
    return JSONResponse({"status": status, "checks": checks}, status_code=200 if ready else 503)
