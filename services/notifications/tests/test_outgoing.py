"""Contracts of what notifications sends outside the platform: webhook bodies and the data of
e-mails. Each snapshot (contracts/webhooks, contracts/email) equals its model's schema, keeps
every field of its committed versions, and what the service really sends validates against it."""

from __future__ import annotations

import functools
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel

from fabkit.events import CloudEvent
from notifications.contracts import (
    ApplicationDecided,
    ApplicationDecidedMessage,
    LeaseOffered,
    LeaseOfferedMessage,
    VacancyOpenedWebhook,
)
from notifications.events.consumed import VacancyOpenedIn
from notifications.mailer import email_of
from notifications.service import alerts

from .conftest import Receiver, Smtp, eventually, make_settings, running, vacancy

ROOT = Path(__file__).resolve().parents[3]
CONTRACTS = ROOT / "contracts"
REGENERATE = (
    "Run `uv run python contracts/generate.py` and commit the snapshot. Inside a type only "
    "additive changes are allowed: a removed, renamed or retyped field needs a new type."
)
Schema = dict[str, Any]


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "fabrique_contracts_generate", CONTRACTS / "generate.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


generate = _load_generator()
OUTGOING: dict[Path, type[BaseModel]] = generate.outgoing_classes()
NAMES = sorted(str(p.relative_to(CONTRACTS)) for p in OUTGOING)


