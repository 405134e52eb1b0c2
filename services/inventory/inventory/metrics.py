"""Inventory business metrics: units by status, vacant production m², vacancies opened, and
the no-net-loss rule's losses without compensation, late compensations and net balance."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.metrics import counter, gauge, personal_data_oldest
from inventory import repository as repo
from inventory.domain import UnitStatus

log = logging.getLogger(__name__)

VACANCIES_OPENED = counter(
    "inventory_vacancies_opened_total", "Vacancies opened (units made available)"
)
UNITS_BY_STATUS = gauge("inventory_units", "Units by status", ("status",))
VACANT_PRODUCTION_M2 = gauge(
    "inventory_vacant_production_surface_square_meters",
    "Production m² currently available, by arrondissement",
    ("arrondissement",),
)
# One name across services (the job label tells them apart); refreshed by the retention job and
# on a timer (service/retention.py).
PERSONAL_DATA_OLDEST = personal_data_oldest()
UNCOMPENSATED_M2 = counter(
    "inventory_uncompensated_production_surface_square_meters",
    "Production m² recorded as lost without compensation, by arrondissement",
    ("arrondissement",),
)
LATE_COMPENSATIONS = gauge(
    "inventory_surface_compensations_late",
    "Planned compensations of lost production m² past their due date, by arrondissement",
    ("arrondissement",),
)
NET_PRODUCTION_M2 = gauge(
    "inventory_production_surface_net_square_meters",
    "Net production m² gained (or lost, below 0) since the ledger began, by arrondissement",
    ("arrondissement",),
)


async def refresh_business_gauges(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        by_status = await repo.count_units_by_status(session)
        vacant = await repo.vacant_production_m2_by_arrondissement(session)
        late = await repo.late_compensations_by_arrondissement(session, datetime.now(UTC).date())
        net = await repo.ledger_net_by_arrondissement(session)
    for status in UnitStatus:
        UNITS_BY_STATUS.labels(status.value).set(by_status.get(status.value, 0))
    for arrondissement in range(1, 21):
        VACANT_PRODUCTION_M2.labels(str(arrondissement)).set(vacant.get(arrondissement, 0.0))
        LATE_COMPENSATIONS.labels(str(arrondissement)).set(late.get(arrondissement, 0))
        NET_PRODUCTION_M2.labels(str(arrondissement)).set(net.get(arrondissement, 0.0))
