"""The landlord's unit and site forms (pure): inventory's bounds checked before sending, the
body sent, a stale form's differences, and each problem worded in French and English."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

from starlette.datastructures import FormData

from portal import landlord_forms as forms
from portal.i18n import set_locale

GOOD = {
    "reference": "B101",
    "floor": "1",
    "surface_m2": "95,5",
    "ceiling_height_m": "",
    "floor_load_kg_m2": "800",
    "power_kva": "",
    "allowed_trades": "woodwork, Ceramics",
    "use_class": "production",
    "rent_eur_m2_year": "120",
    "charges_eur_m2_year": "",
    "status": "available",
    "available_from": "2027-01-15",
}


def form(**changes: str) -> FormData:
    fields = {**GOOD, **changes}
    return FormData([*fields.items(), ("features", "goods_lift"), ("features", "bogus")])


def test_a_good_unit_form_is_the_body_inventory_takes() -> None:
    created = forms.read_unit_form(form(), creating=True)
    assert created.errors == {}
    assert created.body == {
        "reference": "B101",
        "floor": 1,
        "surface_m2": 95.5,
        "floor_load_kg_m2": 800.0,
        "rent_eur_m2_year": 120.0,
        "allowed_trades": ["woodwork", "ceramics"],
        "use_class": "production",
        "status": "available",
        "available_from": "2027-01-15",
        "goods_lift": True,
        "loading_dock": False,
        "extraction": False,
        "step_free_access": False,
    }
    # A change clears an emptied measurement (null) but never sends null for a required one.
    changed = forms.read_unit_form(form(), creating=False)
    assert changed.body["ceiling_height_m"] is None and changed.body["power_kva"] is None
    assert "charges_eur_m2_year" not in changed.body


def test_each_bad_value_is_named_beside_its_field_in_french_and_english() -> None:
    set_locale("fr")
    bad = forms.read_unit_form(
        form(surface_m2="0", floor="1.5", rent_eur_m2_year="cher", reference="#1",
             allowed_trades="wood work, wood", status="leased", available_from="15/01/2027"),
        creating=True,
    )  # fmt: skip
    assert bad.errors == {
        "surface_m2": "Écrivez un nombre supérieur à 0 et d’au plus 10\u202f000.",
        "floor": "Écrivez un nombre entier, par exemple 2.",
        "rent_eur_m2_year": "Écrivez un nombre, par exemple 210 ou 4,5.",
        "reference": "Écrivez au plus 60 lettres, chiffres, espaces ou signes . _ / -, en "
        "commençant par une lettre ou un chiffre.",
        "allowed_trades": "Citez chaque métier une seule fois.",
        "status": "Un nouveau lot est d’abord disponible ou indisponible.",
        "available_from": "Écrivez une date au format AAAA-MM-JJ entre 2000 et 2100, par "
        "exemple 2027-01-15.",
    }
    set_locale("en")
    assert forms.message("ceiling_height_m", "less_than_equal", {"le": 12}) == (
        "Write a number from 2 to 12."
    )
    assert forms.message("reference", "reference_taken").startswith("This site already has")
    assert forms.message(None, "too_many_cells", {"cells": 5, "columns": 4}).startswith(
        "This row has 5 cells but the header row names 4 columns"
    )
    set_locale("fr")


def test_a_stale_form_shows_the_current_value_of_each_field_that_differs() -> None:
    set_locale("fr")
    unit = SimpleNamespace(
        reference="B101", allowed_trades=["woodwork"], use_class="production", status="leased",
        available_from=date(2027, 1, 15), floor=2, surface_m2=95.5, ceiling_height_m=None,
        floor_load_kg_m2=800.0, power_kva=None, rent_eur_m2_year=120.0,
        charges_eur_m2_year=0.0, goods_lift=True, loading_dock=False, extraction=False,
        step_free_access=False,
    )  # fmt: skip
    mine = forms.UnitForm.of(unit)
    mine.values["rent_eur_m2_year"] = "130"
    mine.values["status"] = "available"
    mine.features = []
    assert forms.changed_meanwhile(mine, forms.UnitForm.of(unit)) == {
        "rent_eur_m2_year": "120",
        "status": "loué",
        "features": "Monte-charge",
    }


def test_the_site_form_checks_the_postcode_against_the_arrondissement() -> None:
    set_locale("fr")
    sent = FormData(
        {"name": "Berlier", "kind": "hotel_industriel", "address": "26 rue Bruneseau",
         "postcode": "75012", "arrondissement": "13", "latitude": "48,8262", "longitude": ""}
    )  # fmt: skip
    site = forms.read_site_form(sent)
    assert site.errors == {
        "postcode": "Ce code postal n’est pas celui de l’arrondissement choisi.",
        "longitude": "Indiquez la latitude et la longitude, ou aucune des deux.",
    }
    ok = forms.read_site_form(FormData({**dict(sent), "postcode": "75013", "longitude": "2.3867"}))
    assert ok.errors == {}
    assert ok.body["latitude"] == 48.8262 and ok.body["opens_for_visits"] is False
