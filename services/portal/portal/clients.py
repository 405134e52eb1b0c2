"""Every call the portal makes to the public APIs, with typed answers and bounded time.

The portal owns no domain data: a page is built from inventory, leasing and notifications
answers. A service that cannot be reached becomes `UpstreamUnavailable` (a 503 page naming it),
an unknown resource `UpstreamNotFound` (a 404 page), never a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from portal.schemas import Catalogue, Listing, SitePage, Unit, UnitPage
from portal.settings import PortalSettings

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
Params = Sequence[tuple[str, str | int | float]]

API_PAGE_MAX = 100


class UpstreamUnavailable(Exception):
    """A public API did not answer, or answered with a server error."""

    def __init__(self, service: str, reason: str) -> None:
        super().__init__(f"{service}: {reason}")
        self.service = service


class UpstreamNotFound(Exception):
    """The API answered 404 for the resource a page is about."""


class UpstreamRefused(Exception):
    """The API refused the request (4xx); `detail` is its problem+json detail."""

    def __init__(self, service: str, status: int, detail: str) -> None:
        super().__init__(f"{service} answered {status}: {detail}")
        self.service = service
        self.status = status
        self.detail = detail


@dataclass
class Upstreams:
    """One HTTP client per public API, opened by the lifespan and closed with it."""

    inventory: httpx.AsyncClient
    leasing: httpx.AsyncClient
    notifications: httpx.AsyncClient

    @classmethod
    def open(cls, settings: PortalSettings) -> Upstreams:
        timeout = httpx.Timeout(settings.upstream_timeout_s, connect=2.0)
        limits = httpx.Limits(max_connections=50, max_keepalive_connections=20)

        def client(base: str) -> httpx.AsyncClient:
            return httpx.AsyncClient(
                base_url=base,
                timeout=timeout,
                limits=limits,
                headers={"Accept": "application/json", "User-Agent": "fabrique-portal"},
            )

        return cls(
            client(settings.inventory_url),
            client(settings.leasing_url),
            client(settings.notifications_url),
        )

    async def aclose(self) -> None:
        for c in (self.inventory, self.leasing, self.notifications):
            await c.aclose()

    def named(self) -> dict[str, httpx.AsyncClient]:
        return {
            "inventory": self.inventory,
            "leasing": self.leasing,
            "notifications": self.notifications,
        }


async def _get(
    service: str, client: httpx.AsyncClient, path: str, model: type[M], params: Params = ()
) -> M:
    try:
        response = await client.get(path, params=list(params))
    except httpx.HTTPError as exc:
        log.warning("%s unreachable for %s: %s", service, path, type(exc).__name__)
        raise UpstreamUnavailable(service, type(exc).__name__) from exc
    if response.status_code == 404:
        raise UpstreamNotFound(path)
    if response.status_code >= 500:
        raise UpstreamUnavailable(service, f"HTTP {response.status_code}")
    if response.status_code >= 400:
        raise UpstreamRefused(service, response.status_code, _detail(response))
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        # An answer the portal cannot read is the service's fault, not the visitor's.
        raise UpstreamUnavailable(service, "unreadable answer") from exc


def _detail(response: httpx.Response) -> str:
    try:
        body: Any = response.json()
    except ValueError:
        return response.text[:300]
    return str(body.get("detail", "")) if isinstance(body, dict) else ""


async def search_units(upstreams: Upstreams, params: Params, limit: int, offset: int) -> UnitPage:
    """One page of inventory's unit search."""
    query = [*params, ("limit", limit), ("offset", offset)]
    return await _get("inventory", upstreams.inventory, "/v1/units", UnitPage, query)


async def get_unit(upstreams: Upstreams, unit_id: str) -> Unit:
    return await _get("inventory", upstreams.inventory, f"/v1/units/{_segment(unit_id)}", Unit)


async def list_sites(upstreams: Upstreams, limit: int = 500) -> SitePage:
    """The sites, up to `limit` (paged through the API)."""
    items = []
    total = 0
    offset = 0
    while offset < limit:
        page = await _get(
            "inventory",
            upstreams.inventory,
            "/v1/sites",
            SitePage,
            [("limit", API_PAGE_MAX), ("offset", offset)],
        )
        items.extend(page.items)
        total = page.total
        offset += API_PAGE_MAX
        if offset >= total:
            break
    return SitePage(items=items, total=total)


async def get_listing(upstreams: Upstreams, unit_id: str) -> Listing | None:
    """Leasing's listing of a unit; None while leasing has not heard of the unit yet."""
    try:
        return await _get("leasing", upstreams.leasing, f"/v1/units/{_segment(unit_id)}", Listing)
    except UpstreamNotFound:
        return None


async def get_catalogue(upstreams: Upstreams) -> Catalogue:
    return await _get("leasing", upstreams.leasing, "/v1/programmes", Catalogue)


async def reachable(client: httpx.AsyncClient) -> bool:
    """The service answers its liveness probe (for the portal's readiness report)."""
    try:
        response = await client.get("/livez", timeout=2.0)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def _segment(value: str) -> str:
    """A path segment from user input: ids are url-safe; anything else cannot match."""
    return quote(value, safe="")
