"""The board's filters as a saved search's criteria (notifications' `CriteriaIn`) and back.

A search saved from the board alerts on what the board shows: each filter becomes the criterion
named in the README's table (the board's one site becomes `site_ids`). Sorting and paging are not
criteria (an alert has no order).
Pure: no I/O; the words go through `gettext` and the locale's number format.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from portal.filters import ARRONDISSEMENTS, FEATURES, ID_RE, SITE_KINDS, TRADE_RE, BoardFilters

Gettext = Callable[[str], str]
Namer = Callable[[Any], str]

# Board filter -> criterion; the bounds are the same on both sides (notifications took the
# board's), so a valid board value is always a valid criterion.
NUMBER_CRITERIA = {
    "min_surface": "min_surface_m2",
    "max_surface": "max_surface_m2",
    "max_rent": "max_rent_eur_m2_year",
    "min_ceiling_height_m": "min_ceiling_height_m",
    "min_floor_load_kg_m2": "min_floor_load_kg_m2",
    "min_power_kva": "min_power_kva",
}
BOARD_OF_CRITERION = {criterion: board for board, criterion in NUMBER_CRITERIA.items()}


@dataclass(frozen=True)
class Saved:
    """The criteria of a board search, and the board filters they could not keep (none since
    notifications took `site_ids`; pages that warn about a left-out filter keep working)."""

    criteria: dict[str, Any]
    left_out: tuple[str, ...] = ()


@dataclass
class Restored:
    """A saved search's criteria as board filters, and the criteria the board cannot show."""

    filters: BoardFilters
    extra_trades: list[str] = field(default_factory=list)


def to_criteria(filters: BoardFilters) -> Saved:
    """The `CriteriaIn` JSON of valid board filters (lists sorted, as notifications keeps them)."""
    criteria: dict[str, Any] = {}
    if filters.arrondissements:
        criteria["arrondissements"] = sorted(filters.arrondissements)
    if filters.site_kinds:
        criteria["site_kinds"] = sorted(filters.site_kinds)
    if filters.trade:
        criteria["trades"] = [filters.trade]
    if filters.features:
        criteria["features"] = sorted(filters.features)
    for board, criterion in NUMBER_CRITERIA.items():
        if board in filters.numbers:
            criteria[criterion] = filters.numbers[board]
    if filters.site_id:
        criteria["site_ids"] = [filters.site_id]
    return Saved(criteria)


def from_criteria(criteria: Mapping[str, Any]) -> Restored:
    """Board filters showing a saved search (for "see on the board" and the edit form).

    Values the board does not know are dropped (a search made through the API may hold
    anything notifications accepts); a search following several trades (or sites) shows its
    first on the board, and the other trades in `extra_trades`.
    """
    filters = BoardFilters()
    filters.arrondissements = sorted(
        a for a in _ints(criteria.get("arrondissements")) if a in ARRONDISSEMENTS
    )
    filters.site_kinds = [k for k in SITE_KINDS if k in _strs(criteria.get("site_kinds"))]
    filters.features = [f for f in FEATURES if f in _strs(criteria.get("features"))]
    if criteria.get("step_free_access") and "step_free_access" not in filters.features:
        filters.features.append("step_free_access")
    trades = [t for t in _strs(criteria.get("trades")) if TRADE_RE.match(t)]
    if trades:
        filters.trade = trades[0]
    sites = [i for i in _strs(criteria.get("site_ids")) if ID_RE.match(i)]
    if sites:
        filters.site_id = sites[0]
    for criterion, board in BOARD_OF_CRITERION.items():
        value = criteria.get(criterion)
        if isinstance(value, int | float) and not isinstance(value, bool):
            filters.numbers[board] = float(value)
    return Restored(filters, trades[1:])


def form_raw(filters: BoardFilters, show: Callable[[float], str]) -> dict[str, str]:
    """The text each number field of the form shows for these filters (the locale's format)."""
    return {name: show(value) for name, value in filters.numbers.items()}


@dataclass(frozen=True)
class Namers:
    """How codes and numbers are written in the page's language (portal.formatting)."""

    number: Callable[[float], str]
    euros: Callable[[float], str]
    arrondissement: Callable[[int], str]
    site_kind: Namer
    trade: Namer
    feature: Namer


def describe(criteria: Mapping[str, Any], _: Gettext, names: Namers) -> list[str]:
    """The criteria in words, one line each; a search with none "accepts every vacancy"."""
    restored = from_criteria(criteria)
    f = restored.filters
    lines: list[str] = []
    if f.site_id:
        lines.append(_("On one site only (see it on the list)"))
    if f.arrondissements:
        lines.append(
            _("In: %(places)s")
            % {"places": ", ".join(names.arrondissement(a) for a in f.arrondissements)}
        )
    low, high = f.numbers.get("min_surface"), f.numbers.get("max_surface")
    if low is not None and high is not None:
        lines.append(
            _("From %(low)s to %(high)s m²")
            % {"low": names.number(low), "high": names.number(high)}
        )
    elif low is not None:
        lines.append(_("At least %(value)s m²") % {"value": names.number(low)})
    elif high is not None:
        lines.append(_("At most %(value)s m²") % {"value": names.number(high)})
    if "max_rent" in f.numbers:
        lines.append(
            _("Rent at most %(amount)s per m² per year")
            % {"amount": names.euros(f.numbers["max_rent"])}
        )
    trades = ([f.trade] if f.trade else []) + restored.extra_trades
    if trades:
        lines.append(
            _("Trades: %(trades)s") % {"trades": ", ".join(names.trade(t) for t in trades)}
        )
    if f.site_kinds:
        lines.append(
            _("Kinds of site: %(kinds)s")
            % {"kinds": ", ".join(names.site_kind(k) for k in f.site_kinds)}
        )
    if f.features:
        lines.append(
            _("With: %(equipment)s")
            % {"equipment": ", ".join(names.feature(x) for x in f.features)}
        )
    for board, text in (
        ("min_ceiling_height_m", _("Ceiling height at least %(value)s m")),
        ("min_floor_load_kg_m2", _("Floor load at least %(value)s kg per m²")),
        ("min_power_kva", _("Electrical power at least %(value)s kVA")),
    ):
        if board in f.numbers:
            lines.append(text % {"value": names.number(f.numbers[board])})
    return lines or [_("Every vacancy in Paris")]


def _ints(value: Any) -> list[int]:
    if not isinstance(value, list):
        return []
    return [v for v in value if isinstance(v, int) and not isinstance(v, bool)]


def _strs(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [v for v in value if isinstance(v, str)]
