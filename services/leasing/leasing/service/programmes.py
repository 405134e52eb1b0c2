"""Publishing the programme catalogue, so other services and auditors know the rules in force."""

from __future__ import annotations

import logging

from sqlalchemy.exc import IntegrityError

from leasing import repository as repo
from leasing.eligibility import Catalogue
from leasing.events.published import (
    CatalogueInfo,
    ProgrammePublished,
    ProgrammeSnapshot,
    emit,
)
from leasing.models import ProgrammePublication
from leasing.programmes import content_hash
from leasing.service.common import Sessions, utcnow

log = logging.getLogger(__name__)


async def publish_programmes(sessions: Sessions, catalogue: Catalogue) -> bool:
    """Publish every programme when the catalogue differs from the last one published."""
    digest = content_hash(catalogue)
    now = utcnow()
    try:
        async with sessions() as session, session.begin():
            state = await repo.get_publication(session, for_update=True)
            if state is not None and state.config_hash == digest:
                return False
            ids = [p.id for p in catalogue.programmes]
            version = state.catalogue_version + 1 if state is not None else 1
            if state is None:
                session.add(
                    ProgrammePublication(
                        id=1,
                        config_hash=digest,
                        catalogue_version=version,
                        programme_ids=ids,
                        published_at=now,
                    )
                )
            else:
                state.config_hash = digest
                state.catalogue_version = version
                state.programme_ids = ids
                state.published_at = now
            info = CatalogueInfo(version=version, config_hash=digest, programme_ids=ids)
            for programme in catalogue.programmes:
                snapshot = ProgrammeSnapshot.from_programme(programme)
                emit(
                    session,
                    programme.id,
                    ProgrammePublished(programme=snapshot, catalogue=info, published_at=now),
                )
    except IntegrityError:
        # Another replica starting at the same moment wrote the first row and published.
        return False
    log.info("published %d programmes (catalogue %s)", len(catalogue.programmes), digest[:12])
    return True
