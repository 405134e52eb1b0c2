"""Open data (docs/open-data.md): open vacancies, sites and the production-surface ledger as CSV
and GeoJSON, each conforming to a Table Schema committed in `inventory/opendata/schemas/`, under
the Licence Ouverte 2.0 (etalab-2.0).

One regeneration builds every file from one read of the database and replaces the stored files
in one transaction, so every replica serves the same bytes and a reader never gets half of a
regeneration. Files hold no personal data: landlords are organisations, and a ledger entry
names the role of who made a change, never the person."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.errors import ProblemError
from fabkit.events import utcnow
from inventory import repository as repo
from inventory.models import (
    Landlord,
    OpenDataFile,
    Site,
    SurfaceCompensation,
    SurfaceLedgerEntry,
    Unit,
)
from inventory.service.common import Sessions

log = logging.getLogger(__name__)

SCHEMAS = Path(__file__).resolve().parent.parent / "opendata" / "schemas"
LICENCE = {
    "name": "etalab-2.0",
    "title": "Licence Ouverte / Open Licence version 2.0",
    "path": "https://www.etalab.gouv.fr/licence-ouverte-open-licence",
}
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "geojson": "application/geo+json"}


@dataclass(frozen=True)
class Dataset:
    name: str
    formats: tuple[str, ...]

    @property
    def schema(self) -> dict[str, Any]:
        return schema_of(self.name)

    @property
    def title(self) -> str:
        return str(self.schema["title"])


DATASETS = (
    Dataset("vacancies", ("csv", "geojson")),
    Dataset("sites", ("csv", "geojson")),
    Dataset("surface-ledger", ("csv",)),
    Dataset("surface-by-arrondissement", ("csv",)),
)
DATASET_OF = {d.name: d for d in DATASETS}


@cache
def schema_of(name: str) -> dict[str, Any]:
    """The committed Table Schema of a dataset."""
    loaded: dict[str, Any] = json.loads((SCHEMAS / f"{name}.json").read_text(encoding="utf-8"))
    return loaded


def _columns(name: str) -> list[str]:
    return [field["name"] for field in schema_of(name)["fields"]]


def code_insee(arrondissement: int) -> str:
    """The arrondissement municipal's official code (Paris 13e: 75113)."""
    return f"751{arrondissement:02d}"


# Rows ------------------------------------------------------------------------------------


def logistics_cells(row: Site | Unit) -> dict[str, Any]:
    """A site's logistics attributes (or the copy its unit carries) as the files name them."""
    return {
        "embranchement_ferre": row.rail_siding,
        "distance_quai_fluvial_m": row.river_quay_distance_m,
        "gare_petite_ceinture": row.petite_ceinture_station,
        "fret_poids_max_t": row.freight_max_weight_t,
        "fret_hauteur_max_m": row.freight_max_height_m,
        "places_velos_cargo": row.cargo_bike_spaces,
    }


def vacancy_row(unit: Unit, site: Site, landlord: Landlord | None) -> dict[str, Any]:
    return {
        "unit_id": unit.id,
        "vacancy_id": unit.current_vacancy_id,
        "site_id": site.id,
        "site": site.name,
        "type_site": site.kind,
        "bailleur": landlord.name if landlord else "",
        "adresse": site.address,
        "code_postal": site.postcode,
        "arrondissement": unit.arrondissement,
        "code_insee": code_insee(unit.arrondissement),
        "reference": unit.reference,
        "etage": unit.floor,
        "surface_m2": unit.surface_m2,
        "usage": unit.use_class,
        "metiers": ";".join(sorted(unit.allowed_trades)),
        "loyer_eur_m2_an": unit.rent_eur_m2_year,
        "charges_eur_m2_an": unit.charges_eur_m2_year,
        "disponible_le": unit.available_from,
        "hauteur_sous_plafond_m": unit.ceiling_height_m,
        "charge_au_sol_kg_m2": unit.floor_load_kg_m2,
        "monte_charge": unit.goods_lift,
        "quai_de_livraison": unit.loading_dock,
        "accessible_de_plain_pied": unit.step_free_access,
        "latitude": site.latitude,
        "longitude": site.longitude,
        "type_local": unit.space_kind,
        "periode_debut": unit.period_start,
        "periode_fin": unit.period_end,
        **logistics_cells(unit),
    }


