"""Leasing use cases. Each one is a single transaction that it commits itself."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.auth import Principal, Role, TokenService
from fabkit.db import on_commit
from fabkit.errors import ProblemError
from fabkit.events import CloudEvent, EventPayload
from fabkit.http import check_if_match, etag_of
from fabkit.idempotency import Idempotency, Written, run_idempotent
from fabkit.outbox import add_to_outbox
from leasing import repository as repo
from leasing.domain import (
    OPEN_APPLICATION_STATUSES,
    ApplicationStatus,
    Decision,
    LeaseStatus,
    TransitionError,
    check_decision,
)
from leasing.eligibility import (
    Applicant,
    Catalogue,
    Programme,
    UnitFacts,
    best_programme,
    failed_rules,
    latest_end_date,
    monthly_rent_cap_eur,
    programmes_for,
    score,
)
from leasing.events.published import (
    TOPIC_OF,
    ApplicationDecided,
    ApplicationSnapshot,
    ApplicationSubmitted,
    ApplicationWithdrawn,
    ArtisanRegistered,
    ArtisanSnapshot,
    ArtisanUpdated,
    CatalogueInfo,
    CriterionSnapshot,
    LeaseEnded,
    LeaseOffered,
    LeaseRenewed,
    LeaseSigned,
    LeaseSnapshot,
    ProgrammePublished,
    ProgrammeSnapshot,
    RulesSnapshot,
)
from leasing.metrics import VACANCY_TO_SIGNED_LEASE
from leasing.models import (
    Application,
    ApplicationDecision,
    ArtisanProfile,
    Lease,
    ProgrammePublication,
    UnitListing,
)
from leasing.programmes import content_hash
from leasing.schemas import (
    ApplicantSummary,
    ApplicationCreate,
    ApplicationOut,
    ArtisanCreate,
    ArtisanOut,
    ArtisanPatch,
    CatalogueOut,
    CriterionPoints,
    DecisionOut,
    EligibilityOut,
    LeaseEndIn,
    LeaseOut,
    LeaseRenewIn,
    ListingOut,
    OfferCreate,
    ProgrammeOut,
    ProgrammeVerdict,
    RankingEntry,
    RankingOut,
    RegistrationOut,
    RuleFailureOut,
    TokenOut,
)
from leasing.settings import LeasingSettings

log = logging.getLogger(__name__)

Sessions = async_sessionmaker[AsyncSession]
AVAILABLE = "available"  # inventory's unit status of an open vacancy


# Plumbing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    """Who took a decision: a principal, or leasing itself (expiries, closed vacancies)."""

    role: str
    id: str

    @classmethod
    def of(cls, principal: Principal) -> Actor:
        return cls(principal.role.value, principal.subject)


SYSTEM = Actor("system", "leasing")


def utcnow() -> datetime:
    return datetime.now(UTC)


def _new_id() -> str:
    return str(uuid.uuid4())


def _emit(
    session: AsyncSession, settings: LeasingSettings, key: str, payload: EventPayload
) -> None:
    event = CloudEvent.of(payload, source=settings.event_source, subject=key)
    add_to_outbox(session, topic=TOPIC_OF[payload.event_type], key=key, event=event)


def _can_see(principal: Principal, artisan_id: str, landlord_id: str) -> bool:
    if principal.is_admin:
        return True
    if principal.role is Role.ARTISAN:
        return principal.subject == artisan_id
    return principal.role is Role.LANDLORD and principal.subject == landlord_id


def _landlord_check(principal: Principal, landlord_id: str) -> None:
    if principal.is_admin:
        return
    if principal.role is not Role.LANDLORD or principal.subject != landlord_id:
        raise ProblemError(
            403, "This unit belongs to another landlord; only its landlord or an admin can act."
        )


# Snapshots and outputs -----------------------------------------------------------------------


def artisan_out(a: ArtisanProfile) -> ArtisanOut:
    return ArtisanOut.model_validate(a, from_attributes=True)


def artisan_snapshot(a: ArtisanProfile) -> ArtisanSnapshot:
    return ArtisanSnapshot(
        artisan_id=a.id,
        display_name=a.display_name,
        business_name=a.business_name,
        trades=list(a.trades),
        business_created_on=a.business_created_on,
        legal_form=a.legal_form,
        labels=list(a.labels),
        contact_email=a.contact_email,
        registered_at=a.registered_at,
        version=a.version,
    )


def application_snapshot(app: Application) -> ApplicationSnapshot:
    return ApplicationSnapshot(
        application_id=app.id,
        artisan_id=app.artisan_id,
        unit_id=app.unit_id,
        vacancy_id=app.vacancy_id,
        landlord_id=app.landlord_id,
        programme_id=app.programme_id,
        status=app.status,
        score=app.score,
        max_score=app.max_score,
        submitted_at=app.submitted_at,
    )


def application_out(
    app: Application,
    decisions: Sequence[ApplicationDecision] = (),
    lease_id: str | None = None,
) -> ApplicationOut:
    return ApplicationOut(
        id=app.id,
        artisan_id=app.artisan_id,
        unit_id=app.unit_id,
        vacancy_id=app.vacancy_id,
        landlord_id=app.landlord_id,
        programme_id=app.programme_id,
        project=app.project,
        status=ApplicationStatus(app.status),
        score=app.score,
        max_score=app.max_score,
        score_breakdown=[CriterionPoints.model_validate(c) for c in app.score_breakdown],
        submitted_at=app.submitted_at,
        updated_at=app.updated_at,
        lease_id=lease_id,
        decisions=[DecisionOut.model_validate(d, from_attributes=True) for d in decisions],
    )


def _euros(cents: int) -> float:
    return cents / 100


def lease_snapshot(lease: Lease) -> LeaseSnapshot:
    return LeaseSnapshot(
        lease_id=lease.id,
        unit_id=lease.unit_id,
        vacancy_id=lease.vacancy_id,
        application_id=lease.application_id,
        artisan_id=lease.artisan_id,
        landlord_id=lease.landlord_id,
        programme_id=lease.programme_id,
        status=lease.status,
        monthly_rent_eur=_euros(lease.monthly_rent_cents),
        start_date=lease.start_date,
        end_date=lease.end_date,
        offer_expires_at=lease.offer_expires_at,
        signed_at=lease.signed_at,
        ended_on=lease.ended_on,
        renewals=lease.renewals,
        version=lease.version,
    )


def lease_out(lease: Lease) -> LeaseOut:
    return LeaseOut(
        id=lease.id,
        unit_id=lease.unit_id,
        vacancy_id=lease.vacancy_id,
        application_id=lease.application_id,
        artisan_id=lease.artisan_id,
        landlord_id=lease.landlord_id,
        programme_id=lease.programme_id,
        status=LeaseStatus(lease.status),
        monthly_rent_eur=_euros(lease.monthly_rent_cents),
        start_date=lease.start_date,
        end_date=lease.end_date,
        message=lease.message,
        offered_by=lease.offered_by,
        offered_at=lease.offered_at,
        offer_expires_at=lease.offer_expires_at,
        signed_at=lease.signed_at,
        ended_on=lease.ended_on,
        end_reason=lease.end_reason,
        renewals=lease.renewals,
        version=lease.version,
        updated_at=lease.updated_at,
    )


def listing_out(listing: UnitListing, catalogue: Catalogue) -> ListingOut:
    return ListingOut(
        unit_id=listing.unit_id,
        site_id=listing.site_id,
        landlord_id=listing.landlord_id,
        landlord_name=listing.landlord_name,
        site_name=listing.site_name,
        site_kind=listing.site_kind,
        address=listing.address,
        postcode=listing.postcode,
        arrondissement=listing.arrondissement,
        reference=listing.reference,
        floor=listing.floor,
        surface_m2=listing.surface_m2,
        allowed_trades=list(listing.allowed_trades),
        use_class=listing.use_class,
        rent_eur_m2_year=listing.rent_eur_m2_year,
        charges_eur_m2_year=listing.charges_eur_m2_year,
        status=listing.status,
        available_from=listing.available_from,
        opens_for_visits=listing.opens_for_visits,
        vacancy_id=listing.vacancy_id,
        vacancy_opened_at=listing.vacancy_opened_at,
        programme_ids=[p.id for p in programmes_for(catalogue.programmes, listing.site_kind)],
        version=listing.version,
        updated_at=listing.updated_at,
    )


def programme_out(p: Programme) -> ProgrammeOut:
    return ProgrammeOut(
        id=p.id,
        name=p.name,
        description=p.description,
        site_kinds=list(p.site_kinds),
        rules=p.rules,
        scoring=list(p.scoring),
        max_points=p.max_points,
    )


def catalogue_out(catalogue: Catalogue) -> CatalogueOut:
    return CatalogueOut(
        config_hash=content_hash(catalogue),
        programmes=[programme_out(p) for p in catalogue.programmes],
    )


def programme_snapshot(p: Programme) -> ProgrammeSnapshot:
    rules = p.rules
    return ProgrammeSnapshot(
        programme_id=p.id,
        name=p.name,
        description=p.description,
        site_kinds=list(p.site_kinds),
        rules=RulesSnapshot(
            max_business_age_years=rules.max_business_age_years,
            allowed_legal_forms=(
                [f.value for f in rules.allowed_legal_forms]
                if rules.allowed_legal_forms is not None
                else None
            ),
            requires_trade_match=rules.requires_trade_match,
            rent_cap_eur_m2_year=rules.rent_cap_eur_m2_year,
            max_residency_months=rules.max_residency_months,
            renewable_times=rules.renewable_times,
        ),
        scoring=[
            CriterionSnapshot(
                id=c.id,
                kind=c.kind.value,
                label=c.label,
                points=c.points,
                under_years=c.under_years,
                labels=[x.value for x in c.labels] if c.labels is not None else None,
                legal_forms=[x.value for x in c.legal_forms] if c.legal_forms is not None else None,
                points_per_month=c.points_per_month,
            )
            for c in p.scoring
        ],
        max_points=p.max_points,
    )


def applicant_of(a: ArtisanProfile) -> Applicant:
    return Applicant(
        legal_form=a.legal_form,
        trades=frozenset(a.trades),
        labels=frozenset(a.labels),
        business_created_on=a.business_created_on,
        registered_on=a.registered_at.date(),
    )


def facts_of(listing: UnitListing) -> UnitFacts:
    return UnitFacts(site_kind=listing.site_kind, allowed_trades=frozenset(listing.allowed_trades))


# Programmes ----------------------------------------------------------------------------------


async def publish_programmes(
    sessions: Sessions, settings: LeasingSettings, catalogue: Catalogue
) -> bool:
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
                _emit(
                    session,
                    settings,
                    programme.id,
                    ProgrammePublished(
                        programme=programme_snapshot(programme), catalogue=info, published_at=now
                    ),
                )
    except IntegrityError:
        # Another replica starting at the same moment wrote the first row and published.
        return False
    log.info("published %d programmes (catalogue %s)", len(catalogue.programmes), digest[:12])
    return True


# Artisans ------------------------------------------------------------------------------------


async def register_artisan(
    sessions: Sessions, settings: LeasingSettings, tokens: TokenService, data: ArtisanCreate
) -> Written:
    now = utcnow()
    taken = "An artisan with this SIRET is already registered."
    try:
        async with sessions() as session, session.begin():
            if await repo.siret_taken(session, data.siret):
                raise ProblemError(409, taken)
            artisan = ArtisanProfile(
                id=_new_id(),
                display_name=data.display_name,
                business_name=data.business_name,
                siret=data.siret,
                trades=list(data.trades),
                business_created_on=data.business_created_on,
                legal_form=data.legal_form.value,
                labels=[label.value for label in data.labels],
                contact_email=str(data.contact_email),
                registered_at=now,
                updated_at=now,
            )
            session.add(artisan)
            await session.flush()
            _emit(
                session, settings, artisan.id, ArtisanRegistered(artisan=artisan_snapshot(artisan))
            )
    except IntegrityError as exc:
        raise ProblemError(409, taken) from exc
    ttl = settings.artisan_token_ttl_days * 24 * 3600
    token = TokenOut(
        token=tokens.issue(artisan.id, Role.ARTISAN, ttl),
        role=Role.ARTISAN.value,
        subject=artisan.id,
        expires_in_seconds=ttl,
    )
    body = RegistrationOut(artisan=artisan_out(artisan), token=token)
    return Written(
        201, body.model_dump(mode="json"), etag=etag_of(artisan.version), location="/v1/artisans/me"
    )


async def get_artisan(sessions: Sessions, artisan_id: str) -> ArtisanProfile:
    async with sessions() as session:
        artisan = await repo.get_artisan(session, artisan_id)
    if artisan is None:
        raise ProblemError(404, f"No artisan with id {artisan_id}.")
    return artisan


async def get_artisan_by_siret(sessions: Sessions, siret: str) -> ArtisanProfile:
    async with sessions() as session:
        artisan = await repo.get_artisan_by_siret(session, siret)
    if artisan is None:
        raise ProblemError(404, "No artisan with this SIRET.")
    return artisan


_REQUIRED_ARTISAN_FIELDS = (
    "display_name",
    "business_name",
    "siret",
    "trades",
    "business_created_on",
    "legal_form",
    "contact_email",
    "labels",
)


async def update_artisan(
    sessions: Sessions,
    settings: LeasingSettings,
    artisan_id: str,
    patch: ArtisanPatch,
    if_match: str | None,
) -> Written:
    changes = patch.model_dump(exclude_unset=True, mode="json")
    for name in _REQUIRED_ARTISAN_FIELDS:
        if name in changes and changes[name] is None:
            raise ProblemError(422, f"{name} cannot be null.")
    if "business_created_on" in changes:
        changes["business_created_on"] = patch.business_created_on
    taken = "Another artisan is registered with this SIRET."
    try:
        async with sessions() as session, session.begin():
            artisan = await repo.get_artisan(session, artisan_id, for_update=True)
            if artisan is None:
                raise ProblemError(404, f"No artisan with id {artisan_id}.")
            check_if_match(if_match, artisan.version)
            changed = [k for k, v in changes.items() if getattr(artisan, k) != v]
            if not changed:
                return Written(
                    200, artisan_out(artisan).model_dump(mode="json"), etag_of(artisan.version)
                )
            if "siret" in changed and await repo.siret_taken(
                session, changes["siret"], other_than=artisan.id
            ):
                raise ProblemError(409, taken)
            for key in changed:
                setattr(artisan, key, changes[key])
            artisan.version += 1
            artisan.updated_at = utcnow()
            await session.flush()
            _emit(
                session,
                settings,
                artisan.id,
                ArtisanUpdated(artisan=artisan_snapshot(artisan), changed=sorted(changed)),
            )
    except IntegrityError as exc:
        raise ProblemError(409, taken) from exc
    return Written(200, artisan_out(artisan).model_dump(mode="json"), etag_of(artisan.version))


# Read model of units (fed by inventory.unit.events) ------------------------------------------

_LISTING_FIELDS = (
    "site_id",
    "landlord_id",
    "landlord_name",
    "site_name",
    "site_kind",
    "address",
    "postcode",
    "arrondissement",
    "reference",
    "floor",
    "surface_m2",
    "allowed_trades",
    "use_class",
    "rent_eur_m2_year",
    "charges_eur_m2_year",
    "status",
    "available_from",
    "opens_for_visits",
)


async def apply_unit_snapshot(
    session: AsyncSession,
    settings: LeasingSettings,
    unit: Mapping[str, Any],
    *,
    vacancy: tuple[str, datetime] | None = None,
) -> bool:
    """Upsert a listing from a unit snapshot (and the vacancy it opens); False when stale.

    Several events of one inventory change carry the same version, so only an older version
    than the listing's is stale.
    """
    listing = await repo.get_listing(session, unit["unit_id"], for_update=True)
    if listing is not None and unit["version"] < listing.version:
        return False
    fields = {k: unit[k] for k in _LISTING_FIELDS if k in unit}
    if listing is None:
        listing = UnitListing(unit_id=unit["unit_id"], version=unit["version"], **fields)
        session.add(listing)
        await session.flush()
    else:
        for key, value in fields.items():
            setattr(listing, key, value)
        listing.version = unit["version"]
    listing.updated_at = utcnow()
    if vacancy is not None:
        vacancy_id, opened_at = vacancy
        if listing.vacancy_id and listing.vacancy_id != vacancy_id:
            await _close_vacancy(
                session, settings, listing.vacancy_id, "A new vacancy of this unit replaced it."
            )
        listing.vacancy_id, listing.vacancy_opened_at = vacancy_id, opened_at
    elif listing.status != AVAILABLE and listing.vacancy_id:
        closed, listing.vacancy_id, listing.vacancy_opened_at = listing.vacancy_id, None, None
        await _close_vacancy(session, settings, closed, _closed_reason(listing.status))
    await session.flush()
    return True


async def apply_vacancy_closed(
    session: AsyncSession,
    settings: LeasingSettings,
    *,
    unit_id: str,
    vacancy_id: str,
    status: str,
    version: int,
) -> bool:
    """Close a vacancy and every application still open on it; False for an unknown unit."""
    listing = await repo.get_listing(session, unit_id, for_update=True)
    if listing is None:
        return False
    if version >= listing.version:
        listing.status, listing.version = status, version
        listing.updated_at = utcnow()
    if listing.vacancy_id == vacancy_id:
        listing.vacancy_id, listing.vacancy_opened_at = None, None
    # A vacancy id is never reused, so closing its applications is right even when late.
    await _close_vacancy(session, settings, vacancy_id, _closed_reason(status))
    await session.flush()
    return True


async def apply_unit_withdrawn(
    session: AsyncSession, settings: LeasingSettings, *, unit_id: str, version: int
) -> bool:
    listing = await repo.get_listing(session, unit_id, for_update=True)
    if listing is None or version < listing.version:
        return False
    listing.status, listing.version = "withdrawn", version
    listing.updated_at = utcnow()
    if listing.vacancy_id:
        closed, listing.vacancy_id, listing.vacancy_opened_at = listing.vacancy_id, None, None
        await _close_vacancy(session, settings, closed, _closed_reason("withdrawn"))
    await session.flush()
    return True


def _closed_reason(status: str) -> str:
    return f"The vacancy closed: the unit is now {status}."


async def _close_vacancy(
    session: AsyncSession, settings: LeasingSettings, vacancy_id: str, reason: str
) -> None:
    now = utcnow()
    for app in await repo.open_applications_of_vacancy(session, vacancy_id):
        lease_id = await _withdraw_offer(session, app, reason, now)
        _decide(session, settings, app, Decision.CLOSED, SYSTEM, reason, lease_id, now)


async def _withdraw_offer(
    session: AsyncSession, app: Application, reason: str | None, now: datetime
) -> str | None:
    """Take back the open offer of an application, if it has one; its lease id."""
    if app.status != ApplicationStatus.OFFERED:
        return None
    lease = await repo.lease_of_application(session, app.id, for_update=True)
    if lease is None or lease.status != LeaseStatus.OFFERED:
        return None
    _set_lease_status(lease, LeaseStatus.WITHDRAWN, now)
    lease.end_reason = reason
    return lease.id


def _set_lease_status(lease: Lease, status: LeaseStatus, now: datetime) -> None:
    lease.status = status.value
    lease.version += 1
    lease.updated_at = now


def _decide(
    session: AsyncSession,
    settings: LeasingSettings,
    app: Application,
    decision: Decision,
    actor: Actor,
    reason: str | None,
    lease_id: str | None,
    now: datetime,
) -> None:
    """Apply a decision to an application, keep it, and tell the applicant (an event)."""
    try:
        status = check_decision(ApplicationStatus(app.status), decision)
    except TransitionError as exc:
        raise ProblemError(409, str(exc)) from exc
    app.status = status.value
    app.updated_at = now
    repo.add_decision(
        session,
        ApplicationDecision(
            application_id=app.id,
            decision=decision.value,
            status_after=status.value,
            actor_role=actor.role,
            actor_id=actor.id,
            reason=reason,
            lease_id=lease_id,
            decided_at=now,
        ),
    )
    snapshot = application_snapshot(app)
    if decision is Decision.WITHDRAWN:
        payload: EventPayload = ApplicationWithdrawn(
            application=snapshot, reason=reason, withdrawn_at=now
        )
    else:
        payload = ApplicationDecided(
            application=snapshot,
            artisan_id=app.artisan_id,
            decision=decision.value,
            reason=reason,
            decided_by_role=actor.role,
            decided_at=now,
            lease_id=lease_id,
        )
    _emit(session, settings, app.id, payload)


# Units and eligibility -----------------------------------------------------------------------


async def search_units(
    sessions: Sessions, catalogue: Catalogue, query: repo.ListingSearch
) -> tuple[list[ListingOut], int]:
    async with sessions() as session:
        rows, total = await repo.search_listings(session, query)
    return [listing_out(r, catalogue) for r in rows], total


async def get_unit(sessions: Sessions, catalogue: Catalogue, unit_id: str) -> ListingOut:
    async with sessions() as session:
        listing = await repo.get_listing(session, unit_id)
    if listing is None:
        raise ProblemError(404, _no_unit(unit_id))
    return listing_out(listing, catalogue)


def _no_unit(unit_id: str) -> str:
    return (
        f"No unit with id {unit_id}. Leasing knows the units inventory has published; "
        "a new unit appears here within seconds."
    )


def _verdict(
    programme: Programme, applicant: Applicant, listing: UnitListing, on: date
) -> ProgrammeVerdict:
    facts = facts_of(listing)
    failures = failed_rules(programme, applicant, facts, on)
    points = score(programme, applicant, facts, on)
    return ProgrammeVerdict(
        programme_id=programme.id,
        name=programme.name,
        eligible=not failures,
        failures=[RuleFailureOut(**f.as_dict()) for f in failures],
        score=points.total,
        max_score=points.max_total,
        criteria=[CriterionPoints(**c.as_dict()) for c in points.criteria],
        monthly_rent_cap_eur=float(monthly_rent_cap_eur(programme.rules, listing.surface_m2)),
    )


async def check_eligibility(
    sessions: Sessions, catalogue: Catalogue, artisan_id: str, unit_id: str
) -> EligibilityOut:
    """How the artisan fares under each programme of the unit, without applying."""
    async with sessions() as session:
        artisan = await repo.get_artisan(session, artisan_id)
        listing = await repo.get_listing(session, unit_id)
    if artisan is None:
        raise ProblemError(404, "No artisan profile for this token; register first.")
    if listing is None:
        raise ProblemError(404, _no_unit(unit_id))
    on = utcnow().date()
    applicant = applicant_of(artisan)
    return EligibilityOut(
        unit_id=listing.unit_id,
        vacancy_id=listing.vacancy_id,
        open_for_applications=listing.status == AVAILABLE and listing.vacancy_id is not None,
        evaluated_on=on,
        programmes=[
            _verdict(p, applicant, listing, on)
            for p in programmes_for(catalogue.programmes, listing.site_kind)
        ],
    )


# Applications --------------------------------------------------------------------------------


async def submit_application(
    sessions: Sessions,
    settings: LeasingSettings,
    catalogue: Catalogue,
    principal: Principal,
    data: ApplicationCreate,
    idem: Idempotency | None,
) -> Written:
    async def create(session: AsyncSession) -> Written:
        now = utcnow()
        artisan = await repo.get_artisan(session, principal.subject)
        if artisan is None:
            raise ProblemError(404, "No artisan profile for this token; register first.")
        listing = await repo.get_listing(session, data.unit_id)
        if listing is None:
            raise ProblemError(404, _no_unit(data.unit_id))
        if listing.status != AVAILABLE or listing.vacancy_id is None:
            raise ProblemError(
                409,
                f"Unit {listing.reference} at {listing.site_name} is not open for applications "
                f"(it is {listing.status}).",
            )
        if data.programme_id is not None:
            chosen = catalogue.get(data.programme_id)
            if chosen is None:
                raise ProblemError(422, f"No programme with id {data.programme_id!r}.")
            candidates = [chosen]
        else:
            candidates = programmes_for(catalogue.programmes, listing.site_kind)
            if not candidates:
                raise ProblemError(
                    422,
                    f"No programme covers units in a {listing.site_kind} site; "
                    "this unit cannot be applied for.",
                )
        applicant = applicant_of(artisan)
        facts = facts_of(listing)
        programme, failures = best_programme(candidates, applicant, facts, now.date())
        if programme is None:
            raise ProblemError(
                422,
                "You are not eligible for this unit: "
                + " ".join(f"[{f.programme_id}] {f.message}" for f in failures),
                title="Not eligible",
                errors=[f.as_dict() for f in failures],
            )
        points = score(programme, applicant, facts, now.date())
        app = Application(
            id=_new_id(),
            artisan_id=artisan.id,
            unit_id=listing.unit_id,
            vacancy_id=listing.vacancy_id,
            landlord_id=listing.landlord_id,
            programme_id=programme.id,
            project=data.project,
            status=ApplicationStatus.SUBMITTED.value,
            score=points.total,
            max_score=points.max_total,
            score_breakdown=[c.as_dict() for c in points.criteria],
            submitted_at=now,
            updated_at=now,
        )
        session.add(app)
        await session.flush()
        _emit(
            session, settings, app.id, ApplicationSubmitted(application=application_snapshot(app))
        )
        return Written(
            201, application_out(app).model_dump(mode="json"), location=f"/v1/applications/{app.id}"
        )

    return await run_idempotent(
        sessions,
        idem,
        create,
        conflict="You already applied to this vacancy (one application each).",
    )


async def get_application(
    sessions: Sessions, principal: Principal, application_id: str
) -> ApplicationOut:
    async with sessions() as session:
        app = await repo.get_application(session, application_id)
        if app is None or not _can_see(principal, app.artisan_id, app.landlord_id):
            raise ProblemError(404, f"No application with id {application_id}.")
        decisions = await repo.decisions_of(session, [app.id])
        leases = await repo.lease_ids_of_applications(session, [app.id])
    return application_out(app, decisions.get(app.id, []), leases.get(app.id))


def _scope(principal: Principal) -> tuple[str | None, str | None]:
    """(artisan_id, landlord_id) a principal's lists are limited to; admins see everything."""
    if principal.role is Role.ARTISAN:
        return principal.subject, None
    if principal.role is Role.LANDLORD:
        return None, principal.subject
    return None, None


