"""The OpenAPI document integrators read is a reviewed contract: any change to it fails here
until its snapshot (contracts/openapi/notifications.json) is regenerated and committed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fabkit.testing import check_snapshot
from notifications.main import create_app
from notifications.settings import NotificationsSettings

SNAPSHOT = Path(__file__).resolve().parents[3] / "contracts" / "openapi" / "notifications.json"


def _document() -> dict[str, Any]:
    return create_app(NotificationsSettings(environment="test")).openapi()


def test_the_openapi_document_matches_its_snapshot() -> None:
    check_snapshot(_document(), SNAPSHOT)


def test_every_operation_reads_well_and_every_body_has_an_example() -> None:
    doc = _document()
    schemas = doc["components"]["schemas"]
    operations = [op for path in doc["paths"].values() for op in path.values()]
    ids = [op["operationId"] for op in operations]
    assert len(ids) == len(set(ids)) and all("_" not in i for i in ids), ids
    for op in operations:
        body = op.get("requestBody", {}).get("content", {}).get("application/json")
        if body:
            name = body["schema"]["$ref"].rsplit("/", 1)[1]
            assert schemas[name].get("examples"), f"{name} has no example"
    created = doc["paths"]["/v1/subscriptions"]["post"]["responses"]["201"]
    assert "Location" in created["headers"]
    assert set(doc["webhooks"]) == {"vacancy.opened", "vacancy.digest", "subscription.test"}
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["bearerFormat"] == "JWT"
    assert {t["name"] for t in doc["tags"]} >= {"subscriptions", "feed", "deliveries", "webhooks"}
