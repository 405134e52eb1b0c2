"""The in-app feed of an artisan: pages newest first, read and unread, and what is new."""

from __future__ import annotations

from fabkit.errors import ProblemError
from notifications import repository as repo
from notifications.schemas import FeedItemOut, FeedPage
from notifications.service.common import Sessions, now

# The most items one wake-up of an event stream sends (it reads again if there are more).
STREAM_BATCH = 100


async def feed_page(
    sessions: Sessions, artisan_id: str, *, unread_only: bool, before: int | None, limit: int
) -> FeedPage:
    """A page of the feed, newest first, before the item id `before` (keyset pagination)."""
    async with sessions() as session:
        items = await repo.list_feed(
            session, artisan_id, unread_only=unread_only, before_id=before, limit=limit
        )
        unread = await repo.unread_count(session, artisan_id)
    next_before = items[-1].id if len(items) == limit else None
    return FeedPage(
        items=[FeedItemOut.of(i) for i in items], unread=unread, next_before=next_before
    )


async def newest_id(sessions: Sessions, artisan_id: str) -> int:
    """The id of the artisan's newest item (0 when the feed is empty): where a stream starts."""
    async with sessions() as session:
        newest = await repo.list_feed(
            session, artisan_id, unread_only=False, before_id=None, limit=1
        )
    return (newest[0].id or 0) if newest else 0


async def mark_read(sessions: Sessions, artisan_id: str, item_id: int, read: bool) -> FeedItemOut:
    """Mark one of the artisan's items read (or unread again)."""
    async with sessions() as session, session.begin():
        item = await repo.get_feed_item(session, item_id)
        if item is None or item.artisan_id != artisan_id:
            raise ProblemError(404, f"No feed item with id {item_id}.")
        if read and item.read_at is None:
            item.read_at = now()
        elif not read:
            item.read_at = None
    return FeedItemOut.of(item)


async def mark_all_read(sessions: Sessions, artisan_id: str) -> int:
    """Mark every unread item read; returns how many were."""
    async with sessions() as session, session.begin():
        return await repo.mark_all_read(session, artisan_id, now())


async def feed_after(sessions: Sessions, artisan_id: str, after_id: int) -> list[FeedItemOut]:
    """Items newer than `after_id`, oldest first (for the event stream)."""
    async with sessions() as session:
        items = await repo.list_feed(
            session,
            artisan_id,
            unread_only=False,
            before_id=None,
            after_id=after_id,
            limit=STREAM_BATCH,
        )
    return [FeedItemOut.of(i) for i in reversed(items)]
