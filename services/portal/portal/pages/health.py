"""Liveness and readiness. The portal holds no database: it is ready once it runs; readiness
reports which public APIs answer, and a page whose API is down says so itself."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from portal import clients
from portal.pages.deps import UpstreamsDep

router = APIRouter(tags=["health"])


@router.get("/livez", summary="The process is up")
async def livez() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Ready; which public APIs answer is reported")
async def readyz(upstreams: UpstreamsDep) -> JSONResponse:
    named = upstreams.named()
    answers = await asyncio.gather(*(clients.reachable(c) for c in named.values()))
    checks = {name: "ok" if ok else "unreachable" for name, ok in zip(named, answers, strict=True)}
    status = "ok" if all(answers) else "degraded"
    return JSONResponse({"status": status, "checks": checks})
