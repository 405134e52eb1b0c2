"""My alert feed: the alerts, newest first, read and unread, as plain forms that work without
JavaScript; and `/me/feed/stream`, notifications' server-sent event stream relayed with the
person's token, each new alert rendered here so the page's script only inserts it."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from pydantic import ValidationError

from portal import clients
from portal.clients import notifications
from portal.i18n import gettext, ngettext
from portal.pages.deliveries import moment
from portal.pages.deps import CsrfDep, UpstreamsDep, UserDep
from portal.rendering import ENV, render
from portal.schemas import FeedItem

router = APIRouter(include_in_schema=False)
log = logging.getLogger(__name__)

PAGE_SIZE = 20
MAX_ID = 2**63 - 1


def unread_text(count: int) -> str:
    if count == 0:
        return gettext("No unread alert")
    return ngettext("%(num)s unread alert", "%(num)s unread alerts", count) % {"num": count}


def _before(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() and 1 <= int(text) <= MAX_ID else None


@router.get("/me/feed", response_class=HTMLResponse)
async def my_feed(request: Request, user: UserDep, upstreams: UpstreamsDep) -> HTMLResponse:
    before = _before(request.query_params.get("before"))
    page = await notifications.feed(upstreams, user.access_token, before=before, limit=PAGE_SIZE)
    return render(
        request,
        "feed.html",
        {
            "items": page.items,
            "unread": page.unread,
            "unread_text": unread_text(page.unread),
            "next_before": page.next_before,
            "before": before,
            "moment": moment,
        },
    )


def _back(before: object) -> RedirectResponse:
    b = _before(before if isinstance(before, str) else None)
    return RedirectResponse(f"/me/feed?before={b}" if b else "/me/feed", status_code=303)


@router.post("/me/feed/read-all")
async def read_all(user: UserDep, upstreams: UpstreamsDep, _: CsrfDep) -> Response:
    await notifications.mark_all_read(upstreams, user.access_token)
    return _back(None)


@router.post("/me/feed/{item_id}/read")
async def mark_read(
    request: Request, item_id: int, user: UserDep, upstreams: UpstreamsDep, _: CsrfDep
) -> Response:
    await notifications.mark(upstreams, user.access_token, _item(item_id), True)
    return _back((await request.form()).get("before"))


@router.post("/me/feed/{item_id}/unread")
async def mark_unread(
    request: Request, item_id: int, user: UserDep, upstreams: UpstreamsDep, _: CsrfDep
) -> Response:
    await notifications.mark(upstreams, user.access_token, _item(item_id), False)
    return _back((await request.form()).get("before"))


def _item(item_id: int) -> int:
    if not 1 <= item_id <= MAX_ID:
        raise clients.UpstreamNotFound(str(item_id))
    return item_id


def _event(name: str, data: dict[str, object], event_id: str | None = None) -> str:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


@router.get("/me/feed/stream")
async def feed_stream(
    request: Request,
    user: UserDep,
    upstreams: UpstreamsDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """Each new alert as an `alert` event (its HTML, ready to insert) followed by an `unread`
    event (the count in words); notifications' keepalives pass through as comments. The relay
    stops when the browser goes away, closing the stream to notifications with it."""
    token, csrf = user.access_token, user.csrf_token
    macro = ENV.get_template("feed_item.html").make_module().feed_item  # type: ignore[attr-defined]

    async def relay() -> AsyncIterator[str]:
        yield "retry: 5000\n\n"
        try:
            async with notifications.feed_stream(upstreams, token, last_event_id) as lines:
                event, data, seen_id = "message", "", None
                async for line in lines:
                    if await request.is_disconnected():
                        return
                    if line.startswith(":"):
                        yield ": keepalive\n\n"
                    elif line.startswith("id:"):
                        seen_id = line[3:].strip()
                    elif line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        data += line[5:].strip()
                    elif line == "":
                        if event == "alert" and data:
                            for chunk in await _alert(upstreams, token, csrf, macro, data, seen_id):
                                yield chunk
                        event, data = "message", ""
        except clients.UpstreamUnavailable:
            # The browser's EventSource reconnects after `retry`, with the last id it saw.
            yield _event("interrupted", {})

    return StreamingResponse(
        relay(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _alert(
    upstreams: clients.Upstreams,
    token: str,
    csrf: str,
    macro: object,
    data: str,
    event_id: str | None,
) -> list[str]:
    try:
        item = FeedItem.model_validate_json(data)
    except ValidationError:
        log.warning("unreadable feed event from notifications")
        return []
    html = str(macro(item, csrf, moment))  # type: ignore[operator]
    chunks = [_event("alert", {"id": item.id, "html": html}, event_id or str(item.id))]
    try:
        page = await notifications.feed(upstreams, token, limit=1)
    except (clients.UpstreamUnavailable, clients.UpstreamRefused):
        return chunks
    chunks.append(_event("unread", {"count": page.unread, "text": unread_text(page.unread)}))
    return chunks
