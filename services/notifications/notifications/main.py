"""Notifications service: `create_app()` and its lifespan."""

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
from notifications.api import (
    deliveries,
    feed,
    guests,
    opendata,
    privacy,
    subscriptions,
    unsubscribe,
    visits,
    webhooks,
)
from notifications.clock import CLOCK
from notifications.events.handlers import consumer_specs
from notifications.metrics import refresh_gauges
from notifications.service.demand import DemandPublisher
from notifications.service.retention import refresh_oldest, run_retention_loop
from notifications.service.visit_mail import run_visit_mail_loop
from notifications.settings import NotificationsSettings
from notifications.signals import Signals
from notifications.worker import DeliveryWorker

TAGS = [
    {
        "name": "subscriptions",
        "description": "Saved searches of the calling artisan (role `artisan`): criteria, "
        "channels (signed webhook, e-mail, feed), instant or daily, pause, resume, test.",
    },
    {
        "name": "feed",
        "description": "The artisan's in-app alerts, newest first, read and unread, and a "
        "server-sent event stream of new ones.",
    },
    {
        "name": "deliveries",
        "description": "Every message sent for the calling artisan, per channel, with its "
        "attempts and last error. The delivery id is the webhook's `webhook-id`.",
    },
    {
        "name": "operations",
        "description": "For operators (role `admin`): every delivery, dead letters and their "
        "redelivery, daily digests sent now.",
    },
    {
        "name": "unsubscribe",
        "description": "The one-click unsubscribe link of each e-mail (RFC 8058): HTML pages "
        "for people, no token needed (the link is signed).",
    },
    {
        "name": "guests",
        "description": "Alerts without an account (no token): anyone asks for e-mail alerts "
        "with an address and criteria, confirms from the e-mail (double opt-in), and gets "
        "alerts that are not filtered by eligibility, each with its one-click unsubscribe.",
    },
    {
        "name": "privacy",
        "description": "Your personal data (any signed-in user): everything held about you as "
        "one JSON document, and its erasure; the retention rules (officers, admins) and their "
        "job run on demand (admins).",
    },
    {
        "name": "open data",
        "description": "Anonymised demand: saved searches by arrondissement and trade against "
        "the open vacancies, counts under 5 people suppressed (docs/open-data.md).",
    },
    {
        "name": "visits",
        "description": "Workshop visits a site or a tenant opens (from inventory): anyone lists "
        "them, books places with an e-mail address (no token; confirmation, reminder the day "
        "before, cancellation by the e-mail's link) and subscribes to their iCalendar feed; "
        "hosts (landlords, artisans) see their bookings.",
    },
    {"name": "health", "description": "Liveness and readiness probes."},
    {
        "name": "webhooks",
        "description": "What is posted to a subscription's webhook URL, signed per Standard "
        "Webhooks (see the `webhooks` section).",
    },
]


def create_app(settings: NotificationsSettings | None = None) -> FastAPI:
    """The notifications app; its lifespan runs the consumers and the delivery worker."""
    settings = settings or NotificationsSettings()
    configure_logging(settings.service_name, settings.log_level)
    CLOCK.use(settings.clock_file)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        signals = Signals()
        base = runtime_lifespan(lambda: build_runtime(settings, consumer_specs(settings, signals)))
        async with base(app):
            signals.bind()
            app.state.signals = signals
            runtime = app.state.runtime
            runtime.refresh_gauges(refresh_gauges)
            runtime.refresh_gauges(refresh_oldest, every=60.0)
            if settings.run_delivery_worker:
                worker = DeliveryWorker(runtime.sessions, settings, signals)
                runtime.tasks.append(
                    asyncio.create_task(worker.run(runtime.stop), name="delivery-worker")
                )
                # The process that sends also applies retention, daily (service/retention.py).
                runtime.tasks.append(
                    asyncio.create_task(
                        run_retention_loop(
                            runtime.sessions, settings.retention_interval_s, runtime.stop
                        ),
                        name="retention",
                    )
                )
                # Visits' reminders the day before, and the host's cancellations.
                runtime.tasks.append(
                    asyncio.create_task(
                        run_visit_mail_loop(runtime.sessions, settings, runtime.stop),
                        name="visit-mail",
                    )
                )
            yield

    app = FastAPI(
        title="Fabrique notifications",
        version="1.0.0",
        description=(
            "Artisans save searches and get vacancy alerts by signed webhook (Standard Webhooks), "
            "e-mail and an in-app feed. Errors are RFC 9457 problem+json. The `webhooks` section "
            "describes what is posted to an artisan's endpoint."
        ),
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
    )
    install_problem_handlers(app)
    install_openapi(app, tags=TAGS)
    webhooks.install_webhook_docs(app)
    install_metrics(app, ServiceMetrics.for_service(settings.service_name))
    install_access_log(app)
    install_tracing(app, settings.service_name)
    app.include_router(health_router)
    for module in (
        subscriptions,
        feed,
        deliveries,
        unsubscribe,
        guests,
        visits,
        privacy,
        opendata,
    ):
        app.include_router(module.router)
    app.state.demand = DemandPublisher(
        settings.open_data_supply_url,
        max_age_s=settings.open_data_cache_s,
        supply_timeout_s=settings.open_data_supply_timeout_s,
    )
    app.include_router(privacy.retention_router)
    return app
