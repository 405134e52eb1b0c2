"""Sending one claimed delivery: a signed webhook or an e-mail, and what came of it.

Senders work on the snapshots a claim took (`Job`) and touch no database; the delivery worker
claims, schedules and records around them.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiosmtplib
import httpx
from opentelemetry.trace import SpanKind
from pydantic import ValidationError

from fabkit import tracing
from notifications import disabled_email, inactivity_email, mailer
from notifications.domain import CLEARED_PAYLOAD, Channel, DeliveryKind, SubscriptionStatus
from notifications.models import GUEST_OWNER_PREFIX, Artisan, Delivery, Subscription
from notifications.settings import NotificationsSettings
from notifications.webhooks import UnsafeUrl, post, resolve_target, signed_headers


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to: delivered, retry, dead, aborted (the receiver asked for no
    retry), gone (410, or the receiver asked to be disabled), refused or cancelled; or
    released: never attempted, the claim is given back."""

    kind: str
    error: str | None = None
    status_code: int | None = None
    retry_after_s: float | None = None


RELEASED = Outcome("released")


@dataclass(frozen=True, slots=True)
class Recipient:
    """What sending needs of a subscription, as read in the claim transaction."""

    id: str
    status: str
    webhook_url: str | None
    webhook_secret: str | None
    webhook_enabled: bool
    email_address: str | None
    email_enabled: bool
    # A guest's search (alerts without an account): its e-mails say that no eligibility check
    # was made, invite to create an account, and are written in `language`.
    guest: bool = False
    language: str | None = None

    @classmethod
    def of(cls, sub: Subscription) -> Recipient:
        return cls(
            id=sub.id,
            status=sub.status,
            webhook_url=sub.webhook_url,
            webhook_secret=sub.webhook_secret,
            webhook_enabled=sub.webhook_enabled,
            email_address=sub.email_address,
            email_enabled=sub.email_enabled,
            guest=sub.artisan_id.startswith(GUEST_OWNER_PREFIX),
            language=sub.language,
        )


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed delivery as plain values: what its send needs, what recording checks."""

    id: str
    channel: str
    kind: str
    subscription_id: str | None
    digest: bool
    # The attempt number the claim gave the row: the outcome is recorded only if the row still
    # has it (otherwise the lease ran out and another claim took the row over).
    attempts: int
    payload: dict[str, Any]
    # None when the delivery names no subscription, or when it no longer exists.
    subscription: Recipient | None
    # The artisan's address, for e-mails whose subscription gives none (or that have none).
    contact_email: str | None
    # Event-loop time at which the claim was made (before its transaction, so on the safe side).
    claimed_at: float
    # The W3C traceparent the delivery was created under (None: tracing was off).
    traceparent: str | None = None

    @classmethod
    def of(
        cls, row: Delivery, sub: Subscription | None, artisan: Artisan | None, claimed_at: float
    ) -> Job:
        return cls(
            id=row.id,
            channel=row.channel,
            kind=row.kind,
            subscription_id=row.subscription_id,
            digest=row.digest,
            attempts=row.attempts,
            payload=row.payload,
            subscription=Recipient.of(sub) if sub is not None else None,
            contact_email=artisan.contact_email if artisan is not None else None,
            claimed_at=claimed_at,
            traceparent=row.traceparent,
        )


def cancel_reason(job: Job) -> str | None:
    """Why a delivery of a subscription must not go out any more (None: it may)."""
    sub = job.subscription
    if sub is None or sub.status == SubscriptionStatus.DELETED.value:
        return "subscription deleted"
    # The notice that a search was switched off goes out because it is off, by e-mail
    # whatever the search's channels.
    if job.kind == DeliveryKind.WEBHOOK_DISABLED.value:
        return None
    # A test message goes out even while the subscription is paused.
    if job.kind != DeliveryKind.TEST.value and sub.status != SubscriptionStatus.ACTIVE.value:
        return f"subscription {sub.status}"
    if job.channel == Channel.WEBHOOK.value and not (sub.webhook_enabled and sub.webhook_url):
        return "webhook channel removed"
    if job.channel == Channel.EMAIL.value and not sub.email_enabled:
        return "e-mail channel removed"
    return None


# Sends are spread over several HTTP clients of a few connections each: httpcore's pool looks
# at every pooled connection (a poll() and a getpeername() each) whenever a request starts or
# ends, so one pool of `delivery_concurrency` connections costs CPU that grows with its size.
CONNECTIONS_PER_CLIENT = 4


class WebhookSender:
    """Posts signed webhooks to checked addresses, over keep-alive connections."""

    def __init__(self, settings: NotificationsSettings) -> None:
        self._settings = settings
        self.clients: list[httpx.AsyncClient] = []
        self._sends = 0

    @contextlib.asynccontextmanager
    async def open(self) -> AsyncIterator[None]:
        """Open the HTTP clients (one per CONNECTIONS_PER_CLIENT slots) for the worker's run."""
        shards = max(1, -(-self._settings.delivery_concurrency // CONNECTIONS_PER_CLIENT))
        async with contextlib.AsyncExitStack() as stack:
            self.clients = [
                await stack.enter_async_context(
                    httpx.AsyncClient(
                        timeout=self._settings.webhook_timeout_s,
                        follow_redirects=False,
                        trust_env=False,
                    )
                )
                for _ in range(shards)
            ]
            try:
                yield
            finally:
                self.clients = []

    def _next_client(self) -> httpx.AsyncClient:
        assert self.clients, "webhooks are sent while the sender is open"
        self._sends += 1
        return self.clients[self._sends % len(self.clients)]

    async def send(self, job: Job, sub: Recipient) -> Outcome:
        """Post the job's stored body, signed with the subscription's secret."""
        assert sub.webhook_url and sub.webhook_secret
        try:
            # Resolved again at send time: the name may point elsewhere since it was checked.
            target = await resolve_target(
                sub.webhook_url,
                self._settings.webhook_allowed_networks,
                require_https=self._settings.webhook_require_https,
            )
        except UnsafeUrl as exc:
            return Outcome("refused", f"webhook URL refused: {exc}")
        body = json.dumps(job.payload, ensure_ascii=False, separators=(",", ":")).encode()
        headers = signed_headers(sub.webhook_secret, job.id, body)
        result = await post(
            self._next_client(), target, headers, body, timeout_s=self._settings.webhook_timeout_s
        )
        if result.ok:
            return Outcome("delivered", status_code=result.status_code)
        if result.status_code == 410:
            return Outcome("gone", "the endpoint answered 410 Gone", 410)
        # Svix's delivery control, which receivers of Standard Webhooks senders know: a
        # response header rather than a status code, so that any failure can carry it.
        if result.control == "disable":
            return Outcome(
                "gone",
                f"{result.error}: the receiver asked for no more deliveries "
                "(webhook-delivery: disable)",
                result.status_code,
            )
        if result.control == "abort-message":
            return Outcome(
                "aborted",
                f"{result.error}: the receiver asked for no retry of this message "
                "(webhook-delivery: abort-message)",
                result.status_code,
            )
        return Outcome("retry", result.error, result.status_code, result.retry_after_s)


class EmailSender:
    """Renders the job's message as an e-mail and hands it to the SMTP server."""

    def __init__(self, settings: NotificationsSettings) -> None:
        self._settings = settings

    async def send(self, job: Job, sub: Recipient | None) -> Outcome:
        """Send to the subscription's address, else the artisan's contact address."""
        if job.kind == DeliveryKind.WEBHOOK_DISABLED.value:
            return await self._send_disabled_notice(job, sub)
        if job.kind == DeliveryKind.INACTIVITY_WARNING.value:
            # About the account: to the profile's address (the copy read at claim time).
            return await self._send_notice(job, job.contact_email, inactivity_email.render)
        to = (sub.email_address if sub else None) or job.contact_email
        if not to:
            return Outcome("retry", "no e-mail address known for this artisan yet")
        unsubscribe = mailer.unsubscribe_url(self._settings, sub.id) if sub is not None else None
        try:
            if sub is not None and sub.guest and unsubscribe:
                register = mailer.guest_register_url(self._settings)
                language = sub.language or "fr"
                rendered = mailer.render_guest(
                    mailer.guest_alert_email(job.payload, language, unsubscribe, register)
                )
            else:
                rendered = mailer.render(mailer.email_of(job.payload, unsubscribe))
        except ValidationError as exc:
            # Written by this service from the same models: retrying cannot make it readable.
            return Outcome("dead", f"the stored message cannot be rendered: {exc}"[:500])
        message = mailer.build_message(
            self._settings, to, rendered, message_id=job.id, unsubscribe=unsubscribe
        )
        try:
            with tracing.start_span(
                "smtp send",
                kind=SpanKind.CLIENT,
                attributes={
                    "server.address": self._settings.smtp_host,
                    "server.port": self._settings.smtp_port,
                    "fabrique.delivery.id": job.id,
                },
            ):
                await mailer.send(self._settings, message)
        except mailer.PermanentMailError as exc:
            return Outcome("dead", str(exc)[:500])
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return Outcome("retry", f"{type(exc).__name__}: {exc}"[:500])
        return Outcome("delivered")

    async def _send_disabled_notice(self, job: Job, sub: Recipient | None) -> Outcome:
        """Tell the artisan why a search was switched off: to the search's e-mail address if
        it has one (even with that channel off), else the artisan's contact address."""
        to = (sub.email_address if sub else None) or job.contact_email
        return await self._send_notice(job, to, disabled_email.render)

    async def _send_notice(
        self, job: Job, to: str | None, render: Callable[[dict[str, Any]], mailer.Rendered]
    ) -> Outcome:
        """Send a notice about the account (no unsubscribe link) rendered from the payload."""
        if not to:
            return Outcome("retry", "no e-mail address known for this artisan yet")
        try:
            rendered = render(job.payload)
        except ValidationError as exc:
            return Outcome("dead", f"the stored message cannot be rendered: {exc}"[:500])
        message = mailer.build_message(
            self._settings, to, rendered, message_id=job.id, unsubscribe=None
        )
        try:
            await mailer.send(self._settings, message)
        except mailer.PermanentMailError as exc:
            return Outcome("dead", str(exc)[:500])
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return Outcome("retry", f"{type(exc).__name__}: {exc}"[:500])
        return Outcome("delivered")


class Senders:
    """One attempt at a claimed delivery, on its channel."""

    def __init__(self, settings: NotificationsSettings) -> None:
        self.webhook = WebhookSender(settings)
        self.email = EmailSender(settings)

    async def attempt(self, job: Job) -> Outcome:
        """Send the job unless its subscription no longer wants it; never raises for a refusal."""
        sub = job.subscription
        if job.payload == CLEARED_PAYLOAD:
            return Outcome("dead", "its message was cleared by retention: nothing left to send")
        if job.subscription_id:
            cancelled = cancel_reason(job)
            if cancelled:
                return Outcome("cancelled", cancelled)
        if job.channel == Channel.WEBHOOK.value:
            assert sub is not None
            return await self.webhook.send(job, sub)
        if job.channel == Channel.EMAIL.value:
            return await self.email.send(job, sub)
        return Outcome("dead", f"channel {job.channel} is not sent by the worker")
