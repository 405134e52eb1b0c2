"""Events inventory publishes: frozen, past-tense, versioned payloads (the producer's contract)."""

from __future__ import annotations

from datetime import date, datetime

from fabkit.events import EventPayload

UNIT_TOPIC = "inventory.unit.events"
SITE_TOPIC = "inventory.site.events"
SURFACE_TOPIC = "inventory.surface.events"
DLQ_TOPIC = "inventory.dlq"


class SiteSnapshot(EventPayload):
    site_id: str
    landlord_id: str
    name: str
    kind: str
    address: str
    postcode: str
    arrondissement: int
    latitude: float | None
    longitude: float | None
    opens_for_visits: bool
    version: int


class UnitSnapshot(EventPayload):
    """Everything a subscriber needs to decide about a unit without calling inventory."""

    unit_id: str
    site_id: str
    landlord_id: str
    landlord_name: str
    reference: str
    floor: int
    surface_m2: float
    ceiling_height_m: float | None
    floor_load_kg_m2: float | None
    power_kva: float | None
    goods_lift: bool
    loading_dock: bool
    extraction: bool
    step_free_access: bool
    allowed_trades: list[str]
    use_class: str
    rent_eur_m2_year: float
    charges_eur_m2_year: float
    status: str
    available_from: date | None
    site_name: str
    site_kind: str
    address: str
    postcode: str
    arrondissement: int
    latitude: float | None
    longitude: float | None
    opens_for_visits: bool
    version: int


class UnitRegistered(EventPayload):
    event_type = "inventory.unit.registered.v1"
    unit: UnitSnapshot


class UnitUpdated(EventPayload):
    event_type = "inventory.unit.updated.v1"
    unit: UnitSnapshot
    changed: list[str]


class VacancyOpened(EventPayload):
    event_type = "inventory.unit.vacancy_opened.v1"
    vacancy_id: str
    opened_at: datetime
    unit: UnitSnapshot


class VacancyClosed(EventPayload):
    event_type = "inventory.unit.vacancy_closed.v1"
    vacancy_id: str
    unit_id: str
    site_id: str
    status: str
    closed_at: datetime
    version: int


class UnitWithdrawn(EventPayload):
    event_type = "inventory.unit.withdrawn.v1"
    unit_id: str
    site_id: str
    reason: str | None
    version: int


class SiteRegistered(EventPayload):
    event_type = "inventory.site.registered.v1"
    site: SiteSnapshot


class SiteUpdated(EventPayload):
    event_type = "inventory.site.updated.v1"
    site: SiteSnapshot
    changed: list[str]


class ProductionSurfaceChanged(EventPayload):
    event_type = "inventory.production_surface.changed.v1"
    ledger_id: int
    unit_id: str
    site_id: str
    arrondissement: int
    change: str
    delta_m2: float
    production_m2_after: float
    reason: str | None
    recorded_at: datetime


UNIT_EVENT_TYPES = frozenset(
    cls.event_type
    for cls in (UnitRegistered, UnitUpdated, VacancyOpened, VacancyClosed, UnitWithdrawn)
)
ALL_PAYLOADS: tuple[type[EventPayload], ...] = (
    UnitRegistered,
    UnitUpdated,
    VacancyOpened,
    VacancyClosed,
    UnitWithdrawn,
    SiteRegistered,
    SiteUpdated,
    ProductionSurfaceChanged,
)
