"""Leasing: listings, programmes, and (with the visitor's token) profiles, applications and
leases."""

from __future__ import annotations

from portal.clients.base import UpstreamNotFound, Upstreams, get, segment
from portal.schemas import Catalogue, Listing


async def get_listing(upstreams: Upstreams, unit_id: str) -> Listing | None:
    """Leasing's listing of a unit; None while leasing has not heard of the unit yet."""
    try:
        return await get("leasing", upstreams.leasing, f"/v1/units/{segment(unit_id)}", Listing)
    except UpstreamNotFound:
        return None


async def get_catalogue(upstreams: Upstreams) -> Catalogue:
    return await get("leasing", upstreams.leasing, "/v1/programmes", Catalogue)
