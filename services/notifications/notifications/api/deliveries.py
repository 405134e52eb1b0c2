"""Deliveries: an artisan's own, and the operators' dead letters with redelivery."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from fabkit.auth import Principal
from notifications import service
from notifications.api.deps import AdminOnly, ArtisanOnly, SessionsDep, SignalsDep
from notifications.domain import DeliveryStatus
from notifications.repository import DeliveryQuery
from notifications.schemas import DeliveryOut, DigestsFlushed, Page

router = APIRouter(tags=["deliveries"])

Limit = Annotated[int, Query(ge=1, le=100)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]


@router.get("/v1/deliveries", response_model=Page[DeliveryOut], summary="Your deliveries")
async def my_deliveries(
    sessions: SessionsDep,
    status: DeliveryStatus | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
    principal: Principal = ArtisanOnly,
) -> Page[DeliveryOut]:
    query = DeliveryQuery(
        artisan_id=principal.subject,
        status=status.value if status else None,
        limit=limit,
        offset=offset,
    )
    return await service.list_deliveries(sessions, query)


@router.get(
    "/v1/admin/deliveries/dead",
    response_model=Page[DeliveryOut],
    summary="Deliveries that failed their last attempt",
)
async def dead_deliveries(
    sessions: SessionsDep,
    artisan_id: str | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
    principal: Principal = AdminOnly,
) -> Page[DeliveryOut]:
    query = DeliveryQuery(
        artisan_id=artisan_id, status=DeliveryStatus.DEAD.value, limit=limit, offset=offset
    )
    return await service.list_deliveries(sessions, query)


@router.get(
    "/v1/admin/deliveries", response_model=Page[DeliveryOut], summary="Every delivery, filtered"
)
async def all_deliveries(
    sessions: SessionsDep,
    status: DeliveryStatus | None = None,
    artisan_id: str | None = None,
    subscription_id: str | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
    principal: Principal = AdminOnly,
) -> Page[DeliveryOut]:
    query = DeliveryQuery(
        artisan_id=artisan_id,
        subscription_id=subscription_id,
        status=status.value if status else None,
        limit=limit,
        offset=offset,
    )
    return await service.list_deliveries(sessions, query)


@router.post(
    "/v1/admin/deliveries/{delivery_id}/redeliver",
    response_model=DeliveryOut,
    summary="Send a dead delivery again (same webhook-id, fresh attempts)",
)
async def redeliver(
    delivery_id: str, sessions: SessionsDep, signals: SignalsDep, principal: Principal = AdminOnly
) -> DeliveryOut:
    return await service.redeliver(sessions, signals, delivery_id)


@router.post(
    "/v1/admin/digests/flush",
    response_model=DigestsFlushed,
    summary="Send every waiting daily digest now",
)
async def flush_digests(
    sessions: SessionsDep, signals: SignalsDep, principal: Principal = AdminOnly
) -> DigestsFlushed:
    return DigestsFlushed(made_due=await service.flush_digests(sessions, signals))
