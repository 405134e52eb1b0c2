"""The geocoder: its parsing of real recorded answers (tests/data/geocoder/), the client against a
real local HTTP server serving them, and sites registered or moved through it (SQLite and
PostgreSQL). The geocoder is off in every other test."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from inventory.cli import migrate
from inventory.geocoding import Geocoder, Outcome, parse_search_answer
from inventory.main import create_app
from tests.conftest import Api, make_settings

DATA = Path(__file__).with_name("data") / "geocoder"


def answer(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


# Parsing the recorded answers --------------------------------------------------------------


def test_a_house_number_in_paris_is_taken_with_its_point() -> None:
    point = parse_search_answer(answer("paris_housenumber"), postcode="75019", min_score=0.7)

    assert point is not None
    assert (point.latitude, point.longitude) == (48.888467, 2.38603)
    assert point.label == "21 Rue des Ardennes 75019 Paris"
    assert point.score == pytest.approx(0.976, abs=1e-3)


def test_a_match_in_another_postcode_is_not_taken() -> None:
    assert parse_search_answer(answer("paris_housenumber"), postcode="75013", min_score=0.7) is None


def test_a_match_under_the_score_threshold_is_not_taken() -> None:
    weak = answer("weak_street_match")
    assert parse_search_answer(weak, postcode="93230", min_score=0.7) is None
    # Above the threshold it would still be refused: Romainville is outside Paris.
    assert parse_search_answer(weak, postcode="93230", min_score=0.5) is None


def test_an_answer_without_features_is_no_match() -> None:
    assert parse_search_answer(answer("no_match"), postcode="75011", min_score=0.7) is None


@pytest.mark.parametrize(
    "body",
    [[], {"type": "Feature"}, {"type": "FeatureCollection"}, "<html>busy</html>"],
)
def test_an_answer_that_is_no_feature_collection_is_refused(body: Any) -> None:
    with pytest.raises(ValueError, match="FeatureCollection"):
        parse_search_answer(body, postcode="75011", min_score=0.7)


# A real local server serving the recorded answers -----------------------------------------------


@dataclass
class RecordedApi:
    url: str
    requests: list[dict[str, list[str]]] = field(default_factory=list)
    status: int = 200


@pytest.fixture
def recorded_api() -> Iterator[RecordedApi]:
    """The geocoding API's `/search`, answering what it answered for these queries."""
    state = RecordedApi(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            state.requests.append(query)
            q = " ".join(query.get("q", [])).lower()
            name = "paris_housenumber" if "ardennes" in q else "no_match"
            if "mairie" in q:
                name = "weak_street_match"
            body = (DATA / f"{name}.json").read_bytes()
            status = state.status if parts.path == "/geocodage/search" else 404
            if status != 200:
                body = json.dumps({"code": status, "message": "error"}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/geocodage"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


async def test_the_client_asks_for_one_address_match_and_reads_the_answer(
    recorded_api: RecordedApi,
) -> None:
    geocoder = Geocoder(recorded_api.url, timeout_s=5, min_score=0.7, user_agent="test")
    try:
        found = await geocoder.locate("site-1", "21 rue des Ardennes", "75019")
        missing = await geocoder.locate("site-2", "3 impasse Inconnue", "75011")
    finally:
        await geocoder.aclose()

    assert found.outcome is Outcome.LOCATED
    assert found.point is not None
    assert (found.point.latitude, found.point.longitude) == (48.888467, 2.38603)
    assert missing.outcome is Outcome.NO_MATCH and missing.point is None
    first = recorded_api.requests[0]
    assert first["q"] == ["21 rue des Ardennes 75019 Paris"]
    assert first["limit"] == ["1"]
    assert first["index"] == ["address"]
    assert first["postcode"] == ["75019"]


async def test_an_error_status_or_an_unreachable_api_is_a_failure(
    recorded_api: RecordedApi,
) -> None:
    recorded_api.status = 503
    geocoder = Geocoder(recorded_api.url, timeout_s=5, min_score=0.7, user_agent="test")
    closed = Geocoder("http://127.0.0.1:9/geocodage", timeout_s=1, min_score=0.7, user_agent="t")
    try:
        assert (await geocoder.locate("s", "21 rue des Ardennes", "75019")).outcome is (
            Outcome.FAILED
        )
        assert (await closed.locate("s", "21 rue des Ardennes", "75019")).outcome is (
            Outcome.FAILED
        )
    finally:
        await geocoder.aclose()
        await closed.aclose()


# Sites registered and moved through the geocoder --------------------------------------------------


@pytest.fixture
async def geo_api(
    database_url: str, kafka_broker: Any, recorded_api: RecordedApi
) -> AsyncIterator[Api]:
    settings = make_settings(database_url, kafka_broker.bootstrap, geocoder_url=recorded_api.url)
    await asyncio.to_thread(migrate, settings)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://inventory") as client:
            yield Api(client, settings)


ARDENNES = {
    "address": "21 rue des Ardennes",
    "postcode": "75019",
    "arrondissement": 19,
}


async def test_a_site_registered_without_coordinates_gets_its_address_point(
    geo_api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    _, headers = await geo_api.new_landlord()
    caplog.set_level(logging.INFO)

    r = await geo_api.client.post(
        "/v1/sites",
        json={"name": "Ateliers des Ardennes", "kind": "cite_artisanale", **ARDENNES},
        headers=headers,
    )

    assert r.status_code == 201, r.text
    assert r.headers["fabrique-geocoding"] == "located"
    assert (r.json()["latitude"], r.json()["longitude"]) == (48.888467, 2.38603)
    stored = (await geo_api.client.get(f"/v1/sites/{r.json()['id']}")).json()
    assert (stored["latitude"], stored["longitude"]) == (48.888467, 2.38603)
    assert "Ardennes" not in caplog.text, "logs name the site, never its address"
    assert r.json()["id"] in caplog.text


async def test_coordinates_given_are_kept_and_the_api_is_not_asked(
    geo_api: Api, recorded_api: RecordedApi
) -> None:
    _, headers = await geo_api.new_landlord()

    site = await geo_api.new_site(headers, **ARDENNES, latitude=48.8885, longitude=2.3861)

    assert (site["latitude"], site["longitude"]) == (48.8885, 2.3861)
    assert recorded_api.requests == []


async def test_no_match_or_a_failing_api_keeps_the_site_without_coordinates(
    geo_api: Api, recorded_api: RecordedApi
) -> None:
    _, headers = await geo_api.new_landlord()
    body = {"name": "Cour inconnue", "kind": "cite_artisanale", "address": "3 impasse Inconnue"}
    body |= {"postcode": "75011", "arrondissement": 11}

    unknown = await geo_api.client.post("/v1/sites", json=body, headers=headers)
    recorded_api.status = 500
    failing = await geo_api.client.post("/v1/sites", json=body | ARDENNES, headers=headers)

    assert unknown.status_code == 201, unknown.text
    assert unknown.headers["fabrique-geocoding"] == "no-match"
    assert failing.status_code == 201, failing.text
    assert failing.headers["fabrique-geocoding"] == "failed"
    for r in (unknown, failing):
        assert (r.json()["latitude"], r.json()["longitude"]) == (None, None)


async def test_a_moved_site_gets_the_new_point_or_loses_the_old_one(geo_api: Api) -> None:
    _, headers = await geo_api.new_landlord()
    site = await geo_api.new_site(headers)  # 26 rue Bruneseau: unknown to the recorded API
    assert site["latitude"] is None

    moved = await geo_api.client.patch(
        f"/v1/sites/{site['id']}", json=ARDENNES, headers=headers | {"If-Match": '"1"'}
    )
    assert moved.status_code == 200, moved.text
    assert moved.headers["fabrique-geocoding"] == "located"
    assert (moved.json()["latitude"], moved.json()["longitude"]) == (48.888467, 2.38603)

    renamed = await geo_api.client.patch(
        f"/v1/sites/{site['id']}", json={"name": "Ateliers du 19e"}, headers=headers
    )
    assert renamed.headers["fabrique-geocoding"] == "given"
    assert renamed.json()["latitude"] == 48.888467

    lost = await geo_api.client.patch(
        f"/v1/sites/{site['id']}", json={"address": "3 impasse Inconnue"}, headers=headers
    )
    assert lost.status_code == 200, lost.text
    assert lost.headers["fabrique-geocoding"] == "no-match"
    assert (lost.json()["latitude"], lost.json()["longitude"]) == (None, None)


async def test_another_landlord_cannot_move_a_site_nor_make_the_api_be_asked(
    geo_api: Api, recorded_api: RecordedApi
) -> None:
    _, owner = await geo_api.new_landlord()
    _, other = await geo_api.new_landlord()
    site = await geo_api.new_site(owner, latitude=48.8262, longitude=2.3867)
    asked = len(recorded_api.requests)

    r = await geo_api.client.patch(f"/v1/sites/{site['id']}", json=ARDENNES, headers=other)

    assert r.status_code == 403, r.text
    assert len(recorded_api.requests) == asked
