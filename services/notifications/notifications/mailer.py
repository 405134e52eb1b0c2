"""E-mail alerts: plain text and HTML, a signed one-click unsubscribe link, SMTP via aiosmtplib."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid, parseaddr
from html import escape
from typing import Any

import aiosmtplib
from pydantic import TypeAdapter

from notifications.contracts import (
    ApplicationDecidedEmail,
    ApplicationDecidedMessage,
    Email,
    LeaseOfferedEmail,
    StoredMessage,
    SubscriptionTestEmail,
    SubscriptionTestWebhook,
    VacancyAlert,
    VacancyDigestEmail,
    VacancyDigestWebhook,
    VacancyOpenedEmail,
    VacancyOpenedWebhook,
    vacancy_title,
)
from notifications.settings import NotificationsSettings

_WIRE = policy.SMTP.clone(max_line_length=998)


class PermanentMailError(RuntimeError):
    """The SMTP server refused the message for good (a 5xx answer): retrying will not help."""


# Unsubscribe tokens ---------------------------------------------------------------------------


def _unsubscribe_key(settings: NotificationsSettings) -> bytes:
    # The label keeps these MACs useless as anything else.
    secret = settings.unsubscribe_secret.get_secret_value().encode()
    return hmac.new(secret, b"fabrique-notifications-unsubscribe-v1", hashlib.sha256).digest()


def unsubscribe_token(settings: NotificationsSettings, subscription_id: str) -> str:
    mac = hmac.new(_unsubscribe_key(settings), subscription_id.encode(), hashlib.sha256).digest()
    return f"{subscription_id}.{base64.urlsafe_b64encode(mac[:20]).decode().rstrip('=')}"


def read_unsubscribe_token(settings: NotificationsSettings, token: str) -> str | None:
    """The subscription id a token was made for, or None when it is not genuine."""
    subscription_id, _, _ = token.partition(".")
    if not subscription_id or len(token) > 200:
        return None
    expected = unsubscribe_token(settings, subscription_id).encode()
    if hmac.compare_digest(expected, token.encode("utf-8", "surrogateescape")):
        return subscription_id
    return None


def unsubscribe_url(settings: NotificationsSettings, subscription_id: str) -> str:
    base = settings.public_base_url.rstrip("/")
    return f"{base}/v1/unsubscribe/{unsubscribe_token(settings, subscription_id)}"


# What an e-mail says ------------------------------------------------------------------------

_STORED: TypeAdapter[StoredMessage] = TypeAdapter(StoredMessage)


def email_of(payload: dict[str, Any], unsubscribe: str | None) -> Email:
    """The values an e-mail renders, from a delivery's stored message.

    ValueError (a pydantic ValidationError) when the payload is no known message.
    """
    message = _STORED.validate_python(payload)
    if isinstance(message, VacancyOpenedWebhook):
        alert = message.data
        return VacancyOpenedEmail(
            subject=vacancy_title(alert.unit), alert=alert, unsubscribe_url=unsubscribe
        )
    if isinstance(message, VacancyDigestWebhook):
        digest = message.data
        return VacancyDigestEmail(
            subject=f"{len(digest.alerts)} atelier(s) disponible(s) pour votre recherche "
            f"« {digest.subscription.name} »",
            subscription=digest.subscription,
            alerts=digest.alerts,
            unsubscribe_url=unsubscribe,
        )
    if isinstance(message, SubscriptionTestWebhook):
        ref = message.data.subscription
        return SubscriptionTestEmail(
            subject=f"Test de votre alerte « {ref.name} »",
            subscription=ref,
            unsubscribe_url=unsubscribe,
        )
    if isinstance(message, ApplicationDecidedMessage):
        return ApplicationDecidedEmail(
            subject="Votre candidature à un atelier : décision",
            decision=message.data,
            unsubscribe_url=unsubscribe,
        )
    return LeaseOfferedEmail(
        subject="Un bail vous est proposé", offer=message.data, unsubscribe_url=unsubscribe
    )


# Rendering -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def _alert_lines(alert: VacancyAlert) -> list[str]:
    unit = alert.unit
    lines = [
        f"{unit.site_name} — lot {unit.reference}",
        f"{unit.address}, {unit.postcode} Paris",
        f"{unit.surface_m2:g} m², loyer {unit.rent_eur_m2_year:g} €/m²/an "
        f"(+ charges {unit.charges_eur_m2_year:g} €/m²/an)",
    ]
    if unit.available_from:
        lines.append(f"Disponible à partir du {unit.available_from.isoformat()}")
    lines.append("Pourquoi cette alerte : " + "; ".join(alert.why.criteria))
    if alert.why.eligibility.summary:
        lines.append("Éligibilité : " + alert.why.eligibility.summary)
    return lines


def _blocks(email: Email) -> list[list[str]]:
    if isinstance(email, VacancyOpenedEmail):
        return [_alert_lines(email.alert)]
    if isinstance(email, VacancyDigestEmail):
        return [_alert_lines(a) for a in email.alerts]
    if isinstance(email, SubscriptionTestEmail):
        return [["Ceci est un envoi de test : votre alerte vous parviendra bien par ce canal."]]
    if isinstance(email, ApplicationDecidedEmail):
        decided = email.decision
        lines = [f"Une décision a été prise sur votre candidature : {decided.decision}."]
        if decided.score is not None:
            lines.append(f"Score : {decided.score} / {decided.max_score or '?'}")
        if decided.reason:
            lines.append(f"Motif : {decided.reason}")
        return [lines]
    offer = email.offer
    lines = ["Un bail vous est proposé pour un atelier."]
    if offer.monthly_rent_eur is not None:
        lines.append(f"Loyer mensuel : {offer.monthly_rent_eur:g} €")
    if offer.start_date:
        end = offer.end_date.isoformat() if offer.end_date else "?"
        lines.append(f"Du {offer.start_date.isoformat()} au {end}")
    if offer.offer_expires_at:
        lines.append(f"Réponse attendue avant le {offer.offer_expires_at.isoformat()}")
    return [lines]


def render(email: Email) -> Rendered:
    """The e-mail as plain text and HTML (escaped), with the unsubscribe link if it has one."""
    blocks = _blocks(email)
    text_parts = ["\n".join(block) for block in blocks]
    html_parts = ["<p>" + "<br>".join(escape(line) for line in block) + "</p>" for block in blocks]
    unsubscribe = email.unsubscribe_url
    if unsubscribe:
        text_parts.append(f"Ne plus recevoir ces alertes par e-mail : {unsubscribe}")
        html_parts.append(
            f'<p style="font-size:small"><a href="{escape(unsubscribe, quote=True)}">'
            "Ne plus recevoir ces alertes par e-mail</a></p>"
        )
    html = (
        '<!doctype html><html lang="fr"><body>'
        f'<h1 style="font-size:1.2em">{escape(email.subject)}</h1>{"".join(html_parts)}'
        "</body></html>"
    )
    return Rendered(email.subject, "\n\n".join(text_parts) + "\n", html)


def build_message(
    settings: NotificationsSettings,
    to: str,
    rendered: Rendered,
    *,
    message_id: str,
    unsubscribe: str | None,
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = to
    message["Subject"] = rendered.subject
    message["Date"] = formatdate(localtime=False)
    domain = settings.mail_from.rsplit("@", 1)[-1].strip(" >") or "fabrique.local"
    # One Message-ID per delivery: a retried send is recognisable as the same message.
    message["Message-ID"] = make_msgid(idstring=message_id, domain=domain)
    message["X-Fabrique-Delivery"] = message_id
    if unsubscribe:
        message["List-Unsubscribe"] = f"<{unsubscribe}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message


async def send(settings: NotificationsSettings, message: EmailMessage) -> None:
    """Send through the configured SMTP server; PermanentMailError on a 5xx refusal."""
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    # Flattened here rather than by aiosmtplib (78-column policy): a long List-Unsubscribe URL
    # must stay one unencoded line or mail clients stop recognising it. 998 is SMTP's limit.
    raw = message.as_bytes(policy=_WIRE)
    sender = parseaddr(str(message["From"]))[1]
    recipients = [address for _, address in getaddresses([str(message["To"])])]
    try:
        await aiosmtplib.send(
            raw,
            sender=sender,
            recipients=recipients,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=password,
            use_tls=settings.smtp_tls,
            start_tls=settings.smtp_starttls or None,
            timeout=settings.smtp_timeout_s,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        if all(500 <= r.code < 600 for r in exc.recipients):
            raise PermanentMailError(f"recipient refused: {exc}") from exc
        raise
    except aiosmtplib.SMTPResponseException as exc:
        if 500 <= exc.code < 600 and not isinstance(exc, aiosmtplib.SMTPAuthenticationError):
            raise PermanentMailError(f"SMTP {exc.code}: {exc.message}") from exc
        raise
