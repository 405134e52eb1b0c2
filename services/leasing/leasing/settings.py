"""Leasing settings (env prefix LEASING_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from fabkit.settings import ServiceSettings


class LeasingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="LEASING_", extra="ignore")

    service_name: str = "leasing"
    database_url: str = "sqlite+aiosqlite:///./.run/leasing.db"
    event_source: str = "/fabrique/leasing"
    consumer_group: str = "leasing"
    programmes_file: Path | None = Field(
        default=None,
        description="Programme configuration (TOML or JSON); the packaged one if unset",
    )
    publish_programmes: bool = Field(
        default=True, description="Publish the programme catalogue at start-up when it changed"
    )
    offer_ttl_hours: float = Field(default=168.0, gt=0, le=24 * 90)
    run_sweeper: bool = Field(
        default=True,
        description="Expire unanswered offers and end leases past their end date in this process",
    )
    sweep_interval_s: float = Field(
        default=30.0, gt=0, le=3600, description="How often expired offers and leases are closed"
    )
    gauge_refresh_s: float = Field(default=5.0, gt=0, le=600)
