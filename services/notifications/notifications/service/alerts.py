"""Vacancy alerts: match a vacancy against the saved searches and the artisans' eligibility,
fan it out as deliveries (instant or held for the daily digest), and tell applicants about
decisions and offers. These run inside the consumer's transaction, which also records the
event id, so the deliveries commit exactly once with it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.events import CloudEvent
from notifications import repository as repo
from notifications.contracts import (
    AlertUnit,
    ApplicationDecided,
    ApplicationDecidedMessage,
    EligibilityWhy,
    LeaseOffered,
    LeaseOfferedMessage,
    VacancyOpenedBodies,
    vacancy_title,
)
from notifications.domain import (
    ArtisanProfile,
    Channel,
    Criteria,
    DeliveryKind,
    Eligibility,
    Frequency,
    ProgrammeRules,
    UnitFacts,
    eligibility,
    explain_match,
    next_digest_at,
)
from notifications.events.consumed import (
    ApplicationDecidedIn,
    LeaseOfferedIn,
    UnitSnapshotIn,
    VacancyOpenedIn,
)
from notifications.metrics import MATCH_DURATION
from notifications.models import GUEST_OWNER_PREFIX, Artisan, Programme, Subscription
from notifications.service import staging
from notifications.service.common import Sessions, enabled_channels, now
from notifications.service.guests import GUEST_ELIGIBILITY
from notifications.service.staging import Row
from notifications.settings import NotificationsSettings
from notifications.signals import Signals

FEATURES = ("goods_lift", "loading_dock", "extraction", "step_free_access")


def unit_facts(unit: UnitSnapshotIn) -> UnitFacts:
    """What matching needs of a unit."""
    return UnitFacts(
        unit_id=unit.unit_id,
        arrondissement=unit.arrondissement,
        site_kind=unit.site_kind,
        surface_m2=unit.surface_m2,
        rent_eur_m2_year=unit.rent_eur_m2_year,
        allowed_trades=tuple(unit.allowed_trades),
        features=frozenset(name for name in FEATURES if getattr(unit, name)),
        ceiling_height_m=unit.ceiling_height_m,
        floor_load_kg_m2=unit.floor_load_kg_m2,
        power_kva=unit.power_kva,
        site_id=unit.site_id,
        space_kind=unit.space_kind,
        period_start=unit.period_start,
        period_end=unit.period_end,
        rail_siding=unit.logistics.rail_siding,
        river_quay_distance_m=unit.logistics.river_quay_distance_m,
        petite_ceinture_station=unit.logistics.petite_ceinture_station,
        freight_max_weight_t=unit.logistics.freight_max_weight_t,
        freight_max_height_m=unit.logistics.freight_max_height_m,
        cargo_bike_spaces=unit.logistics.cargo_bike_spaces,
    )


def _programme_rules(programme: Programme) -> ProgrammeRules:
    rules = programme.rules or {}
    forms = rules.get("allowed_legal_forms")
    return ProgrammeRules(
        programme_id=programme.programme_id,
        name=programme.name,
        site_kinds=tuple(programme.site_kinds),
        max_business_age_years=rules.get("max_business_age_years"),
        allowed_legal_forms=tuple(forms) if forms is not None else None,
        requires_trade_match=bool(rules.get("requires_trade_match", False)),
        rent_cap_eur_m2_year=rules.get("rent_cap_eur_m2_year"),
    )


def _artisan_profile(artisan: Artisan) -> ArtisanProfile:
    return ArtisanProfile(
        artisan_id=artisan.artisan_id,
        trades=tuple(artisan.trades),
        business_created_on=artisan.business_created_on,
        legal_form=artisan.legal_form,
    )


@dataclass(frozen=True)
class Match:
    """A subscription a vacancy is for: which criteria it met, and the artisan's verdict."""

    subscription: Subscription
    criteria: tuple[str, ...]
    eligibility: Eligibility


async def match_vacancy(session: AsyncSession, unit: UnitFacts, on: date) -> list[Match]:
    """The active subscriptions a vacancy is for, with why, after the eligibility pre-filter.

    The inverted index narrows the subscriptions to those filed under the unit's arrondissement,
    site kind and trades (or the wildcard), so the cost follows the number of candidates, not
    the number of subscriptions.
    """
    started = time.perf_counter()
    candidates = await repo.candidate_subscriptions(session, unit)
    matches: list[Match] = []
    if candidates:
        known = await repo.list_programmes(session)
        # With no programme known at all there is nothing to filter on (see `eligibility`);
        # once some are known, only those still in leasing's catalogue qualify anyone.
        programmes = [_programme_rules(p) for p in known if not p.retired]
        artisans = await repo.artisans_by_id(session, {s.artisan_id for s in candidates})
        verdicts: dict[str, Eligibility] = {}
        for sub in candidates:
            why = explain_match(Criteria.from_stored(sub.criteria), unit)
            if why is None:
                continue
            if sub.artisan_id.startswith(GUEST_OWNER_PREFIX):
                # Alerts without an account: no profile to judge, and the e-mail says so.
                matches.append(Match(sub, tuple(why), GUEST_ELIGIBILITY))
                continue
            verdict = verdicts.get(sub.artisan_id)
            if verdict is None:
                artisan = artisans.get(sub.artisan_id)
                profile = _artisan_profile(artisan) if artisan else None
                verdict = verdicts[sub.artisan_id] = eligibility(
                    profile, programmes, unit, on, any_known=bool(known)
                )
            if verdict.eligible:
                matches.append(Match(sub, tuple(why), verdict))
    MATCH_DURATION.observe(time.perf_counter() - started)
    return matches


