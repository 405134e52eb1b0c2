"""The programme fields calls need: how long a call stays open, the appeal period and the
published out-of-rank grounds, with defaults so a programme that names none still has them."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from leasing.eligibility import DEFAULT_OUT_OF_RANK_GROUNDS, Programme
from leasing.programmes import load_catalogue


def body(**fields: Any) -> dict[str, Any]:
    return {
        "id": "test-programme",
        "name": "Test programme",
        "site_kinds": ["hotel_industriel"],
        "rules": {"rent_cap_eur_m2_year": 100.0, "max_residency_months": 24},
        "scoring": [{"id": "fit", "kind": "trade_match", "label": "Trade fit", "points": 10}],
        **fields,
    }


def test_a_programme_naming_none_gets_the_defaults() -> None:
    programme = Programme.model_validate(body())
    assert (programme.call_days, programme.appeal_days) == (21, 60)
    assert tuple(programme.out_of_rank_grounds) == DEFAULT_OUT_OF_RANK_GROUNDS
    assert programme.ground("jury_decision") is not None
    assert programme.ground("made-up") is None


def test_the_shipped_file_publishes_its_grounds_and_periods() -> None:
    for programme in load_catalogue().programmes:
        assert (programme.call_days, programme.appeal_days) == (21, 60)
        ids = [g.id for g in programme.out_of_rank_grounds]
        assert {"unreachable", "guarantees_missing", "technical_unfit", "jury_decision"} <= set(ids)
        assert all(g.description for g in programme.out_of_rank_grounds)


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"call_days": 0}, "call_days"),
        ({"call_days": 181}, "call_days"),
        ({"appeal_days": 0}, "appeal_days"),
        ({"out_of_rank_grounds": []}, "out_of_rank_grounds"),
        ({"out_of_rank_grounds": [{"id": "Bad Id", "label": "Bad"}]}, "out_of_rank_grounds"),
        (
            {"out_of_rank_grounds": [{"id": "a1", "label": "One"}, {"id": "a1", "label": "Two"}]},
            "share an id",
        ),
    ],
)
def test_bad_call_fields_are_refused(fields: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        Programme.model_validate(body(**fields))
