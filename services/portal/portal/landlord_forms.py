"""A landlord's unit and site forms: what a person typed, checked with inventory's own bounds
before it is sent, and every problem (the form's, or a CSV import row's) in the page's language.

The bounds repeat inventory's `schemas.py` (a sent value outside them would be a 422 anyway):
checking here puts the message next to the field, in French or English, without a round trip.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from portal import formatting
from portal.i18n import gettext, per_locale

_ = gettext

REFERENCE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._/-]{0,59}$")
TRADE_RE = re.compile(r"^[a-z][a-z0-9_]{1,59}$")
POSTCODE_RE = re.compile(r"^75(0(0[1-9]|1[0-9]|20)|116)$")
FEATURES = ("goods_lift", "loading_dock", "extraction", "step_free_access")
STATUSES = ("available", "reserved", "leased", "unavailable", "withdrawn")
INITIAL_STATUSES = ("unavailable", "available")
USE_CLASSES = ("production", "other")
SITE_KINDS = (
    "hotel_industriel",
    "hotel_activites",
    "cite_artisanale",
    "ateliers_de_paris",
    "pepiniere",
    "other",
)


@dataclass(frozen=True)
class Bound:
    """A number field: whole or not, its bounds (`low` excluded when `open_low`), required."""

    low: float
    high: float
    whole: bool = False
    open_low: bool = False
    required: bool = False


NUMBERS: dict[str, Bound] = {
    "floor": Bound(-3, 40, whole=True),
    "surface_m2": Bound(0, 10_000, open_low=True, required=True),
    "ceiling_height_m": Bound(2, 12),
    "floor_load_kg_m2": Bound(150, 5_000),
    "power_kva": Bound(0, 2_000),
    "rent_eur_m2_year": Bound(0, 1_500, required=True),
    "charges_eur_m2_year": Bound(0, 300),
}
NULLABLE = frozenset({"ceiling_height_m", "floor_load_kg_m2", "power_kva"})
UNIT_TEXT = ("reference", "allowed_trades", "use_class", "status", "available_from")


@per_locale
def unit_labels() -> dict[str, str]:
    """Each unit field's label, as the form and the import report name it."""
    return {
        "reference": _("Reference"),
        "floor": _("Floor"),
        "surface_m2": _("Surface"),
        "ceiling_height_m": _("Ceiling height"),
        "floor_load_kg_m2": _("Floor load"),
        "power_kva": _("Electrical power"),
        "goods_lift": _("Goods lift"),
        "loading_dock": _("Loading dock"),
        "extraction": _("Air extraction"),
        "step_free_access": _("Step-free access"),
        "features": _("Equipment"),
        "allowed_trades": _("Trades allowed"),
        "use_class": _("Use"),
        "rent_eur_m2_year": _("Rent"),
        "charges_eur_m2_year": _("Charges"),
        "status": _("Status"),
        "available_from": _("Available from"),
        "form": _("Unit"),
    }


@per_locale
def site_labels() -> dict[str, str]:
    return {
        "name": _("Name of the site"),
        "kind": _("Kind of site"),
        "address": _("Address"),
        "postcode": _("Postcode"),
        "arrondissement": _("Arrondissement"),
        "latitude": _("Latitude"),
        "longitude": _("Longitude"),
        "opens_for_visits": _("Visits"),
        "description": _("Description"),
        "form": _("Site"),
    }


@per_locale
def status_names() -> dict[str, str]:
    return {
        "available": _("available (a vacancy is open)"),
        "reserved": _("reserved"),
        "leased": _("leased"),
        "unavailable": _("unavailable"),
        "withdrawn": _("withdrawn from letting"),
    }


@per_locale
def use_class_names() -> dict[str, str]:
    return {"production": _("production (counts as production surface)"), "other": _("other use")}


def status_name(code: str) -> str:
    return status_names().get(code, code)


# One message per kind of problem -------------------------------------------------------------


def _num(value: Any) -> str:
    return formatting.number(float(value), 2) if isinstance(value, int | float) else str(value)


