"""The HTTP clients of the three public APIs and the one request function every call uses.

Typed answers and bounded time: a service that cannot be reached becomes `UpstreamUnavailable`
(a 503 page naming it), an unknown resource `UpstreamNotFound` (a 404 page), a refusal
`UpstreamRefused` with the API's problem detail (shown next to the form), never a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, RootModel, ValidationError

from portal.settings import PortalSettings

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
Params = Sequence[tuple[str, str | int | float]]

API_PAGE_MAX = 100


class UpstreamUnavailable(Exception):
    """A public API did not answer, or answered with a server error."""

    def __init__(self, service: str, reason: str) -> None:
        super().__init__(f"{service}: {reason}")
        self.service = service


class UpstreamNotFound(Exception):
    """The API answered 404 for the resource a page is about."""


class UpstreamRefused(Exception):
    """The API refused the request (4xx); `detail` is its problem+json detail, `errors` its
    per-field list (`field`, `message`) when it gave one, `body` the whole problem."""

    def __init__(
        self,
        service: str,
        status: int,
        detail: str,
        errors: list[dict[str, Any]] | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{service} answered {status}: {detail}")
        self.service = service
        self.status = status
        self.detail = detail
        self.errors = errors or []
        self.body = body or {}


@dataclass
class Upstreams:
    """One HTTP client per public API, opened by the lifespan and closed with it."""

    inventory: httpx.AsyncClient
    leasing: httpx.AsyncClient
    notifications: httpx.AsyncClient

    @classmethod
    def open(cls, settings: PortalSettings) -> Upstreams:
        timeout = httpx.Timeout(settings.upstream_timeout_s, connect=2.0)
        limits = httpx.Limits(max_connections=50, max_keepalive_connections=20)

        def client(base: str) -> httpx.AsyncClient:
            return httpx.AsyncClient(
                base_url=base,
                timeout=timeout,
                limits=limits,
                headers={"Accept": "application/json", "User-Agent": "fabrique-portal"},
            )

        return cls(
            client(settings.inventory_url),
            client(settings.leasing_url),
            client(settings.notifications_url),
        )

    async def aclose(self) -> None:
        for c in (self.inventory, self.leasing, self.notifications):
            await c.aclose()

    def named(self) -> dict[str, httpx.AsyncClient]:
        return {
            "inventory": self.inventory,
            "leasing": self.leasing,
            "notifications": self.notifications,
        }


async def request(
    service: str,
    client: httpx.AsyncClient,
    method: str,
    path: str,
    model: type[M] | None = None,
    *,
    token: str | None = None,
    params: Params = (),
    json: Any = None,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
    answer_headers: dict[str, str] | None = None,
) -> M | None:
    """One call to a public API, with the visitor's bearer token when given; the answer read
    as `model` (None when `model` is None or the answer has no body). `answer_headers`, when
    given, receives the answer's headers (an ETag, a Location)."""
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    try:
        response = await client.request(
            method, path, params=list(params), json=json, content=content, headers=sent
        )
    except httpx.HTTPError as exc:
        log.warning("%s unreachable for %s %s: %s", service, method, path, type(exc).__name__)
        raise UpstreamUnavailable(service, type(exc).__name__) from exc
    if response.status_code == 404:
        raise UpstreamNotFound(path)
    if response.status_code >= 500:
        raise UpstreamUnavailable(service, f"HTTP {response.status_code}")
    if response.status_code >= 400:
        body = _problem(response)
        errors = body.get("errors")
        raise UpstreamRefused(
            service,
            response.status_code,
            _detail(response),
            errors=[e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else [],
            body=body,
        )
    if answer_headers is not None:
        answer_headers.update({k.lower(): v for k, v in response.headers.items()})
    if model is None or not response.content:
        return None
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        # An answer the portal cannot read is the service's fault, not the visitor's.
        raise UpstreamUnavailable(service, "unreadable answer") from exc


async def get(
    service: str,
    client: httpx.AsyncClient,
    path: str,
    model: type[M],
    params: Params = (),
    *,
    token: str | None = None,
) -> M:
    """A GET whose answer is `model`."""
    answer = await request(service, client, "GET", path, model, token=token, params=params)
    if answer is None:
        raise UpstreamUnavailable(service, "empty answer")
    return answer


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        body: Any = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _detail(response: httpx.Response) -> str:
    try:
        body: Any = response.json()
    except ValueError:
        return response.text[:300]
    return str(body.get("detail", "")) if isinstance(body, dict) else ""


async def reachable(client: httpx.AsyncClient) -> bool:
    """The service answers its liveness probe (for the portal's readiness report)."""
    try:
        response = await client.get("/livez", timeout=2.0)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


class Document(RootModel[dict[str, Any]]):
    """A JSON object passed on as it came (a service's export of what it holds about someone)."""


async def document(
    service: str, client: httpx.AsyncClient, method: str, path: str, *, token: str
) -> dict[str, Any]:
    """A call whose answer is a JSON object kept whole (the GDPR export and erasure calls)."""
    answer = await request(service, client, method, path, Document, token=token)
    return answer.root if answer is not None else {}


def segment(value: str) -> str:
    """A path segment from user input: ids are url-safe; anything else cannot match."""
    return quote(value, safe="")
