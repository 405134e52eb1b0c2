"""Programmes are published as events at start-up, again only when the configuration changed;
a broken configuration stops the service before it serves anything."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from leasing.main import create_app
from leasing.programmes import DEFAULT_FILE, ProgrammeConfigError

from .conftest import eventually, make_settings, started_app


async def published(settings: Any, **overrides: Any) -> list[Any]:
    """The programme events in the outbox once the app started and the relay sent them."""
    async with started_app(settings.model_copy(update=overrides)) as api:

        async def sent() -> list[Any] | None:
            rows = await api.outbox(topic="leasing.programme.events")
            return rows if all(m.published_at for m in rows) else None

        return await eventually(sent)  # type: ignore[no-any-return]


async def test_programmes_are_republished_only_when_their_content_changes(
    database_url: str, kafka_broker: Any, tmp_path: Path
) -> None:
    settings = make_settings(database_url, kafka_broker.bootstrap)
    first = await published(settings)
    assert len(first) == 3
    again = await published(settings)
    assert [m.event_id for m in again] == [m.event_id for m in first]  # same file: nothing new

    catalogue = tomllib.loads(DEFAULT_FILE.read_text(encoding="utf-8"))
    catalogue["programmes"][0]["rules"]["rent_cap_eur_m2_year"] = 110.0
    del catalogue["programmes"][2]  # the ESS programme is retired
    changed = tmp_path / "programmes.json"
    changed.write_text(json.dumps(catalogue), encoding="utf-8")
    after = await published(settings, programmes_file=changed)

    new = after[len(first) :]
    assert [m.key for m in new] == [p["id"] for p in catalogue["programmes"]]
    data = new[0].envelope["data"]
    assert data["catalogue"]["version"] == 2
    assert data["catalogue"]["programme_ids"] == [p["id"] for p in catalogue["programmes"]]
    assert data["programme"]["rules"]["rent_cap_eur_m2_year"] == 110.0
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
    # and the relay had them acknowledged by the broker
    assert all(m.published_at is not None for m in new)


def test_a_broken_programme_file_stops_the_service(tmp_path: Path) -> None:
    broken = tmp_path / "programmes.toml"
    broken.write_text('[[programmes]]\nid = "x"\n', encoding="utf-8")
    settings = make_settings("sqlite+aiosqlite:///unused.db", "127.0.0.1:1", programmes_file=broken)
    with pytest.raises(ProgrammeConfigError, match=r"programmes\.toml"):
        create_app(settings)
