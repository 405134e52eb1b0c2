"""A client of the Géoplateforme geocoding API (IGN, France's national address service).

`GET {base}/search?q=…&limit=1&index=address&postcode=…` answers a GeoJSON FeatureCollection
(GeoCodeJSON): each feature a Point `[longitude, latitude]` with `properties.score` (0 to 1),
`label`, `postcode`, `type` (housenumber, street, locality, municipality). The service took over
api-adresse.data.gouv.fr (same engine on the Base Adresse Nationale, same answers) in 2024.

A site's write never waits on it for long and never fails because of it: a timeout, an error
status, an unreadable answer, no match or a weak one all give "no coordinates", said in the
outcome. Logs name the site, never its address."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx

log = logging.getLogger(__name__)

# The bounds the site schemas accept (schemas._SiteFields): a point outside is not in Paris.
LATITUDE_BOUNDS = (48.80, 48.91)
LONGITUDE_BOUNDS = (2.22, 2.47)
PARIS_CITYCODE_PREFIX = "751"


class Outcome(StrEnum):
    """What geocoding a site's address gave, as the `Fabrique-Geocoding` header says it."""

    LOCATED = "located"
    NO_MATCH = "no-match"  # no feature, a weak score, or a point outside Paris or the postcode
    FAILED = "failed"  # timeout, network error, error status, unreadable answer
    OFF = "off"  # no INVENTORY_GEOCODER_URL: nothing asked
    GIVEN = "given"  # the caller gave coordinates, or the address did not change


@dataclass(frozen=True)
class Located:
    latitude: float
    longitude: float
    score: float
    label: str


@dataclass(frozen=True)
class Geocoded:
    outcome: Outcome
    point: Located | None = None


def parse_search_answer(body: Any, *, postcode: str, min_score: float) -> Located | None:
    """The best feature of a search answer when it is a good enough match in `postcode`."""
    if not isinstance(body, dict) or body.get("type") != "FeatureCollection":
        raise ValueError("not a GeoJSON FeatureCollection")
    features = body.get("features")
    if not isinstance(features, list):
        raise ValueError("a FeatureCollection without a features list")
    if not features:
        return None
    best = max(features, key=lambda f: _score(f))
    score = _score(best)
    geometry = best.get("geometry") or {}
    coordinates = geometry.get("coordinates")
    if geometry.get("type") != "Point" or not isinstance(coordinates, list | tuple):
        raise ValueError("the best feature has no Point geometry")
    longitude, latitude = float(coordinates[0]), float(coordinates[1])
    properties = best.get("properties") or {}
    if score < min_score:
        return None
    if properties.get("postcode") not in (None, postcode):
        return None
    # Paris's arrondissements are communes 75101 to 75120 of the official geographic code; the
    # box below alone would take Romainville or Montreuil.
    if not str(properties.get("citycode", PARIS_CITYCODE_PREFIX)).startswith(PARIS_CITYCODE_PREFIX):
        return None
    if not (LATITUDE_BOUNDS[0] <= latitude <= LATITUDE_BOUNDS[1]) or not (
        LONGITUDE_BOUNDS[0] <= longitude <= LONGITUDE_BOUNDS[1]
    ):
        return None
    return Located(
        latitude=round(latitude, 6),
        longitude=round(longitude, 6),
        score=score,
        label=str(properties.get("label", "")),
    )


def _score(feature: Any) -> float:
    try:
        return float(feature["properties"]["score"])
    except (KeyError, TypeError, ValueError):
        return 0.0


class Geocoder:
    """Looks an address up; one shared httpx client, closed with the app."""

    def __init__(
        self, base_url: str, *, timeout_s: float, min_score: float, user_agent: str
    ) -> None:
        self.min_score = min_score
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=timeout_s,
            headers={"Accept": "application/json", "User-Agent": user_agent},
        )

    async def locate(self, site_id: str, address: str, postcode: str) -> Geocoded:
        """Coordinates of a Paris address, or the reason there are none."""
        params = {
            "q": f"{address} {postcode} Paris",
            "limit": "1",
            "index": "address",
            "postcode": postcode,
        }
        try:
            response = await self._client.get("/search", params=params)
            response.raise_for_status()
            point = parse_search_answer(
                response.json(), postcode=postcode, min_score=self.min_score
            )
        except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as exc:
            log.warning("geocoding site %s failed: %s", site_id, type(exc).__name__)
            return Geocoded(Outcome.FAILED)
        if point is None:
            log.info("geocoding site %s: no match good enough", site_id)
            return Geocoded(Outcome.NO_MATCH)
        log.info("geocoding site %s: located (score %.2f)", site_id, point.score)
        return Geocoded(Outcome.LOCATED, point)

    async def aclose(self) -> None:
        await self._client.aclose()


def geocoder_of(url: str | None, timeout_s: float, min_score: float) -> Geocoder | None:
    """The configured geocoder, or None when no URL is set (geocoding off)."""
    if not url:
        return None
    return Geocoder(
        url, timeout_s=timeout_s, min_score=min_score, user_agent="fabrique-inventory/1.0"
    )
