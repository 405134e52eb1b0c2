"""Leasing service: `create_app()` and its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from fabkit.errors import install_problem_handlers, install_problem_openapi
from fabkit.health import router as health_router
from fabkit.logging import configure_logging
from fabkit.metrics import ServiceMetrics, install_metrics
from fabkit.runtime import build_runtime, runtime_lifespan
from leasing import service
from leasing.api import applications, artisans, leases, programmes, units
from leasing.events.consumed import consumer_specs
from leasing.metrics import run_gauge_refresher
from leasing.programmes import load_catalogue
from leasing.settings import LeasingSettings


def create_app(settings: LeasingSettings | None = None) -> FastAPI:
    settings = settings or LeasingSettings()
    configure_logging(settings.service_name, settings.log_level)
    # A broken programme file stops the service here, before it takes any request.
    catalogue = load_catalogue(settings.programmes_file)
    base_lifespan = runtime_lifespan(lambda: build_runtime(settings, consumer_specs(settings)))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with base_lifespan(app):
            runtime = app.state.runtime
            if settings.publish_programmes:
                await service.publish_programmes(runtime.sessions, settings, catalogue)
            runtime.tasks.append(
                asyncio.create_task(
                    run_gauge_refresher(
                        runtime.read_sessions, runtime.stop, settings.gauge_refresh_s
                    ),
                    name="gauges",
                )
            )
            if settings.run_sweeper:
                # Safe in several replicas at once: each offer or lease changes under a row lock.
                runtime.tasks.append(
                    asyncio.create_task(
                        service.run_sweeper(runtime.sessions, settings, runtime.stop),
                        name="sweeper",
                    )
                )
            yield

    app = FastAPI(
        title="Fabrique leasing",
        version="1.0.0",
        description=(
            "Artisans register and apply to vacant workshops under published programmes; "
            "landlords rank applications by the published grid, offer leases within the rent "
            "cap; artisans accept. Errors are RFC 9457 problem+json."
        ),
        lifespan=lifespan,
    )
    app.state.catalogue = catalogue
    install_problem_handlers(app)
    install_problem_openapi(app)
    install_metrics(app, ServiceMetrics.for_service(settings.service_name))
    app.include_router(health_router)
    for module in (programmes, artisans, units, applications, leases):
        app.include_router(module.router)
    return app
