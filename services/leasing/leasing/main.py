"""Leasing service: `create_app()` and its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from fabkit.errors import install_problem_handlers
from fabkit.health import router as health_router
from fabkit.logging import configure_logging, install_access_log
from fabkit.metrics import ServiceMetrics, install_metrics
from fabkit.openapi import install_openapi, operation_id
from fabkit.runtime import build_runtime, runtime_lifespan
from fabkit.tracing import install_tracing
from leasing.api import (
    appeals,
    applications,
    artisans,
    calls,
    leases,
    privacy,
    programmes,
    results,
    stats,
    units,
)
from leasing.events.handlers import consumer_specs
from leasing.events.published import emit
from leasing.metrics import refresh_business_gauges
from leasing.programmes import load_catalogue
from leasing.service import calls as call_service
from leasing.service import identity_accounts
from leasing.service import leases as lease_service
from leasing.service import privacy as privacy_service
from leasing.service import programmes as programme_service
from leasing.service.common import CLOCK
from leasing.service.retention import Periods, run_retention
from leasing.settings import LeasingSettings

TAGS = [
    {
        "name": "programmes",
        "description": "The published programmes: eligibility rules, rent caps and the scoring "
        "grid every allocation follows. Public to read; city officers and admins change them "
        "(If-Match on the catalogue version), each change a new catalogue version, kept and "
        "published.",
    },
    {
        "name": "artisans",
        "description": "Registration by a logged-in artisan account with a verified e-mail "
        "(the profile takes the account's id; tokens come from the identity provider, never "
        "from here) and the artisan's own profile, updated with If-Match.",
    },
    {
        "name": "units",
        "description": "Units as inventory published them, the eligibility check of an artisan "
        "and the landlord's ranking of a vacancy's applications.",
    },
    {
        "name": "calls",
        "description": "Calls for applications: a vacancy is let through a call that opens, "
        "closes at its closing date with the ranking frozen, is reviewed, decided and its "
        "results published. Dates and counts are public; the ranking is the landlord's, "
        "officers' and admins'.",
    },
    {
        "name": "results",
        "description": "A call's jury (members named: they act in a public capacity; a "
        "declared conflict recuses the member), its anonymised published results (candidates "
        "by rank, points per criterion, outcome, the published ground wherever the order was "
        "not followed) and the applicants' appeals, answered by city officers.",
    },
    {
        "name": "applications",
        "description": "Artisans apply and withdraw; the unit's landlord rejects or offers a "
        "lease. Creating requests accept an Idempotency-Key.",
    },
    {
        "name": "leases",
        "description": "The artisan accepts or declines an offer; a signed lease ends, is "
        "terminated or renewed within its programme's limits.",
    },
    {
        "name": "stats",
        "description": "Letting statistics for city officers and admins: vacancies open now, "
        "lets and the days from a vacancy's opening to its lease, by arrondissement and site "
        "kind. Read-only.",
    },
    {
        "name": "privacy",
        "description": "Personal data: your export (everything leasing holds about you) and "
        "erasure (the profile pseudonymised, what a legal duty keeps listed), the admin's on a "
        "written request, and the audit log of both.",
    },
    {"name": "health", "description": "Liveness and readiness probes."},
]


def create_app(settings: LeasingSettings | None = None) -> FastAPI:
    settings = settings or LeasingSettings()
    configure_logging(settings.service_name, settings.log_level)
    # A broken programme file stops the service here, before it takes any request.
    catalogue = load_catalogue(settings.programmes_file)
    emit.bind_source(settings.event_source)
    CLOCK.use(settings.clock_file)
    base_lifespan = runtime_lifespan(lambda: build_runtime(settings, consumer_specs(settings)))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with base_lifespan(app):
            runtime = app.state.runtime
            if settings.publish_programmes:
                await programme_service.seed_programmes(runtime.sessions, catalogue)
            # The database holds the catalogue; the file's serves only until it is stored.
            catalogues = programme_service.CatalogueCache(
                runtime.read_sessions, catalogue, settings.catalogue_ttl_s
            )
            await catalogues.refresh()
            app.state.catalogues = catalogues
            runtime.refresh_gauges(refresh_business_gauges, settings.gauge_refresh_s)
            if settings.run_sweeper:
                # Safe in several replicas at once: each offer or lease changes under a row lock.
                runtime.tasks.append(
                    asyncio.create_task(
                        lease_service.run_sweeper(
                            runtime.sessions, runtime.stop, settings.sweep_interval_s
                        ),
                        name="sweeper",
                    )
                )
            if settings.run_call_worker:
                # Safe in several replicas at once: each call moves under a row lock that the
                # other replicas' workers skip.
                runtime.tasks.append(
                    asyncio.create_task(
                        call_service.run_call_worker(
                            runtime.sessions, catalogue, runtime.stop, settings.call_tick_s
                        ),
                        name="call-worker",
                    )
                )
                # Same switch: the process that runs the background work seals erasures too.
                runtime.tasks.append(
                    asyncio.create_task(
                        privacy_service.run_erasure_sealer(
                            runtime.sessions,
                            runtime.stop,
                            settings.erasure_seal_after_s,
                            settings.call_tick_s,
                        ),
                        name="erasure-sealer",
                    )
                )
                # And applies the retention rules daily (row locks, SKIP LOCKED: replicas safe).
                runtime.tasks.append(
                    asyncio.create_task(
                        run_retention(
                            runtime.sessions,
                            runtime.stop,
                            Periods.of(settings),
                            settings.retention_interval_s,
                        ),
                        name="retention",
                    )
                )
                # And deletes erased artisans' identity-provider accounts (row-locked, SKIP
                # LOCKED: safe in several replicas).
                runtime.tasks.append(
                    asyncio.create_task(
                        identity_accounts.run_account_deleter(
                            runtime.sessions, runtime.stop, settings
                        ),
                        name="account-deleter",
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
        generate_unique_id_function=operation_id,
    )
    install_problem_handlers(app)
    install_openapi(app, tags=TAGS)
    install_metrics(app, ServiceMetrics.for_service(settings.service_name))
    install_access_log(app)
    install_tracing(app, settings.service_name)
    app.include_router(health_router)
    for module in (programmes, artisans, units, calls, applications, leases):
        app.include_router(module.router)
    app.include_router(stats.router)
    app.include_router(results.router)
    app.include_router(appeals.router)
    app.include_router(privacy.router)
    # An artisan's successful writes count as activity (the inactive-account retention rule).
    app.middleware("http")(artisans.record_activity)
    return app