def message(column: str | None, code: str, params: dict[str, Any] | None = None) -> str:
    """A problem with one field (or, column None, the whole row) in the page's language; the
    codes are inventory's import codes (pydantic error types and its own)."""
    p = params or {}
    bound = NUMBERS.get(column or "")
    if code == "missing":
        return _("This field is required: fill it in.")
    if code == "reference_taken":
        return _("This site already has a unit with this reference; choose another one.")
    if code == "too_many_cells":
        return _(
            "This row has %(cells)s cells but the header row names %(columns)s columns; remove "
            "the extra cells, or put quotes around a value that holds a comma."
        ) % {"cells": p.get("cells", "?"), "columns": p.get("columns", "?")}
    if code == "not_a_boolean":
        return _("Write yes or no (or true or false).")
    if code in {"not_a_number", "float_parsing", "float_type"} or (
        bound is not None and code in {"int_parsing", "not_an_integer"} and not bound.whole
    ):
        return _("Write a number, such as 210 or 4.5.")
    if code in {"not_an_integer", "int_parsing", "int_from_float"}:
        return _("Write a whole number, such as 2.")
    if code in {"greater_than", "greater_than_equal", "less_than", "less_than_equal", "range"}:
        if bound is not None:
            return _range(bound)
        limit = next((p[k] for k in ("gt", "ge", "lt", "le") if k in p), "?")
        return _("This number is out of bounds (limit: %(limit)s).") % {"limit": _num(limit)}
    if column == "reference":
        return _(
            "Write at most 60 letters, digits, spaces or . _ / - signs, starting with a letter "
            "or a digit."
        )
    if column == "allowed_trades":
        if code == "repeated":
            return _("Name each trade once.")
        return _(
            "Write each trade as a lower-case word such as woodwork or ceramics (at most 30), "
            "separated by commas (by ; in a CSV file)."
        )
    if column == "available_from":
        return _("Write a date as YYYY-MM-DD between 2000 and 2100, such as 2027-01-15.")
    if column == "status":
        if code == "initial":
            return _("A new unit starts as available or unavailable.")
        return _("Choose one of: %(choices)s.") % {"choices": ", ".join(status_names().values())}
    if column == "use_class":
        return _("Choose production or other use.")
    return _("This value is not accepted.")


def _range(bound: Bound) -> str:
    low, high = _num(bound.low), _num(bound.high)
    if bound.whole:
        return _("Write a whole number from %(low)s to %(high)s.") % {"low": low, "high": high}
    if bound.open_low:
        return _("Write a number above %(low)s and at most %(high)s.") % {"low": low, "high": high}
    return _("Write a number from %(low)s to %(high)s.") % {"low": low, "high": high}


# The unit form ----------------------------------------------------------------------------------


@dataclass
class UnitForm:
    """The unit form as typed (text), what is wrong with it, and the body to send."""

    values: dict[str, str] = field(default_factory=dict)
    features: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, unit: Any) -> UnitForm:
        """The form filled with a unit's current values."""
        values = {
            "reference": unit.reference,
            "allowed_trades": ", ".join(unit.allowed_trades),
            "use_class": unit.use_class,
            "status": unit.status,
            "available_from": unit.available_from.isoformat() if unit.available_from else "",
        }
        for name in NUMBERS:
            number = getattr(unit, name)
            values[name] = "" if number is None else _plain(number)
        features = [f for f in FEATURES if getattr(unit, f)]
        return cls(values=values, features=features)

    @classmethod
    def new(cls) -> UnitForm:
        return cls(values={"floor": "0", "use_class": "production", "status": "unavailable"})


def _plain(number: float) -> str:
    """A number as typed back into a field: 210, 4.5 (no thousands separator)."""
    return str(int(number)) if float(number).is_integer() else str(number)


