"""Notifications: saved searches, the feed and the delivery log, with the visitor's token; guest
alerts without one."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx

from portal.clients.base import (
    API_PAGE_MAX,
    UpstreamNotFound,
    Upstreams,
    UpstreamUnavailable,
    document,
    get,
    request,
    segment,
)
from portal.schemas import (
    Delivery,
    DeliveryPage,
    FeedItem,
    FeedPage,
    GuestConfirmed,
    GuestPending,
    OpenDataCatalogue,
    Subscription,
    SubscriptionCreated,
    SubscriptionPage,
)

log = logging.getLogger(__name__)

SERVICE = "notifications"
# Notifications sends a keepalive comment every 15 s: a stream silent for longer is dead.
STREAM_READ_TIMEOUT_S = 45.0


def _sub(subscription_id: str) -> str:
    return f"/v1/subscriptions/{segment(subscription_id)}"


async def _call(
    upstreams: Upstreams,
    method: str,
    path: str,
    token: str,
    model: Any = None,
    *,
    json: Any = None,
    params: list[tuple[str, str | int | float]] | None = None,
) -> Any:
    return await request(
        SERVICE, upstreams.notifications, method, path, model, token=token, json=json,
        params=params or [],
    )  # fmt: skip


# Saved searches ------------------------------------------------------------------------------


async def list_subscriptions(upstreams: Upstreams, token: str) -> list[Subscription]:
    """Every saved search of the signed-in artisan (paged through the API)."""
    found: list[Subscription] = []
    offset = 0
    while True:
        page = await get(
            SERVICE,
            upstreams.notifications,
            "/v1/subscriptions",
            SubscriptionPage,
            [("limit", API_PAGE_MAX), ("offset", offset)],
            token=token,
        )
        found.extend(page.items)
        offset += API_PAGE_MAX
        if offset >= page.total or not page.items:
            return found


async def get_subscription(upstreams: Upstreams, token: str, subscription_id: str) -> Subscription:
    return await get(
        SERVICE, upstreams.notifications, _sub(subscription_id), Subscription, token=token
    )


async def create_subscription(
    upstreams: Upstreams, token: str, body: dict[str, Any]
) -> SubscriptionCreated:
    """Save a search; the answer carries the webhook's signing secret (once)."""
    created: SubscriptionCreated = await _call(
        upstreams, "POST", "/v1/subscriptions", token, SubscriptionCreated, json=body
    )
    return created


async def update_subscription(
    upstreams: Upstreams, token: str, subscription_id: str, body: dict[str, Any]
) -> SubscriptionCreated:
    """Change a search; `webhook_secret` is set when the change made a new one."""
    changed: SubscriptionCreated = await _call(
        upstreams, "PATCH", _sub(subscription_id), token, SubscriptionCreated, json=body
    )
    return changed


async def set_paused(
    upstreams: Upstreams, token: str, subscription_id: str, paused: bool
) -> Subscription:
    action = "pause" if paused else "resume"
    answer: Subscription = await _call(
        upstreams, "POST", f"{_sub(subscription_id)}/{action}", token, Subscription
    )
    return answer


async def delete_subscription(upstreams: Upstreams, token: str, subscription_id: str) -> None:
    await _call(upstreams, "DELETE", _sub(subscription_id), token)


# Deliveries ----------------------------------------------------------------------------------


async def subscription_deliveries(
    upstreams: Upstreams, token: str, subscription_id: str, limit: int, offset: int
) -> DeliveryPage:
    return await get(
        SERVICE,
        upstreams.notifications,
        f"{_sub(subscription_id)}/deliveries",
        DeliveryPage,
        [("limit", limit), ("offset", offset)],
        token=token,
    )


async def my_deliveries(
    upstreams: Upstreams, token: str, limit: int, offset: int, status: str | None = None
) -> DeliveryPage:
    params: list[tuple[str, str | int | float]] = [("limit", limit), ("offset", offset)]
    if status:
        params.append(("status", status))
    return await get(
        SERVICE, upstreams.notifications, "/v1/deliveries", DeliveryPage, params, token=token
    )


async def redeliver(upstreams: Upstreams, token: str, delivery_id: str) -> Delivery:
    """Send a dead delivery of one's own search again (same webhook-id, fresh attempts)."""
    answer: Delivery = await _call(
        upstreams, "POST", f"/v1/deliveries/{segment(delivery_id)}/redeliver", token, Delivery
    )
    return answer


