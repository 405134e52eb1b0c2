"""Pure notification rules: criteria matching, eligibility pre-filter, retries and digests."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any


class Channel(StrEnum):
    WEBHOOK = "webhook"
    EMAIL = "email"
    FEED = "feed"


class Frequency(StrEnum):
    INSTANT = "instant"
    DAILY = "daily"


class SubscriptionStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    # Switched off by the platform (a webhook answered 410 Gone); resuming switches it back on.
    DISABLED = "disabled"
    DELETED = "deleted"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    DEAD = "dead"
    # Not sent on purpose: the subscription was paused, deleted or disabled before it went out.
    CANCELLED = "cancelled"
    # Folded into another delivery of the same daily digest.
    BATCHED = "batched"


class DeliveryKind(StrEnum):
    VACANCY_ALERT = "vacancy_alert"
    APPLICATION_DECIDED = "application_decided"
    LEASE_OFFERED = "lease_offered"
    CALL_RESULTS = "call_results"  # a call's results published: the applicant's rank
    APPEAL_ANSWERED = "appeal_answered"
    CALL_CLOSED = "call_closed"  # a call closed: the applicant's frozen rank
    CALL_DECIDED = "call_decided"  # a call decided: leased to someone, or nobody chosen
    TEST = "test"
    # To the artisan whose search was disabled because its webhook kept failing: why, and how
    # to resume (an e-mail, whatever the search's channels).
    WEBHOOK_DISABLED = "webhook_disabled"
    # To an artisan leasing will erase for inactivity: the date, and that logging in keeps
    # the account (an e-mail to the profile's address; service/inactivity.py).
    INACTIVITY_WARNING = "inactivity_warning"


#: What a delivery's message becomes once retention cleared it (service/retention.py): nothing is
#: left to send, so a redelivered one dies at once instead of posting this.
CLEARED_PAYLOAD: dict[str, Any] = {"cleared": "retention"}


class Feature(StrEnum):
    GOODS_LIFT = "goods_lift"
    LOADING_DOCK = "loading_dock"
    EXTRACTION = "extraction"
    STEP_FREE_ACCESS = "step_free_access"


class SiteKind(StrEnum):
    HOTEL_INDUSTRIEL = "hotel_industriel"
    HOTEL_ACTIVITES = "hotel_activites"
    CITE_ARTISANALE = "cite_artisanale"
    ATELIERS_DE_PARIS = "ateliers_de_paris"
    PEPINIERE = "pepiniere"
    OTHER = "other"
    FAB_LAB = "fab_lab"
    TIERS_LIEU = "tiers_lieu"
    LOGISTIQUE_URBAINE = "logistique_urbaine"
    MARCHE_SAISONNIER = "marche_saisonnier"


class SpaceKind(StrEnum):
    """What a unit is (inventory's `space_kind`): a workshop, or a seasonal sales stall let for
    a period. A saved search is for one kind: one that names none is for workshops."""

    WORKSHOP = "workshop"
    STALL = "stall"


class Logistics(StrEnum):
    """The yes-or-no logistics a saved search can require of a unit's site."""

    RAIL_SIDING = "rail_siding"
    PETITE_CEINTURE = "petite_ceinture"  # a petite-ceinture station on or next to the site
    CARGO_BIKE_PARKING = "cargo_bike_parking"  # at least one cargo-bike space


FEATURE_BITS = {feature: 1 << i for i, feature in enumerate(Feature)}
LOGISTICS_BITS = {need: 1 << i for i, need in enumerate(Logistics)}
WILDCARD = "*"
# The dimensions of the inverted index: a subscription has one term per value it accepts, or
# the wildcard term when it accepts any value of that dimension.
DIM_ARRONDISSEMENT = "arrondissement"
DIM_SITE_KIND = "site_kind"
DIM_TRADE = "trade"


def feature_mask(features: Iterable[str]) -> int:
    mask = 0
    for name in features:
        mask |= FEATURE_BITS[Feature(name)]
    return mask


def logistics_mask(needs: Iterable[str]) -> int:
    mask = 0
    for name in needs:
        mask |= LOGISTICS_BITS[Logistics(name)]
    return mask


@dataclass(frozen=True)
class UnitFacts:
    """What matching and eligibility need to know about a vacant unit."""

    unit_id: str
    arrondissement: int
    site_kind: str
    surface_m2: float
    rent_eur_m2_year: float
    allowed_trades: tuple[str, ...] = ()
    features: frozenset[str] = frozenset()
    # None: the landlord did not give the figure, so the unit meets no minimum on it.
    ceiling_height_m: float | None = None
    floor_load_kg_m2: float | None = None
    power_kva: float | None = None
    site_id: str = ""
    space_kind: str = SpaceKind.WORKSHOP.value
    # The dates a stall is let for (None for a workshop).
    period_start: date | None = None
    period_end: date | None = None
    # The site's logistics, as inventory gives them; None: not given, so no minimum is met.
    rail_siding: bool = False
    river_quay_distance_m: int | None = None
    petite_ceinture_station: str | None = None
    freight_max_weight_t: float | None = None
    freight_max_height_m: float | None = None
    cargo_bike_spaces: int = 0

    @property
    def feature_mask(self) -> int:
        return feature_mask(self.features)

    @property
    def logistics(self) -> frozenset[str]:
        """The yes-or-no logistics the unit has (`Logistics` values)."""
        has = {
            Logistics.RAIL_SIDING: self.rail_siding,
            Logistics.PETITE_CEINTURE: bool(self.petite_ceinture_station),
            Logistics.CARGO_BIKE_PARKING: self.cargo_bike_spaces > 0,
        }
        return frozenset(need.value for need, yes in has.items() if yes)

    @property
    def logistics_mask(self) -> int:
        return logistics_mask(self.logistics)


@dataclass(frozen=True)
class Criteria:
    """A saved search; an empty tuple or None accepts any value."""

    arrondissements: tuple[int, ...] = ()
    site_kinds: tuple[str, ...] = ()
    trades: tuple[str, ...] = ()
    min_surface_m2: float | None = None
    max_surface_m2: float | None = None
    max_rent_eur_m2_year: float | None = None
    features: tuple[str, ...] = ()
    min_ceiling_height_m: float | None = None
    min_floor_load_kg_m2: float | None = None
    min_power_kva: float | None = None
    site_ids: tuple[str, ...] = ()
    # None: a workshop search (stalls have their own searches).
    space_kind: str | None = None
    rail_siding: bool = False
    river_quay_within_m: int | None = None
    petite_ceinture: bool = False
    min_freight_weight_t: float | None = None
    min_freight_height_m: float | None = None
    cargo_bike_parking: bool = False

    @property
    def wanted_space_kind(self) -> str:
        return self.space_kind or SpaceKind.WORKSHOP.value

    @property
    def logistics(self) -> tuple[str, ...]:
        """The yes-or-no logistics required (`Logistics` values)."""
        return tuple(
            need.value
            for need, wanted in (
                (Logistics.RAIL_SIDING, self.rail_siding),
                (Logistics.PETITE_CEINTURE, self.petite_ceinture),
                (Logistics.CARGO_BIKE_PARKING, self.cargo_bike_parking),
            )
            if wanted
        )

    @classmethod
    def from_stored(cls, stored: dict[str, Any]) -> Criteria:
        """The criteria of a subscription, from the JSON its schema validated when saved."""
        return cls(
            arrondissements=tuple(stored.get("arrondissements") or ()),
            site_kinds=tuple(stored.get("site_kinds") or ()),
            trades=tuple(stored.get("trades") or ()),
            min_surface_m2=stored.get("min_surface_m2"),
            max_surface_m2=stored.get("max_surface_m2"),
            max_rent_eur_m2_year=stored.get("max_rent_eur_m2_year"),
            features=tuple(stored.get("features") or ()),
            min_ceiling_height_m=stored.get("min_ceiling_height_m"),
            min_floor_load_kg_m2=stored.get("min_floor_load_kg_m2"),
            min_power_kva=stored.get("min_power_kva"),
            site_ids=tuple(stored.get("site_ids") or ()),
            space_kind=stored.get("space_kind"),
            rail_siding=bool(stored.get("rail_siding")),
            river_quay_within_m=stored.get("river_quay_within_m"),
            petite_ceinture=bool(stored.get("petite_ceinture")),
            min_freight_weight_t=stored.get("min_freight_weight_t"),
            min_freight_height_m=stored.get("min_freight_height_m"),
            cargo_bike_parking=bool(stored.get("cargo_bike_parking")),
        )


def index_terms(criteria: Criteria) -> list[tuple[str, str]]:
    """The (dimension, value) terms under which a subscription is filed in the index."""
    terms: list[tuple[str, str]] = []
    for dim, values in (
        (DIM_ARRONDISSEMENT, [str(a) for a in criteria.arrondissements]),
        (DIM_SITE_KIND, list(criteria.site_kinds)),
        (DIM_TRADE, list(criteria.trades)),
    ):
        terms.extend((dim, v) for v in sorted(set(values)) or [WILDCARD])
    return terms


def probe_terms(unit: UnitFacts) -> dict[str, list[str]]:
    """The terms a vacancy looks up, per dimension; a dimension left out accepts everyone.

    A unit that names no allowed trade is open to every trade, so the trade dimension is not
    probed for it.
    """
    probes = {
        DIM_ARRONDISSEMENT: [str(unit.arrondissement), WILDCARD],
        DIM_SITE_KIND: [unit.site_kind, WILDCARD],
    }
    if unit.allowed_trades:
        probes[DIM_TRADE] = sorted(set(unit.allowed_trades)) + [WILDCARD]
    return probes


def _fmt(value: float) -> str:
    return f"{value:g}"


def period_words(start: date | None, end: date | None) -> str:
    """`from 2026-12-01 to 2026-12-31`: the period a stall is let for."""
    if start and end:
        return f"from {start.isoformat()} to {end.isoformat()}"
    if start:
        return f"from {start.isoformat()}"
    return f"until {end.isoformat()}" if end else "for a period not given yet"


def explain_match(criteria: Criteria, unit: UnitFacts) -> list[str] | None:
    """Why `unit` fits `criteria` (one line per criterion), or None when it does not."""
    why: list[str] = []
    # A search is for one kind of space: stalls never reach a workshop search, nor the reverse.
    if unit.space_kind != criteria.wanted_space_kind:
        return None
    if unit.space_kind == SpaceKind.STALL:
        why.append(f"a stall let {period_words(unit.period_start, unit.period_end)}")
    if criteria.site_ids:
        if unit.site_id not in criteria.site_ids:
            return None
        why.append("on a site you follow")
    if criteria.arrondissements:
        if unit.arrondissement not in criteria.arrondissements:
            return None
        why.append(f"arrondissement {unit.arrondissement} is one you follow")
    if criteria.site_kinds:
        if unit.site_kind not in criteria.site_kinds:
            return None
        why.append(f"site kind {unit.site_kind}")
    if criteria.trades:
        if unit.allowed_trades:
            shared = sorted(set(criteria.trades) & set(unit.allowed_trades))
            if not shared:
                return None
            why.append(f"allows your trade{'s' if len(shared) > 1 else ''}: {', '.join(shared)}")
        else:
            why.append("open to every trade")
    if criteria.min_surface_m2 is not None and unit.surface_m2 < criteria.min_surface_m2:
        return None
    if criteria.max_surface_m2 is not None and unit.surface_m2 > criteria.max_surface_m2:
        return None
    if criteria.min_surface_m2 is not None or criteria.max_surface_m2 is not None:
        low = _fmt(criteria.min_surface_m2) if criteria.min_surface_m2 is not None else "0"
        high = _fmt(criteria.max_surface_m2) if criteria.max_surface_m2 is not None else "∞"
        why.append(f"{_fmt(unit.surface_m2)} m² within {low}–{high} m²")
    if criteria.max_rent_eur_m2_year is not None:
        if unit.rent_eur_m2_year > criteria.max_rent_eur_m2_year:
            return None
        why.append(
            f"rent {_fmt(unit.rent_eur_m2_year)} €/m²/year ≤ your maximum "
            f"{_fmt(criteria.max_rent_eur_m2_year)}"
        )
    if criteria.features:
        missing = set(criteria.features) - unit.features
        if missing:
            return None
        why.append(f"has {', '.join(sorted(criteria.features))}")
    for minimum, figure, unit_name in (
        (criteria.min_ceiling_height_m, unit.ceiling_height_m, "m ceiling height"),
        (criteria.min_floor_load_kg_m2, unit.floor_load_kg_m2, "kg/m² floor load"),
        (criteria.min_power_kva, unit.power_kva, "kVA power"),
    ):
        if minimum is None:
            continue
        # As inventory's search: a figure the landlord left out meets no minimum.
        if figure is None or figure < minimum:
            return None
        why.append(f"{_fmt(figure)} {unit_name} ≥ your minimum {_fmt(minimum)}")
    logistics = _explain_logistics(criteria, unit)
    if logistics is None:
        return None
    why += logistics
    if not why:
        why.append("your search accepts every vacancy")
    return why


def _explain_logistics(criteria: Criteria, unit: UnitFacts) -> list[str] | None:
    """Why the unit's site meets the logistics criteria, or None when it misses one. As the
    other minimums: a figure inventory was not given meets none."""
    why: list[str] = []
    if criteria.rail_siding:
        if not unit.rail_siding:
            return None
        why.append("has a rail siding")
    if criteria.petite_ceinture:
        if not unit.petite_ceinture_station:
            return None
        why.append(f"next to the petite-ceinture station {unit.petite_ceinture_station}")
    if criteria.cargo_bike_parking:
        if unit.cargo_bike_spaces <= 0:
            return None
        why.append(f"{unit.cargo_bike_spaces} cargo-bike space(s)")
    if criteria.river_quay_within_m is not None:
        distance = unit.river_quay_distance_m
        if distance is None or distance > criteria.river_quay_within_m:
            return None
        why.append(f"river quay {distance} m away, within your {criteria.river_quay_within_m} m")
    for minimum, figure, unit_name in (
        (criteria.min_freight_weight_t, unit.freight_max_weight_t, "t freight vehicles"),
        (criteria.min_freight_height_m, unit.freight_max_height_m, "m high freight vehicles"),
    ):
        if minimum is None:
            continue
        if figure is None or figure < minimum:
            return None
        why.append(f"takes {_fmt(figure)} {unit_name}, ≥ your minimum {_fmt(minimum)}")
    return why


# Eligibility ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArtisanProfile:
    artisan_id: str
    trades: tuple[str, ...]
    business_created_on: date | None
    legal_form: str | None


@dataclass(frozen=True)
class ProgrammeRules:
    """The part of a published programme that decides who may apply to which unit."""

    programme_id: str
    name: str
    site_kinds: tuple[str, ...]
    max_business_age_years: int | None = None
    allowed_legal_forms: tuple[str, ...] | None = None
    requires_trade_match: bool = False
    rent_cap_eur_m2_year: float | None = None


@dataclass(frozen=True)
class QualifiedProgramme:
    programme_id: str
    name: str
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Eligibility:
    eligible: bool
    # False when no programme is known yet, so nobody was filtered out.
    filtered: bool
    summary: str
    programmes: tuple[QualifiedProgramme, ...] = field(default_factory=tuple)


def full_years(start: date, on: date) -> int:
    """Whole years from `start` to `on` (leasing's definition of a business's age)."""
    years = on.year - start.year - ((on.month, on.day) < (start.month, start.day))
    return max(years, 0)


def programme_verdict(
    programme: ProgrammeRules, artisan: ArtisanProfile, unit: UnitFacts, on: date
) -> tuple[bool, list[str]]:
    """Whether the artisan passes the programme's rules for this unit, and why (or why not).

    The same rules as leasing's `failed_rules` (services/leasing/leasing/eligibility.py): site
    kind covered, business younger than the limit in whole years, legal form in the list, one
    shared trade when required (a unit listing no trade welcomes every trade). The rent cap is
    not an eligibility rule there: it caps the lease's rent, so it is reported, not filtered on.
    """
    why: list[str] = []
    if unit.site_kind not in programme.site_kinds:
        return False, [f"does not cover {unit.site_kind} sites"]
    why.append(f"covers {unit.site_kind} sites")
    if programme.max_business_age_years is not None:
        limit = programme.max_business_age_years
        if artisan.business_created_on is None:
            return False, ["business creation date unknown"]
        age = full_years(artisan.business_created_on, on)
        if age >= limit:
            return False, [f"business {age} full years old, the limit is under {limit}"]
        why.append(f"business {age} full years old (under {limit})")
    if programme.allowed_legal_forms is not None:
        allowed = {f.lower() for f in programme.allowed_legal_forms}
        form = (artisan.legal_form or "").lower()
        if form not in allowed:
            return False, [f"legal form {artisan.legal_form or 'unknown'} not accepted"]
        why.append(f"legal form {form} accepted")
    if programme.requires_trade_match:
        shared = sorted(set(artisan.trades) & set(unit.allowed_trades))
        if unit.allowed_trades and not shared:
            return False, ["none of your trades is allowed in the unit"]
        why.append(
            f"trade {', '.join(shared)} allowed in the unit" if shared else "every trade allowed"
        )
    if programme.rent_cap_eur_m2_year is not None:
        why.append(f"lease rent capped at {_fmt(programme.rent_cap_eur_m2_year)} €/m²/year")
    return True, why


def eligibility(
    artisan: ArtisanProfile | None,
    programmes: Sequence[ProgrammeRules],
    unit: UnitFacts,
    on: date,
    *,
    any_known: bool | None = None,
) -> Eligibility:
    """Pre-filter: may this artisan be alerted to this vacancy?

    No programme published at all (`any_known` false; by default, `programmes` empty): nothing
    to filter on, everyone is alerted. An artisan leasing has not told us about yet: not
    alerted, since we cannot check it. Otherwise: alerted when at least one programme covering
    the unit's site kind accepts the artisan.
    """
    if not (programmes if any_known is None else any_known):
        return Eligibility(True, False, "no programme published yet: alerts are not filtered")
    if artisan is None:
        return Eligibility(False, True, "artisan profile not received from leasing yet")
    qualified = []
    for programme in programmes:
        ok, why = programme_verdict(programme, artisan, unit, on)
        if ok:
            qualified.append(QualifiedProgramme(programme.programme_id, programme.name, tuple(why)))
    if not qualified:
        return Eligibility(False, True, "no programme covering this unit accepts you")
    names = ", ".join(q.name for q in qualified)
    return Eligibility(True, True, f"you qualify for {names}", tuple(qualified))


# Delivery schedule ---------------------------------------------------------------------------


def retry_delay(
    attempt: int, base: float, cap: float, rand: Callable[[], float] = random.random
) -> float:
    """Exponential backoff with equal jitter: between half and all of min(cap, base·2^(n-1))."""
    ceiling = min(cap, base * 2 ** max(attempt - 1, 0))
    return ceiling / 2 + rand() * ceiling / 2


def retry_wait(
    attempt: int,
    schedule: Sequence[float],
    jitter: float,
    cap: float,
    rand: Callable[[], float] = random.random,
) -> float:
    """The wait after failed attempt `attempt` (1 for the first): the schedule's delay of that
    rank (its last one past its end), drawn within ±`jitter` of it, at most `cap` seconds."""
    delay = schedule[min(max(attempt, 1), len(schedule)) - 1]
    return min(cap, delay * (1 - jitter + 2 * jitter * rand()))


def duration_words(seconds: float) -> str:
    """`5 days`, `36 hours`, `90 seconds`: a setting's duration as a sentence says it."""
    for unit, size in (("day", 86_400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count > 1 else ''}"
    return f"{seconds:g} second{'s' if seconds != 1 else ''}"


def next_digest_at(now: datetime, hour_utc: int) -> datetime:
    """The next daily digest time strictly after `now`."""
    today = datetime.combine(now.astimezone(UTC).date(), time(hour_utc), tzinfo=UTC)
    return today if today > now else today + timedelta(days=1)
