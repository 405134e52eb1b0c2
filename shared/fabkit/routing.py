"""What a path allows: every method some route answers on it, for a 405's `Allow`."""

from __future__ import annotations

from starlette.routing import Match
from starlette.types import ASGIApp, Scope

# Probed in the order RFC 9110 lists them, so `Allow` reads the same on every service.
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")
# What routing added to the scope of the request being answered; a probe starts without it.
_ROUTING_KEYS = frozenset({"fastapi", "route", "endpoint", "path_params", "router"})


def allowed_methods(app: ASGIApp, scope: Scope) -> list[str]:
    """The methods the routes of `app` fully match on this request's path.

    Starlette's 405 names only the methods of the first route whose path matched, while
    FastAPI registers one route per method: a path with GET and PATCH would answer a DELETE
    with `Allow: GET` alone. Each method is probed through the routes' own `matches`, so
    included routers and path convertors are honoured as when the request was routed.
    """
    routes = getattr(getattr(app, "router", None), "routes", ())
    base = {k: v for k, v in scope.items() if k not in _ROUTING_KEYS}
    allowed = []
    for method in METHODS:
        probe = {**base, "method": method}
        if any(route.matches(probe)[0] is Match.FULL for route in routes):
            allowed.append(method)
    return allowed
