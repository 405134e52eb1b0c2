"""The retention job's time: the system clock, shifted by NOTIFICATIONS_CLOCK_FILE when set
(tests of real processes move a rule's period past this way; refused in prod), as leasing's
`LEASING_CLOCK_FILE` does (leasing/service/common.py).

The file holds an offset in seconds (``86400``: a day ahead) or an ISO instant
(``2027-01-01T00:00:00Z``: time runs on from that instant since the file was written). A missing
or empty file is no shift. The file is read again only when it changes (one stat per call).
Only retention and its metric read this clock: deliveries, retries and tokens keep real time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path


class Clock:
    """The system clock plus the shift a clock file holds."""

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


CLOCK = Clock()


def retention_now() -> datetime:
    """The retention job's current time, aware, in UTC (shifted by the clock file when set)."""
    return CLOCK.now()
