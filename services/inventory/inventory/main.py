"""Inventory service: `create_app()` and its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI

from fabkit.errors import install_problem_handlers
from fabkit.health import router as health_router
from fabkit.logging import configure_logging, install_access_log
from fabkit.metrics import ServiceMetrics, install_metrics
from fabkit.openapi import install_openapi, operation_id
from fabkit.runtime import build_runtime, runtime_lifespan
from fabkit.tracing import install_tracing
from inventory.api import export, imports, landlords, opendata, projects, sites, surface, units
from inventory.events.handlers import consumer_specs
from inventory.events.published import emit
from inventory.geocoding import geocoder_of
from inventory.metrics import refresh_business_gauges
from inventory.service.opendata import regenerate_if_stale
from inventory.service.retention import refresh_oldest, start_retention
from inventory.settings import InventorySettings

TAGS = [
    {
        "name": "landlords",
        "description": "Social landlords, the City and other owners; admins register them. "
        "A landlord's integration gets its tokens from the identity provider (a Keycloak "
        "client with the landlord's id, client-credentials grant), not from this API.",
    },
    {
        "name": "sites",
        "description": "Hôtels industriels, cités artisanales and other sites, written by their "
        "landlord. Send the ETag back in If-Match to update safely.",
    },
    {
        "name": "units",
        "description": "Workshops and their status; making one available opens a vacancy that "
        "is published as inventory.unit.vacancy_opened.v1.",
    },
    {
        "name": "production surface",
        "description": "The ledger of the city's production m²: now, at an instant, over time; "
        "the no-net-loss balance (losses, compensations, net) and the flags officers act on.",
    },
    {
        "name": "development projects",
        "description": "Urban projects (new districts, new buildings) and the production m² "
        "each must keep or create; units linked to one count against its commitment.",
    },
    {
        "name": "me",
        "description": "What inventory holds about the caller, to download (GDPR access).",
    },
    {
        "name": "open data",
        "description": "Open vacancies, sites and the production-surface ledger as CSV and "
        "GeoJSON under the Licence Ouverte 2.0, each with its Table Schema; public, cached, "
        "regenerated nightly (docs/open-data.md).",
    },
    {"name": "health", "description": "Liveness and readiness probes."},
]

log = logging.getLogger(__name__)


async def _open_data_loop(runtime: Any, settings: InventorySettings) -> None:
    """Regenerate the open-data files when they are older than the interval: every replica
    checks, the first to find them stale rewrites them for all."""
    while not runtime.stop.is_set():
        try:
            await regenerate_if_stale(runtime.sessions, settings.open_data_interval_s)
        except Exception:
            log.exception(
                "open data regeneration failed; next try in %s s", settings.open_data_check_every_s
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(runtime.stop.wait(), settings.open_data_check_every_s)


def create_app(settings: InventorySettings | None = None) -> FastAPI:
    settings = settings or InventorySettings()
    configure_logging(settings.service_name, settings.log_level)
    emit.bind_source(settings.event_source)
    base_lifespan = runtime_lifespan(lambda: build_runtime(settings, consumer_specs(settings)))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with base_lifespan(app):
            runtime = app.state.runtime
            runtime.refresh_gauges(refresh_business_gauges)
            runtime.refresh_gauges(refresh_oldest, every=60.0)
            if settings.run_relay:
                # The process that publishes the outbox also prunes it, daily.
                start_retention(runtime, settings.retention_interval_s)
            app.state.geocoder = geocoder_of(
                settings.geocoder_url, settings.geocoder_timeout_s, settings.geocoder_min_score
            )
            runtime.tasks.append(
                asyncio.create_task(_open_data_loop(runtime, settings), name="open-data")
            )
            try:
                yield
            finally:
                if app.state.geocoder is not None:
                    await app.state.geocoder.aclose()

    app = FastAPI(
        title="Fabrique inventory",
        version="1.0.0",
        description=(
            "Landlords keep Paris production sites and units up to date; every change is "
            "published as a CloudEvent. Errors are RFC 9457 problem+json."
        ),
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
    )
    install_problem_handlers(app)
    install_openapi(app, tags=TAGS)
    install_metrics(app, ServiceMetrics.for_service(settings.service_name))
    install_access_log(app)
    install_tracing(app, settings.service_name)
    app.include_router(health_router)
    for module in (landlords, sites, units, imports, surface, projects, export, opendata):
        app.include_router(module.router)
    return app
