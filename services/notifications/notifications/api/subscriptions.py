"""Saved searches of the calling artisan: create, read, change, pause, resume, delete, test."""

from __future__ import annotations

from fastapi import APIRouter, Response

from fabkit.auth import Principal
from fabkit.openapi import LOCATION_HEADER
from fabkit.pagination import Page, PageDep
from notifications.api.deps import ArtisanOnly, SessionsDep, SettingsDep, SignalsDep
from notifications.domain import SubscriptionStatus
from notifications.schemas import (
    DeliveryOut,
    SubscriptionCreate,
    SubscriptionCreated,
    SubscriptionOut,
    SubscriptionPatch,
    TestSendOut,
)
from notifications.service import deliveries, subscriptions

router = APIRouter(prefix="/v1/subscriptions", tags=["subscriptions"])

# What a client does next with the subscription it just created (OpenAPI links).
_BY_ID = {"subscription_id": "$response.body#/id"}
SUBSCRIPTION_LINKS = {
    name: {"operationId": op, "parameters": _BY_ID}
    for name, op in (
        ("Get", "getSubscription"),
        ("Update", "updateSubscription"),
        ("Pause", "pauseSubscription"),
        ("Resume", "resumeSubscription"),
        ("Test", "sendTestMessage"),
        ("Deliveries", "listSubscriptionDeliveries"),
        ("Delete", "deleteSubscription"),
    )
}


@router.post(
    "",
    status_code=201,
    response_model=SubscriptionCreated,
    summary="Save a search; a webhook's signing secret is shown in this response only",
    responses={201: {"headers": LOCATION_HEADER, "links": SUBSCRIPTION_LINKS}},
)
async def create_subscription(
    payload: SubscriptionCreate,
    response: Response,
    sessions: SessionsDep,
    settings: SettingsDep,
    principal: Principal = ArtisanOnly,
) -> SubscriptionCreated:
    created = await subscriptions.create_subscription(sessions, settings, principal, payload)
    response.headers["Location"] = f"/v1/subscriptions/{created.id}"
    response.headers["Cache-Control"] = "no-store"
    return created


@router.get("", response_model=Page[SubscriptionOut], summary="Your saved searches")
async def list_subscriptions(
    sessions: SessionsDep, page: PageDep, principal: Principal = ArtisanOnly
) -> Page[SubscriptionOut]:
    return await subscriptions.list_subscriptions(sessions, principal, page)


@router.get("/{subscription_id}", response_model=SubscriptionOut, summary="One saved search")
async def get_subscription(
    subscription_id: str, sessions: SessionsDep, principal: Principal = ArtisanOnly
) -> SubscriptionOut:
    return await subscriptions.get_subscription(sessions, principal, subscription_id)


@router.patch(
    "/{subscription_id}",
    response_model=SubscriptionCreated,
    summary="Change a saved search; `webhook_secret` is set only when a new secret was made",
)
async def update_subscription(
    subscription_id: str,
    payload: SubscriptionPatch,
    response: Response,
    sessions: SessionsDep,
    settings: SettingsDep,
    principal: Principal = ArtisanOnly,
) -> SubscriptionCreated:
    response.headers["Cache-Control"] = "no-store"
    return await subscriptions.update_subscription(
        sessions, settings, principal, subscription_id, payload
    )


@router.delete("/{subscription_id}", status_code=204, summary="Delete a saved search")
async def delete_subscription(
    subscription_id: str, sessions: SessionsDep, principal: Principal = ArtisanOnly
) -> Response:
    await subscriptions.set_status(sessions, principal, subscription_id, SubscriptionStatus.DELETED)
    return Response(status_code=204)


@router.post(
    "/{subscription_id}/pause", response_model=SubscriptionOut, summary="Stop alerts for now"
)
async def pause_subscription(
    subscription_id: str, sessions: SessionsDep, principal: Principal = ArtisanOnly
) -> SubscriptionOut:
    return await subscriptions.set_status(
        sessions, principal, subscription_id, SubscriptionStatus.PAUSED
    )


@router.post(
    "/{subscription_id}/resume",
    response_model=SubscriptionOut,
    summary="Alert again (also after the platform disabled a webhook that answered 410)",
)
async def resume_subscription(
    subscription_id: str, sessions: SessionsDep, principal: Principal = ArtisanOnly
) -> SubscriptionOut:
    return await subscriptions.set_status(
        sessions, principal, subscription_id, SubscriptionStatus.ACTIVE
    )


@router.post(
    "/{subscription_id}/test",
    status_code=202,
    response_model=TestSendOut,
    summary="Send a test message on every channel of the search",
)
async def send_test_message(
    subscription_id: str,
    sessions: SessionsDep,
    signals: SignalsDep,
    principal: Principal = ArtisanOnly,
) -> TestSendOut:
    return await subscriptions.send_test(sessions, signals, principal, subscription_id)


@router.get(
    "/{subscription_id}/deliveries",
    response_model=Page[DeliveryOut],
    summary="What was sent for this search, newest first",
)
async def list_subscription_deliveries(
    subscription_id: str, sessions: SessionsDep, page: PageDep, principal: Principal = ArtisanOnly
) -> Page[DeliveryOut]:
    return await deliveries.subscription_deliveries(sessions, principal, subscription_id, page)
