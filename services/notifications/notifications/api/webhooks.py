"""What notifications posts to an artisan's webhook endpoint (the OpenAPI `webhooks` section).

These operations are not served here: they document the requests the delivery worker makes.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Header, Response
from fastapi.openapi.utils import get_openapi

from fabkit.openapi import operation_id
from notifications.contracts import (
    SubscriptionTestWebhook,
    VacancyDigestWebhook,
    VacancyOpenedWebhook,
)

router = APIRouter(tags=["webhooks"], generate_unique_id_function=operation_id)

DELIVERY_CONTROL: dict[str, Any] = {
    "webhook-delivery": {
        "description": "On a failed answer: `abort-message` stops the retries of this message "
        "(it is dead at once), `disable` switches the subscription off as a 410 does.",
        "schema": {"type": "string", "enum": ["abort-message", "disable"]},
    },
    "Retry-After": {
        "description": "On a 429 or 503: seconds or an HTTP date before the next attempt "
        "(honoured up to 10 hours).",
        "schema": {"type": "string"},
    },
}
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Any 2xx acknowledges the message; the body is ignored."},
    410: {"description": "Gone: the subscription is disabled until the artisan resumes it."},
    "default": {
        "description": "Anything else (or no answer within the timeout) is retried about a day "
        "long on Svix's schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h), then dead; see the "
        "headers for what a receiver can ask. Failing every attempt for 5 days disables the "
        "subscription.",
        "headers": DELIVERY_CONTROL,
    },
}
WebhookId = Annotated[
    str,
    Header(
        alias="webhook-id",
        description="The delivery id: the same on every retry, so receivers deduplicate on it.",
    ),
]
WebhookTimestamp = Annotated[
    str, Header(alias="webhook-timestamp", description="Unix seconds when this attempt was signed")
]
WebhookSignature = Annotated[
    str,
    Header(
        alias="webhook-signature",
        description="`v1,` + base64 HMAC-SHA256 of `id.timestamp.body` with the subscription's "
        "whsec_ secret (Standard Webhooks); verify it before trusting the body.",
    ),
]


@router.post(
    "vacancy.opened",
    summary="A workshop matching a saved search fell vacant (instant alerts)",
    responses=RESPONSES,
    response_class=Response,
)
def vacancy_opened(
    body: VacancyOpenedWebhook,
    webhook_id: WebhookId,
    webhook_timestamp: WebhookTimestamp,
    webhook_signature: WebhookSignature,
) -> None:
    """Posted once per vacancy and saved search whose frequency is `instant`."""


@router.post(
    "vacancy.digest",
    summary="The day's vacancies for a saved search (daily digests)",
    responses=RESPONSES,
    response_class=Response,
)
def vacancy_digest(
    body: VacancyDigestWebhook,
    webhook_id: WebhookId,
    webhook_timestamp: WebhookTimestamp,
    webhook_signature: WebhookSignature,
) -> None:
    """Posted once a day (NOTIFICATIONS_DIGEST_HOUR_UTC) for a search whose frequency is `daily`."""


@router.post(
    "subscription.test",
    summary="A test message the artisan asked for",
    responses=RESPONSES,
    response_class=Response,
)
def subscription_test(
    body: SubscriptionTestWebhook,
    webhook_id: WebhookId,
    webhook_timestamp: WebhookTimestamp,
    webhook_signature: WebhookSignature,
) -> None:
    """Posted by `POST /v1/subscriptions/{id}/test`, even while the subscription is paused."""


def install_webhook_docs(app: FastAPI) -> None:
    """Add these operations to the app's OpenAPI as `webhooks`, on top of `install_openapi`.

    fabkit's OpenAPI builder documents the served routes only, so the webhooks are generated
    apart and merged in: their operations and the schemas of their bodies.
    """
    app.webhooks.include_router(router)
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema and "webhooks" in app.openapi_schema:
            return app.openapi_schema
        schema = build()
        extra = get_openapi(
            title=app.title, version=app.version, routes=[], webhooks=app.webhooks.routes
        )
        for path in extra.get("webhooks", {}).values():
            for operation in path.values():
                # What the receiver answers is described above; FastAPI's validation error of
                # a served route does not apply to a request this service makes.
                operation["responses"].pop("422", None)
        schemas = extra.get("components", {}).get("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        schema["webhooks"] = extra.get("webhooks", {})
        schema.setdefault("components", {}).setdefault("schemas", {}).update(schemas)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