def read_unit_form(sent: Any, *, creating: bool) -> UnitForm:
    """The posted unit form, checked; `body` is the JSON to send when `errors` is empty."""
    form = UnitForm()
    for name in (*UNIT_TEXT, *NUMBERS):
        form.values[name] = str(sent.get(name) or "").strip()
    form.features = [f for f in sent.getlist("features") if f in FEATURES]
    body: dict[str, Any] = {f: f in form.features for f in FEATURES}
    ref = form.values["reference"]
    if not ref:
        form.errors["reference"] = message("reference", "missing")
    elif not REFERENCE_RE.match(ref):
        form.errors["reference"] = message("reference", "string_pattern_mismatch")
    body["reference"] = ref
    for name, bound in NUMBERS.items():
        problem, number = _number(form.values[name], bound, name)
        if problem:
            form.errors[name] = problem
        elif number is not None or (not creating and name in NULLABLE):
            body[name] = number  # an emptied measurement is cleared (null) on a change
    trades = [t.strip().lower() for t in re.split(r"[,;\s]+", form.values["allowed_trades"]) if t]
    if len(set(trades)) != len(trades):
        form.errors["allowed_trades"] = message("allowed_trades", "repeated")
    elif len(trades) > 30 or any(not TRADE_RE.match(t) for t in trades):
        form.errors["allowed_trades"] = message("allowed_trades", "string_pattern_mismatch")
    body["allowed_trades"] = trades
    if form.values["use_class"] not in USE_CLASSES:
        form.errors["use_class"] = message("use_class", "enum")
    body["use_class"] = form.values["use_class"]
    statuses = INITIAL_STATUSES if creating else STATUSES
    if form.values["status"] not in statuses:
        form.errors["status"] = message("status", "initial" if creating else "enum")
    body["status"] = form.values["status"]
    when = form.values["available_from"]
    if when:
        try:
            day = date.fromisoformat(when)
            if not date(2000, 1, 1) <= day <= date(2100, 1, 1):
                raise ValueError(when)
        except ValueError:
            form.errors["available_from"] = message("available_from", "date_parsing")
        body["available_from"] = when
    elif not creating:
        body["available_from"] = None
    form.body = body
    return form


def _number(text: str, bound: Bound, name: str) -> tuple[str | None, float | int | None]:
    if not text:
        return (message(name, "missing") if bound.required else None), None
    cleaned = text.replace(",", ".").replace(" ", "").replace("\u202f", "").replace("\xa0", "")
    try:
        number: float | int = int(cleaned) if bound.whole else float(cleaned)
    except ValueError:
        return message(name, "not_an_integer" if bound.whole else "not_a_number"), None
    if not math.isfinite(number):
        return message(name, "not_a_number"), None
    too_low = number <= bound.low if bound.open_low else number < bound.low
    if too_low or number > bound.high:
        return _range(bound), None
    return None, number


def changed_meanwhile(mine: UnitForm, current: UnitForm) -> dict[str, str]:
    """For a stale form: each field whose current value differs from what the person sent,
    with the current value as the form shows it."""
    out = {k: v for k, v in current.values.items() if mine.values.get(k, "") != v}
    if set(mine.features) != set(current.features):
        names = [formatting.feature(f) for f in current.features]
        out["features"] = ", ".join(names) or _("none")
    if "status" in out:
        out["status"] = status_name(current.values["status"])
    if "use_class" in out:
        out["use_class"] = use_class_names().get(current.values["use_class"], "")
    for key, value in out.items():
        if value == "":
            out[key] = _("(empty)")
    return out


# No net loss: the compensation a change that removes production m² must name ----------------

COMPENSATION_FIELDS = ("comp_m2", "comp_status", "comp_due_on", "comp_description", "comp_project")
COMPENSATION_STATUSES = ("planned", "delivered")


@per_locale
def compensation_labels() -> dict[str, str]:
    return {
        "comp_m2": _("New production m²"),
        "comp_status": _("Compensation status"),
        "comp_due_on": _("Compensation date"),
        "comp_description": _("What the compensation is"),
        "comp_project": _("Development project"),
    }


@per_locale
def compensation_status_names() -> dict[str, str]:
    return {
        "planned": _("planned: the m² are still to be delivered"),
        "delivered": _("delivered: the m² exist"),
    }


def production_m2(surface_m2: float, use_class: str, status: str) -> float:
    """The production m² a unit counts for (inventory's rule: a production unit that is not
    withdrawn counts its whole surface)."""
    return surface_m2 if use_class == "production" and status != "withdrawn" else 0.0


