"""The rule language, pure: eligibility, scoring, calendar arithmetic, caps, SIRET checks and
the shipped programme catalogue."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from leasing.domain import (
    ApplicationStatus,
    Decision,
    TransitionError,
    check_decision,
    luhn_valid,
    siret_problem,
)
from leasing.eligibility import (
    Applicant,
    Catalogue,
    Criterion,
    Programme,
    UnitFacts,
    add_months,
    best_programme,
    failed_rules,
    full_months,
    full_years,
    latest_end_date,
    monthly_rent_cap_eur,
    programmes_for,
    score,
    trades_match,
)
from leasing.programmes import ProgrammeConfigError, content_hash, load_catalogue

ON = date(2026, 6, 15)
CATALOGUE = load_catalogue()
INCUBATOR = CATALOGUE.get("ateliers-de-paris-incubator")
HOTELS = CATALOGUE.get("hotels-industriels-jeunes-artisans")
ESS = CATALOGUE.get("economie-sociale-et-solidaire")
assert INCUBATOR and HOTELS and ESS


def applicant(**overrides: object) -> Applicant:
    values: dict[str, object] = {
        "legal_form": "micro_entreprise",
        "trades": frozenset({"ceramics"}),
        "labels": frozenset(),
        "business_created_on": date(2025, 9, 1),
        "registered_on": ON,
        **overrides,
    }
    return Applicant(**values)  # type: ignore[arg-type]


def unit(site_kind: str = "ateliers_de_paris", trades: set[str] | None = None) -> UnitFacts:
    return UnitFacts(site_kind=site_kind, allowed_trades=frozenset(trades or {"ceramics"}))


# Calendar arithmetic ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "on", "years"),
    [
        (date(2023, 6, 15), date(2026, 6, 15), 3),
        (date(2023, 6, 16), date(2026, 6, 15), 2),
        (date(2024, 2, 29), date(2025, 2, 28), 0),
        (date(2024, 2, 29), date(2025, 3, 1), 1),
        (date(2027, 1, 1), date(2026, 1, 1), 0),
    ],
)
def test_full_years(start: date, on: date, years: int) -> None:
    assert full_years(start, on) == years


@pytest.mark.parametrize(
    ("start", "on", "months"),
    [
        (date(2026, 1, 31), date(2026, 2, 28), 0),
        (date(2026, 1, 31), date(2026, 3, 31), 2),
        (date(2026, 1, 15), date(2026, 1, 14), 0),
        (date(2025, 6, 15), date(2026, 6, 15), 12),
    ],
)
def test_full_months(start: date, on: date, months: int) -> None:
    assert full_months(start, on) == months


def test_add_months_clamps_to_the_end_of_a_short_month() -> None:
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2027, 11, 30), 3) == date(2028, 2, 29)
    assert add_months(date(2026, 3, 15), 12) == date(2027, 3, 15)


# Eligibility --------------------------------------------------------------------------------


def test_a_young_ceramist_is_eligible_for_the_incubator() -> None:
    assert failed_rules(INCUBATOR, applicant(), unit(), ON) == []


def test_every_failed_rule_is_listed_with_what_it_requires() -> None:
    old_company_wrong_trade = applicant(
        business_created_on=date(2019, 1, 1), trades=frozenset({"leather"})
    )
    failures = failed_rules(INCUBATOR, old_company_wrong_trade, unit("hotel_industriel"), ON)

    assert [f.rule for f in failures] == [
        "site_kinds",
        "max_business_age_years",
        "requires_trade_match",
    ]
    age = failures[1]
    assert (age.required, age.actual) == (3, 7)
    assert "less than 3 years old" in age.message
    assert failures[2].required == ["ceramics"]
    assert failures[2].actual == ["leather"]


def test_business_age_limit_is_strictly_less_than_n_full_years() -> None:
    three_today = applicant(business_created_on=date(2023, 6, 15))
    three_tomorrow = applicant(business_created_on=date(2023, 6, 16))

    assert [f.rule for f in failed_rules(INCUBATOR, three_today, unit(), ON)] == [
        "max_business_age_years"
    ]
    assert failed_rules(INCUBATOR, three_tomorrow, unit(), ON) == []


def test_legal_forms_and_ess_programme() -> None:
    scop = applicant(legal_form="scop", business_created_on=date(2001, 1, 1))
    sarl = applicant(legal_form="sarl")

    assert failed_rules(ESS, scop, unit("cite_artisanale", {"leather"}), ON) == []
    (failure,) = failed_rules(ESS, sarl, unit("cite_artisanale"), ON)
    assert failure.rule == "allowed_legal_forms"
    assert failure.actual == "sarl"
    assert "scop" in failure.required


def test_a_unit_without_allowed_trades_welcomes_every_trade() -> None:
    assert trades_match({"leather"}, set())
    assert not trades_match({"leather"}, {"ceramics"})
    assert trades_match({"leather", "ceramics"}, {"ceramics"})
    open_unit = UnitFacts(site_kind="pepiniere", allowed_trades=frozenset())
    assert failed_rules(INCUBATOR, applicant(trades=frozenset({"glass"})), open_unit, ON) == []


def test_programmes_for_a_unit_follow_site_kinds_in_configuration_order() -> None:
    ids = [p.id for p in programmes_for(CATALOGUE.programmes, "ateliers_de_paris")]
    assert ids == ["ateliers-de-paris-incubator", "economie-sociale-et-solidaire"]
    ids = [p.id for p in programmes_for(CATALOGUE.programmes, "cite_artisanale")]
    assert ids == ["economie-sociale-et-solidaire"]


def test_best_programme_is_the_first_eligible_one_else_every_failure() -> None:
    programmes = programmes_for(CATALOGUE.programmes, "ateliers_de_paris")
    old_scop = applicant(legal_form="scop", business_created_on=date(2010, 1, 1))
    old_sarl = applicant(legal_form="sarl", business_created_on=date(2010, 1, 1))

    chosen, failures = best_programme(programmes, old_scop, unit(), ON)
    assert chosen is ESS and failures == []
    chosen, failures = best_programme(programmes, old_sarl, unit(), ON)
    assert chosen is None
    assert [(f.programme_id, f.rule) for f in failures] == [
        ("ateliers-de-paris-incubator", "max_business_age_years"),
        ("economie-sociale-et-solidaire", "allowed_legal_forms"),
    ]


# Scoring ---------------------------------------------------------------------------------------


def test_scoring_shows_each_criterion() -> None:
    artisan = applicant(
        legal_form="scic",
        labels=frozenset({"fabrique_a_paris"}),
        business_created_on=date(2026, 1, 10),
        registered_on=date(2025, 12, 20),
    )
    result = score(INCUBATOR, artisan, unit(), ON)

    points = {c.criterion_id: c.points for c in result.criteria}
    assert points == {
        "young_business": 30,
        "fabrique_a_paris": 20,
        "social_economy": 15,
        "trade_fit": 15,
        "waiting_time": 10,  # 5 full months x 2
    }
    assert result.total == 90
    assert result.max_total == 100
    assert all(c.detail for c in result.criteria)


def test_waiting_time_is_capped_and_nothing_is_earned_without_the_facts() -> None:
    artisan = applicant(
        business_created_on=date(2024, 1, 1),
        trades=frozenset({"leather"}),
        registered_on=date(2020, 1, 1),
    )
    result = score(INCUBATOR, artisan, unit(), ON)

    points = {c.criterion_id: c.points for c in result.criteria}
    assert points == {
        "young_business": 0,
        "fabrique_a_paris": 0,
        "social_economy": 0,
        "trade_fit": 0,
        "waiting_time": 20,
    }


def test_every_shipped_grid_awards_at_most_100_points() -> None:
    assert [p.max_points for p in CATALOGUE.programmes] == [100, 100, 100]


# Rent caps and residency -----------------------------------------------------------------------


def test_monthly_rent_cap_is_cap_times_surface_over_twelve_to_the_cent() -> None:
    assert monthly_rent_cap_eur(HOTELS.rules, 100) == Decimal("1500.00")
    assert monthly_rent_cap_eur(INCUBATOR.rules, 33.3) == Decimal("333.00")
    assert monthly_rent_cap_eur(ESS.rules, 41.25) == Decimal("515.63")  # 515.625 half-up


def test_latest_end_date_follows_the_residency_limit() -> None:
    assert latest_end_date(INCUBATOR.rules, date(2026, 8, 31)) == date(2027, 8, 31)
    assert latest_end_date(HOTELS.rules, date(2026, 1, 31)) == date(2029, 1, 31)


# Configuration ---------------------------------------------------------------------------------


def _programme(**overrides: object) -> dict[str, object]:
    return {
        "id": "test-programme",
        "name": "Test programme",
        "site_kinds": ["pepiniere"],
        "rules": {"rent_cap_eur_m2_year": 100, "max_residency_months": 12},
        "scoring": [{"id": "fit", "kind": "trade_match", "label": "Trade fit", "points": 10}],
        **overrides,
    }


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ({"site_kinds": ["castle"]}, "unknown site kinds"),
        (
            {"scoring": [{"id": "aa", "kind": "label", "label": "Label", "points": 10}]},
            "needs labels",
        ),
        (
            {
                "scoring": [
                    {
                        "id": "aa",
                        "kind": "trade_match",
                        "label": "Fit",
                        "points": 10,
                        "under_years": 2,
                    }
                ]
            },
            "does not take under_years",
        ),
        (
            {
                "scoring": [
                    {"id": "aa", "kind": "trade_match", "label": "Fit", "points": 60},
                    {"id": "bb", "kind": "trade_match", "label": "Fit again", "points": 60},
                ]
            },
            "up to 120 points",
        ),
        ({"rules": {"rent_cap_eur_m2_year": 0, "max_residency_months": 12}}, "rent_cap"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_programmes_are_refused(override: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        Programme.model_validate(_programme(**override))


def test_catalogue_files_toml_or_json_and_their_hash(tmp_path: Path) -> None:
    as_json = tmp_path / "programmes.json"
    as_json.write_text(json.dumps({"programmes": [_programme()]}))
    catalogue = load_catalogue(as_json)

    assert [p.id for p in catalogue.programmes] == ["test-programme"]
    assert content_hash(catalogue) == content_hash(Catalogue.model_validate(catalogue.model_dump()))
    assert content_hash(catalogue) != content_hash(CATALOGUE)
    duplicate = tmp_path / "twice.json"
    duplicate.write_text(json.dumps({"programmes": [_programme(), _programme()]}))
    with pytest.raises(ProgrammeConfigError, match="share an id"):
        load_catalogue(duplicate)
    with pytest.raises(ProgrammeConfigError, match=r"missing\.toml"):
        load_catalogue(tmp_path / "missing.toml")


def test_criterion_models_round_trip() -> None:
    criterion = Criterion(id="label", kind="label", label="Label", points=5, labels=["esus"])  # type: ignore[arg-type,list-item]
    assert Criterion.model_validate(criterion.model_dump()) == criterion


# SIRET and life cycles ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("siret", "problem"),
    [
        ("73282932000074", None),  # a real, published SIRET
        ("73282932000075", "Luhn"),
        ("7328293200007", "14 digits"),
        ("7328293200007A", "14 digits"),
        ("35600000000048", None),  # La Poste's head office: passes the Luhn check
        ("35600000012355", None),  # another La Poste establishment: digits sum to 30
        ("35600000012356", "La Poste"),
    ],
)
def test_siret_checks(siret: str, problem: str | None) -> None:
    found = siret_problem(siret)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_luhn() -> None:
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")


def test_application_decisions_follow_the_life_cycle() -> None:
    submitted = ApplicationStatus.SUBMITTED
    assert check_decision(submitted, Decision.OFFERED) is ApplicationStatus.OFFERED
    assert check_decision(ApplicationStatus.OFFERED, Decision.OFFER_ACCEPTED) is (
        ApplicationStatus.ACCEPTED
    )
    assert check_decision(submitted, Decision.CLOSED) is ApplicationStatus.CLOSED
    with pytest.raises(TransitionError, match="cannot be offer accepted"):
        check_decision(submitted, Decision.OFFER_ACCEPTED)
    with pytest.raises(TransitionError):
        check_decision(ApplicationStatus.WITHDRAWN, Decision.WITHDRAWN)
