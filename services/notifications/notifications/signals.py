"""In-process wake-ups: the delivery worker after a commit, and feed streams of one artisan."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.db import on_commit
from fabkit.outbox import OutboxSignal


class FeedHub:
    """Tells open feed streams that their artisan has new items (this process's commits only;
    streams also poll, so items written by another replica still arrive)."""

    def __init__(self) -> None:
        self._listeners: dict[str, set[asyncio.Event]] = defaultdict(set)

    @contextlib.contextmanager
    def listen(self, artisan_id: str) -> Iterator[asyncio.Event]:
        event = asyncio.Event()
        self._listeners[artisan_id].add(event)
        try:
            yield event
        finally:
            self._listeners[artisan_id].discard(event)
            if not self._listeners[artisan_id]:
                del self._listeners[artisan_id]

    def publish(self, artisan_ids: Iterable[str]) -> None:
        for artisan_id in artisan_ids:
            for event in self._listeners.get(artisan_id, ()):
                event.set()


@dataclass
class Signals:
    # The outbox's wake-up signal is generic: a loop-bound event set after a commit.
    deliveries: OutboxSignal = field(default_factory=OutboxSignal)
    feed: FeedHub = field(default_factory=FeedHub)

    def bind(self) -> None:
        self.deliveries.bind()

    def after_commit(
        self, session: AsyncSession, *, wake_worker: bool, feed_for: Iterable[str] = ()
    ) -> None:
        """Wake the worker and the artisans' feed streams once the transaction commits."""
        if wake_worker:
            on_commit(session, self.deliveries.notify)
        artisans = set(feed_for)
        if artisans:
            on_commit(session, lambda: self.feed.publish(artisans))
