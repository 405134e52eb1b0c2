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