async def list_applications(
    sessions: Sessions,
    principal: Principal,
    *,
    unit_id: str | None,
    statuses: Sequence[str],
    limit: int,
    offset: int,
) -> tuple[list[ApplicationOut], int]:
    artisan_id, landlord_id = _scope(principal)
    async with sessions() as session:
        apps, total = await repo.list_applications(
            session,
            artisan_id=artisan_id,
            landlord_id=landlord_id,
            unit_id=unit_id,
            statuses=statuses,
            limit=limit,
            offset=offset,
        )
        ids = [a.id for a in apps]
        decisions = await repo.decisions_of(session, ids)
        leases = await repo.lease_ids_of_applications(session, ids)
    return [application_out(a, decisions.get(a.id, []), leases.get(a.id)) for a in apps], total


async def withdraw_application(
    sessions: Sessions,
    settings: LeasingSettings,
    principal: Principal,
    application_id: str,
    reason: str | None,
) -> ApplicationOut:
    now = utcnow()
    async with sessions() as session, session.begin():
        app = await repo.get_application(session, application_id, for_update=True)
        if app is None or app.artisan_id != principal.subject:
            raise ProblemError(404, f"No application with id {application_id}.")
        lease_id = await _withdraw_offer(session, app, reason, now)
        _decide(
            session, settings, app, Decision.WITHDRAWN, Actor.of(principal), reason, lease_id, now
        )
        await session.flush()
        decisions = await repo.decisions_of(session, [app.id])
    return application_out(app, decisions.get(app.id, []), lease_id)


