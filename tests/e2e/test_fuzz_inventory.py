"""Schemathesis against inventory's own OpenAPI, served by the real process: no 5xx and no
response that breaks its documented schema, with and without valid tokens."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from fabkit.localstack.platform import Platform

pytestmark = pytest.mark.e2e

CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
FUZZ = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)


@pytest.fixture(scope="module")
def inventory_schema(platform: Platform) -> Any:
    url = platform.services["inventory"].url
    return schemathesis.openapi.from_url(f"{url}/openapi.json")


schema = schemathesis.pytest.from_fixture("inventory_schema")


@schema.parametrize()
@FUZZ
def test_anonymous_requests_never_break_the_server(case: Any) -> None:
    case.call_and_validate(checks=CHECKS)


@schema.parametrize()
@FUZZ
def test_admin_requests_never_break_the_server(case: Any, admin_token: str) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {admin_token}"}, checks=CHECKS)
