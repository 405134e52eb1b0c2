"""Pure inventory rules and API input bounds: no database, no broker."""

from __future__ import annotations

import itertools
from collections import deque
from typing import Any

import pytest
from pydantic import ValidationError

from inventory.domain import (
    INITIAL_STATUSES,
    TRANSITIONS,
    TransitionError,
    UnitStatus,
    UseClass,
    check_transition,
    postcode_matches_arrondissement,
    production_surface,
    protected_change,
    vacancy_change,
)
from inventory.schemas import SiteCreate, SitePatch, UnitCreate, UnitPatch

S = UnitStatus
A, R, L, U, W = S.AVAILABLE, S.RESERVED, S.LEASED, S.UNAVAILABLE, S.WITHDRAWN

# The life cycle written out by hand, independently of domain.TRANSITIONS, so a change to the
# rules has to be made in two places on purpose.
EXPECTED_ALLOWED: set[tuple[UnitStatus, UnitStatus]] = {
    (A, R), (A, L), (A, U), (A, W),
    (R, A), (R, L), (R, U), (R, W),
    (L, A), (L, U),
    (U, A), (U, W),
    (W, U),
}  # fmt: skip
ALL_MOVES = [(a, b) for a, b in itertools.product(S, S) if a != b]


# Status transitions --------------------------------------------------------------------------


@pytest.mark.parametrize(("current", "target"), sorted(EXPECTED_ALLOWED))
def test_allowed_transition(current: UnitStatus, target: UnitStatus) -> None:
    check_transition(current, target)


@pytest.mark.parametrize(("current", "target"), [m for m in ALL_MOVES if m not in EXPECTED_ALLOWED])
def test_refused_transition(current: UnitStatus, target: UnitStatus) -> None:
    with pytest.raises(TransitionError, match=f"from '{current}' to '{target}'"):
        check_transition(current, target)


def test_rules_table_matches_the_written_life_cycle() -> None:
    from_rules = {(a, b) for a, targets in TRANSITIONS.items() for b in targets}

    assert from_rules == EXPECTED_ALLOWED
    assert set(TRANSITIONS) == set(S), "every status needs an entry"
    assert all(a not in TRANSITIONS[a] for a in S), "self-loops are implicit, not listed"


@pytest.mark.parametrize("status", list(S))
def test_staying_in_the_same_status_is_always_allowed(status: UnitStatus) -> None:
    check_transition(status, status)


def test_leased_unit_cannot_be_withdrawn() -> None:
    with pytest.raises(TransitionError) as caught:
        check_transition(S.LEASED, S.WITHDRAWN)

    message = str(caught.value)
    assert "'leased' to 'withdrawn'" in message
    assert message.endswith("it can go to: available, unavailable.")


def test_hand_picked_cases() -> None:
    check_transition(S.WITHDRAWN, S.UNAVAILABLE)  # a withdrawn unit comes back through works
    check_transition(S.LEASED, S.AVAILABLE)  # the lease ended
    check_transition(S.RESERVED, S.LEASED)
    for refused in [(W, A), (W, L), (W, R), (U, L), (U, R), (L, R)]:
        with pytest.raises(TransitionError):
            check_transition(*refused)


def test_every_status_can_get_back_on_the_market() -> None:
    # No dead end: from any status a unit can become available again, in a few steps.
    for start in S:
        seen, queue = {start}, deque([start])
        while queue:
            for nxt in TRANSITIONS[queue.popleft()]:
                if nxt not in seen:
                    seen.add(nxt)
                    queue.append(nxt)
        assert S.AVAILABLE in seen, f"{start} is a dead end"


def test_a_new_unit_starts_available_or_unavailable() -> None:
    assert set(INITIAL_STATUSES) == {S.AVAILABLE, S.UNAVAILABLE}


# Vacancies ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (None, A, "opened"),
        (None, U, None),
        (U, A, "opened"),
        (L, A, "opened"),
        (R, A, "opened"),
        (A, R, "closed"),
        (A, L, "closed"),
        (A, U, "closed"),
        (A, W, "closed"),
        (A, A, None),
        (R, L, None),
        (L, U, None),
        (U, W, None),
        (W, U, None),
    ],
)
def test_vacancy_change(before: UnitStatus | None, after: UnitStatus, expected: str | None) -> None:
    assert vacancy_change(before, after) == expected


# Production surface ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("use", "m2", "status", "expected"),
    [
        (UseClass.PRODUCTION, 120, A, 120.0),
        (UseClass.PRODUCTION, 84.5, L, 84.5),
        (UseClass.PRODUCTION, 84.5, R, 84.5),
        (UseClass.PRODUCTION, 84.5, U, 84.5),  # under works still counts: it is not lost
        (UseClass.PRODUCTION, 84.5, W, 0.0),
        (UseClass.OTHER, 300, A, 0.0),
        (UseClass.OTHER, 300, W, 0.0),
    ],
)
def test_production_surface(use: UseClass, m2: float, status: UnitStatus, expected: float) -> None:
    result = production_surface(use, m2, status)

    assert result == expected
    assert isinstance(result, float)


