"""The profile form: what the portal checks itself (in the visitor's words), the body it sends
to leasing, and leasing's refusals put beside their field."""

from __future__ import annotations

from datetime import date

import pytest
from starlette.datastructures import FormData

from portal.clients import UpstreamRefused
from portal.i18n import set_locale
from portal.pages.profile import (
    field_errors,
    parse_day,
    parse_profile_form,
    siret_problem,
    values_of,
)
from portal.schemas import Profile
from portal.sessions import SignedIn

TODAY = date(2026, 12, 1)
GOOD = [
    ("display_name", "Atelier Camille Roux"),
    ("business_name", "Roux Céramique"),
    ("siret", "732 829 320 00074"),
    ("trades", "ceramics"),
    ("trades", "glass"),
    ("business_created_on", "01/03/2024"),
    ("legal_form", "scop"),
    ("labels", "fabrique_a_paris"),
    ("contact_email", "camille.roux@example.org"),
]


@pytest.fixture(autouse=True)
def _french() -> None:
    set_locale("fr")


def form(*changes: tuple[str, str], drop: tuple[str, ...] = ()) -> FormData:
    names = {name for name, _ in changes} | set(drop)
    return FormData([(k, v) for k, v in GOOD if k not in names] + list(changes))


def test_a_whole_form_becomes_leasing_s_body() -> None:
    parsed = parse_profile_form(form(), TODAY)
    assert parsed.valid, parsed.errors
    assert parsed.body() == {
        "display_name": "Atelier Camille Roux",
        "business_name": "Roux Céramique",
        "siret": "73282932000074",
        "trades": ["ceramics", "glass"],
        "business_created_on": "2024-03-01",
        "legal_form": "scop",
        "labels": ["fabrique_a_paris"],
        "contact_email": "camille.roux@example.org",
    }


def test_an_empty_form_names_every_required_field_in_french() -> None:
    parsed = parse_profile_form(FormData([]), TODAY)
    assert set(parsed.errors) == {
        "display_name",
        "business_name",
        "siret",
        "trades",
        "business_created_on",
        "legal_form",
        "contact_email",
    }
    assert "14 chiffres" in parsed.errors["siret"]
    assert parsed.errors["trades"] == "Choisissez au moins un métier."


@pytest.mark.parametrize(
    ("typed", "fragment"),
    [
        ("7328293200007", "exactement 14 chiffres"),
        ("7328293200007a", "exactement 14 chiffres"),
        ("73282932000075", "clé de contrôle"),
    ],
)
def test_siret_problems_are_explained(typed: str, fragment: str) -> None:
    problem = siret_problem(typed)
    assert problem is not None and fragment in problem


def test_good_sirets_pass_la_poste_s_included() -> None:
    assert siret_problem("732\u00a0829\u00a0320\u00a000074") is None
    # La Poste's establishments: digits summing to a multiple of 5, not Luhn
    assert siret_problem("35600000000048") is None


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("01/03/2024", date(2024, 3, 1)),
        ("1/3/2024", date(2024, 3, 1)),
        ("2024-03-01", date(2024, 3, 1)),
        ("01.03.2024", date(2024, 3, 1)),
        ("31/02/2024", None),
        ("mars 2024", None),
        ("", None),
    ],
)
def test_dates_typed_the_french_way(typed: str, expected: date | None) -> None:
    assert parse_day(typed) == expected


def test_dates_in_the_future_or_before_1900_are_refused() -> None:
    future = parse_profile_form(form(("business_created_on", "02/12/2026")), TODAY)
    assert future.errors == {"business_created_on": "La date de création ne peut pas être future."}
    old = parse_profile_form(form(("business_created_on", "31/12/1899")), TODAY)
    assert "1900" in old.errors["business_created_on"]


def test_lengths_choices_and_email_are_checked() -> None:
    parsed = parse_profile_form(
        form(
            ("display_name", "A"),
            ("legal_form", "castle"),
            ("labels", "nobel"),
            ("contact_email", "camille.example.org"),
            ("trades", "Not A Slug"),
        ),
        TODAY,
    )
    assert set(parsed.errors) == {"display_name", "legal_form", "labels", "contact_email", "trades"}
    assert "entre 2 et 120" in parsed.errors["display_name"]


def test_what_the_person_typed_is_kept_to_show_back() -> None:
    parsed = parse_profile_form(form(("siret", "  1234  ")), TODAY)
    assert parsed.values["siret"] == "1234"
    assert parsed.values["trades"] == ["ceramics", "glass"]


def test_leasing_s_422_goes_beside_its_field_and_a_taken_siret_beside_the_siret() -> None:
    refused = UpstreamRefused(
        "leasing",
        422,
        "body.siret: Value error, this SIRET fails the Luhn check digit",
        errors=[
            {
                "field": "body.siret",
                "message": "Value error, this SIRET fails the Luhn check digit",
            },
            {"field": "body.trades.0", "message": "String should match pattern"},
            {"field": "query.x", "message": "ignored: not a field of the form"},
        ],
    )
    assert field_errors(refused) == {
        "siret": "this SIRET fails the Luhn check digit",
        "trades": "String should match pattern",
    }
    taken = field_errors(UpstreamRefused("leasing", 409, "Another artisan is registered"))
    assert set(taken) == {"siret"} and "déjà inscrit" in taken["siret"]


def user(**fields: object) -> SignedIn:
    base: dict[str, object] = {
        "sub": "s1",
        "name": "Camille Roux",
        "email": "camille@example.org",
        "email_verified": True,
        "roles": frozenset({"artisan"}),
        "access_token": "t",
        "csrf_token": "c",
    }
    return SignedIn(**{**base, **fields})  # type: ignore[arg-type]


def test_a_new_profile_starts_from_the_account_an_existing_one_from_leasing() -> None:
    fresh = values_of(None, user())
    assert fresh["display_name"] == "Camille Roux"
    assert fresh["contact_email"] == "camille@example.org"
    profile = Profile(
        id="s1",
        display_name="Atelier Roux",
        business_name="Roux Céramique",
        siret="73282932000074",
        trades=["ceramics"],
        business_created_on=date(2024, 3, 1),
        legal_form="scop",
        labels=[],
        contact_email="atelier@example.org",
        version=3,
    )
    values = values_of(profile, user())
    assert values["business_created_on"] == "01/03/2024"
    # shown back, the profile's values parse into the same body
    back = parse_profile_form(
        FormData(
            [(k, v) for k, v in values.items() if not isinstance(v, list)]
            + [("trades", t) for t in values["trades"]]
        ),
        TODAY,
    )
    assert back.valid and back.body()["business_created_on"] == "2024-03-01"
