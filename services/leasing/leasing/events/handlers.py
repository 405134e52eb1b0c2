"""Tolerant views of inventory's unit events and what leasing does with them: keep the read
model of units, and close applications when a vacancy closes."""

from __future__ import annotations

import logging
from datetime import date, datetime

from pydantic import Field
from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.consumer import Handler
from fabkit.events import CloudEvent, ConsumedPayload
from leasing import service
from leasing.settings import LeasingSettings

log = logging.getLogger(__name__)


class UnitView(ConsumedPayload):
    """The part of inventory's unit snapshot leasing keeps; unknown fields are ignored."""

    unit_id: str
    site_id: str
    landlord_id: str
    landlord_name: str = ""
    site_name: str
    site_kind: str
    address: str
    postcode: str
    arrondissement: int
    reference: str
    floor: int = 0
    surface_m2: float
    allowed_trades: list[str] = Field(default_factory=list)
    use_class: str = "production"
    rent_eur_m2_year: float
    charges_eur_m2_year: float = 0.0
    status: str
    available_from: date | None = None
    opens_for_visits: bool = False
    version: int


class UnitChanged(ConsumedPayload):
    """inventory.unit.registered.v1 and inventory.unit.updated.v1."""

    unit: UnitView


class VacancyOpened(ConsumedPayload):
    vacancy_id: str
    opened_at: datetime
    unit: UnitView


class VacancyClosed(ConsumedPayload):
    vacancy_id: str
    unit_id: str
    status: str
    version: int


class UnitWithdrawn(ConsumedPayload):
    unit_id: str
    version: int


def unit_handlers(settings: LeasingSettings) -> dict[str, Handler]:
    """One handler per unit event type, bound to the service's settings."""

    async def on_unit_changed(session: AsyncSession, event: CloudEvent) -> None:
        view = UnitChanged.model_validate(event.data)
        applied = await service.apply_unit_snapshot(session, settings, view.unit.model_dump())
        _log_stale(applied, event)

    async def on_vacancy_opened(session: AsyncSession, event: CloudEvent) -> None:
        view = VacancyOpened.model_validate(event.data)
        applied = await service.apply_unit_snapshot(
            session, settings, view.unit.model_dump(), vacancy=(view.vacancy_id, view.opened_at)
        )
        _log_stale(applied, event)

    async def on_vacancy_closed(session: AsyncSession, event: CloudEvent) -> None:
        view = VacancyClosed.model_validate(event.data)
        known = await service.apply_vacancy_closed(
            session,
            settings,
            unit_id=view.unit_id,
            vacancy_id=view.vacancy_id,
            status=view.status,
            version=view.version,
        )
        if not known:
            log.info("vacancy_closed %s for a unit leasing never saw; nothing to close", event.id)

    async def on_withdrawn(session: AsyncSession, event: CloudEvent) -> None:
        view = UnitWithdrawn.model_validate(event.data)
        applied = await service.apply_unit_withdrawn(
            session, settings, unit_id=view.unit_id, version=view.version
        )
        _log_stale(applied, event)

    return {
        "inventory.unit.registered.v1": on_unit_changed,
        "inventory.unit.updated.v1": on_unit_changed,
        "inventory.unit.vacancy_opened.v1": on_vacancy_opened,
        "inventory.unit.vacancy_closed.v1": on_vacancy_closed,
        "inventory.unit.withdrawn.v1": on_withdrawn,
    }


def _log_stale(applied: bool, event: CloudEvent) -> None:
    if not applied:
        log.info(
            "%s %s is older than the listing (or its unit unknown); ignored", event.type, event.id
        )
