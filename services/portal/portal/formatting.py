"""Numbers, money and dates for the visitor's locale (Babel), and the words for the
platform's codes (site kinds, equipment, legal forms). Pure apart from the current locale."""

from __future__ import annotations

from datetime import date

from babel.dates import format_date
from babel.numbers import format_currency, format_decimal

from portal.i18n import babel_locale, gettext

_ = gettext


def number(value: float | int | None, digits: int = 1) -> str:
    """1 234,5 in French, 1,234.5 in English; whole numbers without decimals."""
    if value is None:
        return "—"
    pattern = "#,##0" if float(value) == int(value) else "#,##0." + "#" * digits
    return format_decimal(value, format=pattern, locale=babel_locale())


def euros(value: float, cents: bool = False) -> str:
    """1 234 € (or 1 234,50 € with cents) in French, €1,234 in English."""
    fmt = None if cents else "¤#,##0" if babel_locale().language == "en" else "#,##0\xa0¤"
    return format_currency(value, "EUR", format=fmt, locale=babel_locale(), currency_digits=cents)


def day(value: date | None) -> str:
    if value is None:
        return _("now")
    return format_date(value, format="long", locale=babel_locale())


def ordinal_arrondissement(n: int) -> str:
    """1er, 2e … in French; 1st, 2nd … in English."""
    if babel_locale().language == "fr":
        return f"{n}er" if n == 1 else f"{n}e"
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def arrondissement(n: int) -> str:
    return _("%(nth)s arrondissement") % {"nth": ordinal_arrondissement(n)}


def site_kind(code: str) -> str:
    names = {
        "hotel_industriel": _("Hôtel industriel"),
        "hotel_activites": _("Hôtel d'activités"),
        "cite_artisanale": _("Cité artisanale"),
        "ateliers_de_paris": _("Ateliers de Paris"),
        "pepiniere": _("Business incubator (pépinière)"),
        "other": _("Other site"),
    }
    return names.get(code, code)


def feature(code: str) -> str:
    names = {
        "goods_lift": _("Goods lift"),
        "loading_dock": _("Loading dock"),
        "extraction": _("Air extraction"),
        "step_free_access": _("Step-free access"),
    }
    return names.get(code, code)


def legal_form(code: str) -> str:
    names = {
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
    return names.get(code, code)


def label(code: str) -> str:
    names = {
        "fabrique_a_paris": _("“Fabriqué à Paris” label"),
        "esus": _("ESUS approval (social utility)"),
        "epv": _("Living Heritage Company (EPV) label"),
        "metiers_d_art": _("craft trades (métiers d'art)"),
    }
    return names.get(code, code)


def trade(code: str) -> str:
    names = {
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
    return names.get(code, code.replace("_", " "))


KNOWN_TRADES = (
    "bookbinding", "cabinetmaking", "ceramics", "design", "electronics", "fashion",
    "food_processing", "glass", "instrument_making", "jewellery", "leather", "metalwork",
    "printing", "textile", "upholstery", "woodwork",
)  # fmt: skip


def sort_label(code: str) -> str:
    names = {
        "rent": _("Rent, lowest first"),
        "-rent": _("Rent, highest first"),
        "surface": _("Surface, smallest first"),
        "-surface": _("Surface, largest first"),
        "available_from": _("Available soonest"),
        "updated": _("Recently updated"),
    }
    return names.get(code, code)
