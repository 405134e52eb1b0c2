"""The board's filters read from a URL: every bad value gets its message, nothing raises."""

from __future__ import annotations

from portal.filters import PAGE_SIZE, parse_filters
from portal.schemas import SiteSummary, Unit


def same(message: str) -> str:
    return message


def parse(query: list[tuple[str, str]]):  # type: ignore[no-untyped-def]
    return parse_filters(query, same)


def unit(**fields: object) -> Unit:
    base: dict[str, object] = {
        "id": "u1",
        "site_id": "s1",
        "landlord_id": "l1",
        "reference": "L101",
        "floor": 1,
        "surface_m2": 120.0,
        "rent_eur_m2_year": 100.0,
        "charges_eur_m2_year": 20.0,
        "status": "available",
        "site": SiteSummary(
            id="s1",
            name="Berlier",
            kind="hotel_industriel",
            address="26 rue Bruneseau",
            postcode="75013",
            arrondissement=13,
        ),
    }
    return Unit.model_validate({**base, **fields})


def test_an_empty_query_is_every_open_vacancy_by_rent() -> None:
    filters = parse([])
    assert filters.valid
    assert not filters.active
    assert filters.api_params() == [("status", "available"), ("sort", "rent")]
    assert filters.query() == ""


def test_every_filter_reaches_the_inventory_search_and_the_links() -> None:
    filters = parse(
        [
            ("arrondissement", "11"), ("arrondissement", "13"), ("arrondissement", "13"),
            ("min_surface", "50"), ("max_surface", "200,5"), ("max_rent", "120"),
            ("trade", "ceramics"), ("site_kind", "hotel_industriel"),
            ("feature", "goods_lift"), ("feature", "extraction"), ("sort", "-surface"),
            ("page", "3"),
        ]
    )  # fmt: skip
    assert filters.valid, filters.errors
    assert filters.arrondissements == [11, 13]
    assert filters.numbers == {"min_surface": 50, "max_surface": 200.5, "max_rent": 120}
    assert filters.offset == 2 * PAGE_SIZE
    assert ("trade", "ceramics") in filters.api_params()
    assert ("feature", "extraction") in filters.api_params()
    assert ("max_surface", 200.5) in filters.api_params()
    assert filters.query(page=None) == (
        "arrondissement=11&arrondissement=13&min_surface=50&max_surface=200.5&max_rent=120"
        "&trade=ceramics&site_kind=hotel_industriel&feature=goods_lift&feature=extraction"
        "&sort=-surface"
    )
    assert "page=4" in filters.query(page=4)


def test_bad_values_get_a_message_for_their_field() -> None:
    filters = parse(
        [
            ("arrondissement", "21"), ("min_surface", "beaucoup"), ("max_rent", "-5"),
            ("site_kind", "castle"), ("feature", "pool"), ("sort", "price"),
            ("trade", "<script>alert(1)</script>"), ("site_id", "../../etc"),
        ]
    )  # fmt: skip
    assert set(filters.errors) == {
        "arrondissement", "min_surface", "max_rent", "site_kind", "feature", "sort", "trade",
        "site_id",
    }  # fmt: skip
    assert filters.errors["min_surface"] == "Enter a number, for example 50 or 4,5."
    assert filters.errors["max_rent"] == "Enter a number between 0 and 100000."
    assert "<script>alert(1)</script>" in filters.errors["trade"]  # escaped when rendered
    assert filters.raw["min_surface"] == "beaucoup"  # shown back in the field


def test_surfaces_the_wrong_way_round_are_refused() -> None:
    filters = parse([("min_surface", "300"), ("max_surface", "100")])
    assert "max_surface" in filters.errors
    assert "max_surface" not in filters.numbers


def test_french_numbers_are_read() -> None:
    filters = parse([("min_ceiling_height_m", "4,5"), ("min_power_kva", "1\u202f000")])
    assert filters.numbers == {"min_ceiling_height_m": 4.5, "min_power_kva": 1000}


def test_a_bad_page_falls_back_to_the_first() -> None:
    for page in ("0", "-1", "x", "99999999999"):
        assert parse([("page", page)]).page == 1


def test_ceiling_floor_load_and_power_go_to_inventory() -> None:
    filters = parse(
        [
            ("min_ceiling_height_m", "4"),
            ("min_floor_load_kg_m2", "800"),
            ("min_power_kva", "36"),
            ("max_rent", "150"),
        ]
    )
    params = filters.api_params()
    assert ("min_ceiling_height_m", 4) in params
    assert ("min_floor_load_kg_m2", 800) in params
    assert ("min_power_kva", 36) in params
    assert ("max_rent", 150) in params


def test_minimums_out_of_inventorys_bounds_get_a_message_beside_their_field() -> None:
    filters = parse(
        [
            ("min_ceiling_height_m", "1,5"),
            ("min_floor_load_kg_m2", "6000"),
            ("min_power_kva", "2001"),
        ]
    )
    assert filters.errors == {
        "min_ceiling_height_m": "Enter a number between 2 and 12.",
        "min_floor_load_kg_m2": "Enter a number between 150 and 5000.",
        "min_power_kva": "Enter a number between 0 and 2000.",
    }
    assert not filters.numbers


def test_rent_per_month_for_the_unit() -> None:
    u = unit(surface_m2=120.0, rent_eur_m2_year=100.0, charges_eur_m2_year=20.0)
    assert u.rent_month == 1000
    assert u.charges_month == 200
    assert u.total_month == 1200
