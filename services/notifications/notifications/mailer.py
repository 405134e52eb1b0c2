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

from notifications.settings import NotificationsSettings

_WIRE = policy.SMTP.clone(max_line_length=998)


class PermanentMailError(RuntimeError):
    """The SMTP server refused the message for good (a 5xx answer): retrying will not help."""


# Unsubscribe tokens ---------------------------------------------------------------------------


def _unsubscribe_key(settings: NotificationsSettings) -> bytes:
    # Derived from the service secret so no extra secret needs managing; the label keeps these
    # MACs useless as anything else.
    secret = settings.jwt_secret.get_secret_value().encode()
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


# Rendering -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def _unit_lines(alert: dict[str, Any]) -> list[str]:
    unit = alert["unit"]
    lines = [
        f"{unit.get('site_name', '')} — lot {unit.get('reference', '')}",
        f"{unit.get('address', '')}, {unit.get('postcode', '')} Paris",
        f"{unit['surface_m2']:g} m², loyer {unit['rent_eur_m2_year']:g} €/m²/an "
        f"(+ charges {unit.get('charges_eur_m2_year', 0):g} €/m²/an)",
    ]
    if unit.get("available_from"):
        lines.append(f"Disponible à partir du {unit['available_from']}")
    why = alert.get("why", {})
    lines.append("Pourquoi cette alerte : " + "; ".join(why.get("criteria", [])))
    eligibility = why.get("eligibility") or {}
    if eligibility.get("summary"):
        lines.append("Éligibilité : " + eligibility["summary"])
    return lines


def _subject_and_blocks(payload: dict[str, Any]) -> tuple[str, list[list[str]]]:
    kind, data = payload.get("type", ""), payload.get("data", {})
    if kind == "vacancy.opened":
        unit = data["unit"]
        subject = (
            f"Atelier disponible : {unit.get('site_name', '')}, {unit['surface_m2']:g} m², "
            f"Paris {unit['arrondissement']}e"
        )
        return subject, [_unit_lines(data)]
    if kind == "vacancy.digest":
        alerts = data.get("alerts", [])
        name = data.get("subscription", {}).get("name", "")
        subject = f"{len(alerts)} atelier(s) disponible(s) pour votre recherche « {name} »"
        return subject, [_unit_lines(a) for a in alerts]
    if kind == "subscription.test":
        name = data.get("subscription", {}).get("name", "")
        return f"Test de votre alerte « {name} »", [
            ["Ceci est un envoi de test : votre alerte vous parviendra bien par ce canal."]
        ]
    if kind == "application.decided":
        application = data.get("application") or {}
        decision = str(data.get("decision") or application.get("status") or "rendue")
        lines = [f"Une décision a été prise sur votre candidature : {decision}."]
        if application.get("score") is not None:
            lines.append(f"Score : {application['score']} / {application.get('max_score', '?')}")
        if data.get("reason"):
            lines.append(f"Motif : {data['reason']}")
        return "Votre candidature à un atelier : décision", [lines]
    if kind == "lease.offered":
        lease = data.get("lease") or {}
        lines = ["Un bail vous est proposé pour un atelier."]
        if lease.get("monthly_rent_eur") is not None:
            lines.append(f"Loyer mensuel : {lease['monthly_rent_eur']:g} €")
        if lease.get("start_date"):
            lines.append(f"Du {lease['start_date']} au {lease.get('end_date', '?')}")
        if lease.get("offer_expires_at"):
            lines.append(f"Réponse attendue avant le {lease['offer_expires_at']}")
        return "Un bail vous est proposé", [lines]
    return "Fabrique", [[str(kind)]]


def render(payload: dict[str, Any], unsubscribe: str | None) -> Rendered:
    subject, blocks = _subject_and_blocks(payload)
    text_parts = ["\n".join(block) for block in blocks]
    html_parts = ["<p>" + "<br>".join(escape(line) for line in block) + "</p>" for block in blocks]
    if unsubscribe:
        text_parts.append(f"Ne plus recevoir ces alertes par e-mail : {unsubscribe}")
        html_parts.append(
            f'<p style="font-size:small"><a href="{escape(unsubscribe, quote=True)}">'
            "Ne plus recevoir ces alertes par e-mail</a></p>"
        )
    html = (
        '<!doctype html><html lang="fr"><body>'
        f'<h1 style="font-size:1.2em">{escape(subject)}</h1>{"".join(html_parts)}</body></html>'
    )
    return Rendered(subject, "\n\n".join(text_parts) + "\n", html)


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
