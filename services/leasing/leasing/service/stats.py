"""Letting statistics for city officers: vacancies open now and how long vacancies take to let,
by arrondissement and by site kind (read-only)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta

from fabkit.errors import ProblemError
from leasing import repository as repo
from leasing.schemas import LettingFigures, LettingStats
from leasing.service.common import Sessions, utcnow

#: The longest period one request may cover (the whole history of a city programme).
MAX_PERIOD_DAYS = 3660
DEFAULT_PERIOD_DAYS = 365
DAY_S = 86_400.0


class _Tally:
    """What one group (an arrondissement, a site kind, the city) adds up."""

    def __init__(self) -> None:
        self.open_ages: list[float] = []
        self.open_unknown = 0
        self.lets = 0
        self.waits: list[float] = []

    def figures(self, key: str) -> LettingFigures:
        return LettingFigures(
            key=key,
            open_vacancies=len(self.open_ages) + self.open_unknown,
            open_days_median=_days(statistics.median(self.open_ages)) if self.open_ages else None,
            lets=self.lets,
            timed_lets=len(self.waits),
            days_to_let_median=_days(statistics.median(self.waits)) if self.waits else None,
            days_to_let_mean=_days(statistics.fmean(self.waits)) if self.waits else None,
        )


def _days(seconds: float) -> float:
    return round(max(seconds, 0.0) / DAY_S, 1)


def _aware(moment: datetime) -> datetime:
    # SQLite gives back naive datetimes; leasing stores UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def period(since: date | None, until: date | None, today: date) -> tuple[date, date]:
    """The period asked for, by default the last 365 days to today; a 422 when it is upside
    down or longer than ten years."""
    until = until or today
    since = since or (until - timedelta(days=DEFAULT_PERIOD_DAYS - 1))
    if since > until:
        raise ProblemError(
            422,
            f"The period starts ({since.isoformat()}) after it ends ({until.isoformat()}); "
            "give a since date on or before the until date.",
        )
    if (until - since).days + 1 > MAX_PERIOD_DAYS:
        raise ProblemError(
            422,
            f"The period covers {(until - since).days + 1} days, more than the "
            f"{MAX_PERIOD_DAYS} one request may cover; ask for a shorter period.",
        )
    return since, until


async def letting_stats(sessions: Sessions, since: date | None, until: date | None) -> LettingStats:
    """Open vacancies now; lets signed in the period and the days from each vacancy's opening
    to its lease, by arrondissement and site kind."""
    now = utcnow()
    since, until = period(since, until, now.date())
    start = datetime.combine(since, time.min, tzinfo=UTC)
    end = datetime.combine(until + timedelta(days=1), time.min, tzinfo=UTC)
    async with sessions() as session:
        vacancies = await repo.open_vacancies(session)
        lets = await repo.signed_leases(session, start, end)
        openings = await repo.vacancy_openings(session, {v for v, _, _, _ in lets})
    city: _Tally = _Tally()
    by_arrondissement: defaultdict[int, _Tally] = defaultdict(_Tally)
    by_kind: defaultdict[str, _Tally] = defaultdict(_Tally)

    def groups(arrondissement: int, kind: str) -> Iterable[_Tally]:
        return (city, by_arrondissement[arrondissement], by_kind[kind])

    for arrondissement, kind, opened_at in vacancies:
        for tally in groups(arrondissement, kind):
            if opened_at is None:
                tally.open_unknown += 1
            else:
                tally.open_ages.append((now - _aware(opened_at)).total_seconds())
    for vacancy_id, arrondissement, kind, signed_at in lets:
        opened_at = openings.get(vacancy_id)
        for tally in groups(arrondissement, kind):
            tally.lets += 1
            if opened_at is not None:
                tally.waits.append((_aware(signed_at) - _aware(opened_at)).total_seconds())
    return LettingStats(
        since=since,
        until=until,
        as_of=now,
        total=city.figures("all"),
        by_arrondissement=[by_arrondissement[a].figures(str(a)) for a in sorted(by_arrondissement)],
        by_site_kind=[by_kind[k].figures(k) for k in sorted(by_kind)],
    )
