"""The e-mails of workshop visits, in the language of the booking: the confirmation with its
cancellation link, the reminder the day before, and the host's cancellation. Plain text and
HTML, every value escaped; the cancellation link opens the portal's page
`/visites/annuler/<token>`, which posts the cancellation (mail scanners open links)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

from notifications.contracts import (
    VisitBookedEmail,
    VisitCancelledEmail,
    VisitRef,
    VisitReminderEmail,
)
from notifications.mailer import Rendered
from notifications.models import VisitSlot
from notifications.settings import NotificationsSettings

VisitEmail = VisitBookedEmail | VisitReminderEmail | VisitCancelledEmail

PARIS = ZoneInfo("Europe/Paris")

_TEXT = {
    "fr": {
        "booked_subject": "Visite réservée : {title}, {when}",
        "reminder_subject": "Rappel : visite demain, {title}, {when}",
        "cancelled_subject": "Visite annulée : {title}, {when}",
        "booked_intro": "Votre réservation de {places} place(s) est enregistrée.",
        "reminder_intro": "Nous vous rappelons votre visite ({places} place(s)).",
        "cancelled_intro": "L'hôte a annulé cette visite ; votre réservation est annulée.",
        "when": "Le {when} (heure de Paris), jusqu'à {end}",
        "where": "Adresse : {address}, {postcode} Paris — {site}",
        "languages": "Langues : {languages}",
        "accessibility": "Accessibilité : {accessibility}",
        "page": "La visite : {url}",
        "cancel": "Vous ne pouvez pas venir ? Annulez pour libérer votre place : {url}",
        "cancel_link": "Annuler ma réservation",
        "reason": "Motif : {reason}",
        "others": "Les autres visites : {url}",
        "others_link": "Voir les autres visites",
        "none": "non précisée",
    },
    "en": {
        "booked_subject": "Visit booked: {title}, {when}",
        "reminder_subject": "Reminder: visit tomorrow, {title}, {when}",
        "cancelled_subject": "Visit cancelled: {title}, {when}",
        "booked_intro": "Your booking of {places} place(s) is recorded.",
        "reminder_intro": "A reminder of your visit ({places} place(s)).",
        "cancelled_intro": "The host cancelled this visit; your booking is cancelled.",
        "when": "On {when} (Paris time), until {end}",
        "where": "Address: {address}, {postcode} Paris — {site}",
        "languages": "Languages: {languages}",
        "accessibility": "Accessibility: {accessibility}",
        "page": "The visit: {url}",
        "cancel": "Cannot come? Cancel to free your place: {url}",
        "cancel_link": "Cancel my booking",
        "reason": "Reason: {reason}",
        "others": "Other visits: {url}",
        "others_link": "See the other visits",
        "none": "not given",
    },
}


# Cancellation tokens ---------------------------------------------------------------------------


def _cancel_key(settings: NotificationsSettings) -> bytes:
    # The label keeps these MACs useless as unsubscribe tokens, and those useless here.
    secret = settings.unsubscribe_secret.get_secret_value().encode()
    return hmac.new(secret, b"fabrique-notifications-visit-cancel-v1", hashlib.sha256).digest()


def cancel_token(settings: NotificationsSettings, booking_id: str) -> str:
    """The booking's cancellation token: signed, so the reminder can carry the same link while
    only the token's SHA-256 is stored."""
    mac = hmac.new(_cancel_key(settings), booking_id.encode(), hashlib.sha256).digest()
    return f"{booking_id}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def _portal(settings: NotificationsSettings) -> str:
    return settings.portal_base_url.rstrip("/")


def cancel_url(settings: NotificationsSettings, token: str) -> str:
    return f"{_portal(settings)}/visites/annuler/{token}"


def visits_url(settings: NotificationsSettings) -> str:
    return f"{_portal(settings)}/visites"


def visit_url(settings: NotificationsSettings, slot_id: str) -> str:
    return f"{_portal(settings)}/visites/{slot_id}"


# What the e-mails say ----------------------------------------------------------------------------


