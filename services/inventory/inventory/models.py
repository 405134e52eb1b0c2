"""Inventory tables: landlords, sites, units, unit trades, the production-surface ledger,
its compensations and the development projects that carry production m²."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlmodel import Field, SQLModel

from fabkit.db import UTCDateTime
from fabkit.events import utcnow
from fabkit.models import IdempotencyRecord, OutboxMessage, ProcessedEvent


def _tz() -> Any:
    return UTCDateTime()


class Landlord(SQLModel, table=True):
    __tablename__ = "landlords"

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    name: str = Field(sa_column=Column(String(200), nullable=False, unique=True))
    kind: str = Field(sa_column=Column(String(30), nullable=False))
    contact_email: str | None = Field(default=None, sa_column=Column(String(320)))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(_tz(), nullable=False))


class Site(SQLModel, table=True):
    __tablename__ = "sites"
    __table_args__ = (
        CheckConstraint("arrondissement BETWEEN 1 AND 20", name="arrondissement_range"),
        Index("ix_sites_landlord", "landlord_id"),
    )

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    landlord_id: str = Field(
        sa_column=Column(String(36), ForeignKey("landlords.id"), nullable=False)
    )
    name: str = Field(sa_column=Column(String(200), nullable=False))
    kind: str = Field(sa_column=Column(String(30), nullable=False))
    address: str = Field(sa_column=Column(String(300), nullable=False))
    postcode: str = Field(sa_column=Column(String(5), nullable=False))
    arrondissement: int = Field(sa_column=Column(Integer, nullable=False))
    latitude: float | None = Field(default=None, sa_column=Column(Float))
    longitude: float | None = Field(default=None, sa_column=Column(Float))
    opens_for_visits: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    description: str | None = Field(default=None, sa_column=Column(Text))
    # Logistics attributes (LOGISTICS_COLUMNS), copied onto the site's units.
    rail_siding: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=false())
    )
    river_quay_distance_m: int | None = Field(default=None, sa_column=Column(Integer))
    petite_ceinture_station: str | None = Field(default=None, sa_column=Column(String(100)))
    freight_max_weight_t: float | None = Field(default=None, sa_column=Column(Float))
    freight_max_height_m: float | None = Field(default=None, sa_column=Column(Float))
    cargo_bike_spaces: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default="0")
    )
    version: int = Field(default=1, sa_column=Column(Integer, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(_tz(), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(_tz(), nullable=False))


# The site's logistics columns, of the same name and type on units (copied, so that a unit
# search filters on the units' own indexed columns).
LOGISTICS_COLUMNS = (
    "rail_siding",
    "river_quay_distance_m",
    "petite_ceinture_station",
    "freight_max_weight_t",
    "freight_max_height_m",
    "cargo_bike_spaces",
)


class Unit(SQLModel, table=True):
    __tablename__ = "units"
    __table_args__ = (
        UniqueConstraint("site_id", "reference", name="uq_units_site_reference"),
        CheckConstraint("surface_m2 > 0", name="surface_positive"),
        CheckConstraint("rent_eur_m2_year >= 0", name="rent_non_negative"),
        Index("ix_units_search", "status", "arrondissement", "rent_eur_m2_year"),
        Index("ix_units_site", "site_id"),
        CheckConstraint(
            "space_kind = 'stall' OR (period_start IS NULL AND period_end IS NULL)",
            name="workshop_has_no_period",
        ),
        Index("ix_units_space_kind", "space_kind", "status"),
        Index("ix_units_rail_siding", "rail_siding", "status"),
        Index("ix_units_river_quay", "river_quay_distance_m"),
        Index("ix_units_petite_ceinture", "petite_ceinture_station"),
        Index("ix_units_freight", "freight_max_weight_t", "freight_max_height_m"),
        Index("ix_units_cargo_bike", "cargo_bike_spaces"),
    )

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    site_id: str = Field(sa_column=Column(String(36), ForeignKey("sites.id"), nullable=False))
    # Copied from the site so ownership checks and searches need no join.
    landlord_id: str = Field(sa_column=Column(String(36), nullable=False))
    arrondissement: int = Field(sa_column=Column(Integer, nullable=False))
    site_kind: str = Field(sa_column=Column(String(30), nullable=False))
    reference: str = Field(sa_column=Column(String(60), nullable=False))
    floor: int = Field(sa_column=Column(Integer, nullable=False))
    surface_m2: float = Field(sa_column=Column(Float, nullable=False))
    ceiling_height_m: float | None = Field(default=None, sa_column=Column(Float))
    floor_load_kg_m2: float | None = Field(default=None, sa_column=Column(Float))
    power_kva: float | None = Field(default=None, sa_column=Column(Float))
    goods_lift: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    loading_dock: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    extraction: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    step_free_access: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    allowed_trades: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    use_class: str = Field(sa_column=Column(String(20), nullable=False))
    rent_eur_m2_year: float = Field(sa_column=Column(Float, nullable=False))
    charges_eur_m2_year: float = Field(default=0, sa_column=Column(Float, nullable=False))
    status: str = Field(sa_column=Column(String(20), nullable=False))
    available_from: date | None = Field(default=None, sa_column=Column(Date))
    current_vacancy_id: str | None = Field(default=None, sa_column=Column(String(36)))
    # A workshop (production space) or a seasonal sales stall let from period_start to
    # period_end (domain.period_problem); stalls count for no production surface.
    space_kind: str = Field(
        default="workshop",
        sa_column=Column(String(20), nullable=False, server_default="workshop"),
    )
    period_start: date | None = Field(default=None, sa_column=Column(Date))
    period_end: date | None = Field(default=None, sa_column=Column(Date))
    # Copied from the site (models.LOGISTICS_COLUMNS), like arrondissement and site_kind.
    rail_siding: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=false())
    )
    river_quay_distance_m: int | None = Field(default=None, sa_column=Column(Integer))
    petite_ceinture_station: str | None = Field(default=None, sa_column=Column(String(100)))
    freight_max_weight_t: float | None = Field(default=None, sa_column=Column(Float))
    freight_max_height_m: float | None = Field(default=None, sa_column=Column(Float))
    cargo_bike_spaces: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default="0")
    )
    # The artisan of the unit's signed lease (set and cleared by leasing's lease events): the
    # tenant who may publish visit slots of this unit.
    tenant_artisan_id: str | None = Field(default=None, sa_column=Column(String(36)))
    # The development project whose production-m² commitment this unit counts towards.
    project_id: str | None = Field(
        default=None,
        sa_column=Column(String(36), ForeignKey("development_projects.id"), index=True),
    )
    version: int = Field(default=1, sa_column=Column(Integer, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(_tz(), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(_tz(), nullable=False))


class UnitTrade(SQLModel, table=True):
    """One allowed trade of a unit, so a trade search uses an index on every database."""

    __tablename__ = "unit_trades"
    __table_args__ = (Index("ix_unit_trades_trade", "trade", "unit_id"),)

    unit_id: str = Field(
        sa_column=Column(String(36), ForeignKey("units.id", ondelete="CASCADE"), primary_key=True)
    )
    trade: str = Field(sa_column=Column(String(60), primary_key=True))


class SurfaceLedgerEntry(SQLModel, table=True):
    """One change of the city's production surface: append-only, never updated."""

    __tablename__ = "production_surface_ledger"
    __table_args__ = (
        Index("ix_ledger_arrondissement_at", "arrondissement", "recorded_at"),
        Index("ix_ledger_site_at", "site_id", "recorded_at"),
    )

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    )
    unit_id: str = Field(sa_column=Column(String(36), nullable=False))
    site_id: str = Field(sa_column=Column(String(36), nullable=False))
    arrondissement: int = Field(sa_column=Column(Integer, nullable=False))
    change: str = Field(sa_column=Column(String(30), nullable=False))
    delta_m2: float = Field(sa_column=Column(Float, nullable=False))
    production_m2_after: float = Field(sa_column=Column(Float, nullable=False))
    reason: str | None = Field(default=None, sa_column=Column(Text))
    actor: str = Field(sa_column=Column(String(120), nullable=False))
    recorded_at: datetime = Field(default_factory=utcnow, sa_column=Column(_tz(), nullable=False))
    # A loss (negative delta) names the compensation that makes it good, or is recorded as
    # uncompensated by an officer or admin with a reason; gains carry neither.
    compensation_id: str | None = Field(
        default=None,
        sa_column=Column(String(36), ForeignKey("surface_compensations.id"), index=True),
    )
    uncompensated: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=false())
    )
    uncompensated_reason: str | None = Field(default=None, sa_column=Column(Text))


