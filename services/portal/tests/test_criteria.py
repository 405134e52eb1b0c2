"""The board's filters as a saved search's criteria and back: every filter, both ways."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from portal.criteria import NUMBER_CRITERIA, Namers, describe, from_criteria, to_criteria
from portal.filters import FEATURES, NUMBERS, SITE_KINDS, parse_filters


def same(message: str) -> str:
    return message


# The portal knows notifications through its published contract only: the committed OpenAPI
# document's CriteriaIn is what a saved search's criteria must satisfy.
CONTRACT = Path(__file__).parents[3] / "contracts" / "openapi" / "notifications.json"
_DOC = json.loads(CONTRACT.read_text(encoding="utf-8"))
CRITERIA_SCHEMA = {"$ref": "#/components/schemas/CriteriaIn", "components": _DOC["components"]}


def accepted(criteria: dict[str, Any]) -> None:
    """Raises when notifications' contract refuses these criteria."""
    jsonschema.validate(criteria, CRITERIA_SCHEMA, cls=jsonschema.Draft202012Validator)


EVERY_FILTER = [
    ("arrondissement", "19"), ("arrondissement", "11"),
    ("min_surface", "50"), ("max_surface", "200,5"), ("max_rent", "1 200"),
    ("trade", "ceramics"),
    ("site_kind", "hotel_industriel"), ("site_kind", "cite_artisanale"),
    ("feature", "goods_lift"), ("feature", "step_free_access"),
    ("min_ceiling_height_m", "4,5"), ("min_floor_load_kg_m2", "800"), ("min_power_kva", "36"),
    ("site_id", "b7e1-site"),
]  # fmt: skip

NAMES = Namers(
    number=lambda v: f"{v:g}",
    euros=lambda v: f"{v:g} €",
    arrondissement=lambda n: f"Paris {n}",
    site_kind=str,
    trade=str,
    feature=str,
)


def test_every_board_filter_becomes_its_criterion() -> None:
    filters = parse_filters(EVERY_FILTER, same)
    assert filters.valid, filters.errors
    saved = to_criteria(filters)
    assert saved.left_out == ()
    assert saved.criteria == {
        "arrondissements": [11, 19],
        "site_kinds": ["cite_artisanale", "hotel_industriel"],
        "trades": ["ceramics"],
        "features": ["goods_lift", "step_free_access"],
        "min_surface_m2": 50,
        "max_surface_m2": 200.5,
        "max_rent_eur_m2_year": 1200,
        "min_ceiling_height_m": 4.5,
        "min_floor_load_kg_m2": 800,
        "min_power_kva": 36,
        "site_ids": ["b7e1-site"],
    }
    accepted(saved.criteria)


def test_the_round_trip_gives_the_same_board_search_back() -> None:
    filters = parse_filters(EVERY_FILTER, same)
    back = from_criteria(to_criteria(filters).criteria)
    assert back.extra_trades == []
    assert sorted(back.filters.arrondissements) == sorted(filters.arrondissements)
    assert back.filters.numbers == filters.numbers
    assert back.filters.trade == filters.trade
    assert sorted(back.filters.site_kinds) == sorted(filters.site_kinds)
    assert sorted(back.filters.features) == sorted(filters.features)
    assert back.filters.site_id == filters.site_id
    # the "see on the board" link runs the same search again
    again = parse_filters([(k, v) for k, v in _pairs(back.filters.query())], same)
    assert to_criteria(again).criteria == to_criteria(filters).criteria


@pytest.mark.parametrize("bound", NUMBERS, ids=lambda b: b.name)
def test_each_number_filter_at_its_bounds_can_be_saved(bound: Any) -> None:
    for value in (bound.low, bound.high):
        filters = parse_filters([(bound.name, str(value))], same)
        assert filters.valid, filters.errors
        criteria = to_criteria(filters).criteria
        assert criteria == {NUMBER_CRITERIA[bound.name]: value}
        accepted(criteria)  # within notifications' bounds too
        assert from_criteria(criteria).filters.numbers == {bound.name: value}


@pytest.mark.parametrize("kind", SITE_KINDS)
def test_each_site_kind_round_trips(kind: str) -> None:
    criteria = to_criteria(parse_filters([("site_kind", kind)], same)).criteria
    accepted(criteria)
    assert from_criteria(criteria).filters.site_kinds == [kind]


@pytest.mark.parametrize("feature", FEATURES)
def test_each_feature_round_trips(feature: str) -> None:
    criteria = to_criteria(parse_filters([("feature", feature)], same)).criteria
    accepted(criteria)
    assert from_criteria(criteria).filters.features == [feature]


def test_a_search_on_one_site_keeps_the_site() -> None:
    saved = to_criteria(parse_filters([("site_id", "abc-123"), ("trade", "textile")], same))
    assert saved.criteria == {"trades": ["textile"], "site_ids": ["abc-123"]}
    accepted(saved.criteria)
    assert from_criteria({"site_ids": ["abc-123", "def"]}).filters.site_id == "abc-123"
    assert from_criteria({"site_ids": ["not an id!"]}).filters.site_id is None


def test_sorting_and_paging_are_not_criteria() -> None:
    saved = to_criteria(parse_filters([("sort", "-surface"), ("page", "4")], same))
    assert saved.criteria == {}
    assert describe(saved.criteria, same, NAMES) == ["Every vacancy in Paris"]


def test_criteria_made_through_the_api_are_read_tolerantly() -> None:
    back = from_criteria(
        {
            "arrondissements": [3, 99, "x"],
            "trades": ["woodwork", "metalwork", "Not A Slug"],
            "site_kinds": ["pepiniere", "castle"],
            "features": ["goods_lift", "pool"],
            "step_free_access": True,
            "max_rent_eur_m2_year": True,  # not a number
            "min_power_kva": 12,
        }
    )
    assert back.filters.arrondissements == [3]
    assert back.filters.trade == "woodwork"
    assert back.extra_trades == ["metalwork"]
    assert back.filters.site_kinds == ["pepiniere"]
    assert back.filters.features == ["goods_lift", "step_free_access"]
    assert back.filters.numbers == {"min_power_kva": 12.0}


def test_the_criteria_in_words() -> None:
    criteria = to_criteria(parse_filters(EVERY_FILTER, same)).criteria
    assert describe(criteria, same, NAMES) == [
        "On one site only (see it on the list)",
        "In: Paris 11, Paris 19",
        "From 50 to 200.5 m²",
        "Rent at most 1200 € per m² per year",
        "Trades: ceramics",
        "Kinds of site: hotel_industriel, cite_artisanale",
        "With: goods_lift, step_free_access",
        "Ceiling height at least 4.5 m",
        "Floor load at least 800 kg per m²",
        "Electrical power at least 36 kVA",
    ]
    assert describe({"min_surface_m2": 30}, same, NAMES) == ["At least 30 m²"]
    assert describe({"max_surface_m2": 90}, same, NAMES) == ["At most 90 m²"]


def _pairs(query: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl(query)


def test_the_contract_check_can_fail() -> None:
    """The bounds come from the contract: a value beyond them is refused here too."""
    for bad in ({"min_power_kva": 2_001}, {"max_surface_m2": 100_001}, {"site_id": "x"}):
        with pytest.raises(jsonschema.ValidationError):
            accepted(bad)