async def record_vacancy(
    session: AsyncSession,
    settings: NotificationsSettings,
    signals: Signals,
    event: CloudEvent,
    vacancy: VacancyOpenedIn,
) -> list[Row]:
    """Match a vacancy and write one delivery per (subscription, channel), in the caller's
    transaction: the consumer commits them together with the event id. Returns the delivery
    rows written (column -> value)."""
    matches = await match_vacancy(session, unit_facts(vacancy.unit), vacancy.opened_at.date())
    at = now()
    digest_at = next_digest_at(at, settings.digest_hour_utc)
    unit = AlertUnit.model_validate(vacancy.unit.model_dump())
    bodies = VacancyOpenedBodies.of(vacancy.vacancy_id, vacancy.opened_at, unit)
    title = vacancy_title(unit)
    # `match_vacancy` judges each artisan once: one eligibility document per artisan too.
    eligibility_json: dict[str, dict[str, Any]] = {}
    rows: list[Row] = []
    feed: list[Row] = []
    for match in matches:
        sub = match.subscription
        if sub.artisan_id not in eligibility_json:
            verdict = EligibilityWhy.of(match.eligibility)
            eligibility_json[sub.artisan_id] = verdict.model_dump(mode="json")
        body = bodies.body(sub.id, sub.name, list(match.criteria), eligibility_json[sub.artisan_id])
        message = staging.Message(
            event_id=event.id,
            recipient_key=sub.id,
            artisan_id=sub.artisan_id,
            subscription_id=sub.id,
            kind=DeliveryKind.VACANCY_ALERT,
            payload=body,
            title=title,
            vacancy_id=vacancy.vacancy_id,
            occurred_at=vacancy.opened_at,
        )
        daily = sub.frequency == Frequency.DAILY.value
        deliveries, items = staging.rows_for(
            message, enabled_channels(sub), at, digest_at if daily else None
        )
        rows += deliveries
        feed += items
    await staging.write(session, rows, feed)
    staging.after_commit(session, signals, rows)
    return rows


async def flush_digests(sessions: Sessions, signals: Signals) -> int:
    """Make every waiting daily digest due now; returns how many deliveries were waiting."""
    async with sessions() as session, session.begin():
        made_due = await repo.make_digests_due(session, now())
        signals.after_commit(session, wake_worker=made_due > 0)
    return made_due


# Messages to applicants ----------------------------------------------------------------------


def _applicant_message(
    event: CloudEvent, data: ApplicationDecidedIn | LeaseOfferedIn
) -> staging.Message:
    body: ApplicationDecidedMessage | LeaseOfferedMessage
    if isinstance(data, ApplicationDecidedIn):
        decided = ApplicationDecided(
            application_id=data.application.application_id,
            unit_id=data.application.unit_id,
            decision=data.decision,
            reason=data.reason,
            score=data.application.score,
            max_score=data.application.max_score,
            decided_at=data.decided_at,
        )
        body = ApplicationDecidedMessage(timestamp=event.time, data=decided)
        kind, title = DeliveryKind.APPLICATION_DECIDED, "Décision sur votre candidature"
    else:
        lease = data.lease
        offered = LeaseOffered(
            lease_id=lease.lease_id,
            unit_id=lease.unit_id,
            monthly_rent_eur=lease.monthly_rent_eur,
            start_date=lease.start_date,
            end_date=lease.end_date,
            offer_expires_at=lease.offer_expires_at,
        )
        body = LeaseOfferedMessage(timestamp=event.time, data=offered)
        kind, title = DeliveryKind.LEASE_OFFERED, "Un bail vous est proposé"
    return staging.Message(
        event_id=event.id,
        recipient_key=f"artisan:{data.artisan_id}",
        artisan_id=data.artisan_id,
        subscription_id=None,
        kind=kind,
        payload=body.body(),
        title=title,
    )


async def record_applicant_message(
    session: AsyncSession,
    signals: Signals,
    event: CloudEvent,
    data: ApplicationDecidedIn | LeaseOfferedIn,
) -> list[Row]:
    """An e-mail (and a feed item) to the applicant; the address is looked up when sending,
    so a decision that arrives before the artisan's profile still reaches them. Returns the
    delivery rows written (column -> value)."""
    message = _applicant_message(event, data)
    rows, feed = staging.rows_for(message, [Channel.EMAIL, Channel.FEED], now())
    await staging.write(session, rows, feed)
    staging.after_commit(session, signals, rows)
    return rows
