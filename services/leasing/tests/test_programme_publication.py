"""The programme file seeds the catalogue (stored as a version and published as events) when
the database holds none; a broken file stops the service before it serves anything."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, update

from leasing.main import create_app
from leasing.models import ProgrammePublication, ProgrammeVersion
from leasing.programmes import DEFAULT_FILE, ProgrammeConfigError

from .conftest import eventually, make_settings, started_app


async def published(settings: Any, **overrides: Any) -> list[Any]:
    """The programme events in the outbox once the app started and the relay sent them."""
    async with started_app(settings.model_copy(update=overrides)) as api:

        async def sent() -> list[Any] | None:
            rows = await api.outbox(topic="leasing.programme.events")
            return rows if all(m.published_at for m in rows) else None

        return await eventually(sent)  # type: ignore[no-any-return]


async def test_the_file_seeds_the_catalogue_once_then_the_database_is_the_source(
    database_url: str, kafka_broker: Any, tmp_path: Path
) -> None:
    settings = make_settings(database_url, kafka_broker.bootstrap)
    first = await published(settings)
    assert len(first) == 3
    data = first[0].envelope["data"]
    assert data["catalogue"]["version"] == 1
    assert data["programme"]["scoring"][0] == {
        "id": "young_business",
        "kind": "business_age",
        "label": "Business created less than a year ago",
        "points": 30,
        "under_years": 1,
        "labels": None,
        "legal_forms": None,
        "points_per_month": None,
    }
    again = await published(settings)
    assert [m.event_id for m in again] == [m.event_id for m in first]  # same file: nothing new

    catalogue = tomllib.loads(DEFAULT_FILE.read_text(encoding="utf-8"))
    catalogue["programmes"][0]["rules"]["rent_cap_eur_m2_year"] = 110.0
    changed = tmp_path / "programmes.json"
    changed.write_text(json.dumps(catalogue), encoding="utf-8")
    after = await published(settings, programmes_file=changed)
    # The database holds version 1 already: a changed file is not read again (changes go
    # through PUT /v1/programmes/{id}).
    assert [m.event_id for m in after] == [m.event_id for m in first]
    async with started_app(settings.model_copy(update={"programmes_file": changed})) as api:
        served = (await api.client.get("/v1/programmes")).json()
    assert served["version"] == 1
    assert served["programmes"][0]["rules"]["rent_cap_eur_m2_year"] == 120.0


async def test_a_catalogue_published_before_versions_were_stored_keeps_its_number(
    database_url: str, kafka_broker: Any, tmp_path: Path
) -> None:
    """A database migrated from before versions: the head says version 4 of this file, no body
    is stored. Start-up stores the body as version 4 and publishes nothing; a different file
    would be published as version 5."""
    settings = make_settings(database_url, kafka_broker.bootstrap)
    async with started_app(settings) as api:
        async with api.sessions() as session, session.begin():
            await session.execute(delete(ProgrammeVersion))
            await session.execute(update(ProgrammePublication).values(catalogue_version=4))
        before = await api.outbox(topic="leasing.programme.events")
    after = await published(settings)
    assert [m.event_id for m in after] == [m.event_id for m in before]
    async with started_app(settings) as api:
        served = await api.client.get("/v1/programmes")
        versions = (await api.client.get("/v1/programmes/versions")).json()
    assert served.headers["ETag"] == '"4"'
    assert [(v["version"], v["created_by"]) for v in versions["items"]] == [(4, "seed")]

    async with started_app(settings) as api, api.sessions() as session, session.begin():
        await session.execute(delete(ProgrammeVersion))
    catalogue = tomllib.loads(DEFAULT_FILE.read_text(encoding="utf-8"))
    del catalogue["programmes"][2]
    changed = tmp_path / "programmes.json"
    changed.write_text(json.dumps(catalogue), encoding="utf-8")
    republished = (await published(settings, programmes_file=changed))[len(after) :]
    assert [m.key for m in republished] == [p["id"] for p in catalogue["programmes"]]
    assert republished[0].envelope["data"]["catalogue"]["version"] == 5


def test_a_broken_programme_file_stops_the_service(tmp_path: Path) -> None:
    broken = tmp_path / "programmes.toml"
    broken.write_text('[[programmes]]\nid = "x"\n', encoding="utf-8")
    settings = make_settings("sqlite+aiosqlite:///unused.db", "127.0.0.1:1", programmes_file=broken)
    with pytest.raises(ProgrammeConfigError, match=r"programmes\.toml"):
        create_app(settings)
