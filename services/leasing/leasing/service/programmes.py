"""The programme catalogue: seeded once from the programme file, then versioned in the database
and changed by officers and admins; every version is published, so other services and auditors
know the rules in force."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.auth import Principal
from fabkit.errors import ProblemError
from fabkit.http import check_if_match, etag_of
from fabkit.idempotency import Written
from fabkit.pagination import Page, PageParams
from leasing import repository as repo
from leasing.eligibility import Catalogue, Programme
from leasing.events.published import (
    CatalogueInfo,
    ProgrammePublished,
    ProgrammeSnapshot,
    emit,
)
from leasing.models import ProgrammePublication, ProgrammeVersion
from leasing.programmes import content_hash
from leasing.schemas import (
    CatalogueOut,
    ProgrammeIn,
    ProgrammeOut,
    ProgrammeVersionOut,
    ProgrammeVersionSummary,
)
from leasing.service.common import Sessions, utcnow

log = logging.getLogger(__name__)

SEED_AUTHOR = "seed"


@dataclass(frozen=True)
class CurrentCatalogue:
    """The catalogue in force and its version (None: nothing stored yet, the file is served)."""

    version: int | None
    catalogue: Catalogue


class CatalogueCache:
    """The catalogue in force, for request handlers: the version number is read again at most
    once per `ttl_s` (one primary-key read), the body only when that number moved. A change in
    this process is seen at once; one made by another replica within `ttl_s`."""

    def __init__(
        self,
        sessions: Sessions,
        fallback: Catalogue,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._current = CurrentCatalogue(None, fallback)
        self._ttl_s = ttl_s
        self._clock = clock
        self._checked = -math.inf
        # One refresh at a time: requests arriving together after the TTL share one read.
        self._lock = asyncio.Lock()

    async def current(self) -> CurrentCatalogue:
        """The catalogue in force, re-checked against the database when the TTL ran out."""
        if self._clock() - self._checked < self._ttl_s:
            return self._current
        async with self._lock:
            if self._clock() - self._checked >= self._ttl_s:
                try:
                    await self.refresh()
                except (OSError, SQLAlchemyError) as exc:
                    # The catalogue held stays right until a change: serve it, try again after
                    # the TTL. A request that needs the database fails on its own read anyway.
                    self._checked = self._clock()
                    log.warning(
                        "catalogue version check failed (%s); serving version %s",
                        type(exc).__name__,
                        self._current.version,
                    )
        return self._current

    async def refresh(self) -> None:
        """Read the version in force now, and its body when it is not the one held."""
        async with self._sessions() as session:
            version = await repo.current_catalogue_version(session)
            if version is not None and version != self._current.version:
                catalogue = await repo.get_catalogue_version(session, version)
                if catalogue is not None:
                    self._current = CurrentCatalogue(version, catalogue)
        self._checked = self._clock()

    def install(self, version: int, catalogue: Catalogue) -> None:
        """A version this process just committed: served at once, without a read."""
        if self._current.version is None or version > self._current.version:
            self._current = CurrentCatalogue(version, catalogue)
        self._checked = self._clock()


# Seeding from the programme file -------------------------------------------------------------


async def seed_programmes(sessions: Sessions, catalogue: Catalogue) -> bool:
    """Store and publish the programme file's catalogue when the database holds none yet;
    afterwards the database is the source and the file is not read again. True if published."""
    digest = content_hash(catalogue)
    try:
        async with sessions() as session, session.begin():
            head = await repo.get_publication(session, for_update=True)
            if head is not None:
                stored = await repo.get_programme_version(session, head.catalogue_version)
                if stored is not None:
                    if stored.config_hash != digest:
                        log.info(
                            "the programme file differs from catalogue version %d; the database "
                            "is the source, change programmes through PUT /v1/programmes/{id}",
                            head.catalogue_version,
                        )
                    return False
                if head.config_hash == digest:
                    # Published from this same file before versions were stored: keep its number
                    # (other services know it) and store its body.
                    session.add(
                        _version_row(
                            head.catalogue_version,
                            catalogue,
                            digest,
                            SEED_AUTHOR,
                            "Stored from the programme file already published",
                        )
                    )
                    return False
            version = await _publish(
                session, head, catalogue, digest, SEED_AUTHOR, "Seeded from the programme file"
            )
    except IntegrityError:
        # Another replica starting at the same moment stored and published it.
        return False
    log.info("published %d programmes (catalogue version %d)", len(catalogue.programmes), version)
    return True


# Changes by officers and admins ----------------------------------------------------------------


def _edit_error(exc: ValidationError) -> ProblemError:
    errors = [
        {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"], "type": e["type"]}
        for e in exc.errors(include_url=False, include_input=False)
    ]
    summary = "; ".join(e["message"] for e in errors[:5])
    return ProblemError(
        422,
        f"The catalogue would break the rule language: {summary}. Fix it and retry.",
        errors=errors,
    )


async def _change(
    sessions: Sessions,
    cache: CatalogueCache,
    principal: Principal,
    if_match: str | None,
    note: str | None,
    edit: Callable[[Catalogue], list[Programme]],
    *,
    needs_if_match: bool = True,
) -> tuple[int, Catalogue]:
    """Apply `edit` to the catalogue in force as a new version, published in the same
    transaction; the catalogue's row lock orders concurrent changes."""
    if needs_if_match and if_match is None:
        raise ProblemError(
            428,
            "Changing a programme needs an If-Match header with the catalogue version you read "
            '(the ETag of GET /v1/programmes, e.g. If-Match: "3"), so that two changes made at '
            "once cannot overwrite each other.",
        )
    try:
        async with sessions() as session, session.begin():
            head = await repo.get_publication(session, for_update=True)
            current = (
                await repo.get_catalogue_version(session, head.catalogue_version)
                if head is not None
                else None
            )
            if head is None or current is None:
                raise ProblemError(
                    409,
                    "No programme catalogue is stored yet: leasing stores the programme file's "
                    "at start-up. Retry in a moment.",
                )
            check_if_match(if_match, head.catalogue_version)
            try:
                changed = Catalogue(programmes=edit(current))
            except ValidationError as exc:
                raise _edit_error(exc) from exc
            digest = content_hash(changed)
            if digest == head.config_hash:
                return head.catalogue_version, current  # nothing changed: no new version
            version = await _publish(session, head, changed, digest, principal.subject, note)
    except IntegrityError as exc:
        # SQLite takes no row lock: two changes read the same head and the second one's
        # version number is taken by the time it writes.
        raise ProblemError(
            409,
            "Another change of the catalogue was saved at the same moment; read "
            "GET /v1/programmes again and retry with its ETag in If-Match.",
        ) from exc
    cache.install(version, changed)
    log.info("catalogue version %d by %s", version, principal.role.value)
    return version, changed


