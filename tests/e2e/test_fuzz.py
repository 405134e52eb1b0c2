"""Schemathesis against each service's own OpenAPI, served by the real processes, anonymously and
with a valid token of each role (admin, landlord, artisan): operation by operation, then
statefully (sequences that follow the documented links and Location headers, so created
resources are read, changed and deleted). No 5xx; no status code, header, content type or body
that breaks the documented schema; invalid input refused; a 405 whose Allow header names what
the path takes; a deleted resource gone.

Every Schemathesis check runs but one: `positive_data_acceptance` ("a request the schema allows
was refused") cannot hold for rules that depend on stored data or the caller's role (a stale
If-Match, a reused Idempotency-Key with another body, eligibility, ownership); the use cases'
own tests check those refusals and their messages.

``FABRIQUE_E2E_SCALE=full`` raises the examples per operation (see docs/reliability.md)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ensure_resource_availability,
    missing_required_header,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
    use_after_free,
)

from fabkit.auth import Role
from fabkit.localstack.platform import Platform

from .harness import SCALE, bearer, identities, luhn_siret

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
    missing_required_header,
    unsupported_method,
]
# Only meaningful along a sequence of calls.
STATEFUL_CHECKS = [*CHECKS, use_after_free, ensure_resource_availability]
STATEFUL = settings(
    max_examples=max(3, SCALE.fuzz_examples // 2),
    stateful_step_count=6,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
FUZZ = settings(
    max_examples=SCALE.fuzz_examples,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
ROLES = ("anonymous", "admin", "landlord", "artisan")
# An endless server-sent event stream: a fuzzer would wait on it forever.
STREAMS = ("/v1/feed/stream",)


@pytest.fixture(scope="module")
def fuzz_tokens(e2e_platform: Platform) -> Iterator[dict[str, str | None]]:
    """A real landlord and a real artisan (so that tokens name existing subjects)."""
    made = identities(e2e_platform)
    admin = made.token(Role.ADMIN, "e2e-fuzz-admin")
    inventory = e2e_platform.services["inventory"].url
    leasing = e2e_platform.services["leasing"].url
    notifications = e2e_platform.services["notifications"].url
    with httpx.Client(timeout=20) as client:
        landlord = client.post(
            f"{inventory}/v1/landlords", json={"name": "Fuzz landlord"}, headers=bearer(admin)
        ).json()
        landlord_token = made.token(Role.LANDLORD, landlord["id"])
        artisan_id, artisan_token = made.subject_and_token(Role.ARTISAN)
        artisan = client.post(
            f"{leasing}/v1/artisans",
            json={
                "display_name": "Fuzz artisan",
                "business_name": "Fuzz SCOP",
                "siret": luhn_siret(),
                "trades": ["fuzz_trade"],
                "business_created_on": "2024-01-15",
                "legal_form": "scop",
                "contact_email": "fuzz@e2e.example.org",
            },
            headers=bearer(artisan_token),
        ).json()
        assert artisan["id"] == artisan_id, artisan
        yield {"anonymous": None, "admin": admin, "landlord": landlord_token,
               "artisan": artisan_token}  # fmt: skip
        # What the fuzzer saved must not keep matching the vacancies of later scenarios.
        subs = client.get(
            f"{notifications}/v1/subscriptions", params={"limit": 100},
            headers=bearer(artisan_token),
        ).json()  # fmt: skip
        for sub in subs.get("items", []):
            client.delete(
                f"{notifications}/v1/subscriptions/{sub['id']}", headers=bearer(artisan_token)
            )


def _schema(platform: Platform, service: str) -> Any:
    """The service's own document, less its security declarations: each test sends one role's
    token on every request, so a case the fuzzer built by dropping Authorization would still
    carry it and look like "invalid data accepted". Missing and bad tokens are the
    authorization matrix's job (test_authz.py)."""
    url = platform.services[service].url
    spec = httpx.get(f"{url}/openapi.json", timeout=30).json()
    spec.get("components", {}).pop("securitySchemes", None)
    spec.pop("security", None)
    for operations in spec["paths"].values():
        for operation in operations.values():
            if isinstance(operation, dict):
                operation.pop("security", None)
    schema = schemathesis.openapi.from_dict(spec)
    schema.config.update(base_url=url)
    return schema


@pytest.fixture(scope="module")
def inventory_schema(e2e_platform: Platform) -> Any:
    return _schema(e2e_platform, "inventory")


@pytest.fixture(scope="module")
def leasing_schema(e2e_platform: Platform) -> Any:
    return _schema(e2e_platform, "leasing")


@pytest.fixture(scope="module")
def notifications_schema(e2e_platform: Platform) -> Any:
    return _schema(e2e_platform, "notifications")


