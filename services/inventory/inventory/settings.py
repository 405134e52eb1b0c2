"""Inventory settings (env prefix INVENTORY_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from fabkit.settings import ServiceSettings


class InventorySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INVENTORY_", extra="ignore")

    service_name: str = "inventory"
    database_url: str = "sqlite+aiosqlite:///./.run/inventory.db"
    event_source: str = "/fabrique/inventory"
    consumer_group: str = "inventory"
    protected_change_reason_min_chars: int = Field(default=10, ge=1, le=500)
    # A CSV import of units: 1 MiB holds some 5,000 rows; one transaction per file.
    import_max_bytes: int = Field(default=1_048_576, ge=1_024, le=16_777_216)
    import_max_rows: int = Field(default=2_000, ge=1, le=20_000)
    # Retention (service/retention.py): how often the process that runs the relay prunes the
    # outbox's published rows (8 days after publication).
    retention_interval_s: float = Field(default=86_400.0, ge=60, le=7 * 86_400)
    # The Géoplateforme geocoding API (https://data.geopf.fr/geocodage); unset: off (tests, CI,
    # no internet). A site registered or moved without coordinates is looked up there.
    geocoder_url: str | None = None
    geocoder_timeout_s: float = Field(default=3.0, gt=0, le=30)
    # Below this score (0 to 1) a match is not taken: under ~0.7 the API often answers the
    # street or another town for a misspelt number.
    geocoder_min_score: float = Field(default=0.7, ge=0, le=1)
    # Open-data files (docs/open-data.md): regenerated when the stored ones are this old.
    open_data_interval_s: float = Field(default=86_400.0, ge=60, le=30 * 86_400)
    open_data_check_every_s: float = Field(default=300.0, ge=1, le=86_400)
