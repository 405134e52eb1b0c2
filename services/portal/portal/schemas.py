"""Tolerant views of the public APIs' answers: the fields the pages show, anything else ignored,
so a service adding a field never breaks a page."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field


class _View(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class SiteSummary(_View):
    id: str
    name: str
    kind: str
    address: str
    postcode: str
    arrondissement: int
    opens_for_visits: bool = False


class Unit(_View):
    id: str
    site_id: str
    landlord_id: str
    reference: str
    floor: int
    surface_m2: float
    ceiling_height_m: float | None = None
    floor_load_kg_m2: float | None = None
    power_kva: float | None = None
    goods_lift: bool = False
    loading_dock: bool = False
    extraction: bool = False
    step_free_access: bool = False
    allowed_trades: list[str] = Field(default_factory=list)
    use_class: str = "production"
    rent_eur_m2_year: float
    charges_eur_m2_year: float
    status: str
    available_from: date | None = None
    site: SiteSummary

    @property
    def rent_month(self) -> float:
        """The unit's rent for one month (€/m²/year × m² / 12)."""
        return self.rent_eur_m2_year * self.surface_m2 / 12

    @property
    def charges_month(self) -> float:
        return self.charges_eur_m2_year * self.surface_m2 / 12

    @property
    def total_month(self) -> float:
        return self.rent_month + self.charges_month


class UnitPage(_View):
    items: list[Unit]
    total: int
    limit: int
    offset: int


class Site(_View):
    id: str
    name: str
    kind: str
    address: str
    postcode: str
    arrondissement: int
    latitude: float | None = None
    longitude: float | None = None
    opens_for_visits: bool = False
    description: str | None = None


class SitePage(_View):
    items: list[Site]
    total: int


class Listing(_View):
    """Leasing's view of a unit: who lets it and which programmes cover it."""

    unit_id: str
    landlord_name: str
    programme_ids: list[str] = Field(default_factory=list)


class Criterion(_View):
    id: str
    kind: str
    label: str
    points: int
    under_years: int | None = None
    labels: list[str] | None = None
    legal_forms: list[str] | None = None
    points_per_month: int | None = None


class Rules(_View):
    max_business_age_years: int | None = None
    allowed_legal_forms: list[str] | None = None
    requires_trade_match: bool = False
    rent_cap_eur_m2_year: float
    max_residency_months: int
    renewable_times: int = 0


class Programme(_View):
    id: str
    name: str
    description: str = ""
    site_kinds: list[str]
    rules: Rules
    scoring: list[Criterion]
    max_points: int


class Catalogue(_View):
    programmes: list[Programme]

    def covering(self, site_kind: str, ids: list[str] | None = None) -> list[Programme]:
        """The programmes that cover a unit: leasing's list when known, else by site kind."""
        if ids:
            return [p for p in self.programmes if p.id in ids]
        return [p for p in self.programmes if site_kind in p.site_kinds]
