"""Fixed-window rate limits kept in the portal's database, so every replica counts the same
attempts: one counter row per (limit, key, window), incremented by an upsert; the windows that
ended are deleted as new ones start.

    GUEST_ALERTS = RateLimit("guest-alert", limit=5, window_s=3600)
    retry_after = await GUEST_ALERTS.check(client_key(request))
    if retry_after is not None:
        raise RateLimited(retry_after)   # the portal answers its 429 page with Retry-After

Keys are hashed before they are stored (client addresses are personal data).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable

from fastapi import Request

from portal import repository
from portal.repository import Database


class RateLimited(Exception):
    """Over a limit: the portal answers a 429 page saying when to try again."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"rate limited, retry after {retry_after} s")
        self.retry_after = retry_after


def client_key(request: Request) -> str:
    """The client's address as the server sees it (uvicorn applies X-Forwarded-For only from
    the proxies it trusts)."""
    return request.client.host if request.client else "unknown"


class RateLimit:
    """At most ``limit`` calls of :meth:`check` per key in each window of ``window_s`` seconds."""

    def __init__(
        self,
        name: str,
        limit: int,
        window_s: float,
        *,
        database: Database | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("a rate limit needs limit >= 1 and window_s > 0")
        if not 0 < len(name) <= 60:
            raise ValueError("a rate limit's name is 1 to 60 characters")
        self.name = name
        self.limit = limit
        self.window_s = window_s
        self.database = database
        self.clock = clock

    def window(self, now: float) -> tuple[int, int]:
        """(number of the window holding ``now``, whole seconds until it ends, at least 1)."""
        number = math.floor(now / self.window_s)
        return number, max(1, math.ceil((number + 1) * self.window_s - now))

    async def check(self, key: str) -> int | None:
        """Count one call for ``key``: None when allowed, else the Retry-After in seconds."""
        db = self.database or repository.CURRENT.get()
        if db is None:
            raise RuntimeError(
                f"rate limit {self.name!r} has no database: pass database= or call it while "
                "the portal serves a request"
            )
        start, remaining = self.window(self.clock())
        hashed = hashlib.sha256(key.encode()).hexdigest()
        count = await repository.hit_window(db, self.name, hashed, start)
        return None if count <= self.limit else remaining
