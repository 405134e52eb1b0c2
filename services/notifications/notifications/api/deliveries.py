"""Deliveries: an artisan's own, and the operators' dead letters with redelivery."""

from __future__ import annotations

from fastapi import APIRouter

from fabkit.auth import Principal
from fabkit.pagination import Page, PageDep
from notifications.api.deps import AdminOnly, ArtisanOnly, SessionsDep, SignalsDep
from notifications.domain import DeliveryStatus
from notifications.repository import DeliveryFilter
from notifications.schemas import DeliveryOut, DigestsFlushed
from notifications.service import alerts, deliveries

router = APIRouter()


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