def production_loss(unit: Any, body: dict[str, Any]) -> float:
    """The production m² a change (the PATCH body) removes from the unit, 0 when none."""
    before = production_m2(unit.surface_m2, unit.use_class, unit.status)
    after = production_m2(
        float(body.get("surface_m2", unit.surface_m2)),
        str(body.get("use_class", unit.use_class)),
        str(body.get("status", unit.status)),
    )
    return round(max(before - after, 0.0), 2)


def read_compensation(
    form: UnitForm, sent: Any, *, loss_m2: float, arrondissement: int, today: date
) -> None:
    """The compensation fields, kept as typed; when the change removes production m² and they
    are filled, checked and added to the body (the API checks them again)."""
    for name in COMPENSATION_FIELDS:
        form.values[name] = str(sent.get(name) or "").strip()
    v, errors = form.values, form.errors
    filled = any(v[n] for n in ("comp_m2", "comp_due_on", "comp_description"))
    if not filled:
        return  # none named: inventory refuses a loss without one, beside comp_m2
    if loss_m2 <= 0:
        errors["comp_m2"] = _(
            "This change removes no production m², so it needs no compensation: empty the "
            "compensation's fields."
        )
        return
    m2 = _compensation_m2(v["comp_m2"])
    if m2 is None:
        errors["comp_m2"] = _("Write the new production m², a number above 0, such as 120.")
    elif m2 + 1e-9 < loss_m2:
        errors["comp_m2"] = _(
            "The change removes %(loss)s m²: the compensation must bring at least as many."
        ) % {"loss": formatting.number(loss_m2)}
    if v["comp_status"] not in COMPENSATION_STATUSES:
        errors["comp_status"] = _("Choose whether the new m² are planned or delivered.")
    due = None
    try:
        due = date.fromisoformat(v["comp_due_on"])
        if not date(2000, 1, 1) <= due <= date(2100, 1, 1):
            due = None
    except ValueError:
        pass
    if due is None:
        errors["comp_due_on"] = _(
            "Write the day the m² are due (planned) or were delivered, as YYYY-MM-DD, such as "
            "2027-06-30."
        )
    elif v["comp_status"] == "delivered" and due > today:
        errors["comp_due_on"] = _(
            "Delivered m² cannot be delivered in the future: give the day they were, or "
            "choose planned."
        )
    if len(v["comp_description"]) < 3:
        errors["comp_description"] = _(
            "Say where the new m² are, such as “ground floor of lot B4, rue X” (at least 3 "
            "characters)."
        )
    elif too_long := formatting.too_long(v["comp_description"], 2000):
        errors["comp_description"] = too_long
    form.body["compensation"] = {
        "m2": m2,
        "arrondissement": arrondissement,
        "status": v["comp_status"],
        "due_on": v["comp_due_on"],
        "description": v["comp_description"],
        "project_id": v["comp_project"] or None,
    }


def _compensation_m2(text: str) -> float | None:
    cleaned = text.replace(",", ".").replace(" ", "").replace("\u202f", "").replace("\xa0", "")
    try:
        value = float(cleaned)
    except ValueError:
        return None
    return value if 0 < value <= 100_000 and math.isfinite(value) else None


def compensation_problem(
    status: int, detail: str, errors: list[dict[str, Any]], loss_m2: float = 0.0
) -> tuple[str, str] | None:
    """Inventory's refusal of a loss or its compensation as (field, message) in the page's
    language; None when it is about something else."""
    types = {str(e.get("type", "")) for e in errors}
    fields = {str(e.get("field", "")) for e in errors}
    if ("compensation_required" in types or "No net loss" in detail) and loss_m2 > 0:
        return "comp_m2", _(
            "This change removes %(loss)s m² of production surface, and production surface "
            "must be kept: name below the new production m² that make the loss good, in the "
            "same arrondissement."
        ) % {"loss": formatting.number(loss_m2)}
    if "compensation_required" in types or "No net loss" in detail:
        return "comp_m2", _(
            "This change removes production m², and production surface must be kept: name "
            "the new production m² that make the loss good, in the same arrondissement, below."
        )
    named = " ".join([detail, *fields])
    for key, name in (
        ("compensation.m2", "comp_m2"),
        ("compensation.due_on", "comp_due_on"),
        ("compensation.project_id", "comp_project"),
        ("compensation.description", "comp_description"),
        ("compensation.status", "comp_status"),
        ("compensation.arrondissement", "comp_m2"),
    ):
        if key in named:
            return name, _("Inventory did not accept this part of the compensation: %(why)s") % {
                "why": _compensation_reason(name)
            }
    return None


