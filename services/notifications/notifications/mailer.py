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
    AppealAnsweredEmail,
    AppealAnsweredMessage,
    ApplicationDecidedEmail,
    ApplicationDecidedMessage,
    CallClosedEmail,
    CallClosedMessage,
    CallDecidedEmail,
    CallDecidedMessage,
    CallResultsEmail,
    CallResultsMessage,
    Email,
    GuestConfirmationEmail,
    GuestEmail,
    GuestVacancyAlertEmail,
    LeaseOfferedEmail,
    StoredMessage,
    SubscriptionTestEmail,
    SubscriptionTestWebhook,
    VacancyAlert,
    VacancyDigestEmail,
    VacancyDigestWebhook,
    VacancyOpenedEmail,
    VacancyOpenedWebhook,
    stall_period,
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
        what = "stand(s)" if digest.alerts[0].unit.space_kind == "stall" else "atelier(s)"
        return VacancyDigestEmail(
            subject=f"{len(digest.alerts)} {what} disponible(s) pour votre recherche "
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
    if isinstance(message, CallResultsMessage):
        return CallResultsEmail(
            subject="Résultats de l'appel à candidatures : votre rang",
            results=message.data,
            unsubscribe_url=unsubscribe,
        )
    if isinstance(message, CallClosedMessage):
        return CallClosedEmail(
            subject="Appel à candidatures clos : votre rang",
            closing=message.data,
            unsubscribe_url=unsubscribe,
        )
    if isinstance(message, CallDecidedMessage):
        return CallDecidedEmail(
            subject="Appel à candidatures : la décision est prise",
            decision=message.data,
            unsubscribe_url=unsubscribe,
        )
    if isinstance(message, AppealAnsweredMessage):
        return AppealAnsweredEmail(
            subject="Réponse à votre recours", appeal=message.data, unsubscribe_url=unsubscribe
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


_LOGISTICS_WORDS = {
    "fr": {
        "rail": "embranchement ferré",
        "quay": "quai fluvial à {m} m",
        "station": "gare de la petite ceinture : {name}",
        "weight": "fret jusqu'à {t} t",
        "height": "fret jusqu'à {m} m de haut",
        "bikes": "{n} place(s) vélo-cargo",
        "label": "Logistique : ",
        "stall": "Stand saisonnier loué {period}",
    },
    "en": {
        "rail": "rail siding",
        "quay": "river quay {m} m away",
        "station": "petite-ceinture station: {name}",
        "weight": "freight up to {t} t",
        "height": "freight up to {m} m high",
        "bikes": "{n} cargo-bike space(s)",
        "label": "Logistics: ",
        "stall": "Seasonal stall let {period}",
    },
}


def _period_en(alert: VacancyAlert) -> str:
    unit = alert.unit
    start, end = unit.period_start, unit.period_end
    if start and end:
        return f"from {start.isoformat()} to {end.isoformat()}"
    if start:
        return f"from {start.isoformat()}"
    return f"until {end.isoformat()}" if end else "(period to be given)"


def _space_lines(alert: VacancyAlert, language: str) -> list[str]:
    """A stall's period, and the site's logistics when it has any, in `language`."""
    words = _LOGISTICS_WORDS[language]
    unit, logistics = alert.unit, alert.unit.logistics
    lines = []
    if unit.space_kind == "stall":
        period = stall_period(unit) if language == "fr" else _period_en(alert)
        lines.append(words["stall"].format(period=period))
    has = []
    if logistics.rail_siding:
        has.append(words["rail"])
    if logistics.river_quay_distance_m is not None:
        has.append(words["quay"].format(m=logistics.river_quay_distance_m))
    if logistics.petite_ceinture_station:
        has.append(words["station"].format(name=logistics.petite_ceinture_station))
    if logistics.freight_max_weight_t is not None:
        has.append(words["weight"].format(t=f"{logistics.freight_max_weight_t:g}"))
    if logistics.freight_max_height_m is not None:
        has.append(words["height"].format(m=f"{logistics.freight_max_height_m:g}"))
    if logistics.cargo_bike_spaces:
        has.append(words["bikes"].format(n=logistics.cargo_bike_spaces))
    if has:
        lines.append(words["label"] + ", ".join(has))
    return lines


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
    lines += _space_lines(alert, "fr")
    lines.append("Pourquoi cette alerte : " + "; ".join(alert.why.criteria))
    if alert.why.eligibility.summary:
        lines.append("Éligibilité : " + alert.why.eligibility.summary)
    return lines


_OUTCOME_FR = {
    "leased": "le bail vous est attribué",
    "offered": "une offre vous est faite",
    "offer_declined": "vous avez décliné l'offre",
    "offer_expired": "l'offre a expiré sans réponse",
    "rejected": "votre candidature n'a pas été retenue",
    "withdrawn": "vous avez retiré votre candidature",
    "not_chosen": "votre candidature n'a pas été retenue",
    "not_reached": "l'atelier a été attribué avant votre rang",
}


def _results_lines(email: CallResultsEmail) -> list[str]:
    r = email.results
    lines = [
        "Les résultats de l'appel à candidatures auquel vous avez répondu sont publiés.",
        f"Votre rang : {r.rank} sur {r.ranked_among}",
    ]
    if r.score is not None:
        lines.append(f"Vos points : {r.score} / {r.max_score or '?'}")
    lines.append(f"Décision : {_OUTCOME_FR.get(r.outcome, r.outcome)}.")
    if r.appeals_close_at:
        lines.append(
            f"Vous pouvez former un recours jusqu'au {r.appeals_close_at.isoformat()} (UTC)."
        )
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
    if isinstance(email, CallResultsEmail):
        return [_results_lines(email)]
    if isinstance(email, CallClosedEmail):
        c = email.closing
        lines = [
            "L'appel à candidatures auquel vous avez répondu est clos ; le classement est figé.",
            f"Votre rang : {c.rank} sur {c.ranked_among}",
        ]
        if c.score is not None:
            lines.append(f"Vos points : {c.score} / {c.max_score or '?'}")
        return [lines]
    if isinstance(email, CallDecidedEmail):
        d = email.decision
        if d.outcome == "leased":
            said = "le bail vous est attribué." if d.chosen else "l'atelier est attribué."
        else:
            said = "aucune candidature n'a été retenue."
        lines = [f"La décision de l'appel à candidatures est prise : {said}"]
        if d.reason:
            lines.append(f"Motif : {d.reason}")
        return [lines]
    if isinstance(email, AppealAnsweredEmail):
        appeal = email.appeal
        verdict = {"upheld": "fondé", "dismissed": "rejeté"}.get(appeal.outcome or "", "examiné")
        return [[f"Votre recours a été {verdict}.", f"Réponse : {appeal.answer}"]]
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


# E-mails to guests (alerts without an account), in French or English ------------------------

_GUEST_TEXT = {
    "fr": {
        "confirm_subject": "Confirmez vos alertes Fabrique",
        "confirm_intro": "Vous (ou quelqu'un avec votre adresse) avez demandé à recevoir par "
        "e-mail les ateliers vacants de la recherche « {name} ».",
        "confirm_action": "Pour recevoir ces alertes, ouvrez ce lien et confirmez : {url}",
        "confirm_button": "Confirmer mes alertes",
        "confirm_expiry": "Ce lien est valable jusqu'au {at} (UTC) et ne sert qu'une fois.",
        "confirm_ignore": "Si vous n'avez rien demandé, ignorez ce message : aucune alerte ne "
        "vous sera envoyée.",
        "alert_subject": "Atelier disponible : {site}, {surface} m², Paris {arr}e",
        "stall_subject": "Stand disponible : {site}, {period}, Paris {arr}e",
        "alert_no_check": "Ces alertes sans compte ne vérifient pas votre éligibilité aux "
        "programmes du bailleur : un atelier annoncé ici peut vous être refusé.",
        "alert_register": "Créez un compte Fabrique pour ne recevoir que les ateliers auxquels "
        "vous êtes éligible et pour candidater : {url}",
        "alert_register_link": "Créer un compte Fabrique",
        "unsubscribe": "Ne plus recevoir ces alertes par e-mail : {url}",
        "unsubscribe_link": "Ne plus recevoir ces alertes par e-mail",
        "why": "Pourquoi cette alerte : ",
        "lot": "lot",
        "rent": "{surface} m², loyer {rent} €/m²/an (+ charges {charges} €/m²/an)",
        "from": "Disponible à partir du {date}",
    },
    "en": {
        "confirm_subject": "Confirm your Fabrique alerts",
        "confirm_intro": "You (or someone using your address) asked to receive by e-mail the "
        "vacant workshops of the search “{name}”.",
        "confirm_action": "To receive these alerts, open this link and confirm: {url}",
        "confirm_button": "Confirm my alerts",
        "confirm_expiry": "This link is valid until {at} (UTC) and works once.",
        "confirm_ignore": "If you asked for nothing, ignore this message: no alert will be sent "
        "to you.",
        "alert_subject": "Workshop available: {site}, {surface} m², Paris {arr}",
        "stall_subject": "Stall available: {site}, {period}, Paris {arr}",
        "alert_no_check": "Alerts without an account do not check your eligibility for the "
        "landlord's programmes: a workshop announced here may be refused to you.",
        "alert_register": "Create a Fabrique account to receive only the workshops you are "
        "eligible for, and to apply: {url}",
        "alert_register_link": "Create a Fabrique account",
        "unsubscribe": "Stop receiving these alerts by e-mail: {url}",
        "unsubscribe_link": "Stop receiving these alerts by e-mail",
        "why": "Why this alert: ",
        "lot": "unit",
        "rent": "{surface} m², rent {rent} €/m²/year (+ charges {charges} €/m²/year)",
        "from": "Available from {date}",
    },
}


def guest_confirm_url(settings: NotificationsSettings, token: str) -> str:
    """The portal's confirmation page for a token (the page posts the confirmation)."""
    return f"{settings.portal_base_url.rstrip('/')}/alerts/confirm/{token}"


def guest_register_url(settings: NotificationsSettings) -> str:
    """Where a guest creates an account: the portal's login, which offers registration."""
    return f"{settings.portal_base_url.rstrip('/')}/login"


def guest_confirmation_subject(language: str) -> str:
    return _GUEST_TEXT[language]["confirm_subject"]


def guest_alert_email(
    payload: dict[str, Any], language: str, unsubscribe: str, register: str
) -> GuestVacancyAlertEmail:
    """The values of a guest's alert e-mail, from the delivery's stored message.

    ValueError (a pydantic ValidationError) when the payload is no instant vacancy alert.
    """
    message = VacancyOpenedWebhook.model_validate(payload)
    unit = message.data.unit
    if unit.space_kind == "stall":
        period = stall_period(unit) if language == "fr" else _period_en(message.data)
        subject = _GUEST_TEXT[language]["stall_subject"].format(
            site=unit.site_name, period=period, arr=unit.arrondissement
        )
    else:
        subject = _GUEST_TEXT[language]["alert_subject"].format(
            site=unit.site_name, surface=f"{unit.surface_m2:g}", arr=unit.arrondissement
        )
    return GuestVacancyAlertEmail(
        subject=subject,
        language=language,  # type: ignore[arg-type]
        alert=message.data,
        register_url=register,
        unsubscribe_url=unsubscribe,
    )


def _guest_link(url: str, label: str) -> str:
    return f'<a href="{escape(url, quote=True)}">{escape(label)}</a>'


def render_guest(email: GuestEmail) -> Rendered:
    """A guest's e-mail as plain text and HTML (escaped), in the guest's language."""
    text = _GUEST_TEXT[email.language]
    # (text line, HTML paragraph) pairs, in order.
    parts: list[tuple[str, str]] = []
    if isinstance(email, GuestConfirmationEmail):
        intro = text["confirm_intro"].format(name=email.search_name)
        at = email.expires_at.strftime("%Y-%m-%d %H:%M")
        parts += [
            (intro, escape(intro)),
            (
                text["confirm_action"].format(url=email.confirm_url),
                _guest_link(email.confirm_url, text["confirm_button"]),
            ),
            (text["confirm_expiry"].format(at=at), escape(text["confirm_expiry"].format(at=at))),
            (text["confirm_ignore"], escape(text["confirm_ignore"])),
        ]
    else:
        unit = email.alert.unit
        lines = [
            f"{unit.site_name} — {text['lot']} {unit.reference}",
            f"{unit.address}, {unit.postcode} Paris",
            text["rent"].format(
                surface=f"{unit.surface_m2:g}",
                rent=f"{unit.rent_eur_m2_year:g}",
                charges=f"{unit.charges_eur_m2_year:g}",
            ),
        ]
        if unit.available_from:
            lines.append(text["from"].format(date=unit.available_from.isoformat()))
        lines += _space_lines(email.alert, email.language)
        lines.append(text["why"] + "; ".join(email.alert.why.criteria))
        parts.append(("\n".join(lines), "<br>".join(escape(line) for line in lines)))
        parts.append((text["alert_no_check"], escape(text["alert_no_check"])))
        parts.append(
            (
                text["alert_register"].format(url=email.register_url),
                _guest_link(email.register_url, text["alert_register_link"]),
            )
        )
        parts.append(
            (
                text["unsubscribe"].format(url=email.unsubscribe_url),
                _guest_link(email.unsubscribe_url, text["unsubscribe_link"]),
            )
        )
    html = (
        f'<!doctype html><html lang="{email.language}"><body>'
        f'<h1 style="font-size:1.2em">{escape(email.subject)}</h1>'
        + "".join(f"<p>{paragraph}</p>" for _, paragraph in parts)
        + "</body></html>"
    )
    return Rendered(email.subject, "\n\n".join(line for line, _ in parts) + "\n", html)


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
