"""Pure inventory rules: unit status transitions, vacancies and production-surface protection."""

from __future__ import annotations

from datetime import date
from enum import StrEnum


class SiteKind(StrEnum):
    HOTEL_INDUSTRIEL = "hotel_industriel"
    HOTEL_ACTIVITES = "hotel_activites"
    CITE_ARTISANALE = "cite_artisanale"
    ATELIERS_DE_PARIS = "ateliers_de_paris"
    PEPINIERE = "pepiniere"
    OTHER = "other"
    FAB_LAB = "fab_lab"
    TIERS_LIEU = "tiers_lieu"
    # Last-mile logistics premises (espaces de logistique urbaine), small stations of the
    # petite ceinture among them.
    LOGISTIQUE_URBAINE = "logistique_urbaine"
    # Seasonal sales stalls (Christmas markets, tourist sites): the site of `stall` units.
    MARCHE_SAISONNIER = "marche_saisonnier"


class SpaceKind(StrEnum):
    """What a unit is: a workshop (production space, let open-ended) or a seasonal sales stall
    (let for a period, never production surface)."""

    WORKSHOP = "workshop"
    STALL = "stall"


# A stall is let for a season, not a year: at most about six months.
STALL_MAX_DAYS = 183


class UseClass(StrEnum):
    PRODUCTION = "production"
    OTHER = "other"


class UnitStatus(StrEnum):
    AVAILABLE = "available"
    RESERVED = "reserved"
    LEASED = "leased"
    UNAVAILABLE = "unavailable"
    WITHDRAWN = "withdrawn"


class Feature(StrEnum):
    GOODS_LIFT = "goods_lift"
    LOADING_DOCK = "loading_dock"
    EXTRACTION = "extraction"
    STEP_FREE_ACCESS = "step_free_access"


class LandlordKind(StrEnum):
    SOCIAL_LANDLORD = "social_landlord"
    CITY = "city"
    SEM = "sem"
    PRIVATE = "private"
    OTHER = "other"


S = UnitStatus
# A leased unit leaves the market only through the lease ending (available) or works
# (unavailable); it is never withdrawn while let.
TRANSITIONS: dict[UnitStatus, frozenset[UnitStatus]] = {
    S.AVAILABLE: frozenset({S.RESERVED, S.LEASED, S.UNAVAILABLE, S.WITHDRAWN}),
    S.RESERVED: frozenset({S.AVAILABLE, S.LEASED, S.UNAVAILABLE, S.WITHDRAWN}),
    S.LEASED: frozenset({S.AVAILABLE, S.UNAVAILABLE}),
    S.UNAVAILABLE: frozenset({S.AVAILABLE, S.WITHDRAWN}),
    S.WITHDRAWN: frozenset({S.UNAVAILABLE}),
}
INITIAL_STATUSES = frozenset({S.AVAILABLE, S.UNAVAILABLE})


class TransitionError(ValueError):
    """A status change the unit's life cycle does not allow."""


def check_transition(current: UnitStatus, target: UnitStatus) -> None:
    if current == target:
        return
    if target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(t.value for t in TRANSITIONS[current]))
        raise TransitionError(
            f"A unit cannot go from '{current}' to '{target}'; from '{current}' it can go to: "
            f"{allowed}."
        )


def vacancy_change(before: UnitStatus | None, after: UnitStatus) -> str | None:
    """'opened' when a unit becomes available, 'closed' when it stops being, else None."""
    was = before == S.AVAILABLE
    now = after == S.AVAILABLE
    if now and not was:
        return "opened"
    if was and not now:
        return "closed"
    return None


def production_surface(
    use_class: UseClass,
    surface_m2: float,
    status: UnitStatus,
    space_kind: SpaceKind = SpaceKind.WORKSHOP,
) -> float:
    """The m² a unit contributes to the city's production surface (withdrawn units and sales
    stalls count 0: a stall is let for a season to sell, not to make)."""
    if use_class != UseClass.PRODUCTION or status == S.WITHDRAWN or space_kind == SpaceKind.STALL:
        return 0.0
    return float(surface_m2)


def protected_change(
    *,
    before_use: UseClass,
    after_use: UseClass,
    before_surface: float,
    after_surface: float,
    before_status: UnitStatus,
    after_status: UnitStatus,
) -> str | None:
    """Why this change reduces production surface (and so needs an admin and a reason), or None."""
    if before_use != UseClass.PRODUCTION or before_status == S.WITHDRAWN:
        # Nothing to protect: the unit already counts for no production surface.
        return None
    if after_use != UseClass.PRODUCTION:
        return "turning a production unit into another use"
    if after_surface < before_surface:
        return "shrinking a production unit"
    if after_status == S.WITHDRAWN and before_status != S.WITHDRAWN:
        return "withdrawing a production unit"
    return None


def period_problem(
    space_kind: SpaceKind,
    site_kind: str,
    period_start: date | None,
    period_end: date | None,
) -> tuple[int, str] | None:
    """(status, detail) when a unit's kind and period do not fit its site, else None."""
    if space_kind == SpaceKind.WORKSHOP:
        if period_start is not None or period_end is not None:
            return 422, (
                "A workshop has no period; leave out period_start and period_end (only a "
                "space_kind 'stall' is let for a period)."
            )
        return None
    if site_kind != SiteKind.MARCHE_SAISONNIER:
        return 409, (
            "A stall (space_kind 'stall') can only be on a 'marche_saisonnier' site; add it to "
            "a seasonal market site, or make it a workshop."
        )
    if period_start is None or period_end is None:
        return 422, "A stall needs period_start and period_end (the dates the stall is let for)."
    if period_end <= period_start:
        return 422, "period_end must be after period_start; give the last day the stall is let."
    if (period_end - period_start).days > STALL_MAX_DAYS:
        return 422, (
            f"A stall is let for at most {STALL_MAX_DAYS} days; shorten the period between "
            "period_start and period_end."
        )
    return None


def postcode_matches_arrondissement(postcode: str, arrondissement: int) -> bool:
    """75001–75020 map to arrondissements 1–20; 75116 is the 16th's second code."""
    if not 1 <= arrondissement <= 20:
        return False
    if postcode == "75116":
        return arrondissement == 16
    return postcode == f"750{arrondissement:02d}"
