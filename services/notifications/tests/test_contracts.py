"""Consumer side of the event contracts: every field notifications reads exists in the
producers' JSON Schema snapshots (contracts/schemas), and every field it needs is required
there. A producer renaming or dropping one of them fails here, not in production."""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from notifications.events.consumed import (
    APPEAL_ANSWERED,
    APPLICATION_DECIDED,
    ARTISAN_REGISTERED,
    ARTISAN_UPDATED,
    CALL_RESULTS_PUBLISHED,
    LEASE_OFFERED,
    PROGRAMME_PUBLISHED,
    VACANCY_OPENED,
    AppealAnsweredIn,
    ApplicationDecidedIn,
    ArtisanEventIn,
    CallResultsPublishedIn,
    LeaseOfferedIn,
    ProgrammePublishedIn,
    VacancyOpenedIn,
)

SCHEMAS = Path(__file__).resolve().parents[3] / "contracts" / "schemas"


CONSUMED: dict[str, type[BaseModel]] = {
    VACANCY_OPENED: VacancyOpenedIn,
    ARTISAN_REGISTERED: ArtisanEventIn,
    ARTISAN_UPDATED: ArtisanEventIn,
    PROGRAMME_PUBLISHED: ProgrammePublishedIn,
    APPLICATION_DECIDED: ApplicationDecidedIn,
    LEASE_OFFERED: LeaseOfferedIn,
    CALL_RESULTS_PUBLISHED: CallResultsPublishedIn,
    APPEAL_ANSWERED: AppealAnsweredIn,
}


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        schema = target
    return schema


def _object_of(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any] | None:
    schema = _resolve(schema, root)
    for alternative in schema.get("anyOf", [schema]):
        alternative = _resolve(alternative, root)
        if alternative.get("type") == "array" and "items" in alternative:
            # a list of objects (list[Model] here): the objects' schema
            return _object_of(alternative["items"], root)
        if alternative.get("type") == "object" or "properties" in alternative:
            return alternative
    return None


def _model_in(annotation: Any) -> type[BaseModel] | None:
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def gaps(
    model: type[BaseModel], schema: dict[str, Any], root: dict[str, Any], at: str
) -> list[str]:
    found: list[str] = []
    properties = schema.get("properties", {})
    required = set(schema.get("required", ()))
    for name, field in model.model_fields.items():
        if name not in properties:
            found.append(f"{at}.{name}: not in the producer's schema")
            continue
        if field.is_required() and name not in required:
            found.append(f"{at}.{name}: needed here, optional for the producer")
        nested = _model_in(field.annotation)
        if nested is not None:
            inner = _object_of(properties[name], root)
            if inner is None:
                found.append(f"{at}.{name}: not an object for the producer")
            else:
                found += gaps(nested, inner, root, f"{at}.{name}")
    return found


@pytest.mark.parametrize("event_type", sorted(CONSUMED))
def test_what_notifications_reads_is_in_the_producers_contract(event_type: str) -> None:
    path = SCHEMAS / f"{event_type}.json"
    if not path.exists():
        pytest.skip(f"the producer has no snapshot of {event_type} yet")
    root = json.loads(path.read_text(encoding="utf-8"))
    assert gaps(CONSUMED[event_type], root, root, "$") == []