def _programme_written(status: int, version: int, programme: Programme) -> Written:
    body = ProgrammeOut.model_validate(programme, from_attributes=True).model_dump(mode="json")
    return Written(status, body, etag_of(version), location=f"/v1/programmes/{programme.id}")


async def replace_programme(
    sessions: Sessions,
    cache: CatalogueCache,
    principal: Principal,
    programme_id: str,
    data: ProgrammeIn,
    if_match: str | None,
) -> Written:
    """Replace one programme as a new catalogue version (If-Match required)."""
    programme = data.programme()
    if programme.id != programme_id:
        raise ProblemError(
            422,
            f"The body's id {programme.id!r} differs from the path's {programme_id!r}; a "
            "programme's id cannot change. Add a new programme with POST /v1/programmes and "
            "retire this one with DELETE.",
        )

    def edit(current: Catalogue) -> list[Programme]:
        if current.get(programme_id) is None:
            raise ProblemError(
                404, f"No programme with id {programme_id!r}; add it with POST /v1/programmes."
            )
        return [programme if p.id == programme_id else p for p in current.programmes]

    version, _ = await _change(sessions, cache, principal, if_match, data.note, edit)
    return _programme_written(200, version, programme)


async def add_programme(
    sessions: Sessions,
    cache: CatalogueCache,
    principal: Principal,
    data: ProgrammeIn,
    if_match: str | None,
) -> Written:
    """Add a programme at the end of the catalogue as a new version (If-Match optional: an
    addition overwrites nothing, and a taken id is refused under the catalogue's lock)."""
    programme = data.programme()

    def edit(current: Catalogue) -> list[Programme]:
        if current.get(programme.id) is not None:
            raise ProblemError(
                409,
                f"A programme with id {programme.id!r} already exists; change it with "
                f"PUT /v1/programmes/{programme.id} or choose another id.",
            )
        return [*current.programmes, programme]

    version, _ = await _change(
        sessions, cache, principal, if_match, data.note, edit, needs_if_match=False
    )
    return _programme_written(201, version, programme)


