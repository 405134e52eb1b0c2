"""Languages: gettext catalogs read through Babel, the visitor's language per request.

French is the default; English comes from `?lang=en`, then the `lang` cookie, then the
browser's Accept-Language. Catalogs are the committed `.po` files, compiled in memory at
start-up (no `.mo` build step). Message ids are English; the English catalog is empty on
purpose (gettext falls back to the id).
"""

from __future__ import annotations

import gettext as gettext_module
import io
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from functools import cache
from pathlib import Path
from typing import TypeVar

from babel import Locale
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALES = ("fr", "en")
DEFAULT_LOCALE = "fr"
LOCALE_DIR = Path(__file__).with_name("locale")
LANG_COOKIE = "lang"
T = TypeVar("T")

_current: ContextVar[str] = ContextVar("portal_locale", default=DEFAULT_LOCALE)


def catalog_path(locale: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"


def read_catalog(locale: str) -> Catalog:
    with catalog_path(locale).open("rb") as handle:
        return read_po(handle, locale=locale)


@cache
def translations(locale: str) -> gettext_module.NullTranslations:
    """The compiled catalog of a locale (cached for the process)."""
    buffer = io.BytesIO()
    write_mo(buffer, read_catalog(locale))
    buffer.seek(0)
    return gettext_module.GNUTranslations(buffer)


def negotiate(query_lang: str | None, cookie_lang: str | None, accept_language: str) -> str:
    """The page's language: ?lang= first, then the cookie, then Accept-Language, then French."""
    for chosen in (query_lang, cookie_lang):
        if chosen in LOCALES:
            return chosen  # type: ignore[return-value]
    for tag in _accepted(accept_language):
        primary = tag.split("-")[0].lower()
        if primary in LOCALES:
            return primary
    return DEFAULT_LOCALE


def _accepted(header: str) -> list[str]:
    """Accept-Language's tags, best first (q=0 left out)."""
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            weighted.append((-quality, index, tag))
    return [tag for _, _, tag in sorted(weighted)]


def set_locale(locale: str) -> None:
    _current.set(locale)


def current_locale() -> str:
    return _current.get()


@cache
def _babel_locale(locale: str) -> Locale:
    return Locale.parse(locale)


def babel_locale() -> Locale:
    """The Babel locale of the request (parsed once per language for the process)."""
    return _babel_locale(current_locale())


def gettext(message: str) -> str:
    return translations(_current.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(_current.get()).ngettext(singular, plural, n)


def per_locale(build: Callable[[], T]) -> Callable[[], T]:
    """`build()` once per language: for tables of translated words the pages look up many
    times per view (the catalogs are fixed for the process, so the table is too)."""
    built: dict[str, T] = {}

    def table() -> T:
        locale = _current.get()
        found = built.get(locale)
        if found is None:
            found = built[locale] = build()
        return found

    return table


# Extraction: the templates through Jinja2's extractor, the Python modules through Babel's.
METHOD_MAP = [("templates/**.html", "jinja2"), ("**.py", "python")]
OPTIONS = {"templates/**.html": {"extensions": "jinja2.ext.i18n,jinja2.ext.do"}}
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2)}


def extract_messages() -> Iterator[tuple[str, str | tuple[str, ...]]]:
    """(file:line, message) for every translatable string of the portal."""
    root = Path(__file__).parent
    for filename, lineno, message, _comments, _context in extract_from_dir(
        root, METHOD_MAP, OPTIONS, keywords=KEYWORDS
    ):
        yield f"{filename}:{lineno}", message


def update_catalogs() -> dict[str, int]:
    """Add new messages to every catalog, keep the translations there; returns counts."""
    from babel.messages.pofile import write_po

    template = Catalog(project="fabrique-portal", locale=None)
    for where, message in extract_messages():
        filename, _, line = where.rpartition(":")
        template.add(message, locations=[(filename, int(line))])
    counts = {}
    for locale in LOCALES:
        path = catalog_path(locale)
        catalog = read_catalog(locale) if path.exists() else Catalog(locale=locale)
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            # File names without line numbers: a moved string does not rewrite the catalogs.
            write_po(handle, catalog, width=100, sort_output=True, include_lineno=False)
        counts[locale] = len(catalog)
    return counts
