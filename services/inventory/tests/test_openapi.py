"""Inventory's OpenAPI is a contract: a change fails here until its snapshot is reviewed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fabkit.testing import check_snapshot
from inventory.main import create_app
from inventory.settings import InventorySettings

ROOT = Path(__file__).resolve().parents[3]
SNAPSHOT = ROOT / "contracts" / "openapi" / "inventory.json"


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return create_app(InventorySettings(environment="test")).openapi()


def test_openapi_matches_the_committed_snapshot(spec: dict[str, Any]) -> None:
    check_snapshot(spec, SNAPSHOT)


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
    ]


def test_operation_ids_read_as_names(spec: dict[str, Any]) -> None:
    ids = {f"{m} {p}": op["operationId"] for m, p, op in _operations(spec)}
    assert ids["GET /v1/sites"] == "listSites"
    assert ids["PATCH /v1/units/{unit_id}"] == "updateUnit"
    assert ids["GET /v1/production-surface"] == "getSurfaceReport"
    assert all(i.isalnum() and i[0].islower() for i in ids.values()), ids
    assert len(set(ids.values())) == len(ids)


def test_every_request_body_has_a_whole_example(spec: dict[str, Any]) -> None:
    from jsonschema import Draft202012Validator

    schemas = spec["components"]["schemas"]
    bodies = 0
    for method, path, op in _operations(spec):
        body = op.get("requestBody")
        if body is None:
            continue
        bodies += 1
        ref = body["content"]["application/json"]["schema"]
        name = (ref.get("$ref") or ref["anyOf"][0]["$ref"]).rsplit("/", 1)[-1]
        examples = schemas[name].get("examples")
        assert examples, f"{method} {path}: {name} has no example"
        document = {**spec, "$ref": f"#/components/schemas/{name}"}
        for example in examples:
            errors = list(Draft202012Validator(document).iter_errors(example))
            assert not errors, f"{name} example is not valid: {errors[0].message}"
    assert bodies == 5


def test_headers_are_documented_where_they_are_sent(spec: dict[str, Any]) -> None:
    def headers(method: str, path: str, status: str) -> set[str]:
        response = spec["paths"][path][method.lower()]["responses"][status]
        return set(response.get("headers", {}))

    created = {"Location", "ETag", "Idempotent-Replayed"}
    assert headers("POST", "/v1/sites", "201") == created
    assert headers("POST", "/v1/sites/{site_id}/units", "201") == created
    assert headers("POST", "/v1/landlords", "201") == {"Location", "Idempotent-Replayed"}
    for path in ("/v1/sites/{site_id}", "/v1/units/{unit_id}"):
        assert headers("GET", path, "200") == {"ETag"}
        assert headers("PATCH", path, "200") == {"ETag"}


def test_bearer_format_and_tags_are_described(spec: dict[str, Any]) -> None:
    schemes = spec["components"]["securitySchemes"]
    assert [s.get("bearerFormat") for s in schemes.values()] == ["JWT"]
    described = {t["name"] for t in spec["tags"] if t.get("description")}
    used = {tag for _, _, op in _operations(spec) for tag in op.get("tags", ())}
    assert used <= described, used - described
