"""Leasing's OpenAPI document is a contract: a change fails here until its snapshot is reviewed.

Rerun with FABRIQUE_UPDATE_SNAPSHOTS=1 to write contracts/openapi/leasing.json, then commit it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fabkit.testing import check_snapshot
from leasing.main import create_app
from leasing.settings import LeasingSettings

SNAPSHOT = Path(__file__).resolve().parents[3] / "contracts" / "openapi" / "leasing.json"


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    return create_app(LeasingSettings(environment="test")).openapi()


def test_openapi_matches_its_snapshot(openapi: dict[str, Any]) -> None:
    check_snapshot(openapi, SNAPSHOT)


def test_operation_ids_are_readable_and_unique(openapi: dict[str, Any]) -> None:
    ids = [op["operationId"] for path in openapi["paths"].values() for op in path.values()]
    assert len(ids) == len(set(ids))
    assert all(i.isidentifier() and "_" not in i for i in ids), ids
    assert {"registerArtisan", "submitApplication", "makeOffer", "acceptOffer"} <= set(ids)


def _body_schemas(openapi: dict[str, Any]) -> set[str]:
    names = set()
    for path in openapi["paths"].values():
        for op in path.values():
            for content in op.get("requestBody", {}).get("content", {}).values():
                # an optional body is `anyOf: [ref, null]`
                for schema in [content["schema"], *content["schema"].get("anyOf", [])]:
                    if "$ref" in schema:
                        names.add(schema["$ref"].rsplit("/", 1)[-1])
    return names


def test_every_request_body_has_a_whole_example(openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]
    bodies = _body_schemas(openapi)
    # the eight bodies before calls, and the calls' (other pieces add theirs)
    assert len(bodies) >= 11, bodies
    assert {"ApplicationCreate", "ApplicationSubmitIn", "CallPatch", "CallDecideIn"} <= set(bodies)
    for name in bodies:
        examples = schemas[name].get("examples")
        assert examples, f"{name} has no example"
        missing = set(schemas[name].get("required", [])) - set(examples[0])
        assert not missing, f"{name}'s example misses {missing}"


def test_written_responses_document_their_headers(openapi: dict[str, Any]) -> None:
    paths = openapi["paths"]
    assert set(paths["/v1/artisans"]["post"]["responses"]["201"]["headers"]) == {
        "Location",
        "ETag",
    }
    assert "ETag" in paths["/v1/artisans/me"]["get"]["responses"]["200"]["headers"]
    assert "ETag" in paths["/v1/artisans/me"]["patch"]["responses"]["200"]["headers"]
    for path in ("/v1/applications", "/v1/applications/{application_id}/offer"):
        headers = paths[path]["post"]["responses"]["201"]["headers"]
        assert set(headers) == {"Location", "Idempotent-Replayed"}, path
    schemes = openapi["components"]["securitySchemes"].values()
    assert all(s.get("bearerFormat") == "JWT" for s in schemes if s.get("scheme") == "bearer")
    assert {t["name"] for t in openapi["tags"]} >= {
        "programmes",
        "artisans",
        "units",
        "applications",
        "leases",
    }
