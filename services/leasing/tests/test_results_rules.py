"""The results rules, pure: the anonymised table, the appeal window and the jury's members."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from leasing.results import (
    DEFAULT_APPEAL_DAYS,
    DecisionFact,
    Member,
    Outcome,
    RankedLine,
    appeal_days,
    appeal_refusal,
    appeals_close_at,
    candidate_label,
    jury_problem,
    results_table,
    sitting,
)

GRID = [
    {
        "criterion_id": "young_business",
        "kind": "business_age",
        "label": "Business under 3 years",
        "points": 30,
        "max_points": 30,
        "detail": "created 2024-06-01 (Roux Céramique)",
    }
]


def line(rank: int, status: str, *decisions: DecisionFact, score: int = 30) -> RankedLine:
    return RankedLine(
        rank=rank, score=score, max_score=50, criteria=GRID, status=status, decisions=decisions
    )


def test_table_orders_by_rank_names_nobody_and_keeps_the_points() -> None:
    rows = results_table(
        [line(2, "closed", score=20), line(1, "accepted", DecisionFact("offered", None, None))],
        {},
    )
    assert [r.rank for r in rows] == [1, 2]
    assert [r.candidate for r in rows] == ["Candidate 1", "Candidate 2"]
    assert [r.outcome for r in rows] == [Outcome.LEASED, Outcome.NOT_CHOSEN]
    assert [r.score for r in rows] == [30, 20]
    assert rows[0].order_followed and rows[1].order_followed
    (criterion,) = rows[0].criteria
    assert (criterion.criterion_id, criterion.points, criterion.max_points) == (
        "young_business",
        30,
        30,
    )
    # The grid's detail restates the applicant's own facts: never in the table.
    assert "Roux" not in repr(rows) and "2024-06-01" not in repr(rows)


def test_a_departure_from_the_order_shows_its_ground_label_and_text() -> None:
    skipped = line(1, "rejected", DecisionFact("rejected", "floor_load", "Kilns too heavy."))
    chosen = line(
        2,
        "accepted",
        DecisionFact("offered", "floor_load", "The first applicant's kilns exceed the load."),
    )
    passed = line(3, "declined", DecisionFact("offered", None, None))
    rows = results_table([skipped, chosen, passed], {"floor_load": "Unit's floor load"})
    assert [r.order_followed for r in rows] == [False, False, True]
    first, second, third = rows
    assert first.departures[0].decision == "rejected"
    assert second.departures[0].ground_label == "Unit's floor load"
    assert second.departures[0].explanation == "The first applicant's kilns exceed the load."
    assert third.outcome is Outcome.OFFER_DECLINED and third.departures == ()


def test_a_ground_no_longer_published_is_shown_by_its_id() -> None:
    (row,) = results_table([line(1, "accepted", DecisionFact("offered", "gone", "x"))], {})
    assert row.departures[0].ground_label == "gone"


def test_a_system_decision_without_ground_is_no_departure() -> None:
    (row,) = results_table([line(1, "expired", DecisionFact("offer_expired", "late", None))], {})
    assert row.order_followed and row.outcome is Outcome.OFFER_EXPIRED


def test_candidate_label() -> None:
    assert candidate_label(3) == "Candidate 3"


def test_appeal_period_is_the_longest_of_the_programmes() -> None:
    assert appeal_days([30, 60, 45]) == 60
    assert appeal_days([]) == DEFAULT_APPEAL_DAYS
    published = datetime(2027, 1, 1, 12, tzinfo=UTC)
    assert appeals_close_at(published, 60) == datetime(2027, 3, 2, 12, tzinfo=UTC)


def test_appeal_window_opens_with_the_results_and_shuts_at_its_end() -> None:
    closes = datetime(2027, 3, 2, 12, tzinfo=UTC)
    assert appeal_refusal(closes, closes - timedelta(seconds=1)) is None
    refused = appeal_refusal(closes, closes)
    assert refused is not None and "ended at 2027-03-02T12:00:00+00:00" in refused
    unpublished = appeal_refusal(None, closes)
    assert unpublished is not None and "not published" in unpublished


def test_jury_rules() -> None:
    ok = [Member("Anne Hidalgo", False, None), Member("Jean Dupont", True, "Cousin of one.")]
    assert jury_problem(ok) is None
    assert [m.name for m in sitting(ok)] == ["Anne Hidalgo"]
    assert jury_problem([]) is None
    twice = jury_problem([Member("Jean Dupont", False, None), Member("jean  dupont", False, None)])
    assert twice is not None and "listed twice" in twice
    undeclared = jury_problem([Member("A B", False, None), Member("C D", True, " ")])
    assert undeclared is not None and "without saying what it is" in undeclared
    nobody = jury_problem([Member("C D", True, "Partner of an applicant.")])
    assert nobody is not None and "nobody sits" in nobody
