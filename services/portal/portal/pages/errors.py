"""Error pages: one template per status, in the visitor's language, never a stack trace."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from portal.clients import UpstreamNotFound, UpstreamRefused, UpstreamUnavailable
from portal.headers import security_headers
from portal.rendering import render

log = logging.getLogger(__name__)


TEMPLATES = {404: "error/404.html", 500: "error/500.html", 503: "error/503.html"}


def _page(request: Request, status: int, context: dict[str, object] | None = None) -> Response:
    template = TEMPLATES.get(status, "error/generic.html")
    return render(request, template, {"status": status, **(context or {})}, status=status)


def install_error_pages(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        response = _page(request, exc.status_code)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(UpstreamNotFound)
    async def not_found(request: Request, exc: UpstreamNotFound) -> Response:
        return _page(request, 404)

    @app.exception_handler(UpstreamUnavailable)
    async def unavailable(request: Request, exc: UpstreamUnavailable) -> Response:
        response = _page(request, 503, {"service": exc.service})
        response.headers["Retry-After"] = "30"
        return response

    @app.exception_handler(UpstreamRefused)
    async def refused(request: Request, exc: UpstreamRefused) -> Response:
        # A request the portal built and an API refused is the portal's bug, not the visitor's.
        log.error("%s", exc)
        return _page(request, 500)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        # Runs outside the middleware stack: the security headers are added here.
        log.exception("unexpected error on %s", request.url.path)
        try:
            response = _page(request, 500)
        except Exception:  # the error page itself failed: plain text then
            response = HTMLResponse("Internal error", status_code=500)
        response.headers.update(security_headers(request.app.state.settings))
        return response
