"""Anonymised demand (docs/open-data.md): active saved searches counted by arrondissement and
trade, set against the open vacancies that would answer them, as a CSV under a committed Table
Schema (`notifications/opendata/schemas/demand.json`), Licence Ouverte 2.0.

Counted: active searches of accounts and of confirmed guests. A search that accepts several
arrondissements or trades counts in each; one that names none counts in the "any" cell (empty
arrondissement or trade), which is no total, so no cell can be worked out from others.

Statistical secret: a cell behind fewer than K_ANONYMITY (5) distinct people publishes no count,
only `secret=true`: with one to four people, anyone who knows a few artisans of a trade could
tell who is looking, and where.

The supply comes from inventory's public `vacancies.csv` over HTTP, never from inventory's
database: the figures set side by side are those anyone can download and check."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from itertools import product
from pathlib import Path
from typing import Any

import httpx

from fabkit.events import utcnow
from notifications import repository as repo
from notifications.models import GUEST_OWNER_PREFIX
from notifications.service.common import Sessions

log = logging.getLogger(__name__)

K_ANONYMITY = 5
SCHEMA = Path(__file__).resolve().parent.parent / "opendata" / "schemas" / "demand.json"
LICENCE = {
    "name": "etalab-2.0",
    "title": "Licence Ouverte / Open Licence version 2.0",
    "path": "https://www.etalab.gouv.fr/licence-ouverte-open-licence",
}
NAME = "demand.csv"

Cell = tuple[int | None, str | None]  # (arrondissement, trade); None: any


@cache
def schema() -> dict[str, Any]:
    """The committed Table Schema of the demand file."""
    loaded: dict[str, Any] = json.loads(SCHEMA.read_text(encoding="utf-8"))
    return loaded


@dataclass(frozen=True)
class Vacancy:
    arrondissement: int
    trades: frozenset[str]  # empty: open to every trade
    surface_m2: float


@dataclass
class Demand:
    searches: int = 0
    people: set[str] = field(default_factory=set)


def count_demand(
    searches: Iterable[tuple[str, dict[str, Any]]], confirmed_guests: set[str]
) -> dict[Cell, Demand]:
    """Searches and distinct people per (arrondissement, trade) cell."""
    cells: dict[Cell, Demand] = defaultdict(Demand)
    for owner, criteria in searches:
        guest = owner.removeprefix(GUEST_OWNER_PREFIX)
        if guest != owner and guest not in confirmed_guests:
            continue
        arrondissements: list[int | None] = [
            *sorted({int(a) for a in criteria.get("arrondissements") or ()})
        ]
        trades: list[str | None] = [*sorted({str(t) for t in criteria.get("trades") or ()})]
        cells_of: Iterable[Cell] = product(arrondissements or [None], trades or [None])
        for cell in cells_of:
            cells[cell].searches += 1
            cells[cell].people.add(owner)
    return cells


def supply_of(cell: Cell, vacancies: Iterable[Vacancy]) -> tuple[int, float]:
    """The open vacancies a search of `cell` would be alerted to, and their m²."""
    arrondissement, trade = cell
    found = [
        v
        for v in vacancies
        if (arrondissement is None or v.arrondissement == arrondissement)
        and (trade is None or not v.trades or trade in v.trades)
    ]
    return len(found), round(sum(v.surface_m2 for v in found), 2)


def parse_vacancies(content: bytes) -> list[Vacancy]:
    """Inventory's vacancies.csv (its schema: arrondissement, metiers, surface_m2)."""
    reader = csv.DictReader(io.StringIO(content.decode("utf-8")))
    missing = {"arrondissement", "metiers", "surface_m2"} - set(reader.fieldnames or ())
    if missing:
        raise ValueError(f"vacancies.csv lacks the columns {sorted(missing)}")
    return [
        Vacancy(
            arrondissement=int(row["arrondissement"]),
            trades=frozenset(t for t in row["metiers"].split(";") if t),
            surface_m2=float(row["surface_m2"]),
        )
        for row in reader
    ]


def _sort_key(cell: Cell) -> tuple[int, str]:
    arrondissement, trade = cell
    return (arrondissement if arrondissement is not None else 99, trade or "~")


def demand_rows(cells: dict[Cell, Demand], vacancies: list[Vacancy] | None) -> list[dict[str, Any]]:
    """One row per cell that has demand or supply; small counts suppressed."""
    keys = set(cells)
    if vacancies is not None:
        for v in vacancies:
            keys.add((v.arrondissement, None))
            keys.update((v.arrondissement, t) for t in v.trades)
    rows = []
    for cell in sorted(keys, key=_sort_key):
        demand = cells.get(cell, Demand())
        people = len(demand.people)
        secret = 0 < people < K_ANONYMITY
        arrondissement, trade = cell
        offer, m2 = supply_of(cell, vacancies) if vacancies is not None else (None, None)
        rows.append(
            {
                "arrondissement": arrondissement,
                "code_insee": f"751{arrondissement:02d}" if arrondissement else None,
                "metier": trade,
                "recherches": None if secret else demand.searches,
                "personnes": None if secret else people,
                "secret": secret,
                "offre_locaux_vacants": offer,
                "offre_surface_m2": m2,
            }
        )
    return rows


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def to_csv(rows: list[dict[str, Any]]) -> bytes:
    columns = [f["name"] for f in schema()["fields"]]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell_text(row.get(c)) for c in columns])
    return buffer.getvalue().encode("utf-8")


@dataclass(frozen=True)
class DemandFile:
    content: bytes
    sha256: str
    rows: int
    generated_at: datetime
    supply: str  # "read" or why not ("not configured", "unavailable")


class DemandPublisher:
    """Computes the demand file at most every `max_age_s` and keeps it for the process."""

    def __init__(
        self, supply_url: str | None, *, max_age_s: float, supply_timeout_s: float
    ) -> None:
        self.supply_url = supply_url
        self.max_age_s = max_age_s
        self.supply_timeout_s = supply_timeout_s
        self._file: DemandFile | None = None
        self._lock = asyncio.Lock()

    async def current(self, sessions: Sessions) -> DemandFile:
        """The file, recomputed when older than the cache allows."""
        async with self._lock:
            fresh = self._file
            if fresh and (utcnow() - fresh.generated_at).total_seconds() < self.max_age_s:
                return fresh
            self._file = await self._compute(sessions)
            return self._file

    async def regenerate(self, sessions: Sessions) -> DemandFile:
        """The file computed now (an admin's request)."""
        async with self._lock:
            self._file = await self._compute(sessions)
            return self._file

    async def _compute(self, sessions: Sessions) -> DemandFile:
        async with sessions() as session:
            searches = await repo.active_search_criteria(session)
            guests = await repo.guest_ids_with_status(session, "confirmed")
        vacancies, supply = await self._supply()
        rows = demand_rows(count_demand(searches, guests), vacancies)
        content = to_csv(rows)
        log.info("demand file computed: %d rows, supply %s", len(rows), supply)
        return DemandFile(
            content=content,
            sha256=hashlib.sha256(content).hexdigest(),
            rows=len(rows),
            generated_at=utcnow().replace(microsecond=0),
            supply=supply,
        )

    async def _supply(self) -> tuple[list[Vacancy] | None, str]:
        if not self.supply_url:
            return None, "not configured"
        try:
            async with httpx.AsyncClient(timeout=self.supply_timeout_s) as client:
                response = await client.get(self.supply_url)
                response.raise_for_status()
            return parse_vacancies(response.content), "read"
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            # The demand is still published; the supply columns stay empty and say so.
            log.warning("supply file unreadable: %s", type(exc).__name__)
            return None, "unavailable"
