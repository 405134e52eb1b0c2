"""OpenAPI that integrators can use: readable operation ids, documented headers and tags."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from fabkit.errors import install_problem_openapi

# Response headers shared by the services, for `responses={...: {"headers": ...}}`.
ETAG_HEADER: dict[str, Any] = {
    "ETag": {
        "description": "The resource's version; send it back in If-Match to update it safely.",
        "schema": {"type": "string", "example": '"3"'},
    }
}
LOCATION_HEADER: dict[str, Any] = {
    "Location": {
        "description": "The URL of the created resource.",
        "schema": {"type": "string", "format": "uri-reference"},
    }
}
REPLAYED_HEADER: dict[str, Any] = {
    "Idempotent-Replayed": {
        "description": "`true` when this answer replays the first one for the Idempotency-Key.",
        "schema": {"type": "string", "enum": ["true"]},
    }
}
CREATED_HEADERS: dict[str, Any] = {**LOCATION_HEADER, **ETAG_HEADER, **REPLAYED_HEADER}


def operation_id(route: APIRoute) -> str:
    """`listSites` for a handler named `list_sites`: stable, readable, unique per service."""
    head, *rest = route.name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def install_openapi(app: FastAPI, tags: Sequence[dict[str, str]] = ()) -> None:
    """Problem responses, tag descriptions and the bearer format, on top of FastAPI's schema.

    Create the app with `generate_unique_id_function=operation_id` so ids are readable.
    """
    install_problem_openapi(app)
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        if tags:
            schema["tags"] = [dict(t) for t in tags]
        for scheme in schema.get("components", {}).get("securitySchemes", {}).values():
            if scheme.get("scheme") == "bearer":
                scheme.setdefault("bearerFormat", "JWT")
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
