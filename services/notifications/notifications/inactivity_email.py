"""The e-mail an inactive artisan gets before leasing erases their account (its retention rule,
docs/privacy.md): why, the date of the erasure, and that logging in keeps the account. French
then English in one message, plain text and HTML, every value escaped."""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any

from notifications.contracts import InactivityWarningEmail
from notifications.mailer import Rendered

SUBJECT = (
    "Votre compte Fabrique sera supprimé le {fr} / Your Fabrique account will be erased on {en}"
)

_TEXT = {
    "fr": {
        "why": "Vous ne vous êtes pas connecté(e) à Fabrique depuis le {last}. Nous ne gardons "
        "pas les données des comptes inactifs au-delà de la durée prévue par notre registre "
        "des traitements (RGPD) : votre compte, votre profil et vos candidatures non retenues "
        "seront supprimés le {due}.",
        "keep": "Pour garder votre compte, connectez-vous avant cette date : {url}",
        "keep_link": "Me connecter et garder mon compte",
        "nothing": "Si vous ne souhaitez plus utiliser Fabrique, vous n'avez rien à faire.",
    },
    "en": {
        "why": "You have not logged in to Fabrique since {last}. We do not keep the data of "
        "inactive accounts beyond the period our register of processing sets (GDPR): your "
        "account, your profile and your applications not selected will be erased on {due}.",
        "keep": "To keep your account, log in before that date: {url}",
        "keep_link": "Log in and keep my account",
        "nothing": "If you no longer wish to use Fabrique, there is nothing to do.",
    },
}

_MONTHS_FR = [
    "janvier", "février", "mars", "avril", "mai", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre",
]  # fmt: skip


def _date(at: datetime, language: str) -> str:
    if language == "fr":
        day = "1er" if at.day == 1 else str(at.day)
        return f"{day} {_MONTHS_FR[at.month - 1]} {at.year}"
    return f"{at:%B} {at.day}, {at.year}"


def inactivity_warning_email(
    *, last_active_at: datetime, warned_at: datetime, erasure_due_at: datetime, login_url: str
) -> InactivityWarningEmail:
    """The e-mail's data (stored as the delivery's message)."""
    return InactivityWarningEmail(
        subject=SUBJECT.format(fr=_date(erasure_due_at, "fr"), en=_date(erasure_due_at, "en")),
        last_active_at=last_active_at,
        warned_at=warned_at,
        erasure_due_at=erasure_due_at,
        login_url=login_url,
    )


def render(payload: dict[str, Any]) -> Rendered:
    """The stored message as plain text and HTML (a ValidationError when it is no such e-mail)."""
    email = InactivityWarningEmail.model_validate(payload)
    text_parts: list[str] = []
    html_parts: list[str] = []
    for language in ("fr", "en"):
        words = _TEXT[language]
        why = words["why"].format(
            last=_date(email.last_active_at, language), due=_date(email.erasure_due_at, language)
        )
        link = f'<a href="{escape(email.login_url, quote=True)}">{escape(words["keep_link"])}</a>'
        text_parts += [why, words["keep"].format(url=email.login_url), words["nothing"]]
        html_parts.append(
            f'<div lang="{language}"><p>{escape(why)}</p><p>{link}</p>'
            f"<p>{escape(words['nothing'])}</p></div>"
        )
    html = (
        '<!doctype html><html lang="fr"><body>'
        f'<h1 style="font-size:1.2em">{escape(email.subject)}</h1>'
        + "<hr>".join(html_parts)
        + "</body></html>"
    )
    return Rendered(email.subject, "\n\n".join(text_parts) + "\n", html)