async def reject_application(
    sessions: Sessions,
    settings: LeasingSettings,
    principal: Principal,
    application_id: str,
    reason: str,
) -> ApplicationOut:
    now = utcnow()
    async with sessions() as session, session.begin():
        app = await repo.get_application(session, application_id, for_update=True)
        if app is None:
            raise ProblemError(404, f"No application with id {application_id}.")
        _landlord_check(principal, app.landlord_id)
        lease_id = await _withdraw_offer(session, app, reason, now)
        _decide(
            session, settings, app, Decision.REJECTED, Actor.of(principal), reason, lease_id, now
        )
        await session.flush()
        decisions = await repo.decisions_of(session, [app.id])
    return application_out(app, decisions.get(app.id, []), lease_id)


async def ranking(
    sessions: Sessions,
    principal: Principal,
    unit_id: str,
    *,
    vacancy_id: str | None,
    include_closed: bool,
) -> RankingOut:
    """The applications of a vacancy ranked by the published grid, each line's points shown."""
    async with sessions() as session:
        listing = await repo.get_listing(session, unit_id)
        if listing is None:
            raise ProblemError(404, _no_unit(unit_id))
        _landlord_check(principal, listing.landlord_id)
        vacancy = vacancy_id or listing.vacancy_id
        if vacancy is None:
            return RankingOut(unit_id=unit_id, vacancy_id=None, entries=[])
        statuses = [] if include_closed else [s.value for s in OPEN_APPLICATION_STATUSES]
        apps = await repo.ranked_applications(session, vacancy, statuses)
        artisans = await repo.artisans_by_id(session, {a.artisan_id for a in apps})
    entries = []
    for rank, app in enumerate(apps, start=1):
        a = artisans[app.artisan_id]
        entries.append(
            RankingEntry(
                rank=rank,
                application_id=app.id,
                status=ApplicationStatus(app.status),
                programme_id=app.programme_id,
                score=app.score,
                max_score=app.max_score,
                criteria=[CriterionPoints.model_validate(c) for c in app.score_breakdown],
                project=app.project,
                submitted_at=app.submitted_at,
                applicant=ApplicantSummary(
                    artisan_id=a.id,
                    display_name=a.display_name,
                    business_name=a.business_name,
                    trades=list(a.trades),
                    business_created_on=a.business_created_on,
                    legal_form=a.legal_form,
                    labels=list(a.labels),
                    contact_email=a.contact_email,
                ),
            )
        )
    return RankingOut(unit_id=unit_id, vacancy_id=vacancy, entries=entries)


