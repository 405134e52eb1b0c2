"""Events inventory publishes: frozen, past-tense, versioned payloads (the producer's contract),
the topic each goes on, and `emit`, which stages them in the caller's transaction."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

from pydantic import Field

from fabkit.events import EventPayload
from fabkit.outbox import Emitter

if TYPE_CHECKING:
    from inventory.models import Landlord, Site, SurfaceCompensation, SurfaceLedgerEntry, Unit

UNIT_TOPIC = "inventory.unit.events"
SITE_TOPIC = "inventory.site.events"
SURFACE_TOPIC = "inventory.surface.events"
DLQ_TOPIC = "inventory.dlq"


class LogisticsSnapshot(EventPayload):
    """A site's logistics attributes (the defaults say "none recorded")."""

    rail_siding: bool = False
    river_quay_distance_m: int | None = None
    petite_ceinture_station: str | None = None
    freight_max_weight_t: float | None = None
    freight_max_height_m: float | None = None
    cargo_bike_spaces: int = 0

    @classmethod
    def of(cls, row: Site | Unit) -> LogisticsSnapshot:
        """The site's attributes, or the copy its unit carries."""
        return cls(
            rail_siding=row.rail_siding,
            river_quay_distance_m=row.river_quay_distance_m,
            petite_ceinture_station=row.petite_ceinture_station,
            freight_max_weight_t=row.freight_max_weight_t,
            freight_max_height_m=row.freight_max_height_m,
            cargo_bike_spaces=row.cargo_bike_spaces,
        )


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
    # Added inside v1 (optional with a default): older events carry none.
    logistics: LogisticsSnapshot = Field(default_factory=LogisticsSnapshot)

    @classmethod
    def of(cls, site: Site) -> SiteSnapshot:
        """The site as subscribers see it."""
        return cls(
            site_id=site.id,
            landlord_id=site.landlord_id,
            name=site.name,
            kind=site.kind,
            address=site.address,
            postcode=site.postcode,
            arrondissement=site.arrondissement,
            latitude=site.latitude,
            longitude=site.longitude,
            opens_for_visits=site.opens_for_visits,
            version=site.version,
            logistics=LogisticsSnapshot.of(site),
        )


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
    # Added inside v1 (optional with defaults): a workshop, or a stall let for a period, and
    # its site's logistics attributes.
    space_kind: str = "workshop"
    period_start: date | None = None
    period_end: date | None = None
    logistics: LogisticsSnapshot = Field(default_factory=LogisticsSnapshot)

    @classmethod
    def of(cls, unit: Unit, site: Site, landlord: Landlord) -> UnitSnapshot:
        """The unit with its site's address and its landlord's name, as subscribers see it."""
        return cls(
            unit_id=unit.id,
            site_id=unit.site_id,
            landlord_id=unit.landlord_id,
            landlord_name=landlord.name,
            reference=unit.reference,
            floor=unit.floor,
            surface_m2=unit.surface_m2,
            ceiling_height_m=unit.ceiling_height_m,
            floor_load_kg_m2=unit.floor_load_kg_m2,
            power_kva=unit.power_kva,
            goods_lift=unit.goods_lift,
            loading_dock=unit.loading_dock,
            extraction=unit.extraction,
            step_free_access=unit.step_free_access,
            allowed_trades=list(unit.allowed_trades),
            use_class=unit.use_class,
            rent_eur_m2_year=unit.rent_eur_m2_year,
            charges_eur_m2_year=unit.charges_eur_m2_year,
            status=unit.status,
            available_from=unit.available_from,
            site_name=site.name,
            site_kind=site.kind,
            address=site.address,
            postcode=site.postcode,
            arrondissement=site.arrondissement,
            latitude=site.latitude,
            longitude=site.longitude,
            opens_for_visits=site.opens_for_visits,
            version=unit.version,
            space_kind=unit.space_kind,
            period_start=unit.period_start,
            period_end=unit.period_end,
            logistics=LogisticsSnapshot.of(unit),
        )


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
    # A loss (delta_m2 < 0) names its compensation or is marked uncompensated; a gain neither.
    compensation_id: str | None = None
    compensation_m2: float | None = None
    compensation_status: str | None = None
    compensation_due_on: date | None = None
    compensation_project_id: str | None = None
    uncompensated: bool = False
    uncompensated_reason: str | None = None

    @classmethod
    def of(
        cls, entry: SurfaceLedgerEntry, compensation: SurfaceCompensation | None = None
    ) -> ProductionSurfaceChanged:
        """The ledger entry as published, with the compensation it names (as it stood then);
        the entry must have been flushed (it needs its id)."""
        assert entry.id is not None, "flush the ledger entry before publishing it"
        return cls(
            ledger_id=entry.id,
            unit_id=entry.unit_id,
            site_id=entry.site_id,
            arrondissement=entry.arrondissement,
            change=entry.change,
            delta_m2=entry.delta_m2,
            production_m2_after=entry.production_m2_after,
            reason=entry.reason,
            recorded_at=entry.recorded_at,
            compensation_id=compensation.id if compensation else None,
            compensation_m2=compensation.m2 if compensation else None,
            compensation_status=compensation.status if compensation else None,
            compensation_due_on=compensation.due_on if compensation else None,
            compensation_project_id=compensation.project_id if compensation else None,
            uncompensated=entry.uncompensated,
            uncompensated_reason=entry.uncompensated_reason,
        )


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
TOPIC_OF: dict[str, str] = {
    **{event_type: UNIT_TOPIC for event_type in UNIT_EVENT_TYPES},
    SiteRegistered.event_type: SITE_TOPIC,
    SiteUpdated.event_type: SITE_TOPIC,
    ProductionSurfaceChanged.event_type: SURFACE_TOPIC,
}

# The source is the default of InventorySettings.event_source until create_app (or the CLI)
# binds the configured one.
emit = Emitter("/fabrique/inventory", TOPIC_OF)
