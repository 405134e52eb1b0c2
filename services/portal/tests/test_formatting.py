"""The formatting shortcuts (cached Babel patterns, the amount fast path, per-language name
tables) write exactly what Babel's own functions write."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal

from portal import formatting
from portal.i18n import set_locale


def amounts() -> list[float]:
    rng = random.Random(13)
    fixed = [0, 0.0, -0.0, 0.5, 1.5, 2.5, 999.5, 1000, 1234.5, 1_000_000.49, -3, -0.4, -1234.5]
    drawn = [rng.uniform(0, 50_000) for _ in range(2000)]
    rents = [r * s / 12 for r in range(60, 251, 5) for s in (17, 23.5, 48, 99.9, 250)]
    return [*fixed, *drawn, *rents, *range(0, 3000, 7)]


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_euros_is_babels_format_currency(lang: str) -> None:
    set_locale(lang)
    pattern = "¤#,##0" if lang == "en" else "#,##0\xa0¤"
    for value in amounts():
        assert formatting.euros(value) == format_currency(
            value, "EUR", format=pattern, locale=lang, currency_digits=False
        ), value
        assert formatting.euros(value, cents=True) == format_currency(
            value, "EUR", locale=lang, currency_digits=True
        ), value


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_number_and_day_are_babels(lang: str) -> None:
    set_locale(lang)
    for value in amounts():
        for digits in (1, 2):
            pattern = "#,##0" if float(value) == int(value) else "#,##0." + "#" * digits
            assert formatting.number(value, digits) == format_decimal(
                value, format=pattern, locale=lang
            ), value
    start = date(2026, 1, 1)
    for n in range(0, 800, 3):
        day = start + timedelta(days=n)
        assert formatting.day(day) == format_date(day, format="long", locale=lang)


def test_name_tables_follow_the_language() -> None:
    set_locale("fr")
    assert formatting.site_kind("pepiniere") == "Pépinière d'entreprises"
    assert formatting.trade("leather") == "maroquinerie"
    set_locale("en")
    assert formatting.site_kind("pepiniere") == "Business incubator (pépinière)"
    assert formatting.trade("leather") == "leatherwork"
    assert formatting.trade("new_trade") == "new trade"
    set_locale("fr")
    assert formatting.trade("leather") == "maroquinerie"


def test_too_long_names_the_limit_and_the_count() -> None:
    set_locale("fr")
    assert formatting.too_long("x" * 10, 10) is None
    assert (
        formatting.too_long("x" * 11, 10)
        == "Écrivez au plus 10 caractères (vous en avez écrit 11)."
    )