# Offers and leases ---------------------------------------------------------------------------


def _offer_terms_problem(
    programme: Programme, listing: UnitListing, data: OfferCreate, today: date
) -> str | None:
    cap = monthly_rent_cap_eur(programme.rules, listing.surface_m2)
    if data.monthly_rent_eur > cap:
        return (
            f"A monthly rent of {data.monthly_rent_eur} € is over the cap of programme "
            f"{programme.name!r}: {cap} € for this unit ({programme.rules.rent_cap_eur_m2_year} "
            f"€/m²/year × {listing.surface_m2} m² ÷ 12)."
        )
    if data.start_date < today:
        return "start_date cannot be in the past."
    if data.start_date > today + timedelta(days=366):
        return "start_date must be within a year."
    latest = latest_end_date(programme.rules, data.start_date)
    if data.end_date <= data.start_date:
        return "end_date must be after start_date."
    if data.end_date > latest:
        return (
            f"Programme {programme.name!r} allows a residency of at most "
            f"{programme.rules.max_residency_months} months: end_date must be on or before "
            f"{latest.isoformat()}."
        )
    return None


async def make_offer(
    sessions: Sessions,
    settings: LeasingSettings,
    catalogue: Catalogue,
    principal: Principal,
    application_id: str,
    data: OfferCreate,
    idem: Idempotency | None,
) -> Written:
    async def create(session: AsyncSession) -> Written:
        now = utcnow()
        app = await repo.get_application(session, application_id, for_update=True)
        if app is None:
            raise ProblemError(404, f"No application with id {application_id}.")
        _landlord_check(principal, app.landlord_id)
        listing = await repo.get_listing(session, app.unit_id)
        assert listing is not None
        programme = catalogue.get(app.programme_id)
        if programme is None:
            raise ProblemError(
                409, f"Programme {app.programme_id!r} is no longer published; no offer can be made."
            )
        problem = _offer_terms_problem(programme, listing, data, now.date())
        if problem:
            raise ProblemError(422, problem)
        if app.status != ApplicationStatus.SUBMITTED:
            raise ProblemError(
                409, f"This application is {app.status}; only a submitted one can get an offer."
            )
        if listing.vacancy_id != app.vacancy_id:
            raise ProblemError(409, "The vacancy this application was made for has closed.")
        existing = await repo.open_lease_of_unit(session, app.unit_id)
        if existing is not None:
            raise ProblemError(409, _open_lease_conflict(existing.status))
        artisan = await repo.get_artisan(session, app.artisan_id)
        assert artisan is not None
        failures = failed_rules(programme, applicant_of(artisan), facts_of(listing), now.date())
        if failures:
            raise ProblemError(
                409,
                "The applicant is no longer eligible: " + " ".join(f.message for f in failures),
                errors=[f.as_dict() for f in failures],
            )
        lease = Lease(
            id=_new_id(),
            unit_id=app.unit_id,
            vacancy_id=app.vacancy_id,
            application_id=app.id,
            artisan_id=app.artisan_id,
            landlord_id=app.landlord_id,
            programme_id=programme.id,
            status=LeaseStatus.OFFERED.value,
            monthly_rent_cents=int(data.monthly_rent_eur * 100),
            start_date=data.start_date,
            end_date=data.end_date,
            message=data.message,
            offered_by=f"{principal.role.value}:{principal.subject}",
            offered_at=now,
            offer_expires_at=now + timedelta(hours=settings.offer_ttl_hours),
            updated_at=now,
        )
        session.add(lease)
        await session.flush()  # the partial unique index refuses a second open lease here
        _decide(
            session,
            settings,
            app,
            Decision.OFFERED,
            Actor.of(principal),
            data.message,
            lease.id,
            now,
        )
        _emit(
            session,
            settings,
            lease.unit_id,
            LeaseOffered(lease=lease_snapshot(lease), artisan_id=lease.artisan_id, offered_at=now),
        )
        return Written(
            201, lease_out(lease).model_dump(mode="json"), location=f"/v1/leases/{lease.id}"
        )

    return await run_idempotent(sessions, idem, create, conflict=_open_lease_conflict(None))


