"""Numbers, money and dates for the visitor's locale (Babel), and the words for the
platform's codes (site kinds, equipment, legal forms). Pure apart from the current locale.

A board view formats a few dozen numbers and names a hundred and more codes: what does not
depend on the value (Babel's parsed locale and number patterns, the translated tables of
names) is made once per language for the process, not per call (docs/benchmarks.md, §8)."""

from __future__ import annotations

import math
from datetime import date
from functools import cache, lru_cache
from typing import Any

from babel.dates import format_date
from babel.numbers import NumberPattern, parse_pattern

from portal.criteria import Namers, describe
from portal.i18n import babel_locale, current_locale, gettext, per_locale

_ = gettext


@cache
def _pattern(pattern: str) -> NumberPattern:
    return parse_pattern(pattern)


def _decimal_pattern(value: float | int, digits: int) -> NumberPattern:
    return _pattern("#,##0" if float(value) == int(value) else "#,##0." + "#" * digits)


def number(value: float | int | None, digits: int = 1) -> str:
    """1 234,5 in French, 1,234.5 in English; whole numbers without decimals."""
    if value is None:
        return "—"
    # babel.numbers.format_decimal(value, format=pattern, locale=…) with its defaults, minus
    # parsing the pattern and the locale at each call.
    return _decimal_pattern(value, digits).apply(
        value, babel_locale(), decimal_quantization=True, group_separator=True,
        numbering_system="latn",
    )  # fmt: skip


def euros(value: float, cents: bool = False) -> str:
    """1 234 € (or 1 234,50 € with cents) in French, €1,234 in English."""
    locale = babel_locale()
    if not cents and _plain_amount(value):
        # What Babel makes of these two patterns for a non-negative amount (the board's rents,
        # twenty a view): the whole number, then the symbol placed as the pattern says.
        # Babel's currency path also looks up the currency's plural name on every call;
        # tests/test_formatting.py checks that this is the same text over many amounts.
        whole = _pattern("#,##0").apply(
            value, locale, decimal_quantization=True, group_separator=True,
            numbering_system="latn",
        )  # fmt: skip
        return f"€{whole}" if locale.language == "en" else f"{whole}\xa0€"
    if cents:
        pattern = locale.currency_formats["standard"]
    else:
        pattern = _pattern("¤#,##0" if locale.language == "en" else "#,##0\xa0¤")
    # babel.numbers.format_currency(value, "EUR", format=…, locale=…, currency_digits=cents).
    return pattern.apply(
        value, locale, currency="EUR", currency_digits=cents, decimal_quantization=True,
        group_separator=True, numbering_system="latn",
    )  # fmt: skip


def _plain_amount(value: float) -> bool:
    return (
        isinstance(value, int | float)
        and math.isfinite(value)
        and math.copysign(1.0, value) > 0
        and current_locale() in ("fr", "en")
    )


@lru_cache(maxsize=4096)
def _long_date(value: date, locale: str) -> str:
    return format_date(value, format="long", locale=babel_locale())


def day(value: date | None) -> str:
    if value is None:
        return _("now")
    return _long_date(value, current_locale())


def ordinal_arrondissement(n: int) -> str:
    """1er, 2e … in French; 1st, 2nd … in English."""
    if current_locale() == "fr":
        return f"{n}er" if n == 1 else f"{n}e"
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def arrondissement(n: int) -> str:
    return _("%(nth)s arrondissement") % {"nth": ordinal_arrondissement(n)}


@per_locale
def _site_kind_names() -> dict[str, str]:
    return {
        "hotel_industriel": _("Hôtel industriel"),
        "hotel_activites": _("Hôtel d'activités"),
        "cite_artisanale": _("Cité artisanale"),
        "ateliers_de_paris": _("Ateliers de Paris"),
        "pepiniere": _("Business incubator (pépinière)"),
        "other": _("Other site"),
    }


def site_kind(code: str) -> str:
    return _site_kind_names().get(code, code)


@per_locale
def _feature_names() -> dict[str, str]:
    return {
        "goods_lift": _("Goods lift"),
        "loading_dock": _("Loading dock"),
        "extraction": _("Air extraction"),
        "step_free_access": _("Step-free access"),
    }


def feature(code: str) -> str:
    return _feature_names().get(code, code)


@per_locale
def _legal_form_names() -> dict[str, str]:
    return {
        "ei": _("sole trader (EI)"),
        "micro_entreprise": _("micro-enterprise"),
        "eurl": "EURL",
        "sarl": "SARL",
        "sas": "SAS",
        "sasu": "SASU",
        "sa": "SA",
        "scop": _("worker cooperative (SCOP)"),
        "scic": _("community interest cooperative (SCIC)"),
        "cae": _("business and employment cooperative (CAE)"),
        "cooperative_artisanale": _("artisans' cooperative"),
        "association": _("association"),
    }


def legal_form(code: str) -> str:
    return _legal_form_names().get(code, code)


@per_locale
def _label_names() -> dict[str, str]:
    return {
        "fabrique_a_paris": _("“Fabriqué à Paris” label"),
        "esus": _("ESUS approval (social utility)"),
        "epv": _("Living Heritage Company (EPV) label"),
        "metiers_d_art": _("craft trades (métiers d'art)"),
    }


def label(code: str) -> str:
    return _label_names().get(code, code)


@per_locale
def _trade_names() -> dict[str, str]:
    return {
        "woodwork": _("woodwork"),
        "cabinetmaking": _("cabinetmaking"),
        "ceramics": _("ceramics"),
        "textile": _("textile"),
        "leather": _("leatherwork"),
        "metalwork": _("metalwork"),
        "jewellery": _("jewellery"),
        "printing": _("printing"),
        "bookbinding": _("bookbinding"),
        "glass": _("glasswork"),
        "upholstery": _("upholstery"),
        "instrument_making": _("instrument making"),
        "electronics": _("electronics"),
        "food_processing": _("food processing"),
        "fashion": _("fashion"),
        "design": _("design"),
    }


def trade(code: str) -> str:
    return _trade_names().get(code, code.replace("_", " "))


KNOWN_TRADES = (
    "bookbinding", "cabinetmaking", "ceramics", "design", "electronics", "fashion",
    "food_processing", "glass", "instrument_making", "jewellery", "leather", "metalwork",
    "printing", "textile", "upholstery", "woodwork",
)  # fmt: skip


@per_locale
def _sort_label_names() -> dict[str, str]:
    return {
        "rent": _("Rent, lowest first"),
        "-rent": _("Rent, highest first"),
        "surface": _("Surface, smallest first"),
        "-surface": _("Surface, largest first"),
        "available_from": _("Available soonest"),
        "updated": _("Recently updated"),
    }


def sort_label(code: str) -> str:
    return _sort_label_names().get(code, code)


def criteria_words(criteria: dict[str, Any]) -> list[str]:
    """A saved search's criteria in the page's language, one line each."""
    namers = Namers(
        number=number,
        euros=euros,
        arrondissement=arrondissement,
        site_kind=site_kind,
        trade=trade,
        feature=feature,
    )
    return describe(criteria, gettext, namers)


def too_long(text: str, limit: int) -> str | None:
    """The message beside a text field written past its limit, or None."""
    if len(text) <= limit:
        return None
    return gettext("Write at most %(num)s characters (you wrote %(count)s).") % {
        "num": limit,
        "count": len(text),
    }
