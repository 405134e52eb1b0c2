"""What leasing does with the events it consumes: keep the read model of units, and close
applications when a vacancy closes. `consumer_specs` binds the topics to these handlers."""

from __future__ import annotations

import logging

from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.consumer import Handler, TopicHandlers
from fabkit.events import CloudEvent
from fabkit.runtime import ConsumerSpec
from leasing.eligibility import Catalogue
from leasing.events.consumed import (
    UNIT_TOPIC,
    UnitChanged,
    UnitWithdrawn,
    VacancyClosed,
    VacancyOpened,
)
from leasing.events.published import DLQ_TOPIC
from leasing.programmes import load_catalogue
from leasing.service import calls, listings
from leasing.settings import LeasingSettings

log = logging.getLogger(__name__)


async def on_unit_changed(session: AsyncSession, event: CloudEvent) -> None:
    """A unit was registered or updated: refresh its listing."""
    view = UnitChanged.model_validate(event.data)
    _log_stale(await listings.apply_unit_snapshot(session, view.unit.model_dump()), event)


async def on_vacancy_opened(session: AsyncSession, event: CloudEvent) -> None:
    """A vacancy opened: refresh the listing and open it for applications."""
    view = VacancyOpened.model_validate(event.data)
    applied = await listings.apply_unit_snapshot(
        session, view.unit.model_dump(), vacancy=(view.vacancy_id, view.opened_at)
    )
    _log_stale(applied, event)


def opens_calls(catalogue: Catalogue) -> Handler:
    """on_vacancy_opened, then the vacancy's call for applications (once per vacancy)."""

    async def on_vacancy_opened_with_call(session: AsyncSession, event: CloudEvent) -> None:
        await on_vacancy_opened(session, event)
        view = VacancyOpened.model_validate(event.data)
        await calls.open_for_vacancy(session, catalogue, view.unit.unit_id, view.vacancy_id)

    return on_vacancy_opened_with_call


async def on_vacancy_closed(session: AsyncSession, event: CloudEvent) -> None:
    """A vacancy closed: every application still open on it is closed."""
    view = VacancyClosed.model_validate(event.data)
    known = await listings.apply_vacancy_closed(
        session,
        unit_id=view.unit_id,
        vacancy_id=view.vacancy_id,
        status=view.status,
        version=view.version,
    )
    if not known:
        log.info("vacancy_closed %s for a unit leasing never saw; nothing to close", event.id)


async def on_withdrawn(session: AsyncSession, event: CloudEvent) -> None:
    """A unit was withdrawn: its listing says so and its vacancy closes."""
    view = UnitWithdrawn.model_validate(event.data)
    applied = await listings.apply_unit_withdrawn(
        session, unit_id=view.unit_id, version=view.version
    )
    _log_stale(applied, event)


UNIT_HANDLERS: dict[str, Handler] = {
    "inventory.unit.registered.v1": on_unit_changed,
    "inventory.unit.updated.v1": on_unit_changed,
    "inventory.unit.vacancy_opened.v1": on_vacancy_opened,
    "inventory.unit.vacancy_closed.v1": on_vacancy_closed,
    "inventory.unit.withdrawn.v1": on_withdrawn,
}


def consumer_specs(settings: LeasingSettings) -> list[ConsumerSpec]:
    """Leasing's consumer group: inventory's unit events, poison to leasing's dead letters."""
    handlers = dict(UNIT_HANDLERS)
    handlers["inventory.unit.vacancy_opened.v1"] = opens_calls(
        load_catalogue(settings.programmes_file)
    )
    return [
        ConsumerSpec(
            group_id=settings.consumer_group,
            topics={UNIT_TOPIC: TopicHandlers(handlers=handlers)},
            dlq_topic=DLQ_TOPIC,
        )
    ]


def _log_stale(applied: bool, event: CloudEvent) -> None:
    if not applied:
        log.info(
            "%s %s is older than the listing (or its unit unknown); ignored", event.type, event.id
        )
