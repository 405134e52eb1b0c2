"""Pure rules of a call's published results: the anonymised table, the jury's sitting members
and the appeal window.

No I/O and no clock: the caller passes the ranking as it stands and the instant to judge by.
What the table shows, and why nothing in it names an applicant, is in
services/leasing/README.md ("Results and appeals").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from leasing.domain import ApplicationStatus

DEFAULT_APPEAL_DAYS = 60  # when no programme of the call says otherwise


class Outcome(StrEnum):
    """What became of one ranked application, as the results table says it."""

    LEASED = "leased"  # the offer was accepted: the lease is signed
    OFFERED = "offered"  # an offer still waits for its answer
    OFFER_DECLINED = "offer_declined"
    OFFER_EXPIRED = "offer_expired"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"  # the applicant withdrew
    NOT_CHOSEN = "not_chosen"  # the call was decided without them
    NOT_REACHED = "not_reached"  # still in the running when the call was decided


OUTCOME_OF_STATUS: dict[ApplicationStatus, Outcome] = {
    ApplicationStatus.ACCEPTED: Outcome.LEASED,
    ApplicationStatus.OFFERED: Outcome.OFFERED,
    ApplicationStatus.DECLINED: Outcome.OFFER_DECLINED,
    ApplicationStatus.EXPIRED: Outcome.OFFER_EXPIRED,
    ApplicationStatus.REJECTED: Outcome.REJECTED,
    ApplicationStatus.WITHDRAWN: Outcome.WITHDRAWN,
    ApplicationStatus.CLOSED: Outcome.NOT_CHOSEN,
    ApplicationStatus.SUBMITTED: Outcome.NOT_REACHED,
    ApplicationStatus.DRAFT: Outcome.NOT_REACHED,
}

# Decisions that depart from the ranking's order when they carry a published ground.
_DEPARTING = frozenset({"offered", "rejected"})


@dataclass(frozen=True)
class DecisionFact:
    """One recorded decision on a ranked application, as the table needs it."""

    decision: str
    ground: str | None
    explanation: str | None


@dataclass(frozen=True)
class RankedLine:
    """One line of the frozen ranking with what became of its application."""

    rank: int
    score: int
    max_score: int
    criteria: Sequence[Mapping[str, Any]]
    status: str
    decisions: Sequence[DecisionFact]


@dataclass(frozen=True)
class CriterionResult:
    criterion_id: str
    label: str
    points: int
    max_points: int


@dataclass(frozen=True)
class Departure:
    """A decision that did not follow the ranking's order, with its published ground."""

    decision: str
    ground: str
    ground_label: str
    explanation: str | None


@dataclass(frozen=True)
class ResultRow:
    candidate: str
    rank: int
    score: int
    max_score: int
    criteria: tuple[CriterionResult, ...]
    outcome: Outcome
    order_followed: bool
    departures: tuple[Departure, ...]


def candidate_label(rank: int) -> str:
    """How the table names an applicant: by rank only."""
    return f"Candidate {rank}"


def _criterion(line: Mapping[str, Any]) -> CriterionResult:
    # The grid line's `detail` is left out: it restates the applicant's own facts (the age of
    # the business, its labels), which could tell who they are.
    return CriterionResult(
        criterion_id=str(line.get("criterion_id", "")),
        label=str(line.get("label", "")),
        points=int(line.get("points", 0)),
        max_points=int(line.get("max_points", 0)),
    )


def results_table(lines: Iterable[RankedLine], ground_labels: Mapping[str, str]) -> list[ResultRow]:
    """The anonymised results table: rank, points per criterion, outcome and, wherever the
    order was not followed, the published ground (with its label) and the landlord's text."""
    rows: list[ResultRow] = []
    for line in sorted(lines, key=lambda x: x.rank):
        departures = tuple(
            Departure(
                decision=d.decision,
                ground=d.ground,
                ground_label=ground_labels.get(d.ground, d.ground),
                explanation=d.explanation,
            )
            for d in line.decisions
            if d.ground is not None and d.decision in _DEPARTING
        )
        rows.append(
            ResultRow(
                candidate=candidate_label(line.rank),
                rank=line.rank,
                score=line.score,
                max_score=line.max_score,
                criteria=tuple(_criterion(c) for c in line.criteria),
                outcome=OUTCOME_OF_STATUS.get(ApplicationStatus(line.status), Outcome.NOT_REACHED),
                order_followed=not departures,
                departures=departures,
            )
        )
    return rows


def appeal_days(periods: Iterable[int]) -> int:
    """The appeal period of a call: the longest of its applicants' programmes, so nobody's
    period is cut short (the default when none applies)."""
    return max(periods, default=DEFAULT_APPEAL_DAYS)


def appeals_close_at(published_at: datetime, days: int) -> datetime:
    """When the appeal period of results published at `published_at` ends."""
    return published_at + timedelta(days=days)


def appeal_refusal(closes_at: datetime | None, now: datetime) -> str | None:
    """Why an appeal cannot be filed at `now`, or None while the period runs."""
    if closes_at is None:
        return (
            "The results of this call are not published yet; an appeal can be filed once "
            "they are, within the programme's appeal period."
        )
    if now >= closes_at:
        return (
            f"The appeal period of this call ended at {closes_at.isoformat()}; appeals are "
            "no longer taken. Write to the city's officer for anything else."
        )
    return None


@dataclass(frozen=True)
class Member:
    """A jury member as the rules see them."""

    name: str
    conflict_of_interest: bool
    declaration: str | None


def jury_problem(members: Sequence[Member]) -> str | None:
    """What is wrong with a jury's membership, or None: a declared conflict needs its
    declaration, names are unique, and somebody must still sit once the conflicted are
    recused."""
    seen: set[str] = set()
    for m in members:
        key = " ".join(m.name.casefold().split())
        if key in seen:
            return f"{m.name!r} is listed twice; list each jury member once."
        seen.add(key)
        if m.conflict_of_interest and not (m.declaration or "").strip():
            return (
                f"{m.name!r} declares a conflict of interest without saying what it is; "
                "write the declaration (what links them to an applicant or the unit)."
            )
    if members and all(m.conflict_of_interest for m in members):
        return (
            "Every member declares a conflict of interest, so nobody sits on this call; add "
            "at least one member without a conflict."
        )
    return None


def sitting(members: Sequence[Member]) -> list[Member]:
    """The members who sit on the call: a declared conflict recuses the member."""
    return [m for m in members if not m.conflict_of_interest]