class DevelopmentProject(SQLModel, table=True):
    """An urban project that must keep or create production m² by its delivery date."""

    __tablename__ = "development_projects"
    __table_args__ = (
        CheckConstraint("arrondissement BETWEEN 1 AND 20", name="arrondissement_range"),
        CheckConstraint("committed_m2 >= 0", name="committed_non_negative"),
        Index("ix_projects_arrondissement", "arrondissement"),
    )

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    name: str = Field(sa_column=Column(String(200), nullable=False, unique=True))
    arrondissement: int = Field(sa_column=Column(Integer, nullable=False))
    committed_m2: float = Field(sa_column=Column(Float, nullable=False))
    delivery_on: date = Field(sa_column=Column(Date, nullable=False))
    status: str = Field(sa_column=Column(String(20), nullable=False))
    description: str | None = Field(default=None, sa_column=Column(Text))
    created_by: str = Field(sa_column=Column(String(120), nullable=False))
    version: int = Field(default=1, sa_column=Column(Integer, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(_tz(), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(_tz(), nullable=False))


class SurfaceCompensation(SQLModel, table=True):
    """New production m² promised (planned) or delivered in the arrondissement of a loss."""

    __tablename__ = "surface_compensations"
    __table_args__ = (
        CheckConstraint("arrondissement BETWEEN 1 AND 20", name="arrondissement_range"),
        CheckConstraint("m2 > 0", name="m2_positive"),
        Index("ix_compensations_status_due", "status", "due_on"),
        Index("ix_compensations_arrondissement", "arrondissement"),
    )

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    arrondissement: int = Field(sa_column=Column(Integer, nullable=False))
    m2: float = Field(sa_column=Column(Float, nullable=False))
    status: str = Field(sa_column=Column(String(20), nullable=False))
    due_on: date = Field(sa_column=Column(Date, nullable=False))
    description: str = Field(sa_column=Column(Text, nullable=False))
    project_id: str | None = Field(
        default=None, sa_column=Column(String(36), ForeignKey("development_projects.id"))
    )
    # The unit whose production m² deliver the compensation, once known.
    unit_id: str | None = Field(default=None, sa_column=Column(String(36), ForeignKey("units.id")))
    delivered_on: date | None = Field(default=None, sa_column=Column(Date))
    created_by: str = Field(sa_column=Column(String(120), nullable=False))
    delivered_by: str | None = Field(default=None, sa_column=Column(String(120)))
    version: int = Field(default=1, sa_column=Column(Integer, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(_tz(), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(_tz(), nullable=False))


class OpenDataFile(SQLModel, table=True):
    """One published open-data file (docs/open-data.md), stored so every replica serves the
    same bytes; replaced whole at each regeneration."""

    __tablename__ = "open_data_files"

    name: str = Field(sa_column=Column(String(80), primary_key=True))  # "vacancies.csv"
    dataset: str = Field(sa_column=Column(String(60), nullable=False))
    format: str = Field(sa_column=Column(String(10), nullable=False))
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    sha256: str = Field(sa_column=Column(String(64), nullable=False))
    rows: int = Field(sa_column=Column(Integer, nullable=False))
    generated_at: datetime = Field(sa_column=Column(_tz(), nullable=False))


class VisitSlot(SQLModel, table=True):
    """A workshop visit slot a site (its landlord) or a tenant of one of its units publishes;
    bookings are notifications' (it consumes the slots' events)."""

    __tablename__ = "visit_slots"
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="visit_ends_after_start"),
        CheckConstraint("capacity BETWEEN 1 AND 200", name="visit_capacity_range"),
        CheckConstraint("host_kind IN ('site', 'tenant')", name="visit_host_kind"),
        CheckConstraint("status IN ('scheduled', 'cancelled')", name="visit_status"),
        Index("ix_visit_slots_starts", "status", "starts_at"),
        Index("ix_visit_slots_site", "site_id", "starts_at"),
    )

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    site_id: str = Field(sa_column=Column(String(36), ForeignKey("sites.id"), nullable=False))
    unit_id: str | None = Field(
        default=None, sa_column=Column(String(36), ForeignKey("units.id"), nullable=True)
    )
    # Copied from the site, like on units, so lists filter without a join.
    landlord_id: str = Field(sa_column=Column(String(36), nullable=False))
    arrondissement: int = Field(sa_column=Column(Integer, nullable=False))
    host_kind: str = Field(sa_column=Column(String(10), nullable=False))
    host_artisan_id: str | None = Field(default=None, sa_column=Column(String(36)))
    title: str = Field(sa_column=Column(String(120), nullable=False))
    description: str = Field(default="", sa_column=Column(Text, nullable=False))
    starts_at: datetime = Field(sa_column=Column(_tz(), nullable=False))
    ends_at: datetime = Field(sa_column=Column(_tz(), nullable=False))
    capacity: int = Field(sa_column=Column(Integer, nullable=False))
    languages: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    accessibility: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    accessibility_notes: str | None = Field(default=None, sa_column=Column(String(500)))
    trades: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="scheduled", sa_column=Column(String(20), nullable=False))
    cancel_reason: str | None = Field(default=None, sa_column=Column(String(500)))
    demo: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=false())
    )
    version: int = Field(default=1, sa_column=Column(Integer, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(_tz(), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(_tz(), nullable=False))


__all__ = [
    "DevelopmentProject",
    "IdempotencyRecord",
    "Landlord",
    "OpenDataFile",
    "OutboxMessage",
    "ProcessedEvent",
    "Site",
    "SurfaceCompensation",
    "SurfaceLedgerEntry",
    "Unit",
    "UnitTrade",
    "VisitSlot",
]