def _protected(**overrides: Any) -> str | None:
    change: dict[str, Any] = {
        "before_use": UseClass.PRODUCTION,
        "after_use": UseClass.PRODUCTION,
        "before_surface": 100.0,
        "after_surface": 100.0,
        "before_status": S.AVAILABLE,
        "after_status": S.AVAILABLE,
    }
    change.update(overrides)
    return protected_change(**change)


def test_use_change_of_a_production_unit_is_protected() -> None:
    assert _protected(after_use=UseClass.OTHER) == "turning a production unit into another use"


def test_shrinking_a_production_unit_is_protected() -> None:
    assert _protected(after_surface=99.5) == "shrinking a production unit"


@pytest.mark.parametrize("before", [A, R, U])
def test_withdrawing_a_production_unit_is_protected(before: UnitStatus) -> None:
    assert _protected(before_status=before, after_status=W) == "withdrawing a production unit"


def test_use_change_is_reported_before_shrinking() -> None:
    why = _protected(after_use=UseClass.OTHER, after_surface=10.0, after_status=W)

    assert why == "turning a production unit into another use"


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({}, id="nothing-changes"),
        pytest.param({"after_surface": 150.0}, id="growing"),
        pytest.param({"after_status": L}, id="letting"),
        pytest.param({"after_status": U}, id="works"),
        pytest.param({"before_status": W, "after_status": U}, id="restoring"),
        pytest.param({"before_status": W, "after_status": W}, id="staying-withdrawn"),
        pytest.param(
            {"before_use": UseClass.OTHER, "after_use": UseClass.PRODUCTION}, id="becoming-prod"
        ),
        pytest.param(
            {"before_use": UseClass.OTHER, "after_use": UseClass.OTHER, "after_surface": 5.0},
            id="shrinking-non-production",
        ),
        pytest.param(
            {"before_use": UseClass.OTHER, "after_use": UseClass.OTHER, "after_status": W},
            id="withdrawing-non-production",
        ),
    ],
)
def test_changes_that_keep_production_surface_are_not_protected(
    overrides: dict[str, Any],
) -> None:
    assert _protected(**overrides) is None


# Postcodes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("arrondissement", range(1, 21))
def test_each_arrondissement_has_its_postcode(arrondissement: int) -> None:
    postcode = f"750{arrondissement:02d}"

    assert postcode_matches_arrondissement(postcode, arrondissement)
    others = [a for a in range(1, 21) if a != arrondissement]
    assert not any(postcode_matches_arrondissement(postcode, a) for a in others)


def test_75116_is_the_sixteenth() -> None:
    assert postcode_matches_arrondissement("75116", 16)
    assert postcode_matches_arrondissement("75016", 16)
    assert not postcode_matches_arrondissement("75116", 1)
    assert not postcode_matches_arrondissement("75116", 11)


@pytest.mark.parametrize("postcode", ["75021", "75000", "75100", "93100", "7501", "750013"])
def test_postcodes_outside_paris_match_no_arrondissement(postcode: str) -> None:
    assert not any(postcode_matches_arrondissement(postcode, a) for a in range(1, 21))


def test_arrondissement_21_is_refused_by_the_rule_itself() -> None:
    assert not postcode_matches_arrondissement("75021", 21)


# API input bounds ----------------------------------------------------------------------------

GOOD_SITE: dict[str, Any] = {
    "name": "Hôtel industriel Berlier",
    "kind": "hotel_industriel",
    "address": "26 rue Bruneseau",
    "postcode": "75013",
    "arrondissement": 13,
}
GOOD_UNIT: dict[str, Any] = {
    "reference": "B-204",
    "floor": 2,
    "surface_m2": 84.5,
    "ceiling_height_m": 4.2,
    "floor_load_kg_m2": 800,
    "power_kva": 36,
    "allowed_trades": ["woodwork", "ceramics"],
    "rent_eur_m2_year": 180,
    "charges_eur_m2_year": 25,
    "status": "available",
    "available_from": "2025-09-01",
}


def test_good_site_is_accepted() -> None:
    site = SiteCreate.model_validate({**GOOD_SITE, "name": "  Berlier  "})

    assert site.postcode == "75013"
    assert site.name == "Berlier"


