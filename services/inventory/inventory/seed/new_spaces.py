"""Demo sites of the new kinds (issue 18): a fab lab, a tiers-lieu, last-mile logistics premises
at a petite-ceinture station and a seasonal Christmas market with stalls for December.

Everything here is **invented** (names, addresses, units, rents, logistics figures) and says so
in each site's description ("site de démonstration"); only the station's name is a real former
petite-ceinture station. The sites belong to the Ville de Paris, sit in arrondissements the other
demo data does not use (8, 10, 14, 15), and rent above the CSV sites' demo rents (60–180
€/m²/year), so that the first vacancies listed by rent and the RIVP data stay as they were.
The logistics premises and the stalls are `use_class: other` (stalls count for no production
surface anyway); the fab lab's and tiers-lieu's workshops are production units.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fabkit.auth import Principal, Role
from inventory.domain import SiteKind, SpaceKind, UnitStatus, UseClass
from inventory.schemas import LogisticsIn, SiteCreate, UnitCreate
from inventory.service.common import Sessions
from inventory.service.sites import create_site
from inventory.service.units import create_unit

ADMIN = Principal(subject="seed", role=Role.ADMIN)
DEMO = "Site de démonstration : nom, adresse, locaux, loyers et équipements inventés."


def _workshop(
    reference: str, m2: float, rent: float, trades: list[str], **more: Any
) -> dict[str, Any]:
    return {
        "reference": reference,
        "surface_m2": m2,
        "rent_eur_m2_year": rent,
        "charges_eur_m2_year": 20.0,
        "allowed_trades": trades,
        **more,
    }


def _sites(today: date) -> list[tuple[SiteCreate, list[dict[str, Any]]]]:
    december = {"period_start": date(today.year, 12, 1), "period_end": date(today.year, 12, 31)}
    stall = {
        "space_kind": SpaceKind.STALL,
        "use_class": UseClass.OTHER,
        "status": UnitStatus.AVAILABLE,
        **december,
    }
    available = {"status": UnitStatus.AVAILABLE}
    return [
        (
            SiteCreate(
                name="Fab lab du Canal — démonstration",
                kind=SiteKind.FAB_LAB,
                address="1 passage de la Démonstration (adresse inventée)",
                postcode="75010",
                arrondissement=10,
                description=f"{DEMO} Fab lab : découpe laser, impression 3D, électronique.",
            ),
            [
                _workshop("FL01", 45, 195, ["design", "electronics"], **available),
                _workshop("FL02", 60, 190, ["design", "woodwork"], extraction=True),
                _workshop("FL03", 30, 210, ["electronics", "jewellery"], **available),
            ],
        ),
        (
            SiteCreate(
                name="Tiers-lieu des Faubourgs — démonstration",
                kind=SiteKind.TIERS_LIEU,
                address="2 cour de la Démonstration (adresse inventée)",
                postcode="75015",
                arrondissement=15,
                description=f"{DEMO} Tiers-lieu : ateliers partagés, café associatif.",
                logistics=LogisticsIn(river_quay_distance_m=650, cargo_bike_spaces=8),
            ),
            [
                _workshop("TL01", 80, 185, ["textile", "fashion"], **available),
                _workshop("TL02", 55, 190, ["ceramics", "glass"]),
                _workshop("TL03", 40, 200, ["printing", "bookbinding"], **available),
            ],
        ),
        (
            SiteCreate(
                name="Logistique urbaine Montrouge-Ceinture — démonstration",
                kind=SiteKind.LOGISTIQUE_URBAINE,
                address="3 quai de la Démonstration (adresse inventée)",
                postcode="75014",
                arrondissement=14,
                description=f"{DEMO} Local de logistique du dernier kilomètre sur la petite "
                "ceinture : embranchement ferré, vélos-cargos, accès poids lourds.",
                logistics=LogisticsIn(
                    rail_siding=True,
                    petite_ceinture_station="Gare de Montrouge-Ceinture",
                    freight_max_weight_t=19,
                    freight_max_height_m=4,
                    cargo_bike_spaces=40,
                ),
            ),
            [
                _workshop(
                    "LU01",
                    400,
                    190,
                    ["delivery"],
                    use_class=UseClass.OTHER,
                    loading_dock=True,
                    step_free_access=True,
                    **available,
                ),
                _workshop(
                    "LU02",
                    250,
                    195,
                    ["delivery"],
                    use_class=UseClass.OTHER,
                    loading_dock=True,
                    step_free_access=True,
                    **available,
                ),
                _workshop(
                    "LU03", 120, 200, ["delivery"], use_class=UseClass.OTHER, step_free_access=True
                ),
            ],
        ),
        (
            SiteCreate(
                name="Marché de Noël — démonstration",
                kind=SiteKind.MARCHE_SAISONNIER,
                address="4 place de la Démonstration (adresse inventée)",
                postcode="75008",
                arrondissement=8,
                description=f"{DEMO} Marché saisonnier : chalets loués pour le mois de décembre.",
            ),
            [
                _workshop("CH01", 6, 900, ["food_processing"], **stall),
                _workshop("CH02", 6, 900, ["jewellery", "design"], **stall),
                _workshop("CH03", 9, 850, ["ceramics", "glass"], **stall),
                _workshop("CH04", 9, 850, ["woodwork", "textile"], **stall),
            ],
        ),
    ]


async def seed_new_spaces(sessions: Sessions, landlord_id: str) -> dict[str, int]:
    """Create the demo sites and units of the new kinds for `landlord_id`; what was created."""
    created = {"sites": 0, "units": 0, "vacancies": 0}
    for site, units in _sites(date.today()):
        site = site.model_copy(update={"landlord_id": landlord_id})
        written = (await create_site(sessions, ADMIN, site, None)).written
        created["sites"] += 1
        for unit in units:
            data = UnitCreate.model_validate(unit)
            await create_unit(sessions, ADMIN, written.body["id"], data, None)
            created["units"] += 1
            created["vacancies"] += data.status == UnitStatus.AVAILABLE
    return created