async def retire_programme(
    sessions: Sessions,
    cache: CatalogueCache,
    principal: Principal,
    programme_id: str,
    if_match: str | None,
    note: str | None,
) -> int:
    """Leave a programme out of a new catalogue version (If-Match required); the version."""

    def edit(current: Catalogue) -> list[Programme]:
        if current.get(programme_id) is None:
            raise ProblemError(404, f"No programme with id {programme_id!r}.")
        if len(current.programmes) == 1:
            raise ProblemError(
                409,
                f"{programme_id!r} is the only programme; a catalogue needs at least one. Add "
                "its successor with POST /v1/programmes first.",
            )
        return [p for p in current.programmes if p.id != programme_id]

    version, _ = await _change(sessions, cache, principal, if_match, note, edit)
    return version


# Reading versions ----------------------------------------------------------------------------


async def catalogue_out(cache: CatalogueCache) -> Written:
    """The catalogue in force, its version as the ETag."""
    current = await cache.current()
    body = CatalogueOut.of(current.catalogue, current.version).model_dump(mode="json")
    etag = etag_of(current.version) if current.version is not None else None
    return Written(200, body, etag)


async def programme_out(cache: CatalogueCache, programme_id: str) -> Written:
    """One programme of the catalogue in force, the catalogue's version as the ETag."""
    current = await cache.current()
    programme = current.catalogue.get(programme_id)
    if programme is None:
        raise ProblemError(404, f"No programme with id {programme_id!r}.")
    body = ProgrammeOut.model_validate(programme, from_attributes=True).model_dump(mode="json")
    return Written(200, body, etag_of(current.version) if current.version is not None else None)


async def list_versions(sessions: Sessions, page: PageParams) -> Page[ProgrammeVersionSummary]:
    """Every stored catalogue version, newest first."""
    async with sessions() as session:
        rows, total = await repo.list_programme_versions(session, page)
    return Page.of(rows, total, page, ProgrammeVersionSummary.of)


async def get_version(sessions: Sessions, version: int) -> ProgrammeVersionOut:
    """One stored catalogue version, whole."""
    async with sessions() as session:
        row = await repo.get_programme_version(session, version)
    if row is None:
        raise ProblemError(
            404,
            f"No catalogue version {version}; GET /v1/programmes/versions lists those stored.",
        )
    return ProgrammeVersionOut.of(row)


# Storing and publishing a version ------------------------------------------------------------


def _version_row(
    version: int, catalogue: Catalogue, digest: str, author: str, note: str | None
) -> ProgrammeVersion:
    return ProgrammeVersion(
        version=version,
        config_hash=digest,
        body=catalogue.model_dump(mode="json"),
        created_by=author,
        created_at=utcnow(),
        note=note,
    )


async def _publish(
    session: AsyncSession,
    head: ProgrammePublication | None,
    catalogue: Catalogue,
    digest: str,
    author: str,
    note: str | None,
) -> int:
    """Store `catalogue` as the next version, move the head to it and stage one
    `leasing.programme.published.v1` per programme (a programme left out is retired)."""
    now = utcnow()
    ids = [p.id for p in catalogue.programmes]
    version = head.catalogue_version + 1 if head is not None else 1
    session.add(_version_row(version, catalogue, digest, author, note))
    if head is None:
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
        head.config_hash = digest
        head.catalogue_version = version
        head.programme_ids = ids
        head.published_at = now
    await session.flush()
    info = CatalogueInfo(version=version, config_hash=digest, programme_ids=ids)
    for programme in catalogue.programmes:
        snapshot = ProgrammeSnapshot.from_programme(programme)
        emit(
            session,
            programme.id,
            ProgrammePublished(programme=snapshot, catalogue=info, published_at=now),
        )
    return version