def _open_lease_conflict(status: str | None) -> str:
    what = {"offered": "an open offer", "active": "a signed lease"}.get(status or "", "an offer")
    return (
        f"This unit already has {what}: a unit never has two offered or signed leases at once. "
        "Wait for the answer (or the expiry) of the current offer."
    )


async def get_lease(sessions: Sessions, principal: Principal, lease_id: str) -> LeaseOut:
    async with sessions() as session:
        lease = await repo.get_lease(session, lease_id)
    if lease is None or not _can_see(principal, lease.artisan_id, lease.landlord_id):
        raise ProblemError(404, f"No lease with id {lease_id}.")
    return lease_out(lease)


async def list_leases(
    sessions: Sessions,
    principal: Principal,
    *,
    unit_id: str | None,
    statuses: Sequence[str],
    limit: int,
    offset: int,
) -> tuple[list[LeaseOut], int]:
    artisan_id, landlord_id = _scope(principal)
    async with sessions() as session:
        leases, total = await repo.list_leases(
            session,
            artisan_id=artisan_id,
            landlord_id=landlord_id,
            unit_id=unit_id,
            statuses=statuses,
            limit=limit,
            offset=offset,
        )
    return [lease_out(x) for x in leases], total


async def _own_offer(session: AsyncSession, principal: Principal, lease_id: str) -> Lease:
    lease = await repo.get_lease(session, lease_id, for_update=True)
    if lease is None or lease.artisan_id != principal.subject:
        raise ProblemError(404, f"No lease with id {lease_id}.")
    if lease.status != LeaseStatus.OFFERED:
        raise ProblemError(409, f"This offer is {lease.status}; it can no longer be answered.")
    return lease


