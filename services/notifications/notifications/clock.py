"""The retention job's time: the system clock, shifted by NOTIFICATIONS_CLOCK_FILE when set
(tests of real processes move a rule's period past this way; refused in prod), as leasing's
`LEASING_CLOCK_FILE` does (leasing/service/common.py).

The file holds an offset in seconds (``86400``: a day ahead) or an ISO instant
(``2027-01-01T00:00:00Z``: time runs on from that instant since the file was written). A missing
or empty file is no shift. The file is read again only when it changes (one stat per call).
Only retention and its metric, and workshop visits (what is upcoming, when reminders go), read
this clock: deliveries, retries and tokens keep real time.
"""

from __future__ import annotations

from datetime import datetime

from fabkit.clock import Clock

CLOCK = Clock()


def retention_now() -> datetime:
    """The retention job's current time, aware, in UTC (shifted by the clock file when set)."""
    return CLOCK.now()


def visits_now() -> datetime:
    """Workshop visits' current time (the same shifted clock): upcoming slots, reminders."""
    return CLOCK.now()
