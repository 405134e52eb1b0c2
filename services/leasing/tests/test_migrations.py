"""The Alembic migrations build exactly the schema the models describe (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData

from fabkit.db import make_engine
from leasing import models
from leasing.cli import migrate
from leasing.settings import LeasingSettings

# The shared SQLModel metadata also holds other services' tables when their tests ran in this
# process; only leasing's own (and fabkit's) are compared.
LEASING_TABLES = {
    "artisan_profiles",
    "unit_listings",
    "applications",
    "application_decisions",
    "leases",
    "calls",
    "call_rankings",
    "jury_members",
    "jury_sessions",
    "appeals",
    "programme_publications",
    "outbox_messages",
    "processed_events",
    "idempotency_keys",
    "programme_versions",
    "privacy_requests",
    "account_deletions",
}


def leasing_metadata() -> MetaData:
    metadata = MetaData(naming_convention=models.SQLModel.metadata.naming_convention)
    for table in models.SQLModel.metadata.sorted_tables:
        if table.name in LEASING_TABLES:
            table.to_metadata(metadata)
    return metadata


async def test_migrations_match_the_models(database_url: str) -> None:
    settings = LeasingSettings(environment="test", database_url=database_url)
    await asyncio.to_thread(migrate, settings)
    expected = leasing_metadata()
    assert {t.name for t in expected.sorted_tables} == LEASING_TABLES

    def diff(connection: Any) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, expected))

    engine = make_engine(database_url)
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(diff)
    finally:
        await engine.dispose()
    assert differences == []
