"""The vacancy board's filters: read from the URL's query, checked, and turned back into the
inventory API's parameters and into links. Pure: no I/O; messages go through `gettext`."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlencode

Gettext = Callable[[str], str]

PAGE_SIZE = 10
SORTS = ("rent", "-rent", "surface", "-surface", "available_from", "updated")
SITE_KINDS = (
    "hotel_industriel",
    "hotel_activites",
    "cite_artisanale",
    "ateliers_de_paris",
    "pepiniere",
    "other",
)
FEATURES = ("goods_lift", "loading_dock", "extraction", "step_free_access")
ARRONDISSEMENTS = tuple(range(1, 21))
# Inventory's trade slugs (the same pattern as its API).
TRADE_RE = re.compile(r"^[a-z][a-z0-9_]{1,59}$")
ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# The deepest page a link may ask for (inventory takes offsets up to 1,000,000).
MAX_PAGE = 1_000_000 // PAGE_SIZE


@dataclass(frozen=True)
class Bound:
    """A number filter, named as inventory's search parameter, with that parameter's bounds
    (so a value out of them gets a message beside its field, not inventory's 422)."""

    name: str
    low: float
    high: float


NUMBERS = (
    Bound("min_surface", 0, 100_000),
    Bound("max_surface", 0, 100_000),
    Bound("max_rent", 0, 100_000),
    Bound("min_ceiling_height_m", 2, 12),
    Bound("min_floor_load_kg_m2", 150, 5_000),
    Bound("min_power_kva", 0, 2_000),
)


@dataclass
class BoardFilters:
    """What a visitor asked the board for; `errors` maps a field to the message beside it."""

    arrondissements: list[int] = field(default_factory=list)
    numbers: dict[str, float] = field(default_factory=dict)
    trade: str | None = None
    site_kinds: list[str] = field(default_factory=list)
    features: list[str] = field(default_factory=list)
    site_id: str | None = None
    sort: str = "rent"
    page: int = 1
    raw: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return not self.errors

    @property
    def offset(self) -> int:
        return (self.page - 1) * PAGE_SIZE

    def api_params(self) -> list[tuple[str, str | int | float]]:
        """The inventory search for these filters (open vacancies only)."""
        params: list[tuple[str, str | int | float]] = [("status", "available")]
        params += [("arrondissement", a) for a in self.arrondissements]
        params += list(self.numbers.items())
        if self.trade:
            params.append(("trade", self.trade))
        params += [("site_kind", k) for k in self.site_kinds]
        params += [("feature", f) for f in self.features]
        if self.site_id:
            params.append(("site_id", self.site_id))
        params.append(("sort", self.sort))
        return params

    def query_items(self, **overrides: str | int | None) -> list[tuple[str, str]]:
        """The filters as query items (for links), with some replaced or dropped (None)."""
        items: list[tuple[str, str]] = []
        items += [("arrondissement", str(a)) for a in self.arrondissements]
        items += [(n, _plain(v)) for n, v in self.numbers.items()]
        if self.trade:
            items.append(("trade", self.trade))
        items += [("site_kind", k) for k in self.site_kinds]
        items += [("feature", f) for f in self.features]
        if self.site_id:
            items.append(("site_id", self.site_id))
        if self.sort != "rent":
            items.append(("sort", self.sort))
        if self.page != 1:
            items.append(("page", str(self.page)))
        for key, value in overrides.items():
            items = [(k, v) for k, v in items if k != key]
            if value is not None:
                items.append((key, str(value)))
        return items

    def query(self, **overrides: str | int | None) -> str:
        return urlencode(self.query_items(**overrides))

    @property
    def active(self) -> bool:
        """Some filter narrows the search (beyond sorting and paging)."""
        return bool(
            self.arrondissements
            or self.numbers
            or self.trade
            or self.site_kinds
            or self.features
            or self.site_id
        )


def _plain(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)


def _number(text: str) -> float | None:
    # French visitors write decimals with a comma and may group thousands with spaces.
    cleaned = text.strip().replace("\u202f", "").replace("\xa0", "").replace(" ", "")
    cleaned = cleaned.replace(",", ".")
    try:
        value = float(cleaned)
    except ValueError:
        return None
    return value if value == value and value not in (float("inf"), float("-inf")) else None


def parse_filters(
    items: Iterable[tuple[str, str]], _: Gettext, show: Callable[[float], str] | None = None
) -> BoardFilters:
    """Read the board's query; every bad value gets a message for its field, nothing raises.
    `show` writes the bounds in messages (the locale's number format)."""
    show = show or _plain
    values: dict[str, list[str]] = {}
    for key, value in items:
        values.setdefault(key, []).append(value)
    found = BoardFilters()

    def first(name: str) -> str:
        text = (values.get(name) or [""])[0].strip()
        if text:
            found.raw[name] = text
        return text

    found.arrondissements = _choices(
        values.get("arrondissement", []),
        [str(a) for a in ARRONDISSEMENTS],
        "arrondissement",
        _("Choose arrondissements from the 1st to the 20th."),
        found,
        int,
    )
    found.site_kinds = _choices(
        values.get("site_kind", []),
        SITE_KINDS,
        "site_kind",
        _("Choose site kinds from the list."),
        found,
        str,
    )
    found.features = _choices(
        values.get("feature", []),
        FEATURES,
        "feature",
        _("Choose equipment from the list."),
        found,
        str,
    )
    for bound in NUMBERS:
        text = first(bound.name)
        if not text:
            continue
        number = _number(text)
        if number is None:
            found.errors[bound.name] = _("Enter a number, for example 50 or 4,5.")
        elif not bound.low <= number <= bound.high:
            found.errors[bound.name] = _("Enter a number between %(low)s and %(high)s.") % {
                "low": show(bound.low),
                "high": show(bound.high),
            }
        else:
            found.numbers[bound.name] = number
    low, high = found.numbers.get("min_surface"), found.numbers.get("max_surface")
    if low is not None and high is not None and low > high:
        found.errors["max_surface"] = _(
            "The largest surface must be at least the smallest surface."
        )
        found.numbers.pop("max_surface")
    trade = first("trade")
    if trade:
        if TRADE_RE.match(trade):
            found.trade = trade
        else:
            found.errors["trade"] = _("“%(value)s” is not a trade: choose one from the list.") % {
                "value": trade[:80]
            }
    site_id = first("site_id")
    if site_id:
        if ID_RE.match(site_id):
            found.site_id = site_id
        else:
            found.errors["site_id"] = _("This site link is not valid; search without it.")
    sort = first("sort") or "rent"
    if sort in SORTS:
        found.sort = sort
    else:
        found.errors["sort"] = _("Choose an order from the list.")
    page = first("page")
    if page:
        found.page = int(page) if page.isdigit() and 1 <= int(page) <= MAX_PAGE else 1
        found.raw.pop("page", None)
    return found


def _choices(
    given: Sequence[str],
    allowed: Sequence[str],
    name: str,
    message: str,
    found: BoardFilters,
    convert: Callable[[str], object],
) -> list:  # type: ignore[type-arg]
    chosen = []
    for value in given:
        value = value.strip()
        if not value:
            continue
        if value in allowed:
            converted = convert(value)
            if converted not in chosen:
                chosen.append(converted)
        else:
            found.errors[name] = message
            found.raw[name] = value
    return chosen