def site_row(
    site: Site, landlord: Landlord, production: tuple[float, int], vacant: int
) -> dict[str, Any]:
    m2, units = production
    return {
        "site_id": site.id,
        "nom": site.name,
        "type_site": site.kind,
        "bailleur": landlord.name,
        "type_bailleur": landlord.kind,
        "adresse": site.address,
        "code_postal": site.postcode,
        "arrondissement": site.arrondissement,
        "code_insee": code_insee(site.arrondissement),
        "locaux": units,
        "surface_production_m2": round(m2, 2),
        "locaux_vacants": vacant,
        "visites": site.opens_for_visits,
        "latitude": site.latitude,
        "longitude": site.longitude,
        **logistics_cells(site),
    }


def ledger_row(
    entry: SurfaceLedgerEntry, site: Site | None, compensation: SurfaceCompensation | None
) -> dict[str, Any]:
    return {
        "entry_id": entry.id,
        "enregistre_le": entry.recorded_at,
        "arrondissement": entry.arrondissement,
        "code_insee": code_insee(entry.arrondissement),
        "site_id": entry.site_id,
        "site": site.name if site else "",
        "unit_id": entry.unit_id,
        "changement": entry.change,
        "variation_m2": entry.delta_m2,
        "surface_apres_m2": entry.production_m2_after,
        "motif": entry.reason,
        # `role:subject`: the role only, so that no person is named.
        "auteur": entry.actor.split(":", 1)[0],
        "compensation_id": entry.compensation_id,
        "compensation_statut": compensation.status if compensation else None,
        "compensation_m2": compensation.m2 if compensation else None,
        "compensation_echeance": compensation.due_on if compensation else None,
        "compensation_description": compensation.description if compensation else None,
        "non_compensee": entry.uncompensated,
        "motif_non_compensation": entry.uncompensated_reason,
    }


def arrondissement_rows(
    entries: Iterable[SurfaceLedgerEntry], production_now: dict[int, float]
) -> list[dict[str, Any]]:
    """Gains, losses and how the losses are made good, per arrondissement, from the ledger."""
    sums: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for entry in entries:
        bucket = sums[entry.arrondissement]
        bucket["ecritures"] += 1
        if entry.delta_m2 >= 0:
            bucket["gagne_m2"] += entry.delta_m2
            continue
        lost = -entry.delta_m2
        bucket["perdu_m2"] += lost
        if entry.compensation_id:
            bucket["perdu_compense_m2"] += lost
        elif entry.uncompensated:
            bucket["perdu_non_compense_m2"] += lost
        elif entry.change not in ("relocated_out",):
            # A site corrected into another arrondissement moves its m² (relocated_in there):
            # nothing to compensate.
            bucket["perdu_en_attente_m2"] += lost
    rows = []
    for arrondissement in range(1, 21):
        bucket = sums.get(arrondissement, defaultdict(float))
        gained, lost = bucket["gagne_m2"], bucket["perdu_m2"]
        rows.append(
            {
                "arrondissement": arrondissement,
                "code_insee": code_insee(arrondissement),
                "surface_production_m2": round(production_now.get(arrondissement, 0.0), 2),
                "gagne_m2": round(gained, 2),
                "perdu_m2": round(lost, 2),
                "solde_m2": round(gained - lost, 2),
                "perdu_compense_m2": round(bucket["perdu_compense_m2"], 2),
                "perdu_non_compense_m2": round(bucket["perdu_non_compense_m2"], 2),
                "perdu_en_attente_m2": round(bucket["perdu_en_attente_m2"], 2),
                "ecritures": int(bucket["ecritures"]),
            }
        )
    return rows