def visit_ref(settings: NotificationsSettings, slot: VisitSlot) -> VisitRef:
    return VisitRef(
        slot_id=slot.slot_id,
        title=slot.title or slot.site_name,
        site_name=slot.site_name,
        site_address=slot.site_address,
        postcode=slot.postcode,
        starts_at=slot.starts_at,
        ends_at=slot.ends_at,
        languages=list(slot.languages),
        accessibility=list(slot.accessibility),
        accessibility_notes=slot.accessibility_notes,
        url=visit_url(settings, slot.slot_id),
    )


def _local(at: datetime) -> str:
    return at.astimezone(PARIS).strftime("%Y-%m-%d %H:%M")


def _subject(kind: str, language: str, visit: VisitRef) -> str:
    return _TEXT[language][f"{kind}_subject"].format(
        title=visit.title, when=_local(visit.starts_at)
    )


def booked_email(
    settings: NotificationsSettings, slot: VisitSlot, language: str, places: int, token: str
) -> VisitBookedEmail:
    visit = visit_ref(settings, slot)
    return VisitBookedEmail(
        subject=_subject("booked", language, visit),
        language=language,  # type: ignore[arg-type]
        visit=visit,
        places=places,
        cancel_url=cancel_url(settings, token),
    )


def reminder_email(
    settings: NotificationsSettings, slot: VisitSlot, language: str, places: int, token: str
) -> VisitReminderEmail:
    visit = visit_ref(settings, slot)
    return VisitReminderEmail(
        subject=_subject("reminder", language, visit),
        language=language,  # type: ignore[arg-type]
        visit=visit,
        places=places,
        cancel_url=cancel_url(settings, token),
    )


def cancelled_email(
    settings: NotificationsSettings, slot: VisitSlot, language: str
) -> VisitCancelledEmail:
    visit = visit_ref(settings, slot)
    return VisitCancelledEmail(
        subject=_subject("cancelled", language, visit),
        language=language,  # type: ignore[arg-type]
        visit=visit,
        reason=slot.cancel_reason,
        visits_url=visits_url(settings),
    )


def _link(url: str, label: str) -> str:
    return f'<a href="{escape(url, quote=True)}">{escape(label)}</a>'


def render(email: VisitEmail) -> Rendered:
    """The e-mail as plain text and HTML (escaped), in the booking's language."""
    text = _TEXT[email.language]
    visit = email.visit
    if isinstance(email, VisitCancelledEmail):
        intro = text["cancelled_intro"]
    else:
        intro = text[f"{'booked' if isinstance(email, VisitBookedEmail) else 'reminder'}_intro"]
        intro = intro.format(places=email.places)
    details = [
        visit.title,
        text["when"].format(when=_local(visit.starts_at), end=_local(visit.ends_at)[-5:]),
        text["where"].format(
            address=visit.site_address, postcode=visit.postcode, site=visit.site_name
        ),
        text["languages"].format(languages=", ".join(visit.languages) or text["none"]),
        text["accessibility"].format(
            accessibility="; ".join([*visit.accessibility, visit.accessibility_notes or ""]).strip(
                "; "
            )
            or text["none"]
        ),
    ]
    parts: list[tuple[str, str]] = [
        (intro, escape(intro)),
        ("\n".join(details), "<br>".join(escape(line) for line in details)),
    ]
    if isinstance(email, VisitCancelledEmail):
        if email.reason:
            reason = text["reason"].format(reason=email.reason)
            parts.append((reason, escape(reason)))
        parts.append(
            (
                text["others"].format(url=email.visits_url),
                _link(email.visits_url, text["others_link"]),
            )
        )
    else:
        page = text["page"].format(url=visit.url)
        parts.append((page, _link(visit.url, page)))
        parts.append(
            (
                text["cancel"].format(url=email.cancel_url),
                _link(email.cancel_url, text["cancel_link"]),
            )
        )
    html = (
        f'<!doctype html><html lang="{email.language}"><body>'
        f'<h1 style="font-size:1.2em">{escape(email.subject)}</h1>'
        + "".join(f"<p>{paragraph}</p>" for _, paragraph in parts)
        + "</body></html>"
    )
    return Rendered(email.subject, "\n\n".join(line for line, _ in parts) + "\n", html)