def _fuzz_test(service: str, role: str) -> Callable[..., None]:
    schema = schemathesis.pytest.from_fixture(f"{service}_schema")
    for path in STREAMS:
        schema = schema.exclude(path=path)

    @schema.parametrize()
    @FUZZ
    def test(case: Any, fuzz_tokens: dict[str, str | None]) -> None:
        case.call_and_validate(headers=bearer(fuzz_tokens[role]), checks=CHECKS)

    test.__doc__ = f"{service}, {role}: no 5xx, nothing outside the documented schema."
    return test


for _service in ("inventory", "leasing", "notifications"):
    for _role in ROLES:
        globals()[f"test_{_service}_{_role}_requests_keep_to_the_schema"] = _fuzz_test(
            _service, _role
        )


def _stateful_test(service: str, role: str) -> Callable[..., None]:
    def test(e2e_platform: Platform, fuzz_tokens: dict[str, str | None]) -> None:
        schema = _schema(e2e_platform, service)
        for path in STREAMS:
            schema = schema.exclude(path=path)
        headers = bearer(fuzz_tokens[role])

        class Sequences(schema.as_state_machine()):  # type: ignore[misc]
            def get_call_kwargs(self, case: Any) -> dict[str, Any]:
                return {"headers": headers}

            def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
                case.validate_response(response, checks=STATEFUL_CHECKS)

        Sequences.run(settings=STATEFUL)

    test.__doc__ = f"{service}, {role}: call sequences along the links keep to the schema."
    return test


for _service in ("inventory", "leasing", "notifications"):
    for _role in ("admin", "landlord", "artisan"):
        globals()[f"test_{_service}_{_role}_call_sequences_keep_to_the_schema"] = _stateful_test(
            _service, _role
        )


# Direct checks for what the fuzzer found, so that each has a name of its own -------------------


@pytest.mark.parametrize("service", ["inventory", "leasing", "notifications"])
def test_every_operation_documents_its_problem_responses(
    e2e_platform: Platform, service: str
) -> None:
    """Every service answers errors as application/problem+json (401, 403, 404, 409, 422...):
    its OpenAPI must say so for every operation, or clients generated from it break."""
    spec = httpx.get(f"{e2e_platform.services[service].url}/openapi.json", timeout=10).json()
    undocumented = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            responses = operation.get("responses", {})
            for code in ("4XX", "422"):
                content = responses.get(code, {}).get("content", {})
                if "application/problem+json" not in content:
                    undocumented.append(f"{method.upper()} {path}: {code} -> {sorted(content)}")
    assert not undocumented, "\n".join(undocumented)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_an_unsubscribe_link_that_is_not_ascii_is_refused_not_a_crash(
    e2e_platform: Platform, method: str
) -> None:
    """Found by the fuzzer: a token with non-ASCII characters made the signature comparison
    raise (500). Any link that is not genuine must be a 404, like any other bad link."""
    url = f"{e2e_platform.services['notifications'].url}/v1/unsubscribe/%C3%B2%07Z%C2%BC"
    response = httpx.request(method, url, timeout=10)
    assert response.status_code == 404, (response.status_code, response.text[:300])


def test_an_invalid_unsubscribe_page_has_a_documented_content_type(
    e2e_platform: Platform,
) -> None:
    """The confirmation page of a bad link is HTML: the OpenAPI must document that answer."""
    base = e2e_platform.services["notifications"].url
    response = httpx.get(f"{base}/v1/unsubscribe/not-a-token", timeout=10)
    assert response.status_code == 404
    spec = httpx.get(f"{base}/openapi.json", timeout=10).json()
    responses = spec["paths"]["/v1/unsubscribe/{token}"]["get"]["responses"]
    documented = responses.get("404") or responses.get("4XX") or {}
    media_type = response.headers["content-type"].split(";")[0]
    assert media_type in documented.get("content", {}), (media_type, responses)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/feed?before=215330641338835664896"),
        ("POST", "/v1/feed/21736419045951676416/read"),
        ("POST", "/v1/feed/21736419045951676416/unread"),
    ],
)
def test_feed_ids_beyond_64_bits_are_refused_not_a_crash(
    e2e_platform: Platform, fuzz_tokens: dict[str, str | None], method: str, path: str
) -> None:
    """Found by the fuzzer: a feed item id (or `before`) larger than a 64-bit integer reached
    the database and failed there (500). It can name no item: 404 or 422, never a 5xx."""
    url = f"{e2e_platform.services['notifications'].url}{path}"
    response = httpx.request(method, url, headers=bearer(fuzz_tokens["artisan"]), timeout=10)
    assert response.status_code in (404, 422), (response.status_code, response.text[:300])