async def accept_offer(
    sessions: Sessions, settings: LeasingSettings, principal: Principal, lease_id: str
) -> LeaseOut:
    """The artisan signs: the lease becomes active and inventory will mark the unit leased."""
    now = utcnow()
    async with sessions() as session, session.begin():
        lease = await _own_offer(session, principal, lease_id)
        expired = lease.offer_expires_at <= now
        if not expired:
            listing = await repo.get_listing(session, lease.unit_id)
            assert listing is not None
            if listing.vacancy_id != lease.vacancy_id:
                raise ProblemError(409, "The vacancy of this offer has closed.")
            app = await repo.get_application(session, lease.application_id, for_update=True)
            assert app is not None
            _set_lease_status(lease, LeaseStatus.ACTIVE, now)
            lease.signed_at = now
            _decide(
                session,
                settings,
                app,
                Decision.OFFER_ACCEPTED,
                Actor.of(principal),
                None,
                lease.id,
                now,
            )
            _emit(
                session,
                settings,
                lease.unit_id,
                LeaseSigned(lease=lease_snapshot(lease), signed_at=now),
            )
            if listing.vacancy_opened_at is not None:
                waited = (now - listing.vacancy_opened_at).total_seconds()
                on_commit(session, lambda: VACANCY_TO_SIGNED_LEASE.observe(max(waited, 0.0)))
            return lease_out(lease)
    await expire_offer(sessions, settings, lease_id, now)
    raise ProblemError(
        409,
        f"This offer expired at {lease.offer_expires_at.isoformat()}; "
        "it can no longer be accepted.",
    )


