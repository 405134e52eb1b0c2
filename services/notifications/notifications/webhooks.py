"""Standard Webhooks signing and a sender that refuses to reach internal addresses."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import secrets
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format prefix, not a secret
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class UnsafeUrl(ValueError):
    """A webhook URL we refuse to call (bad scheme, unresolvable, or an internal address)."""


def generate_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret; ValueError when it is not one."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a signing secret starts with {SECRET_PREFIX!r}")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except binascii.Error as exc:
        raise ValueError("a signing secret is whsec_ followed by base64") from exc
    if len(key) < 24:
        raise ValueError("a signing secret needs at least 24 random bytes")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,` + base64 HMAC-SHA256 of `id.timestamp.body` (the Standard Webhooks scheme)."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(
    secret: str, headers: dict[str, str], body: bytes, *, tolerance_s: int = 300
) -> dict[str, Any]:
    """What a receiver does: check timestamp and signature, then return the parsed body."""
    msg_id = headers["webhook-id"]
    timestamp = int(headers["webhook-timestamp"])
    if abs(time.time() - timestamp) > tolerance_s:
        raise ValueError("webhook timestamp too old or in the future")
    expected = sign(secret, msg_id, timestamp, body).split(",", 1)[1]
    for candidate in headers["webhook-signature"].split():
        version, _, signature = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(
            signature.encode("utf-8", "surrogateescape"), expected.encode()
        ):
            return json.loads(body)  # type: ignore[no-any-return]
    raise ValueError("no valid webhook signature")


def signed_headers(secret: str, msg_id: str, body: bytes, now: int | None = None) -> dict[str, str]:
    timestamp = int(time.time()) if now is None else now
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
        "content-type": "application/json",
        "user-agent": "Fabrique-Webhooks/1.0",
    }


# SSRF guard ----------------------------------------------------------------------------------


def is_internal(ip: IPAddress) -> bool:
    """Loopback, private, link-local, CGNAT, reserved, multicast: anything not public."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


@dataclass(frozen=True)
class Target:
    """A webhook URL checked and resolved: call `address`, present `host` to the server."""

    url: str
    scheme: str
    host: str
    port: int
    address: str

    def pinned_url(self) -> httpx.URL:
        return httpx.URL(self.url).copy_with(host=self.address)


async def resolve_target(
    url: str, allowed: Sequence[Network], *, require_https: bool = False
) -> Target:
    """Check a webhook URL and resolve it; UnsafeUrl when any address it resolves to is internal.

    Every address is checked (a name resolving to one public and one private address is
    refused), and the request is then sent to the checked address so a second DNS answer
    cannot redirect it (DNS rebinding).
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl(f"not a valid URL: {exc}") from exc
    schemes = ("https",) if require_https else ("http", "https")
    if parts.scheme not in schemes:
        raise UnsafeUrl(f"the URL scheme must be {' or '.join(schemes)}")
    if parts.username or parts.password:
        raise UnsafeUrl("credentials in webhook URLs are not accepted")
    host = parts.hostname
    if not host:
        raise UnsafeUrl("the URL has no host")
    port = port or (443 if parts.scheme == "https" else 80)
    addresses = await _resolve(host, port)
    for ip in addresses:
        if is_internal(ip) and not any(ip in net for net in allowed):
            raise UnsafeUrl(
                f"the host {host!r} resolves to {ip}, an internal address; webhooks must reach "
                "a public address"
            )
    return Target(url=url, scheme=parts.scheme, host=host, port=port, address=str(addresses[0]))


# Resolutions are kept briefly: a fan-out sends thousands of webhooks to a few hosts, and each
# getaddrinfo is a thread hop. Every address is still checked on every send (above), and the
# request still goes to a checked address.
_RESOLVED_TTL_S = 10.0
_resolved: dict[tuple[str, int], tuple[float, list[IPAddress]]] = {}


async def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]  # a literal address: nothing to resolve
    except ValueError:
        pass
    now = time.monotonic()
    cached = _resolved.get((host, port))
    if cached is not None and cached[0] > now:
        return cached[1]
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeUrl(f"the host {host!r} does not resolve") from exc
    addresses = list(
        dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos)
    )
    if not addresses:
        raise UnsafeUrl(f"the host {host!r} does not resolve")
    if len(_resolved) > 10_000:
        _resolved.clear()
    _resolved[(host, port)] = (now + _RESOLVED_TTL_S, addresses)
    return addresses


# Up to this much of a response body is read (and dropped) so that the connection can be reused;
# a longer body closes the connection instead of being downloaded.
MAX_DRAINED_BODY = 64 * 1024


@dataclass(frozen=True)
class WebhookResult:
    status_code: int | None
    error: str | None
    # From a 429 or 503 answer's Retry-After (seconds or an HTTP date), in seconds from now.
    retry_after_s: float | None = None
    # The receiver's `webhook-delivery` response header, lower-cased (Svix's delivery control:
    # `abort-message` stops the retries of this message, `disable` switches the search off).
    control: str | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


async def post(
    client: httpx.AsyncClient,
    target: Target,
    headers: dict[str, str],
    body: bytes,
    *,
    timeout_s: float,
) -> WebhookResult:
    """POST to the pinned address within `timeout_s` in all; errors become a result.

    At most MAX_DRAINED_BODY bytes of the response are read, and only so that a keep-alive
    connection goes back to the pool: a receiver cannot make us download anything.
    """
    default_port = 443 if target.scheme == "https" else 80
    host_header = target.host if ":" not in target.host else f"[{target.host}]"
    if target.port != default_port:
        host_header += f":{target.port}"
    status: int | None = None
    retry_after: str | None = None
    control: str | None = None
    try:
        async with asyncio.timeout(timeout_s):
            async with client.stream(
                "POST",
                target.pinned_url(),
                content=body,
                headers={**headers, "host": host_header},
                extensions={"sni_hostname": target.host},
            ) as response:
                status = response.status_code
                retry_after = response.headers.get("retry-after")
                control = response.headers.get("webhook-delivery")
                drained = 0
                async for chunk in response.aiter_raw():
                    drained += len(chunk)
                    if drained > MAX_DRAINED_BODY:
                        break  # leaving the stream unread closes the connection
    except TimeoutError:
        if status is None:
            return WebhookResult(None, f"timed out after {timeout_s:g}s")
    except httpx.HTTPError as exc:
        if status is None:
            return WebhookResult(None, f"{type(exc).__name__}: {exc}"[:500])
    # Past this point the receiver has answered: a body cut short does not change its answer.
    assert status is not None
    if 200 <= status < 300:
        return WebhookResult(status, None)
    wait = _seconds(retry_after) if status in RETRY_AFTER_STATUSES else None
    return WebhookResult(
        status, f"HTTP {status}", wait, control.strip().lower()[:40] if control else None
    )


# Where Retry-After says when to come back (RFC 9110 §10.2.3); elsewhere it is ignored.
RETRY_AFTER_STATUSES = (429, 503)


def _seconds(retry_after: str | None) -> float | None:
    """Retry-After as seconds from now: delay-seconds or an HTTP date; None when unreadable."""
    value = (retry_after or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000": RFC 5322's unknown zone, read as UTC
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