@pytest.mark.parametrize(
    ("postcode", "arrondissement"), [("75116", 16), ("75016", 16), ("75001", 1), ("75020", 20)]
)
def test_site_postcodes_accepted(postcode: str, arrondissement: int) -> None:
    SiteCreate.model_validate({**GOOD_SITE, "postcode": postcode, "arrondissement": arrondissement})


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"arrondissement": 21}, "arrondissement"),
        ({"arrondissement": 0}, "arrondissement"),
        ({"postcode": "75021", "arrondissement": 20}, "postcode"),
        ({"postcode": "75000"}, "postcode"),
        ({"postcode": "93100"}, "postcode"),
        ({"postcode": "75013", "arrondissement": 12}, "not in arrondissement 12"),
        ({"postcode": "75116", "arrondissement": 6}, "not in arrondissement 6"),
        ({"latitude": 48.83}, "both latitude and longitude"),
        ({"latitude": 45.76, "longitude": 4.83}, "latitude"),
        ({"kind": "warehouse"}, "kind"),
        ({"name": "x"}, "name"),
        ({"owner": "me"}, "owner"),
    ],
)
def test_bad_site_is_refused(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        SiteCreate.model_validate({**GOOD_SITE, **overrides})


def test_site_patch_refuses_unknown_fields_and_bad_postcodes() -> None:
    assert SitePatch.model_validate({}).model_dump(exclude_unset=True) == {}
    with pytest.raises(ValidationError, match="landlord_id"):
        SitePatch.model_validate({"landlord_id": "someone-else"})
    with pytest.raises(ValidationError, match="postcode"):
        SitePatch.model_validate({"postcode": "75021"})


def test_good_unit_is_accepted() -> None:
    unit = UnitCreate.model_validate(GOOD_UNIT)

    assert unit.status is S.AVAILABLE
    assert unit.use_class is UseClass.PRODUCTION
    assert unit.allowed_trades == ["ceramics", "woodwork"]  # stored sorted


def test_unit_defaults_to_unavailable_production() -> None:
    unit = UnitCreate.model_validate({"reference": "A1", "surface_m2": 20, "rent_eur_m2_year": 0})

    assert unit.status is S.UNAVAILABLE
    assert unit.use_class is UseClass.PRODUCTION
    assert unit.allowed_trades == []


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"surface_m2": -12}, "surface_m2"),
        ({"surface_m2": 0}, "surface_m2"),
        ({"surface_m2": 10_001}, "surface_m2"),
        ({"surface_m2": float("nan")}, "surface_m2"),
        ({"ceiling_height_m": 40}, "ceiling_height_m"),
        ({"ceiling_height_m": 1.5}, "ceiling_height_m"),
        ({"floor_load_kg_m2": 50}, "floor_load_kg_m2"),
        ({"power_kva": -1}, "power_kva"),
        ({"rent_eur_m2_year": -5}, "rent_eur_m2_year"),
        ({"rent_eur_m2_year": 1_501}, "rent_eur_m2_year"),
        ({"charges_eur_m2_year": 301}, "charges_eur_m2_year"),
        ({"floor": 41}, "floor"),
        ({"floor": -4}, "floor"),
        ({"reference": ""}, "reference"),
        ({"reference": "-B2"}, "reference"),
        ({"allowed_trades": ["woodwork", "woodwork"]}, "must not repeat a trade"),
        ({"allowed_trades": ["Wood Work"]}, "allowed_trades"),
        ({"allowed_trades": ["3d_printing"]}, "allowed_trades"),
        ({"allowed_trades": ["x"]}, "allowed_trades"),
        ({"allowed_trades": [f"trade_{i}" for i in range(31)]}, "allowed_trades"),
        ({"available_from": "1999-12-31"}, "available_from"),
        ({"status": "leased"}, "starts as 'available' or 'unavailable'"),
        ({"status": "reserved"}, "starts as 'available' or 'unavailable'"),
        ({"status": "withdrawn"}, "starts as 'available' or 'unavailable'"),
        ({"status": "let"}, "status"),
        ({"use_class": "office"}, "use_class"),
        ({"landlord_id": "me"}, "landlord_id"),
        ({"vacancy_id": "v-1"}, "vacancy_id"),
    ],
)
def test_bad_unit_is_refused(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        UnitCreate.model_validate({**GOOD_UNIT, **overrides})


@pytest.mark.parametrize(
    "overrides",
    [
        {"ceiling_height_m": 12},
        {"ceiling_height_m": 2},
        {"surface_m2": 10_000},
        {"floor": -3},
        {"floor": 40},
        {"status": "unavailable"},
        {"allowed_trades": ["metal_work", "leather"]},
        {"use_class": "other"},
    ],
)
def test_unit_bounds_are_inclusive_where_documented(overrides: dict[str, Any]) -> None:
    UnitCreate.model_validate({**GOOD_UNIT, **overrides})


def test_unit_patch_may_set_any_status_but_keeps_the_bounds() -> None:
    # A patch names the target status; whether the move is allowed is the domain's decision.
    assert UnitPatch.model_validate({"status": "leased"}).status is S.LEASED
    with pytest.raises(ValidationError, match="surface_m2"):
        UnitPatch.model_validate({"surface_m2": -1})
    with pytest.raises(ValidationError, match="must not repeat a trade"):
        UnitPatch.model_validate({"allowed_trades": ["textile", "textile"]})
    with pytest.raises(ValidationError, match="landlord_id"):
        UnitPatch.model_validate({"landlord_id": "someone-else"})