async def decline_offer(
    sessions: Sessions,
    settings: LeasingSettings,
    principal: Principal,
    lease_id: str,
    reason: str | None,
) -> LeaseOut:
    now = utcnow()
    async with sessions() as session, session.begin():
        lease = await _own_offer(session, principal, lease_id)
        app = await repo.get_application(session, lease.application_id, for_update=True)
        assert app is not None
        _set_lease_status(lease, LeaseStatus.DECLINED, now)
        lease.end_reason = reason
        _decide(
            session,
            settings,
            app,
            Decision.OFFER_DECLINED,
            Actor.of(principal),
            reason,
            lease.id,
            now,
        )
        return lease_out(lease)


async def expire_offer(
    sessions: Sessions, settings: LeasingSettings, lease_id: str, now: datetime | None = None
) -> bool:
    """Expire one offer if it is still open and past its deadline."""
    now = now or utcnow()
    async with sessions() as session, session.begin():
        lease = await repo.get_lease(session, lease_id, for_update=True)
        if lease is None or lease.status != LeaseStatus.OFFERED:
            return False
        if lease.offer_expires_at > now:
            return False
        app = await repo.get_application(session, lease.application_id, for_update=True)
        assert app is not None
        _set_lease_status(lease, LeaseStatus.EXPIRED, now)
        reason = "The offer was not answered in time."
        lease.end_reason = reason
        _decide(session, settings, app, Decision.OFFER_EXPIRED, SYSTEM, reason, lease.id, now)
    return True


