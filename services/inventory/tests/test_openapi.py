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
        if "text/csv" in body["content"]:  # the CSV import: a sample file, not a JSON schema
            assert body["content"]["text/csv"]["example"].startswith("reference,")
            continue
        ref = body["content"]["application/json"]["schema"]
        name = (ref.get("$ref") or ref["anyOf"][0]["$ref"]).rsplit("/", 1)[-1]
        examples = schemas[name].get("examples")
        assert examples, f"{method} {path}: {name} has no example"
        document = {**spec, "$ref": f"#/components/schemas/{name}"}
        for example in examples:
            errors = list(Draft202012Validator(document).iter_errors(example))
            assert not errors, f"{name} example is not valid: {errors[0].message}"
    assert bodies == 9


def test_headers_are_documented_where_they_are_sent(spec: dict[str, Any]) -> None:
    def headers(method: str, path: str, status: str) -> set[str]:
        response = spec["paths"][path][method.lower()]["responses"][status]
        return set(response.get("headers", {}))

    created = {"Location", "ETag", "Idempotent-Replayed"}
    # A site's write also says how geocoding its address went.
    assert headers("POST", "/v1/sites", "201") == created | {"Fabrique-Geocoding"}
    assert headers("POST", "/v1/sites/{site_id}/units", "201") == created
    assert headers("POST", "/v1/projects", "201") == created
    assert headers("POST", "/v1/landlords", "201") == {"Location", "Idempotent-Replayed"}
    for path in ("/v1/sites/{site_id}", "/v1/units/{unit_id}", "/v1/projects/{project_id}"):
        assert headers("GET", path, "200") == {"ETag"}
        geocoded = {"Fabrique-Geocoding"} if path == "/v1/sites/{site_id}" else set()
        assert headers("PATCH", path, "200") == {"ETag"} | geocoded


def test_bearer_format_and_tags_are_described(spec: dict[str, Any]) -> None:
    schemes = spec["components"]["securitySchemes"]
    assert [s.get("bearerFormat") for s in schemes.values()] == ["JWT"]
    described = {t["name"] for t in spec["tags"] if t.get("description")}
    used = {tag for _, _, op in _operations(spec) for tag in op.get("tags", ())}
    assert used <= described, used - described


def _validator(spec: dict[str, Any], name: str) -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator({**spec, "$ref": f"#/components/schemas/{name}"})


def test_site_schemas_say_which_postcode_goes_with_which_arrondissement(
    spec: dict[str, Any],
) -> None:
    # Found by fuzzing: a schema-valid site could still be refused for a postcode of another
    # arrondissement, or for a latitude without a longitude.
    create = _validator(spec, "SiteCreate")
    base = {"name": "Cour", "kind": "cite_artisanale", "address": "37bis rue de Montreuil"}
    assert create.is_valid({**base, "postcode": "75011", "arrondissement": 11})
    assert create.is_valid({**base, "postcode": "75116", "arrondissement": 16})
    assert create.is_valid({**base, "postcode": "75016", "arrondissement": 16})
    assert not create.is_valid({**base, "postcode": "75013", "arrondissement": 1})
    assert not create.is_valid(
        {**base, "postcode": "75011", "arrondissement": 11, "latitude": 48.85}
    )
    assert not create.is_valid(
        {**base, "postcode": "75011", "arrondissement": 11, "latitude": 48.85, "longitude": None}
    )
    patch = _validator(spec, "SitePatch")
    assert patch.is_valid({"postcode": "75013"})  # checked against the stored arrondissement
    assert not patch.is_valid({"postcode": "75013", "arrondissement": 1})
    assert not patch.is_valid({"name": None})


def test_idempotency_keys_are_documented_as_the_service_takes_them(spec: dict[str, Any]) -> None:
    import re

    for path in ("/v1/landlords", "/v1/sites", "/v1/sites/{site_id}/units"):
        params = spec["paths"][path]["post"]["parameters"]
        (key,) = [p for p in params if p["name"] == "Idempotency-Key"]
        pattern = re.compile(key["schema"]["pattern"])
        assert key["schema"]["type"] == "string"
        assert pattern.match("site-berlier-2") and pattern.match("x" * 200)
        assert not pattern.match("bad key") and not pattern.match("x" * 201)
        assert not pattern.match("clé")
