"""The API benchmark's baseline: bare FastAPI endpoints, served exactly as the services are
(fabkit's ServiceProcess: `python -m uvicorn --factory … --no-access-log`, one process).

- `GET /v1/units` answers the bytes of a real inventory search page, read once from the file
  named by BENCH_BARE_PAGE_FILE: the same response on the wire, without database, ORM,
  validation or middleware;
- `GET /hello` answers a two-key JSON object through FastAPI's own serialisation: the floor
  of the framework and the server.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI, Response


def create_app() -> FastAPI:
    page_file = os.environ.get("BENCH_BARE_PAGE_FILE")
    page = Path(page_file).read_bytes() if page_file else b'{"items":[],"total":0}'
    app = FastAPI(title="bench bare")

    @app.get("/readyz")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    @app.get("/hello")
    async def hello() -> dict[str, object]:
        return {"hello": "world", "ok": True}

    @app.get("/v1/units")
    async def units() -> Response:
        return Response(page, media_type="application/json")

    return app