def _lease_party_check(principal: Principal, lease: Lease, lease_id: str) -> None:
    if not _can_see(principal, lease.artisan_id, lease.landlord_id):
        if principal.role is Role.LANDLORD:
            _landlord_check(principal, lease.landlord_id)
        raise ProblemError(404, f"No lease with id {lease_id}.")


async def end_lease(
    sessions: Sessions,
    settings: LeasingSettings,
    principal: Principal,
    lease_id: str,
    data: LeaseEndIn,
) -> LeaseOut:
    """Record that a signed lease ended (or was terminated); inventory reopens the unit."""
    now = utcnow()
    ended_on = data.ended_on or now.date()
    async with sessions() as session, session.begin():
        lease = await repo.get_lease(session, lease_id, for_update=True)
        if lease is None:
            raise ProblemError(404, f"No lease with id {lease_id}.")
        _lease_party_check(principal, lease, lease_id)
        if lease.status != LeaseStatus.ACTIVE:
            raise ProblemError(409, f"This lease is {lease.status}; only a signed lease can end.")
        signed_on = (lease.signed_at or now).date()
        if not signed_on <= ended_on <= now.date():
            raise ProblemError(
                422,
                f"ended_on must be between the signature ({signed_on.isoformat()}) and today; "
                "a lease ends on its own at its end date.",
            )
        status = LeaseStatus.TERMINATED if data.terminate else LeaseStatus.ENDED
        _finish(session, settings, lease, status, ended_on, data.reason, now)
        return lease_out(lease)


def _finish(
    session: AsyncSession,
    settings: LeasingSettings,
    lease: Lease,
    status: LeaseStatus,
    ended_on: date,
    reason: str,
    now: datetime,
) -> None:
    _set_lease_status(lease, status, now)
    lease.ended_on = ended_on
    lease.end_reason = reason
    _emit(
        session,
        settings,
        lease.unit_id,
        LeaseEnded(
            lease=lease_snapshot(lease), ending=status.value, ended_on=ended_on, reason=reason
        ),
    )


async def renew_lease(
    sessions: Sessions,
    settings: LeasingSettings,
    catalogue: Catalogue,
    principal: Principal,
    lease_id: str,
    data: LeaseRenewIn,
) -> LeaseOut:
    now = utcnow()
    async with sessions() as session, session.begin():
        lease = await repo.get_lease(session, lease_id, for_update=True)
        if lease is None:
            raise ProblemError(404, f"No lease with id {lease_id}.")
        _landlord_check(principal, lease.landlord_id)
        if lease.status != LeaseStatus.ACTIVE:
            raise ProblemError(
                409, f"This lease is {lease.status}; only a signed lease is renewed."
            )
        programme = catalogue.get(lease.programme_id)
        if programme is None:
            raise ProblemError(409, f"Programme {lease.programme_id!r} is no longer published.")
        rules = programme.rules
        if lease.renewals >= rules.renewable_times:
            raise ProblemError(
                409,
                f"Programme {programme.name!r} allows {rules.renewable_times} renewal(s); "
                f"this lease has had {lease.renewals}.",
            )
        latest = latest_end_date(rules, lease.end_date)
        if not lease.end_date < data.end_date <= latest:
            raise ProblemError(
                422,
                f"The new end_date must be after {lease.end_date.isoformat()} and on or before "
                f"{latest.isoformat()} ({rules.max_residency_months} months more at most).",
            )
        previous = lease.end_date
        lease.end_date = data.end_date
        lease.renewals += 1
        lease.version += 1
        lease.updated_at = now
        _emit(
            session,
            settings,
            lease.unit_id,
            LeaseRenewed(lease=lease_snapshot(lease), previous_end_date=previous),
        )
        return lease_out(lease)


async def end_due_lease(
    sessions: Sessions, settings: LeasingSettings, lease_id: str, today: date
) -> bool:
    async with sessions() as session, session.begin():
        lease = await repo.get_lease(session, lease_id, for_update=True)
        if lease is None or lease.status != LeaseStatus.ACTIVE or lease.end_date >= today:
            return False
        reason = "The lease reached its end date."
        _finish(session, settings, lease, LeaseStatus.ENDED, lease.end_date, reason, utcnow())
    return True


async def sweep(sessions: Sessions, settings: LeasingSettings, batch: int = 200) -> int:
    """Expire unanswered offers and end leases past their end date; how many changed."""
    now = utcnow()
    async with sessions() as session:
        offers = await repo.expired_offer_ids(session, now, batch)
        due = await repo.due_lease_ids(session, now.date(), batch)
    changed = 0
    for lease_id in offers:
        changed += await expire_offer(sessions, settings, lease_id, now)
    for lease_id in due:
        changed += await end_due_lease(sessions, settings, lease_id, now.date())
    return changed


async def run_sweeper(sessions: Sessions, settings: LeasingSettings, stop: asyncio.Event) -> None:
    """Background task of the lifespan; accepting an expired offer also expires it on the spot."""
    while not stop.is_set():
        try:
            changed = await sweep(sessions, settings)
            if changed:
                log.info("sweeper closed %d expired offers or ended leases", changed)
        except Exception as exc:
            log.warning("sweeper failed: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.sweep_interval_s)
