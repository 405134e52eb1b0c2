"""Artisans: registration (a logged-in account with a verified e-mail gets its profile, linked
to the token's subject) and the artisan's own profile. No token is ever handed out here: the
identity provider issues them."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError

from fabkit.auth import Principal
from fabkit.errors import ProblemError
from fabkit.http import check_if_match, etag_of
from fabkit.idempotency import Written
from leasing import repository as repo
from leasing.events.published import ArtisanRegistered, ArtisanSnapshot, ArtisanUpdated, emit
from leasing.models import ArtisanProfile
from leasing.schemas import ArtisanCreate, ArtisanOut, ArtisanPatch
from leasing.service.common import Sessions, utcnow
from leasing.service.privacy import refuse_erased

# Reading one's profile counts as activity at most this often (no write per request).
READ_ACTIVITY_EVERY = timedelta(days=1)

_TAKEN_ON_REGISTER = "An artisan with this SIRET is already registered."
_ALREADY_REGISTERED = (
    "Your account already has an artisan profile; read it at GET /v1/artisans/me and change "
    "it with PATCH /v1/artisans/me."
)
_TAKEN_ON_UPDATE = "Another artisan is registered with this SIRET."
_REQUIRED_FIELDS = (
    "display_name",
    "business_name",
    "siret",
    "trades",
    "business_created_on",
    "legal_form",
    "contact_email",
    "labels",
)


def _written(artisan: ArtisanProfile) -> Written:
    body = ArtisanOut.model_validate(artisan, from_attributes=True).model_dump(mode="json")
    return Written(200, body, etag_of(artisan.version))


async def register_artisan(
    sessions: Sessions, principal: Principal, data: ArtisanCreate
) -> Written:
    """Create the caller's profile, its id being the token's subject (the account's id at the
    identity provider); the account's e-mail address must be verified."""
    if not principal.email_verified:
        raise ProblemError(
            403,
            "Registering an artisan profile needs an account whose e-mail address is verified: "
            "follow the link the identity provider sent you, log in again, and retry.",
        )
    now = utcnow()
    try:
        async with sessions() as session, session.begin():
            existing = await repo.get_artisan(session, principal.subject)
            refuse_erased(existing)
            if existing is not None:
                raise ProblemError(409, _ALREADY_REGISTERED)
            if await repo.siret_taken(session, data.siret):
                raise ProblemError(409, _TAKEN_ON_REGISTER)
            artisan = ArtisanProfile(
                id=principal.subject,
                display_name=data.display_name,
                business_name=data.business_name,
                siret=data.siret,
                trades=list(data.trades),
                business_created_on=data.business_created_on,
                legal_form=data.legal_form.value,
                labels=[label.value for label in data.labels],
                contact_email=str(data.contact_email),
                contact_email_verified=principal.owns_address(str(data.contact_email)),
                registered_at=now,
                updated_at=now,
                last_active_at=now,
            )
            session.add(artisan)
            await session.flush()
            emit(
                session, artisan.id, ArtisanRegistered(artisan=ArtisanSnapshot.from_model(artisan))
            )
    except IntegrityError as exc:
        raise ProblemError(409, _TAKEN_ON_REGISTER) from exc
    body = ArtisanOut.model_validate(artisan, from_attributes=True).model_dump(mode="json")
    return Written(201, body, etag=etag_of(artisan.version), location="/v1/artisans/me")


async def get_artisan(sessions: Sessions, artisan_id: str) -> Written:
    """One artisan's profile with its ETag."""
    async with sessions() as session:
        artisan = await repo.get_artisan(session, artisan_id)
    if artisan is None:
        raise ProblemError(404, f"No artisan with id {artisan_id}.")
    refuse_erased(artisan)
    return _written(artisan)


async def get_my_profile(sessions: Sessions, writes: Sessions, artisan_id: str) -> Written:
    """The artisan's own profile; reading it is activity, recorded at most once a day (through
    `writes`: the read sessions may be a replica's)."""
    async with sessions() as session:
        artisan = await repo.get_artisan(session, artisan_id)
    if artisan is None:
        raise ProblemError(404, f"No artisan with id {artisan_id}.")
    refuse_erased(artisan)
    now = utcnow()
    if artisan.last_active_at < now - READ_ACTIVITY_EVERY:
        await note_activity(writes, artisan_id, unless_since=now - READ_ACTIVITY_EVERY)
    return _written(artisan)


async def note_activity(
    sessions: Sessions, artisan_id: str, unless_since: datetime | None = None
) -> None:
    """Record the artisan's activity now (the inactive-account rule counts from it); skipped
    when already recorded since `unless_since`, or the profile is erased or unknown."""
    async with sessions() as session, session.begin():
        await repo.touch_artisan(session, artisan_id, utcnow(), unless_since=unless_since)


async def get_artisan_by_siret(sessions: Sessions, siret: str) -> ArtisanOut:
    """The artisan registered with this SIRET."""
    async with sessions() as session:
        artisan = await repo.get_artisan_by_siret(session, siret)
    if artisan is None:
        raise ProblemError(404, "No artisan with this SIRET.")
    return ArtisanOut.model_validate(artisan, from_attributes=True)


async def update_artisan(
    sessions: Sessions, principal: Principal, patch: ArtisanPatch, if_match: str | None
) -> Written:
    """Change the fields sent (If-Match guards against lost updates); an event if any changed."""
    changes = patch.model_dump(exclude_unset=True, mode="json")
    for name in _REQUIRED_FIELDS:
        if name in changes and changes[name] is None:
            raise ProblemError(422, f"{name} cannot be null.")
    if "business_created_on" in changes:
        changes["business_created_on"] = patch.business_created_on
    try:
        async with sessions() as session, session.begin():
            artisan = await repo.get_artisan(session, principal.subject, for_update=True)
            if artisan is None:
                raise ProblemError(404, f"No artisan with id {principal.subject}.")
            refuse_erased(artisan)
            check_if_match(if_match, artisan.version)
            changed = [k for k, v in changes.items() if getattr(artisan, k) != v]
            if not changed:
                return _written(artisan)
            if "siret" in changed and await repo.siret_taken(
                session, changes["siret"], other_than=artisan.id
            ):
                raise ProblemError(409, _TAKEN_ON_UPDATE)
            for key in changed:
                setattr(artisan, key, changes[key])
            if "contact_email" in changed:
                artisan.contact_email_verified = principal.owns_address(artisan.contact_email)
            artisan.version += 1
            artisan.updated_at = artisan.last_active_at = utcnow()
            await session.flush()
            emit(
                session,
                artisan.id,
                ArtisanUpdated(
                    artisan=ArtisanSnapshot.from_model(artisan), changed=sorted(changed)
                ),
            )
    except IntegrityError as exc:
        raise ProblemError(409, _TAKEN_ON_UPDATE) from exc
    return _written(artisan)
