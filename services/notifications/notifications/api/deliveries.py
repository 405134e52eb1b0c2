"""Deliveries: an artisan's own (sent again when dead), and the operators' dead letters with
redelivery."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import APIRouter

from fabkit.auth import Principal
from fabkit.errors import PROBLEM_JSON
from fabkit.pagination import Page, PageDep
from notifications.api.deps import AdminOnly, ArtisanOnly, SessionsDep, SignalsDep
from notifications.domain import DeliveryStatus
from notifications.repository import DeliveryFilter
from notifications.schemas import DeliveryOut, DigestsFlushed
from notifications.service import alerts, deliveries

router = APIRouter()

# A dead delivery as it is once sent again: pending, due now, no attempt made yet, the last
# failure kept until the next attempt replaces it.
_DEAD_SENT_AGAIN: dict[str, Any] = {
    "id": "6f1c2a9e-4b7d-4e21-9c3a-0d5e8f7a1b24",
    "event_id": "3d9f7c1e-8a2b-4f60-b5d4-2e1a0c9b8f77",
    "kind": "vacancy_alert",
    "channel": "webhook",
    "status": "pending",
    "artisan_id": "art-0017",
    "subscription_id": "0b8e6d2c-1f3a-4c5b-8e9d-7a6b5c4d3e2f",
    "vacancy_id": "vac-0042",
    "attempts": 0,
    "next_attempt_at": "2026-12-01T22:40:00Z",
    "last_error": "HTTP 503",
    "last_status_code": 503,
    "batch_id": None,
    "created_at": "2026-11-30T09:12:03Z",
    "delivered_at": None,
}


def _problem(description: str, status: int, detail: str) -> dict[str, Any]:
    """An error response documented with an example of its problem details."""
    example = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status}
    return {
        "description": description,
        "content": {
            PROBLEM_JSON: {
                "schema": {"$ref": "#/components/schemas/Problem"},
                "example": {**example, "detail": detail},
            }
        },
    }


@router.get(
    "/v1/deliveries",
    response_model=Page[DeliveryOut],
    summary="Your deliveries, newest first",
    tags=["deliveries"],
)
async def list_my_deliveries(
    sessions: SessionsDep,
    page: PageDep,
    status: DeliveryStatus | None = None,
    principal: Principal = ArtisanOnly,
) -> Page[DeliveryOut]:
    where = DeliveryFilter(artisan_id=principal.subject, status=status.value if status else None)
    return await deliveries.list_deliveries(sessions, where, page)


@router.post(
    "/v1/deliveries/{delivery_id}/redeliver",
    response_model=DeliveryOut,
    summary="Send one of your dead deliveries again (same webhook-id, fresh attempts)",
    description=(
        "For a delivery of one of your saved searches that failed its last attempt (status "
        "`dead`), once the receiver is fixed: it goes out again as the same message, with the "
        "same `webhook-id`, so a receiver that already has it can recognise it, and with a fresh "
        "count of attempts. Another artisan's delivery is answered 404, a delivery that is not "
        "dead 409."
    ),
    tags=["deliveries"],
    responses={
        200: {"content": {"application/json": {"example": _DEAD_SENT_AGAIN}}},
        404: _problem(
            "No such delivery among yours (another artisan's is answered the same way).",
            404,
            "No delivery with id 6f1c2a9e-4b7d-4e21-9c3a-0d5e8f7a1b24.",
        ),
        409: _problem(
            "The delivery is not dead: it is still being tried, or was delivered or cancelled.",
            409,
            "Only dead deliveries can be redelivered; this one is delivered.",
        ),
    },
)
async def redeliver_my_delivery(
    delivery_id: str, sessions: SessionsDep, signals: SignalsDep, principal: Principal = ArtisanOnly
) -> DeliveryOut:
    return await deliveries.redeliver(sessions, signals, delivery_id, owner=principal)


@router.get(
    "/v1/admin/deliveries/dead",
    response_model=Page[DeliveryOut],
    summary="Deliveries that failed their last attempt",
    tags=["operations"],
)
async def list_dead_deliveries(
    sessions: SessionsDep,
    page: PageDep,
    artisan_id: str | None = None,
    principal: Principal = AdminOnly,
) -> Page[DeliveryOut]:
    where = DeliveryFilter(artisan_id=artisan_id, status=DeliveryStatus.DEAD.value)
    return await deliveries.list_deliveries(sessions, where, page)


@router.get(
    "/v1/admin/deliveries",
    response_model=Page[DeliveryOut],
    summary="Every delivery, filtered",
    tags=["operations"],
)
async def list_deliveries(
    sessions: SessionsDep,
    page: PageDep,
    status: DeliveryStatus | None = None,
    artisan_id: str | None = None,
    subscription_id: str | None = None,
    principal: Principal = AdminOnly,
) -> Page[DeliveryOut]:
    where = DeliveryFilter(
        artisan_id=artisan_id,
        subscription_id=subscription_id,
        status=status.value if status else None,
    )
    return await deliveries.list_deliveries(sessions, where, page)


@router.post(
    "/v1/admin/deliveries/{delivery_id}/redeliver",
    response_model=DeliveryOut,
    summary="Send a dead delivery again (same webhook-id, fresh attempts)",
    tags=["operations"],
)
async def redeliver_delivery(
    delivery_id: str, sessions: SessionsDep, signals: SignalsDep, principal: Principal = AdminOnly
) -> DeliveryOut:
    return await deliveries.redeliver(sessions, signals, delivery_id)


@router.post(
    "/v1/admin/digests/flush",
    response_model=DigestsFlushed,
    summary="Send every waiting daily digest now",
    tags=["operations"],
)
async def flush_digests(
    sessions: SessionsDep, signals: SignalsDep, principal: Principal = AdminOnly
) -> DigestsFlushed:
    return DigestsFlushed(made_due=await alerts.flush_digests(sessions, signals))