# Formats ---------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, float):
        return repr(round(value, 6)).removesuffix(".0") if value.is_integer() else repr(value)
    return str(value)


def to_csv(name: str, rows: Sequence[dict[str, Any]]) -> bytes:
    """RFC 4180 CSV (UTF-8, comma, header), columns in the schema's order."""
    columns = _columns(name)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return buffer.getvalue().encode("utf-8")


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return _cell(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def with_point(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows a map can show: those with both coordinates."""
    return [r for r in rows if r.get("latitude") is not None and r.get("longitude") is not None]


def to_geojson(name: str, rows: Sequence[dict[str, Any]], generated_at: datetime) -> bytes:
    """An RFC 7946 FeatureCollection of the rows that have a point; the licence, the schema and
    the generation time as foreign members of the collection."""
    columns = _columns(name)
    features = [
        {
            "type": "Feature",
            "id": row[columns[0]],
            "geometry": {"type": "Point", "coordinates": [row["longitude"], row["latitude"]]},
            "properties": {c: _json_value(row.get(c)) for c in columns},
        }
        for row in with_point(rows)
    ]
    document = {
        "type": "FeatureCollection",
        "name": name,
        "title": schema_of(name)["title"],
        "licence": LICENCE,
        "schema": f"/v1/open-data/schemas/{name}.json",
        "generated_at": _cell(generated_at),
        "features": features,
    }
    return json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8") + b"\n"


# Use cases -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Built:
    dataset: str
    fmt: str
    content: bytes
    rows: int


# Entries read per query: loading 100,000 rows at once held the event loop for seconds
# (bench/opendata.py); pages of this size give it back between them.
LEDGER_PAGE = 2_000


async def _whole_ledger(session: AsyncSession) -> list[SurfaceLedgerEntry]:
    entries: list[SurfaceLedgerEntry] = []
    while True:
        page = await repo.ledger_page(session, entries[-1].id or 0 if entries else 0, LEDGER_PAGE)
        entries.extend(page)
        if len(page) < LEDGER_PAGE:
            return entries


async def _build(sessions: Sessions, generated_at: datetime) -> list[Built]:
    async with sessions() as session:
        vacancies = await repo.open_vacancies(session)
        sites = await repo.sites_with_landlords(session)
        by_site = {key: (m2, n) for key, m2, n in await repo.production_totals_now(session, "site")}
        by_arr = {
            int(key): m2
            for key, m2, _ in await repo.production_totals_now(session, "arrondissement")
        }
        ledger = await _whole_ledger(session)
        compensations = await repo.compensations_by_id(
            session, {e.compensation_id for e in ledger if e.compensation_id}
        )
    # Rows and formats are CPU only (seconds at 100,000 ledger entries): in a thread, so the
    # event loop keeps answering requests meanwhile.
    return await asyncio.to_thread(
        _render, vacancies, sites, by_site, by_arr, ledger, compensations, generated_at
    )


def _render(
    vacancies: Sequence[tuple[Unit, Site]],
    sites: Sequence[tuple[Site, Landlord]],
    by_site: dict[str, tuple[float, int]],
    by_arr: dict[int, float],
    ledger: Sequence[SurfaceLedgerEntry],
    compensations: dict[str, SurfaceCompensation],
    generated_at: datetime,
) -> list[Built]:
    landlords = {s.id: landlord for s, landlord in sites}
    site_of = {s.id: s for s, _ in sites}
    vacant: dict[str, int] = defaultdict(int)
    for unit, _ in vacancies:
        vacant[unit.site_id] += 1
    tables: dict[str, list[dict[str, Any]]] = {
        "vacancies": [vacancy_row(u, s, landlords.get(s.id)) for u, s in vacancies],
        "sites": [
            site_row(s, landlord, by_site.get(s.id, (0.0, 0)), vacant[s.id])
            for s, landlord in sites
        ],
        "surface-ledger": [
            ledger_row(
                e,
                site_of.get(e.site_id),
                compensations.get(e.compensation_id) if e.compensation_id else None,
            )
            for e in ledger
        ],
        "surface-by-arrondissement": arrondissement_rows(ledger, by_arr),
    }
    writers: dict[str, Callable[[str, list[dict[str, Any]]], bytes]] = {
        "csv": to_csv,
        "geojson": lambda name, rows: to_geojson(name, rows, generated_at),
    }
    built = []
    for dataset in DATASETS:
        rows = tables[dataset.name]
        for fmt in dataset.formats:
            content = writers[fmt](dataset.name, rows)
            count = len(rows) if fmt == "csv" else len(with_point(rows))
            built.append(Built(dataset.name, fmt, content, count))
    return built


async def regenerate(sessions: Sessions) -> datetime:
    """Build every file and replace the stored ones in one transaction; the generation time."""
    generated_at = utcnow().replace(microsecond=0)
    files = [
        OpenDataFile(
            name=f"{b.dataset}.{b.fmt}",
            dataset=b.dataset,
            format=b.fmt,
            content=b.content,
            sha256=hashlib.sha256(b.content).hexdigest(),
            rows=b.rows,
            generated_at=generated_at,
        )
        for b in await _build(sessions, generated_at)
    ]
    try:
        async with sessions() as session, session.begin():
            await repo.replace_open_data_files(session, files)
    except IntegrityError:
        # Another replica regenerated at the same moment; its files stand.
        log.info("open data: another replica regenerated the files first")
    else:
        log.info("open data regenerated: %d files", len(files))
    return generated_at


async def regenerate_if_stale(sessions: Sessions, max_age_s: float) -> bool:
    """Regenerate when no file is stored yet or the oldest is `max_age_s` old."""
    async with sessions() as session:
        oldest = await repo.oldest_open_data_generation(session)
    if oldest is not None and utcnow() - oldest < timedelta(seconds=max_age_s):
        return False
    await regenerate(sessions)
    return True


@dataclass(frozen=True)
class CatalogueEntry:
    name: str
    dataset: str
    title: str
    format: str
    media_type: str
    url: str
    schema_url: str
    licence: dict[str, str]
    generated_at: datetime
    sha256: str
    rows: int
    size_bytes: int


async def catalogue(sessions: Sessions) -> list[CatalogueEntry]:
    """Every stored file, as the catalogue lists it."""
    async with sessions() as session:
        files = await repo.list_open_data_files(session)
    return [
        CatalogueEntry(
            name=f.name,
            dataset=f.dataset,
            title=DATASET_OF[f.dataset].title if f.dataset in DATASET_OF else f.dataset,
            format=f.format,
            media_type=MEDIA_TYPES[f.format],
            url=f"/v1/open-data/{f.name}",
            schema_url=f"/v1/open-data/schemas/{f.dataset}.json",
            licence=LICENCE,
            generated_at=f.generated_at,
            sha256=f.sha256,
            rows=f.rows,
            size_bytes=len(f.content),
        )
        for f in files
    ]


async def open_data_file(sessions: Sessions, dataset: str, fmt: str) -> OpenDataFile:
    """One stored file, or a 404 that says which exist."""
    known = DATASET_OF.get(dataset)
    if known is None or fmt not in known.formats:
        names = ", ".join(f"{d.name}.{f}" for d in DATASETS for f in d.formats)
        raise ProblemError(
            404, f"There is no open-data file {dataset}.{fmt}; the files are: {names}."
        )
    async with sessions() as session:
        found = await repo.get_open_data_file(session, f"{dataset}.{fmt}")
    if found is None:
        raise ProblemError(
            404,
            f"{dataset}.{fmt} has not been generated yet; it is generated at start-up and "
            "nightly, or an admin can POST /v1/open-data/regenerate.",
        )
    return found


def schema_document(dataset: str) -> dict[str, Any]:
    """The committed Table Schema of a dataset, or a 404."""
    if dataset not in DATASET_OF:
        names = ", ".join(d.name for d in DATASETS)
        raise ProblemError(
            404, f"There is no open-data schema {dataset}; the schemas are: {names}."
        )
    return schema_of(dataset)
