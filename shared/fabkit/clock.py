"""A clock tests of real processes can move: the system clock plus the shift a file holds.

Leasing (`LEASING_CLOCK_FILE`) and notifications (`NOTIFICATIONS_CLOCK_FILE`) each keep one;
their settings refuse the file in production.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path


class Clock:
    """A service's time: the system clock, shifted by a clock file when one is set (tests of
    real processes move a date past this way: a call's closing, a retention period; each
    service's settings refuse the file in production).

    The file holds an offset in seconds (``86400``: a day ahead) or an ISO instant
    (``2027-01-01T00:00:00Z``: time runs on from that instant since the file was written). A
    missing or empty file is no shift. The file is read again only when it changes (stat per
    call: a few microseconds).
    """

    def __init__(self) -> None:
        self.path: Path | None = None
        self._seen: tuple[int, int] | None = None
        self._offset = timedelta(0)

    def use(self, path: Path | None) -> None:
        """Read the time shift from `path` from now on (None: the system clock)."""
        self.path, self._seen, self._offset = path, None, timedelta(0)

    def now(self) -> datetime:
        real = datetime.now(UTC)
        if self.path is None:
            return real
        return real + self._shift()

    def _shift(self) -> timedelta:
        assert self.path is not None
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return timedelta(0)
        seen = (stat.st_mtime_ns, stat.st_size)
        if seen != self._seen:
            self._seen, self._offset = seen, _offset_of(self.path.read_text(), stat.st_mtime)
        return self._offset


def _offset_of(text: str, written_at: float) -> timedelta:
    text = text.strip()
    if not text:
        return timedelta(0)
    try:
        return timedelta(seconds=float(text))
    except ValueError:
        instant = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if instant.tzinfo is None:
            instant = instant.replace(tzinfo=UTC)
        return instant - datetime.fromtimestamp(written_at, UTC)