def _snapshot(relative: str) -> Schema:
    return json.loads((CONTRACTS / relative).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def assert_valid(instance: Any, relative: str) -> None:
    """`instance` (JSON) validates against the committed snapshot `relative`."""
    errors = sorted(Draft202012Validator(_snapshot(relative)).iter_errors(instance), key=str)
    assert not errors, f"{relative}: " + "; ".join(e.message for e in errors[:5])


# Snapshots -----------------------------------------------------------------------------------


def _resolve(schema: Schema, root: Schema) -> Schema:
    while "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        schema = target
    return schema


def _variants(schema: Schema, root: Schema) -> list[Schema]:
    schema = _resolve(schema, root)
    alternatives = schema.get("anyOf") or schema.get("oneOf")
    if alternatives:
        return [v for alt in alternatives for v in _variants(alt, root)]
    return [schema]


def _kind(schema: Schema) -> str:
    return str(schema.get("type", "any")) + (f"({schema['format']})" if "format" in schema else "")


def breaking_changes(old: Schema, new: Schema) -> list[str]:
    """What a receiver written against `old` would no longer find in `new`."""
    problems: list[str] = []

    def compare(o: Schema, n: Schema, path: str) -> None:
        o_alts = {_kind(v): v for v in _variants(o, old)}
        n_alts = {_kind(v): v for v in _variants(n, new)}
        if sorted(o_alts) != sorted(n_alts):
            problems.append(f"{path}: type changed from {sorted(o_alts)} to {sorted(n_alts)}")
            return
        for kind, o_alt in o_alts.items():
            n_alt = n_alts[kind]
            if kind == "object":
                n_props = n_alt.get("properties", {})
                for name, o_prop in o_alt.get("properties", {}).items():
                    if name not in n_props:
                        problems.append(f"{path}.{name}: removed")
                    else:
                        compare(o_prop, n_props[name], f"{path}.{name}")
                for name in sorted(set(o_alt.get("required", ())) - set(n_alt.get("required", ()))):
                    problems.append(f"{path}.{name}: no longer required")
            elif kind == "array" and "items" in o_alt:
                compare(o_alt["items"], n_alt.get("items", {}), f"{path}[]")

    compare(old, new, "$")
    return problems


def test_the_detector_sees_a_removed_field() -> None:
    path = CONTRACTS / "webhooks" / "vacancy.opened.json"
    current = generate.outgoing_snapshot(path, OUTGOING[path])
    trimmed = json.loads(json.dumps(current))
    del trimmed["$defs"]["AlertUnit"]["properties"]["rent_eur_m2_year"]
    assert breaking_changes(current, trimmed) == ["$.data.unit.rent_eur_m2_year: removed"]


@pytest.mark.parametrize("relative", NAMES)
def test_snapshot_matches_the_model(relative: str) -> None:
    path = CONTRACTS / relative
    assert path.exists(), f"No snapshot {relative}. {REGENERATE}"
    assert path.read_text(encoding="utf-8") == generate.outgoing_render(path, OUTGOING[path]), (
        f"{OUTGOING[path].__qualname__} differs from {relative}. {REGENERATE}"
    )


@functools.cache
def _committed_versions(relative: str) -> list[tuple[str, Schema]]:
    rel = f"contracts/{relative}"
    log = subprocess.run(
        ["git", "-C", str(ROOT), "log", "--format=%h", "--", rel],
        capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip
    versions = []
    for commit in log.stdout.split() if log.returncode == 0 else []:
        shown = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{commit}:{rel}"],
            capture_output=True, text=True, timeout=20, check=False,
        )  # fmt: skip
        if shown.returncode == 0:
            versions.append((f"{rel} at {commit}", json.loads(shown.stdout)))
    return versions


@pytest.mark.parametrize("relative", NAMES)
def test_the_model_keeps_every_field_of_its_committed_snapshots(relative: str) -> None:
    path = CONTRACTS / relative
    current = generate.outgoing_snapshot(path, OUTGOING[path])
    for where, old in [("the working tree", _snapshot(relative)), *_committed_versions(relative)]:
        assert breaking_changes(old, current) == [], f"against {where}"


# What is really sent -------------------------------------------------------------------------


async def _body_of_type(receiver: Receiver, type_: str) -> dict[str, Any]:
    async def sent() -> dict[str, Any] | None:
        bodies = [json.loads(r.body) for r in receiver.requests]
        return next((b for b in bodies if b["type"] == type_), None)

    return await eventually(sent)  # type: ignore[no-any-return]


async def test_the_bodies_sent_validate_against_their_snapshots(
    sqlite_url: str, receivers: Any, smtp: Smtp
) -> None:
    instant_hook: Receiver = await receivers()
    daily_hook: Receiver = await receivers()
    settings = make_settings(sqlite_url, smtp_host=smtp.host, smtp_port=smtp.port)
    async with running(settings) as svc:
        instant = await svc.subscribe(
            "art-o",
            channels=[
                {"type": "webhook", "url": instant_hook.url},
                {"type": "email", "address": "o@atelier.fr"},
            ],
        )
        await svc.subscribe(
            "art-o", frequency="daily", channels=[{"type": "webhook", "url": daily_hook.url}]
        )
        r = await svc.client.post(
            f"/v1/subscriptions/{instant['id']}/test", headers=svc.artisan("art-o")
        )
        assert r.status_code == 202, r.text
        assert_valid(
            await _body_of_type(instant_hook, "subscription.test"),
            "webhooks/subscription.test.json",
        )

        data = vacancy()
        event = CloudEvent(source="/tests", type="inventory.unit.vacancy_opened.v1", data=data)
        async with svc.app.state.runtime.sessions() as session, session.begin():
            await alerts.record_vacancy(
                session, svc.settings, svc.app.state.signals, event, VacancyOpenedIn(**data)
            )
        opened = await _body_of_type(instant_hook, "vacancy.opened")
        assert_valid(opened, "webhooks/vacancy.opened.json")
        # Assembled from parts for speed, it is the document the model itself makes.
        assert VacancyOpenedWebhook.model_validate(opened).body() == opened
        assert opened["data"]["unit"]["unit_id"] == data["unit"]["unit_id"]

        r = await svc.client.post("/v1/admin/digests/flush", headers=svc.admin)
        assert r.json() == {"made_due": 1}
        digest = await _body_of_type(daily_hook, "vacancy.digest")
        assert_valid(digest, "webhooks/vacancy.digest.json")
        assert [a["vacancy_id"] for a in digest["data"]["alerts"]] == [data["vacancy_id"]]

        # The e-mails went out, and the data they were rendered from fits its contract.
        await eventually(lambda: _ready(len(smtp.mailbox.to("o@atelier.fr")) == 2))
        for row in await svc.deliveries(channel="email"):
            email = email_of(row.payload, "https://notifications.test/v1/unsubscribe/x")
            assert_valid(email.model_dump(mode="json"), f"email/{row.payload['type']}.json")


async def _ready(value: Any) -> Any:
    return value


@pytest.mark.parametrize(
    "message",
    [
        ApplicationDecidedMessage(
            timestamp="2026-01-05T10:00:00Z",  # type: ignore[arg-type]
            data=ApplicationDecided(
                application_id="app-1", unit_id="u-1", decision="accepted", score=72, max_score=100
            ),
        ),
        LeaseOfferedMessage(
            timestamp="2026-01-05T10:00:00Z",  # type: ignore[arg-type]
            data=LeaseOffered(lease_id="l-1", unit_id="u-1", monthly_rent_eur=1650.0),
        ),
    ],
    ids=lambda m: m.type,
)
def test_applicant_emails_fit_their_contract(message: BaseModel) -> None:
    email = email_of(message.model_dump(mode="json"), None)
    assert_valid(email.model_dump(mode="json"), f"email/{message.type}.json")  # type: ignore[attr-defined]
