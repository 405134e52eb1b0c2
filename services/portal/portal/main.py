"""Portal service: `create_app()` and its lifespan (one HTTP client per public API)."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from fabkit.logging import configure_logging, install_access_log
from fabkit.metrics import ServiceMetrics, install_metrics
from fabkit.openapi import operation_id
from fabkit.tracing import install_tracing
from portal.clients import Upstreams
from portal.headers import SecurityHeaders
from portal.language import LanguageMiddleware
from portal.pages import (
    alerts,
    applications,
    auth,
    board,
    deliveries,
    errors,
    feed,
    health,
    landlord,
    landlord_calls,
    me,
    offers,
    officer,
    opendata,
    privacy,
    profile,
    programmes,
    protection,
    results,
    searches,
    units,
)
from portal.sessions import SessionManager, WebSessionMiddleware
from portal.settings import PortalSettings

HERE = Path(__file__).parent
STATIC = HERE / "static"
# Leaflet's dist/ as npm installed it (scripts/bootstrap.sh: npm ci --prefix services/portal).
NODE_MODULES = HERE.parent / "node_modules"
LEAFLET_DIST = NODE_MODULES / "leaflet" / "dist"


def create_app(settings: PortalSettings | None = None) -> FastAPI:
    settings = settings or PortalSettings()
    configure_logging(settings.service_name, settings.log_level)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.upstreams = Upstreams.open(settings)
        app.state.sessions = SessionManager.for_settings(settings)
        # What is loaded by now (the app, its routes, gettext catalogs, Babel, Jinja2) lives as
        # long as the process: frozen out of the collector's way, a full collection scans only
        # what requests made since — 129–137 ms → 5–34 ms a pause under the board's load
        # (docs/benchmarks.md §8), and such a pause stalls every view in flight. Once per
        # process (tests build many apps), and after a collection so no garbage is kept.
        if gc.get_freeze_count() == 0:
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            await app.state.upstreams.aclose()
            await app.state.sessions.aclose()

    # The pages are HTML for people, not an API: none is in the OpenAPI document, which
    # documents only the probes.
    app = FastAPI(
        title="Fabrique portal",
        version="1.0.0",
        description="The platform's web pages for people; integrators use the three APIs.",
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    errors.install_error_pages(app)
    auth.install(app)
    install_metrics(app, ServiceMetrics.for_service(settings.service_name))
    install_access_log(app)
    install_tracing(app, settings.service_name)
    app.add_middleware(WebSessionMiddleware)
    app.add_middleware(LanguageMiddleware, secure_cookie=settings.environment == "prod")
    app.add_middleware(SecurityHeaders, settings=settings)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    if LEAFLET_DIST.is_dir():
        app.mount("/assets/leaflet", StaticFiles(directory=LEAFLET_DIST), name="leaflet")
    for module in (health, board, units, programmes, alerts, auth, me, searches, feed, deliveries):
        app.include_router(module.router)
    for module in (profile, applications, offers, privacy):
        app.include_router(module.router)
    app.include_router(officer.router)
    app.include_router(protection.router)
    app.include_router(opendata.router)
    app.include_router(results.router)
    app.include_router(landlord.router)
    app.include_router(landlord_calls.router)
    return app