# The feed ------------------------------------------------------------------------------------


async def feed(
    upstreams: Upstreams,
    token: str,
    *,
    before: int | None = None,
    unread_only: bool = False,
    limit: int = 20,
) -> FeedPage:
    params: list[tuple[str, str | int | float]] = [("limit", limit)]
    if before is not None:
        params.append(("before", before))
    if unread_only:
        params.append(("unread_only", "true"))
    return await get(SERVICE, upstreams.notifications, "/v1/feed", FeedPage, params, token=token)


async def mark(upstreams: Upstreams, token: str, item_id: int, read: bool) -> FeedItem:
    action = "read" if read else "unread"
    answer: FeedItem = await _call(
        upstreams, "POST", f"/v1/feed/{item_id}/{action}", token, FeedItem
    )
    return answer


async def mark_all_read(upstreams: Upstreams, token: str) -> None:
    await _call(upstreams, "POST", "/v1/feed/read-all", token)


@contextlib.asynccontextmanager
async def feed_stream(
    upstreams: Upstreams, token: str, last_event_id: str | None = None
) -> AsyncIterator[AsyncIterator[str]]:
    """Notifications' server-sent event stream of the artisan's feed, line by line.

    The read timeout is longer than notifications' keepalive, so only a dead stream times out.
    """
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    if last_event_id is not None and last_event_id.isdigit():
        headers["Last-Event-ID"] = last_event_id
    timeout = httpx.Timeout(STREAM_READ_TIMEOUT_S, connect=2.0)
    try:
        async with upstreams.notifications.stream(
            "GET", "/v1/feed/stream", headers=headers, timeout=timeout
        ) as response:
            if response.status_code != 200:
                raise UpstreamUnavailable(SERVICE, f"stream answered HTTP {response.status_code}")
            yield response.aiter_lines()
    except httpx.HTTPError as exc:
        log.info("notifications feed stream ended: %s", type(exc).__name__)
        raise UpstreamUnavailable(SERVICE, type(exc).__name__) from exc


# Alerts without an account (no token: the confirmation link is the proof) --------------------


def _confirmation(token: str) -> str:
    return f"/v1/guest-subscriptions/confirm/{segment(token)}"


async def ask_guest_alerts(upstreams: Upstreams, body: dict[str, Any]) -> None:
    """Ask for e-mail alerts with an address; notifications mails the confirmation link."""
    await request(SERVICE, upstreams.notifications, "POST", "/v1/guest-subscriptions", json=body)


async def read_guest_confirmation(upstreams: Upstreams, token: str) -> GuestPending:
    """What a confirmation link would confirm (reading changes nothing)."""
    return await get(SERVICE, upstreams.notifications, _confirmation(token), GuestPending)


async def confirm_guest_alerts(upstreams: Upstreams, token: str) -> GuestConfirmed:
    """Confirm (single use): the alerts start with the next matching vacancy."""
    answer = await request(
        SERVICE, upstreams.notifications, "POST", _confirmation(token), GuestConfirmed
    )
    if answer is None:
        raise UpstreamUnavailable(SERVICE, "empty answer")
    return answer


# Personal data (GDPR) ------------------------------------------------------------------------


async def export_me(upstreams: Upstreams, token: str) -> dict[str, Any]:
    """GET /v1/me/export: everything notifications holds about the caller, as it sent it."""
    return await document(SERVICE, upstreams.notifications, "GET", "/v1/me/export", token=token)


async def erase_me(upstreams: Upstreams, token: str) -> dict[str, Any]:
    """DELETE /v1/me: notifications erases what it holds about the caller (202, idempotent); the
    answer's ``kept`` lists what a legal duty keeps, and why."""
    return await document(SERVICE, upstreams.notifications, "DELETE", "/v1/me", token=token)


async def open_data_catalogue(upstreams: Upstreams) -> OpenDataCatalogue | None:
    """The anonymised demand file notifications publishes (public); None from a
    notifications that publishes no open data (404)."""
    try:
        return await get(SERVICE, upstreams.notifications, "/v1/open-data", OpenDataCatalogue)
    except UpstreamNotFound:
        return None
