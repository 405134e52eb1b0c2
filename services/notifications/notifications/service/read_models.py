"""Leasing's artisans and programmes, kept locally for the eligibility pre-filter and the
applicants' e-mail (notifications never calls leasing)."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from notifications import repository as repo
from notifications.events.consumed import ArtisanIn, ProgrammePublishedIn
from notifications.models import Artisan, Programme
from notifications.service.common import now


async def apply_artisan(session: AsyncSession, data: ArtisanIn) -> None:
    """Upsert leasing's artisan profile; an older version than the one held is ignored."""
    artisan = await repo.get_artisan(session, data.artisan_id)
    if artisan is None:
        artisan = Artisan(artisan_id=data.artisan_id)
        session.add(artisan)
    elif data.version and artisan.version and data.version < artisan.version:
        return
    artisan.display_name = data.display_name
    artisan.business_name = data.business_name
    artisan.trades = list(data.trades)
    artisan.business_created_on = data.business_created_on
    artisan.legal_form = data.legal_form
    artisan.labels = list(data.labels)
    artisan.contact_email = data.contact_email
    artisan.version = data.version
    artisan.updated_at = now()
    await session.flush()


async def apply_programme(session: AsyncSession, published: ProgrammePublishedIn) -> None:
    """Upsert a published programme; retire those its catalogue no longer lists."""
    data, version = published.programme, published.catalogue.version
    programme = await repo.get_programme(session, data.programme_id)
    if programme is None:
        programme = Programme(programme_id=data.programme_id, name=data.name)
        session.add(programme)
    elif version < programme.catalogue_version:
        return  # a newer catalogue was applied already
    programme.name = data.name or data.programme_id
    programme.site_kinds = list(data.site_kinds)
    programme.rules = data.rules.model_dump(mode="json")
    programme.catalogue_version = version
    programme.retired = False
    programme.updated_at = now()
    await session.flush()
    if published.catalogue.programme_ids is not None:
        await repo.retire_programmes_not_in(
            session, set(published.catalogue.programme_ids), up_to_version=version
        )
