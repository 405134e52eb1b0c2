"""The in-app feed of the calling artisan: newest first, read/unread, and a live event stream."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import StreamingResponse

from fabkit.auth import Principal
from notifications.api.deps import ArtisanOnly, SessionsDep, SignalsDep
from notifications.schemas import FeedItemOut, FeedPage, MarkedRead
from notifications.service import feed

router = APIRouter(prefix="/v1/feed", tags=["feed"])

KEEPALIVE_S = 15.0
ItemId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.get("", response_model=FeedPage, summary="Your alerts, newest first")
async def list_feed(
    sessions: SessionsDep,
    unread_only: bool = False,
    before: Annotated[
        int | None, Query(ge=1, le=2**63 - 1, description="`next_before` of the last page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size (1 to 100)")] = 20,
    principal: Principal = ArtisanOnly,
) -> FeedPage:
    return await feed.feed_page(
        sessions, principal.subject, unread_only=unread_only, before=before, limit=limit
    )


@router.post("/{item_id}/read", response_model=FeedItemOut, summary="Mark one alert read")
async def mark_feed_item_read(
    item_id: ItemId, sessions: SessionsDep, principal: Principal = ArtisanOnly
) -> FeedItemOut:
    return await feed.mark_read(sessions, principal.subject, item_id, True)


@router.post("/{item_id}/unread", response_model=FeedItemOut, summary="Mark one alert unread")
async def mark_feed_item_unread(
    item_id: ItemId, sessions: SessionsDep, principal: Principal = ArtisanOnly
) -> FeedItemOut:
    return await feed.mark_read(sessions, principal.subject, item_id, False)


@router.post("/read-all", response_model=MarkedRead, summary="Mark every alert read")
async def mark_feed_read(sessions: SessionsDep, principal: Principal = ArtisanOnly) -> MarkedRead:
    return MarkedRead(marked=await feed.mark_all_read(sessions, principal.subject))


@router.get(
    "/stream",
    summary="Server-sent events: one `alert` event per new feed item",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream_feed(
    request: Request,
    sessions: SessionsDep,
    signals: SignalsDep,
    last_event_id: Annotated[
        str | None,
        Header(alias="Last-Event-ID", description="Resume after this item id (sent on reconnect)"),
    ] = None,
    principal: Principal = ArtisanOnly,
) -> StreamingResponse:
    artisan_id = principal.subject
    if last_event_id is not None and last_event_id.isdigit():
        after = int(last_event_id)
    else:
        after = await feed.newest_id(sessions, artisan_id)
    stop: asyncio.Event = request.app.state.runtime.stop

    async def events() -> AsyncIterator[str]:
        nonlocal after
        with signals.feed.listen(artisan_id) as woken:
            yield "retry: 3000\n\n"
            while not stop.is_set() and not await request.is_disconnected():
                # Cleared before reading, so an item committed meanwhile wakes the next wait.
                woken.clear()
                for item in await feed.feed_after(sessions, artisan_id, after):
                    yield f"id: {item.id}\nevent: alert\ndata: {item.model_dump_json()}\n\n"
                    after = item.id
                waiters = [asyncio.ensure_future(woken.wait()), asyncio.ensure_future(stop.wait())]
                done, _ = await asyncio.wait(
                    waiters, timeout=KEEPALIVE_S, return_when=asyncio.FIRST_COMPLETED
                )
                for waiter in waiters:
                    waiter.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await waiter
                if not done:
                    yield ": keepalive\n\n"

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