def _compensation_reason(name: str) -> str:
    return {
        "comp_m2": _("the new m² must be at least the m² lost, in the same arrondissement."),
        "comp_due_on": _("check the date (a delivered compensation cannot be in the future)."),
        "comp_project": _("the project must be in the unit's arrondissement."),
        "comp_description": _("describe it in 3 to 2,000 characters."),
        "comp_status": _("choose planned or delivered."),
    }[name]


# The site form ---------------------------------------------------------------------------------


@dataclass
class SiteForm:
    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, site: Any) -> SiteForm:
        values = {
            "name": site.name,
            "kind": site.kind,
            "address": site.address,
            "postcode": site.postcode,
            "arrondissement": str(site.arrondissement),
            "latitude": "" if site.latitude is None else str(site.latitude),
            "longitude": "" if site.longitude is None else str(site.longitude),
            "opens_for_visits": "yes" if site.opens_for_visits else "",
            "description": site.description or "",
        }
        return cls(values=values)


def _postcodes(arrondissement: int) -> set[str]:
    return {f"750{arrondissement:02d}"} | ({"75116"} if arrondissement == 16 else set())


def read_site_form(sent: Any) -> SiteForm:
    """The posted site form, checked; `body` is the PATCH to send."""
    form = SiteForm()
    for name in site_labels():
        form.values[name] = str(sent.get(name) or "").strip()
    v, errors = form.values, form.errors
    if len(v["name"]) < 2:
        errors["name"] = _("Write the site's name (at least 2 characters).")
    elif too_long := formatting.too_long(v["name"], 200):
        errors["name"] = too_long
    if v["kind"] not in SITE_KINDS:
        errors["kind"] = _("Choose the kind of site.")
    if len(v["address"]) < 3:
        errors["address"] = _("Write the site's street address (at least 3 characters).")
    elif too_long := formatting.too_long(v["address"], 300):
        errors["address"] = too_long
    arrondissement = int(v["arrondissement"]) if v["arrondissement"].isdigit() else 0
    if not 1 <= arrondissement <= 20:
        errors["arrondissement"] = _("Choose the arrondissement.")
    if not POSTCODE_RE.match(v["postcode"]):
        errors["postcode"] = _("Write a Paris postcode, from 75001 to 75020 (or 75116).")
    elif arrondissement and v["postcode"] not in _postcodes(arrondissement):
        errors["postcode"] = _("This postcode is not in the arrondissement chosen.")
    coords: dict[str, float | None] = {}
    for name, low, high in (("latitude", 48.80, 48.91), ("longitude", 2.22, 2.47)):
        if not v[name]:
            coords[name] = None
            continue
        try:
            number = float(v[name].replace(",", "."))
        except ValueError:
            number = math.nan
        if not low <= number <= high:
            errors[name] = _("Write a number from %(low)s to %(high)s (a point in Paris).") % {
                "low": formatting.number(low, 2),
                "high": formatting.number(high, 2),
            }
        coords[name] = number
    if (coords.get("latitude") is None) != (coords.get("longitude") is None):
        errors.setdefault("longitude", _("Give both latitude and longitude, or neither."))
    if too_long := formatting.too_long(v["description"], 2000):
        errors["description"] = too_long
    form.body = {
        "name": v["name"],
        "kind": v["kind"],
        "address": v["address"],
        "postcode": v["postcode"],
        "arrondissement": arrondissement,
        **coords,
        "opens_for_visits": v["opens_for_visits"] == "yes",
        "description": v["description"] or None,
    }
    return form
