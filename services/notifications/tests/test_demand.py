"""Anonymised demand: saved searches by arrondissement and trade, against the supply read over
HTTP from a vacancies file; small counts suppressed so one person's search is never visible;
validated with frictionless against the committed schema; admin-only refresh; SQLite and
PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from frictionless import Resource, Schema

from fabkit.auth import Role
from notifications.service.demand import (
    K_ANONYMITY,
    Vacancy,
    count_demand,
    demand_rows,
    parse_vacancies,
)

from .conftest import Service, Smtp, make_settings, running
from .test_guests import ask, confirm_by_mail

SCHEMA = Path(__file__).parents[1] / "notifications" / "opendata" / "schemas" / "demand.json"
SUPPLY = Path(__file__).with_name("data") / "vacancies.csv"


def validate(content: bytes) -> list[dict[str, str]]:
    schema = Schema.from_descriptor(json.loads(SCHEMA.read_text(encoding="utf-8")))
    report = Resource(data=content, format="csv", encoding="utf-8", schema=schema).validate()
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])
    return list(csv.DictReader(io.StringIO(content.decode("utf-8"))))


def cell(rows: list[dict[str, str]], arrondissement: str, trade: str) -> dict[str, str]:
    [found] = [r for r in rows if (r["arrondissement"], r["metier"]) == (arrondissement, trade)]
    return found


# The rules, on plain data ---------------------------------------------------------------------


def test_one_persons_search_is_never_visible() -> None:
    cells = count_demand([("artisan-1", {"arrondissements": [7], "trades": ["leather"]})], set())

    [row] = demand_rows(cells, None)

    assert (row["arrondissement"], row["metier"], row["secret"]) == (7, "leather", True)
    assert row["recherches"] is None and row["personnes"] is None


def test_a_cell_is_published_from_five_people_and_counts_people_not_searches() -> None:
    searches = [
        (f"artisan-{i}", {"arrondissements": [11], "trades": ["ceramics"]}) for i in range(4)
    ]
    searches += [("artisan-0", {"arrondissements": [11], "trades": ["ceramics"]})]  # a 2nd search

    four = demand_rows(count_demand(searches, set()), None)
    five = demand_rows(
        count_demand(searches + [("artisan-9", {"arrondissements": [11, 12]})], set()), None
    )

    assert four[0]["secret"] is True, "five searches of four people stay secret"
    assert K_ANONYMITY == 5
    eleventh = [r for r in five if (r["arrondissement"], r["metier"]) == (11, "ceramics")]
    assert eleventh[0]["secret"] is True
    any_trade = [r for r in five if r["metier"] is None]
    assert [(r["arrondissement"], r["personnes"]) for r in any_trade] == [(11, None), (12, None)]


def test_unconfirmed_guests_are_not_counted_and_empty_criteria_mean_any() -> None:
    searches = [("guest:g-1", {}), ("guest:g-2", {}), *[(f"a-{i}", {}) for i in range(4)]]

    [row] = demand_rows(count_demand(searches, confirmed_guests={"g-1"}), None)

    assert (row["arrondissement"], row["metier"]) == (None, None)
    assert (row["recherches"], row["personnes"], row["secret"]) == (5, 5, False)


def test_supply_counts_the_vacancies_a_search_would_be_alerted_to() -> None:
    vacancies = parse_vacancies(SUPPLY.read_bytes())

    assert vacancies[0] == Vacancy(11, frozenset({"ceramics", "glass"}), 45.0)
    rows = demand_rows({}, vacancies)
    assert (cell_of(rows, 11, "ceramics")["offre_locaux_vacants"]) == 2, "one is open to all"
    assert cell_of(rows, 11, None)["offre_surface_m2"] == 105.0
    assert cell_of(rows, 13, "woodwork")["offre_locaux_vacants"] == 1
    assert all(r["recherches"] == 0 and r["secret"] is False for r in rows)


def cell_of(rows: list[dict[str, Any]], arrondissement: int, trade: str | None) -> dict[str, Any]:
    [found] = [r for r in rows if (r["arrondissement"], r["metier"]) == (arrondissement, trade)]
    return found


def test_a_file_without_the_columns_it_needs_is_refused() -> None:
    with pytest.raises(ValueError, match="metiers"):
        parse_vacancies(b"unit_id,arrondissement,surface_m2\r\nu,11,40\r\n")


# The service, with a real supply server -------------------------------------------------------


@pytest.fixture
def supply_server() -> Iterator[str]:
    """Inventory's public vacancies file, served by a real HTTP server on loopback."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = SUPPLY.read_bytes()
            self.send_response(200 if self.path == "/v1/open-data/vacancies.csv" else 404)
            self.send_header("Content-Type", "text/csv; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/open-data/vacancies.csv"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
async def svc(database_url: str, smtp: Smtp, supply_server: str) -> AsyncIterator[Service]:
    settings = make_settings(
        database_url,
        smtp_host=smtp.host,
        smtp_port=smtp.port,
        portal_base_url="http://portal.test",
        open_data_supply_url=supply_server,
    )
    async with running(settings) as service:
        yield service


async def regenerate(svc: Service) -> dict[str, Any]:
    r = await svc.client.post("/v1/open-data/regenerate", headers=svc.admin)
    assert r.status_code == 200, r.text
    [entry] = r.json()["files"]
    return entry  # type: ignore[no-any-return]


async def test_demand_is_published_against_supply_with_small_counts_suppressed(
    svc: Service, smtp: Smtp
) -> None:
    tag = uuid.uuid4().hex[:6]
    ceramists = [f"ceramist-{tag}-{i}" for i in range(4)]
    for artisan in ceramists:
        await svc.subscribe(artisan, criteria={"arrondissements": [11], "trades": ["ceramics"]})
    leatherworker = f"leather-{tag}"
    await svc.subscribe(leatherworker, criteria={"arrondissements": [7], "trades": ["leather"]})
    paused = await svc.subscribe(
        f"paused-{tag}", criteria={"arrondissements": [11], "trades": ["ceramics"]}
    )
    r = await svc.client.post(
        f"/v1/subscriptions/{paused['id']}/pause", headers=svc.artisan(f"paused-{tag}")
    )
    assert r.status_code == 200, r.text

    entry = await regenerate(svc)
    rows = validate((await svc.client.get("/v1/open-data/demand.csv")).content)

    assert entry["supply"] == "read"
    assert cell(rows, "11", "ceramics")["secret"] == "true", "four people, and a paused search"
    assert cell(rows, "11", "ceramics")["recherches"] == ""

    # A confirmed guest is the fifth person: the cell is published.
    asked = await ask(
        svc, f"{tag}@example.org", criteria={"arrondissements": [11], "trades": ["ceramics"]}
    )
    assert asked.status_code == 202, asked.text
    [confirmation] = smtp.mailbox.to(f"{tag}@example.org")
    await confirm_by_mail(svc, confirmation)
    stale = (await svc.client.get("/v1/open-data/demand.csv")).content
    assert cell(validate(stale), "11", "ceramics")["secret"] == "true", "cached until refreshed"

    await regenerate(svc)
    content = (await svc.client.get("/v1/open-data/demand.csv")).content
    rows = validate(content)

    ceramics = cell(rows, "11", "ceramics")
    assert (ceramics["recherches"], ceramics["personnes"], ceramics["secret"]) == (
        "5",
        "5",
        "false",
    )
    assert (ceramics["offre_locaux_vacants"], ceramics["offre_surface_m2"]) == ("2", "105")
    assert ceramics["code_insee"] == "75111"
    leather = cell(rows, "7", "leather")
    assert (leather["recherches"], leather["personnes"], leather["secret"]) == ("", "", "true")
    assert cell(rows, "13", "woodwork")["recherches"] == "0"
    text = content.decode()
    for person in [*ceramists, leatherworker, f"{tag}@example.org"]:
        assert person not in text


async def test_the_file_is_public_cacheable_and_only_an_admin_refreshes_it(svc: Service) -> None:
    r = await svc.client.get("/v1/open-data/demand.csv")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["cache-control"].startswith("public")
    again = await svc.client.get(
        "/v1/open-data/demand.csv", headers={"If-None-Match": r.headers["etag"]}
    )
    assert again.status_code == 304
    catalogue = (await svc.client.get("/v1/open-data")).json()
    assert catalogue["licence"]["name"] == "etalab-2.0"
    assert catalogue["files"][0]["min_people"] == 5
    assert catalogue["files"][0]["sha256"] == r.headers["etag"].strip('"')
    schema = await svc.client.get("/v1/open-data/schemas/demand.json")
    assert schema.json() == json.loads(SCHEMA.read_text(encoding="utf-8"))
    for role in (Role.ARTISAN, Role.LANDLORD, Role.OFFICER):
        headers = svc.identities.headers(role, f"demand-{uuid.uuid4().hex[:8]}")
        refused = await svc.client.post("/v1/open-data/regenerate", headers=headers)
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
    assert (await svc.client.post("/v1/open-data/regenerate")).status_code == 401


async def test_without_a_readable_supply_the_demand_is_still_published(
    sqlite_url: str,
) -> None:
    async with running(make_settings(sqlite_url, open_data_supply_url="http://127.0.0.1:9/x")) as s:
        r = await s.client.post("/v1/open-data/regenerate", headers=s.admin)
        assert r.json()["files"][0]["supply"] == "unavailable"
        rows = validate((await s.client.get("/v1/open-data/demand.csv")).content)
        assert all(row["offre_locaux_vacants"] == "" for row in rows)
