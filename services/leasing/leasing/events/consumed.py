"""Tolerant views of the events leasing consumes: inventory's unit events, the only source of
its read model of units. Unknown fields are ignored, so inventory can add some."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import Field

from fabkit.events import ConsumedPayload

UNIT_TOPIC = "inventory.unit.events"


class UnitView(ConsumedPayload):
    """The part of inventory's unit snapshot leasing keeps."""

    unit_id: str
    site_id: str
    landlord_id: str
    landlord_name: str = ""
    site_name: str
    site_kind: str
    address: str
    postcode: str
    arrondissement: int
    reference: str
    floor: int = 0
    surface_m2: float
    allowed_trades: list[str] = Field(default_factory=list)
    use_class: str = "production"
    rent_eur_m2_year: float
    charges_eur_m2_year: float = 0.0
    status: str
    available_from: date | None = None
    opens_for_visits: bool = False
    version: int


class UnitChanged(ConsumedPayload):
    """inventory.unit.registered.v1 and inventory.unit.updated.v1."""

    unit: UnitView


class VacancyOpened(ConsumedPayload):
    """inventory.unit.vacancy_opened.v1."""

    vacancy_id: str
    opened_at: datetime
    unit: UnitView


class VacancyClosed(ConsumedPayload):
    """inventory.unit.vacancy_closed.v1."""

    vacancy_id: str
    unit_id: str
    status: str
    version: int


class UnitWithdrawn(ConsumedPayload):
    """inventory.unit.withdrawn.v1."""

    unit_id: str
    version: int
