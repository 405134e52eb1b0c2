"""The open-data page (public): every file inventory and notifications publish, from their
catalogues, with the stable URL integrators download it from, its Table Schema, its licence,
rows, date and size, and what the files let a reader find out."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from babel.dates import format_datetime
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from portal import formatting
from portal.clients import UpstreamUnavailable, inventory, notifications
from portal.i18n import babel_locale, gettext, per_locale
from portal.pages.deps import SettingsDep, UpstreamsDep
from portal.rendering import render
from portal.schemas import OpenDataCatalogue, OpenDataFile
from portal.settings import PortalSettings

router = APIRouter(include_in_schema=False)
_ = gettext


@per_locale
def descriptions() -> dict[str, str]:
    """What each dataset holds, in the page's language (the catalogues give a title only)."""
    return {
        "vacancies": _(
            "The production spaces open for letting now: site, arrondissement, surface, rent, "
            "equipment and trades allowed."
        ),
        "sites": _(
            "Every site of production spaces (industrial hotels, artisans' courts, Ateliers de "
            "Paris workshops): landlord, kind, address, arrondissement and its production m²."
        ),
        "surface-ledger": _(
            "Every change of production m², one row each: the unit, the m² gained or lost, why, "
            "and the compensation a loss names (m², planned or delivered, due date) or the "
            "reason it was recorded uncompensated."
        ),
        "surface-by-arrondissement": _(
            "Per arrondissement: production m² lost, gained, compensated, uncompensated, the "
            "compensations delivered, planned and late, and the net balance."
        ),
        "demand": _(
            "Saved searches for spaces by arrondissement and trade, against the spaces on "
            "offer; a figure for fewer people than the threshold is left out, so nobody can be "
            "recognised."
        ),
    }


def size_text(size: int | None) -> str:
    """A file's size in words (kB, MB), or a dash when the catalogue does not give it."""
    if size is None:
        return "—"
    if size < 1000:
        return _("%(n)s bytes") % {"n": formatting.number(size)}
    if size < 1_000_000:
        return _("%(n)s kB") % {"n": formatting.number(size / 1000, 1)}
    return _("%(n)s MB") % {"n": formatting.number(size / 1_000_000, 1)}


def format_name(code: str) -> str:
    return {"csv": "CSV", "geojson": "GeoJSON"}.get(code, code.upper())


@dataclass(frozen=True)
class Published:
    """One file as the page lists it."""

    file: OpenDataFile
    description: str
    url: str
    schema_url: str
    generated: str
    size: str
    format: str
    licence: str
    licence_url: str


def public_urls(settings: PortalSettings) -> dict[str, str]:
    """Where a reader's browser or program reaches each service's API."""
    return {
        "inventory": settings.inventory_public_url or settings.inventory_url,
        "notifications": settings.notifications_public_url or settings.notifications_url,
    }


def published(
    catalogues: list[tuple[str, OpenDataCatalogue | None]], bases: dict[str, str]
) -> list[Published]:
    """The files of every catalogue, surface files first, each URL made absolute on its
    service's public base (the catalogues give paths)."""
    found = []
    names = descriptions()
    for service, catalogue in catalogues:
        if catalogue is None:
            continue
        for f in catalogue.files:
            base = bases[service]
            licence = f.licence or catalogue.licence
            found.append(
                Published(
                    file=f,
                    description=names.get(f.dataset, f.title),
                    url=f.url if f.url.startswith("http") else base + f.url,
                    schema_url=f.schema_url
                    if f.schema_url.startswith("http")
                    else base + f.schema_url,
                    generated=format_datetime(
                        f.generated_at, format="long", locale=babel_locale(), tzinfo=None
                    ),
                    size=size_text(f.size_bytes),
                    format=format_name(f.format),
                    licence=licence.get("title") or licence.get("name") or "",
                    licence_url=licence.get("path") or licence.get("url") or "",
                )
            )
    order = ["surface-by-arrondissement", "surface-ledger", "sites", "vacancies", "demand"]
    return sorted(
        found,
        key=lambda p: (
            order.index(p.file.dataset) if p.file.dataset in order else len(order),
            p.file.format,
        ),
    )


async def _notifications(upstreams: Any) -> OpenDataCatalogue | None:
    """Notifications' catalogue, or None while it cannot be read: inventory's files are still
    listed (the page says the demand file is missing)."""
    try:
        return await notifications.open_data_catalogue(upstreams)
    except UpstreamUnavailable:
        return None


@router.get("/open-data", response_class=HTMLResponse)
async def open_data_page(
    request: Request, upstreams: UpstreamsDep, settings: SettingsDep
) -> HTMLResponse:
    stock, demand = await asyncio.gather(
        inventory.open_data_catalogue(upstreams), _notifications(upstreams)
    )
    files = published([("inventory", stock), ("notifications", demand)], public_urls(settings))
    return render(
        request,
        "open_data.html",
        {
            "files": files,
            "licence": stock.licence,
            "bases": public_urls(settings),
            "demand_missing": demand is None or not demand.files,
        },
    )
