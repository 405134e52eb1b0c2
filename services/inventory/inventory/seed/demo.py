"""Seed the inventory with real Paris sites (paris_sites.csv), invented demo units, the
no-net-loss demo (seed/protection.py: a development project and a few losses) and invented demo
sites of the new kinds (seed/new_spaces.py: fab lab, tiers-lieu, logistics, Christmas market)."""

from __future__ import annotations

import csv
import logging
import random
import uuid
from dataclasses import dataclass
from pathlib import Path

from fabkit.auth import Principal, Role
from inventory import repository as repo
from inventory.domain import LandlordKind, SiteKind, UnitStatus, UseClass
from inventory.geocoding import Geocoder, geocoder_of
from inventory.schemas import LandlordCreate, SiteCreate, UnitCreate
from inventory.seed.new_spaces import seed_new_spaces
from inventory.seed.protection import seed_protection
from inventory.service.common import Sessions
from inventory.service.landlords import create_landlord
from inventory.service.sites import create_site
from inventory.service.units import create_unit
from inventory.settings import InventorySettings

log = logging.getLogger(__name__)

CSV = Path(__file__).with_name("paris_sites.csv")
ADMIN = Principal(subject="seed", role=Role.ADMIN)

# The operator column names several bodies; the first one named runs the site.
OPERATORS = {
    "RIVP": ("RIVP", LandlordKind.SOCIAL_LANDLORD),
    "Ville de Paris": ("Ville de Paris", LandlordKind.CITY),
    "Semaest": ("Semaest", LandlordKind.SEM),
}
PARIS_HABITAT = ("Paris Habitat", LandlordKind.SOCIAL_LANDLORD)
ELOGIE = ("Elogie-Siemp", LandlordKind.SOCIAL_LANDLORD)

TRADES = [
    "woodwork", "cabinetmaking", "ceramics", "textile", "leather", "metalwork", "jewellery",
    "printing", "bookbinding", "glass", "upholstery", "instrument_making", "electronics",
    "food_processing", "fashion", "design",
]  # fmt: skip


