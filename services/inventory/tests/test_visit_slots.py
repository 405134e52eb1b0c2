"""Workshop visits (issue 18), inventory's part so far: a unit's tenant is kept from leasing's
lease events (a signed lease names it, an ended one clears it), and migration 0005 adds the
tenant column and the visit_slots table, and goes down again."""

from __future__ import annotations

from typing import Any

from alembic import command
from sqlalchemy import inspect

from fabkit.db import make_engine
from fabkit.migrations import alembic_config
from inventory.cli import MIGRATIONS, migrate
from inventory.models import Unit
from inventory.settings import InventorySettings

from .conftest import Api
from .test_lease_events import feed, inventory, lease_event, vacant_unit
from .test_new_spaces import _differences

__all__ = ["inventory"]  # the fixture, used by name


async def tenant_of(app: Any, unit_id: str) -> str | None:
    async with app.state.runtime.sessions() as session:
        unit = await session.get(Unit, unit_id)
        assert unit is not None
        return unit.tenant_artisan_id


async def test_a_signed_lease_names_the_tenant_and_its_end_clears_it(
    inventory: tuple[Api, Any],
) -> None:
    api, app = inventory
    unit, _ = await vacant_unit(api)
    signed = lease_event("signed", unit)
    artisan_id = signed.data["lease"]["artisan_id"]
    assert await tenant_of(app, unit["id"]) is None

    await feed(app, signed)
    assert await tenant_of(app, unit["id"]) == artisan_id

    # The end of another artisan's older lease leaves the current tenant in place.
    stale = lease_event("ended", unit)
    await feed(app, stale)
    assert await tenant_of(app, unit["id"]) == artisan_id

    ended = lease_event("ended", unit, signed.data["lease"]["lease_id"])
    ended.data["lease"]["artisan_id"] = artisan_id
    await feed(app, ended)
    assert await tenant_of(app, unit["id"]) is None


def _schema(database_url: str) -> tuple[set[str], set[str]]:
    import asyncio

    async def read() -> tuple[set[str], set[str]]:
        engine = make_engine(database_url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(
                    lambda sync: (
                        set(inspect(sync).get_table_names()),
                        {c["name"] for c in inspect(sync).get_columns("units")},
                    )
                )
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_migration_0005_goes_up_and_down(database_url: str) -> None:
    settings = InventorySettings(environment="test", database_url=database_url)
    migrate(settings)
    tables, unit_columns = _schema(database_url)
    assert "visit_slots" in tables and "tenant_artisan_id" in unit_columns
    assert _differences(database_url) == []  # the models and the migrations agree

    command.downgrade(alembic_config(MIGRATIONS, database_url), "0004")
    tables, unit_columns = _schema(database_url)
    assert "visit_slots" not in tables and "tenant_artisan_id" not in unit_columns

    migrate(settings)
    assert "visit_slots" in _schema(database_url)[0]