def demo_landlord_id(name: str) -> str:
    """The fixed id of a demo landlord, the one the demo realm's landlord clients and staff
    carry in their ``landlord_id`` claim (deploy/keycloak/demo-directory.json)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:fabrique:landlord:{name}"))


@dataclass(frozen=True)
class SeedResult:
    landlords: int
    sites: int
    units: int
    vacancies: int
    projects: int = 0
    losses: int = 0


def _kind(name: str) -> SiteKind:
    lowered = name.lower()
    if "hôtel industriel" in lowered or "métropole 19" in lowered:
        return SiteKind.HOTEL_INDUSTRIEL
    if "hôtel d'entreprises" in lowered or "hôtel d'activités" in lowered:
        return SiteKind.HOTEL_ACTIVITES
    if "ateliers de paris" in lowered:
        return SiteKind.ATELIERS_DE_PARIS
    if "pépinière" in lowered:
        return SiteKind.PEPINIERE
    if "cité" in lowered or "cour" in lowered:
        return SiteKind.CITE_ARTISANALE
    return SiteKind.OTHER


def _operator(raw: str) -> tuple[str, LandlordKind]:
    for key, value in OPERATORS.items():
        if raw.startswith(key) or key in raw.split(" / ")[-1:]:
            return value
    return OPERATORS["Ville de Paris"]


def _address(row: dict[str, str]) -> str:
    address = row["address"].strip()
    if "address" not in row["verified"] or "unverified" in address:
        street = {"Cité artisanale des Taillandiers": "rue des Taillandiers"}.get(row["name"])
        base = street or address.replace("(street no. unverified)", "").strip() or row["name"]
        return f"{base} (street number unverified)"
    return address


def _units_for(kind: SiteKind, rng: random.Random) -> list[dict[str, object]]:
    small = kind in (SiteKind.ATELIERS_DE_PARIS, SiteKind.PEPINIERE)
    count = rng.randint(3, 5) if small else rng.randint(4, 7)
    units = []
    for i in range(count):
        surface = rng.randint(20, 60) if small else rng.choice([120, 150, 180, 200, 220, 260, 320])
        units.append(
            {
                "reference": f"{'A' if small else 'L'}{i // 4}{i % 4 + 1:02d}",
                "floor": i // 4,
                "surface_m2": float(surface),
                "ceiling_height_m": round(rng.uniform(3.0, 6.3), 1),
                "floor_load_kg_m2": float(rng.choice([600, 800, 1000, 1100])),
                "power_kva": float(rng.choice([12, 36, 60, 100])),
                "goods_lift": not small or rng.random() < 0.3,
                "loading_dock": not small and rng.random() < 0.5,
                "extraction": rng.random() < 0.4,
                "step_free_access": i < 4 or rng.random() < 0.5,
                "allowed_trades": sorted(rng.sample(TRADES, 4)),
                "use_class": UseClass.PRODUCTION if rng.random() < 0.9 else UseClass.OTHER,
                "rent_eur_m2_year": float(rng.randrange(60, 181, 5)),
                "charges_eur_m2_year": float(rng.randrange(10, 41, 5)),
                "status": UnitStatus.AVAILABLE if rng.random() < 0.35 else UnitStatus.UNAVAILABLE,
            }
        )
    return units


async def seed(sessions: Sessions, geocoder: Geocoder | None = None) -> SeedResult:
    """Load the demo data once; a second run finds the landlords there and adds nothing.
    Sites get coordinates only from a geocoder (README.md: the configured one by default)."""
    settings = InventorySettings()
    owned = geocoder is None
    if owned:
        geocoder = geocoder_of(
            settings.geocoder_url, settings.geocoder_timeout_s, settings.geocoder_min_score
        )
    try:
        return await _seed(sessions, geocoder)
    finally:
        if owned and geocoder is not None:
            await geocoder.aclose()


async def _seed(sessions: Sessions, geocoder: Geocoder | None) -> SeedResult:
    rng = random.Random(75)
    landlord_ids: dict[str, str] = {}
    created = {"landlords": 0, "sites": 0, "units": 0, "vacancies": 0}
    units: list[dict[str, object]] = []
    async with sessions() as session:
        for name, _ in (*OPERATORS.values(), PARIS_HABITAT, ELOGIE):
            existing = await repo.get_landlord_by_name(session, name)
            if existing:
                landlord_ids[name] = existing.id
    if landlord_ids:
        log.info("demo data already present; nothing seeded")
        return SeedResult(0, 0, 0, 0)
    for name, landlord_kind in (*OPERATORS.values(), PARIS_HABITAT, ELOGIE):
        written = await create_landlord(
            sessions,
            LandlordCreate(name=name, kind=landlord_kind),
            None,
            landlord_id=demo_landlord_id(name),
        )
        landlord_ids[name] = written.body["id"]
        created["landlords"] += 1
    with CSV.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        if not row["postcode"].startswith("75") or not row["arrondissement"]:
            log.info("skipping %s: not a verified Paris address", row["name"])
            continue
        kind = _kind(row["name"])
        landlord_name, _ = _operator(row["operator"])
        facts = f"Operator: {row['operator']}. Notes: {row['notes']}. Source: {row['source']}."
        site = SiteCreate(
            name=row["name"],
            kind=kind,
            address=_address(row),
            postcode=row["postcode"],
            arrondissement=int(row["arrondissement"]),
            opens_for_visits=rng.random() < 0.5,
            description=(
                f"{facts} Verified: {row['verified']}. Units and rents are invented demo data."
            )[:2000],
            landlord_id=landlord_ids[landlord_name],
        )
        site_written = (await create_site(sessions, ADMIN, site, None, geocoder)).written
        created["sites"] += 1
        for unit in _units_for(kind, rng):
            data = UnitCreate.model_validate(unit)
            written = await create_unit(sessions, ADMIN, site_written.body["id"], data, None)
            units.append(written.body)
            created["units"] += 1
            created["vacancies"] += data.status == UnitStatus.AVAILABLE
    protection = await seed_protection(sessions, units)
    # After the CSV sites and the losses, drawing nothing from rng: those stay as they were.
    spaces = await seed_new_spaces(sessions, landlord_ids[OPERATORS["Ville de Paris"][0]])
    for key, count in spaces.items():
        created[key] += count
    return SeedResult(**created, **protection)
